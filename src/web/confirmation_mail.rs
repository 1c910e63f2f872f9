//! The double opt-in mail: "someone asked to receive this list at this address; open this
//! link to confirm". Built by the `mail` module like an edition (the list's `From`, the same
//! MIME structure and header hygiene, DKIM when `[dkim]` is set), as a transactional message
//! without List-Unsubscribe, and sent through the same SMTP transport as `bulletin send`, with
//! its rules (STARTTLS required off loopback, the relay's password from env or a file).

use crate::address::Address;
use crate::config::{Config, ConfigError};
use crate::delivery::{Session, SmtpRelay, Transport};
use crate::mail::{self, Mailbox, Sender, Transactional};

use super::pages::{Arg, Lang, Words, escape};
use super::{AppState, WebError};

/// Sends confirmation mails through the configured relay.
#[derive(Debug)]
pub struct ConfirmationMailer {
    relay: SmtpRelay,
    sender: Sender,
    signer: Option<mail::dkim::Signer>,
    site_name: String,
    postal_address: Option<String>,
    confirm_days: u64,
}

impl ConfirmationMailer {
    /// A mailer for the relay, list identity and DKIM key in `config`.
    pub fn from_config(config: &Config) -> Result<Self, WebError> {
        let invalid = |origin: &str, message: String| WebError::Config {
            origin: origin.to_string(),
            message,
        };
        let credentials = config.smtp_credentials().map_err(|e| match e {
            ConfigError::Invalid { origin, message } => invalid(&origin, message),
            other => invalid("[smtp] password_file", other.to_string()),
        })?;
        let relay = SmtpRelay::from_url(&config.smtp.url, credentials)
            .map_err(|e| invalid("[smtp] url", e.to_string()))?
            .with_timeouts(crate::delivery::SmtpTimeouts::from_config(config));
        let sender = Sender::from_config(config).map_err(|e| invalid("[list]", e.to_string()))?;
        let signer = mail::dkim::Signer::from_config(config)
            .map_err(|e| invalid("[dkim] key_file", e.to_string()))?;
        Ok(Self {
            relay,
            sender,
            signer,
            site_name: config.list.name.clone(),
            postal_address: config.list.postal_address.clone(),
            confirm_days: (config.server.confirm_ttl_hours / 24).max(1),
        })
    }

    /// The message for `to`, asking to confirm `list` (its display name) with `link`, in
    /// the language of `words` (the `confirmation` catalogue): its bytes, signed when a DKIM
    /// key is configured.
    pub fn message(
        &self,
        to: &Address,
        list: &str,
        link: &str,
        words: Words<'_>,
    ) -> Result<Vec<u8>, WebError> {
        let days = i64::try_from(self.confirm_days).unwrap_or(i64::MAX);
        let list_arg = [("list", Arg::Text(list))];
        let days_arg = [("days", Arg::Number(days))];
        let subject = words.text_with("subject", &list_arg);
        // Paragraphs, each as text and as HTML; `None` marks the link's place.
        let paragraphs: [Option<(String, String)>; 4] = [
            Some((words.text("greeting"), words.html("greeting"))),
            Some((
                words.text_with("asked", &list_arg),
                words.html_with("asked", &list_arg),
            )),
            None,
            Some((
                words.text_with("validity", &days_arg),
                words.html_with("validity", &days_arg),
            )),
        ];
        let mut text = String::new();
        for paragraph in &paragraphs {
            match paragraph {
                Some((plain, _)) => text.push_str(plain),
                None => text.push_str(link),
            }
            text.push_str("\n\n");
        }
        text.push_str(&format!("-- \n{}\n", self.site_name));
        if let Some(postal) = &self.postal_address {
            text.push_str(&format!("{postal}\n"));
        }
        let html = self.html(&paragraphs, link, words);
        let now = time::OffsetDateTime::now_utc();
        // Unique enough for threading and duplicate detection; not a secret.
        let message_id = format!(
            "confirm.{}.{:016x}@{}",
            now.unix_timestamp(),
            fastrand::u64(..),
            self.sender.message_id_domain
        );
        let to = Mailbox {
            name: String::new(),
            address: to.clone(),
        };
        let bytes = mail::build_transactional(
            &self.sender,
            &Transactional {
                to: &to,
                subject: &subject,
                message_id: &message_id,
                date: &mail::rfc5322_date(now),
                text: &text,
                html: &html,
            },
        );
        Ok(match &self.signer {
            Some(signer) => signer.sign(&bytes, now.unix_timestamp()),
            None => bytes,
        })
    }

    /// The HTML alternative: the paragraphs, with the link as a button, laid out in the
    /// language's direction.
    fn html(
        &self,
        paragraphs: &[Option<(String, String)>],
        link: &str,
        words: Words<'_>,
    ) -> String {
        let link_html = escape(link);
        let dir = words.lang().dir();
        let mut body = String::new();
        for paragraph in paragraphs {
            match paragraph {
                Some((_, html)) => body.push_str(&format!("<p>{html}</p>")),
                // The address itself is always left to right, even inside Arabic text.
                None => body.push_str(&format!(
                    "<p><a href=\"{link_html}\" style=\"display:inline-block;padding:10px 18px;\
                     background:#1d4ed8;color:#ffffff;text-decoration:none;border-radius:4px\">{}</a></p>\
                     <p dir=\"ltr\" style=\"font-size:13px;color:#555\">{link_html}</p>",
                    words.html("button")
                )),
            }
        }
        let signature = escape(&self.site_name);
        let postal = self
            .postal_address
            .as_deref()
            .map(|p| format!("<br>{}", escape(p)))
            .unwrap_or_default();
        format!(
            "<!doctype html><html lang=\"{lang}\" dir=\"{dir}\"><head><meta charset=\"utf-8\"></head>\
             <body style=\"font-family:sans-serif;line-height:1.5;color:#1a1a1a;text-align:{start}\">\
             {body}<p style=\"color:#555\">{signature}{postal}</p></body></html>",
            lang = words.lang().tag(),
            dir = dir.as_str(),
            start = dir.start(),
        )
    }

    /// Sends one message to `to`, over a connection of its own (confirmations come one by
    /// one, minutes apart; a pooled connection would mostly be idle or timed out).
    pub async fn send(&self, to: &Address, message: &[u8]) -> Result<(), WebError> {
        let failed = |message: String| WebError::Smtp {
            relay: self.relay.describe(),
            message,
        };
        let mut session = self.relay.open().await.map_err(|e| failed(e.to_string()))?;
        let sent = session
            .send(self.sender.from.address.as_str(), to.as_str(), message)
            .await;
        session.close().await;
        sent.map(|_| ()).map_err(|e| failed(e.to_string()))
    }
}

impl AppState {
    /// Builds and sends a confirmation mail in the background: the form's answer must not
    /// wait for the relay, nor take longer for a new address than for a known one.
    pub(crate) fn send_confirmation(&self, to: Address, list: String, link: String, lang: Lang) {
        let state = self.clone();
        tokio::spawn(async move {
            // Holding a slot bounds the mails in flight and lets shutdown wait for this one.
            let Ok(_slot) = state.inner.mail_slots.clone().acquire_owned().await else {
                return;
            };
            let mailer = &state.inner.mailer;
            let words = state.settings().words.confirmation(lang);
            let sent = match mailer.message(&to, &list, &link, words) {
                Ok(message) => mailer.send(&to, &message).await,
                Err(e) => Err(e),
            };
            // The log names neither the address nor the link.
            match sent {
                Ok(()) => eprintln!("serve: confirmation mail sent"),
                Err(e) => eprintln!("serve: confirmation mail failed: {e}"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_carries_link_identity_and_both_parts() {
        let config = Config::default();
        let mailer = ConfirmationMailer::from_config(&config).expect("default config works");
        let to = Address::parse("ana@example.org").expect("valid");
        let link = "http://127.0.0.1:8080/confirm/abc";
        let words = crate::web::PageWords::load(None).expect("catalogues");
        let fr = words.lang("fr").expect("French pages");
        let message = mailer
            .message(&to, "Nouvelles", link, words.confirmation(fr))
            .expect("builds");
        let raw = String::from_utf8_lossy(&message).to_string();
        assert!(
            raw.contains("From: Newsletter <newsletter@example.org>"),
            "{raw}"
        );
        assert!(raw.contains("To: <ana@example.org>"), "{raw}");
        assert!(raw.contains("Auto-Submitted: auto-generated"), "{raw}");
        assert!(!raw.contains("List-Unsubscribe"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/html"), "{raw}");
        assert!(raw.contains(link), "{raw}");
    }
}
