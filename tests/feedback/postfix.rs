//! A real Postfix (Debian's package) for the tests: a private instance with its own
//! configuration, queue and data folders in a temporary folder, listening on a loopback port,
//! never touching the system's instance. It accepts mail for the virtual domains `local.test`
//! (a Maildir per known user; unknown users are accepted at RCPT and bounced afterwards, so
//! that Postfix itself writes the DSN) and `bounces.test` (every address, `bounces+…`
//! included, lands in one Maildir: the bounce mailbox).

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bulletin_testkit::smtp::free_port;

/// The uid and gid the virtual delivery agent writes mailboxes as (Debian's `nobody`).
const MAILBOX_OWNER: u32 = 65534;

/// A running Postfix instance; stopped when dropped.
pub(crate) struct Postfix {
    /// The instance's folder: `etc/`, `queue/`, `data/`, `mail/`, `maillog`.
    pub(crate) dir: PathBuf,
    /// The loopback port its smtpd listens on.
    pub(crate) port: u16,
}

impl Postfix {
    /// Starts an instance in `dir` (created) that knows `users` of `local.test`.
    pub(crate) fn start(dir: &Path, users: &[&str]) -> Self {
        let port = free_port();
        for sub in ["etc", "queue", "data", "mail"] {
            std::fs::create_dir_all(dir.join(sub)).expect("postfix folder");
        }
        // The delivery agent runs as nobody: it must reach the mail folder through the
        // temporary folders above it.
        let mut up = Some(dir);
        while let Some(d) =
            up.filter(|d| d.starts_with(std::env::temp_dir()) && *d != std::env::temp_dir())
        {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            up = d.parent();
        }
        let d = dir.display();
        std::fs::write(dir.join("etc/main.cf"), main_cf(&d.to_string())).expect("main.cf");
        std::fs::write(dir.join("etc/master.cf"), master_cf(port)).expect("master.cf");
        let mut map = String::new();
        for user in users {
            map.push_str(&format!("{user}@local.test {user}/\n"));
        }
        map.push_str("@bounces.test bounces/\n");
        std::fs::write(dir.join("etc/vmailbox"), map).expect("vmailbox");
        chown(&dir.join("data"), "postfix:");
        chown(
            &dir.join("mail"),
            &format!("{MAILBOX_OWNER}:{MAILBOX_OWNER}"),
        );
        let out = Command::new("postfix")
            .arg("-c")
            .arg(dir.join("etc"))
            .arg("start")
            .output()
            .expect("Debian's postfix package must be installed (./test.sh installs it)");
        let instance = Self {
            dir: dir.to_path_buf(),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "postfix did not listen on port {port} ({}; needs root): {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                instance.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        instance
    }

    /// `smtp://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The bounce mailbox (a Maildir).
    pub(crate) fn bounce_maildir(&self) -> PathBuf {
        self.dir.join("mail/bounces")
    }

    /// Messages delivered to `user`@local.test's Maildir.
    pub(crate) fn delivered_to(&self, user: &str) -> usize {
        count_files(&self.dir.join("mail").join(user))
    }

    /// Waits (60 s at most) until the bounce mailbox holds `n` messages.
    pub(crate) fn wait_for_bounces(&self, n: usize) {
        self.wait_for_files(&self.bounce_maildir(), n, "bounces");
    }

    /// Waits (60 s at most) until `user`@local.test's Maildir holds `n` messages: Postfix
    /// delivers each recipient on its own, in no set order with the bounces.
    pub(crate) fn wait_for_delivered(&self, user: &str, n: usize) {
        let what = format!("messages to {user}");
        self.wait_for_files(&self.dir.join("mail").join(user), n, &what);
    }

    /// Waits (60 s at most) until `maildir` holds `n` messages (`what`, for the failure).
    fn wait_for_files(&self, maildir: &Path, n: usize, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while count_files(maildir) < n {
            assert!(
                Instant::now() < deadline,
                "postfix wrote {} of {n} {what}:\n{}",
                count_files(maildir),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The instance's log.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(self.dir.join("etc"))
            .arg("stop")
            .output();
    }
}

fn count_files(maildir: &Path) -> usize {
    ["new", "cur"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(maildir.join(sub)).ok())
        .map(|entries| entries.count())
        .sum()
}

fn chown(path: &Path, owner: &str) {
    let status = Command::new("chown")
        .args(["-R", owner])
        .arg(path)
        .status()
        .expect("chown");
    assert!(
        status.success(),
        "chown {owner} {} (needs root)",
        path.display()
    );
}

fn main_cf(dir: &str) -> String {
    format!(
        "compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.local.test
mydomain = local.test
myorigin = local.test
mydestination =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# Unknown users are accepted and bounced afterwards: the DSN is what the test is about.
smtpd_reject_unlisted_recipient = no
virtual_mailbox_domains = local.test, bounces.test
virtual_mailbox_base = {dir}/mail
virtual_mailbox_maps = texthash:{dir}/etc/vmailbox
virtual_uid_maps = static:{MAILBOX_OWNER}
virtual_gid_maps = static:{MAILBOX_OWNER}
recipient_delimiter = +
maillog_file = {dir}/maillog
maillog_file_prefixes = /tmp, {dir}
alias_maps =
alias_database =
biff = no
delay_warning_time = 0
"
    )
}

fn master_cf(port: u16) -> String {
    format!(
        "127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"
    )
}
