//! A real IMAP server (Debian's dovecot-imapd) for the tests: its own configuration, state and
//! log in a temporary folder, listening on a loopback port, serving one Maildir (the bounce
//! mailbox Postfix writes into) to one user, never touching the system's instance.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bulletin_testkit::smtp::free_port;

/// The one user's name and password.
pub(crate) const USER: &str = "bounces";
pub(crate) const PASSWORD: &str = "imap-test-password";

/// A running Dovecot; stopped when dropped.
pub(crate) struct Dovecot {
    child: Child,
    dir: PathBuf,
    /// The loopback port of its IMAP listener.
    pub(crate) port: u16,
}

impl Dovecot {
    /// Serves `maildir` (owned by uid/gid 65534, as Postfix's virtual agent writes it) as the
    /// INBOX of [`USER`].
    pub(crate) fn start(dir: &Path, maildir: &Path) -> Self {
        let port = free_port();
        for sub in ["run", "state", "home"] {
            std::fs::create_dir_all(dir.join(sub)).expect("dovecot folder");
        }
        let d = dir.display();
        std::fs::write(dir.join("users"), format!("{USER}:{{PLAIN}}{PASSWORD}\n")).expect("users");
        let conf = format!(
            "base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{maildir}:LAYOUT=fs
default_internal_user = dovecot
default_login_user = dovenull
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={d}/home
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
",
            maildir = maildir.display()
        );
        std::fs::write(dir.join("dovecot.conf"), conf).expect("dovecot.conf");
        let status = Command::new("chown")
            .args(["65534:65534"])
            .arg(dir.join("home"))
            .status()
            .expect("chown");
        assert!(status.success(), "chown (needs root)");
        let mut child = Command::new("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(dir.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("Debian's dovecot-imapd package must be installed (./test.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default();
                panic!("dovecot exited at start ({status}):\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "dovecot did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            dir: dir.to_path_buf(),
            port,
        }
    }

    /// `imap://127.0.0.1:PORT/INBOX`.
    pub(crate) fn url(&self) -> String {
        format!("imap://127.0.0.1:{}/INBOX", self.port)
    }

    /// Its log, for failure messages.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM, so that the master stops its login, auth and imap processes with it.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
