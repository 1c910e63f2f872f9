//! The double opt-in mail: "someone asked to receive this list at this address; open this
//! link to confirm". Built with lettre's `Message` builder (text and HTML alternatives) from
//! the list identity in `[list]`, and sent through the relay in `[smtp] url`.
//!
//! It lives here, not in the `mail` module that formats editions, only until that module
//! offers a transport to share; it is one small message, sent one at a time.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::pages::{Lang, escape};
use super::{AppState, WebError};
use crate::address::Address;
use crate::config::Config;

/// Sends confirmation mails through the configured relay.
#[derive(Clone)]
pub struct ConfirmationMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    site_name: String,
    postal_address: Option<String>,
    confirm_days: u64,
    /// The relay without credentials, for messages.
    relay: String,
}

impl std::fmt::Debug for ConfirmationMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConfirmationMailer({})", self.relay)
    }
}

impl ConfirmationMailer {
    /// A mailer for the relay and identity in `config`.
    pub fn from_config(config: &Config) -> Result<Self, WebError> {
        let invalid = |origin: &str, message: String| WebError::Config {
            origin: origin.to_string(),
            message,
        };
        let url = &config.smtp.url;
        let relay = url.split('?').next().unwrap_or(url).to_string();
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|e| {
            invalid(
                "[smtp] url",
                format!("`{relay}` cannot be used: {e}; e.g. smtp://127.0.0.1:2525"),
            )
        })?;
        if let Some(user) = &config.smtp.username {
            let password = config
                .smtp_password()
                .map_err(|e| invalid("[smtp] password_file", e.to_string()))?
                .ok_or_else(|| {
                    invalid(
                        "[smtp] username",
                        "is set but no password is: set BULLETIN_SMTP_PASSWORD or [smtp] password_file".into(),
                    )
                })?;
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        let transport = builder.timeout(Some(Duration::from_secs(30))).build();
        let from: Mailbox = config.list.from.parse().map_err(|e| {
            invalid(
                "[list] from",
                format!(
                    "`{}` is not an address: {e}; write it as `Name <address@example.org>`",
                    config.list.from
                ),
            )
        })?;
        let reply_to = match &config.list.reply_to {
            None => None,
            Some(r) => Some(r.parse().map_err(|e| {
                invalid("[list] reply_to", format!("`{r}` is not an address: {e}"))
            })?),
        };
        Ok(Self {
            transport,
            from,
            reply_to,
            site_name: config.list.name.clone(),
            postal_address: config.list.postal_address.clone(),
            confirm_days: (config.server.confirm_ttl_hours / 24).max(1),
            relay,
        })
    }

    /// The message for `to`, asking to confirm `list` with `link`.
    pub fn message(
        &self,
        to: &Address,
        list: &str,
        link: &str,
        lang: Lang,
    ) -> Result<Message, WebError> {
        let s = lang.strings();
        let days = self.confirm_days.to_string();
        let subject = s.mail_subject.replace("{list}", list);
        let mut text = s
            .mail_body
            .replace("{list}", list)
            .replace("{link}", link)
            .replace("{days}", &days);
        text.push_str(&format!("\n-- \n{}\n", self.site_name));
        if let Some(postal) = &self.postal_address {
            text.push_str(&format!("{postal}\n"));
        }
        let html = self.html(&text, link, lang);
        let to: Mailbox = to
            .as_str()
            .parse()
            .map_err(|e| WebError::Mail(format!("the recipient is not usable: {e}")))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject);
        if let Some(r) = &self.reply_to {
            builder = builder.reply_to(r.clone());
        }
        builder
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(html),
                    ),
            )
            .map_err(|e| WebError::Mail(e.to_string()))
    }

    /// The HTML alternative: the text's paragraphs, with the link as a button.
    fn html(&self, text: &str, link: &str, lang: Lang) -> String {
        let link_html = escape(link);
        let mut body = String::new();
        for para in text.split("\n\n") {
            let para = para.trim();
            if para.is_empty() {
                continue;
            }
            if para == link {
                body.push_str(&format!(
                    "<p><a href=\"{link_html}\" style=\"display:inline-block;padding:10px 18px;\
                     background:#1d4ed8;color:#ffffff;text-decoration:none;border-radius:4px\">{}</a></p>\
                     <p style=\"font-size:13px;color:#555\">{link_html}</p>",
                    escape(lang.strings().mail_button)
                ));
            } else {
                body.push_str(&format!("<p>{}</p>", escape(para).replace('\n', "<br>")));
            }
        }
        format!(
            "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"></head>\
             <body style=\"font-family:sans-serif;line-height:1.5;color:#1a1a1a\">{body}</body></html>",
            lang.tag()
        )
    }

    /// Sends one message.
    pub async fn send(&self, message: Message) -> Result<(), WebError> {
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| WebError::Smtp {
                relay: self.relay.clone(),
                message: e.to_string(),
            })
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
            let sent = match mailer.message(&to, &list, &link, lang) {
                Ok(message) => mailer.send(message).await,
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
        let message = mailer.message(&to, "news", link, Lang::Fr).expect("builds");
        let raw = String::from_utf8_lossy(&message.formatted()).to_string();
        assert!(
            raw.contains("From: Newsletter <newsletter@example.org>"),
            "{raw}"
        );
        assert!(raw.contains("To: ana@example.org"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/html"), "{raw}");
        assert!(raw.contains(link), "{raw}");
    }
}
