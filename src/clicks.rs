//! Click counting, opt-in (`track_clicks = true` in edition.toml) and privacy-first.
//!
//! When a campaign that counts clicks begins, every `http(s)` link of each language variant's
//! HTML part (the `href` of an `<a>`, written in the template's fixed text) is stored once in
//! `campaign_links`, and the variant's HTML is rewritten to send it through
//! `{public_url}/c/{token}`. The token is signed ([`Keys::click`]) and names the link row,
//! never the address: `serve` reads the address from the database, so a redirect only ever goes
//! to a URL stored for that campaign (no open redirect).
//!
//! What is left alone, on purpose:
//! - links that hold a subscriber slot (unsubscribe, preferences, the web version, anything
//!   with a `{{subscriber.…}}` in it): they are per recipient, and the first three are ours;
//! - links to bulletin's own pages on the public URL (`/u/`, `/p/`, `/c/`, `/subscribe`, …);
//! - `mailto:` and every other scheme;
//! - the plain-text part: a person reading text sees the real address they are about to open,
//!   and clicks are counted from the HTML part only (most readers);
//! - composed files, the web version and test copies (`preview --to`): they keep the original
//!   addresses, so checking an edition never counts a click.
//!
//! The rewrite happens once per variant, on the template's literals, before the send prepares
//! its parts: per recipient nothing changes. There is no per-person click history and no open
//! tracking pixel.

use std::collections::HashMap;

use crate::render::RenderedEdition;
use crate::render::slots::{CompiledTemplate, escape_html};
use crate::store::{Store, StoreError};
use crate::token::Keys;

/// Paths of the public URL that are bulletin's own pages: links there are never counted.
const OWN_PATHS: &[&str] = &[
    "/u/",
    "/p/",
    "/c/",
    "/confirm/",
    "/subscribe",
    "/unsubscribe",
    "/preferences",
];

/// Longest address counted; a longer link is left as it is (and still works).
pub const MAX_URL_LEN: usize = 2048;

/// What can stop click counting from being set up.
#[derive(Debug, thiserror::Error)]
pub enum ClickError {
    /// The links could not be recorded; nothing was sent.
    #[error("cannot record the campaign's links for click counting: {0}")]
    Store(#[from] StoreError),
}

/// A campaign's edition with its links going through the click redirect.
#[derive(Debug)]
pub struct Tracked {
    /// The edition to send: each variant's HTML rewritten.
    pub edition: RenderedEdition,
    /// Distinct links per language variant, in all.
    pub links: usize,
}

/// Records the links of every variant of `edition` for `campaign_id` and returns the edition
/// whose HTML parts lead through `{public_url}/c/{token}`. Resuming a campaign records
/// nothing new and gives the same links.
pub async fn track(
    store: &Store,
    keys: &Keys,
    campaign_id: i64,
    edition: &RenderedEdition,
    public_url: &str,
) -> Result<Tracked, ClickError> {
    let base = public_url.trim_end_matches('/');
    let mut tracked = edition.clone();
    let mut count = 0;
    for (language, variant) in &mut tracked.variants {
        let urls = links(&variant.html, base);
        if urls.is_empty() {
            continue;
        }
        let ids = store.record_links(campaign_id, language, &urls).await?;
        count += urls.len();
        let to: HashMap<String, String> = urls
            .into_iter()
            .zip(ids)
            .map(|(url, id)| (url, format!("{base}/c/{}", keys.click(campaign_id, id))))
            .collect();
        variant.html = rewrite(&variant.html, base, &to);
    }
    Ok(Tracked {
        edition: tracked,
        links: count,
    })
}

/// The distinct addresses that would be counted in `template`, in order of first appearance.
pub fn links(template: &CompiledTemplate, public_url: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for literal in template.literals() {
        replace_hrefs(literal, |url| {
            if countable(url, public_url) && !found.iter().any(|f| f == url) {
                found.push(url.to_string());
            }
            None
        });
    }
    found
}

/// `template` with each counted link's `href` replaced by its redirect in `to` (keyed by the
/// decoded address, as [`links`] gives it).
pub fn rewrite(
    template: &CompiledTemplate,
    public_url: &str,
    to: &HashMap<String, String>,
) -> CompiledTemplate {
    template.map_literals(|literal| {
        replace_hrefs(literal, |url| {
            if !countable(url, public_url) {
                return None;
            }
            to.get(url).map(|redirect| {
                let mut escaped = String::with_capacity(redirect.len());
                escape_html(&mut escaped, redirect);
                escaped
            })
        })
    })
}

/// Whether a link's address is counted: an absolute http(s) URL, not too long, with nothing
/// in it that a `Location` header could not carry, and not one of bulletin's own pages.
fn countable(url: &str, public_url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let web = lower.starts_with("https://") || lower.starts_with("http://");
    let clean = !url.chars().any(|c| c.is_whitespace() || c.is_control());
    let own = !public_url.is_empty()
        && url.strip_prefix(public_url).is_some_and(|path| {
            path.is_empty() || OWN_PATHS.iter().any(|own| path.starts_with(own))
        });
    web && clean && url.len() <= MAX_URL_LEN && !own
}

/// Calls `f` with the decoded address of every `href` of an `<a>` tag that lies whole in
/// `literal`, and writes `f`'s answer (already HTML-escaped) in its place when it gives one.
/// An `href` cut by a slot, or in a tag that began before the literal, is left alone: it holds
/// a subscriber's value.
fn replace_hrefs(literal: &str, mut f: impl FnMut(&str) -> Option<String>) -> String {
    // ASCII lower-casing keeps every byte offset.
    let lower = literal.to_ascii_lowercase();
    let mut out = String::new();
    let (mut copied, mut search) = (0, 0);
    while let Some(found) = lower[search..].find("href=") {
        let at = search + found;
        search = at + "href=".len();
        if !lower[..at].ends_with(|c: char| c.is_ascii_whitespace()) {
            continue;
        }
        let Some(open) = lower[..at].rfind('<') else {
            continue;
        };
        let tag_name = lower[open + 1..]
            .split(|c: char| !c.is_ascii_alphanumeric())
            .next();
        if lower[open..at].contains('>') || tag_name != Some("a") {
            continue;
        }
        let quote = match lower.as_bytes().get(search) {
            Some(&q @ (b'"' | b'\'')) => q as char,
            _ => continue,
        };
        let start = search + 1;
        let Some(len) = literal[start..].find(quote) else {
            continue;
        };
        let url = unescape(&literal[start..start + len]);
        if let Some(new) = f(url.trim()) {
            out.push_str(&literal[copied..start]);
            out.push_str(&new);
            copied = start + len;
        }
        search = start + len;
    }
    if copied == 0 {
        return literal.to_string();
    }
    out.push_str(&literal[copied..]);
    out
}

/// Decodes the character references an attribute value may hold (`&amp;` above all, which
/// every `&` of a query string becomes).
fn unescape(value: &str) -> String {
    if !value.contains('&') {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "lt" => Some('<'),
                "gt" => Some('>'),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .map(|hex| u32::from_str_radix(hex, 16))
                    .or_else(|| name.strip_prefix('#').map(str::parse::<u32>))
                    .and_then(Result::ok)
                    .and_then(char::from_u32),
            }?;
            Some((c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::slots::{Kind, SlotKey, token};

    const BASE: &str = "https://news.example.org";

    fn compiled(html: &str) -> CompiledTemplate {
        CompiledTemplate::compile(html, Kind::Html)
    }

    #[test]
    fn finds_the_links_people_follow_and_nothing_else() {
        let unsubscribe = token(&SlotKey::UnsubscribeUrl, "");
        let name = token(&SlotKey::Name, "");
        let html = format!(
            "<head><link href=\"https://fonts.example/x.css\"></head><body>\
             <a class=\"b\" href=\"https://example.org/a?x=1&amp;y=2\">A</a>\
             <A HREF='http://example.org/b'>B</A>\
             <a href=\"https://example.org/a?x=1&amp;y=2\">A again</a>\
             <a href=\"mailto:info@example.org\">mail</a>\
             <a href=\"{unsubscribe}\">leave</a>\
             <a href=\"https://example.org/c?n={name}\">mine</a>\
             <a href=\"{BASE}/subscribe?lang=en\">ours</a>\
             <a href=\"{BASE}/archive/x/assets/report.pdf\">report</a>\
             <abbr href=\"https://example.org/no\">no</abbr></body>"
        );
        let t = compiled(&html);
        assert_eq!(
            links(&t, BASE),
            [
                "https://example.org/a?x=1&y=2",
                "http://example.org/b",
                &format!("{BASE}/archive/x/assets/report.pdf"),
            ]
        );
    }

    #[test]
    fn rewrites_every_occurrence_and_keeps_the_slots() {
        let unsubscribe = token(&SlotKey::UnsubscribeUrl, "");
        let html = format!(
            "<body><a href=\"https://example.org/a?x=1&amp;y=2\">A</a>\
             <a href=\"{unsubscribe}\">leave</a><a href=\"https://example.org/a?x=1&amp;y=2\">A</a></body>"
        );
        let t = compiled(&html);
        let to = HashMap::from([(
            "https://example.org/a?x=1&y=2".to_string(),
            format!("{BASE}/c/TOKEN"),
        )]);
        let rewritten = rewrite(&t, BASE, &to);
        assert_eq!(rewritten.slots(), t.slots());
        let filled = rewritten.fill(&crate::render::SubscriberSlots {
            unsubscribe_url: format!("{BASE}/u/abc"),
            ..Default::default()
        });
        assert_eq!(
            filled.matches("https://news.example.org/c/TOKEN").count(),
            2
        );
        assert!(!filled.contains("example.org/a?"), "{filled}");
        assert!(filled.contains("/u/abc"), "{filled}");
    }

    #[test]
    fn decodes_character_references() {
        assert_eq!(
            unescape("a&amp;b&#38;c&#x26;d&bogus;e&"),
            "a&b&c&d&bogus;e&"
        );
    }
}
