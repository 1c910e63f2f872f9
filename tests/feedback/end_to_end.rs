//! The "done when": bulletin sends through a real Postfix to local recipients, some of
//! whom do not exist; Postfix writes the DSNs into the bounce Maildir; `bulletin bounces`
//! (reading the Maildir itself, or through a real Dovecot serving it over IMAP) blocklists
//! exactly the non-existent addresses with Postfix's diagnostic; a second run changes
//! nothing.

use bulletin_testkit::project::Project;

use crate::dovecot::{self, Dovecot};
use crate::postfix::Postfix;
use crate::{bounces, project, send};

const PEOPLE: [&str; 5] = [
    "alice@local.test",
    "bob@local.test",
    "carol@local.test",
    "ghost@local.test",
    "nobody@local.test",
];

/// Postfix with three real users, a project whose list holds them and two who do not exist,
/// the campaign sent, and Postfix's two DSNs in the bounce Maildir.
fn sent_through_postfix(dir: &std::path::Path, extra: &str) -> (Postfix, Project) {
    let postfix = Postfix::start(dir, &["alice", "bob", "carol"]);
    let p = project(&PEOPLE, &postfix.bounce_maildir(), extra);
    send(&p, &postfix.url());
    postfix.wait_for_bounces(2);
    for user in ["alice", "bob", "carol"] {
        postfix.wait_for_delivered(user, 1);
        assert_eq!(postfix.delivered_to(user), 1, "{user}\n{}", postfix.log());
    }
    (postfix, p)
}

/// What one run of `bounces` must have done.
fn assert_blocklisted_with_postfix_evidence(p: &Project) {
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
    let (code, shown, _) = crate::run(p, "smtp://127.0.0.1:9", &["campaigns", "show", "1"]);
    assert_eq!(code, 0);
    assert!(shown.contains("bounced 2"), "{shown}");
    assert!(shown.contains("ghost@local.test"), "{shown}");
}

/// Everything a run of `bounces` may change.
fn snapshot(p: &Project) -> Vec<String> {
    let mut rows = p.strings("SELECT email || ':' || status FROM subscribers ORDER BY id");
    rows.extend(
        p.strings("SELECT status || ':' || COALESCE(last_reply, '') FROM deliveries ORDER BY id"),
    );
    rows.extend(p.strings("SELECT kind || ':' || source FROM events ORDER BY id"));
    rows.extend(p.strings("SELECT message_key FROM feedback ORDER BY id"));
    rows
}

#[test]
fn postfix_dsns_blocklist_exactly_the_addresses_that_do_not_exist() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (postfix, p) = sent_through_postfix(dir.path(), "");

    let (code, out, err) = bounces(&p, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_blocklisted_with_postfix_evidence(&p);

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

#[test]
fn the_same_through_dovecot_over_imap_flags_what_it_handled_and_leaves_the_rest_unread() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (postfix, p) = sent_through_postfix(
        dir.path(),
        &format!("imap_username = \"{}\"\n", dovecot::USER),
    );
    // A person's reply in the same mailbox: it must stay there, unread.
    let reply = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/bounces/human-reply.eml"),
    )
    .expect("corpus");
    std::fs::write(postfix.bounce_maildir().join("new/1.human-reply"), reply).expect("drop");
    let imap = Dovecot::start(&dir.path().join("dovecot"), &postfix.bounce_maildir());
    let with_password = |args: &[&str]| {
        let mut all = vec!["bounces"];
        all.extend_from_slice(args);
        crate::run_with(
            &p,
            &[("BULLETIN_BOUNCES_IMAP_PASSWORD", dovecot::PASSWORD)],
            &all,
        )
    };

    let (code, out, err) = with_password(&["--imap", &imap.url()]);
    assert_eq!(
        code,
        3,
        "the reply is left for a person:\n{out}\n{err}\n{}",
        imap.log()
    );
    assert!(
        err.contains("3 message(s) read, 2 recorded, 1 left"),
        "{err}"
    );
    assert_blocklisted_with_postfix_evidence(&p);

    let before = snapshot(&p);
    let (code, out, err) = with_password(&["--imap", &imap.url(), "--json"]);
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(
        err.contains("1 message(s) read, 0 recorded, 1 left"),
        "{err}"
    );
    assert_eq!(snapshot(&p), before);
    // Handled messages carry \Seen and the keyword; the reply is still unread.
    let names: Vec<String> = ["new", "cur"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(postfix.bounce_maildir().join(sub)).expect("dir"))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let seen = names
        .iter()
        .filter(|n| n.contains(":2,") && n.rsplit(":2,").next().is_some_and(|f| f.contains('S')))
        .count();
    assert_eq!(seen, 2, "{names:?}");
    let keywords = std::fs::read_to_string(postfix.bounce_maildir().join("dovecot-keywords"))
        .unwrap_or_default();
    assert!(keywords.contains("$BulletinHandled"), "{keywords}");

    // Plain IMAP off this machine is refused before any connection: it would send the
    // password in clear.
    let (code, _, err) = with_password(&["--imap", "imap://mail.example.org/INBOX"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("use imaps://"), "{err}");
}
