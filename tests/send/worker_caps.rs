//! `bulletin worker --hourly-cap`: a worker's own hourly cap (one outbound IP's allowance)
//! holds across the campaigns it works and across its restarts, because it is counted in the
//! database under its `--name`; other workers carry the campaigns on. Real worker processes,
//! a real SMTP server process counting what arrives, on this pass's backend (SQLite or
//! PostgreSQL).

use std::time::{Duration, Instant, SystemTime};

use crate::schedule::stop;
use crate::smtp::{SECRET, edition, per_recipient, project_with, run};
use crate::smtp_server::SmtpServer;
use crate::support::Project;
use crate::workers::{Worker, finish, schedule_time, time_from_now, utc_date, wait_until_past};

/// Schedules the test edition for `list` a moment from now; returns when it is due. The
/// moment is 2 s ahead: `send --at` refuses a time in the past, and on a loaded machine the
/// binary's start-up alone can take longer than a few hundred milliseconds.
fn schedule(p: &Project, server: &SmtpServer, list: &str) -> SystemTime {
    let (at, due) = schedule_time(Duration::from_secs(2));
    let (code, _, err) = run(
        p,
        &server.url(),
        &[],
        &["send", &edition(), "--list", list, "--at", &at],
    );
    assert_eq!(code, 0, "{err}");
    due
}

/// `bulletin worker --once ARGS` to its end: (exit code, stderr).
fn worker_once(p: &Project, server: &SmtpServer, args: &[&str]) -> (i32, String) {
    let mut all = vec!["worker", "--once", "--concurrency", "4"];
    all.extend_from_slice(args);
    let (code, _, err) = run(p, &server.url(), &[], &all);
    (code, err)
}

/// Worker a, long-running, capped at 10 an hour.
const CAPPED_A: &[&str] = &["--name", "a", "--hourly-cap", "10", "--poll", "0.2"];

/// `bulletin worker ARGS` running in the background, its log on a pipe.
fn spawn(p: &Project, server: &SmtpServer, args: &[&str]) -> Worker {
    Worker::spawn(
        p.std_cmd()
            .env("BULLETIN_SECRET", SECRET)
            .env("BULLETIN_SMTP_URL", server.url())
            .arg("worker")
            .args(args),
    )
}

/// "HH:MM UTC" an hour after the start of worker `name`'s window: when it may send again.
fn window_end(p: &Project, name: &str) -> String {
    let start_us = p.scalar(&format!(
        "SELECT window_start_us FROM worker_pacing WHERE name = '{name}'"
    ));
    utc_date(&(start_us / 1_000_000 + 3600).to_string(), "%H:%M UTC")
}

#[test]
fn a_worker_s_own_hourly_cap_holds_across_campaigns_and_restarts_and_others_finish() {
    // Campaign #1 to `extra` (5 readers), then #2 to `news` (30): worker a, capped at 10,
    // sends #1's 5 and 5 of #2, then stops; run again it sends nothing; worker b, uncapped,
    // sends the other 25.
    let p = project_with(30);
    p.ok(&["lists", "add", "extra"]);
    let mut csv = String::from("email,name,lang,lists\n");
    for i in 0..5 {
        csv.push_str(&format!("extra{i}@example.org,Extra {i},en,extra\n"));
    }
    p.write("extra.csv", csv);
    p.ok(&["subscribers", "import", "extra.csv"]);
    let server = SmtpServer::start(p.path());
    schedule(&p, &server, "extra");
    wait_until_past(schedule(&p, &server, "news"));

    let (code, log) = worker_once(&p, &server, &["--name", "a", "--hourly-cap", "10"]);
    assert_eq!(code, 0, "a used-up cap is not a failure: {log}");
    assert_eq!(
        server.messages().len(),
        10,
        "the cap, across campaigns: {log}"
    );
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'"),
        10
    );
    assert_eq!(
        p.scalar("SELECT window_count FROM worker_pacing WHERE name = 'a'"),
        10
    );
    let next = window_end(&p, "a");
    let said = format!("worker a: hourly cap 10 reached; next message at {next}");
    assert_eq!(log.matches(&said).count(), 1, "said once: {log}");
    assert_eq!(
        p.strings("SELECT status FROM campaigns ORDER BY id"),
        vec!["finished", "running"],
        "#1 done by a, #2 left running for other workers: {log}"
    );
    assert_eq!(p.scalar("SELECT COUNT(*) FROM send_leases"), 0, "a left");

    // A restart under the same name gets no fresh hour.
    let (code, log) = worker_once(&p, &server, &["--name", "a", "--hourly-cap", "10"]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains(&said), "{log}");
    assert_eq!(server.messages().len(), 10, "nothing more from a: {log}");
    assert_eq!(
        p.strings("SELECT status FROM campaigns ORDER BY id"),
        vec!["finished", "running"]
    );

    // Another name, no cap: the rest.
    let (code, log) = worker_once(&p, &server, &["--name", "b"]);
    assert_eq!(code, 0, "{log}");
    let seen = per_recipient(&server.messages());
    assert_eq!(seen.len(), 35, "every recipient of both campaigns: {log}");
    assert!(seen.values().all(|c| *c == 1), "exactly once: {seen:?}");
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'"),
        35
    );
    assert_eq!(
        p.strings("SELECT status FROM campaigns ORDER BY id"),
        vec!["finished", "finished"]
    );
    assert_eq!(
        p.scalar("SELECT window_count FROM worker_pacing WHERE name = 'a'"),
        10,
        "b counts against no one's cap"
    );
}

#[test]
fn a_capped_worker_waits_in_the_campaign_with_its_lease_alive_until_others_finish_it() {
    let p = project_with(30);
    // A short lease, so that a heartbeat that stopped would show within the test.
    p.write("bulletin.toml", "[smtp]\nlease_secs = 2\n");
    let server = SmtpServer::start(p.path());
    schedule(&p, &server, "news");
    let capped = spawn(&p, &server, CAPPED_A);
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.messages().len() < 10 {
        assert!(Instant::now() < deadline, "worker a sent nothing");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Longer than its lease: a stays, its lease renewed, and sends nothing more.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(server.messages().len(), 10, "a stopped at its cap");
    let expires = p.strings("SELECT expires_at FROM send_leases WHERE name = 'a'");
    assert_eq!(expires.len(), 1, "a still holds its lease");
    assert!(
        expires[0] > time_from_now(Duration::ZERO),
        "a's lease is kept alive: {expires:?}"
    );

    // A second worker of the same name (the same outbound IP) shares the used-up cap: it
    // joins, sends nothing, and gives its lease up cleanly on SIGTERM.
    // Its log goes to a file the test can read while it runs: joining the campaign (its
    // lease row) comes before its first reservation, so the lease alone does not show that
    // it has met the cap, and a SIGTERM sent then would stop it before it tried.
    let twin_log_path = p.path().join("twin.log");
    let twin = Worker::new(
        p.std_cmd()
            .env("BULLETIN_SECRET", SECRET)
            .env("BULLETIN_SMTP_URL", server.url())
            .arg("worker")
            .args(CAPPED_A)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&twin_log_path).expect("twin log"))
            .spawn()
            .expect("spawn the twin"),
    );
    let read_twin_log = || std::fs::read_to_string(&twin_log_path).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !read_twin_log().contains("worker a: hourly cap 10 reached; next message at") {
        assert!(
            Instant::now() < deadline,
            "the twin never met the cap: {}",
            read_twin_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM send_leases WHERE name = 'a'"),
        2,
        "the twin joined the campaign beside the first a: {}",
        read_twin_log()
    );
    stop(twin);
    let twin_log = read_twin_log();
    assert_eq!(
        server.messages().len(),
        10,
        "the twin sent nothing: {twin_log}"
    );
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM send_leases WHERE name = 'a'"),
        1,
        "the twin's lease is given up, the first one's stands: {twin_log}"
    );

    let (code, log_b) = worker_once(&p, &server, &["--name", "b"]);
    assert_eq!(code, 0, "{log_b}");
    // a notices the campaign has nothing left for it and leaves; the last one out finishes it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.strings("SELECT status FROM campaigns") != vec!["finished".to_string()] {
        assert!(Instant::now() < deadline, "the campaign never finished");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = stop(capped);
    assert_eq!(
        log.matches("worker a: hourly cap 10 reached; next message at")
            .count(),
        1,
        "said once per window: {log}"
    );
    let seen = per_recipient(&server.messages());
    assert_eq!(seen.len(), 30, "{log}\n{log_b}");
    assert!(seen.values().all(|c| *c == 1), "exactly once: {seen:?}");
    assert_eq!(p.scalar("SELECT COUNT(*) FROM send_leases"), 0);
}

#[test]
fn an_hourly_cap_without_a_name_or_with_a_bad_value_is_refused() {
    let p = project_with(3);
    let server = SmtpServer::start(p.path());
    wait_until_past(schedule(&p, &server, "news"));

    let (code, err) = worker_once(&p, &server, &["--hourly-cap", "500"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--hourly-cap 500 needs --name")
            && err.contains("changes at every restart")
            && err.contains("--name mx1 --hourly-cap 500"),
        "why and the fix: {err}"
    );
    let (code, err) = worker_once(&p, &server, &["--name", "a", "--hourly-cap", "-5"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--hourly-cap -5") && err.contains("0 or more"),
        "{err}"
    );
    let (code, err) = worker_once(&p, &server, &["--name", "a", "--hourly-cap", "lots"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--hourly-cap"), "{err}");
    assert!(
        server.messages().is_empty(),
        "nothing sent by a refused worker"
    );
    assert_eq!(p.scalar("SELECT COUNT(*) FROM worker_pacing"), 0);

    // 0 is no cap of its own: no name needed, and everything goes.
    let (code, err) = worker_once(&p, &server, &["--hourly-cap", "0"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(server.messages().len(), 3, "{err}");
}

#[test]
fn workers_of_one_name_running_at_once_share_its_cap_exactly() {
    // Three processes, one name (one outbound IP), 12 an hour between them, on 40 readers:
    // their reservations take turns on the name's row, so exactly 12 leave.
    let p = project_with(40);
    let server = SmtpServer::start(p.path());
    wait_until_past(schedule(&p, &server, "news"));
    let twins: Vec<Worker> = (0..3)
        .map(|_| {
            spawn(
                &p,
                &server,
                &[
                    "--once",
                    "--name",
                    "ip1",
                    "--hourly-cap",
                    "12",
                    "--concurrency",
                    "3",
                ],
            )
        })
        .collect();
    let logs: Vec<String> = twins.into_iter().map(finish).collect();
    assert_eq!(server.messages().len(), 12, "{logs:#?}");
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'"),
        12
    );
    assert_eq!(
        p.scalar("SELECT window_count FROM worker_pacing WHERE name = 'ip1'"),
        12
    );
    assert_eq!(p.strings("SELECT status FROM campaigns"), vec!["running"]);
}
