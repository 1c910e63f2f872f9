//! What bulletin's integration tests share, in one place instead of files borrowed between
//! test binaries: a throw-away [`project::Project`] run through the real binary on the
//! backend the run exercises ([`backend`]: SQLite or PostgreSQL), a real SMTP
//! server process ([`smtp::SmtpServer`], aiosmtpd), and DKIM keys and independent verification
//! by dkimpy ([`dkim`]). The Python parts live in `tests/support/`.

pub mod backend;
pub mod chromium;
pub mod dkim;
pub mod listen;
pub mod pictures;
pub mod project;
pub mod smtp;

/// `tests/support/` of the bulletin checkout: the Python helpers the servers and verifiers run.
pub fn support_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../support")
}

/// The `BULLETIN_*` variables of this process, which a test removes from the binary's
/// environment: the binary would read them as configuration (and warn about the test
/// harness's own `BULLETIN_TEST_*`).
pub fn bulletin_vars() -> impl Iterator<Item = String> {
    std::env::vars()
        .map(|(key, _)| key)
        .filter(|key| key.starts_with("BULLETIN_"))
}

/// Runs `f` on a fresh single-threaded runtime (the tests themselves are synchronous).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Copies the folder tree `from` to `to` (an edition into a test's own folder, to change it).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}
