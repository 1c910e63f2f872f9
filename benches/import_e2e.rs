//! End-to-end import benchmark: a generated CSV of 1,000,000 subscribers imported into a fresh
//! database by the real binary, with its wall time and peak memory, against the `sqlite3`
//! shell's own `.import` of the same file into a table with the same unique key (what SQLite
//! alone can do on this machine: the reference the ratio is taken against).
//!
//! `cargo bench --bench import_e2e` runs it (rows: `BULLETIN_BENCH_ROWS`, default 1,000,000).
//! Under `cargo test --benches` it runs a 2,000-row smoke pass so that it cannot rot.
//!
//! With `BULLETIN_BENCH_POSTGRES_URL` (a server where the user may create databases, e.g.
//! `postgres://bulletin@127.0.0.1:5432/postgres`) the same file is also imported into a fresh
//! PostgreSQL database (through COPY), and its rows/s are quoted against the SQLite import of
//! the same run. With `BULLETIN_BENCH_BASELINE_BIN` (another build of bulletin, e.g. the
//! commit before a change) the SQLite import is also run by that binary, in the same run, to
//! quote a before/after ratio.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let rows: usize = match std::env::var("BULLETIN_BENCH_ROWS") {
        Ok(v) => v.parse().expect("BULLETIN_BENCH_ROWS must be a number"),
        Err(_) if benching => 1_000_000,
        Err(_) => 2_000,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("subscribers.csv");
    generate(&csv, rows);
    let size_mb = std::fs::metadata(&csv).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    println!("import_e2e: {rows} rows, {size_mb:.1} MB of CSV");

    let bin = env!("CARGO_BIN_EXE_bulletin");
    let db = format!("sqlite://{}", dir.path().join("bench.db").display());
    let (elapsed, peak_kb) = import_once(bin, &db, &csv);
    let rate = rows as f64 / elapsed.as_secs_f64();
    println!(
        "bulletin import:      {:>8.2} s  {:>10.0} rows/s  peak RSS {:>6.1} MB",
        elapsed.as_secs_f64(),
        rate,
        peak_kb as f64 / 1024.0
    );

    // The same file again: every row is known, so this measures the lookups of existing
    // subscribers rather than the inserts (what a nightly re-sync from a CRM costs).
    let mut again = Command::new(bin);
    again
        .args(["--database", &db, "--quiet", "subscribers", "import"])
        .arg(&csv);
    let (elapsed_again, peak_again, ok) = measure(again);
    assert!(ok, "second import failed");
    println!(
        "bulletin re-import:   {:>8.2} s  {:>10.0} rows/s  peak RSS {:>6.1} MB  (all unchanged)",
        elapsed_again.as_secs_f64(),
        rows as f64 / elapsed_again.as_secs_f64(),
        peak_again as f64 / 1024.0
    );

    if let Ok(baseline) = std::env::var("BULLETIN_BENCH_BASELINE_BIN") {
        let db = format!("sqlite://{}", dir.path().join("baseline.db").display());
        let (elapsed_base, peak_base) = import_once(&baseline, &db, &csv);
        println!(
            "baseline import:      {:>8.2} s  {:>10.0} rows/s  peak RSS {:>6.1} MB  ({baseline})",
            elapsed_base.as_secs_f64(),
            rows as f64 / elapsed_base.as_secs_f64(),
            peak_base as f64 / 1024.0
        );
        println!(
            "ratio bulletin/baseline (SQLite): {:.2}x the baseline's rows/s",
            elapsed_base.as_secs_f64() / elapsed.as_secs_f64()
        );
    }

    match std::env::var("BULLETIN_BENCH_POSTGRES_URL") {
        Ok(server) => {
            let db = FreshPostgres::create(&server);
            let (elapsed_pg, peak_pg) = import_once(bin, &db.url, &csv);
            let rate_pg = rows as f64 / elapsed_pg.as_secs_f64();
            println!(
                "PostgreSQL import:    {:>8.2} s  {:>10.0} rows/s  peak RSS {:>6.1} MB  (COPY)",
                elapsed_pg.as_secs_f64(),
                rate_pg,
                peak_pg as f64 / 1024.0
            );
            let mut again = Command::new(bin);
            again
                .args(["--database", &db.url, "--quiet", "subscribers", "import"])
                .arg(&csv);
            let (elapsed_again, _, ok) = measure(again);
            assert!(ok, "second PostgreSQL import failed");
            println!(
                "PostgreSQL re-import: {:>8.2} s  {:>10.0} rows/s  (all unchanged)",
                elapsed_again.as_secs_f64(),
                rows as f64 / elapsed_again.as_secs_f64()
            );
            println!(
                "ratio PostgreSQL/SQLite import: {:.2}x SQLite's rows/s",
                rate_pg / rate
            );
        }
        Err(_) => println!(
            "PostgreSQL: not measured (set BULLETIN_BENCH_POSTGRES_URL to a server where this \
             user may create databases)"
        ),
    }

    let reference = dir.path().join("reference.db");
    let script = format!(
        ".output /dev/null\nPRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;\n.output stdout\n\
         CREATE TABLE s (email TEXT NOT NULL, name TEXT, lang TEXT, lists TEXT, city TEXT);\n\
         CREATE UNIQUE INDEX s_email ON s (lower(email));\n\
         .import --csv --skip 1 {} s\n",
        csv.display()
    );
    let mut sqlite = Command::new("sqlite3");
    sqlite.arg(&reference).stdin(Stdio::piped());
    match measure_with_stdin(sqlite, script.as_bytes()) {
        Some((elapsed_ref, peak_ref, true)) => {
            let rate_ref = rows as f64 / elapsed_ref.as_secs_f64();
            println!(
                "sqlite3 .import (ref): {:>7.2} s  {:>10.0} rows/s  peak RSS {:>6.1} MB",
                elapsed_ref.as_secs_f64(),
                rate_ref,
                peak_ref as f64 / 1024.0
            );
            println!(
                "ratio bulletin/sqlite3: {:.2}x the reference's rows/s",
                rate / rate_ref
            );
        }
        _ => println!("sqlite3 not available (apt-get install sqlite3): no reference measured"),
    }
}

/// Creates the list `news` in the database at `db` and imports `csv` into it with `bin`;
/// returns the import's wall time and peak memory.
fn import_once(bin: &str, db: &str, csv: &Path) -> (Duration, u64) {
    let status = Command::new(bin)
        .args(["--database", db, "lists", "add", "news"])
        .stderr(Stdio::null())
        .status()
        .expect("run bulletin");
    assert!(status.success(), "lists add failed on {db}");
    let mut import = Command::new(bin);
    import
        .args(["--database", db, "--quiet", "subscribers", "import"])
        .arg(csv);
    let (elapsed, peak, ok) = measure(import);
    assert!(ok, "import into {db} failed");
    (elapsed, peak)
}

/// A database of the bench's own on a PostgreSQL server, dropped when done.
struct FreshPostgres {
    server: String,
    name: String,
    url: String,
}

impl FreshPostgres {
    fn create(server: &str) -> Self {
        let name = format!("bulletin_bench_{}", std::process::id());
        let mut url = url::Url::parse(server).expect("BULLETIN_BENCH_POSTGRES_URL is a URL");
        url.set_path(&name);
        let db = Self {
            server: server.to_string(),
            url: url.to_string(),
            name,
        };
        db.admin(&format!(
            "DROP DATABASE IF EXISTS {0}; CREATE DATABASE {0}",
            db.name
        ));
        db
    }

    fn admin(&self, sql: &str) {
        use sqlx::Connection;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&self.server)
                .await
                .expect("connect to BULLETIN_BENCH_POSTGRES_URL");
            for statement in sql.split("; ") {
                sqlx::raw_sql(statement)
                    .execute(&mut conn)
                    .await
                    .expect(statement);
            }
        });
    }
}

impl Drop for FreshPostgres {
    fn drop(&mut self) {
        self.admin(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// Writes `rows` subscribers: realistic lengths, several languages, some attributes.
fn generate(path: &Path, rows: usize) {
    let file = std::fs::File::create(path).expect("create csv");
    let mut out = BufWriter::new(file);
    writeln!(out, "email,name,lang,lists,city").expect("write");
    let langs = ["en", "fr", "es", "pt", "ar", "ru"];
    let cities = [
        "Dhaka", "Bamako", "Bogotá", "Lima", "Cairo", "Bishkek", "Lilongwe", "Hanoi",
    ];
    for i in 0..rows {
        writeln!(
            out,
            "person.{i}@example{}.org,Person Number {i},{},news,{}",
            i % 97,
            langs[i % langs.len()],
            cities[i % cities.len()]
        )
        .expect("write");
    }
    out.flush().expect("flush");
}

/// Runs a command, returning its wall time, peak resident memory (KiB) and success.
fn measure(cmd: Command) -> (Duration, u64, bool) {
    measure_with_stdin(cmd, b"").expect("spawn")
}

fn measure_with_stdin(mut cmd: Command, input: &[u8]) -> Option<(Duration, u64, bool)> {
    let start = Instant::now();
    let mut child = cmd.spawn().ok()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).ok()?;
    }
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        // VmHWM is the kernel's own high-water mark of the process's resident set.
        if let Ok(status) = std::fs::read_to_string(&status_path)
            && let Some(kb) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        {
            peak = peak.max(kb);
        }
        if let Some(status) = child.try_wait().ok()? {
            return Some((start.elapsed(), peak, status.success()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
