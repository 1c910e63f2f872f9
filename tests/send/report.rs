//! `campaigns show` tells what happened: per recipient the time of each attempt and of
//! delivery, the relay's reply and the Message-ID; filters for the failed and the uncertain;
//! JSON and CSV for reporting. Through the real binary, a real SQLite file and aiosmtpd with
//! tests/support/faulty_smtp.py choosing the replies.

use crate::smtp::{edition, project_with, run};
use crate::smtp_server::SmtpServer;
use crate::support::Project;

/// `attempt|outcome|stage|reply|started_at|finished_at` of each logged attempt of `email`.
fn attempts(p: &Project, email: &str) -> Vec<Vec<String>> {
    p.strings(&format!(
        "SELECT a.attempt || '|' || a.outcome || '|' || COALESCE(a.stage, '') || '|' || a.reply
                || '|' || a.started_at || '|' || a.finished_at
         FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
         JOIN subscribers s ON s.id = d.subscriber_id
         WHERE s.email = '{email}' ORDER BY a.id"
    ))
    .into_iter()
    .map(|row| row.split('|').map(str::to_string).collect())
    .collect()
}

/// `bulletin campaigns show 1 ARGS`: (code, stdout, stderr).
fn show(p: &Project, server: &SmtpServer, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["campaigns", "show", "1"];
    all.extend_from_slice(args);
    run(p, &server.url(), &[], &all)
}

/// `bulletin --json campaigns show 1 ARGS`.
fn show_json(p: &Project, server: &SmtpServer, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["--json", "campaigns", "show", "1"];
    all.extend_from_slice(args);
    run(p, &server.url(), &[], &all)
}

fn one(p: &Project, sql: &str) -> String {
    p.strings(sql).pop().expect("one value")
}

/// reader1 is refused for now twice (451 at the end of data), reader2 for good (550 5.1.1 at
/// RCPT TO); reader0 and reader3 go through at once.
fn sent_with_retries_and_a_failure() -> (Project, SmtpServer) {
    let p = project_with(4);
    let server = SmtpServer::faulty(
        p.path(),
        "temp=reader1@example.org:2,perm=reader2@example.org",
    );
    let env = [
        ("BULLETIN_SMTP_RETRY_BASE_MS", "50"),
        ("BULLETIN_SMTP_MAX_ATTEMPTS", "4"),
    ];
    let (code, out, err) = run(
        &p,
        &server.url(),
        &env,
        &["send", &edition(), "--list", "news", "--yes"],
    );
    assert_eq!(code, 3, "one permanent failure:\n{out}\n{err}");
    (p, server)
}

#[test]
fn each_attempt_is_logged_with_its_times_stage_and_reply() {
    let (p, _server) = sent_with_retries_and_a_failure();
    let retried = attempts(&p, "reader1@example.org");
    let outcomes: Vec<(&str, &str, &str)> = retried
        .iter()
        .map(|a| (a[0].as_str(), a[1].as_str(), a[2].as_str()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("1", "deferred", "end of data"),
            ("2", "deferred", "end of data"),
            ("3", "sent", "")
        ]
    );
    assert!(retried[0][3].contains("451 4.3.0"), "{retried:?}");
    assert!(retried[2][3].contains("250"), "{retried:?}");
    for a in &retried {
        assert!(
            a[4].ends_with('Z') && a[4] <= a[5],
            "started before finished: {a:?}"
        );
    }
    assert!(
        retried[0][5] <= retried[1][4] && retried[1][5] <= retried[2][4],
        "one after the other: {retried:?}"
    );
    // Delivered when the last attempt ended.
    assert_eq!(
        one(
            &p,
            "SELECT d.sent_at FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
             WHERE s.email = 'reader1@example.org'"
        ),
        retried[2][5]
    );
    let refused = attempts(&p, "reader2@example.org");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        (refused[0][1].as_str(), refused[0][2].as_str()),
        ("failed", "RCPT TO")
    );
    assert!(refused[0][3].contains("550 5.1.1"), "{refused:?}");
    for email in ["reader0@example.org", "reader3@example.org"] {
        let a = attempts(&p, email);
        assert_eq!(a.len(), 1, "{email}: {a:?}");
        assert_eq!(a[0][1], "sent", "{email}");
    }
}

#[test]
fn show_lists_times_message_ids_and_each_attempt_of_a_recipient() {
    let (p, server) = sent_with_retries_and_a_failure();
    let message_id = one(
        &p,
        "SELECT d.message_id FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
         WHERE s.email = 'reader0@example.org'",
    );
    let (code, shown, err) = show(&p, &server, &["--all"]);
    assert_eq!(code, 0, "{err}");
    for column in ["LAST ATTEMPT", "DELIVERED", "MESSAGE-ID", "LAST REPLY"] {
        assert!(shown.contains(column), "{column}: {shown}");
    }
    assert!(shown.contains(&message_id), "{shown}");

    let (code, shown, err) = show(&p, &server, &["--recipient", "Reader1@Example.org"]);
    assert_eq!(code, 0, "{err}");
    assert!(!shown.contains("reader0@example.org"), "{shown}");
    assert_eq!(shown.matches("deferred").count(), 2, "{shown}");
    assert_eq!(shown.matches("451 4.3.0").count(), 2, "{shown}");
    assert!(
        shown.contains("STARTED") && shown.contains("end of data"),
        "{shown}"
    );

    // Without a filter: only those not plainly sent.
    let (_, shown, _) = show(&p, &server, &[]);
    assert!(
        shown.contains("reader2@example.org") && !shown.contains("reader1@example.org"),
        "{shown}"
    );
    let (_, shown, _) = show(&p, &server, &["--failed"]);
    assert!(
        shown.contains("reader2@example.org") && shown.contains("User unknown"),
        "{shown}"
    );
    assert!(!shown.contains("reader0@example.org"), "{shown}");
    let (code, shown, err) = show(&p, &server, &["--uncertain"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !shown.contains("@example.org"),
        "nobody is uncertain: {shown}"
    );
    assert!(err.contains("no recipient matches"), "{err}");
}

#[test]
fn json_includes_each_attempt_and_csv_has_a_header_and_a_row_per_recipient() {
    let (p, server) = sent_with_retries_and_a_failure();
    let (code, out, err) = show_json(&p, &server, &["--all"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let deliveries = json["deliveries"].as_array().expect("deliveries");
    assert_eq!(deliveries.len(), 4);
    let retried = deliveries
        .iter()
        .find(|d| d["email"] == "reader1@example.org")
        .expect("reader1");
    let log = retried["attempt_log"].as_array().expect("attempt_log");
    let outcomes: Vec<&str> = log
        .iter()
        .map(|a| a["outcome"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(outcomes, ["deferred", "deferred", "sent"]);
    assert!(
        log[0]["reply"].as_str().unwrap_or("").contains("451"),
        "{log:?}"
    );
    assert_eq!(retried["sent_at"], log[2]["finished_at"]);
    assert_eq!(retried["last_attempt_at"], log[2]["started_at"]);
    assert!(
        retried["message_id"]
            .as_str()
            .is_some_and(|m| m.starts_with("bulletin."))
    );

    let (code, out, err) = show(&p, &server, &["--all", "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    assert_eq!(
        reader.headers().expect("header").iter().collect::<Vec<_>>(),
        [
            "recipient",
            "status",
            "attempts",
            "last_attempt",
            "delivered",
            "message_id",
            "last_reply"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 4, "{out}");
    let row = rows
        .iter()
        .find(|r| &r[0] == "reader1@example.org")
        .expect("reader1");
    assert_eq!((&row[1], &row[2]), ("sent", "3"));
    assert_eq!(row[3], log[2]["started_at"]);
    assert_eq!(row[4], log[2]["finished_at"]);
    assert_eq!(row[5], retried["message_id"]);
    let row = rows
        .iter()
        .find(|r| &r[0] == "reader2@example.org")
        .expect("reader2");
    assert_eq!((&row[1], &row[4]), ("failed", ""));
    assert!(row[6].contains("550 5.1.1"), "{row:?}");

    // --attempts: one row per attempt.
    let (code, out, err) = show(&p, &server, &["--all", "--attempts", "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    assert_eq!(
        reader.headers().expect("header").iter().collect::<Vec<_>>(),
        [
            "recipient",
            "attempt",
            "started",
            "finished",
            "outcome",
            "stage",
            "reply"
        ]
    );
    assert_eq!(reader.records().count(), 6, "3 + 1 + 1 + 1: {out}");

    let (code, _, err) = show_json(&p, &server, &["--format", "csv"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("choose one of --json and --format csv"),
        "{err}"
    );
}

#[test]
fn uncertain_covers_no_final_reply_and_rows_left_in_flight_by_a_dead_sender() {
    let p = project_with(4);
    let server = SmtpServer::faulty(p.path(), "swallow=reader2@example.org:1");
    let (code, _, err) = run(
        &p,
        &server.url(),
        &[("BULLETIN_SMTP_DATA_END_TIMEOUT_SECS", "2")],
        &["send", &edition(), "--list", "news", "--yes"],
    );
    assert_eq!(code, 1, "{err}");
    let swallowed = attempts(&p, "reader2@example.org");
    assert_eq!(swallowed.len(), 1, "{swallowed:?}");
    assert_eq!(
        (swallowed[0][1].as_str(), swallowed[0][2].as_str()),
        ("uncertain", "end of data")
    );
    // A sender that died with reader0's message in flight, and holds no lease.
    p.execute(
        "UPDATE deliveries SET status = 'sending', claimed_by = 'gone'
         WHERE subscriber_id = (SELECT id FROM subscribers WHERE email = 'reader0@example.org')",
    );
    let (code, shown, err) = show(&p, &server, &["--uncertain"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        shown.contains("reader2@example.org") && shown.contains("reader0@example.org"),
        "{shown}"
    );
    assert!(
        !shown.contains("reader1@example.org") && !shown.contains("sending"),
        "{shown}"
    );
    let (_, out, _) = show(&p, &server, &["--uncertain", "--format", "csv"]);
    let statuses: Vec<String> = csv::Reader::from_reader(out.as_bytes())
        .records()
        .map(|r| r.expect("row")[1].to_string())
        .collect();
    assert_eq!(statuses, ["uncertain", "uncertain"], "{out}");
}

#[test]
fn a_relay_refusing_our_sender_leaves_no_attempt_and_a_wrong_recipient_is_named() {
    let p = project_with(3);
    let refusing = SmtpServer::faulty(
        p.path(),
        "mailfrom=550_5.1.0_<newsletter@example.org>:_Sender_address_rejected",
    );
    let (code, _, err) = run(
        &p,
        &refusing.url(),
        &[],
        &["send", &edition(), "--list", "news", "--yes"],
    );
    assert_eq!(code, 1, "{err}");
    // Handed back untried: not an attempt.
    assert_eq!(p.scalar("SELECT COUNT(*) FROM delivery_attempts"), 0);
    let (code, _, err) = show(&p, &refusing, &["--recipient", "nobody@example.org"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("nobody@example.org is not a recipient of campaign #1"),
        "{err}"
    );
    let (code, _, err) = show(&p, &refusing, &["--recipient", "not an address"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--recipient not an address"), "{err}");
}
