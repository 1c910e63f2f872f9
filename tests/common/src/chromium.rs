//! Debian's headless Chromium, run once per page: `--dump-dom` after the page's scripts ran,
//! with a throwaway profile and the browser's own network features off. The tests fail, never
//! skip, when Chromium is missing (`./test.sh` installs it).

use std::path::PathBuf;
use std::process::Command;

/// The Chromium binary: `BULLETIN_CHROMIUM`, else Debian's or Ubuntu's path.
pub fn binary() -> PathBuf {
    let candidates = [
        std::env::var("BULLETIN_CHROMIUM").unwrap_or_default(),
        "/usr/bin/chromium".into(),
        "/usr/bin/chromium-browser".into(),
    ];
    candidates
        .iter()
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "Chromium is required for the browser tests: apt-get install -y chromium \
                 (or set BULLETIN_CHROMIUM to its path)"
            )
        })
}

/// Runs Chromium headless on `url` with `args` added (`--dump-dom`, `--screenshot=…`) and
/// returns what it printed; fails the test if it fails.
pub fn run(args: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().expect("profile");
    let output = Command::new(binary())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Loads `url` with `args` added and returns the DOM once the page settled (scripts run,
/// subresources loaded, within `--virtual-time-budget` when given).
pub fn dump_dom(args: &[&str], url: &str) -> String {
    let mut all = vec!["--dump-dom"];
    all.extend_from_slice(args);
    run(&all, url)
}
