//! What a bounce means for the address, from RFC 3464's `Action` and RFC 3463's enhanced
//! status code (or, when a server gave none, the SMTP reply code): never from words in the
//! diagnostic. The same codes the send path reads at RCPT time (`delivery::reply`) mean the
//! same here: only a mailbox-level permanent failure blocklists at once.

use super::Kind;
use crate::delivery::{EnhancedCode, Reply};

/// The kind of a report with this action, status and diagnostic.
pub fn kind_for(
    action: Option<&str>,
    status: Option<EnhancedCode>,
    diagnostic: Option<&str>,
) -> Kind {
    let action = action.map(str::to_ascii_lowercase);
    match action.as_deref() {
        Some("delivered" | "relayed" | "expanded") => return Kind::Delivered,
        Some("delayed") => return Kind::Delayed,
        _ => {}
    }
    // A server's own code in the diagnostic is more precise than a relay's generic Status.
    let reply = diagnostic.and_then(smtp_reply);
    let code = status
        .filter(|s| !(s.subject == 0 && s.detail == 0))
        .or(reply.as_ref().and_then(|r| r.enhanced))
        .or(status);
    match code {
        Some(e) => kind_for_code(e),
        None => match reply.map(|r| r.code) {
            Some(550 | 551 | 553) => Kind::Hard,
            Some(552) => Kind::Soft,
            Some(400..=499) => Kind::Soft,
            Some(_) => Kind::Rejected,
            // Failed, and nothing says why: not enough to take an address away.
            None => Kind::Rejected,
        },
    }
}

/// The kind of a final failure with this enhanced code.
pub fn kind_for_code(e: EnhancedCode) -> Kind {
    if e.class == 4 {
        return Kind::Soft;
    }
    match (e.subject, e.detail) {
        // Bad mailbox, bad domain, bad syntax, moved with no forwarding, null MX; the mailbox
        // is disabled.
        (1, 1 | 2 | 3 | 6 | 10) | (2, 1) => Kind::Hard,
        // Mailbox full, or some other mailbox state that may pass.
        (2, 0 | 2) => Kind::Soft,
        // X.1.7/X.1.8 (our sender address), X.2.3 (too big), X.2.4 (list expansion),
        // X.3-X.7 (system, network, protocol, content, policy): not about the mailbox.
        _ => Kind::Rejected,
    }
}

/// `550 5.1.1 <a@b>: Recipient address rejected` as a reply, when it starts with a code.
pub fn smtp_reply(text: &str) -> Option<Reply> {
    let text = text.trim();
    let code: u16 = text.get(..3)?.parse().ok()?;
    if !(200..600).contains(&code) {
        return None;
    }
    let rest = text[3..].trim_start_matches(['-', ' ']);
    Some(Reply::new(code, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> Option<EnhancedCode> {
        EnhancedCode::parse(s)
    }

    #[test]
    fn mailbox_level_permanent_failures_are_hard() {
        assert_eq!(kind_for(Some("failed"), code("5.1.1"), None), Kind::Hard);
        assert_eq!(kind_for(Some("failed"), code("5.2.2"), None), Kind::Soft);
        assert_eq!(kind_for(Some("failed"), code("4.4.7"), None), Kind::Soft);
        assert_eq!(
            kind_for(Some("failed"), code("5.7.1"), None),
            Kind::Rejected
        );
        assert_eq!(
            kind_for(Some("delayed"), code("4.2.2"), None),
            Kind::Delayed
        );
        assert_eq!(
            kind_for(Some("relayed"), code("2.0.0"), None),
            Kind::Delivered
        );
        // A relay's generic 5.0.0 with the remote server's precise code in the diagnostic.
        assert_eq!(
            kind_for(
                Some("failed"),
                code("5.0.0"),
                Some("550 5.1.1 User unknown")
            ),
            Kind::Hard
        );
        // No enhanced code anywhere: the reply code.
        assert_eq!(
            kind_for(Some("failed"), None, Some("550 No such user")),
            Kind::Hard
        );
        assert_eq!(kind_for(Some("failed"), None, None), Kind::Rejected);
    }
}
