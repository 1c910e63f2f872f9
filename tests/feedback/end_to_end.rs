//! The "done when": bulletin sends through a real Postfix to local recipients, some of
//! whom do not exist; Postfix writes the DSNs into the bounce Maildir; `bulletin bounces`
//! blocklists exactly the non-existent addresses with Postfix's diagnostic; a second run
//! changes nothing.

use crate::postfix::Postfix;
use crate::{bounces, project, send};

#[test]
fn postfix_dsns_blocklist_exactly_the_addresses_that_do_not_exist() {
    let dir = tempfile::tempdir().expect("temp dir");
    let postfix = Postfix::start(dir.path(), &["alice", "bob", "carol"]);
    let p = project(
        &[
            "alice@local.test",
            "bob@local.test",
            "carol@local.test",
            "ghost@local.test",
            "nobody@local.test",
        ],
        &postfix.bounce_maildir(),
        "",
    );
    send(&p, &postfix.url());
    postfix.wait_for_bounces(2);
    for user in ["alice", "bob", "carol"] {
        assert_eq!(postfix.delivered_to(user), 1, "{user}\n{}", postfix.log());
    }

    let (code, out, err) = bounces(&p, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let blocklisted =
        p.strings("SELECT email FROM subscribers WHERE status = 'blocklisted' ORDER BY email");
    assert_eq!(blocklisted, ["ghost@local.test", "nobody@local.test"]);
    // The evidence is Postfix's own: the status and its diagnostic.
    let evidence = p.strings(
        "SELECT e.detail FROM events e JOIN subscribers s ON s.id = e.subscriber_id
         WHERE e.kind = 'blocklisted' AND e.source = 'bounce' ORDER BY s.email",
    );
    assert_eq!(evidence.len(), 2);
    for (detail, who) in evidence.iter().zip(["ghost", "nobody"]) {
        let detail: serde_json::Value = serde_json::from_str(detail).expect("json");
        assert_eq!(detail["status"], "5.1.1", "{detail}");
        assert_eq!(detail["matched_by"], "verp", "{detail}");
        let diagnostic = detail["diagnostic"].as_str().expect("diagnostic");
        assert!(
            diagnostic.contains(&format!("unknown user: \"{who}@local.test\"")),
            "{diagnostic}"
        );
    }
    assert_eq!(
        p.strings("SELECT status FROM deliveries ORDER BY id"),
        ["sent", "sent", "sent", "bounced", "bounced"]
    );
    let (code, shown, _) = bounces_show(&p);
    assert_eq!(code, 0);
    assert!(shown.contains("bounced 2"), "{shown}");
    assert!(shown.contains("ghost@local.test"), "{shown}");

    // A second run finds the same messages already handled and changes nothing.
    let before = snapshot(&p);
    let (code, out, err) = bounces(&p, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("nothing new"), "{out}");
    assert_eq!(snapshot(&p), before);
    // Handled messages were marked read, not deleted.
    let cur: Vec<String> = std::fs::read_dir(postfix.bounce_maildir().join("cur"))
        .expect("cur")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cur.len(), 2, "{cur:?}");
    assert!(cur.iter().all(|n| n.ends_with(":2,S")), "{cur:?}");
}

fn bounces_show(p: &bulletin_testkit::project::Project) -> (i32, String, String) {
    crate::run(p, "smtp://127.0.0.1:9", &["campaigns", "show", "1"])
}

/// Everything a run of `bounces` may change.
fn snapshot(p: &bulletin_testkit::project::Project) -> Vec<String> {
    let mut rows = p.strings("SELECT email || ':' || status FROM subscribers ORDER BY id");
    rows.extend(
        p.strings("SELECT status || ':' || COALESCE(last_reply, '') FROM deliveries ORDER BY id"),
    );
    rows.extend(p.strings("SELECT kind || ':' || source FROM events ORDER BY id"));
    rows.extend(p.strings("SELECT message_key FROM feedback ORDER BY id"));
    rows
}
