//! Starts aiosmtpd on a free loopback port, storing what it accepts in a Maildir.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running SMTP server; killed when dropped.
pub(crate) struct SmtpServer {
    child: Child,
    pub(crate) port: u16,
    pub(crate) maildir: PathBuf,
}

impl SmtpServer {
    /// aiosmtpd's own Mailbox handler: a plain, well-behaved server.
    pub(crate) fn start(dir: &Path) -> Self {
        Self::spawn(dir, "aiosmtpd.handlers.Mailbox", None)
    }

    /// Our misbehaving handler (tests/support/faulty_smtp.py) inside aiosmtpd.
    pub(crate) fn faulty(dir: &Path, spec: &str) -> Self {
        Self::spawn(dir, "faulty_smtp.FaultyHandler", Some(spec))
    }

    fn spawn(dir: &Path, class: &str, spec: Option<&str>) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let maildir = dir.join("received");
        let support = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support");
        let mut cmd = Command::new("python3");
        cmd.args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            class,
        ])
        .arg(&maildir)
        .env("PYTHONPATH", support)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if let Some(spec) = spec {
            cmd.arg(spec);
        }
        let child = cmd.spawn().expect(
            "python3 with aiosmtpd must be installed (pip install aiosmtpd); .ci/run does it",
        );
        let mut server = Self {
            child,
            port,
            maildir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "aiosmtpd exited at start ({status}); is it installed? (pip install aiosmtpd)"
                );
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far.
    pub(crate) fn messages(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) {
                for e in entries.flatten() {
                    out.push(std::fs::read(e.path()).expect("read message"));
                }
            }
        }
        out
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
