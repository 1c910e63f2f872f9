//! End-to-end send benchmark: `bulletin send` of the GLO.ACT edition to N recipients through
//! postfix's `smtp-sink` on loopback, against `smtp-source` (postfix's own load generator)
//! pushing the same number of messages of the same average size over 16 sessions to the same
//! sink in the same run: the physical limit of this machine. Measured without DKIM and with an
//! RSA-2048 key; peak resident memory of the sender is reported too.
//!
//! `cargo bench --bench send_e2e` (recipients: `BULLETIN_BENCH_RECIPIENTS`, default 20,000;
//! needs `apt-get install postfix` for smtp-sink and smtp-source, and openssl). Under
//! `cargo test --benches` it is a 200-recipient smoke pass against the Maildir outbox, so that
//! it cannot rot without needing postfix.

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
        let mut cmd = bulletin(&db, None);
        cmd.args([
            "send",
            edition.to_str().expect("path"),
            "--list",
            "news",
            "--yes",
            "--outbox",
        ])
        .arg(&outbox);
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

    let port = free_port();
    let _sink = Sink::start(port);
    let relay = format!("smtp://127.0.0.1:{port}");
    println!("send_e2e: {n} recipients, smtp-sink on 127.0.0.1:{port}, 2 cores");

    let db = prepare(dir.path(), "plain", n, None);
    let mut cmd = bulletin(&db, Some(&relay));
    cmd.args([
        "--json",
        "send",
        edition.to_str().expect("path"),
        "--list",
        "news",
        "--yes",
        "--concurrency",
        "16",
    ]);
    let (t_plain, rss_plain, ok) = measure(cmd);
    assert!(ok, "send failed");
    let bytes = last_run_bytes(&db, n);
    let avg = (bytes / n as u64).max(1);

    let key = dir.path().join("dkim.pem");
    bulletin_testkit::dkim::generate_key(&key, bulletin_testkit::dkim::KeyKind::RsaPkcs8);
    let db_dkim = prepare(dir.path(), "dkim", n, Some(&key));
    let mut cmd = bulletin(&db_dkim, Some(&relay));
    cmd.args([
        "send",
        edition.to_str().expect("path"),
        "--list",
        "news",
        "--yes",
        "--concurrency",
        "16",
    ]);
    let (t_dkim, rss_dkim, ok) = measure(cmd);
    assert!(ok, "signed send failed");

    let mut source = Command::new("smtp-source");
    source
        .args(["-s", "16", "-m", &n.to_string(), "-l", &avg.to_string()])
        .args(["-f", "newsletter@example.org", "-t", "reader@example.org"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null());
    let (t_ref, _, ok) = measure(source);
    assert!(ok, "smtp-source failed");

    let rate = |t: Duration| n as f64 / t.as_secs_f64();
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
}

/// A project folder with list `news` and `n` subscribers; returns its database URL.
fn prepare(root: &Path, name: &str, n: usize, dkim: Option<&Path>) -> String {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let db = format!("sqlite://{}", dir.join("bench.db").display());
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
        let status = bulletin(&db, None)
            .current_dir(&dir)
            .args(&args)
            .stderr(Stdio::null())
            .status()
            .expect("bulletin");
        assert!(status.success(), "{args:?}");
    }
    db
}

fn bulletin(db: &str, relay: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulletin"));
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
        let child = Command::new("smtp-sink")
            .args(["-u", "nobody", "-m", "64"])
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
        if let Ok(status) = std::fs::read_to_string(&status_path)
            && let Some(kb) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        {
            peak = peak.max(kb);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return (start.elapsed(), peak, status.success());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
