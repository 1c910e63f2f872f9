//! `bulletin worker`: several real worker processes on one **PostgreSQL** database and one
//! real SMTP server process share a campaign — each recipient gets exactly one message, each
//! row is claimed by one worker, a `kill -9`ed worker's rows are sent again by the others, and
//! the campaign's rate cap holds across workers (measured at the SMTP server).
//!
//! They run in the PostgreSQL pass of `./test.sh` (the SQLite pass has no server to share):
//! each creates and drops its own database on `BULLETIN_TEST_POSTGRES_URL`, and fails, never
//! skips, without it.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

use crate::smtp::{SECRET, edition, per_recipient};
use crate::smtp_server::SmtpServer;
use crate::support::{Project, block_on};

/// True in the SQLite pass, where these tests have no server to share and return at once
/// (saying so); they run in the PostgreSQL pass.
fn sqlite_pass() -> bool {
    use bulletin_testkit::backend::Backend;
    if Backend::current() == Backend::Postgres {
        return false;
    }
    eprintln!("several workers on one PostgreSQL: runs in the PostgreSQL pass");
    true
}

/// A database of its own on the test PostgreSQL server, dropped when the test ends.
pub(crate) struct Pg {
    admin: String,
    name: String,
    /// The database's URL, for `BULLETIN_DATABASE_URL`.
    pub url: String,
}

impl Pg {
    pub(crate) fn new(tag: &str) -> Self {
        let admin = std::env::var("BULLETIN_TEST_POSTGRES_URL").expect(
            "BULLETIN_TEST_POSTGRES_URL must name a PostgreSQL server for the worker tests \
             (e.g. postgres://bulletin_test@127.0.0.1:55432/postgres); ./test.sh sets it",
        );
        let name = format!("bulletin_{tag}_{}", std::process::id());
        let pg = Self {
            // The server's URL with this database, keeping its options (the role, sslmode).
            url: bulletin_testkit::backend::with_database(&admin, &name),
            admin,
            name,
        };
        pg.admin_sql(&format!("DROP DATABASE IF EXISTS {}", pg.name));
        pg.admin_sql(&format!("CREATE DATABASE {}", pg.name));
        pg
    }

    fn admin_sql(&self, sql: &str) {
        let (url, sql) = (self.admin.clone(), sql.to_string());
        block_on(async move {
            let mut c = PgConnection::connect(&url)
                .await
                .expect("connect to BULLETIN_TEST_POSTGRES_URL");
            sqlx::raw_sql(&sql)
                .execute(&mut c)
                .await
                .expect("admin SQL");
        });
    }

    /// One number from the database.
    pub(crate) fn scalar(&self, sql: &str) -> i64 {
        let (url, sql) = (self.url.clone(), sql.to_string());
        block_on(async move {
            let mut c = PgConnection::connect(&url).await.expect("connect");
            sqlx::query_scalar::<_, i64>(&sql)
                .fetch_one(&mut c)
                .await
                .expect("query")
        })
    }

    /// Rows of text from the database.
    pub(crate) fn strings(&self, sql: &str) -> Vec<String> {
        let (url, sql) = (self.url.clone(), sql.to_string());
        block_on(async move {
            let mut c = PgConnection::connect(&url).await.expect("connect");
            sqlx::query_scalar::<_, String>(&sql)
                .fetch_all(&mut c)
                .await
                .expect("query")
        })
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let url = self.admin.clone();
        let _ = std::panic::catch_unwind(|| {
            block_on(async move {
                if let Ok(mut c) = PgConnection::connect(&url).await {
                    let _ = sqlx::raw_sql(&sql).execute(&mut c).await;
                }
            })
        });
    }
}

/// The binary in the project folder, on `pg`'s database, relaying to `server`.
fn bulletin(p: &Project, pg: &Pg, server: &SmtpServer) -> Command {
    let mut cmd = p.std_cmd();
    cmd.env("BULLETIN_SECRET", SECRET)
        .env("BULLETIN_SMTP_URL", server.url())
        .env("BULLETIN_DATABASE_URL", &pg.url);
    cmd
}

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("binary runs");
    assert!(
        out.status.success(),
        "{:?} failed: {}\n{}",
        cmd.get_args().collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// List `news` with `n` confirmed subscribers on `pg`, and a campaign of the test edition for
/// it scheduled a moment from now (`extra` adds send options, e.g. `--rate`); returns when
/// it is due.
fn campaign_on_postgres(p: &Project, pg: &Pg, server: &SmtpServer, n: usize, extra: &[&str]) {
    ok(bulletin(p, pg, server).args(["lists", "add", "news"]));
    let mut csv = String::from("email,name,lang,lists\n");
    for i in 0..n {
        csv.push_str(&format!("reader{i}@example.org,Reader {i},en,news\n"));
    }
    p.write("people.csv", csv);
    ok(bulletin(p, pg, server).args(["subscribers", "import", "people.csv"]));
    let (at, due) = schedule_time(Duration::from_secs(2));
    ok(bulletin(p, pg, server)
        .args(["send", &edition(), "--list", "news", "--at", &at])
        .args(extra));
    wait_until_past(due);
}

/// RFC 3339 UTC, `after` from now, to the millisecond.
pub(crate) fn time_from_now(after: Duration) -> String {
    rfc3339_ms(std::time::SystemTime::now() + after)
}

/// `t` as RFC 3339 UTC to the millisecond, the form the store writes (so that the strings
/// compare as times). Formatted in-process, by the store's own formatter (this is input, not
/// a check of the binary's output): spawning `date` for it cost enough time on a loaded
/// machine to push a time meant to be just ahead into the past.
pub(crate) fn rfc3339_ms(t: std::time::SystemTime) -> String {
    bulletin::store::timestamp(time::OffsetDateTime::from(t))
}

/// A time the store wrote (RFC 3339), as seconds since the Unix epoch.
pub(crate) fn epoch_seconds(stored: &str) -> f64 {
    let t = time::OffsetDateTime::parse(stored, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{stored:?} is not an RFC 3339 time: {e}"));
    t.unix_timestamp_nanos() as f64 / 1e9
}

/// A time to give `--at`: `after` from now (as `--at` takes it), and the same instant as a
/// clock reading, to wait for.
pub(crate) fn schedule_time(after: Duration) -> (String, std::time::SystemTime) {
    let due = std::time::SystemTime::now() + after;
    (rfc3339_ms(due), due)
}

/// Returns once the system clock has passed `due` (with a margin for the store's millisecond
/// rounding), so that a `worker --once` started next finds the campaign due.
pub(crate) fn wait_until_past(due: std::time::SystemTime) {
    let due = due + Duration::from_millis(50);
    while let Ok(left) = due.duration_since(std::time::SystemTime::now()) {
        std::thread::sleep(left.min(Duration::from_millis(100)) + Duration::from_millis(1));
    }
}

/// `seconds` since the Unix epoch in UTC, written by the system's `date` with `format`: a
/// formatter independent of the binary's, to check its times against.
pub(crate) fn utc_date(seconds: &str, format: &str) -> String {
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{seconds}"), &format!("+{format}")])
        .output()
        .expect("date runs");
    String::from_utf8(out.stdout)
        .expect("ASCII")
        .trim()
        .to_string()
}

/// A worker process, killed if a failing test leaves it running.
pub(crate) struct Worker(Option<Child>);

impl Worker {
    pub(crate) fn new(child: Child) -> Self {
        Self(Some(child))
    }

    /// Starts `cmd` (a `bulletin worker …`), its log on a pipe for [`Worker::wait`].
    pub(crate) fn spawn(cmd: &mut Command) -> Self {
        Self::new(
            cmd.stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn worker"),
        )
    }

    pub(crate) fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// `kill -9`.
    fn kill(&mut self) {
        if let Some(c) = self.0.as_mut() {
            c.kill().expect("kill -9");
            let _ = c.wait();
        }
    }

    pub(crate) fn wait(mut self) -> std::process::Output {
        self.0
            .take()
            .expect("running")
            .wait_with_output()
            .expect("worker exits")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn_worker(p: &Project, pg: &Pg, server: &SmtpServer, args: &[&str]) -> Worker {
    Worker::spawn(bulletin(p, pg, server).arg("worker").args(args))
}

/// Waits for a worker to end; asserts that it ended well (exit code 0) and returns its log.
pub(crate) fn finish(child: Worker) -> String {
    let out = child.wait();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err}");
    err
}

#[test]
fn three_workers_share_a_campaign_and_every_recipient_gets_exactly_one_message() {
    if sqlite_pass() {
        return;
    }
    let p = Project::new();
    let pg = Pg::new("share");
    let server = SmtpServer::start(p.path());
    let n = 2000;
    campaign_on_postgres(&p, &pg, &server, n, &[]);
    let workers: Vec<Worker> = ["w1", "w2", "w3"]
        .iter()
        .map(|name| {
            spawn_worker(
                &p,
                &pg,
                &server,
                &["--once", "--name", name, "--concurrency", "4"],
            )
        })
        .collect();
    let logs: Vec<String> = workers.into_iter().map(finish).collect();
    let seen = per_recipient(&server.messages());
    assert_eq!(seen.len(), n, "every recipient received it");
    assert!(
        seen.values().all(|c| *c == 1),
        "exactly once: {:?}",
        seen.iter().filter(|(_, c)| **c > 1).collect::<Vec<_>>()
    );
    assert_eq!(
        pg.scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'"),
        i64::try_from(n).expect("a small count")
    );
    assert_eq!(pg.strings("SELECT status FROM campaigns"), vec!["finished"]);
    // Each row was claimed once, by one worker: one attempt per row, one owner on each, and
    // every worker took its share.
    assert_eq!(
        pg.scalar("SELECT COUNT(*) FROM delivery_attempts"),
        i64::try_from(n).expect("a small count"),
        "one attempt per row"
    );
    assert_eq!(
        pg.scalar("SELECT COUNT(*) FROM deliveries WHERE claimed_by IS NULL"),
        0
    );
    assert_eq!(
        pg.scalar("SELECT COUNT(DISTINCT claimed_by) FROM deliveries"),
        3,
        "all three workers claimed rows: {logs:?}"
    );
    assert_eq!(
        pg.scalar("SELECT COUNT(*) FROM send_leases"),
        0,
        "leases given up"
    );
    assert!(
        logs.iter()
            .filter(|l| l.contains("scheduled time came"))
            .count()
            == 1,
        "one worker started it: {logs:?}"
    );
}

#[test]
fn a_killed_worker_s_rows_are_sent_again_by_the_others_and_the_campaign_finishes() {
    if sqlite_pass() {
        return;
    }
    let p = Project::new();
    let pg = Pg::new("kill");
    let server = SmtpServer::faulty(p.path(), "delay=0.01");
    let n = 600;
    let concurrency = 4;
    campaign_on_postgres(&p, &pg, &server, n, &[]);
    let args = |name: &'static str| vec!["--name", name, "--concurrency", "4", "--poll", "0.3"];
    let mut victim = spawn_worker(&p, &pg, &server, &args("victim"));
    let others: Vec<Worker> = ["w2", "w3"]
        .iter()
        .map(|name| spawn_worker(&p, &pg, &server, &args(name)))
        .collect();
    // Mid-campaign, and only once the victim is sending.
    let deadline = Instant::now() + Duration::from_secs(60);
    while pg.scalar(
        "SELECT COUNT(*) FROM deliveries d JOIN send_leases l ON l.owner = d.claimed_by
         WHERE l.name = 'victim' AND d.status = 'sent'",
    ) < 20
    {
        assert!(Instant::now() < deadline, "the victim never sent");
        std::thread::sleep(Duration::from_millis(20));
    }
    victim.kill();
    // The others finish the campaign, the victim's in-flight rows included.
    let deadline = Instant::now() + Duration::from_secs(120);
    while pg.strings("SELECT status FROM campaigns") != vec!["finished".to_string()] {
        assert!(
            Instant::now() < deadline,
            "campaign not finished: {:?}",
            pg.strings("SELECT status || ' ' || COUNT(*) FROM deliveries GROUP BY status")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for w in &others {
        let status = Command::new("kill")
            .args(["-TERM", &w.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
    let logs: Vec<String> = others.into_iter().map(finish).collect();
    let seen = per_recipient(&server.messages());
    assert_eq!(seen.len(), n, "every recipient received it");
    let duplicates: usize = seen.values().map(|c| c - 1).sum();
    assert!(
        duplicates <= concurrency,
        "duplicates ({duplicates}) at most what the killed worker had in flight ({concurrency})"
    );
    let resent = pg.scalar("SELECT COUNT(*) FROM delivery_attempts WHERE outcome = 'uncertain'");
    assert!(
        resent >= 1 && resent <= i64::try_from(concurrency).expect("a small count"),
        "the victim's in-flight rows, no others, became uncertain: {resent}; {logs:?}"
    );
    assert_eq!(
        pg.scalar("SELECT COUNT(*) FROM deliveries WHERE status <> 'sent'"),
        0
    );
    assert_eq!(pg.scalar("SELECT COUNT(*) FROM send_leases"), 0);
}

#[test]
fn the_campaign_rate_holds_across_two_workers() {
    if sqlite_pass() {
        return;
    }
    // 120 messages at 20/s shared by two workers must take about 6 s (119 intervals of 50 ms,
    // less at most four slots of slack after the start); two workers each pacing 20/s alone
    // would take 3 s.
    let p = Project::new();
    let pg = Pg::new("rate");
    let server = SmtpServer::start(p.path());
    campaign_on_postgres(&p, &pg, &server, 120, &["--rate", "20"]);
    let workers: Vec<Worker> = ["w1", "w2"]
        .iter()
        .map(|name| {
            spawn_worker(
                &p,
                &pg,
                &server,
                &["--once", "--name", name, "--concurrency", "4"],
            )
        })
        .collect();
    let logs: Vec<String> = workers.into_iter().map(finish).collect();
    let times = server.arrival_times();
    assert_eq!(times.len(), 120);
    // The cap is on departures: when each message's attempt began, as the workers recorded
    // it. Between the 30th and the 90th departure (in time order) lie 60 slots of the shared
    // schedule, 3.0 s: each message leaves no sooner than its slot, and the schedule never
    // moves earlier (a late start catches up at most four slots, a longer stall restarts it
    // from then). Quantiles rather than the first and last message: a loaded machine that
    // delays the first message's start by half a second shortens the whole span by as much,
    // but moves the 30th departure only to a later slot's time. The margin (0.5 s, so 2.5 s)
    // is for such delays; two workers pacing alone (40/s together) take 1.5 s, a burst none.
    let departed: Vec<f64> = pg
        .strings(
            "SELECT started_at FROM delivery_attempts WHERE outcome = 'sent' ORDER BY started_at",
        )
        .iter()
        .map(|t| epoch_seconds(t))
        .collect();
    assert_eq!(departed.len(), 120, "one attempt each: {logs:?}");
    let middle = departed[90] - departed[30];
    assert!(
        middle >= 60.0 / 20.0 - 0.5,
        "the 30th to the 90th message at 20/s across two workers left within {middle:.2} s: \
         the shared cap did not hold; {logs:?}"
    );
    let span = departed[119] - departed[0];
    assert!(span < 12.0, "far slower than the cap: {span:.2} s");
    let owners: BTreeSet<String> = pg
        .strings("SELECT DISTINCT claimed_by FROM deliveries")
        .into_iter()
        .collect();
    assert_eq!(owners.len(), 2, "both workers sent: {logs:?}");
    // The worst three seconds at the server hold at most the rate (plus the pacer's slack of
    // five slots). Three, not one: the cap paces when messages leave, the server sees them
    // arrive, and under load (other tests run beside this one) delivery times vary by a few
    // hundred milliseconds, which bunched 26-28 arrivals into single seconds of a correctly
    // paced run. Without the shared cap the two workers send all 120 within a second or so.
    let mut worst = 0;
    for (i, t) in times.iter().enumerate() {
        let within = times[i..]
            .iter()
            .take_while(|u| u.duration_since(*t).unwrap_or_default() < Duration::from_secs(3))
            .count();
        worst = worst.max(within);
    }
    assert!(
        worst <= 3 * 20 + 5,
        "{worst} messages in three seconds at 20/s"
    );
}
