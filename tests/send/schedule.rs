//! `send --at` and a single local `bulletin worker` on SQLite: a scheduled campaign is sent
//! only once its time has come, a cancelled one never, a time in the past is refused, and
//! `campaigns pause`/`resume` steer a worker's run.

use std::time::{Duration, Instant};

use crate::smtp::{
    SECRET, edition, held_server, per_recipient, project_with, release, run, wait_for_messages,
};
use crate::smtp_server::SmtpServer;
use crate::support::Project;
use crate::workers::{Worker, schedule_time, wait_until_past};

fn spawn_worker(p: &Project, server: &SmtpServer) -> Worker {
    Worker::spawn(
        p.std_cmd()
            .env("BULLETIN_SECRET", SECRET)
            .env("BULLETIN_SMTP_URL", server.url())
            .args(["worker", "--poll", "0.2", "--concurrency", "2"]),
    )
}

/// The test edition scheduled for list `news` in a moment, and a worker that will send it.
/// The moment is 2 s ahead: `send --at` refuses a time in the past, and on a loaded machine
/// the binary's start-up alone can take longer than a few hundred milliseconds.
fn scheduled_and_working(p: &Project, server: &SmtpServer) -> Worker {
    let (at, _) = schedule_time(Duration::from_secs(2));
    let (code, _, err) = run(
        p,
        &server.url(),
        &[],
        &["send", &edition(), "--list", "news", "--at", &at],
    );
    assert_eq!(code, 0, "{err}");
    spawn_worker(p, server)
}

/// SIGTERM to a running worker; asserts that it ends cleanly (exit code 0) and returns its
/// log.
pub(crate) fn stop(child: Worker) -> String {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "SIGTERM ends a worker cleanly: {err}"
    );
    err
}

#[test]
fn a_scheduled_campaign_is_sent_by_a_worker_only_once_its_time_has_come() {
    let p = project_with(20);
    let server = SmtpServer::start(p.path());
    // Far enough ahead that the worker is surely up and polling before the time comes, even
    // on a loaded machine.
    let (at, due) = schedule_time(Duration::from_secs(6));
    let (code, out, err) = run(
        &p,
        &server.url(),
        &[],
        &["send", &edition(), "--list", "news", "--at", &at],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("campaign #1 scheduled for"), "{out}");
    let worker = spawn_worker(&p, &server);
    let (_, out, _) = run(&p, &server.url(), &[], &["campaigns", "list"]);
    assert!(out.contains("scheduled for"), "{out}");
    wait_for_messages(&server, 20);
    let log = stop(worker);
    let first = server.arrival_times()[0];
    assert!(
        first >= due - Duration::from_millis(50),
        "sent {:?} before its time",
        due.duration_since(first).unwrap_or_default()
    );
    let seen = per_recipient(&server.messages());
    assert_eq!(seen.len(), 20);
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    assert_eq!(p.strings("SELECT status FROM campaigns"), vec!["finished"]);
    assert!(log.contains("scheduled time came"), "{log}");
}

#[test]
fn a_cancelled_scheduled_campaign_never_starts_and_a_past_time_is_refused() {
    let p = project_with(5);
    let server = SmtpServer::start(p.path());
    let (url, ed) = (server.url(), edition());
    // `send` of the test edition to news, scheduled by `at` (the time, then any --tz).
    let send_at = |at: &[&str]| {
        let mut args = vec!["send", ed.as_str(), "--list", "news", "--at"];
        args.extend_from_slice(at);
        run(&p, &url, &[], &args)
    };
    let (code, _, err) = send_at(&["2020-01-01T09:00+01:00"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is in the past"), "{err}");
    let (code, _, err) = send_at(&["2030-01-01T09:00"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--tz"), "a time without offset or zone: {err}");
    let (code, _, err) = send_at(&["2030-01-01T09:00", "--tz", "Mars/Olympus"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a known time zone"), "{err}");
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM campaigns"),
        0,
        "nothing recorded"
    );

    let (at, due) = schedule_time(Duration::from_secs(2));
    let (code, _, err) = run(
        &p,
        &server.url(),
        &[],
        &["send", &edition(), "--list", "news", "--at", &at],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&p, &server.url(), &[], &["campaigns", "cancel", "1"]);
    assert_eq!(code, 0, "{err}");
    // Its time has come: a worker would start it now, were it not cancelled.
    wait_until_past(due);
    let (code, _, err) = run(&p, &server.url(), &[], &["worker", "--once"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        server.messages().len(),
        0,
        "a cancelled campaign never starts"
    );
    assert_eq!(p.strings("SELECT status FROM campaigns"), vec!["cancelled"]);
    assert_eq!(p.scalar("SELECT COUNT(*) FROM deliveries"), 0);

    // A zone name: the local time is read in that zone, and listings show both.
    let (code, out, err) = run(&p, &server.url(), &[], &["lists", "add", "other"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = run(
        &p,
        &server.url(),
        &[],
        &[
            "subscribers",
            "add",
            "someone@example.org",
            "--list",
            "other",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(
        &p,
        &server.url(),
        &[],
        &[
            "send",
            &edition(),
            "--list",
            "other",
            "--at",
            "2030-07-01T09:00",
            "--tz",
            "Europe/Paris",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("2030-07-01 07:00 UTC (2030-07-01 09:00 Europe/Paris)"),
        "{out}"
    );
    assert_eq!(
        p.strings("SELECT scheduled_at FROM campaigns WHERE id = 2"),
        vec!["2030-07-01T07:00:00.000Z"]
    );
    // `send` before its time refuses, naming the way out; `--now` starts it at once.
    let (code, _, err) = run(
        &p,
        &server.url(),
        &[],
        &["send", &edition(), "--list", "other", "--yes"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is scheduled for"), "{err}");
    assert!(err.contains("campaigns cancel 2"), "{err}");
    let (code, _, err) = run(
        &p,
        &server.url(),
        &[],
        &["send", &edition(), "--list", "other", "--yes", "--now"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(server.messages().len(), 1);
    assert_eq!(
        p.strings("SELECT status FROM campaigns WHERE id = 2"),
        vec!["finished"]
    );
}

#[test]
fn pause_and_resume_steer_a_running_worker() {
    let p = project_with(60);
    // The worker is held after 10 messages until the pause is recorded: the pause surely
    // lands mid-campaign, not after a fast worker has finished.
    let (server, hold) = held_server(&p, 10);
    let worker = scheduled_and_working(&p, &server);
    wait_for_messages(&server, 10);
    let (code, _, err) = run(&p, &server.url(), &[], &["campaigns", "pause", "1"]);
    assert_eq!(code, 0, "{err}");
    release(&hold);
    // The worker notices the pause within a status check and a claim turn: it stops claiming,
    // and what it had in flight lands and is recorded. Wait for that (nothing in flight, and
    // no new message for half a second), however long the machine takes...
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = server.messages().len();
    let mut stable_since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = server.messages().len();
        if now != last {
            (last, stable_since) = (now, Instant::now());
        }
        let sending = p.scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'sending'");
        if sending == 0 && stable_since.elapsed() >= Duration::from_millis(500) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker never settled after the pause: {now} sent, {sending} in flight"
        );
    }
    // ...then nothing more leaves while paused.
    let after_pause = server.messages().len();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        server.messages().len(),
        after_pause,
        "nothing sent while paused"
    );
    assert!(
        after_pause < 60,
        "paused before the end: {after_pause} sent"
    );
    assert_eq!(p.strings("SELECT status FROM campaigns"), vec!["paused"]);
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'sending'"),
        0,
        "in-flight rows recorded"
    );
    let (code, _, err) = run(&p, &server.url(), &[], &["campaigns", "resume", "1"]);
    assert_eq!(code, 0, "{err}");
    wait_for_messages(&server, 60);
    let mut finished = false;
    for _ in 0..100 {
        if p.strings("SELECT status FROM campaigns") == vec!["finished".to_string()] {
            finished = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(finished);
    stop(worker);
    let seen = per_recipient(&server.messages());
    assert_eq!(seen.len(), 60);
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
}

#[test]
fn send_works_a_campaign_alone_and_workers_keep_off_it() {
    let p = project_with(40);
    // The worker is held after 5 messages until `send` has tried: it surely still holds the
    // campaign then, however fast it would otherwise finish.
    let (server, hold) = held_server(&p, 5);
    // A worker holds the campaign: `send` refuses, naming it.
    let worker = scheduled_and_working(&p, &server);
    wait_for_messages(&server, 5);
    let (code, _, err) = run(
        &p,
        &server.url(),
        &[],
        &["send", &edition(), "--list", "news", "--yes"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is being sent by `bulletin worker`"), "{err}");
    assert!(
        err.contains("`send` works a campaign alone, never beside workers"),
        "{err}"
    );
    release(&hold);
    wait_for_messages(&server, 40);
    stop(worker);
    let seen = per_recipient(&server.messages());
    assert_eq!(seen.len(), 40);
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
}

#[test]
fn a_worker_refuses_a_campaign_whose_edition_composes_to_other_content() {
    let p = project_with(5);
    let server = SmtpServer::start(p.path());
    // The edition inside the project folder: recorded relative to it.
    bulletin_testkit::copy_dir(std::path::Path::new(&edition()), &p.path().join("ed"));
    let (at, due) = schedule_time(Duration::from_secs(2));
    let (code, _, err) = run(
        &p,
        &server.url(),
        &[],
        &["send", "ed", "--list", "news", "--at", &at],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(p.strings("SELECT edition_path FROM campaigns"), vec!["ed"]);
    let hash = p.strings("SELECT content_hash FROM campaigns").remove(0);
    // This host's copy of the edition differs from the one the campaign was started with.
    let article = p.path().join("ed/articles/expected-outcomes.md");
    let mut text = std::fs::read_to_string(&article).expect("article");
    text.push_str("\nA sentence added after the campaign was scheduled.\n");
    std::fs::write(&article, text).expect("write article");
    wait_until_past(due);
    let (code, _, err) = run(&p, &server.url(), &[], &["worker", "--once"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("REFUSING campaign #1"), "{err}");
    assert!(err.contains("ed"), "names the path: {err}");
    assert!(err.contains(&hash), "names the campaign's hash: {err}");
    assert_eq!(server.messages().len(), 0, "never mixes content");
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM deliveries WHERE status <> 'queued'"),
        0
    );
}
