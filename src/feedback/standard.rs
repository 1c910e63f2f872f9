//! The two standard formats: a `multipart/report` with a `message/delivery-status` part
//! (RFC 3464, and its internationalised `message/global-delivery-status`, RFC 6533) or a
//! `message/feedback-report` part (ARF, RFC 5965).

use mail_parser::{Message, MimeHeaders};

use super::fields::{Block, blocks};
use super::{Kind, Report, Unclassified, policy};
use crate::delivery::EnhancedCode;

/// The report in a message, when it carries a standard one.
pub(super) fn read(m: &Message<'_>) -> Result<Option<Report>, Unclassified> {
    for part in &m.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        if !ct.ctype().eq_ignore_ascii_case("message") {
            continue;
        }
        let body = String::from_utf8_lossy(part.contents());
        match ct.subtype().map(str::to_ascii_lowercase).as_deref() {
            Some("delivery-status" | "global-delivery-status") => return dsn(&body).map(Some),
            Some("feedback-report") => return arf(&body).map(Some),
            _ => {}
        }
    }
    Ok(None)
}

/// RFC 3464: the per-message block, then one block per recipient. With VERP each bounce is
/// about one delivery; where a report lists several recipients, the failed one counts.
fn dsn(body: &str) -> Result<Report, Unclassified> {
    let all = blocks(body);
    let recipients: Vec<&Block> = all
        .iter()
        .filter(|b| b.get("Action").is_some() || b.get("Final-Recipient").is_some())
        .collect();
    let chosen = recipients
        .iter()
        .find(|b| {
            b.get("Action")
                .is_some_and(|a| a.eq_ignore_ascii_case("failed"))
        })
        .or_else(|| recipients.first())
        .ok_or_else(|| {
            Unclassified("a delivery-status report with no per-recipient fields".into())
        })?;
    let action = chosen.get("Action").map(|a| a.to_ascii_lowercase());
    let status_text = chosen
        .get("Status")
        .and_then(|s| s.split_whitespace().next())
        .map(str::to_string);
    let status = status_text.as_deref().and_then(EnhancedCode::parse);
    let diagnostic = chosen.typed("Diagnostic-Code").map(str::to_string);
    Ok(Report {
        kind: policy::kind_for(action.as_deref(), status, diagnostic.as_deref()),
        format: "dsn",
        action,
        status: status.map(|s| s.to_string()).or(status_text),
        diagnostic,
        recipient: chosen
            .typed("Final-Recipient")
            .or_else(|| chosen.typed("Original-Recipient"))
            .map(strip_brackets),
    })
}

/// RFC 5965: one block; `abuse`, `fraud`, `virus` and `other` are complaints about our mail.
/// `not-spam` and `auth-failure` reports are not: they are left for a person.
fn arf(body: &str) -> Result<Report, Unclassified> {
    let all = blocks(body);
    let block = all
        .first()
        .ok_or_else(|| Unclassified("an empty feedback report".into()))?;
    let feedback_type = block
        .get("Feedback-Type")
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| Unclassified("a feedback report without Feedback-Type".into()))?;
    if !matches!(
        feedback_type.as_str(),
        "abuse" | "fraud" | "virus" | "other"
    ) {
        return Err(Unclassified(format!(
            "a feedback report of type `{feedback_type}`, which is not a complaint"
        )));
    }
    Ok(Report {
        kind: Kind::Complaint,
        format: "arf",
        diagnostic: block
            .get("User-Agent")
            .map(|ua| format!("reported by {ua}")),
        action: Some(feedback_type),
        status: None,
        recipient: block.get("Original-Rcpt-To").map(strip_brackets),
    })
}

fn strip_brackets(address: &str) -> String {
    address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}
