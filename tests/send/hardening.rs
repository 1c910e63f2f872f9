//! Sending when things go wrong: a second sender, a relay that refuses us rather than a
//! recipient, replies that only look alarming, a relay that never answers, a database that
//! stops taking writes, addresses a relay cannot carry, and undoing automatic decisions.
//! Every case through the real binary, a real SQLite file and a real SMTP server (aiosmtpd,
//! with tests/support/faulty_smtp.py choosing the replies).

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::smtp::{
    edition, held_server, per_recipient, project_with, release, run, send_command, send_news,
    wait_for_messages,
};
use crate::smtp_server::SmtpServer;

/// A folder for a second, well-behaved server's Maildir, apart from the first one's.
fn fixed_dir(p: &crate::support::Project) -> std::path::PathBuf {
    let dir = p.path().join("fixed");
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

/// `status|attempts|last_reply` of a recipient's delivery.
fn delivery(p: &crate::support::Project, email: &str) -> String {
    p.strings(&format!(
        "SELECT d.status || '|' || d.attempts || '|' || COALESCE(d.last_reply, '')
         FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id WHERE s.email = '{email}'"
    ))
    .pop()
    .expect("a delivery row")
}

#[test]
fn a_second_send_of_a_running_campaign_is_refused_and_nobody_gets_two_copies() {
    // 80 messages at 50 ms over two connections keep the first sender busy for about two
    // seconds, far longer than three refused sends take even on a loaded machine.
    let p = project_with(80);
    let server = SmtpServer::faulty(p.path(), "delay=0.05");
    let first = send_command(&p, &server, 2)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn send");
    wait_for_messages(&server, 5);
    // A second operator (or cron) starts the same send while the first is under way.
    for _ in 0..3 {
        let (code, _, err) = send_news(&p, &server.url(), &[], "--yes");
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("campaign #1 is being sent by another `bulletin send`")
                && err.contains(&format!("pid {}", first.id())),
            "{err}"
        );
    }
    let (_, shown, _) = run(&p, &server.url(), &[], &["campaigns", "show", "1"]);
    assert!(
        shown.contains(&format!("sender:   pid {}", first.id())),
        "{shown}"
    );
    let out = first.wait_with_output().expect("first send ends");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = per_recipient(&server.messages());
    assert_eq!(seen.len(), 80);
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    assert_eq!(p.scalar("SELECT COUNT(*) FROM send_leases"), 0, "released");
}

#[test]
fn a_lease_held_on_another_host_is_respected_until_it_lapses() {
    let p = project_with(6);
    let server = SmtpServer::start(p.path());
    let (code, _, err) = send_news(&p, &server.url(), &[], "--yes");
    assert_eq!(code, 0, "{err}");
    // A sender on another machine claimed two rows, then went silent.
    p.execute("UPDATE campaigns SET status = 'running'");
    p.execute("UPDATE deliveries SET status = 'sending', claimed_by = 'far' WHERE id IN (1, 2)");
    p.execute(
        "INSERT INTO send_leases (campaign_id, owner, host, pid, acquired_at, heartbeat_at, expires_at)
         VALUES (1, 'far', 'other-host.example', 4242, '2026-01-01T00:00:00.000Z',
                 '2026-01-01T00:00:00.000Z', '9999-01-01T00:00:00.000Z')",
    );
    let (code, _, err) = send_news(&p, &server.url(), &[], "--yes");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("pid 4242 on host other-host.example"), "{err}");
    assert_eq!(server.messages().len(), 6, "nothing sent while it is held");
    // Once its lease lapses, its in-flight rows are uncertain and resumed like crash leftovers.
    p.execute("UPDATE send_leases SET expires_at = '2026-01-01T00:01:00.000Z'");
    let (code, _, err) = send_news(&p, &server.url(), &[], "--yes");
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("2 recipient(s) were being sent to when the last sender stopped"),
        "{err}"
    );
    assert_eq!(server.messages().len(), 8, "the two uncertain ones again");
}

#[test]
fn a_relay_that_refuses_our_sender_pauses_the_campaign_and_marks_nobody() {
    let p = project_with(12);
    // Postfix's answer to a sender it will not take, at MAIL FROM.
    let refusing = SmtpServer::faulty(
        p.path(),
        "mailfrom=550_5.1.0_<newsletter@example.org>:_Sender_address_rejected",
    );
    let (code, _, err) = send_news(&p, &refusing.url(), &[], "--yes");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("refuses this sender, not a recipient")
            && err.contains("at MAIL FROM: 550 5.1.0"),
        "{err}"
    );
    assert_eq!(
        p.strings("SELECT status FROM campaigns"),
        vec!["paused".to_string()]
    );
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM deliveries WHERE status <> 'queued' OR attempts <> 0"),
        0,
        "no recipient was touched"
    );
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM subscribers WHERE status <> 'active'"),
        0,
        "nobody blocklisted"
    );
    let (_, shown, _) = run(&p, &refusing.url(), &[], &["campaigns", "show", "1"]);
    assert!(
        shown.contains("paused:   paused because the relay refuses"),
        "{shown}"
    );
    // The operator fixes the relay; the same command resumes and delivers to everyone once.
    let fixed = SmtpServer::start(&fixed_dir(&p));
    let (code, _, err) = send_news(&p, &fixed.url(), &[], "--yes");
    assert_eq!(code, 0, "{err}");
    let seen = per_recipient(&fixed.messages());
    assert_eq!(seen.len(), 12);
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
}

#[test]
fn relay_access_denied_for_every_recipient_pauses_instead_of_using_up_the_list() {
    let p = project_with(20);
    let server = SmtpServer::faulty(p.path(), "rcptall=554_5.7.1_Relay_access_denied");
    let (code, _, err) = send_news(&p, &server.url(), &[], "--yes");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("refuses this sender") && err.contains("5.7.1 Relay access denied"),
        "{err}"
    );
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'failed'"),
        0
    );
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'queued'"),
        20,
        "every recipient still waits"
    );
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM subscribers WHERE status = 'blocklisted'"),
        0
    );
}

#[test]
fn only_a_recipient_stage_5_1_1_blocklists_and_an_ip_that_contains_it_does_not() {
    let p = project_with(10);
    let spec = "rcpt=reader1@example.org:554_5.7.1_Client_host_[10.5.1.1]_blocked_for_this_recipient,\
                rcpt=reader2@example.org:550_5.1.1_<reader2@example.org>:_User_unknown";
    let server = SmtpServer::faulty(p.path(), spec);
    let (code, out, err) = send_news(&p, &server.url(), &[], "--yes");
    assert_eq!(
        code, 3,
        "two failures make a partial success:\n{out}\n{err}"
    );
    assert_eq!(per_recipient(&server.messages()).len(), 8);
    let one = delivery(&p, "reader1@example.org");
    assert!(
        one.starts_with("failed|1|") && one.contains("10.5.1.1"),
        "{one}"
    );
    let two = delivery(&p, "reader2@example.org");
    assert!(
        two.starts_with("failed|1|") && two.contains("at RCPT TO"),
        "{two}"
    );
    assert_eq!(
        p.strings("SELECT email FROM subscribers WHERE status = 'blocklisted'"),
        vec!["reader2@example.org".to_string()],
        "only the mailbox that does not exist"
    );
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM events WHERE kind = 'blocklisted'"),
        1
    );
}

#[test]
fn a_relay_that_never_greets_cannot_hang_a_send() {
    let p = project_with(2);
    // A listener that accepts connections and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "smtp://127.0.0.1:{}",
        silent.local_addr().expect("addr").port()
    );
    let started = Instant::now();
    let (code, _, err) = run(
        &p,
        &url,
        &[("BULLETIN_SMTP_GREETING_TIMEOUT_SECS", "1")],
        &["send", &edition(), "--list", "news", "--yes"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("at greeting/EHLO: no answer within 1 s"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(p.scalar("SELECT COUNT(*) FROM campaigns"), 0);
}

#[test]
fn no_reply_after_the_final_dot_is_uncertain_listed_and_resumed_like_a_crash_leftover() {
    let p = project_with(5);
    let server = SmtpServer::faulty(p.path(), "swallow=reader2@example.org:1");
    let env = [("BULLETIN_SMTP_DATA_END_TIMEOUT_SECS", "2")];
    let (code, _, err) = run(
        &p,
        &server.url(),
        &env,
        &["send", &edition(), "--list", "news", "--yes"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("left 1 message(s) uncertain"), "{err}");
    let two = delivery(&p, "reader2@example.org");
    assert!(
        two.starts_with("uncertain|1|") && two.contains("no answer within 2 s (at end of data)"),
        "not failed, not retried: {two}"
    );
    let (_, shown, _) = run(&p, &server.url(), &[], &["campaigns", "show", "1"]);
    assert!(
        shown.contains("1 uncertain") && shown.contains("reader2@example.org"),
        "{shown}"
    );
    assert_eq!(per_recipient(&server.messages()).len(), 4);
    // --skip-uncertain leaves it out; without it, it is sent again.
    let (code, _, err) = run(
        &p,
        &server.url(),
        &env,
        &["send", &edition(), "--list", "news", "--yes"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 recipient(s) are uncertain"), "{err}");
    let seen = per_recipient(&server.messages());
    assert_eq!(seen.len(), 5);
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
}

#[test]
fn a_database_that_stops_taking_writes_mid_send_pauses_and_names_the_way_back() {
    if bulletin_testkit::project::sqlite_only("SQLite's file write lock held by another process") {
        return;
    }
    let p = project_with(60);
    // The send is held after 8 messages until the lock is taken: it surely meets the lock
    // mid-campaign, not after a fast send has finished.
    let (server, hold) = held_server(&p, 8);
    let mut cmd = send_command(&p, &server, 2);
    cmd.env("BULLETIN_DATABASE_BUSY_TIMEOUT_MS", "200")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn send");
    wait_for_messages(&server, 8);
    // Another process holds the write lock for 3 s, far beyond send's busy timeout; it says
    // when it has it.
    let mut holder = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('BEGIN IMMEDIATE')\n\
             print('locked', flush=True)\n\
             time.sleep(3)\n\
             c.execute('COMMIT')",
        ])
        .arg(p.db_path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().expect("piped")),
        &mut line,
    )
    .expect("read the lock holder");
    assert_eq!(line.trim(), "locked", "python3 did not take the write lock");
    release(&hold);
    let out = child.wait_with_output().expect("send ends");
    holder.wait().expect("lock holder ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the database failed mid-send")
            && err.contains("run the same `bulletin send` command to resume"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        p.strings("SELECT status FROM campaigns"),
        vec!["paused".to_string()],
        "not left running"
    );
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'sending'"),
        0,
        "what was in flight was recorded once the lock was free"
    );
    let (code, _, err) = send_news(&p, &server.url(), &[], "--yes");
    assert_eq!(code, 0, "{err}");
    let seen = per_recipient(&server.messages());
    assert_eq!(seen.len(), 60);
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
}

#[test]
fn an_address_the_relay_cannot_carry_fails_at_once_and_is_announced() {
    let p = project_with(3);
    p.ok(&["subscribers", "add", "jörg@example.org", "--list", "news"]);
    let server = SmtpServer::faulty(p.path(), "");
    let (code, _, err) = send_news(&p, &server.url(), &[], "--dry-run");
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("1 recipient(s) have an address with a non-ASCII local part"),
        "{err}"
    );
    // aiosmtpd does not announce SMTPUTF8 unless told to.
    let env = [
        ("BULLETIN_SMTP_RETRY_BASE_MS", "60000"),
        ("BULLETIN_SMTP_MAX_ATTEMPTS", "5"),
    ];
    let (code, _, err) = run(
        &p,
        &server.url(),
        &env,
        &["send", &edition(), "--list", "news", "--yes"],
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("1 recipient(s) of list news have an address with a non-ASCII local part")
            && err.contains("does not"),
        "warned before the campaign: {err}"
    );
    let row = delivery(&p, "jörg@example.org");
    assert!(
        row.starts_with("failed|1|") && row.contains("SMTPUTF8"),
        "failed at once, no hour of retries: {row}"
    );
    assert_eq!(per_recipient(&server.messages()).len(), 3);
}

#[test]
fn failed_deliveries_can_be_retried_after_the_cause_is_fixed() {
    let p = project_with(6);
    let refusing = SmtpServer::faulty(
        p.path(),
        "rcpt=reader3@example.org:550_5.7.1_Recipient_domain_policy",
    );
    let (code, _, err) = send_news(&p, &refusing.url(), &[], "--yes");
    assert_eq!(code, 3, "{err}");
    assert!(delivery(&p, "reader3@example.org").starts_with("failed|1|"));
    let (code, _, err) = run(&p, &refusing.url(), &[], &["campaigns", "retry", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("1 failed deliver(y/ies) queued again"),
        "{err}"
    );
    assert_eq!(
        p.strings("SELECT status FROM campaigns"),
        vec!["paused".to_string()]
    );
    let fixed = SmtpServer::start(&fixed_dir(&p));
    let (code, _, err) = send_news(&p, &fixed.url(), &[], "--yes");
    assert_eq!(code, 0, "{err}");
    let seen = per_recipient(&fixed.messages());
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        vec!["reader3@example.org"],
        "only the retried one"
    );
    assert!(
        delivery(&p, "reader3@example.org").starts_with("sent|2|"),
        "recorded as a new attempt: {}",
        delivery(&p, "reader3@example.org")
    );
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM events WHERE kind = 'campaign_retry'"),
        1
    );
}
