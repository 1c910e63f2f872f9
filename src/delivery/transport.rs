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

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;

use crate::config::Secret;

use super::reply::{self, Problem, Reply, Stage, Verdict};

/// Why one message was not accepted: where in the conversation it failed, what happened there,
/// and with whom. The engine decides what to do from these fields ([`SendError::verdict`]),
/// never from the words of a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{peer} at {stage}: {problem}")]
pub struct SendError {
    /// Where it failed.
    pub stage: Stage,
    /// What happened.
    pub problem: Problem,
    /// The relay (`host:port`) or the outbox.
    pub peer: String,
}

impl SendError {
    /// A failure at `stage` with `peer`.
    pub fn new(peer: impl Into<String>, stage: Stage, problem: Problem) -> Self {
        Self {
            stage,
            problem,
            peer: peer.into(),
        }
    }

    /// What the engine should do about it.
    pub fn verdict(&self) -> Verdict {
        reply::verdict(self.stage, &self.problem)
    }

    /// The text recorded as a delivery's last reply: the server's own reply where there was
    /// one, with the stage.
    pub fn reply_text(&self) -> String {
        format!("{} (at {})", self.problem, self.stage)
    }
}

/// The time limits of RFC 5321 §4.5.3.2 for each stage of the conversation, plus one for
/// opening the connection. A relay that never greets, or never answers the final dot, cannot
/// hang a send for longer than these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmtpTimeouts {
    /// Opening the TCP connection (and implicit TLS).
    pub connect: Duration,
    /// The greeting and the EHLO reply (RFC: 5 minutes); also STARTTLS and AUTH.
    pub greeting: Duration,
    /// The MAIL FROM reply (5 minutes).
    pub mail: Duration,
    /// The RCPT TO reply (5 minutes).
    pub rcpt: Duration,
    /// The DATA reply (2 minutes).
    pub data_init: Duration,
    /// Each block of the message written (3 minutes).
    pub data_block: Duration,
    /// The reply to the final dot (10 minutes).
    pub data_end: Duration,
}

impl SmtpTimeouts {
    /// The limits set in `[smtp]`.
    pub fn from_config(config: &crate::config::Config) -> Self {
        let s = Duration::from_secs;
        let c = &config.smtp;
        Self {
            connect: s(c.connect_timeout_secs),
            greeting: s(c.greeting_timeout_secs),
            mail: s(c.mail_timeout_secs),
            rcpt: s(c.rcpt_timeout_secs),
            data_init: s(c.data_timeout_secs),
            data_block: s(c.data_block_timeout_secs),
            data_end: s(c.data_end_timeout_secs),
        }
    }
}

impl Default for SmtpTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(30),
            greeting: Duration::from_secs(300),
            mail: Duration::from_secs(300),
            rcpt: Duration::from_secs(300),
            data_init: Duration::from_secs(120),
            data_block: Duration::from_secs(180),
            data_end: Duration::from_secs(600),
        }
    }
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
    /// Whether addresses with a non-ASCII local part can go through (SMTPUTF8, RFC 6531).
    fn smtputf8(&self) -> bool;
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

impl MaildirOutbox {
    /// Nothing was made visible in `new/`: like a relay that cannot be reached, not the
    /// recipient's fault.
    fn unwritable(&self, message: String) -> SendError {
        SendError::new(
            self.dir.display().to_string(),
            Stage::Connect,
            Problem::Connection(message),
        )
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
        .map_err(|e| self.outbox.unwritable(format!("outbox writer failed: {e}")))?
        .map_err(|e| {
            self.outbox
                .unwritable(format!("cannot write to the outbox: {e}"))
        })?;
        Ok(format!("250 delivered to outbox as {name}"))
    }

    async fn close(self) {}

    fn smtputf8(&self) -> bool {
        true
    }
}

/// How to reach the relay, parsed once from `[smtp] url`.
#[derive(Debug, Clone)]
pub struct SmtpRelay {
    host: String,
    port: u16,
    implicit_tls: bool,
    starttls: bool,
    credentials: Option<(String, Secret)>,
    timeouts: SmtpTimeouts,
}

/// `[smtp] url` problems.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[smtp] url `{url}`: {reason}")]
pub struct RelayUrlError {
    url: String,
    reason: String,
}

/// Runs one step of the conversation under its time limit, turning lettre's error into a
/// [`Problem`] with the server's reply kept as data.
async fn step<T>(
    limit: Duration,
    future: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, Problem> {
    match tokio::time::timeout(limit, future).await {
        Err(_) => Err(Problem::Timeout(limit)),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(problem_of(&e)),
    }
}

fn problem_of(e: &lettre::transport::smtp::Error) -> Problem {
    match e.status() {
        // lettre keeps the reply's lines, joined, as the error's source.
        Some(code) => Problem::Reply(Reply::new(
            u16::from(code),
            std::error::Error::source(e)
                .map(|s| s.to_string())
                .unwrap_or_default(),
        )),
        None => Problem::Connection(e.to_string()),
    }
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
            timeouts: SmtpTimeouts::default(),
        })
    }

    /// The same relay with other time limits.
    pub fn with_timeouts(mut self, timeouts: SmtpTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    fn peer(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn fail(&self, stage: Stage, problem: Problem) -> SendError {
        SendError::new(self.peer(), stage, problem)
    }

    /// Opens a conversation: connection, greeting, STARTTLS when required, the EHLO keywords
    /// lettre does not keep, and AUTH when configured.
    async fn connect(&self) -> Result<Open, SendError> {
        let hello = ClientId::Domain(
            hostname_for_helo().unwrap_or_else(|| "bulletin.localhost".to_string()),
        );
        let t = self.timeouts;
        let tls_parameters = || {
            TlsParameters::new(self.host.clone()).map_err(|e| {
                self.fail(
                    Stage::StartTls,
                    Problem::Local(format!("cannot set up TLS: {e}")),
                )
            })
        };
        let mut conn = if self.implicit_tls {
            let tls = tls_parameters()?;
            // lettre connects, negotiates TLS and reads the greeting in one call.
            step(
                t.connect + t.greeting,
                AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    Some(t.connect),
                    &hello,
                    Some(tls),
                    None,
                ),
            )
            .await
            .map_err(|p| self.fail(Stage::Greeting, p))?
        } else {
            let stream = tokio::time::timeout(
                t.connect,
                tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
            )
            .await
            .map_err(|_| self.fail(Stage::Connect, Problem::Timeout(t.connect)))?
            .map_err(|e| {
                self.fail(
                    Stage::Connect,
                    Problem::Connection(format!("cannot connect: {e}")),
                )
            })?;
            // lettre's own connector leaves Nagle on: with the body and the final "." written
            // separately, every message then waits for a delayed ACK (~40 ms).
            stream.set_nodelay(true).map_err(|e| {
                self.fail(
                    Stage::Connect,
                    Problem::Connection(format!("cannot configure the socket: {e}")),
                )
            })?;
            step(
                t.greeting,
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &hello),
            )
            .await
            .map_err(|p| self.fail(Stage::Greeting, p))?
        };
        if self.starttls {
            if !conn.can_starttls() {
                return Err(self.fail(
                    Stage::StartTls,
                    Problem::Local(format!(
                        "{} does not offer STARTTLS, which is required for a relay that is not on this machine \
                         (add ?tls=none to [smtp] url only if the network is trusted)",
                        self.peer()
                    )),
                ));
            }
            let tls = tls_parameters()?;
            step(t.greeting, conn.starttls(tls, &hello))
                .await
                .map_err(|p| match p {
                    Problem::Connection(m) => Problem::Local(format!("TLS failed: {m}")),
                    other => other,
                })
                .map_err(|p| self.fail(Stage::StartTls, p))?;
        }
        // Asked before AUTH: a second EHLO is always allowed there (RFC 5321 4.1.4), while
        // after AUTH some servers forget the authentication.
        let ehlo = step(t.greeting, conn.command(Ehlo::new(hello.clone())))
            .await
            .map_err(|p| self.fail(Stage::Greeting, p))?;
        let pipelining = offers(&ehlo, "PIPELINING");
        // Kept for `bulletin doctor`, which reports SIZE and the rest; lettre keeps only a few.
        let ehlo = ehlo.message().skip(1).map(str::to_string).collect();
        if let Some((user, password)) = &self.credentials {
            let offered = [Mechanism::Plain, Mechanism::Login]
                .into_iter()
                .any(|m| conn.server_info().supports_auth_mechanism(m));
            if !offered {
                // Sending without the configured credentials would be a surprise: the relay
                // might accept and relay on our address alone, or refuse mid-campaign.
                return Err(self.fail(
                    Stage::Auth,
                    Problem::Local(format!(
                        "credentials are configured ([smtp] username `{user}`), but {} offers no AUTH PLAIN or LOGIN \
                         in its EHLO reply; bulletin will not send unauthenticated. Use the relay's submission port \
                         (often 587, with STARTTLS), or remove [smtp] username if it authorises by address",
                        self.peer(),
                    )),
                ));
            }
            let creds = Credentials::new(user.clone(), password.expose().to_string());
            step(
                t.mail,
                conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds),
            )
            .await
            .map_err(|p| match p {
                Problem::Reply(r) => Problem::Reply(Reply {
                    text: format!("{} (credentials of `{user}` refused)", r.text),
                    ..r
                }),
                other => other,
            })
            .map_err(|p| self.fail(Stage::Auth, p))?;
        }
        Ok(Open {
            conn,
            pipelining,
            ehlo,
        })
    }

    /// The relay's host name or address, as `[smtp] url` gives it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the conversation is encrypted: implicit TLS (`smtps://`) or STARTTLS required.
    pub fn encrypted(&self) -> bool {
        self.implicit_tls || self.starttls
    }
}

/// Whether an EHLO reply lists `keyword` (RFC 5321 4.1.1.1: each line after the first is a
/// keyword, then its parameters), compared as a whole word, case-insensitively.
fn offers(ehlo: &Response, keyword: &str) -> bool {
    ehlo.message()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .any(|k| k.eq_ignore_ascii_case(keyword))
}

/// An open conversation with the relay.
struct Open {
    conn: AsyncSmtpConnection,
    /// The relay announced PIPELINING (RFC 2920): the envelope goes in one write.
    pipelining: bool,
    /// The lines of the last EHLO reply after the greeting line: keyword and parameters.
    ehlo: Vec<String>,
}

/// MAIL, RCPT and DATA as one group: what RFC 2920 lets a client send without waiting for
/// each reply. DATA ends the group, as the RFC requires.
struct Envelope<'a> {
    mail: &'a Mail,
    rcpt: &'a Rcpt,
}

impl std::fmt::Display for Envelope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Each command's own Display ends with its CRLF.
        write!(f, "{}{}{Data}", self.mail, self.rcpt)
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
    conn: Option<Open>,
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
        let open = self.connect().await?;
        Ok(SmtpSession {
            relay: self.clone(),
            conn: Some(open),
        })
    }
}

/// The message's content in blocks, noting when each block is asked for (the previous one was
/// written) and when none is left (everything but the final dot was written): the first
/// paces the data-block time limit, the second starts the wait for the final reply.
struct Blocks<'a> {
    rest: &'a [u8],
    progress: &'a std::sync::Mutex<WriteProgress>,
    /// Wakes the waiting loop so that it moves its deadline.
    moved: &'a tokio::sync::Notify,
}

#[derive(Debug, Clone, Copy)]
struct WriteProgress {
    last_block: tokio::time::Instant,
    all_written: Option<tokio::time::Instant>,
}

/// Large enough that a typical newsletter is one write, small enough that a slow link still
/// shows progress within the data-block limit.
const BLOCK: usize = 64 * 1024;

impl<'a> Iterator for Blocks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let now = tokio::time::Instant::now();
        if let Ok(mut p) = self.progress.lock() {
            p.last_block = now;
            if self.rest.is_empty() {
                p.all_written = Some(now);
            }
        }
        self.moved.notify_one();
        if self.rest.is_empty() {
            return None;
        }
        let (block, rest) = self.rest.split_at(self.rest.len().min(BLOCK));
        self.rest = rest;
        Some(block)
    }
}

impl SmtpSession {
    /// MAIL, RCPT and DATA in one write, then their three replies in order, each read against
    /// its own stage and time limit (RFC 2920). Every reply is read even after a refusal, so
    /// the conversation stays in step; the first refusal is the transaction's outcome.
    async fn pipelined_envelope(
        relay: &SmtpRelay,
        conn: &mut AsyncSmtpConnection,
        mail: &Mail,
        rcpt: &Rcpt,
    ) -> Result<(), SendError> {
        let t = relay.timeouts;
        // A timeout or a lost connection leaves later replies unread: stop there (the
        // session then drops the connection, as for any such problem).
        let out_of_step = |p: &Problem| matches!(p, Problem::Timeout(_) | Problem::Connection(_));
        let mail_reply = step(t.mail, conn.command(Envelope { mail, rcpt })).await;
        if let Err(p) = &mail_reply {
            if out_of_step(p) {
                return Err(relay.fail(Stage::MailFrom, p.clone()));
            }
        }
        let rcpt_reply = step(t.rcpt, conn.read_response()).await;
        if let Err(p) = &rcpt_reply {
            if out_of_step(p) {
                return Err(relay.fail(Stage::RcptTo, p.clone()));
            }
        }
        let data_reply = step(t.data_init, conn.read_response()).await;
        let refusal = match (mail_reply, rcpt_reply, &data_reply) {
            (Err(p), _, _) => Some((Stage::MailFrom, p)),
            (_, Err(p), _) => Some((Stage::RcptTo, p)),
            (_, _, Err(p)) => Some((Stage::Data, p.clone())),
            _ => None,
        };
        match refusal {
            None => Ok(()),
            Some((stage, problem)) => {
                if data_reply.is_ok() {
                    // DATA was accepted although the sender or the recipient was refused (a
                    // relay should refuse it then, RFC 2920 3.1). Ending the data with a dot
                    // could deliver an empty message; closing the connection instead makes the
                    // relay drop the transaction, and the next message reconnects.
                    conn.abort().await;
                }
                Err(relay.fail(stage, problem))
            }
        }
    }

    /// One transaction on an open connection: MAIL, RCPT, DATA, content, final reply, each
    /// with its own stage and time limit.
    async fn transaction(
        relay: &SmtpRelay,
        open: &mut Open,
        from: &lettre::Address,
        to: &lettre::Address,
        message: &[u8],
    ) -> Result<String, SendError> {
        use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
        let t = relay.timeouts;
        let conn = &mut open.conn;
        let info = conn.server_info();
        let mut parameters = Vec::new();
        if !AsRef::<str>::as_ref(to).is_ascii() || !AsRef::<str>::as_ref(from).is_ascii() {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                // RFC 6531: such an address can only cross a relay that announces SMTPUTF8;
                // retrying will not change that.
                return Err(relay.fail(
                    Stage::RcptTo,
                    Problem::Local(format!(
                        "{to} has a non-ASCII local part, which needs a relay that announces SMTPUTF8 (RFC 6531); {} does not",
                        relay.peer()
                    )),
                ));
            }
            parameters.push(MailParameter::SmtpUtfEight);
        }
        if !message.is_ascii() && info.supports_feature(Extension::EightBitMime) {
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let mail = Mail::new(Some(from.clone()), parameters);
        let rcpt = Rcpt::new(to.clone(), Vec::new());
        if open.pipelining {
            Self::pipelined_envelope(relay, conn, &mail, &rcpt).await?;
        } else {
            step(t.mail, conn.command(mail))
                .await
                .map_err(|p| relay.fail(Stage::MailFrom, p))?;
            step(t.rcpt, conn.command(rcpt))
                .await
                .map_err(|p| relay.fail(Stage::RcptTo, p))?;
            step(t.data_init, conn.command(Data))
                .await
                .map_err(|p| relay.fail(Stage::Data, p))?;
        }

        let progress = std::sync::Mutex::new(WriteProgress {
            last_block: tokio::time::Instant::now(),
            all_written: None,
        });
        let moved = tokio::sync::Notify::new();
        let sent = conn.message_iter(Blocks {
            rest: message,
            progress: &progress,
            moved: &moved,
        });
        tokio::pin!(sent);
        loop {
            // Each block written moves the data-block deadline; once everything is written,
            // the wait for the final reply has its own, longer limit.
            let (stage, limit, deadline) = match progress.lock().map(|p| *p) {
                Ok(WriteProgress {
                    all_written: Some(at),
                    ..
                }) => (Stage::DataEnd, t.data_end, at + t.data_end),
                Ok(p) => (Stage::Content, t.data_block, p.last_block + t.data_block),
                // Poisoned only if a block's bookkeeping panicked; wait no longer.
                Err(_) => (
                    Stage::DataEnd,
                    t.data_end,
                    tokio::time::Instant::now() + t.data_end,
                ),
            };
            tokio::select! {
                result = &mut sent => {
                    return match result {
                        Ok(response) => Ok(format!(
                            "{} {}",
                            response.code(),
                            response.message().collect::<Vec<_>>().join(" ")
                        )),
                        Err(e) => {
                            // The content is written before the final reply is read, so an
                            // error once everything was written is about the final reply.
                            let stage = match progress.lock().map(|p| p.all_written.is_some()) {
                                Ok(false) => Stage::Content,
                                _ => Stage::DataEnd,
                            };
                            Err(relay.fail(stage, problem_of(&e)))
                        }
                    };
                }
                () = moved.notified() => {}
                () = tokio::time::sleep_until(deadline) => {
                    return Err(relay.fail(stage, Problem::Timeout(limit)));
                }
            }
        }
    }
}

impl SmtpSession {
    /// The extensions the relay announced in its last EHLO reply (after STARTTLS when that
    /// was used), one line each: `SIZE 35882577`, `SMTPUTF8`, `AUTH PLAIN LOGIN`.
    pub fn ehlo_lines(&self) -> &[String] {
        self.conn.as_ref().map_or(&[], |o| o.ehlo.as_slice())
    }
}

impl Session for SmtpSession {
    async fn send(&mut self, from: &str, to: &str, message: &[u8]) -> Result<String, SendError> {
        let local = |stage: Stage, m: String| self.relay.fail(stage, Problem::Local(m));
        let from: lettre::Address = from
            .parse()
            .map_err(|e| local(Stage::MailFrom, format!("sender {from}: {e}")))?;
        let to: lettre::Address = to
            .parse()
            .map_err(|e| local(Stage::RcptTo, format!("recipient {to}: {e}")))?;
        let open = match self.conn.as_mut() {
            Some(o) if !o.conn.has_broken() => o,
            _ => {
                self.conn = None;
                self.conn.insert(self.relay.connect().await?)
            }
        };
        let result = Self::transaction(&self.relay, open, &from, &to, message).await;
        let conn = &mut open.conn;
        if let Err(e) = &result {
            let reusable = match (&e.problem, e.stage) {
                // After a refusal the transaction is over at the end of data; before it, RSET
                // ends it so the connection can carry the next message.
                (Problem::Reply(_) | Problem::Local(_), Stage::DataEnd) => true,
                (
                    Problem::Reply(_) | Problem::Local(_),
                    Stage::MailFrom | Stage::RcptTo | Stage::Data,
                ) => {
                    use lettre::transport::smtp::commands::Rset;
                    step(self.relay.timeouts.mail, conn.command(Rset))
                        .await
                        .is_ok()
                }
                // A timeout or a broken connection leaves the conversation out of step.
                _ => false,
            };
            if !reusable {
                // Dropping closes the socket; a polite QUIT could hang on the same broken peer.
                self.conn = None;
            }
        }
        result
    }

    fn smtputf8(&self) -> bool {
        use lettre::transport::smtp::extension::Extension;
        self.conn.as_ref().is_some_and(|o| {
            o.conn
                .server_info()
                .supports_feature(Extension::SmtpUtfEight)
        })
    }

    async fn close(mut self) {
        if let Some(mut o) = self.conn.take() {
            let _ = tokio::time::timeout(self.relay.timeouts.mail, o.conn.quit()).await;
        }
    }
}
