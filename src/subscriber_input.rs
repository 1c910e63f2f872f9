//! Validation of subscriber fields, whichever door they come through (command line, CSV
//! import, and later the subscribe form), so that every door refuses the same things.
//!
//! Names and attribute values end up in mail headers (`To: "Name" <addr>`) and templates; a
//! CR or LF in them is how header injection starts, so control characters are refused here,
//! once, rather than escaped in every later stage.

use serde_json::{Map, Value};

use crate::store::SubscriptionStatus;

/// Longest accepted display name, in characters.
pub const MAX_NAME_CHARS: usize = 256;
/// Largest accepted attributes object of one subscriber, in bytes of its stored (compact)
/// JSON: the form `export` writes, so that whatever is stored imports back.
pub const MAX_ATTRIBUTES_BYTES: usize = 64 * 1024;
/// Most attributes one subscriber may have (template variables, not a database).
pub const MAX_ATTRIBUTES: usize = 100;
/// Largest `attributes` cell read before parsing it. Larger than [`MAX_ATTRIBUTES_BYTES`]
/// because a hand-written cell may hold spaces or number forms (`1e3`) that the stored form
/// drops or writes otherwise; the stored form is what [`MAX_ATTRIBUTES_BYTES`] bounds.
pub const MAX_ATTRIBUTES_CELL_BYTES: usize = 2 * MAX_ATTRIBUTES_BYTES;

/// Why a field was refused. Messages say what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// CR, LF, NUL, tab or another control character in a name.
    #[error(
        "the name contains a line break or other control character; names must be one line of text"
    )]
    NameControl,
    /// A character that is invisible or turns text around: in a `To:` line or a greeting it
    /// makes a name show as something else (`\u{202E}` writes the rest backwards).
    #[error(
        "the name contains the invisible or direction-changing character U+{0:04X}; type the name again without it"
    )]
    NameInvisible(u32),
    /// Name over [`MAX_NAME_CHARS`].
    #[error("the name is {0} characters long; at most {MAX_NAME_CHARS} are allowed")]
    NameTooLong(usize),
    /// Not a BCP 47 language tag.
    #[error("`{0}` is not a language tag; use a code such as en, fr, es or pt-BR")]
    Language(String),
    /// Not JSON.
    #[error("attributes are not valid JSON ({0}); write an object such as {{\"city\": \"Dhaka\"}}")]
    AttributesJson(String),
    /// JSON, but not an object.
    #[error("attributes must be a JSON object such as {{\"city\": \"Dhaka\"}}, not {0}")]
    AttributesNotObject(&'static str),
    /// Over [`MAX_ATTRIBUTES_BYTES`].
    #[error(
        "attributes are {0} bytes long; at most {MAX_ATTRIBUTES_BYTES} are allowed: keep fewer or shorter values"
    )]
    AttributesTooLarge(usize),
    /// Over [`MAX_ATTRIBUTES`].
    #[error(
        "{0} attributes; at most {MAX_ATTRIBUTES} are allowed per subscriber: drop the columns templates do not use"
    )]
    TooManyAttributes(usize),
    /// A control character in an attribute key or value.
    #[error("attribute `{0}` contains a line break or other control character")]
    AttributeControl(String),
    /// `--attr` without `=`.
    #[error("`{0}` is not KEY=VALUE")]
    AttrSyntax(String),
    /// A list entry of the `lists` column that does not parse.
    #[error(
        "`{0}` is not a list entry; write NAME or NAME:STATUS (confirmed, unconfirmed, unsubscribed)"
    )]
    ListEntry(String),
}

/// Characters a name may not hold although they are not control characters: line and
/// paragraph separators, bidirectional overrides, embeddings and isolates, zero-width
/// characters and the byte-order mark.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{2028}'
            | '\u{2029}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'
            | '\u{FEFF}'
    )
}

/// A display name: trimmed, one line, not too long, nothing invisible or direction-changing.
/// Empty is allowed (unknown name).
pub fn validate_name(raw: &str) -> Result<String, FieldError> {
    if raw.chars().any(char::is_control) {
        return Err(FieldError::NameControl);
    }
    if let Some(c) = raw.chars().find(|c| is_invisible(*c)) {
        return Err(FieldError::NameInvisible(u32::from(c)));
    }
    let name = raw.trim();
    let count = name.chars().count();
    if count > MAX_NAME_CHARS {
        return Err(FieldError::NameTooLong(count));
    }
    Ok(name.to_string())
}

/// A language tag, normalised (`EN-gb` → `en-GB`); empty means unknown.
pub fn validate_language(raw: &str) -> Result<Option<String>, FieldError> {
    let tag = raw.trim().replace('_', "-");
    if tag.is_empty() {
        return Ok(None);
    }
    let bad = || FieldError::Language(raw.trim().to_string());
    let mut parts = tag.split('-');
    let primary = parts.next().ok_or_else(bad)?;
    if !(2..=3).contains(&primary.len()) || !primary.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(bad());
    }
    let mut out = primary.to_ascii_lowercase();
    for sub in parts {
        if sub.is_empty() || sub.len() > 8 || !sub.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        out.push('-');
        // Regions are upper case by convention (pt-BR), scripts title case (zh-Hant).
        if sub.len() == 2 && sub.chars().all(|c| c.is_ascii_alphabetic()) {
            out.push_str(&sub.to_ascii_uppercase());
        } else if sub.len() == 4 && sub.chars().all(|c| c.is_ascii_alphabetic()) {
            out.push_str(&sub[..1].to_ascii_uppercase());
            out.push_str(&sub[1..].to_ascii_lowercase());
        } else {
            out.push_str(&sub.to_ascii_lowercase());
        }
    }
    Ok(Some(out))
}

/// The `attributes` column: empty, or a JSON object without control characters in strings.
pub fn parse_attributes(raw: &str) -> Result<Map<String, Value>, FieldError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(Map::new());
    }
    if raw.len() > MAX_ATTRIBUTES_CELL_BYTES {
        return Err(FieldError::AttributesTooLarge(raw.len()));
    }
    let value: Value =
        serde_json::from_str(raw).map_err(|e| FieldError::AttributesJson(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(FieldError::AttributesNotObject(json_kind(&value)));
    };
    for (key, value) in &map {
        check_attribute(key, value)?;
    }
    attributes_json(&map)?;
    Ok(map)
}

/// The JSON text stored for a subscriber's attributes, once the whole set is within
/// [`MAX_ATTRIBUTES`] and [`MAX_ATTRIBUTES_BYTES`]. Every door (`add --attr`, each import
/// row after its extra columns are merged) calls this, so nothing is stored that an export
/// could not carry back in.
pub fn attributes_json(map: &Map<String, Value>) -> Result<String, FieldError> {
    if map.len() > MAX_ATTRIBUTES {
        return Err(FieldError::TooManyAttributes(map.len()));
    }
    // Serialising a map of JSON values cannot fail: keys are strings, there are no floats
    // that JSON cannot hold (serde_json refuses NaN at parse time).
    let text = serde_json::to_string(map).unwrap_or_else(|_| "{}".into());
    if text.len() > MAX_ATTRIBUTES_BYTES {
        return Err(FieldError::AttributesTooLarge(text.len()));
    }
    Ok(text)
}

/// Checks one attribute: neither its key nor any string inside its value may hold a control
/// character (attribute values reach templates and, through them, headers).
pub fn check_attribute(key: &str, value: &Value) -> Result<(), FieldError> {
    fn clean(v: &Value) -> bool {
        match v {
            Value::String(s) => !s.chars().any(char::is_control),
            Value::Array(items) => items.iter().all(clean),
            Value::Object(map) => map
                .iter()
                .all(|(k, v)| !k.chars().any(char::is_control) && clean(v)),
            _ => true,
        }
    }
    if key.chars().any(char::is_control) || !clean(value) {
        return Err(FieldError::AttributeControl(key.escape_debug().to_string()));
    }
    Ok(())
}

/// `KEY=VALUE` from `--attr`; the value is kept as a string.
pub fn parse_attr_pair(raw: &str) -> Result<(String, Value), FieldError> {
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| FieldError::AttrSyntax(raw.to_string()))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(FieldError::AttrSyntax(raw.to_string()));
    }
    let value = Value::String(value.to_string());
    check_attribute(key, &value)?;
    Ok((key.to_string(), value))
}

/// One entry of the `lists` column: `news` or `news:unconfirmed`.
pub fn parse_list_entry(raw: &str) -> Result<(String, Option<SubscriptionStatus>), FieldError> {
    let raw = raw.trim();
    let (name, status) = match raw.rsplit_once(':') {
        Some((name, status)) => (
            name.trim(),
            Some(
                status
                    .trim()
                    .parse::<SubscriptionStatus>()
                    .map_err(|_| FieldError::ListEntry(raw.to_string()))?,
            ),
        ),
        None => (raw, None),
    };
    if name.is_empty() {
        return Err(FieldError::ListEntry(raw.to_string()));
    }
    Ok((name.to_string(), status))
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_header_injection() {
        assert_eq!(validate_name("  Ana Lima "), Ok("Ana Lima".into()));
        assert_eq!(
            validate_name("Ana\r\nBcc: x@y.org"),
            Err(FieldError::NameControl)
        );
        assert!(matches!(
            validate_name(&"x".repeat(257)),
            Err(FieldError::NameTooLong(257))
        ));
        for c in [
            '\u{2028}', '\u{2029}', '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{200B}',
            '\u{200D}', '\u{FEFF}', '\u{2060}',
        ] {
            assert_eq!(
                validate_name(&format!("Ana{c}Lima")),
                Err(FieldError::NameInvisible(u32::from(c))),
                "{c:?}"
            );
        }
        assert_eq!(validate_name("Zoë Ñúñez"), Ok("Zoë Ñúñez".into()));
    }

    #[test]
    fn languages_are_normalised() {
        assert_eq!(validate_language("EN_gb"), Ok(Some("en-GB".into())));
        assert_eq!(validate_language("zh-hant"), Ok(Some("zh-Hant".into())));
        assert_eq!(validate_language(""), Ok(None));
        assert!(validate_language("english").is_err());
        assert!(validate_language("e").is_err());
    }

    #[test]
    fn attributes_must_be_clean_objects() {
        assert!(parse_attributes("").expect("empty is fine").is_empty());
        assert_eq!(
            parse_attributes("[1]"),
            Err(FieldError::AttributesNotObject("an array"))
        );
        assert!(matches!(
            parse_attributes("{oops"),
            Err(FieldError::AttributesJson(_))
        ));
        assert!(matches!(
            parse_attributes(r#"{"a": {"b": "x\r\nBcc: y"}}"#),
            Err(FieldError::AttributeControl(_))
        ));
    }

    #[test]
    fn list_entries() {
        assert_eq!(parse_list_entry("news"), Ok(("news".into(), None)));
        assert_eq!(
            parse_list_entry("news:unconfirmed"),
            Ok(("news".into(), Some(SubscriptionStatus::Unconfirmed)))
        );
        assert!(parse_list_entry("news:maybe").is_err());
    }
}
