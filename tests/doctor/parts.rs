//! The outside parts of the doctor tests, each a real process in a temporary folder on a
//! loopback port, stopped when dropped: NSD (an authoritative DNS server, Debian's `nsd`),
//! a relay that wants a password (aiosmtpd), an HTTPS server with a private CA's certificate
//! (`openssl s_server`), and `bulletin serve`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bulletin_testkit::listen::{Started, start_on_free_port, wait_for_listener};
use bulletin_testkit::project::Project;
use bulletin_testkit::smtp::free_port;

/// Waits until `child` listens on `port` (not merely something: a parallel test's server may
/// have taken the port), or kills it and panics with `what` and `log()`.
fn wait_for(port: u16, child: &mut Child, what: &str, log: impl Fn() -> String) {
    let failed = match wait_for_listener(child, port) {
        Started::Listening => return,
        Started::Exited(status) => format!("{what} exited at start ({status})"),
        Started::TimedOut => format!("{what} did not listen on port {port} within 20 s"),
    };
    let _ = child.kill();
    let _ = child.wait();
    panic!("{failed}:\n{}", log());
}

/// Ends `child` with SIGTERM (NSD then stops its own server processes) and waits for it.
fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// NSD serving one zone on UDP and TCP.
pub(crate) struct Nsd {
    child: Child,
    dir: PathBuf,
    /// The loopback port.
    pub(crate) port: u16,
}

impl Nsd {
    /// Serves `zone` (`lines` after a generated SOA and NS) from `dir` (created).
    pub(crate) fn start(dir: &Path, zone: &str, lines: &[String]) -> Self {
        std::fs::create_dir_all(dir).expect("nsd folder");
        let port = free_port();
        let d = dir.display();
        std::fs::write(
            dir.join("nsd.conf"),
            format!(
                "server:\n  ip-address: 127.0.0.1@{port}\n  port: {port}\n  username: \"\"\n  chroot: \"\"\n  \
                 zonesdir: \"{d}\"\n  database: \"\"\n  pidfile: \"{d}/nsd.pid\"\n  xfrdfile: \"{d}/xfrd.state\"\n  \
                 zonelistfile: \"{d}/zone.list\"\n  logfile: \"{d}/nsd.log\"\n  server-count: 1\n  do-ip6: no\n  \
                 verbosity: 2\nremote-control:\n  control-enable: no\nzone:\n  name: \"{zone}\"\n  zonefile: \"{zone}.zone\"\n"
            ),
        )
        .expect("nsd.conf");
        let mut text = format!(
            "$ORIGIN {zone}.\n$TTL 60\n@ IN SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 60\n\
             @ IN NS ns.{zone}.\nns IN A 127.0.0.1\n"
        );
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write(dir.join(format!("{zone}.zone")), text).expect("zone file");
        let mut child = Command::new("nsd")
            .arg("-d")
            .arg("-c")
            .arg(dir.join("nsd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Debian's nsd package must be installed (./test.sh installs it)");
        let log_dir = dir.to_path_buf();
        wait_for(port, &mut child, "nsd", || {
            std::fs::read_to_string(log_dir.join("nsd.log")).unwrap_or_default()
        });
        let nsd = Self {
            child,
            dir: dir.to_path_buf(),
            port,
        };
        // Listening is not serving: wait until the zone is loaded.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !nsd.log().contains("read with success") {
            assert!(
                Instant::now() < deadline,
                "nsd did not load the zone:\n{}",
                nsd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nsd
    }

    /// NSD's log.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("nsd.log")).unwrap_or_default()
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// aiosmtpd wanting AUTH (`tests/support/auth_smtp.py`).
pub(crate) struct Relay {
    child: Child,
    /// The loopback port.
    pub(crate) port: u16,
}

impl Relay {
    /// A relay that takes `user` with `password` and announces SIZE `size`, SMTPUTF8 when
    /// asked, and STARTTLS with `tls`'s certificate when given.
    pub(crate) fn start(
        dir: &Path,
        user: &str,
        password: &str,
        size: u64,
        smtputf8: bool,
        tls: Option<&Https>,
    ) -> Self {
        std::fs::create_dir_all(dir).expect("relay folder");
        let log = dir.join("relay.log");
        // On a fresh port when the first one was taken meanwhile (by another test's aiosmtpd,
        // which would otherwise answer the doctor in this relay's place).
        let (child, port) = start_on_free_port(
            "the aiosmtpd relay",
            || std::fs::read_to_string(&log).unwrap_or_default(),
            |port| {
                let mut cmd = Command::new("python3");
                cmd.arg(bulletin_testkit::support_dir().join("auth_smtp.py"))
                    .arg(port.to_string())
                    .args([user, password])
                    .arg(size.to_string())
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(&log).expect("relay log"));
                if !smtputf8 {
                    cmd.arg("no-smtputf8");
                }
                if let Some(https) = tls {
                    cmd.arg(format!(
                        "tls={}:{}",
                        https.dir.join("server.pem").display(),
                        https.dir.join("server.key").display()
                    ));
                }
                cmd.spawn().expect(
                    "python3 with aiosmtpd must be installed: ./test.sh installs it (pip install aiosmtpd)",
                )
            },
        );
        let mut relay = Self { child, port };
        // Listening is not answering yet: aiosmtpd's Controller binds first, then checks that
        // it answers (and exits if that is slow); it says `ready` after that.
        let deadline = Instant::now() + Duration::from_secs(60);
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        while !log_text().lines().any(|l| l == "ready") {
            if let Ok(Some(status)) = relay.child.try_wait() {
                panic!(
                    "the aiosmtpd relay exited at start ({status}):\n{}",
                    log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the aiosmtpd relay never said it was ready:\n{}",
                log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        relay
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl is installed (./test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl s_server -WWW` serving the file `healthz` over HTTPS with a certificate for
/// 127.0.0.1 signed by a CA made for the test.
pub(crate) struct Https {
    child: Child,
    /// The loopback port.
    pub(crate) port: u16,
    /// The CA's certificate (PEM).
    pub(crate) ca: PathBuf,
    /// Where the certificates are.
    dir: PathBuf,
}

impl Https {
    /// Makes the CA and the certificate in `dir` (created) and starts the server.
    pub(crate) fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("https folder");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=doctor test CA",
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("ext.cnf");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        );
        std::fs::write(dir.join("healthz"), "ok\n").expect("healthz");
        let port = free_port();
        let log = dir.join("s_server.log");
        let mut child = Command::new("openssl")
            .current_dir(dir)
            .args([
                "s_server",
                "-quiet",
                "-WWW",
                "-cert",
                "server.pem",
                "-key",
                "server.key",
            ])
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("openssl is installed");
        wait_for(port, &mut child, "openssl s_server", || {
            std::fs::read_to_string(&log).unwrap_or_default()
        });
        Self {
            child,
            port,
            ca: dir.join("ca.pem"),
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for Https {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// `bulletin serve` of the project in `dir` on `port`.
pub(crate) struct Serve {
    child: Child,
}

impl Serve {
    /// Starts it with the project's configuration (its secret file) and database.
    pub(crate) fn start(project: &Project, port: u16) -> Self {
        let mut cmd = project.std_cmd();
        cmd.args(["serve", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("bulletin serve starts");
        wait_for(port, &mut child, "bulletin serve", String::new);
        Self { child }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}
