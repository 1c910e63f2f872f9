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
    let Some(found) = first_code(&text) else {
        return Err(Unclassified(
            "a bounce notice that states no status code: read it and act by hand".into(),
        ));
    };
    let class = found
        .status
        .map_or(found.reply_code / 100, |s| u16::from(s.class));
    let delayed = class == 4
        && ["delay", "warning", "will retry", "still trying"]
            .iter()
            .any(|w| subject.contains(w));
    let action = if delayed { "delayed" } else { "failed" };
    Ok(Some(Report {
        kind: policy::kind_for(Some(action), found.status, Some(&found.diagnostic)),
        format: "non-standard",
        action: Some(action.into()),
        status: found.status.map(|s| s.to_string()),
        diagnostic: Some(found.diagnostic),
        recipient: failed_header.map(str::to_string),
    }))
}

/// The status a notice states.
struct Found {
    /// The RFC 3463 code, when there is one.
    status: Option<EnhancedCode>,
    /// The SMTP reply code before it (0 when none).
    reply_code: u16,
    /// From the reply code (or the enhanced code) to the end of its line.
    diagnostic: String,
}

/// The first RFC 3463 code in the text (class 4 or 5) and the reply code before it on its
/// line; failing that, the first line holding an SMTP failure reply code (`554 delivery
/// error`, `550-`, `#550`).
fn first_code(text: &str) -> Option<Found> {
    let words = |line: &str| -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let mut start = None;
        for (i, c) in line
            .char_indices()
            .chain(std::iter::once((line.len(), ' ')))
        {
            let separator = c.is_whitespace()
                || matches!(c, '(' | ')' | '#' | '\'' | '"' | ';' | ',' | '[' | ']');
            match (separator, start) {
                (true, Some(s)) => {
                    out.push((s, line[s..i].trim_end_matches(['.', ':', '-']).to_string()));
                    start = None;
                }
                (false, None) => start = Some(i),
                _ => {}
            }
        }
        out
    };
    let reply_code = |w: &str| -> Option<u16> {
        let code: u16 = w.get(..3).filter(|_| w.len() == 3)?.parse().ok()?;
        (400..600).contains(&code).then_some(code)
    };
    let clip = |s: &str| -> String { s.trim().chars().take(300).collect() };
    for line in text.lines() {
        let words = words(line);
        if let Some(i) = words
            .iter()
            .position(|(_, w)| EnhancedCode::parse(w).is_some_and(|c| c.class != 2))
        {
            let status = EnhancedCode::parse(&words[i].1);
            let before = i
                .checked_sub(1)
                .and_then(|j| reply_code(&words[j].1).map(|c| (j, c)));
            let (from, code) = before.map_or((words[i].0, 0), |(j, c)| (words[j].0, c));
            let diagnostic = match before {
                Some(_) => clip(&line[from..]),
                None => clip(line),
            };
            return Some(Found {
                status,
                reply_code: code,
                diagnostic,
            });
        }
    }
    for line in text.lines() {
        if let Some((at, code)) = words(line)
            .iter()
            .find_map(|(at, w)| reply_code(w).map(|c| (*at, c)))
        {
            return Some(Found {
                status: None,
                reply_code: code,
                diagnostic: clip(&format!(
                    "{code} {}",
                    line[at + 3..].trim_start_matches([':', '-', ' '])
                )),
            });
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
