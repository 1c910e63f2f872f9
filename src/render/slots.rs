//! Subscriber slots: the few per-recipient values of a rendered edition, and the compiled form
//! of its HTML and text that fills them with nothing more than concatenation and escaping.
//!
//! Templates and Markdown name a slot as `{{subscriber.name}}`,
//! `{{subscriber.attributes.country}}` or `{{default subscriber.name "reader"}}`. While the
//! edition is rendered, each becomes a *token*: `BxSLOT`, the key in hex, `x`, the fallback in
//! hex, `xB`. Tokens are plain ASCII letters and digits, so Handlebars' escaping, Markdown,
//! URL escaping and mrml all carry them through untouched. [`CompiledTemplate::compile`] then
//! cuts the final document at the tokens, once, and decides for each slot how its value must
//! be escaped from where it sits: HTML text, an attribute, a whole `href`, or a piece of a URL.
//! Filling a slot for a subscriber is then a copy of the literal parts plus the escaped
//! values; no template engine runs per recipient.

use std::fmt::Write as _;

use serde::Serialize;

const TOKEN_START: &str = "BxSLOT";

/// What a slot holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotKey {
    /// The subscriber's name (may be empty: then the fallback is used).
    Name,
    /// The subscriber's address.
    Email,
    /// The subscriber's own one-click unsubscribe URL.
    UnsubscribeUrl,
    /// The subscriber's preferences page.
    PreferencesUrl,
    /// The web version of the edition.
    ArchiveUrl,
    /// A subscriber attribute, by name.
    Attribute(String),
}

impl SlotKey {
    /// Every key a template may name besides attributes, as written after `subscriber.`.
    pub const NAMES: &'static [&'static str] = &[
        "name",
        "email",
        "unsubscribe_url",
        "preferences_url",
        "archive_url",
    ];

    /// Parses `name`, `unsubscribe_url`, `attributes.country`.
    pub fn parse(path: &str) -> Option<Self> {
        Some(match path {
            "name" => Self::Name,
            "email" => Self::Email,
            "unsubscribe_url" => Self::UnsubscribeUrl,
            "preferences_url" => Self::PreferencesUrl,
            "archive_url" => Self::ArchiveUrl,
            other => {
                let attr = other.strip_prefix("attributes.")?;
                if attr.is_empty()
                    || !attr
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    return None;
                }
                Self::Attribute(attr.to_string())
            }
        })
    }

    /// The path after `subscriber.`, as templates write it.
    pub fn path(&self) -> String {
        match self {
            Self::Name => "name".into(),
            Self::Email => "email".into(),
            Self::UnsubscribeUrl => "unsubscribe_url".into(),
            Self::PreferencesUrl => "preferences_url".into(),
            Self::ArchiveUrl => "archive_url".into(),
            Self::Attribute(a) => format!("attributes.{a}"),
        }
    }

    /// True for the slots whose value is a whole URL, which may fill an `href` on its own.
    pub fn is_url(&self) -> bool {
        matches!(
            self,
            Self::UnsubscribeUrl | Self::PreferencesUrl | Self::ArchiveUrl
        )
    }
}

/// The token that stands for `key` (with `fallback`) while the edition is rendered.
pub(crate) fn token(key: &SlotKey, fallback: &str) -> String {
    let mut t = String::with_capacity(TOKEN_START.len() + 8 + 2 * fallback.len());
    t.push_str(TOKEN_START);
    for b in key.path().bytes() {
        let _ = write!(t, "{b:02x}");
    }
    t.push('x');
    for b in fallback.bytes() {
        let _ = write!(t, "{b:02x}");
    }
    t.push_str("xB");
    t
}

/// Decodes the token at the start of `s`: its key, fallback and length in bytes.
pub(crate) fn parse_token(s: &str) -> Option<(SlotKey, String, usize)> {
    let rest = s.strip_prefix(TOKEN_START)?;
    let key_end = rest.find('x')?;
    let key = unhex(&rest[..key_end])?;
    let after = &rest[key_end + 1..];
    let fb_end = after.find('x')?;
    let fallback = unhex(&after[..fb_end])?;
    if !after[fb_end + 1..].starts_with('B') {
        return None;
    }
    let len = TOKEN_START.len() + key_end + 1 + fb_end + 2;
    Some((SlotKey::parse(&key)?, fallback, len))
}

fn unhex(s: &str) -> Option<String> {
    if s.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// If `value` is a slot token, the same slot with a new fallback.
pub(crate) fn with_fallback(value: &str, fallback: &str) -> Option<String> {
    let (key, _, len) = parse_token(value)?;
    (len == value.len()).then(|| token(&key, fallback))
}

/// Replaces the slot placeholders of Markdown or front matter text (`{{subscriber.name}}`,
/// `{{default subscriber.name "reader"}}`) by tokens. Other `{{…}}` stay, for lint to report.
pub(crate) fn substitute_placeholders(text: &str) -> String {
    if !text.contains("{{") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let inner = &after[..end];
                match placeholder_slot(inner) {
                    Some((key, fallback)) => out.push_str(&token(&key, &fallback)),
                    None => {
                        out.push_str("{{");
                        out.push_str(inner);
                        out.push_str("}}");
                    }
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The slot named by the inside of a `{{…}}` in content, if it names one.
pub(crate) fn placeholder_slot(inner: &str) -> Option<(SlotKey, String)> {
    let inner = inner.trim();
    if let Some(path) = inner.strip_prefix("subscriber.") {
        return Some((SlotKey::parse(path.trim())?, String::new()));
    }
    let args = inner.strip_prefix("default ")?.trim_start();
    let (var, fallback) = args.split_once(char::is_whitespace)?;
    let fallback = fallback.trim();
    let fallback = fallback
        .strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))?;
    let key = SlotKey::parse(var.strip_prefix("subscriber.")?)?;
    Some((key, fallback.to_string()))
}

/// The values one recipient's copy is filled with.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SubscriberSlots {
    /// Name (empty when unknown: slots then show their fallback).
    pub name: String,
    /// The recipient's address, for the `{{email}}` slot.
    pub email: String,
    /// One-click unsubscribe URL, unique to this subscriber.
    pub unsubscribe_url: String,
    /// Preferences page URL.
    pub preferences_url: String,
    /// Web version of the edition.
    pub archive_url: String,
    /// Subscriber attributes; strings are used as they are, numbers and booleans as written
    /// in JSON, and null or missing attributes show the slot's fallback.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

impl SubscriberSlots {
    fn value(&self, key: &SlotKey) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        match key {
            SlotKey::Name => Cow::Borrowed(&self.name),
            SlotKey::Email => Cow::Borrowed(&self.email),
            SlotKey::UnsubscribeUrl => Cow::Borrowed(&self.unsubscribe_url),
            SlotKey::PreferencesUrl => Cow::Borrowed(&self.preferences_url),
            SlotKey::ArchiveUrl => Cow::Borrowed(&self.archive_url),
            SlotKey::Attribute(a) => match self.attributes.get(a) {
                None | Some(serde_json::Value::Null) => Cow::Borrowed(""),
                Some(serde_json::Value::String(s)) => Cow::Borrowed(s),
                Some(other) => Cow::Owned(other.to_string()),
            },
        }
    }
}

/// How a slot's value is written, decided from where the slot sits in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Escape {
    /// Plain text part: as is, with line breaks turned into spaces so a value cannot add lines.
    Text,
    /// HTML text or a non-URL attribute: `& < > " '` become entities.
    Html,
    /// A whole `href`/`src` value: HTML-escaped, and only http(s) or mailto URLs are written.
    Url,
    /// Part of an `href`/`src` value (a query parameter): percent-encoded.
    UrlComponent,
}

/// One slot of a compiled template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Slot {
    /// What goes here.
    pub key: SlotKey,
    /// What shows when the value is empty.
    pub fallback: String,
    /// How the value is escaped here.
    pub escape: Escape,
}

/// A finished document cut into literal text and slots: `literals[0] slot[0] literals[1] …`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompiledTemplate {
    literals: Vec<String>,
    slots: Vec<Slot>,
    literal_len: usize,
}

/// One piece of a filled document (see [`CompiledTemplate::for_each_piece`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// The literal at this index of [`CompiledTemplate::literals`].
    Literal(usize),
    /// A recipient's value, escaped for its place (its fallback when the value is blank).
    Value(&'a str),
}

impl Slot {
    /// Appends this slot's value for `values`, or its fallback when the value is blank,
    /// escaped for its place.
    fn write_value(&self, values: &SubscriberSlots, out: &mut String) {
        let value = values.value(&self.key);
        let value: &str = if value.trim().is_empty() {
            &self.fallback
        } else {
            &value
        };
        write_escaped(out, value, self.escape);
    }
}

/// Whether a document is HTML (escape by position) or plain text (no escaping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An HTML document.
    Html,
    /// A plain-text document.
    Text,
}

impl CompiledTemplate {
    /// Cuts `document` at its slot tokens. Done once per edition and language.
    pub fn compile(document: &str, kind: Kind) -> Self {
        let mut literals = Vec::new();
        let mut slots = Vec::new();
        let mut literal = String::new();
        let mut pos = 0;
        while let Some(found) = document[pos..].find(TOKEN_START) {
            let at = pos + found;
            literal.push_str(&document[pos..at]);
            match parse_token(&document[at..]) {
                Some((key, fallback, len)) => {
                    let escape = match kind {
                        Kind::Text => Escape::Text,
                        Kind::Html => html_context(document, at, &key),
                    };
                    // A subscriber's value in running text is isolated, so that a Latin name
                    // in Arabic text (or the reverse) does not reorder the words around it.
                    let isolate = escape == Escape::Html
                        && !literal.ends_with("<bdi>")
                        && in_body_text(document, at);
                    if isolate {
                        literal.push_str("<bdi>");
                    }
                    literals.push(std::mem::take(&mut literal));
                    slots.push(Slot {
                        key,
                        fallback,
                        escape,
                    });
                    if isolate {
                        literal.push_str("</bdi>");
                    }
                    pos = at + len;
                }
                None => {
                    literal.push_str(TOKEN_START);
                    pos = at + TOKEN_START.len();
                }
            }
        }
        literal.push_str(&document[pos..]);
        literals.push(literal);
        let literal_len = literals.iter().map(String::len).sum();
        Self {
            literals,
            slots,
            literal_len,
        }
    }

    /// The slots, in document order.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Bytes of literal text (the document's size without slot values).
    pub fn literal_len(&self) -> usize {
        self.literal_len
    }

    /// Appends the document filled for one recipient to `out`.
    pub fn fill_into(&self, values: &SubscriberSlots, out: &mut String) {
        out.reserve(self.literal_len + 64 * self.slots.len());
        for (literal, slot) in self.literals.iter().zip(&self.slots) {
            out.push_str(literal);
            slot.write_value(values, out);
        }
        if let Some(last) = self.literals.last() {
            out.push_str(last);
        }
    }

    /// The document's fixed text between slots, in order: one more than there are slots.
    /// What a caller transforms once per edition (the mail encoder encodes them) to splice
    /// values into with [`Self::for_each_piece`].
    pub fn literals(&self) -> &[String] {
        &self.literals
    }

    /// The filled document as the pieces [`Self::fill`] joins, in order: each literal by its
    /// index in [`Self::literals`], each value as it is escaped in its place (`scratch` holds
    /// it; reused between values).
    pub fn for_each_piece(
        &self,
        values: &SubscriberSlots,
        scratch: &mut String,
        mut piece: impl FnMut(Piece<'_>),
    ) {
        for (i, slot) in self.slots.iter().enumerate() {
            piece(Piece::Literal(i));
            scratch.clear();
            slot.write_value(values, scratch);
            piece(Piece::Value(scratch));
        }
        if !self.literals.is_empty() {
            piece(Piece::Literal(self.literals.len() - 1));
        }
    }

    /// The same template with each literal passed through `f`; the slots stay as they are.
    /// For changes made once per campaign to the fixed text (click links, [`crate::clicks`]).
    pub fn map_literals(&self, mut f: impl FnMut(&str) -> String) -> Self {
        let literals: Vec<String> = self.literals.iter().map(|l| f(l)).collect();
        let literal_len = literals.iter().map(String::len).sum();
        Self {
            literals,
            slots: self.slots.clone(),
            literal_len,
        }
    }

    /// The document filled for one recipient.
    pub fn fill(&self, values: &SubscriberSlots) -> String {
        let mut out = String::new();
        self.fill_into(values, &mut out);
        out
    }

    /// The document with each slot shown as its placeholder (`{{subscriber.name}}`): what
    /// snapshots compare, since it shows where the slots are and how each is escaped.
    pub fn with_placeholders(&self) -> String {
        let mut out = String::with_capacity(self.literal_len + 40 * self.slots.len());
        for (literal, slot) in self.literals.iter().zip(&self.slots) {
            out.push_str(literal);
            let _ = write!(
                out,
                "{{{{subscriber.{} |{:?}|{}}}}}",
                slot.key.path(),
                slot.escape,
                slot.fallback
            );
        }
        if let Some(last) = self.literals.last() {
            out.push_str(last);
        }
        out
    }
}

/// Whether byte `at` of an HTML document is in the text of its body (not in a tag, not in
/// the head, where `<title>` cannot hold markup).
fn in_body_text(doc: &str, at: usize) -> bool {
    let before = &doc[..at];
    let in_text = match (before.rfind('<'), before.rfind('>')) {
        (Some(open), Some(close)) => close > open,
        (Some(_), None) => false,
        (None, _) => true,
    };
    in_text && before.contains("<body")
}

/// Decides how a slot at byte `at` of an HTML document is escaped.
fn html_context(doc: &str, at: usize, key: &SlotKey) -> Escape {
    let before = &doc[..at];
    let (Some(open), close) = (before.rfind('<'), before.rfind('>')) else {
        return Escape::Html;
    };
    if close.is_some_and(|c| c > open) {
        return Escape::Html;
    }
    // Inside a tag: walk it to find the attribute whose quoted value the slot is in (a `=`
    // inside a value, as in `?c=`, is not the attribute's).
    let tag = &before[open..];
    let mut quote: Option<(char, usize)> = None;
    let mut name_end = 0;
    for (i, c) in tag.char_indices() {
        match quote {
            Some((q, _)) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => {
                let eq = tag[..i].trim_end();
                if eq.ends_with('=') {
                    name_end = eq.len() - 1;
                }
                quote = Some((c, i + 1));
            }
            None => {}
        }
    }
    let Some((_, value_start)) = quote else {
        return Escape::Html;
    };
    let name: String = tag[..name_end]
        .trim_end()
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == ':')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let is_url_attr = matches!(
        name.to_ascii_lowercase().as_str(),
        "href" | "src" | "action" | "background"
    );
    if !is_url_attr {
        return Escape::Html;
    }
    // The slot is the whole URL only when nothing precedes it inside the quotes.
    if value_start == tag.len() && key.is_url() {
        Escape::Url
    } else {
        Escape::UrlComponent
    }
}

fn write_escaped(out: &mut String, value: &str, escape: Escape) {
    match escape {
        Escape::Text => {
            for c in value.chars() {
                out.push(if c == '\n' || c == '\r' { ' ' } else { c });
            }
        }
        Escape::Html => escape_html(out, value),
        Escape::Url => {
            let lower = value
                .trim_start()
                .get(..8)
                .unwrap_or(value)
                .to_ascii_lowercase();
            if lower.starts_with("https://")
                || lower.starts_with("http://")
                || lower.starts_with("mailto:")
            {
                escape_html(out, value);
            } else {
                // A value that is not a web or mail URL (javascript:, data:) never reaches
                // an href; the link then goes nowhere instead of running code.
                out.push('#');
            }
        }
        Escape::UrlComponent => {
            for b in value.bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(b));
                } else {
                    let _ = write!(out, "%{b:02X}");
                }
            }
        }
    }
}

/// Appends `value` with the five HTML-significant characters replaced by entities.
pub(crate) fn escape_html(out: &mut String, value: &str) {
    let mut last = 0;
    for (i, b) in value.bytes().enumerate() {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.push_str(&value[last..i]);
        out.push_str(entity);
        last = i + 1;
    }
    out.push_str(&value[last..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots() -> SubscriberSlots {
        let mut attributes = serde_json::Map::new();
        attributes.insert("country".into(), "Côte d'Ivoire & co".into());
        SubscriberSlots {
            name: "<script>alert(1)</script>".into(),
            email: "a@example.org".into(),
            unsubscribe_url: "https://n.example.org/u/abc?x=1&y=2".into(),
            preferences_url: "javascript:alert(1)".into(),
            archive_url: "https://n.example.org/a".into(),
            attributes,
        }
    }

    #[test]
    fn tokens_round_trip() {
        let key = SlotKey::Attribute("country".into());
        let t = token(&key, "your country");
        assert!(t.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(parse_token(&t), Some((key, "your country".into(), t.len())));
    }

    #[test]
    fn escaping_follows_position() {
        let doc = format!(
            "<p title=\"{n}\">Hi {n}</p><a href=\"{u}\">u</a><a href=\"{p}\">p</a>\
             <a href=\"https://x.org/?c={c}\">c</a>",
            n = token(&SlotKey::Name, ""),
            u = token(&SlotKey::UnsubscribeUrl, ""),
            p = token(&SlotKey::PreferencesUrl, ""),
            c = token(&SlotKey::Attribute("country".into()), ""),
        );
        let compiled = CompiledTemplate::compile(&doc, Kind::Html);
        let out = compiled.fill(&slots());
        assert_eq!(
            out,
            "<p title=\"&lt;script&gt;alert(1)&lt;/script&gt;\">Hi &lt;script&gt;alert(1)&lt;/script&gt;</p>\
             <a href=\"https://n.example.org/u/abc?x=1&amp;y=2\">u</a><a href=\"#\">p</a>\
             <a href=\"https://x.org/?c=C%C3%B4te%20d%27Ivoire%20%26%20co\">c</a>"
        );
    }

    #[test]
    fn fallback_and_text() {
        let doc = format!(
            "Dear {},\nfrom {}\n",
            token(&SlotKey::Name, "reader"),
            token(&SlotKey::Attribute("city".into()), "your city")
        );
        let compiled = CompiledTemplate::compile(&doc, Kind::Text);
        let mut s = slots();
        s.name = "Ana\nBcc: x".into();
        assert_eq!(compiled.fill(&s), "Dear Ana Bcc: x,\nfrom your city\n");
        s.name.clear();
        assert!(compiled.fill(&s).starts_with("Dear reader,"));
    }

    #[test]
    fn placeholders_in_content() {
        let t = substitute_placeholders(
            "Hi {{ subscriber.name }}, {{default subscriber.attributes.city \"there\"}} {{oops}}",
        );
        assert!(t.starts_with("Hi BxSLOT"));
        assert!(t.ends_with(" {{oops}}"));
        let c = CompiledTemplate::compile(&t, Kind::Text);
        assert_eq!(c.fill(&SubscriberSlots::default()), "Hi , there {{oops}}");
    }

    #[test]
    fn values_in_body_text_are_isolated_and_nowhere_else() {
        let name = token(&SlotKey::Name, "");
        let doc = format!(
            "<html><head><title>{name}</title></head><body><p title=\"{name}\">مرحبًا {name}،</p>\
             <p>Hi <bdi>{name}</bdi></p></body></html>"
        );
        let c = CompiledTemplate::compile(&doc, Kind::Html);
        let values = SubscriberSlots {
            name: "Ana".into(),
            ..SubscriberSlots::default()
        };
        assert_eq!(
            c.fill(&values),
            "<html><head><title>Ana</title></head><body><p title=\"Ana\">مرحبًا <bdi>Ana</bdi>،</p>\
             <p>Hi <bdi>Ana</bdi></p></body></html>"
        );
    }
}
