//! What bulletin's integration tests share, in one place instead of files borrowed between
//! test binaries: a throw-away [`project::Project`] run through the real binary, a real SMTP
//! server process ([`smtp::SmtpServer`], aiosmtpd), and DKIM keys and independent verification
//! by dkimpy ([`dkim`]). The Python parts live in `tests/support/`.

pub mod dkim;
pub mod pictures;
pub mod project;
pub mod smtp;

/// `tests/support/` of the bulletin checkout: the Python helpers the servers and verifiers run.
pub fn support_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../support")
}

/// Runs `f` on a fresh single-threaded runtime (the tests themselves are synchronous).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}
