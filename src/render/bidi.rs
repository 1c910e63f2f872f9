//! What a right-to-left variant needs after the templates have run: Outlook's conditional
//! tables told their direction, and a plain-text part whose lines a mail client lays out
//! right to left.
//!
//! mrml mirrors the layout for browsers through `direction` on sections and columns, but the
//! tables it writes inside `<!--[if mso | IE]>` comments for Outlook on Windows (which lays out
//! with Word, ignoring CSS `direction`) have no `dir`; Word orders table cells by the table's
//! `dir` attribute, so each of those tables gets `dir="rtl"`.
//!
//! Plain text has no markup to say which way it runs. Mail clients that show a text part
//! (Gmail, Apple Mail, Thunderbird, Outlook) decide each paragraph's direction from its first
//! strong character (the Unicode bidirectional algorithm's rules P2–P3, or `dir="auto"` on
//! the element they wrap it in). So:
//!
//! - a line with right-to-left text whose first strong character is left to right (`GLO.ACT
//!   هو…`, a name slot, a Latin brand) starts with RIGHT-TO-LEFT MARK, so that the paragraph
//!   runs right to left and its final full stop lands at the left end, where Arabic puts it;
//! - a URL (or a URL slot) is followed by LEFT-TO-RIGHT MARK, so that a trailing `/` stays
//!   with the URL instead of jumping to the other side of it;
//! - a subscriber's name (and any other per-recipient value that is not a URL) is isolated
//!   with FIRST STRONG ISOLATE … POP DIRECTIONAL ISOLATE, so that a Latin name with a number
//!   or brackets does not reorder the Arabic around it.
//!
//! Lines with no right-to-left letter (an untranslated English article) are left as they
//! are: their first strong character already makes them left to right.

use super::slots::{SlotKey, parse_token};

/// U+200F RIGHT-TO-LEFT MARK.
const RLM: char = '\u{200f}';
/// U+200E LEFT-TO-RIGHT MARK.
const LRM: char = '\u{200e}';
/// U+2068 FIRST STRONG ISOLATE.
const FSI: char = '\u{2068}';
/// U+2069 POP DIRECTIONAL ISOLATE.
const PDI: char = '\u{2069}';

/// Adds `dir="rtl"` to every table Outlook's conditional comments open.
pub(super) fn outlook_rtl(html: &str) -> String {
    const OPEN: &str = "<!--[if mso | IE]>";
    const CLOSE: &str = "<![endif]-->";
    let mut out = String::with_capacity(html.len() + html.len() / 50);
    let mut rest = html;
    while let Some(start) = rest.find(OPEN) {
        let body_start = start + OPEN.len();
        let Some(len) = rest[body_start..].find(CLOSE) else {
            break;
        };
        out.push_str(&rest[..body_start]);
        out.push_str(&rest[body_start..body_start + len].replace("<table ", "<table dir=\"rtl\" "));
        rest = &rest[body_start + len..];
    }
    out.push_str(rest);
    out
}

/// The plain-text part of a right-to-left variant, marked so that it reads right to left
/// (see the module documentation).
pub(super) fn rtl_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 20);
    for line in text.split_inclusive('\n') {
        mark_line(&mut out, line);
    }
    out
}

/// The strong direction of a character, if it has one: `Some(true)` for right to left.
/// Arabic-Indic digits are weak (they follow their neighbours), letters of every other
/// script are left to right.
fn strong(c: char) -> Option<bool> {
    let rtl = matches!(u32::from(c),
        0x0590..=0x05FF | 0x0600..=0x065F | 0x066A..=0x06EF | 0x06FA..=0x08FF
        | 0xFB1D..=0xFDFF | 0xFE70..=0xFEFF | 0x10800..=0x10FFF | 0x1E800..=0x1EFFF);
    if rtl {
        Some(true)
    } else if c.is_alphabetic() {
        Some(false)
    } else {
        None
    }
}

/// One line of the text part, marked.
fn mark_line(out: &mut String, line: &str) {
    let has_rtl = line.chars().any(|c| strong(c) == Some(true));
    let first_strong = first_strong(line);
    if has_rtl && first_strong != Some(true) {
        let indent = line.len() - line.trim_start_matches(' ').len();
        out.push_str(&line[..indent]);
        out.push(RLM);
        mark_runs(out, &line[indent..]);
    } else {
        mark_runs(out, line);
    }
}

/// The direction of the first strong character of `line`, a slot counting as left to right
/// (it is filled with an address or, most often, a Latin-script name).
fn first_strong(line: &str) -> Option<bool> {
    for (i, c) in line.char_indices() {
        if parse_token(&line[i..]).is_some() {
            return Some(false);
        }
        if let Some(rtl) = strong(c) {
            return Some(rtl);
        }
    }
    None
}

/// Copies `text`, putting LRM after URLs and URL slots and isolating other slots.
fn mark_runs(out: &mut String, text: &str) {
    let mut rest = text;
    while !rest.is_empty() {
        let next = [
            rest.find("https://"),
            rest.find("http://"),
            rest.find("mailto:"),
            rest.find("BxSLOT"),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(at) = next else {
            out.push_str(rest);
            return;
        };
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some((key, _, len)) = parse_token(tail) {
            if key.is_url() || key == SlotKey::Email {
                out.push_str(&tail[..len]);
                out.push(LRM);
            } else {
                out.push(FSI);
                out.push_str(&tail[..len]);
                out.push(PDI);
            }
            rest = &tail[len..];
            continue;
        }
        let len = tail
            .find(|c: char| c.is_whitespace() || strong(c) == Some(true))
            .unwrap_or(tail.len());
        // Sentence punctuation after a URL is the sentence's: the mark goes before it, so
        // that a closing `).` takes the paragraph's direction.
        let len = tail[..len]
            .trim_end_matches([')', '.', ',', ';', ':', '!', '?', '،', '؛'])
            .len();
        // `BxSLOT` that is not a whole token is text, and so is a lone scheme.
        let len = len.max(1);
        out.push_str(&tail[..len]);
        if tail.starts_with("http") || tail.starts_with("mailto:") {
            out.push(LRM);
        }
        rest = &tail[len..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::slots::token;

    #[test]
    fn outlook_tables_get_rtl_and_others_do_not() {
        let html = "<div><table style=\"x\"></table><!--[if mso | IE]><table border=\"0\"><tr><td><![endif]--></div>";
        assert_eq!(
            outlook_rtl(html),
            "<div><table style=\"x\"></table><!--[if mso | IE]><table dir=\"rtl\" border=\"0\"><tr><td><![endif]--></div>"
        );
    }

    #[test]
    fn rtl_lines_start_right_to_left_and_urls_keep_their_slash() {
        let text = "GLO.ACT مشروع مشترك.\nعرض: https://example.org/ar/\nPlain English line.\nاقرأ (https://example.org/a.pdf).\n";
        assert_eq!(
            rtl_text(text),
            "\u{200f}GLO.ACT مشروع مشترك.\nعرض: https://example.org/ar/\u{200e}\nPlain English line.\nاقرأ (https://example.org/a.pdf\u{200e}).\n"
        );
    }

    #[test]
    fn names_are_isolated_and_url_slots_marked() {
        let name = token(&SlotKey::Name, "القراء");
        let url = token(&SlotKey::UnsubscribeUrl, "");
        let text = format!("مرحبًا {name}،\nإلغاء الاشتراك: {url}\n");
        assert_eq!(
            rtl_text(&text),
            format!("مرحبًا \u{2068}{name}\u{2069}،\nإلغاء الاشتراك: {url}\u{200e}\n")
        );
        // A line that starts with the name is still a right-to-left line.
        let text = format!("{name}، أهلًا\n");
        assert!(rtl_text(&text).starts_with('\u{200f}'));
    }
}
