//! The bounce mailbox over IMAP (RFC 3501), with async-imap.
//!
//! Messages are fetched with `BODY.PEEK[]`, so reading one does not mark it read: only a
//! handled message gets `\Seen` and the keyword `$BulletinHandled`, and the next pass skips
//! messages carrying that keyword. A message left for a person stays unread. Nothing is
//! expunged.
//!
//! `imaps://` is implicit TLS (port 993) checked against the system's root certificates;
//! plain `imap://` is accepted only to a loopback address, where nothing crosses a network.
//! STARTTLS is not offered: a server reachable only that way is refused with the fix.

use std::net::IpAddr;

use futures_util::StreamExt as _;
use tokio::net::TcpStream;

use super::{FeedbackError, Item};
use crate::config::Secret;

/// The keyword a handled message carries.
const HANDLED: &str = "$BulletinHandled";

/// Where and how to log in.
#[derive(Debug, Clone)]
pub struct ImapSource {
    /// `imaps://host[:port]/MAILBOX` or `imap://127.0.0.1:port/MAILBOX`.
    url: String,
    host: String,
    port: u16,
    tls: bool,
    mailbox: String,
    username: String,
    password: Secret,
}

/// A session on a TLS or a plain (loopback) connection.
enum Session {
    Tls(Box<async_imap::Session<tokio_rustls::client::TlsStream<TcpStream>>>),
    Plain(async_imap::Session<TcpStream>),
}

impl ImapSource {
    /// Checks `url` and keeps the credentials.
    pub fn new(url: &str, username: &str, password: Secret) -> Result<Self, FeedbackError> {
        let bad = |why: &str| FeedbackError::ImapUrl(format!("`{url}` {why}"));
        let (tls, rest) = match url.split_once("://") {
            Some(("imaps", rest)) => (true, rest),
            Some(("imap", rest)) => (false, rest),
            _ => {
                return Err(bad(
                    "must start with imaps:// (or imap:// to a loopback address)",
                ));
            }
        };
        if rest.contains('@') {
            return Err(bad(
                "holds credentials; set [bounces] imap_username and the password in \
                 BULLETIN_BOUNCES_IMAP_PASSWORD or [bounces] imap_password_file",
            ));
        }
        let (authority, mailbox) = rest.split_once('/').unwrap_or((rest, "INBOX"));
        let mailbox = if mailbox.is_empty() { "INBOX" } else { mailbox };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| bad("has a port that is not a number"))?,
            ),
            _ => (authority, if tls { 993 } else { 143 }),
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if host.is_empty() {
            return Err(bad("names no host"));
        }
        let loopback =
            host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !tls && !loopback {
            return Err(bad(
                "is plain IMAP off this machine, which would send the password in clear: use \
                 imaps:// (implicit TLS, port 993)",
            ));
        }
        Ok(Self {
            url: url.to_string(),
            host,
            port,
            tls,
            mailbox: mailbox.to_string(),
            username: username.to_string(),
            password,
        })
    }

    /// The source, for messages (no credentials).
    pub fn describe(&self) -> String {
        format!("IMAP {}", self.url)
    }

    fn failed(&self, what: &str, e: impl std::fmt::Display) -> FeedbackError {
        FeedbackError::Imap {
            server: self.url.clone(),
            message: format!("{what}: {e}"),
        }
    }

    async fn connect(&self) -> Result<Session, FeedbackError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| self.failed("cannot connect", e))?;
        if !self.tls {
            return Ok(Session::Plain(self.login(tcp).await?));
        }
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let provider =
            std::sync::Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| self.failed("TLS setup", e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|e| self.failed("not a TLS server name", e))?;
        let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| self.failed("TLS handshake", e))?;
        Ok(Session::Tls(Box::new(self.login(stream).await?)))
    }

    /// The greeting, then LOGIN.
    async fn login<T>(&self, stream: T) -> Result<async_imap::Session<T>, FeedbackError>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
    {
        let mut client = async_imap::Client::new(stream);
        greeting(&mut client)
            .await
            .map_err(|e| self.failed("no greeting", e))?;
        client
            .login(&self.username, self.password.expose())
            .await
            .map_err(|(e, _)| self.failed("login refused", e))
    }

    /// Every message of the mailbox not yet marked handled.
    pub async fn read(&self) -> Result<Vec<Item>, FeedbackError> {
        match self.connect().await? {
            Session::Tls(mut s) => {
                let items = self.fetch(&mut *s).await;
                let _ = s.logout().await;
                items
            }
            Session::Plain(mut s) => {
                let items = self.fetch(&mut s).await;
                let _ = s.logout().await;
                items
            }
        }
    }

    async fn fetch<T>(&self, s: &mut async_imap::Session<T>) -> Result<Vec<Item>, FeedbackError>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
    {
        let selected = s
            .select(&self.mailbox)
            .await
            .map_err(|e| self.failed(&format!("cannot select {}", self.mailbox), e))?;
        if selected.exists == 0 {
            return Ok(Vec::new());
        }
        let mut fetches = s
            .uid_fetch("1:*", "(UID FLAGS BODY.PEEK[])")
            .await
            .map_err(|e| self.failed("fetch", e))?;
        let mut items = Vec::new();
        while let Some(fetch) = fetches.next().await {
            let fetch = fetch.map_err(|e| self.failed("fetch", e))?;
            let handled = fetch.flags().any(|f| {
                matches!(f, async_imap::types::Flag::Custom(ref k) if k.eq_ignore_ascii_case(HANDLED))
            });
            let (Some(uid), Some(body), false) = (fetch.uid, fetch.body(), handled) else {
                continue;
            };
            items.push(Item::from_imap(
                format!("imap:{}/{uid}", self.mailbox),
                body.to_vec(),
                uid,
            ));
        }
        Ok(items)
    }

    /// Marks handled messages read, with the keyword; one session for all of them.
    pub async fn mark_handled(&self, uids: &[u32]) -> Result<(), FeedbackError> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        match self.connect().await? {
            Session::Tls(mut s) => {
                let done = self.store(&mut *s, &set).await;
                let _ = s.logout().await;
                done
            }
            Session::Plain(mut s) => {
                let done = self.store(&mut s, &set).await;
                let _ = s.logout().await;
                done
            }
        }
    }

    async fn store<T>(&self, s: &mut async_imap::Session<T>, set: &str) -> Result<(), FeedbackError>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
    {
        s.select(&self.mailbox)
            .await
            .map_err(|e| self.failed(&format!("cannot select {}", self.mailbox), e))?;
        let mut updates = s
            .uid_store(set, format!("+FLAGS.SILENT (\\Seen {HANDLED})"))
            .await
            .map_err(|e| self.failed("cannot mark handled messages", e))?;
        while let Some(update) = updates.next().await {
            update.map_err(|e| self.failed("cannot mark handled messages", e))?;
        }
        Ok(())
    }
}

/// The server's greeting, which must come before any command.
async fn greeting<T>(client: &mut async_imap::Client<T>) -> Result<(), String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    match client.read_response().await {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("the server closed the connection".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(url: &str) -> Result<ImapSource, FeedbackError> {
        ImapSource::new(url, "u", Secret::new("p"))
    }

    #[test]
    fn tls_is_required_off_loopback_and_credentials_never_sit_in_the_url() {
        let s = source("imaps://mail.example.org/Bounces").expect("imaps");
        assert_eq!(
            (s.host.as_str(), s.port, s.tls),
            ("mail.example.org", 993, true)
        );
        assert_eq!(s.mailbox, "Bounces");
        let s = source("imap://127.0.0.1:1143").expect("loopback");
        assert_eq!((s.port, s.tls, s.mailbox.as_str()), (1143, false, "INBOX"));
        assert!(source("imap://[::1]:1143/INBOX").is_ok());
        for bad in [
            "imap://mail.example.org/INBOX",
            "imaps://user:pw@mail.example.org/",
            "pop3://mail.example.org",
            "imaps://mail.example.org:x/",
        ] {
            assert!(
                matches!(source(bad), Err(FeedbackError::ImapUrl(_))),
                "{bad}"
            );
        }
    }
}
