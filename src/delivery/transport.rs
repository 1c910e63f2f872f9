//! Where messages go: an SMTP relay, or a Maildir folder (dry runs, demos, archives).
//!
//! The engine only sees [`Transport`] and [`Session`]: a transport opens sessions (one per
//! worker, so an SMTP connection is never shared), and a session sends one message at a time.
//! This is listmonk's split between its campaign manager and its messengers.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use crate::config::Secret;

/// Why one message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later: 4xx replies, timeouts, dropped connections.
    #[error("{0}")]
    Transient(String),
    /// Do not try again: 5xx replies, an address the relay refuses.
    #[error("{0}")]
    Permanent(String),
}

/// A way to deliver messages.
pub trait Transport: Send + Sync + 'static {
    /// One worker's connection.
    type Session: Session;
    /// "smtp://host:port" or the outbox folder, for messages.
    fn describe(&self) -> String;
    /// Opens a session.
    fn open(&self) -> impl Future<Output = Result<Self::Session, SendError>> + Send;
}

/// One worker's connection to the transport.
pub trait Session: Send + 'static {
    /// Sends one message; the `Ok` value is the relay's reply.
    fn send(
        &mut self,
        from: &str,
        to: &str,
        message: &[u8],
    ) -> impl Future<Output = Result<String, SendError>> + Send;
    /// Ends the session politely (SMTP QUIT).
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// Delivers into a Maildir folder: `tmp/`, then an atomic rename into `new/`, as mail servers
/// do, so a reader never sees half a message. The bytes are exactly those SMTP would carry.
#[derive(Debug, Clone)]
pub struct MaildirOutbox {
    dir: PathBuf,
    counter: Arc<AtomicU64>,
}

impl MaildirOutbox {
    /// Creates `dir/{tmp,new,cur}` if needed.
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        Ok(Self {
            dir,
            counter: Arc::new(AtomicU64::new(0)),
        })
    }
}

/// A session of [`MaildirOutbox`].
#[derive(Debug)]
pub struct MaildirSession {
    outbox: MaildirOutbox,
}

impl Transport for MaildirOutbox {
    type Session = MaildirSession;

    fn describe(&self) -> String {
        format!("the Maildir outbox {}", self.dir.display())
    }

    async fn open(&self) -> Result<MaildirSession, SendError> {
        Ok(MaildirSession {
            outbox: self.clone(),
        })
    }
}

impl Session for MaildirSession {
    async fn send(&mut self, _from: &str, _to: &str, message: &[u8]) -> Result<String, SendError> {
        let n = self.outbox.counter.fetch_add(1, Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let name = format!(
            "{}.M{}P{}Q{n}.bulletin",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id()
        );
        let tmp = self.outbox.dir.join("tmp").join(&name);
        let new = self.outbox.dir.join("new").join(&name);
        let bytes = message.to_vec();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            // Durable before it is visible: a crash never leaves a truncated message in new/.
            f.sync_all()?;
            std::fs::rename(&tmp, &new)
        })
        .await
        .map_err(|e| SendError::Transient(format!("outbox writer failed: {e}")))?
        .map_err(|e| SendError::Transient(format!("cannot write to the outbox: {e}")))?;
        Ok(format!("250 delivered to outbox as {name}"))
    }

    async fn close(self) {}
}

/// How to reach the relay, parsed once from `[smtp] url`.
#[derive(Debug, Clone)]
pub struct SmtpRelay {
    host: String,
    port: u16,
    implicit_tls: bool,
    starttls: bool,
    credentials: Option<(String, Secret)>,
    timeout: Duration,
}

/// `[smtp] url` problems.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[smtp] url `{url}`: {reason}")]
pub struct RelayUrlError {
    url: String,
    reason: String,
}

impl SmtpRelay {
    /// Parses `smtp://host:port[?tls=required|none]` or `smtps://host:port`.
    ///
    /// STARTTLS is required for any host that is not loopback unless `?tls=none` says
    /// otherwise: a password or a subscriber list must not cross a network in clear text by
    /// default.
    pub fn from_url(
        url: &str,
        credentials: Option<(String, Secret)>,
    ) -> Result<Self, RelayUrlError> {
        let err = |reason: &str| RelayUrlError {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let (implicit_tls, rest) = if let Some(r) = url.strip_prefix("smtps://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("smtp://") {
            (false, r)
        } else {
            return Err(err("must start with smtp:// or smtps://"));
        };
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.trim_end_matches('/');
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>()
                    .map_err(|_| err("the port is not a number"))?,
            ),
            None => (authority.to_string(), if implicit_tls { 465 } else { 25 }),
        };
        if host.is_empty() {
            return Err(err("no host"));
        }
        let loopback = host == "localhost" || host.starts_with("127.") || host == "[::1]";
        let starttls = match query {
            "" => !implicit_tls && !loopback,
            "tls=required" => !implicit_tls,
            "tls=none" => false,
            _ => return Err(err("unknown option; use ?tls=required or ?tls=none")),
        };
        Ok(Self {
            host,
            port,
            implicit_tls,
            starttls,
            credentials,
            timeout: Duration::from_secs(30),
        })
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let hello = ClientId::Domain(
            hostname_for_helo().unwrap_or_else(|| "bulletin.localhost".to_string()),
        );
        let transient = |what: &str, e: &dyn std::fmt::Display| {
            SendError::Transient(format!("cannot {what} {}:{}: {e}", self.host, self.port))
        };
        let mut conn = if self.implicit_tls {
            let tls = TlsParameters::new(self.host.clone())
                .map_err(|e| transient("set up TLS for", &e))?;
            AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(self.timeout),
                &hello,
                Some(tls),
                None,
            )
            .await
            .map_err(|e| transient("connect to", &e))?
        } else {
            let stream = tokio::time::timeout(
                self.timeout,
                tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
            )
            .await
            .map_err(|_| transient("connect to", &"timed out"))?
            .map_err(|e| transient("connect to", &e))?;
            // lettre's own connector leaves Nagle on: with the body and the final "." written
            // separately, every message then waits for a delayed ACK (~40 ms).
            stream
                .set_nodelay(true)
                .map_err(|e| transient("configure", &e))?;
            AsyncSmtpConnection::connect_with_transport(Box::new(stream), &hello)
                .await
                .map_err(|e| transient("greet", &e))?
        };
        if self.starttls {
            if !conn.can_starttls() {
                return Err(SendError::Permanent(format!(
                    "{}:{} does not offer STARTTLS, which is required for a relay that is not on this machine \
                     (add ?tls=none to [smtp] url only if the network is trusted)",
                    self.host, self.port
                )));
            }
            let tls = TlsParameters::new(self.host.clone())
                .map_err(|e| transient("set up TLS for", &e))?;
            conn.starttls(tls, &hello).await.map_err(|e| {
                SendError::Permanent(format!("TLS with {}:{} failed: {e}", self.host, self.port))
            })?;
        }
        if let Some((user, password)) = &self.credentials {
            let creds = Credentials::new(user.clone(), password.expose().to_string());
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds)
                .await
                .map_err(|e| {
                    SendError::Permanent(format!(
                        "{}:{} refused the credentials of `{user}`: {e}",
                        self.host, self.port
                    ))
                })?;
        }
        Ok(conn)
    }
}

fn hostname_for_helo() -> Option<String> {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
}

/// A session with the relay; reconnects after the relay drops the connection.
pub struct SmtpSession {
    relay: SmtpRelay,
    conn: Option<AsyncSmtpConnection>,
}

impl std::fmt::Debug for SmtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SmtpSession({}:{})", self.relay.host, self.relay.port)
    }
}

impl Transport for SmtpRelay {
    type Session = SmtpSession;

    fn describe(&self) -> String {
        let scheme = if self.implicit_tls { "smtps" } else { "smtp" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }

    async fn open(&self) -> Result<SmtpSession, SendError> {
        let conn = self.connect().await?;
        Ok(SmtpSession {
            relay: self.clone(),
            conn: Some(conn),
        })
    }
}

impl Session for SmtpSession {
    async fn send(&mut self, from: &str, to: &str, message: &[u8]) -> Result<String, SendError> {
        let envelope = Envelope::new(
            Some(
                from.parse()
                    .map_err(|e| SendError::Permanent(format!("sender {from}: {e}")))?,
            ),
            vec![
                to.parse()
                    .map_err(|e| SendError::Permanent(format!("recipient {to}: {e}")))?,
            ],
        )
        .map_err(|e| SendError::Permanent(e.to_string()))?;
        let conn = match self.conn.as_mut() {
            Some(c) if !c.has_broken() => c,
            _ => {
                self.conn = None;
                self.conn.insert(self.relay.connect().await?)
            }
        };
        match tokio::time::timeout(self.relay.timeout * 2, conn.send(&envelope, message)).await {
            Err(_) => {
                self.conn = None;
                Err(SendError::Transient(format!(
                    "{}:{} did not answer within {:?}",
                    self.relay.host,
                    self.relay.port,
                    self.relay.timeout * 2
                )))
            }
            Ok(Ok(response)) => Ok(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Ok(Err(e)) => {
                let text = e.to_string();
                if e.is_permanent() {
                    Err(SendError::Permanent(text))
                } else {
                    // Transient replies, timeouts, I/O errors and anything unexpected: the
                    // connection may be unusable, so the next message opens a new one.
                    if conn.has_broken() || !e.is_transient() {
                        self.conn = None;
                    }
                    Err(SendError::Transient(text))
                }
            }
        }
    }

    async fn close(mut self) {
        if let Some(mut c) = self.conn.take() {
            let _ = c.quit().await;
        }
    }
}
