//! End-to-end import benchmark: a generated CSV of 1,000,000 subscribers imported into a fresh
//! database by the real binary, with its wall time and peak memory, against the `sqlite3`
//! shell's own `.import` of the same file into a table with the same unique key (what SQLite
//! alone can do on this machine: the reference the ratio is taken against).
//!
//! `cargo bench --bench import_e2e` runs it (rows: `BULLETIN_BENCH_ROWS`, default 1,000,000).
//! Under `cargo test --benches` it runs a 2,000-row smoke pass so that it cannot rot.

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
    let status = Command::new(bin)
        .args(["--database", &db, "lists", "add", "news"])
        .stderr(Stdio::null())
        .status()
        .expect("run bulletin");
    assert!(status.success(), "lists add failed");

    let mut import = Command::new(bin);
    import
        .args(["--database", &db, "--quiet", "subscribers", "import"])
        .arg(&csv);
    let (elapsed, peak_kb, ok) = measure(import);
    assert!(ok, "import failed");
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
