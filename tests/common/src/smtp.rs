//! A real SMTP server process for the tests: Python's aiosmtpd on a free loopback port, storing
//! what it accepts in a Maildir. Either aiosmtpd's own `Mailbox` handler (a plain, well-behaved
//! server) or `tests/support/faulty_smtp.py`, a handler that answers as told (temporary and
//! permanent refusals at each stage, dropped connections, silence after the final dot).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::listen::start_on_free_port;

/// A running SMTP server; killed when dropped.
pub struct SmtpServer {
    child: Child,
    /// The loopback port it listens on.
    pub port: u16,
    /// Where it stores what it accepts (`new/` holds one file per message).
    pub maildir: PathBuf,
}

impl SmtpServer {
    /// aiosmtpd's own Mailbox handler, storing into `dir/received`.
    pub fn start(dir: &Path) -> Self {
        Self::spawn(dir, "aiosmtpd.handlers.Mailbox", None)
    }

    /// Our misbehaving handler inside aiosmtpd; `spec` is documented in
    /// `tests/support/faulty_smtp.py`.
    pub fn faulty(dir: &Path, spec: &str) -> Self {
        Self::spawn(dir, "faulty_smtp.FaultyHandler", Some(spec))
    }

    fn spawn(dir: &Path, class: &str, spec: Option<&str>) -> Self {
        std::fs::create_dir_all(dir).expect("the server's folder");
        let maildir = dir.join("received");
        let (child, port) = start_on_free_port(
            "aiosmtpd (is it installed? ./test.sh installs it)",
            String::new,
            |port| {
                let mut cmd = Command::new("python3");
                cmd.args(["-m", "aiosmtpd", "-n", "-l"])
                    .arg(format!("127.0.0.1:{port}"))
                    .args(["-c", class])
                    .arg(&maildir)
                    .env("PYTHONPATH", crate::support_dir())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                if let Some(spec) = spec {
                    cmd.arg(spec);
                }
                cmd.spawn().expect(
                    "python3 with aiosmtpd must be installed: ./test.sh installs it (pip install aiosmtpd)",
                )
            },
        );
        Self {
            child,
            port,
            maildir,
        }
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, as bytes.
    pub fn messages(&self) -> Vec<Vec<u8>> {
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

    /// Every message received so far, as text.
    pub fn texts(&self) -> Vec<String> {
        self.messages()
            .into_iter()
            .map(|m| String::from_utf8(m).expect("messages are UTF-8"))
            .collect()
    }

    /// Waits until `n` messages arrived, at most `within`; returns them as text.
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            let m = self.texts();
            if m.len() >= n {
                return m;
            }
            assert!(
                start.elapsed() < within,
                "expected {n} message(s) in {}, found {}",
                self.maildir.display(),
                m.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// When each message arrived (the Maildir file's modification time), oldest first: for
    /// pacing tests, which must time the server's side, not the sending process.
    pub fn arrival_times(&self) -> Vec<std::time::SystemTime> {
        let mut times = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) {
                for e in entries.flatten() {
                    times.push(
                        e.metadata()
                            .and_then(|m| m.modified())
                            .expect("modification time"),
                    );
                }
            }
        }
        times.sort();
        times
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}
