//! Load benchmark of the RFC 8058 one-click endpoint: `bulletin serve` (built with the bench
//! profile) against a real SQLite file (or, with `BULLETIN_TEST_BACKEND=postgres` and
//! `BULLETIN_TEST_POSTGRES_URL`, a fresh PostgreSQL database, as the tests choose), driven by `wrk` (Debian package `wrk`) with a Lua
//! script that POSTs `List-Unsubscribe=One-Click` exactly as Gmail does.
//!
//! Two runs: valid tokens (each subscriber's first POST writes; once every subscriber has left,
//! repeats take the read-only path) and forged tokens (signature check, one indexed read,
//! the 404 page). Prints requests/s and p50/p99 latency for each.
//!
//!     cargo bench --bench serve_wrk
//!
//! `BULLETIN_BENCH_SECONDS` (default 10), `BULLETIN_BENCH_SUBSCRIBERS` (default 20000) and
//! `BULLETIN_BENCH_CONNECTIONS` (default 32) change the load. wrk runs on the same machine as
//! the server and competes with it for the CPU: read the numbers as a floor.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bulletin::config::Secret;
use bulletin::token::Keys;

const SECRET: &str = "benchmark-secret-of-more-than-thirty-two-characters";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bulletin(dir: &Path, db: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulletin"));
    cmd.current_dir(dir)
        .env("BULLETIN_DATABASE_URL", db)
        .env("BULLETIN_SECRET", SECRET)
        .env_remove("BULLETIN_CONFIG");
    cmd
}

/// The Lua script: each wrk thread walks its own slice of the token file.
const SCRIPT: &str = r#"
tokens = {}
for line in io.lines(TOKENS_FILE) do tokens[#tokens + 1] = line end
counter = 0
next_thread = 0
function setup(thread)
  thread:set("slice", next_thread)
  next_thread = next_thread + 1
end
function request()
  counter = counter + 1
  local i = ((slice or 0) * 7919 + counter) % #tokens + 1
  return wrk.format("POST", "/u/" .. tokens[i],
    {["Content-Type"] = "application/x-www-form-urlencoded"}, "List-Unsubscribe=One-Click")
end
function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d seconds=%.3f p50_us=%d p99_us=%d non2xx=%d errors=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout))
end
"#;

struct Outcome {
    requests: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    non2xx: u64,
    errors: u64,
}

fn run_wrk(addr: &str, dir: &Path, name: &str, tokens: &[String], seconds: u64) -> Outcome {
    let file = dir.join(format!("{name}.tokens"));
    std::fs::write(&file, tokens.join("\n")).expect("write tokens");
    let script = dir.join(format!("{name}.lua"));
    std::fs::write(
        &script,
        format!("TOKENS_FILE = {:?}\n{SCRIPT}", file.display().to_string()),
    )
    .expect("write script");
    let connections = env_or("BULLETIN_BENCH_CONNECTIONS", 32).to_string();
    let out = Command::new("wrk")
        .args(["-t2", "-c", &connections, "-d"])
        .arg(format!("{seconds}s"))
        .arg("-s")
        .arg(&script)
        .arg(format!("http://{addr}"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run wrk ({e}): apt-get install -y wrk"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line in wrk output:\n{text}"));
    let field = |key: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line}"))
    };
    Outcome {
        requests: field("requests") as u64,
        rps: field("requests") / field("seconds"),
        p50_ms: field("p50_us") / 1000.0,
        p99_ms: field("p99_us") / 1000.0,
        non2xx: field("non2xx") as u64,
        errors: field("errors") as u64,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let seconds = env_or("BULLETIN_BENCH_SECONDS", 10);
    let n = env_or("BULLETIN_BENCH_SUBSCRIBERS", 20_000);
    let project = bulletin_testkit::project::Project::bare();
    let dir = project.path();
    let db = project.database_url();

    let ok = |cmd: &mut Command| {
        let out = cmd.output().expect("run bulletin");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(bulletin(dir, &db).args(["lists", "add", "news"]));
    let mut csv = String::from("email,lists\n");
    for i in 0..n {
        csv.push_str(&format!("reader{i}@example.org,news\n"));
    }
    std::fs::write(dir.join("subs.csv"), csv).expect("csv");
    ok(bulletin(dir, &db).args(["-q", "subscribers", "import", "subs.csv"]));

    let keys = Keys::new(&Secret::new(SECRET), &[]).expect("keys");
    let forger = Keys::new(&Secret::new("x".repeat(40)), &[]).expect("keys");
    let rows: Vec<(i64, String)> = bulletin_testkit::block_on(async {
        let mut conn = bulletin_testkit::project::connect(&db).await;
        sqlx::query_as("SELECT id, token_nonce FROM subscribers ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .expect("nonces")
    });
    let list_id = 1;
    let valid: Vec<String> = rows
        .iter()
        .map(|(id, nonce)| keys.unsubscribe(*id, list_id, nonce, 1_700_000_000))
        .collect();
    let forged: Vec<String> = rows
        .iter()
        .map(|(id, nonce)| forger.unsubscribe(*id, list_id, nonce, 1_700_000_000))
        .collect();

    let mut server = bulletin(dir, &db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let stderr = server.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    // Reads (and drops) the per-request log lines, as a log collector would.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(a) = line.strip_prefix("serve: listening on http://") {
                let _ = tx.send(a.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("serve started");

    let valid_run = run_wrk(&addr, dir, "valid", &valid, seconds);
    let forged_run = run_wrk(&addr, dir, "forged", &forged, seconds);
    let _ = server.kill();
    let _ = server.wait();

    let left = project.scalar("SELECT COUNT(*) FROM subscriptions WHERE status = 'unsubscribed'");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "serve_wrk: {n} subscribers, {seconds}s per run, wrk -t2 -c{} on the same machine",
        env_or("BULLETIN_BENCH_CONNECTIONS", 32)
    );
    for (name, r) in [("valid tokens", &valid_run), ("forged tokens", &forged_run)] {
        let _ = writeln!(
            out,
            "  {name:<14} {:>9.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   non-2xx {}   socket errors {}",
            r.rps, r.p50_ms, r.p99_ms, r.non2xx, r.errors
        );
    }
    let _ = writeln!(
        out,
        "  subscribers unsubscribed by the valid run: {left} of {n}"
    );
    assert_eq!(valid_run.non2xx, 0, "valid one-clicks failed");
    assert_eq!(
        forged_run.non2xx, forged_run.requests,
        "every forged token must get a 404"
    );
}
