//! What an SMTP failure means, decided from where in the conversation it happened (the stage),
//! the reply's basic code (RFC 5321) and its enhanced status code (RFC 3463) — never from
//! words or digits that merely appear somewhere in the reply's text.
//!
//! The distinction that matters most is *who* is refused. A `550 5.1.1` at RCPT TO says this
//! recipient's mailbox does not exist; a `550 5.1.0 Sender address rejected` at MAIL FROM, a
//! `535 5.7.8` at AUTH or a `554 5.7.1 Client host rejected` in the greeting say the relay
//! refuses *us*, and no recipient may be marked for it: the campaign pauses instead, so that
//! the same `send` resumes once the configuration is fixed.

use std::fmt;
use std::time::Duration;

/// Where in the SMTP conversation a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Opening the TCP (or implicit TLS) connection.
    Connect,
    /// The server's greeting and our EHLO.
    Greeting,
    /// STARTTLS.
    StartTls,
    /// AUTH.
    Auth,
    /// MAIL FROM.
    MailFrom,
    /// RCPT TO, or a check we make for this recipient before it (SMTPUTF8).
    RcptTo,
    /// The DATA command, before any of the message was sent.
    Data,
    /// Sending the message's content.
    Content,
    /// Waiting for the reply to the final dot: the whole message was handed over.
    DataEnd,
}

impl Stage {
    /// Stages that concern the session as a whole rather than one recipient.
    pub fn is_session(self) -> bool {
        matches!(
            self,
            Self::Connect | Self::Greeting | Self::StartTls | Self::Auth | Self::MailFrom
        )
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Greeting => "greeting/EHLO",
            Self::StartTls => "STARTTLS",
            Self::Auth => "AUTH",
            Self::MailFrom => "MAIL FROM",
            Self::RcptTo => "RCPT TO",
            Self::Data => "DATA",
            Self::Content => "message content",
            Self::DataEnd => "end of data",
        })
    }
}

/// An RFC 3463 enhanced status code, `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancedCode {
    /// 2, 4 or 5.
    pub class: u8,
    /// 0–7 in RFC 3463's registry (address, mailbox, system, network, protocol, content,
    /// security).
    pub subject: u16,
    /// The detail within the subject.
    pub detail: u16,
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// A reply from the server: its code, the enhanced code it led with (if any) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit basic code.
    pub code: u16,
    /// The enhanced status code at the start of the text, when the server sent one whose class
    /// agrees with the basic code.
    pub enhanced: Option<EnhancedCode>,
    /// The text, lines joined by spaces (without the code).
    pub text: String,
}

impl Reply {
    /// Builds a reply from its code and text, reading the enhanced code only where RFC 3463
    /// puts it: as the first word of the text, with a class equal to the code's first digit.
    pub fn new(code: u16, text: impl Into<String>) -> Self {
        let text = text.into();
        let enhanced = text
            .split_whitespace()
            .next()
            .and_then(parse_enhanced)
            .filter(|e| u16::from(e.class) == code / 100);
        Self {
            code,
            enhanced,
            text,
        }
    }

    /// 4xx.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

impl EnhancedCode {
    /// Reads `class.subject.detail` (a DSN's `Status:` field, the first word of a reply).
    pub fn parse(word: &str) -> Option<Self> {
        parse_enhanced(word)
    }
}

/// `class.subject.detail` with RFC 3463's bounds (class 2, 4 or 5; 1–3 digits each).
fn parse_enhanced(word: &str) -> Option<EnhancedCode> {
    let mut parts = word.split('.');
    let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let number = |s: &str, max_len: usize| -> Option<u16> {
        (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let class = u8::try_from(number(class, 1)?).ok()?;
    if !matches!(class, 2 | 4 | 5) {
        return None;
    }
    Some(EnhancedCode {
        class,
        subject: number(subject, 3)?,
        detail: number(detail, 3)?,
    })
}

/// What went wrong at a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The server answered with a failure reply.
    Reply(Reply),
    /// The server did not answer within the stage's time limit.
    Timeout(Duration),
    /// The connection failed or closed (I/O error, end of stream, unreadable reply).
    Connection(String),
    /// Our own rule refused to go on (no STARTTLS, no AUTH offered, no SMTPUTF8, a message
    /// that cannot be built, a local outbox that cannot be written).
    Local(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reply(r) => write!(f, "{r}"),
            Self::Timeout(d) => write!(f, "no answer within {} s", d.as_secs_f64()),
            Self::Connection(m) | Self::Local(m) => f.write_str(m),
        }
    }
}

/// What the engine does with a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Try this recipient again later; it counts as one of their attempts.
    RetryRecipient,
    /// The relay could not take mail just now (down, busy, greylisting us): put the recipient
    /// back without charging them an attempt.
    RelayUnavailable,
    /// This recipient is refused for good. `mailbox_gone` when the reply says the mailbox does
    /// not exist (then the address is blocklisted).
    RecipientRefused {
        /// RCPT-stage (or per-recipient DATA) 5.1.1 or 5.1.10.
        mailbox_gone: bool,
    },
    /// A permanent refusal that may be about this recipient or about us (policy, content,
    /// a relay that does not relay for us): it becomes the recipient's failure only once the
    /// relay is seen accepting other mail, and pauses the campaign when refusals like it keep
    /// coming with nothing accepted in between.
    Ambiguous,
    /// The relay refuses us (sender, credentials, client, TLS): pause, mark nobody.
    RelayRefusesUs,
    /// The whole message was handed over and no final reply came back: the relay may have it.
    Uncertain,
}

/// The verdict for a failure at `stage`.
pub fn verdict(stage: Stage, problem: &Problem) -> Verdict {
    match problem {
        Problem::Local(_) if stage.is_session() => Verdict::RelayRefusesUs,
        Problem::Local(_) => Verdict::RecipientRefused {
            mailbox_gone: false,
        },
        Problem::Timeout(_) | Problem::Connection(_) if stage == Stage::DataEnd => {
            Verdict::Uncertain
        }
        Problem::Timeout(_) | Problem::Connection(_) if stage.is_session() => {
            Verdict::RelayUnavailable
        }
        Problem::Timeout(_) | Problem::Connection(_) => Verdict::RetryRecipient,
        Problem::Reply(r) if r.is_transient() && stage.is_session() => Verdict::RelayUnavailable,
        Problem::Reply(r) if r.is_transient() => Verdict::RetryRecipient,
        Problem::Reply(r) if !r.is_permanent() => {
            // A 1xx/2xx/3xx where a failure was reported: the conversation is out of step.
            if stage.is_session() {
                Verdict::RelayUnavailable
            } else {
                Verdict::RetryRecipient
            }
        }
        Problem::Reply(_) if stage.is_session() => Verdict::RelayRefusesUs,
        Problem::Reply(r) => permanent_recipient_stage(r),
    }
}

/// A 5xx at RCPT TO, DATA or the end of data.
fn permanent_recipient_stage(reply: &Reply) -> Verdict {
    // Authentication or encryption required: about us, whatever the stage.
    if matches!(reply.code, 530 | 535 | 538) {
        return Verdict::RelayRefusesUs;
    }
    let Some(e) = reply.enhanced else {
        return Verdict::Ambiguous;
    };
    match (e.subject, e.detail) {
        // X.1.1 bad destination mailbox, X.1.10 recipient address has null MX.
        (1, 1 | 10) => Verdict::RecipientRefused { mailbox_gone: true },
        // Bad destination system / syntax, ambiguous destination, mailbox moved.
        (1, 2 | 3 | 4 | 6) => Verdict::RecipientRefused {
            mailbox_gone: false,
        },
        // X.1.7 / X.1.8: our sender address is bad (Postfix reports MAIL FROM restrictions
        // at RCPT time by default).
        (1, 7 | 8) => Verdict::RelayRefusesUs,
        // X.2.x: the recipient's mailbox (disabled, full, message too big for it).
        (2, _) => Verdict::RecipientRefused {
            mailbox_gone: false,
        },
        // Authentication, encryption or credentials required / expired.
        (7, 8 | 9 | 11 | 14) => Verdict::RelayRefusesUs,
        // X.1.0 (often "Sender address rejected"), X.7.x policy, X.6.x content, X.3.x/X.4.x
        // system and network, X.5.x protocol: could be about any of us.
        _ => Verdict::Ambiguous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, text: &str) -> Problem {
        Problem::Reply(Reply::new(code, text))
    }

    #[test]
    fn the_enhanced_code_is_read_only_where_rfc_3463_puts_it() {
        let r = Reply::new(550, "5.1.1 <a@example.org>: Recipient address rejected");
        assert_eq!(
            r.enhanced,
            Some(EnhancedCode {
                class: 5,
                subject: 1,
                detail: 1
            })
        );
        // Digits inside an IP address or later in the text are not a status code.
        assert_eq!(
            Reply::new(554, "Client host [10.5.1.1] blocked using zen").enhanced,
            None
        );
        assert_eq!(Reply::new(550, "rejected, see 5.1.1").enhanced, None);
        // A class that contradicts the basic code is ignored.
        assert_eq!(Reply::new(450, "5.1.1 nope").enhanced, None);
        assert_eq!(Reply::new(550, "5.1.1000 nope").enhanced, None);
    }

    #[test]
    fn only_a_recipient_stage_no_such_mailbox_blocklists() {
        let gone = Verdict::RecipientRefused { mailbox_gone: true };
        assert_eq!(
            verdict(Stage::RcptTo, &reply(550, "5.1.1 User unknown")),
            gone
        );
        assert_eq!(verdict(Stage::RcptTo, &reply(550, "5.1.10 null MX")), gone);
        assert_eq!(
            verdict(Stage::DataEnd, &reply(550, "5.1.1 no such user")),
            gone
        );
        // The same code at a session stage is about us.
        assert_eq!(
            verdict(Stage::MailFrom, &reply(550, "5.1.1 unknown sender")),
            Verdict::RelayRefusesUs
        );
        // An IP that contains "5.1.1" says nothing about the mailbox.
        assert_eq!(
            verdict(Stage::RcptTo, &reply(554, "Client host [10.5.1.1] blocked")),
            Verdict::Ambiguous
        );
    }

    #[test]
    fn refusals_of_us_pause_instead_of_marking_recipients() {
        for (stage, code, text) in [
            (Stage::MailFrom, 550, "5.1.0 Sender address rejected"),
            (Stage::Auth, 535, "5.7.8 Authentication credentials invalid"),
            (Stage::Greeting, 554, "5.7.1 Client host rejected"),
            (Stage::RcptTo, 530, "5.7.0 Authentication required"),
            (Stage::RcptTo, 553, "5.1.8 Sender domain does not exist"),
        ] {
            assert_eq!(
                verdict(stage, &reply(code, text)),
                Verdict::RelayRefusesUs,
                "{stage} {code} {text}"
            );
        }
        assert_eq!(
            verdict(Stage::StartTls, &Problem::Local("no STARTTLS".into())),
            Verdict::RelayRefusesUs
        );
    }

    #[test]
    fn connection_trouble_is_uncertain_only_after_the_final_dot() {
        let dropped = Problem::Connection("connection closed".into());
        let slow = Problem::Timeout(Duration::from_secs(600));
        assert_eq!(verdict(Stage::DataEnd, &dropped), Verdict::Uncertain);
        assert_eq!(verdict(Stage::DataEnd, &slow), Verdict::Uncertain);
        assert_eq!(verdict(Stage::Content, &dropped), Verdict::RetryRecipient);
        assert_eq!(verdict(Stage::Greeting, &slow), Verdict::RelayUnavailable);
        assert_eq!(
            verdict(Stage::MailFrom, &reply(421, "4.3.2 shutting down")),
            Verdict::RelayUnavailable
        );
        assert_eq!(
            verdict(Stage::DataEnd, &reply(451, "4.3.0 try later")),
            Verdict::RetryRecipient
        );
    }

    #[test]
    fn policy_and_content_refusals_are_ambiguous() {
        for (code, text) in [
            (554, "5.7.1 Relay access denied"),
            (550, "5.7.1 Message rejected as spam"),
            (550, "5.1.0 <x@example.org>: Sender address rejected"),
            (554, "5.6.0 Message content rejected"),
            (550, "Requested action not taken"),
        ] {
            assert_eq!(
                verdict(Stage::RcptTo, &reply(code, text)),
                Verdict::Ambiguous,
                "{code} {text}"
            );
        }
        assert_eq!(
            verdict(Stage::RcptTo, &Problem::Local("no SMTPUTF8".into())),
            Verdict::RecipientRefused {
                mailbox_gone: false
            }
        );
    }
}
