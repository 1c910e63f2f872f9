//! The real binary serving a real database (SQLite file or PostgreSQL) on a free loopback port, a small HTTP/1.1 client
//! over a plain `TcpStream` (so that what goes on the wire is exactly what the test wrote), a
//! real SMTP server process (Python's aiosmtpd) and helpers to read the database.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bulletin::address::Address;
use bulletin::config::Secret;
use bulletin::store::{NewSubscriber, Store};
use bulletin::token::{Claims, Keys, Purpose};

/// The secret the servers of these tests sign with.
pub(crate) const SECRET: &str = "test-secret-of-more-than-thirty-two-characters";
/// A secret used before a rotation.
pub(crate) const OLD_SECRET: &str = "the-previous-secret-also-longer-than-thirty-two";

pub(crate) use bulletin_testkit::block_on;
pub(crate) use bulletin_testkit::smtp::SmtpServer as SmtpSink;

/// The shared test project, with what the serve tests need on top: the database opened through
/// the library's own store, so that lists, subscribers and tokens are made as bulletin makes
/// them.
pub(crate) struct Project(bulletin_testkit::project::Project);

impl std::ops::Deref for Project {
    type Target = bulletin_testkit::project::Project;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Project {
    pub(crate) fn new() -> Self {
        Self(bulletin_testkit::project::Project::new())
    }

    /// A folder that is not a project yet (for `bulletin init .`).
    pub(crate) fn bare() -> Self {
        Self(bulletin_testkit::project::Project::bare())
    }

    /// Opens the store (creating and migrating the database, on the run's backend), runs `f`,
    /// closes it.
    pub(crate) fn with_store<T>(&self, f: impl AsyncFnOnce(&Store) -> T) -> T {
        let url = self.database_url();
        block_on(async move {
            let store = Store::open(&url, 5_000).await.expect("open store");
            let out = f(&store).await;
            store.close().await;
            out
        })
    }

    /// Creates lists by name (double opt-in when the name starts with `doi`).
    pub(crate) fn lists(&self, names: &[&str]) -> Vec<i64> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        self.with_store(async move |store| {
            let mut ids = Vec::new();
            for n in &names {
                let list = store
                    .create_list(n, n.starts_with("doi"), "cli")
                    .await
                    .expect("create list");
                ids.push(list.id);
            }
            ids
        })
    }

    /// Gives list `name` the display name `text` in language `lang`, as `bulletin lists set`.
    pub(crate) fn display_name(&self, name: &str, lang: &str, text: &str) {
        let (name, lang, text) = (name.to_string(), lang.to_string(), text.to_string());
        self.with_store(async move |store| {
            let change = bulletin::store::ListAppearance {
                display_names: vec![(lang, text)],
                ..Default::default()
            };
            store
                .update_list(&name, &change, "cli")
                .await
                .expect("set the display name");
        });
    }

    /// Adds confirmed subscribers to lists; returns their ids.
    pub(crate) fn subscribers(
        &self,
        emails: &[String],
        lists: &[&str],
        lang: Option<&str>,
    ) -> Vec<i64> {
        let emails = emails.to_vec();
        let lists: Vec<String> = lists.iter().map(|s| s.to_string()).collect();
        let lang = lang.map(str::to_string);
        self.with_store(async move |store| {
            let mut found = Vec::new();
            for l in &lists {
                found.push(store.list_named(l).await.expect("list"));
            }
            let mut ids = Vec::new();
            for e in &emails {
                let new = NewSubscriber {
                    address: Address::parse(e).expect("address"),
                    name: String::new(),
                    language: lang.clone(),
                    attributes: Default::default(),
                };
                let outcome = store
                    .add_subscriber(
                        &new,
                        &found,
                        Some(bulletin::store::SubscriptionStatus::Confirmed),
                        false,
                        "cli",
                    )
                    .await
                    .expect("add subscriber");
                ids.push(match outcome {
                    bulletin::store::AddOutcome::Added { id }
                    | bulletin::store::AddOutcome::Updated { id, .. }
                    | bulletin::store::AddOutcome::Unchanged { id, .. } => id,
                });
            }
            ids
        })
    }

    /// One text value from the database, if any row.
    pub(crate) fn text(&self, sql: &str) -> Option<String> {
        self.strings(sql).into_iter().next()
    }

    /// The status of one subscription.
    pub(crate) fn status(&self, subscriber: i64, list: i64) -> Option<String> {
        self.text(&format!(
            "SELECT status FROM subscriptions WHERE subscriber_id = {subscriber} AND list_id = {list}"
        ))
    }

    /// Every subscription and event, to prove that nothing changed.
    pub(crate) fn snapshot(&self) -> (Vec<String>, i64) {
        let subs = self.strings(
            "SELECT subscriber_id || ' ' || list_id || ' ' || status || ' ' || updated_at
             FROM subscriptions ORDER BY subscriber_id, list_id",
        );
        (subs, self.scalar("SELECT COUNT(*) FROM events"))
    }

    /// A signed unsubscribe token, as `send` puts in List-Unsubscribe.
    pub(crate) fn unsubscribe_token(&self, secret: &str, subscriber: i64, list: i64) -> String {
        let nonce = self.nonce(subscriber);
        keys(secret).unsubscribe(subscriber, list, &nonce, 1_700_000_000)
    }

    /// A signed confirm token issued at `issued_at`, bound (as `serve` binds the links it
    /// mails) to the subscription's latest event, its sign-up.
    pub(crate) fn confirm_token(&self, subscriber: i64, list: i64, issued_at: i64) -> String {
        let nonce = self.nonce(subscriber);
        let sign_up = self.scalar(&format!(
            "SELECT MAX(id) FROM events WHERE subscriber_id = {subscriber} AND list_id = {list}"
        ));
        keys(SECRET).issue(
            Claims {
                purpose: Purpose::Confirm,
                subscriber_id: subscriber,
                list_id: list,
                issued_at,
                event_id: Some(sign_up),
            },
            &nonce,
        )
    }

    pub(crate) fn nonce(&self, subscriber: i64) -> String {
        self.text(&format!(
            "SELECT token_nonce FROM subscribers WHERE id = {subscriber}"
        ))
        .expect("subscriber exists")
    }
}

/// Runs `bulletin send EDITION --list LIST --yes` through `sink`, with the links of the mail
/// under `public_url`; asserts that it succeeds and returns what it said on standard error.
pub(crate) fn send_campaign(
    project: &Project,
    sink: &SmtpSink,
    edition: &Path,
    list: &str,
    public_url: &str,
) -> String {
    let out = project
        .cmd()
        .env("BULLETIN_SECRET", SECRET)
        .env("BULLETIN_SMTP_URL", sink.url())
        .env("BULLETIN_LIST_PUBLIC_URL", public_url)
        .args([
            "send",
            &edition.display().to_string(),
            "--list",
            list,
            "--yes",
        ])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "send {list}: {stderr}");
    stderr
}

pub(crate) fn keys(secret: &str) -> Keys {
    Keys::new(&Secret::new(secret), &[]).expect("keys")
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// `bulletin serve` running on a free port; killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) log: Arc<Mutex<Vec<String>>>,
    /// The thread copying the child's stderr into `log`: joined once the child has exited,
    /// so that its last lines ("serve: stopped") are in `log` before a test reads it.
    reader: Option<std::thread::JoinHandle<()>>,
}

/// The binary with a clean `BULLETIN_*` environment, run in `dir`.
pub(crate) fn bulletin(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulletin"));
    cmd.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("BULLETIN_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

impl Server {
    /// Starts `bulletin serve` on 127.0.0.1:0 against the project's database, with `env`
    /// added, and waits for it to say where it listens.
    pub(crate) fn start(project: &Project, env: &[(&str, &str)]) -> Self {
        Self::start_with(project, env, &[])
    }

    pub(crate) fn start_with(project: &Project, env: &[(&str, &str)], args: &[&str]) -> Self {
        let mut cmd = bulletin(project.path());
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("BULLETIN_SECRET", SECRET)
            .env("BULLETIN_DATABASE_URL", project.database_url())
            .env("BULLETIN_LIST_PUBLIC_URL", "https://news.example.org")
            .env("BULLETIN_LIST_NAME", "Test Newsletter")
            .env("BULLETIN_SMTP_URL", "smtp://127.0.0.1:9");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start bulletin serve");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("serve: listening on http://") {
                    let _ = tx.send(addr.trim().to_string());
                }
                sink.lock().expect("log lock").push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a.parse().expect("socket address"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "bulletin serve did not start:\n{}",
                    log.lock().expect("log lock").join("\n")
                );
            }
        };
        Self {
            child,
            addr,
            log,
            reader: Some(reader),
        }
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }

    pub(crate) fn get(&self, path: &str) -> Response {
        http(self.addr, "GET", path, &[], b"")
    }

    pub(crate) fn post(&self, path: &str, content_type: Option<&str>, body: &[u8]) -> Response {
        let headers: Vec<(&str, &str)> = content_type
            .map(|c| vec![("Content-Type", c)])
            .unwrap_or_default();
        http(self.addr, "POST", path, &headers, body)
    }

    /// The RFC 8058 POST exactly as Gmail sends it.
    pub(crate) fn one_click(&self, token: &str) -> Response {
        self.post(
            &format!("/u/{token}"),
            Some("application/x-www-form-urlencoded"),
            b"List-Unsubscribe=One-Click",
        )
    }

    /// Sends SIGTERM and waits for the exit status; then the whole log is in [`Server::log`].
    pub(crate) fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // The child has exited, so its end of the pipe is closed and the reader
                // reaches end of file after the last line.
                if let Some(reader) = self.reader.take() {
                    reader.join().expect("the log reader thread");
                }
                return status;
            }
            assert!(
                start.elapsed() < within,
                "bulletin serve did not stop within {within:?} of SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection (`Connection: close`), read to the end.
pub(crate) fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" || !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).expect("send request");
    read_response(&mut stream)
}

/// Reads one response: the head, then `Content-Length` bytes of body (or up to the close
/// when the server gives none). Some servers keep the connection open despite
/// `Connection: close` (Chromium's DevTools endpoint does), so reading to the end would hang.
pub(crate) fn read_response(stream: &mut TcpStream) -> Response {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let mut wanted: Option<usize> = None;
    loop {
        if let Some(total) = wanted {
            if raw.len() >= total {
                break;
            }
        } else if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if let Some(n) = length {
                wanted = Some(end + 4 + n);
                continue;
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "read response: {e} (got {:?})",
                String::from_utf8_lossy(&raw)
            ),
        }
    }
    parse_response(&raw)
}

pub(crate) fn parse_response(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response: {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}

/// A `multipart/form-data` body with one field, as some mail clients send one-click.
pub(crate) fn multipart(boundary: &str, name: &str, value: &str) -> Vec<u8> {
    format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n--{boundary}--\r\n"
    )
    .into_bytes()
}

/// The path of the confirm link in a raw message, whatever its transfer encoding did to the
/// line (quoted-printable soft breaks, `=3D`).
pub(crate) fn confirm_path(raw: &str) -> String {
    let unfolded = raw
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let start = unfolded
        .find("/confirm/")
        .unwrap_or_else(|| panic!("no confirm link in:\n{raw}"));
    let token: String = unfolded[start + "/confirm/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    format!("/confirm/{token}")
}
