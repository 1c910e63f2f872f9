//! End-to-end send benchmark: `bulletin send` of the GLO.ACT edition to N recipients through
//! postfix's `smtp-sink` on loopback, against `smtp-source` (postfix's own load generator)
//! pushing the same number of messages of the same average size over 16 sessions to the same
//! sink in the same run: the physical limit of this machine. Measured without DKIM and with an
//! RSA-2048 key, each `BULLETIN_BENCH_ROUNDS` times (default 3, interleaved; 0 skips them),
//! compared by their medians; peak resident memory of the sender is reported too. Then the
//! crash window: how many readers get a second copy when a `--rate 100` send is killed with
//! SIGKILL and resumed.
//!
//! `cargo bench --bench send_e2e` (recipients: `BULLETIN_BENCH_RECIPIENTS`, default 20,000;
//! another build's binary: `BULLETIN_BENCH_BIN`;
//! needs `apt-get install postfix` for smtp-sink and smtp-source, and openssl).
//! `BULLETIN_BENCH_SCALE=1` instead runs the scale check: a 1,000,000-recipient campaign
//! imported, created, killed with SIGKILL half-way and resumed, with times and peak memory. Under
//! `cargo test --benches` it is a 200-recipient smoke pass against the Maildir outbox, so that
//! it cannot rot without needing postfix.
//! `BULLETIN_BENCH_WORKERS=1` with `BULLETIN_BENCH_POSTGRES_URL` (a URL of the server's
//! `postgres` database, from which each round makes its own) instead sends the campaign on
//! PostgreSQL with 1, 2 and 3 `bulletin worker --once` processes sharing it, interleaved with
//! smtp-source to the same sink, `BULLETIN_BENCH_ROUNDS` times (issue #16).

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "bench-secret-bench-secret-bench-secret-01";

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("BULLETIN_BENCH_RECIPIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 20_000 } else { 200 });
    let dir = tempfile::tempdir().expect("temp dir");
    let edition = Path::new(env!("CARGO_MANIFEST_DIR")).join("editions/glo-act-special-edition");
    if !benching {
        let db = prepare(dir.path(), "smoke", n, None);
        let outbox = dir.path().join("outbox");
        let mut cmd = send_to(&db, None, &edition);
        cmd.arg("--outbox").arg(&outbox);
        let (elapsed, _, ok) = measure(cmd);
        assert!(ok, "send failed");
        let count = std::fs::read_dir(outbox.join("new"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(count, n, "every recipient delivered once");
        println!(
            "send_e2e smoke: {n} messages into the outbox in {:.2} s",
            elapsed.as_secs_f64()
        );
        return;
    }

    if std::env::var_os("BULLETIN_BENCH_SCALE").is_some() {
        scale(dir.path(), &edition);
        return;
    }
    if std::env::var_os("BULLETIN_BENCH_WORKERS").is_some() {
        workers(dir.path(), &edition, n);
        return;
    }
    let rounds: usize = std::env::var("BULLETIN_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    if rounds == 0 {
        crash_window(dir.path(), &edition);
        return;
    }

    let port = free_port();
    let _sink = Sink::start(port);
    let relay = format!("smtp://127.0.0.1:{port}");
    println!("send_e2e: {n} recipients, smtp-sink on 127.0.0.1:{port}, {rounds} rounds");
    let key = dir.path().join("dkim.pem");
    bulletin_testkit::dkim::generate_key(&key, bulletin_testkit::dkim::KeyKind::RsaPkcs8);

    // The three are interleaved round by round, so that a slow spell of the machine falls on
    // all of them rather than on one.
    let (mut plain, mut dkim, mut reference) = (Vec::new(), Vec::new(), Vec::new());
    let (mut rss_plain, mut rss_dkim, mut avg) = (0, 0, 0);
    for round in 0..rounds {
        let db = prepare(dir.path(), &format!("plain{round}"), n, None);
        let (t, rss, ok) = measure(send(&db, &relay, &edition));
        assert!(ok, "send failed");
        plain.push(t);
        rss_plain = rss_plain.max(rss);
        if round == 0 {
            avg = (last_run_bytes(&db, n) / n as u64).max(1);
        }

        let db = prepare(dir.path(), &format!("dkim{round}"), n, Some(&key));
        let (t, rss, ok) = measure(send(&db, &relay, &edition));
        assert!(ok, "signed send failed");
        dkim.push(t);
        rss_dkim = rss_dkim.max(rss);

        let mut source = Command::new("smtp-source");
        source
            .args(["-s", "16", "-m", &n.to_string(), "-l", &avg.to_string()])
            .args(["-f", "newsletter@example.org", "-t", "reader@example.org"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null());
        let (t, _, ok) = measure(source);
        assert!(ok, "smtp-source failed");
        reference.push(t);

        let rate = |t: Duration| n as f64 / t.as_secs_f64();
        println!(
            "round {}: smtp-source {:.0} msg/s, bulletin {:.0} msg/s ({:.2}x), signed {:.0} msg/s ({:.2}x)",
            round + 1,
            rate(reference[round]),
            rate(plain[round]),
            rate(plain[round]) / rate(reference[round]),
            rate(dkim[round]),
            rate(dkim[round]) / rate(reference[round]),
        );
    }

    let rate = |t: Duration| n as f64 / t.as_secs_f64();
    let (t_ref, t_plain, t_dkim) = (median(reference), median(plain), median(dkim));
    println!("medians of {rounds} rounds:");
    println!("message size (average):  {:.1} KB", avg as f64 / 1024.0);
    println!("smtp-source (reference): {:>8.0} msg/s", rate(t_ref));
    println!(
        "bulletin, no DKIM:       {:>8.0} msg/s  = {:.2}x smtp-source, peak RSS {:.0} MB",
        rate(t_plain),
        rate(t_plain) / rate(t_ref),
        rss_plain as f64 / 1024.0
    );
    println!(
        "bulletin, RSA-2048 DKIM: {:>8.0} msg/s  = {:.2}x smtp-source, peak RSS {:.0} MB",
        rate(t_dkim),
        rate(t_dkim) / rate(t_ref),
        rss_dkim as f64 / 1024.0
    );
    crash_window(dir.path(), &edition);
}

/// Issue #16's worker benchmark: the campaign on PostgreSQL, sent by 1, 2 and 3 `bulletin
/// worker --once` processes at once (each with the default pool), against smtp-source to the
/// same sink; medians of `BULLETIN_BENCH_ROUNDS` interleaved rounds. The clock runs from the
/// workers' start to the last one's exit (each exits when nothing is left to claim).
fn workers(root: &Path, edition: &Path, n: usize) {
    let admin = std::env::var("BULLETIN_BENCH_POSTGRES_URL")
        .expect("BULLETIN_BENCH_WORKERS needs BULLETIN_BENCH_POSTGRES_URL (postgres://USER@HOST:PORT/postgres)");
    let rounds: usize = std::env::var("BULLETIN_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let port = free_port();
    let _sink = Sink::start(port);
    let relay = format!("smtp://127.0.0.1:{port}");
    println!(
        "send_e2e workers: {n} recipients on PostgreSQL, smtp-sink on 127.0.0.1:{port}, {rounds} rounds"
    );
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); 4];
    let mut avg = 0;
    for round in 0..rounds {
        for (count, slot) in times.iter_mut().enumerate().skip(1) {
            let name = format!("bench_w{count}_r{round}_{}", std::process::id());
            let psql = |sql: &str| {
                let status = Command::new("psql")
                    .args([admin.as_str(), "-q", "-c", sql])
                    .stdout(Stdio::null())
                    .status()
                    .expect("psql (apt-get install postgresql-client)");
                assert!(status.success(), "{sql}");
            };
            psql(&format!("DROP DATABASE IF EXISTS {name}"));
            psql(&format!("CREATE DATABASE {name}"));
            let db = bulletin_testkit::backend::with_database(&admin, &name);
            let dir = root.join(&name);
            prepare_at(&dir, &db, n, None);
            if avg == 0 {
                avg = (last_run_bytes(&db, n) / n as u64).max(1);
            }
            let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
            let at = at
                .format(&time::format_description::well_known::Rfc3339)
                .expect("time");
            let status = bulletin(&db, Some(&relay))
                .current_dir(&dir)
                .args([
                    "send",
                    edition.to_str().expect("path"),
                    "--list",
                    "news",
                    "--at",
                    &at,
                    "--yes",
                ])
                .status()
                .expect("schedule");
            assert!(status.success(), "send --at");
            std::thread::sleep(Duration::from_millis(1200));
            let start = Instant::now();
            let mut children: Vec<Child> = (0..count)
                .map(|_| {
                    bulletin(&db, Some(&relay))
                        .current_dir(&dir)
                        .args(["worker", "--once"])
                        .spawn()
                        .expect("worker")
                })
                .collect();
            for child in &mut children {
                assert!(child.wait().expect("worker").success(), "worker failed");
            }
            slot.push(start.elapsed());
            psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
        let mut source = Command::new("smtp-source");
        source
            .args(["-s", "16", "-m", &n.to_string(), "-l", &avg.to_string()])
            .args(["-f", "newsletter@example.org", "-t", "reader@example.org"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null());
        let (t, _, ok) = measure(source);
        assert!(ok, "smtp-source failed");
        times[0].push(t);
        let rate = |t: Duration| n as f64 / t.as_secs_f64();
        println!(
            "round {}: smtp-source {:.0} msg/s; workers 1: {:.0}, 2: {:.0}, 3: {:.0} msg/s",
            round + 1,
            rate(times[0][round]),
            rate(times[1][round]),
            rate(times[2][round]),
            rate(times[3][round]),
        );
    }
    let rate = |t: Duration| n as f64 / t.as_secs_f64();
    let reference = rate(median(times[0].clone()));
    println!(
        "medians of {rounds} rounds, message size {:.1} KB:",
        avg as f64 / 1024.0
    );
    println!("smtp-source (reference): {reference:>8.0} msg/s");
    for (count, t) in times.iter().enumerate().skip(1) {
        let r = rate(median(t.clone()));
        println!(
            "{count} worker(s) on PostgreSQL: {r:>8.0} msg/s  = {:.2}x smtp-source",
            r / reference
        );
    }
}

/// #15's crash window: `send --rate 100 --concurrency 8` to an smtp-sink that keeps every
/// message, killed with SIGKILL after 200 messages and resumed, three times; prints how many
/// readers got a second copy and how many rows the kill left `sending`.
fn crash_window(root: &Path, edition: &Path) {
    for attempt in 1..=3 {
        let port = free_port();
        let dump = root.join(format!("dump{attempt}"));
        std::fs::create_dir_all(&dump).expect("dump folder");
        // smtp-sink drops its privileges to `nobody`, who must be able to write there.
        let _ = Command::new("chmod").arg("777").arg(&dump).status();
        let _sink = Sink::spawn(port, Some(&dump));
        let relay = format!("smtp://127.0.0.1:{port}");
        let db = prepare(root, &format!("crash{attempt}"), 600, None);
        let mut cmd = send_to(&db, Some(&relay), edition);
        cmd.args(["--rate", "100", "--concurrency", "8"]);
        let mut child = cmd.spawn().expect("spawn send");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::fs::read_dir(&dump).map(|d| d.count()).unwrap_or(0) < 200 {
            assert!(Instant::now() < deadline, "the send made no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        let file = db.strip_prefix("sqlite://").expect("sqlite URL");
        let out = Command::new("sqlite3")
            .args([
                file,
                "SELECT COUNT(*) FROM deliveries WHERE status = 'sending'",
            ])
            .output()
            .expect("sqlite3");
        let sending = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let (_, _, ok) = measure(send(&db, &relay, edition));
        assert!(ok, "resumed send failed");
        std::thread::sleep(Duration::from_millis(200));
        let mut copies = std::collections::BTreeMap::<String, usize>::new();
        for entry in std::fs::read_dir(&dump).expect("dump folder").flatten() {
            let text = std::fs::read(entry.path()).unwrap_or_default();
            let text = String::from_utf8_lossy(&text);
            for rcpt in text.lines().filter(|l| l.starts_with("X-Rcpt-Args:")) {
                *copies.entry(rcpt.to_string()).or_default() += 1;
            }
        }
        let twice = copies.values().filter(|&&n| n > 1).count();
        println!(
            "kill -9 under --rate 100, pool 8 (try {attempt}): {} readers, {twice} got a second copy; the kill left {sending} rows sending",
            copies.len()
        );
        assert_eq!(copies.len(), 600, "nobody skipped");
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// `bulletin send` of `edition` to list `news` over 16 connections.
fn send(db: &str, relay: &str, edition: &Path) -> Command {
    let mut cmd = send_to(db, Some(relay), edition);
    cmd.args(["--concurrency", "16"]);
    cmd
}

/// `bulletin send` of `edition` to list `news`, through `relay` when given.
fn send_to(db: &str, relay: Option<&str>, edition: &Path) -> Command {
    let mut cmd = bulletin(db, relay);
    cmd.args([
        "send",
        edition.to_str().expect("path"),
        "--list",
        "news",
        "--yes",
    ]);
    cmd
}

/// The scale run (`BULLETIN_BENCH_SCALE=1`, recipients `BULLETIN_BENCH_RECIPIENTS`, default
/// 1,000,000): import, campaign creation, a send killed with SIGKILL half-way and resumed, each
/// with its time and the sender's peak resident memory.
fn scale(root: &Path, edition: &Path) {
    let n: usize = std::env::var("BULLETIN_BENCH_RECIPIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let port = free_port();
    let _sink = Sink::start(port);
    let relay = format!("smtp://127.0.0.1:{port}");
    println!("send_e2e scale: {n} recipients, smtp-sink on 127.0.0.1:{port}");

    let started = Instant::now();
    let db = prepare(root, "scale", n, None);
    println!("import: {:.1} s", started.elapsed().as_secs_f64());
    let file = db
        .strip_prefix("sqlite://")
        .expect("sqlite URL")
        .to_string();
    let count = |sql: &str| -> u64 {
        let out = Command::new("sqlite3")
            .args(["-cmd", ".timeout 5000", &file, sql])
            .output()
            .expect("sqlite3 (apt-get install sqlite3)");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    };

    // First run: watch the campaign appear, then kill -9 half-way through.
    let started = Instant::now();
    let mut child = send(&db, &relay, edition).spawn().expect("spawn send");
    let status_path = format!("/proc/{}/status", child.id());
    let (mut peak, mut created, mut sending_since) = (0u64, None, None);
    loop {
        peak = peak.max(vm_hwm(&status_path));
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the send ended ({status}) before it was killed");
        }
        if created.is_none() && count("SELECT COUNT(*) FROM deliveries") >= n as u64 {
            created = Some(started.elapsed());
            sending_since = Some(Instant::now());
        }
        if created.is_some()
            && count("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'") >= n as u64 / 2
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let first_sent = count("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'");
    let first_time = sending_since.map_or(Duration::ZERO, |s| s.elapsed());
    let in_flight = count("SELECT COUNT(*) FROM deliveries WHERE status = 'sending'");
    let created = created.unwrap_or_default();
    println!(
        "campaign created with {n} deliveries in {:.1} s (observed every 250 ms)",
        created.as_secs_f64()
    );
    println!(
        "first run: {first_sent} sent in {:.1} s ({:.0} msg/s), killed with {in_flight} in flight, peak RSS {:.0} MB",
        first_time.as_secs_f64(),
        first_sent as f64 / first_time.as_secs_f64().max(0.001),
        peak as f64 / 1024.0
    );

    let (t, rss, ok) = measure(send(&db, &relay, edition));
    assert!(ok, "resumed send failed");
    let sent = count("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'");
    println!(
        "resumed: {} more sent in {:.1} s ({:.0} msg/s incl. start-up), peak RSS {:.0} MB",
        sent - first_sent,
        t.as_secs_f64(),
        (sent - first_sent) as f64 / t.as_secs_f64(),
        rss as f64 / 1024.0
    );
    assert_eq!(sent, n as u64, "every recipient sent once the resume ended");
}

/// A project folder with list `news` and `n` subscribers; returns its database URL.
fn prepare(root: &Path, name: &str, n: usize, dkim: Option<&Path>) -> String {
    let dir = root.join(name);
    let db = format!("sqlite://{}", dir.join("bench.db").display());
    prepare_at(&dir, &db, n, dkim);
    db
}

/// A project in `dir` whose database `db` holds list `news` with `n` subscribers.
fn prepare_at(dir: &Path, db: &str, n: usize, dkim: Option<&Path>) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut config = String::from(
        "[list]\nname = \"GLO.ACT Newsletter\"\nid = \"glo-act.newsletter.example.org\"\nfrom = \"GLO.ACT <newsletter@example.org>\"\n",
    );
    if let Some(key) = dkim {
        config.push_str(&format!(
            "[dkim]\ndomain = \"example.org\"\nselector = \"news\"\nkey_file = \"{}\"\n",
            key.display()
        ));
    }
    std::fs::write(dir.join("bulletin.toml"), config).expect("config");
    let csv = dir.join("people.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv).expect("csv"));
    writeln!(out, "email,name,lang,lists").expect("write");
    for i in 0..n {
        let lang = if i % 3 == 0 { "fr" } else { "en" };
        writeln!(
            out,
            "reader{i}@example{}.org,Reader {i},{lang},news",
            i % 50
        )
        .expect("write");
    }
    out.flush().expect("flush");
    drop(out);
    for args in [
        vec!["lists", "add", "news"],
        vec!["-q", "subscribers", "import", csv.to_str().expect("path")],
    ] {
        let status = bulletin(db, None)
            .current_dir(dir)
            .args(&args)
            .stderr(Stdio::null())
            .status()
            .expect("bulletin");
        assert!(status.success(), "{args:?}");
    }
}

fn bulletin(db: &str, relay: Option<&str>) -> Command {
    // BULLETIN_BENCH_BIN runs another build of bulletin through the same harness, so that two
    // builds can be compared on equal work in one session.
    let bin = std::env::var_os("BULLETIN_BENCH_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_bulletin").into());
    let mut cmd = Command::new(bin);
    if let Some(dir) = db
        .strip_prefix("sqlite://")
        .and_then(|p| Path::new(p).parent())
    {
        cmd.current_dir(dir);
    }
    cmd.env("BULLETIN_DATABASE_URL", db)
        .env("BULLETIN_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(relay) = relay {
        cmd.env("BULLETIN_SMTP_URL", relay);
    }
    cmd
}

/// Bytes of the messages built by the last send, from the database's sizes (recomputed with
/// a dry run, which builds the same messages).
fn last_run_bytes(db: &str, n: usize) -> u64 {
    let edition = Path::new(env!("CARGO_MANIFEST_DIR")).join("editions/glo-act-special-edition");
    let out = bulletin(db, None)
        .args([
            "--json",
            "send",
            edition.to_str().expect("path"),
            "--list",
            "news",
            "--dry-run",
        ])
        .stdout(Stdio::piped())
        .output()
        .expect("dry run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["bytes"].as_u64().unwrap_or(n as u64 * 60_000)
}

struct Sink(Child);

impl Sink {
    fn start(port: u16) -> Self {
        Self::spawn(port, None)
    }

    /// An smtp-sink on `port`; with `dump`, each message is kept as a file there (`-d`).
    fn spawn(port: u16, dump: Option<&Path>) -> Self {
        let mut cmd = Command::new("smtp-sink");
        cmd.args(["-u", "nobody", "-m", "64"]);
        if let Some(dir) = dump {
            cmd.arg("-d").arg(format!("{}/%H%M%S.", dir.display()));
        }
        let child = cmd
            .arg(format!("127.0.0.1:{port}"))
            .arg("256")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("smtp-sink (apt-get install postfix)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "smtp-sink did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self(child)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

/// Wall time, peak resident memory (KiB, from the kernel's VmHWM) and success.
fn measure(mut cmd: Command) -> (Duration, u64, bool) {
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        peak = peak.max(vm_hwm(&status_path));
        if let Ok(Some(status)) = child.try_wait() {
            return (start.elapsed(), peak, status.success());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A process's peak resident memory so far (KiB, the kernel's VmHWM), 0 once it is gone.
fn vm_hwm(status_path: &str) -> u64 {
    std::fs::read_to_string(status_path)
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
}
