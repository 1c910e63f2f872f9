//! Bounces that are not RFC 3464 reports (qmail's "failure notice", old Exim and Exchange
//! notices, some providers' own formats) and auto-replies.
//!
//! A message counts as a bounce only when it says so where bounces do: sent by a mailer
//! daemon or postmaster, an Exim `X-Failed-Recipients` header, or a notification subject.
//! Its meaning then comes from the status codes it states (an RFC 3463 enhanced code such as
//! qmail's `(#5.1.1)` or Exchange's `550 5.1.1 RESOLVER.ADR.RecipNotFound`), never from its
//! wording: a notice that states no code is left for a person.

use mail_parser::Message;

use super::{Report, Unclassified, policy};
use crate::delivery::EnhancedCode;

/// Subjects of bounce notices, lower case.
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliverable",
    "undelivered mail",
    "delivery status notification",
    "mail delivery failed",
    "delivery failure",
    "failure notice",
    "returned mail",
    "delivery has failed",
    "mail delivery subsystem",
    "non remis",
    "unzustellbar",
];

/// Local parts of the senders of bounce notices, lower case.
const DAEMONS: &[&str] = &["mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"];

/// A non-standard bounce, when the message is one.
pub(super) fn bounce(m: &Message<'_>) -> Result<Option<Report>, Unclassified> {
    let subject = m.subject().unwrap_or("").to_ascii_lowercase();
    let from_daemon = m
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .is_some_and(|a| {
            let local = a.split('@').next().unwrap_or("").to_ascii_lowercase();
            DAEMONS.contains(&local.as_str())
        });
    let failed_header = m.header_raw("X-Failed-Recipients").map(str::trim);
    let looks_like_bounce = from_daemon
        || failed_header.is_some()
        || BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s));
    if !looks_like_bounce {
        return Ok(None);
    }
    let text: String = m
        .text_bodies()
        .filter_map(|p| p.text_contents())
        .collect::<Vec<_>>()
        .join("\n");
    let Some((status, reply)) = first_code(&text) else {
        return Err(Unclassified(
            "a bounce notice that states no status code: read it and act by hand".into(),
        ));
    };
    let delayed = status.class == 4
        && ["delay", "warning", "will retry", "still trying"]
            .iter()
            .any(|w| subject.contains(w));
    let action = if delayed { "delayed" } else { "failed" };
    Ok(Some(Report {
        kind: policy::kind_for(Some(action), Some(status), reply.as_deref()),
        format: "non-standard",
        action: Some(action.into()),
        status: Some(status.to_string()),
        diagnostic: reply,
        recipient: failed_header.map(str::to_string),
    }))
}

/// The first RFC 3463 code in the text (class 4 or 5), and the line holding it as the
/// diagnostic.
fn first_code(text: &str) -> Option<(EnhancedCode, Option<String>)> {
    for line in text.lines() {
        for word in line.split(|c: char| {
            c.is_whitespace() || matches!(c, '(' | ')' | '#' | '\'' | '"' | ';' | ',')
        }) {
            let word = word.trim_end_matches(['.', ':']);
            if let Some(code) = EnhancedCode::parse(word).filter(|c| c.class != 2) {
                let line = line.trim();
                let line: String = line.chars().take(300).collect();
                return Some((code, Some(line)));
            }
        }
    }
    None
}

/// RFC 3834 auto-replies and the common vacation responders' marks.
pub(super) fn is_auto_reply(m: &Message<'_>) -> bool {
    let raw = |name: &str| m.header_raw(name).map(|v| v.trim().to_ascii_lowercase());
    if raw("Auto-Submitted").is_some_and(|v| v != "no") {
        return true;
    }
    if raw("X-Autoreply").is_some() || raw("X-Autorespond").is_some() {
        return true;
    }
    if raw("Precedence").is_some_and(|v| v == "auto_reply") {
        return true;
    }
    let subject = m.subject().unwrap_or("").to_ascii_lowercase();
    [
        "out of office",
        "automatic reply",
        "auto:",
        "autoreply",
        "abwesenheit",
    ]
    .iter()
    .any(|s| subject.starts_with(s) || subject.contains(&format!(": {s}")))
}
