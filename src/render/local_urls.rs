//! Local files named in an article's Markdown (`![map](images/map.png)`,
//! `[factsheet](files/factsheet.pdf)`) replaced by the absolute URLs compose published them
//! at, before the Markdown is rendered: an inbox has no folder to resolve a path against.
//!
//! Only the destinations pulldown-cmark itself reports are replaced, and only where they are
//! written as a destination (`](path`, `]: path`, `](<path>`), so the same words in the text
//! are left alone.

use pulldown_cmark::{Event, Options, Parser, Tag};

use crate::assets::{Place, Published, is_local};

/// `body` with each published local destination replaced by its URL.
pub(super) fn rewrite(body: &str, place: Place, assets: &Published) -> String {
    let mut replacements: Vec<(String, String)> = Vec::new();
    for event in Parser::new_ext(body, Options::ENABLE_STRIKETHROUGH) {
        let (dest, url) = match event {
            Event::Start(Tag::Image { dest_url, .. }) if is_local(&dest_url) => {
                let url = assets.picture(&dest_url, place).map(|a| a.url.clone());
                (dest_url, url)
            }
            Event::Start(Tag::Link { dest_url, .. }) if is_local(&dest_url) => {
                let url = assets.document(&dest_url).map(|a| a.url.clone());
                (dest_url, url)
            }
            _ => continue,
        };
        if let Some(url) = url {
            if !replacements.iter().any(|(d, _)| *d == *dest) {
                replacements.push((dest.to_string(), url));
            }
        }
    }
    if replacements.is_empty() {
        return body.to_string();
    }
    let mut out = body.to_string();
    for (dest, url) in &replacements {
        out = replace_destination(&out, dest, url);
    }
    out
}

/// Replaces `dest` where it follows `](`, `]: ` or `](<` and ends at a destination's end.
fn replace_destination(text: &str, dest: &str, url: &str) -> String {
    let mut out = String::with_capacity(text.len() + url.len());
    let mut rest = text;
    while let Some(i) = rest.find(dest) {
        let before = &rest[..i];
        let after = &rest[i + dest.len()..];
        let opens = before.ends_with("](")
            || before.ends_with("](<")
            || before.trim_end_matches([' ', '\t']).ends_with("]:");
        let closes = after
            .chars()
            .next()
            .is_none_or(|c| matches!(c, ')' | '>' | ' ' | '\t' | '\n' | '\r'));
        out.push_str(before);
        out.push_str(if opens && closes { url } else { dest });
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_destinations_are_replaced() {
        let text =
            "See images/a.jpg: ![A map](images/a.jpg \"t\") and [it][1].\n\n[1]: images/a.jpg\n";
        let out = replace_destination(text, "images/a.jpg", "https://x.org/a-1.jpg");
        assert_eq!(
            out,
            "See images/a.jpg: ![A map](https://x.org/a-1.jpg \"t\") and [it][1].\n\n[1]: https://x.org/a-1.jpg\n"
        );
        assert_eq!(
            replace_destination("[x](images/a.jpg2)", "images/a.jpg", "U"),
            "[x](images/a.jpg2)"
        );
    }
}
