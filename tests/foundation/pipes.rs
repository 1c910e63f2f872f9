//! Output into a pipe whose reader stops early (`bulletin subscribers list | head -1`): every
//! printing command ends quietly, with or without `--json`, and never panics.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::support::Project;

/// Enough subscribers that every listing is far larger than a pipe's buffer (64 KiB), so the
/// writer is still writing when the reader goes.
fn crowded() -> Project {
    let p = Project::with_lists();
    let mut csv = String::from("email,name,city\n");
    for i in 0..3_000 {
        csv.push_str(&format!("person{i}@example.org,Person number {i},Recife\n"));
    }
    p.write("people.csv", csv);
    p.ok(&["subscribers", "import", "people.csv", "--list", "news"]);
    p
}

#[test]
fn printing_commands_end_quietly_when_the_reader_goes() {
    let p = crowded();
    for args in [
        &["subscribers", "list"][..],
        &["subscribers", "list", "--format", "csv"],
        &["subscribers", "list", "--format", "json"],
        &["--json", "subscribers", "list"],
        &["subscribers", "export"],
        &["subscribers", "export", "--format", "json"],
        &["--json", "subscribers", "export"],
        &["completions", "bash"],
    ] {
        let mut child = p
            .std_cmd()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("read a line");
        assert!(!first.is_empty(), "{args:?} printed nothing");
        // Reader dropped here: the pipe is closed with most of the output still to come.
        let out = child.wait_with_output().expect("binary ends");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}:\n{stderr}");
        assert!(stderr.trim().is_empty(), "{args:?} is not quiet:\n{stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}:\n{stderr}");
    }
}
