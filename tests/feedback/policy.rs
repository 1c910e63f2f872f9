//! The return path and the policy through the real binary and a real SQLite file: every
//! message's envelope sender is its delivery's signed VERP address; soft bounces blocklist
//! only N in a row across campaigns; a complaint unsubscribes from that list at once; an mbox
//! is read as well as a Maildir; what cannot be classified or matched is left and reported;
//! a forged token matches nothing; a second run does nothing twice.

use std::path::{Path, PathBuf};

use bulletin::token::Keys;
use bulletin_testkit::project::Project;
use bulletin_testkit::smtp::SmtpServer;
use mail_parser::MessageParser;

use crate::{SECRET, bounces, edition, project, run};

/// Subscribers blocklisted now.
fn blocklisted(p: &Project) -> Vec<String> {
    p.strings("SELECT email FROM subscribers WHERE status = 'blocklisted' ORDER BY email")
}

/// The outcome of each message in `bounces --json` output.
fn outcomes(json: &str) -> Vec<String> {
    let report: serde_json::Value = serde_json::from_str(json).expect("json");
    report["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["outcome"].as_str().expect("outcome").to_string())
        .collect()
}

fn keys(secret: &str) -> Keys {
    Keys::new(&bulletin::config::Secret::new(secret), &[]).expect("keys")
}

/// A corpus message with `bounces+TOKEN@` replaced by `delivery`'s real return path.
pub(crate) fn corpus(name: &str, delivery: i64, secret: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bounces")
        .join(name);
    let text = std::fs::read_to_string(path).expect("corpus message");
    text.replace(
        "bounces+TOKEN@",
        &format!("bounces+{}@", keys(secret).bounce_token(delivery)),
    )
}

/// An empty Maildir in the project.
pub(crate) fn maildir(p: &Project) -> PathBuf {
    let dir = p.path().join("bounce-box");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).expect("maildir");
    }
    dir
}

pub(crate) fn drop_in(dir: &Path, name: &str, message: &str) {
    std::fs::write(dir.join("new").join(name), message).expect("drop a message");
}

pub(crate) fn delivery_of(p: &Project, email: &str, campaign: i64) -> i64 {
    p.scalar(&format!(
        "SELECT d.id FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
         WHERE s.email = '{email}' AND d.campaign_id = {campaign}"
    ))
}

/// A copy of the example edition with another slug and subject: a second campaign to the
/// same list.
fn second_edition(p: &Project) -> String {
    let source = PathBuf::from(edition());
    let target = p.path().join("second-edition");
    copy_dir(&source, &target);
    let manifest = target.join("edition.toml");
    let text = std::fs::read_to_string(&manifest).expect("edition.toml");
    let text = text
        .replacen(
            "slug = \"glo-act-special-edition\"",
            "slug = \"second-edition\"",
            1,
        )
        .replacen(
            "subject = \"Inside GLO.ACT",
            "subject = \"Again: Inside GLO.ACT",
            1,
        );
    std::fs::write(manifest, text).expect("edition.toml");
    target.display().to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[test]
fn every_envelope_sender_is_its_deliverys_signed_return_path() {
    let people = ["ann@example.com", "ben@example.com", "cat@example.com"];
    let p = project(&people, Path::new("unused"), "");
    let server = SmtpServer::start(p.path());
    crate::send(&p, &server.url());
    let k = keys(SECRET);
    let mut seen = Vec::new();
    for raw in server.messages() {
        let m = MessageParser::default().parse(&raw).expect("parses");
        let envelope = m
            .header_raw("X-MailFrom")
            .expect("aiosmtpd records MAIL FROM")
            .trim()
            .to_string();
        let to = m
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .expect("To")
            .to_string();
        let token = envelope
            .strip_prefix("bounces+")
            .and_then(|rest| rest.strip_suffix("@bounces.test"))
            .unwrap_or_else(|| panic!("envelope sender {envelope}"));
        // No personal data in clear: the address is nowhere in the return path.
        assert!(
            !envelope.contains(to.split('@').next().expect("local part")),
            "{envelope}"
        );
        let delivery = k
            .verify_bounce(token)
            .expect("signed with the project's secret");
        assert_eq!(delivery, delivery_of(&p, &to, 1), "{to}");
        seen.push(delivery);
    }
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 3, "one return path per delivery");

    // Without [bounces], the envelope sender stays the From address.
    let plain = Project::new();
    plain.ok(&["lists", "add", "news"]);
    plain.write("people.csv", "email,lists\nann@example.com,news\n");
    plain.ok(&["subscribers", "import", "people.csv"]);
    let server = SmtpServer::start(&plain.path().join("relay"));
    crate::send(&plain, &server.url());
    let raw = server.messages().pop().expect("one message");
    let m = MessageParser::default().parse(&raw).expect("parses");
    assert_eq!(
        m.header_raw("X-MailFrom").map(str::trim),
        Some("newsletter@example.org")
    );
}

#[test]
fn soft_bounces_blocklist_only_when_they_come_n_in_a_row_across_campaigns() {
    let p = project(
        &["dee@example.com", "eve@example.com"],
        Path::new("unused"),
        "soft_limit = 2\n",
    );
    let server = SmtpServer::start(p.path());
    crate::send(&p, &server.url());
    let second = second_edition(&p);
    let (code, out, err) = run(
        &p,
        &server.url(),
        &["send", &second, "--list", "news", "--yes"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let box_dir = maildir(&p);
    let mbox_arg = box_dir.display().to_string();

    // Campaign 1: one soft bounce each. Nobody is blocklisted yet; the deliveries bounced.
    for who in ["dee", "eve"] {
        let d = delivery_of(&p, &format!("{who}@example.com"), 1);
        drop_in(
            &box_dir,
            &format!("1-{who}"),
            &corpus("postfix-mailbox-full.eml", d, SECRET),
        );
    }
    let (code, out, err) = bounces(&p, &["--maildir", &mbox_arg]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(blocklisted(&p).is_empty());
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'bounced'"),
        2
    );

    // Campaign 2: dee bounces softly again (two in a row: blocklisted); eve's message is
    // delivered (no bounce), so a later soft bounce of hers starts a new run.
    let d = delivery_of(&p, "dee@example.com", 2);
    drop_in(
        &box_dir,
        "2-dee",
        &corpus("office365-quota-exceeded.eml", d, SECRET),
    );
    let (code, out, err) = bounces(&p, &["--maildir", &mbox_arg]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(blocklisted(&p), ["dee@example.com"]);
    let detail =
        p.strings("SELECT detail FROM events WHERE kind = 'blocklisted' AND source = 'bounce'");
    assert_eq!(detail.len(), 1);
    assert!(
        detail[0].contains("2 soft bounces in a row"),
        "{}",
        detail[0]
    );
    assert!(detail[0].contains("5.2.2"), "{}", detail[0]);
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM events WHERE kind = 'bounced' AND source = 'bounce'"),
        3
    );
    // The block is lifted the usual way.
    run(
        &p,
        "smtp://127.0.0.1:9",
        &["subscribers", "unblock", "dee@example.com"],
    );
    assert!(blocklisted(&p).is_empty());
}

#[test]
fn a_complaint_unsubscribes_from_that_list_at_once() {
    let p = project(
        &["fay@example.com", "gus@example.com"],
        Path::new("unused"),
        "",
    );
    p.ok(&["lists", "add", "other"]);
    p.ok(&["subscribers", "add", "fay@example.com", "--list", "other"]);
    let server = SmtpServer::start(p.path());
    crate::send(&p, &server.url());
    let box_dir = maildir(&p);
    let d = delivery_of(&p, "fay@example.com", 1);
    drop_in(
        &box_dir,
        "arf",
        &corpus("arf-yahoo-complaint.eml", d, SECRET),
    );
    let (code, out, err) = bounces(&p, &["--maildir", &box_dir.display().to_string()]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        p.strings(
            "SELECT l.name || ':' || x.status FROM subscriptions x JOIN lists l ON l.id = x.list_id
             JOIN subscribers s ON s.id = x.subscriber_id WHERE s.email = 'fay@example.com'
             ORDER BY l.name"
        ),
        ["news:unsubscribed", "other:confirmed"]
    );
    assert_eq!(
        p.scalar(
            "SELECT COUNT(*) FROM events WHERE kind = 'unsubscribed' AND source = 'complaint'"
        ),
        1
    );
    // Not a bounce: the delivery stays sent, the address active.
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'bounced'"),
        0
    );
    assert!(blocklisted(&p).is_empty());
}

#[test]
fn an_mbox_is_read_what_is_not_understood_is_left_and_a_second_run_does_nothing_twice() {
    let p = project(
        &["hal@example.com", "ivy@example.com"],
        Path::new("unused"),
        "",
    );
    let server = SmtpServer::start(p.path());
    crate::send(&p, &server.url());
    let hal = delivery_of(&p, "hal@example.com", 1);
    let ivy = delivery_of(&p, "ivy@example.com", 1);
    let mut mbox = String::new();
    for message in [
        corpus("gmail-no-such-user.eml", hal, SECRET),
        corpus("out-of-office-rfc3834.eml", ivy, SECRET),
        corpus("human-reply.eml", ivy, SECRET),
        // Signed with another secret: a forgery matches nothing and blocklists nobody.
        corpus(
            "postfix-user-unknown.eml",
            ivy,
            "another-secret-of-thirty-two-characters!",
        ),
    ] {
        mbox.push_str("From MAILER-DAEMON Tue Dec  1 09:05:00 2026\n");
        mbox.push_str(&message);
        mbox.push('\n');
    }
    let file = p.write("bounces.mbox", mbox);
    let file = file.display().to_string();
    let (code, out, err) = run(
        &p,
        "smtp://127.0.0.1:9",
        &["--json", "bounces", "--mbox", &file],
    );
    assert_eq!(code, 3, "two messages left for a person:\n{out}\n{err}");
    assert_eq!(
        outcomes(&out),
        ["recorded", "recorded", "unclassified", "unmatched"]
    );
    assert!(
        err.contains("4 message(s) read, 2 recorded, 2 left for a person"),
        "{err}"
    );
    assert_eq!(blocklisted(&p), ["hal@example.com"]);
    assert_eq!(
        p.strings("SELECT kind FROM feedback ORDER BY id"),
        ["hard", "auto_reply"]
    );

    let before = (
        p.strings("SELECT email || status FROM subscribers ORDER BY id"),
        p.scalar("SELECT COUNT(*) FROM events"),
        p.scalar("SELECT COUNT(*) FROM feedback"),
    );
    let (code, out, _) = run(
        &p,
        "smtp://127.0.0.1:9",
        &["--json", "bounces", "--mbox", &file],
    );
    assert_eq!(code, 3);
    assert_eq!(
        outcomes(&out),
        [
            "already_handled",
            "already_handled",
            "unclassified",
            "unmatched"
        ]
    );
    let after = (
        p.strings("SELECT email || status FROM subscribers ORDER BY id"),
        p.scalar("SELECT COUNT(*) FROM events"),
        p.scalar("SELECT COUNT(*) FROM feedback"),
    );
    assert_eq!(before, after);
}

#[test]
fn an_unclassified_maildir_message_stays_unread_where_it_was() {
    let p = project(&["jon@example.com"], Path::new("unused"), "");
    let box_dir = maildir(&p);
    drop_in(&box_dir, "reply", &corpus("human-reply.eml", 1, SECRET));
    let (code, out, _) = bounces(&p, &["--maildir", &box_dir.display().to_string()]);
    assert_eq!(code, 3);
    assert!(
        out.contains("left: neither a delivery status notification"),
        "{out}"
    );
    assert!(
        box_dir.join("new/reply").is_file(),
        "left in new/, untouched"
    );
    // A path that is not a Maildir is named, with the fix.
    let (code, _, err) = bounces(&p, &["--maildir", &p.path().display().to_string()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not a Maildir"), "{err}");
}

#[test]
fn watch_mode_reads_a_bounce_that_arrives_later_and_stops_cleanly_on_sigterm() {
    let p = project(&["kit@example.com"], Path::new("unused"), "");
    let server = SmtpServer::start(p.path());
    crate::send(&p, &server.url());
    let box_dir = maildir(&p);
    let mut child = p
        .std_cmd()
        .env("BULLETIN_SECRET", SECRET)
        .args(["bounces", "--watch", "1", "--maildir"])
        .arg(&box_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let d = delivery_of(&p, "kit@example.com", 1);
    drop_in(&box_dir, "late", &corpus("qmail-no-mailbox.eml", d, SECRET));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while blocklisted(&p).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the watcher never read the bounce"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let code = child.wait().expect("exits");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
        .expect("stderr");
    assert_eq!(code.code(), Some(0), "{err}");
    assert!(err.contains("stopped watching"), "{err}");
    assert_eq!(blocklisted(&p), ["kit@example.com"]);
}
