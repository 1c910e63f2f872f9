//! After the send: what comes back to the return path. A message from the bounce mailbox is
//! read once ([`classify`]) into a [`Report`]: a delivery status notification (RFC 3464), an
//! ARF complaint (RFC 5965), one of the common non-standard bounces (qmail, old Exim,
//! Exchange), an auto-reply (RFC 3834) that is not a bounce, or nothing we understand, which
//! is left in the mailbox and reported, never deleted.
//!
//! The delivery a message is about is found from the signed VERP token in the address it was
//! sent to (`bounces+{token}@…`, see [`crate::token::Keys::bounce_token`]); a bounce that
//! kept nothing of that address but quotes our Message-ID is matched by it, only when the
//! DSN's recipient is that delivery's subscriber (a Message-ID alone is guessable).
//!
//! MIME is parsed by `mail-parser`; the `message/delivery-status` and
//! `message/feedback-report` bodies are blocks of header-like fields, read in [`fields`].
//! What each status code means for the subscriber is [`policy`].

mod fields;
mod heuristic;
pub mod imap;
pub mod mailbox;
pub mod policy;
mod process;
mod standard;

use mail_parser::MessageParser;

pub use crate::store::FeedbackKind as Kind;
pub use mailbox::{Item, Source};
pub use process::{Outcome, Processed, Settings, Summary, process};

/// Why the bounce mailbox could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    /// A Maildir folder or mbox file could not be read or changed.
    #[error("{path}: {source}; check that it exists and that bulletin may read and write it")]
    Io {
        /// The file or folder.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The path given as a Maildir is not one.
    #[error(
        "{0} is not a Maildir (it has no new/ and cur/ folders); give the mailbox folder itself, \
         or use --mbox for a single file"
    )]
    NotMaildir(std::path::PathBuf),
    /// The IMAP URL is unusable (exit code 2).
    #[error("[bounces] imap_url {0}")]
    ImapUrl(String),
    /// The IMAP server could not be reached or refused.
    #[error("IMAP server {server}: {message}")]
    Imap {
        /// The URL (it holds no credentials).
        server: String,
        /// What failed.
        message: String,
    },
    /// The database refused.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl FeedbackError {
    /// A mailbox path that is wrong, rather than the world failing (exit code 2, not 1).
    pub fn is_input_error(&self) -> bool {
        match self {
            Self::NotMaildir(_) | Self::ImapUrl(_) => true,
            Self::Imap { .. } => false,
            Self::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            Self::Store(e) => e.is_input_error(),
        }
    }
}

/// What a message says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// What it is.
    pub kind: Kind,
    /// How it was recognised: `dsn`, `arf`, `non-standard`, `auto-reply`.
    pub format: &'static str,
    /// RFC 3464 `Action` (`failed`, `delayed`, ...), or the ARF `Feedback-Type`.
    pub action: Option<String>,
    /// The RFC 3463 enhanced status code.
    pub status: Option<String>,
    /// The remote server's words (`Diagnostic-Code` without its type).
    pub diagnostic: Option<String>,
    /// The address the report is about (`Final-Recipient`, `Original-Rcpt-To`), as written.
    pub recipient: Option<String>,
}

/// Why a message was not classified: it stays in the mailbox for a person to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unclassified(pub String);

/// Reads one message.
pub fn classify(raw: &[u8]) -> Result<Report, Unclassified> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| Unclassified("not an email message (no headers)".into()))?;
    if let Some(report) = standard::read(&message)? {
        return Ok(report);
    }
    if let Some(report) = heuristic::bounce(&message)? {
        return Ok(report);
    }
    if heuristic::is_auto_reply(&message) {
        return Ok(Report {
            kind: Kind::AutoReply,
            format: "auto-reply",
            action: None,
            status: None,
            diagnostic: None,
            recipient: None,
        });
    }
    Err(Unclassified(format!(
        "neither a delivery status notification, a complaint nor an auto-reply (subject: {:?})",
        message.subject().unwrap_or("")
    )))
}

/// The VERP tokens in a message: whatever follows `{local_part}+` up to `@` where that is
/// 40 hex digits, in order of appearance, each once. Unverified: the caller checks the
/// signature.
pub fn verp_tokens(raw: &[u8], local_part: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(raw).to_ascii_lowercase();
    let needle = format!("{}+", local_part.to_ascii_lowercase());
    let mut found: Vec<String> = Vec::new();
    for (at, _) in text.match_indices(&needle) {
        let rest = &text[at + needle.len()..];
        let token: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        if token.len() == 40 && rest[40..].starts_with('@') && !found.contains(&token) {
            found.push(token);
        }
    }
    found
}

/// The `(campaign, delivery)` of our Message-IDs (`bulletin.{campaign}.{delivery}@…`) quoted
/// in a message, each once.
pub fn quoted_message_ids(raw: &[u8]) -> Vec<(i64, i64)> {
    let text = String::from_utf8_lossy(raw);
    let mut found = Vec::new();
    for (at, _) in text.match_indices("bulletin.") {
        let rest = &text[at + "bulletin.".len()..];
        let mut numbers = rest.splitn(3, ['.', '@']);
        let (Some(c), Some(d)) = (numbers.next(), numbers.next()) else {
            continue;
        };
        let after = &rest[c.len() + 1 + d.len()..];
        if let (Ok(c), Ok(d), true) = (c.parse(), d.parse(), after.starts_with('@'))
            && !found.contains(&(c, d))
        {
            found.push((c, d));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_message_ids_are_found_where_quoted() {
        let token = "0123456789abcdef0123456789abcdef01234567";
        let raw = format!(
            "To: Bounces+{}@b.example.org\r\nX: bounces+{token}@b.example.org bounces+12@x\r\n\r\n\
             Message-ID: <bulletin.3.44@example.org> <bulletin.x.1@y>",
            token.to_uppercase()
        );
        assert_eq!(verp_tokens(raw.as_bytes(), "bounces"), vec![token]);
        assert_eq!(quoted_message_ids(raw.as_bytes()), vec![(3, 44)]);
    }
}
