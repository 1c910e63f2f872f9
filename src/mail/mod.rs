//! One message for one recipient: headers, MIME structure and transfer encoding, as the bytes
//! an SMTP relay (or the Maildir outbox) receives.
//!
//! The message is built by hand rather than with lettre's builder: per recipient only the
//! filled HTML and text differ, and the builder's general machinery cost more than the rest of
//! the send path together (measured in the send issue: 124–181 µs a message). What is the same
//! for every recipient (the `From`, `List-Id`, the encoded subject) is prepared once per
//! campaign and language in [`Prepared`].
//!
//! Every value that reaches a header is checked here as a last line of defence: a CR or LF
//! from a subscriber's name, an edition's subject or the configuration can never start a new
//! header. Non-ASCII text is RFC 2047-encoded; the bodies are quoted-printable with lines of at
//! most 76 characters, well inside RFC 5322's limit of 998.

pub mod dkim;
mod personalise;

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::address::Address;
use crate::render::slots::{CompiledTemplate, Piece, SubscriberSlots};

pub use personalise::{Built, PersonaliseError, Personaliser, RecipientData};

/// Why a message could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `[list] from` is not `Name <address>` or a bare address.
    #[error("[list] from `{0}` is not an address such as `Newsletter <news@example.org>`")]
    BadFrom(String),
    /// `[list] reply_to` is not an address.
    #[error("[list] reply_to `{0}` is not an address")]
    BadReplyTo(String),
    /// `[list] id` is not a List-Id (RFC 2919: a dot-atom such as `news.example.org`).
    #[error("[list] id `{0}` is not a List-Id; use a domain-like name such as news.example.org")]
    BadListId(String),
}

/// A name and address, as in `From: "GLO.ACT" <news@example.org>`.
#[derive(Debug, Clone)]
pub struct Mailbox {
    /// Display name (may be empty).
    pub name: String,
    /// The address, validated at its door.
    pub address: Address,
}

impl Mailbox {
    /// Parses `Name <address>` or a bare address.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.chars().any(char::is_control) {
            return None;
        }
        let (name, addr) = match (text.rfind('<'), text.ends_with('>')) {
            (Some(open), true) => (
                text[..open].trim().trim_matches('"').trim(),
                &text[open + 1..text.len() - 1],
            ),
            _ => ("", text),
        };
        Some(Self {
            name: name.to_string(),
            address: Address::parse(addr).ok()?,
        })
    }

    /// The header form: the name encoded or quoted as needed, then `<address>`.
    pub fn header_value(&self) -> String {
        if self.name.is_empty() {
            return format!("<{}>", self.address);
        }
        format!("{} <{}>", phrase(&self.name), self.address)
    }
}

/// The list's identity, checked once per run.
#[derive(Debug, Clone)]
pub struct Sender {
    /// `From`.
    pub from: Mailbox,
    /// `Reply-To`.
    pub reply_to: Option<Mailbox>,
    /// `List-Id` value, e.g. `"GLO.ACT Newsletter" <glo-act.newsletter.example.org>`.
    pub list_id: String,
    /// Right-hand side of our Message-IDs (the From domain).
    pub message_id_domain: String,
    /// A `mailto:` for List-Unsubscribe beside the HTTPS one, if configured.
    pub unsubscribe_mailto: Option<String>,
}

impl Sender {
    /// The sender of `[list]` (name, List-Id, From, Reply-To).
    pub fn from_config(config: &crate::config::Config) -> Result<Self, MailError> {
        let l = &config.list;
        Self::new(&l.name, &l.id, &l.from, l.reply_to.as_deref())
    }

    /// Checks the `[list]` configuration.
    pub fn new(
        list_name: &str,
        list_id: &str,
        from: &str,
        reply_to: Option<&str>,
    ) -> Result<Self, MailError> {
        let from_box = Mailbox::parse(from).ok_or_else(|| MailError::BadFrom(from.to_string()))?;
        let reply_to = match reply_to {
            Some(r) => Some(Mailbox::parse(r).ok_or_else(|| MailError::BadReplyTo(r.to_string()))?),
            None => None,
        };
        let id_ok = !list_id.is_empty()
            && list_id.contains('.')
            && list_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !id_ok {
            return Err(MailError::BadListId(list_id.to_string()));
        }
        Ok(Self {
            message_id_domain: from_box.address.domain().to_string(),
            list_id: format!("{} <{list_id}>", phrase(&sanitize(list_name))),
            from: from_box,
            reply_to,
            unsubscribe_mailto: None,
        })
    }
}

/// The parts of a message that are the same for every recipient of one language.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Headers up to and including `MIME-Version`, except the per-recipient ones.
    common: String,
    /// The HTML part's template, encoded ([`Prepared::with_parts`]).
    html: Option<EncodedTemplate>,
    /// The text part's template, encoded.
    text: Option<EncodedTemplate>,
}

/// A part's template with its fixed text quoted-printable encoded once per edition, so that
/// each message encodes only its recipient's values (a name, two links) instead of the whole
/// 50 KB part: quoted-printable was the largest cost of building a message after RSA.
///
/// Every piece is encoded on its own, from the start of a line, and a soft line break ends
/// each piece that does not end a line, so the pieces join without regard to where the
/// previous one stopped. The decoded part is byte for byte the filled template; only the
/// places of soft line breaks differ from encoding the filled part whole.
#[derive(Debug, Clone)]
pub struct EncodedTemplate {
    literals: Vec<String>,
}

impl EncodedTemplate {
    /// Encodes `template`'s literals; `None` when one ends in a carriage return, whose line
    /// feed could then be the next piece's first character (a CRLF split between pieces would
    /// not decode as one line break): such a template is encoded whole, per message.
    pub fn new(template: &CompiledTemplate) -> Option<Self> {
        let literals = template.literals();
        if literals.iter().any(|l| l.ends_with('\r')) {
            return None;
        }
        let last = literals.len().saturating_sub(1);
        let encoded = literals
            .iter()
            .enumerate()
            .map(|(i, literal)| {
                let mut out = String::with_capacity(literal.len() * 11 / 10);
                quoted_printable(literal, &mut out);
                if i < last {
                    end_piece(literal, &mut out);
                }
                out
            })
            .collect();
        Some(Self { literals: encoded })
    }

    /// Appends `template` filled with `values`, quoted-printable encoded. `template` must be
    /// the one this was made from.
    pub fn encode_filled(
        &self,
        template: &CompiledTemplate,
        values: &SubscriberSlots,
        out: &mut String,
    ) {
        let mut scratch = String::new();
        template.for_each_piece(values, &mut scratch, |piece| match piece {
            Piece::Literal(i) => out.push_str(self.literals.get(i).map_or("", String::as_str)),
            // Values are escaped for their place; a text value has no line breaks (they become
            // spaces), an HTML one keeps none that matter, and a carriage return there is
            // encoded like any other control character.
            Piece::Value(value) => {
                quoted_printable(value, out);
                end_piece(value, out);
            }
        });
    }
}

/// Ends an encoded piece that did not end a line with a soft line break, so the next piece
/// starts a line of its own.
fn end_piece(piece: &str, out: &mut String) {
    if !piece.is_empty() && !piece.ends_with('\n') {
        out.push_str("=\r\n");
    }
}

/// A message part's content.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// Text to encode here.
    Plain(&'a str),
    /// Already quoted-printable encoded (by [`EncodedTemplate`]).
    QuotedPrintable(&'a str),
}

impl Prepared {
    /// Prepares the shared headers for `subject`.
    pub fn new(sender: &Sender, subject: &str) -> Self {
        let mut common = String::with_capacity(512);
        push_header(&mut common, "From", &sender.from.header_value());
        if let Some(r) = &sender.reply_to {
            push_header(&mut common, "Reply-To", &r.header_value());
        }
        push_header(&mut common, "Subject", &encode_text(&sanitize(subject)));
        push_header(&mut common, "MIME-Version", "1.0");
        push_header(&mut common, "List-Id", &sender.list_id);
        Self {
            common,
            html: None,
            text: None,
        }
    }

    /// Encodes the fixed text of the variant's parts once, for [`Prepared::html_part`] and
    /// [`Prepared::text_part`] to splice each recipient's values into.
    pub fn with_parts(mut self, html: &CompiledTemplate, text: &CompiledTemplate) -> Self {
        self.html = EncodedTemplate::new(html);
        self.text = EncodedTemplate::new(text);
        self
    }

    /// The HTML part filled with `values`, in `buf`: encoded when [`Prepared::with_parts`]
    /// encoded `template`, else filled to be encoded whole.
    pub fn html_part<'a>(
        &self,
        template: &CompiledTemplate,
        values: &SubscriberSlots,
        buf: &'a mut String,
    ) -> Body<'a> {
        part(self.html.as_ref(), template, values, buf)
    }

    /// The text part filled with `values`, in `buf` (see [`Prepared::html_part`]).
    pub fn text_part<'a>(
        &self,
        template: &CompiledTemplate,
        values: &SubscriberSlots,
        buf: &'a mut String,
    ) -> Body<'a> {
        part(self.text.as_ref(), template, values, buf)
    }
}

fn part<'a>(
    encoded: Option<&EncodedTemplate>,
    template: &CompiledTemplate,
    values: &SubscriberSlots,
    buf: &'a mut String,
) -> Body<'a> {
    buf.clear();
    match encoded {
        Some(e) => {
            e.encode_filled(template, values, buf);
            Body::QuotedPrintable(buf)
        }
        None => {
            template.fill_into(values, buf);
            Body::Plain(buf)
        }
    }
}

/// What differs per recipient.
#[derive(Debug, Clone)]
pub struct Personal<'a> {
    /// The recipient, as the `To:` header names them.
    pub to: &'a Mailbox,
    /// Their one-click unsubscribe URL (RFC 8058).
    pub unsubscribe_url: &'a str,
    /// Our Message-ID, without angle brackets.
    pub message_id: &'a str,
    /// `Date` header value.
    pub date: &'a str,
    /// The filled text part.
    pub text: Body<'a>,
    /// The filled HTML part.
    pub html: Body<'a>,
    /// `Feedback-ID` (Gmail's feedback loop), if wanted.
    pub feedback_id: Option<&'a str>,
}

/// Builds the whole message.
pub fn build(sender: &Sender, prepared: &Prepared, p: &Personal<'_>) -> Vec<u8> {
    let len = |b: &Body<'_>| match b {
        Body::Plain(s) | Body::QuotedPrintable(s) => s.len(),
    };
    let mut out = String::with_capacity(len(&p.html) * 11 / 10 + len(&p.text) * 11 / 10 + 2048);
    out.push_str(&prepared.common);
    push_header(&mut out, "To", &p.to.header_value());
    push_header(&mut out, "Date", p.date);
    push_header(
        &mut out,
        "Message-ID",
        &format!("<{}>", sanitize(p.message_id)),
    );
    let url = sanitize(p.unsubscribe_url);
    let list_unsubscribe = match &sender.unsubscribe_mailto {
        Some(mailto) => format!("<{url}>, <{}>", sanitize(mailto)),
        None => format!("<{url}>"),
    };
    push_header(&mut out, "List-Unsubscribe", &list_unsubscribe);
    push_header(
        &mut out,
        "List-Unsubscribe-Post",
        "List-Unsubscribe=One-Click",
    );
    if let Some(f) = p.feedback_id {
        push_header(&mut out, "Feedback-ID", &sanitize(f));
    }
    push_alternatives(&mut out, p.message_id, p.text, p.html);
    out.into_bytes()
}

/// A message sent to one person because of something they did (a confirmation request), not
/// an edition: no List-Unsubscribe, and `Auto-Submitted` so that autoresponders stay quiet.
#[derive(Debug, Clone)]
pub struct Transactional<'a> {
    /// The recipient, as the `To:` header names them.
    pub to: &'a Mailbox,
    /// `Subject`.
    pub subject: &'a str,
    /// Our Message-ID, without angle brackets.
    pub message_id: &'a str,
    /// `Date` header value.
    pub date: &'a str,
    /// The text part.
    pub text: &'a str,
    /// The HTML part.
    pub html: &'a str,
}

/// Builds a transactional message with the list's `From` and `Reply-To`, the same MIME
/// structure and header hygiene as editions.
pub fn build_transactional(sender: &Sender, m: &Transactional<'_>) -> Vec<u8> {
    let mut out = String::with_capacity(m.html.len() * 11 / 10 + m.text.len() * 11 / 10 + 1024);
    push_header(&mut out, "From", &sender.from.header_value());
    if let Some(r) = &sender.reply_to {
        push_header(&mut out, "Reply-To", &r.header_value());
    }
    push_header(&mut out, "Subject", &encode_text(&sanitize(m.subject)));
    push_header(&mut out, "MIME-Version", "1.0");
    push_header(&mut out, "To", &m.to.header_value());
    push_header(&mut out, "Date", m.date);
    push_header(
        &mut out,
        "Message-ID",
        &format!("<{}>", sanitize(m.message_id)),
    );
    // RFC 3834: sent by software on a person's request; autoresponders must not answer.
    push_header(&mut out, "Auto-Submitted", "auto-generated");
    push_alternatives(
        &mut out,
        m.message_id,
        Body::Plain(m.text),
        Body::Plain(m.html),
    );
    out.into_bytes()
}

/// The `Content-Type` header, the blank line and the text and HTML parts, quoted-printable.
fn push_alternatives(out: &mut String, message_id: &str, text: Body<'_>, html: Body<'_>) {
    // "=_" never occurs in quoted-printable output, so the boundary cannot occur in a part.
    let boundary = format!("=_bulletin_{}", boundary_token(message_id));
    push_header(
        out,
        "Content-Type",
        &format!("multipart/alternative; boundary=\"{boundary}\""),
    );
    out.push_str("\r\n");
    for (kind, body) in [("plain", text), ("html", html)] {
        let _ = write!(
            out,
            "--{boundary}\r\nContent-Type: text/{kind}; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        );
        match body {
            Body::Plain(text) => quoted_printable(text, out),
            Body::QuotedPrintable(encoded) => out.push_str(encoded),
        }
        out.push_str("\r\n");
    }
    let _ = write!(out, "--{boundary}--\r\n");
}

/// `Date` in RFC 5322 form, e.g. `Sat, 28 Nov 2026 16:30:00 +0000`.
pub fn rfc5322_date(t: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] +0000"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".into())
}

/// Line breaks and other control characters become spaces: no value can add a header.
fn sanitize(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn push_header(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str(": ");
    fold(out, name.len() + 2, value);
    out.push_str("\r\n");
}

/// Writes `value`, folding at spaces so that lines stay under 78 characters where possible.
fn fold(out: &mut String, mut column: usize, value: &str) {
    let mut first = true;
    for word in value.split(' ') {
        if !first {
            if column + 1 + word.len() > 78 {
                out.push_str("\r\n ");
                column = 1;
            } else {
                out.push(' ');
                column += 1;
            }
        }
        first = false;
        out.push_str(word);
        column += word.len();
    }
}

/// A display name: as is when it is plain ASCII words, quoted when it has specials, RFC 2047
/// encoded when it has non-ASCII characters or holds `=?`: a name typed as
/// `=?utf-8?q?Your_Bank?=` would otherwise be decoded by mail clients (even inside quotes,
/// by many) and shown as something the person never typed.
fn phrase(name: &str) -> String {
    let name = sanitize(name);
    if !name.is_ascii() || name.contains("=?") {
        return encode_words(&name);
    }
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~ ".contains(c);
    if name.chars().all(atext) {
        name
    } else {
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    }
}

/// Unstructured text (the subject): as is when ASCII, else RFC 2047 encoded words.
fn encode_text(text: &str) -> String {
    if text.is_ascii() {
        text.to_string()
    } else {
        encode_words(text)
    }
}

/// RFC 2047 `=?utf-8?B?…?=` words of at most 75 characters, split between characters (never
/// inside one), separated by spaces so that the header can fold between them.
fn encode_words(text: &str) -> String {
    const MAX_BYTES: usize = 45; // 45 bytes → 60 base64 characters → a 72-character word
    let mut words = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if i + c.len_utf8() - start > MAX_BYTES {
            words.push(&text[start..end]);
            start = i;
        }
        end = i + c.len_utf8();
    }
    if start < text.len() {
        words.push(&text[start..]);
    }
    words
        .iter()
        .map(|w| format!("=?utf-8?B?{}?=", STANDARD.encode(w.as_bytes())))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Appends `body` quoted-printable encoded (RFC 2045 section 6.7), lines normalised to CRLF.
///
/// The output is already in DKIM's relaxed body form (RFC 6376 3.4.4): a tab, and a space that
/// follows another space or ends a line, are encoded (`=09`, `=20`) rather than written
/// literally, so no line holds a run of white space or ends in one. The signer can then hash
/// the body as it is instead of copying it into a canonical form first (see
/// `dkim::relaxed_body`); the decoded text is the same either way.
///
/// Runs of plain characters are copied as slices, which is what makes this fast: a 50 KB HTML
/// part is almost entirely such runs.
pub fn quoted_printable(body: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    /// The longest line before the soft break `=`: 76 characters with it.
    const MAX: usize = 75;
    let plain = |b: u8| (33..=126).contains(&b) && b != b'=';
    let bytes = body.as_bytes();
    out.reserve(bytes.len() + bytes.len() / 32);
    let mut column = 0;
    // Whether the last character written on this line is a literal space.
    let mut after_space = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) == Some(&b'\n')) {
            out.push_str("\r\n");
            column = 0;
            after_space = false;
            i += if b == b'\r' { 2 } else { 1 };
            continue;
        }
        // A space between two plain characters is written as it is: it ends no line and
        // follows no other space. Such spaces join the run, so that text is copied in slices
        // of up to a line rather than word by word.
        let joins = |j: usize| {
            plain(bytes[j]) || bytes[j] == b' ' && bytes.get(j + 1).is_some_and(|&n| plain(n))
        };
        if plain(b) || !after_space && joins(i) {
            if column == MAX {
                out.push_str("=\r\n");
                column = 0;
            }
            let end = bytes.len().min(i + (MAX - column));
            let mut j = i + 1;
            while j < end && joins(j) {
                j += 1;
            }
            // `i..j` holds only ASCII bytes, so both ends are character boundaries.
            out.push_str(&body[i..j]);
            column += j - i;
            after_space = bytes[j - 1] == b' ';
            i = j;
            continue;
        }
        let at_line_end = matches!(bytes.get(i + 1), None | Some(b'\r' | b'\n'));
        let literal = b == b' ' && !at_line_end && !after_space;
        let width = if literal { 1 } else { 3 };
        // Keep room for the soft break "=" at the end of a 76-character line.
        if column + width > MAX {
            out.push_str("=\r\n");
            column = 0;
        }
        if literal {
            out.push(' ');
        } else {
            out.push('=');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        after_space = literal;
        column += width;
        i += 1;
    }
}

/// A boundary suffix derived from the Message-ID: unique per message, and only characters a
/// boundary may hold.
fn boundary_token(message_id: &str) -> String {
    message_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(40)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender() -> Sender {
        Sender::new(
            "GLO.ACT Newsletter",
            "glo-act.newsletter.example.org",
            "GLO.ACT <newsletter@example.org>",
            Some("glo-act@example.org"),
        )
        .expect("valid identity")
    }

    #[test]
    fn message_has_the_required_headers_and_parts() {
        let s = sender();
        let prepared = Prepared::new(&s, "Six pillars: « GLO.ACT » en bref");
        let to = Mailbox {
            name: "Moussa Traoré".into(),
            address: Address::parse("moussa@example.net").expect("valid"),
        };
        let bytes = build(
            &s,
            &prepared,
            &Personal {
                to: &to,
                unsubscribe_url: "https://news.example.org/u/abc",
                message_id: "1.2.x@example.org",
                date: "Sat, 28 Nov 2026 16:30:00 +0000",
                text: Body::Plain("Bonjour Moussa,\nline two with = sign\n"),
                html: Body::Plain("<p>Bonjour <b>Moussa</b></p>"),
                feedback_id: None,
            },
        );
        let body_start = text_start(&bytes);
        assert!(
            dkim::is_relaxed_canonical(&bytes[body_start..]),
            "the body is hashed as built, without a canonical copy"
        );
        let text = String::from_utf8(bytes).expect("ASCII");
        assert!(text.is_ascii(), "the whole message is 7-bit");
        for needle in [
            "From: \"GLO.ACT\" <newsletter@example.org>\r\n",
            "Reply-To: <glo-act@example.org>\r\n",
            "To: =?utf-8?B?",
            "List-Id: \"GLO.ACT Newsletter\" <glo-act.newsletter.example.org>\r\n",
            "List-Unsubscribe: <https://news.example.org/u/abc>\r\n",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            "Message-ID: <1.2.x@example.org>\r\n",
            "MIME-Version: 1.0\r\n",
            "Content-Type: text/plain; charset=utf-8",
            "line two with =3D sign",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(text.lines().all(|l| l.len() <= 78), "{text}");
    }

    #[test]
    fn no_value_can_start_a_header() {
        let s = sender();
        let prepared = Prepared::new(&s, "Subject\r\nBcc: victim@example.net");
        let to = Mailbox {
            name: "Eve\r\nBcc: x@example.net".into(),
            address: Address::parse("eve@example.org").expect("valid"),
        };
        let bytes = build(
            &s,
            &prepared,
            &Personal {
                to: &to,
                unsubscribe_url: "https://x.example.org/u/t\r\nBcc: y@example.net",
                message_id: "m@example.org",
                date: "d",
                text: Body::Plain("t"),
                html: Body::Plain("h"),
                feedback_id: None,
            },
        );
        let text = String::from_utf8(bytes).expect("ASCII");
        assert!(!text.lines().any(|l| l.starts_with("Bcc:")), "{text}");
    }

    /// Where a message's body starts: after the blank line that ends its header.
    fn text_start(message: &[u8]) -> usize {
        memchr::memmem::find(message, b"\r\n\r\n").expect("a header and a body") + 4
    }

    /// Quoted-printable decoding: soft breaks vanish, `=XX` become bytes.
    fn decode_qp(encoded: &str) -> Vec<u8> {
        let joined = encoded.replace("=\r\n", "");
        let raw = joined.as_bytes();
        let mut bytes = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'=' {
                let hex = std::str::from_utf8(&raw[i + 1..i + 3]).expect("hex");
                bytes.push(u8::from_str_radix(hex, 16).expect("hex digit"));
                i += 3;
            } else {
                bytes.push(raw[i]);
                i += 1;
            }
        }
        bytes
    }

    #[test]
    fn quoted_printable_round_trips_white_space_and_is_already_in_dkims_relaxed_form() {
        // Fixed awkward cases, then pseudo-random strings over the characters that matter.
        let mut samples: Vec<String> = [
            "a  b\tc \nd   \r\n  e\t\n",
            " leading and trailing ",
            "é  à\t=",
            "\t\t",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        samples.push(format!("{}  y", "x".repeat(74)));
        samples.push(" ".repeat(200));
        let alphabet = [" ", "\t", "a", "=", "\n", "\r\n", "é", ".", "\r"];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..2_000 {
            let mut s = String::new();
            for _ in 0..(seed % 190) {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                s.push_str(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            samples.push(s);
        }
        for input in &samples {
            let mut out = String::new();
            quoted_printable(input, &mut out);
            assert!(out.split("\r\n").all(|l| l.len() <= 76), "{out:?}");
            // A lone CR stays a byte (encoded); LF and CRLF become CRLF.
            let expected = input.replace("\r\n", "\n").replace('\n', "\r\n");
            assert_eq!(decode_qp(&out), expected.as_bytes(), "{input:?} -> {out:?}");
            let mut body = out.clone();
            body.push_str("\r\n");
            assert!(
                body == "\r\n"
                    || body.ends_with("\r\n\r\n")
                    || dkim::is_relaxed_canonical(body.as_bytes()),
                "{input:?} -> {out:?} is not in relaxed form"
            );
        }
    }

    #[test]
    fn a_template_encoded_once_and_spliced_decodes_to_the_filled_part() {
        use crate::render::slots::{Kind, SlotKey, token};
        let name = token(&SlotKey::Name, "reader");
        let url = token(&SlotKey::UnsubscribeUrl, "");
        let long = "word ".repeat(40);
        let html = format!(
            "<html><body><p>Dear {name},</p><p>{long}{name} and  two spaces</p>\n\
             <a href=\"{url}\">Unsubscribe</a>{name}\n{name}</body></html>"
        );
        let text = format!("Dear {name},\n\n{long}\nUnsubscribe: {url}\n");
        let cases = [
            ("Ana Lima", "https://x.example.org/u/abc"),
            ("", "https://x.example.org/u/abc"),
            ("Zoë  Ø = 10 \t", "https://x.example.org/u/a=b&c"),
            (" lead", "https://x.example.org/u/"),
        ];
        for (kind, doc) in [(Kind::Html, &html), (Kind::Text, &text)] {
            let template = CompiledTemplate::compile(doc, kind);
            let encoded = EncodedTemplate::new(&template).expect("no literal ends in CR");
            for (n, u) in cases {
                let values = SubscriberSlots {
                    name: n.into(),
                    unsubscribe_url: u.into(),
                    ..SubscriberSlots::default()
                };
                let mut out = String::new();
                encoded.encode_filled(&template, &values, &mut out);
                let filled = template.fill(&values);
                assert_eq!(
                    decode_qp(&out),
                    filled.replace('\n', "\r\n").as_bytes(),
                    "{kind:?} {n:?}: {out}"
                );
                assert!(out.split("\r\n").all(|l| l.len() <= 76), "{out}");
                // As in a message, where the part is followed by its boundary.
                let body = format!("{out}\r\n--b--\r\n");
                assert!(dkim::is_relaxed_canonical(body.as_bytes()), "{out:?}");
            }
        }
    }

    #[test]
    fn a_template_with_a_literal_ending_in_a_carriage_return_is_encoded_whole() {
        use crate::render::slots::{Kind, SlotKey, token};
        let doc = format!("line\r{}\nend", token(&SlotKey::Name, ""));
        let template = CompiledTemplate::compile(&doc, Kind::Text);
        assert!(EncodedTemplate::new(&template).is_none());
    }

    #[test]
    fn quoted_printable_keeps_lines_short_and_round_trips() {
        let html = format!("<p>{}</p>\n<p>é = à</p> ", "x".repeat(300));
        let mut out = String::new();
        quoted_printable(&html, &mut out);
        assert!(out.lines().all(|l| l.len() <= 76), "{out}");
        let bytes = decode_qp(&out);
        assert_eq!(
            String::from_utf8(bytes).expect("utf-8"),
            html.replace('\n', "\r\n")
        );
    }

    #[test]
    fn encoded_words_split_between_characters() {
        let long = "Résumé ".repeat(20);
        let encoded = encode_words(&long);
        assert!(encoded.split(' ').all(|w| w.len() <= 75), "{encoded}");
        let decoded: String = encoded
            .split(' ')
            .map(|w| {
                let b64 = w.trim_start_matches("=?utf-8?B?").trim_end_matches("?=");
                String::from_utf8(STANDARD.decode(b64).expect("base64")).expect("whole characters")
            })
            .collect();
        assert_eq!(decoded, long);
    }
}
