//! Raw HTML in articles, cut down to what email clients render: no script, no frames, no
//! style sheets, no event handlers, no `javascript:` anywhere, and nothing that could close
//! the `<mj-text>` block an article sits in and open MJML of its own.
//!
//! The cleaning itself is ammonia's (an allow-list over a real HTML5 parser, so tricks of
//! syntax that fool a hand-written filter do not fool it). [`removals`] is the report for the
//! lint: a lighter scan of the same allow-lists that says, per fragment, what the sanitiser
//! will take out, so that the author learns it with the file and line.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

/// Elements kept: text structure, tables, images and links, which every mail client shows.
const TAGS: &[&str] = &[
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "center",
    "cite",
    "code",
    "dd",
    "del",
    "div",
    "dl",
    "dt",
    "em",
    "figcaption",
    "figure",
    "font",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "mark",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
];

/// Elements removed together with everything inside them: their content is code or a
/// document of its own, never text meant for the reader.
pub(crate) const DROPPED_WITH_CONTENT: &[&str] = &[
    "script", "style", "iframe", "object", "noscript", "noembed", "noframes", "template", "svg",
    "math", "xmp",
];

/// Attributes allowed on any kept element. `style` is cut down to [`STYLE_PROPERTIES`].
const GENERIC_ATTRIBUTES: &[&str] = &["title", "lang", "dir", "class", "style", "align"];

/// Attributes allowed on some elements only.
const TAG_ATTRIBUTES: &[(&str, &[&str])] = &[
    ("a", &["href", "name"]),
    ("img", &["src", "alt", "width", "height"]),
    ("td", &["colspan", "rowspan", "width", "valign"]),
    ("th", &["colspan", "rowspan", "width", "valign", "scope"]),
    ("table", &["width", "border", "cellpadding", "cellspacing"]),
    ("ol", &["start", "type"]),
    ("font", &["color", "size", "face"]),
];

/// Style properties kept: colours, alignment and type, none of which can load anything.
const STYLE_PROPERTIES: &[&str] = &[
    "color",
    "background-color",
    "text-align",
    "text-decoration",
    "font-weight",
    "font-style",
    "font-size",
    "line-height",
];

/// URL schemes kept in `href` and `src`: the ones the lint accepts for Markdown links.
const URL_SCHEMES: &[&str] = &["http", "https", "mailto"];

/// Elements without an end tag: they open nothing.
pub(crate) const VOID_ELEMENTS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

fn builder() -> &'static ammonia::Builder<'static> {
    static BUILDER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    BUILDER.get_or_init(|| {
        let tag_attributes: HashMap<&str, HashSet<&str>> = TAG_ATTRIBUTES
            .iter()
            .map(|(tag, attrs)| (*tag, attrs.iter().copied().collect()))
            .collect();
        let mut b = ammonia::Builder::empty();
        b.tags(TAGS.iter().copied().collect())
            .clean_content_tags(DROPPED_WITH_CONTENT.iter().copied().collect())
            .generic_attributes(GENERIC_ATTRIBUTES.iter().copied().collect())
            .tag_attributes(tag_attributes)
            .filter_style_properties(STYLE_PROPERTIES.iter().copied().collect())
            .url_schemes(URL_SCHEMES.iter().copied().collect())
            // Relative URLs (and the slot tokens that stand for subscriber URLs until a
            // message is filled) are kept: the lint reports relative ones as errors.
            .url_relative(ammonia::UrlRelative::PassThrough)
            // Mail is not a browsing context: no `rel` to add, and the output stays as written.
            .link_rel(None)
            .strip_comments(true);
        b
    })
}

/// `html` with everything outside the allow-lists removed.
pub(crate) fn clean(html: &str) -> String {
    builder().clean(html).to_string()
}

/// One thing the sanitiser will remove from a fragment of raw HTML.
pub(crate) struct Removal {
    /// Byte offset in the fragment.
    pub(crate) offset: usize,
    /// What goes, and why.
    pub(crate) message: String,
}

/// A tag found by [`tags`]: where it starts, its lower-cased name, whether it is an end tag
/// or closes itself, and the text of its attributes.
pub(crate) struct RawTag<'a> {
    pub(crate) offset: usize,
    pub(crate) name: String,
    pub(crate) closing: bool,
    pub(crate) self_closing: bool,
    pub(crate) attributes: &'a str,
}

/// The tags of a fragment of HTML, in order, comments skipped. A light scan, for reports and
/// depth counting only; the cleaning is ammonia's.
pub(crate) fn tags(html: &str) -> Vec<RawTag<'_>> {
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(i) = html[pos..].find('<') {
        let at = pos + i;
        let rest = &html[at + 1..];
        if rest.starts_with("!--") {
            pos = rest.find("-->").map_or(html.len(), |e| at + 1 + e + 3);
            continue;
        }
        let closing = rest.starts_with('/');
        let name_start = usize::from(closing);
        let name: String = rest[name_start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '_'))
            .collect();
        if !name.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
            pos = at + 1;
            continue;
        }
        let after_name = at + 1 + name_start + name.len();
        let end = html[after_name..]
            .find('>')
            .map_or(html.len(), |e| after_name + e);
        let attributes = &html[after_name..end];
        found.push(RawTag {
            offset: at,
            name: name.to_ascii_lowercase(),
            closing,
            self_closing: attributes.trim_end().ends_with('/'),
            attributes,
        });
        pos = (end + 1).min(html.len());
    }
    found
}

/// What cleaning `fragment` will remove. `opened` carries the names of removed elements
/// already reported in earlier fragments of the same document, so that an end tag of an
/// element reported at its start is not reported again.
pub(crate) fn removals(fragment: &str, opened: &mut BTreeSet<String>) -> Vec<Removal> {
    let mut out = Vec::new();
    for tag in tags(fragment) {
        let name = tag.name.as_str();
        if !TAGS.contains(&name) {
            if tag.closing && opened.contains(name) {
                continue;
            }
            let shown = if tag.closing {
                format!("</{name}>")
            } else {
                format!("<{name}>")
            };
            let what = if tag.closing {
                ""
            } else if DROPPED_WITH_CONTENT.contains(&name) {
                " with everything inside it"
            } else {
                " (its text is kept)"
            };
            out.push(Removal {
                offset: tag.offset,
                message: format!(
                    "raw HTML `{shown}` removed{what}: articles may use text, links, images, \
                     lists and tables, never script, frames, style sheets or MJML"
                ),
            });
            if !tag.closing {
                opened.insert(name.to_string());
            }
            continue;
        }
        if tag.closing {
            continue;
        }
        for (attr, value) in attributes(tag.attributes) {
            if let Some(message) = attribute_removal(name, &attr, &value) {
                out.push(Removal {
                    offset: tag.offset,
                    message,
                });
            }
        }
    }
    out
}

/// Why the sanitiser removes `attr="value"` from `<tag>` (or part of it), if it does.
fn attribute_removal(tag: &str, attr: &str, value: &str) -> Option<String> {
    let allowed = GENERIC_ATTRIBUTES.contains(&attr)
        || TAG_ATTRIBUTES
            .iter()
            .any(|(t, attrs)| *t == tag && attrs.contains(&attr));
    if !allowed {
        let why = if attr.starts_with("on") {
            "event handlers never run in mail and are how web pages are attacked"
        } else {
            "email clients ignore or refuse it"
        };
        return Some(format!("attribute `{attr}` removed from `<{tag}>`: {why}"));
    }
    if matches!(attr, "href" | "src") {
        let scheme = value
            .trim()
            .split_once(':')
            .map(|(s, _)| s.to_ascii_lowercase())
            .filter(|s| !s.contains('/'));
        if let Some(scheme) = scheme
            && !URL_SCHEMES.contains(&scheme.as_str())
        {
            return Some(format!(
                "link `{scheme}:…` removed from `<{tag} {attr}>`: only http, https and mailto \
                 links are kept"
            ));
        }
    }
    if attr == "style" {
        let dropped: Vec<&str> = value
            .split(';')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .filter(|d| {
                let property = d
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                let lower = d.to_ascii_lowercase();
                !STYLE_PROPERTIES.contains(&property.as_str())
                    || lower.contains("url(")
                    || lower.contains("expression(")
            })
            .collect();
        if !dropped.is_empty() {
            return Some(format!(
                "style `{}` removed from `<{tag}>`: only {} are kept",
                dropped.join("; "),
                STYLE_PROPERTIES.join(", ")
            ));
        }
    }
    None
}

/// The `name="value"` pairs of a tag's attribute text, names lower-cased.
fn attributes(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        if rest.is_empty() {
            return out;
        }
        let name_len = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '=' | '/' | '>'))
            .unwrap_or(rest.len());
        let name = rest[..name_len].to_ascii_lowercase();
        rest = rest[name_len..].trim_start();
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (v, remaining) = match after.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let inner = &after[1..];
                    let end = inner.find(q).unwrap_or(inner.len());
                    (&inner[..end], inner.get(end + 1..).unwrap_or(""))
                }
                _ => {
                    let end = after.find(char::is_whitespace).unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            value = v.to_string();
            rest = remaining;
        }
        if name.is_empty() {
            // A stray character: skip it rather than loop on it.
            rest = rest.get(1..).unwrap_or("");
            continue;
        }
        out.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_handlers_and_mjml_are_removed() {
        let dirty = "<b onclick=\"x()\">bold</b><script>alert(1)</script>\
                     <a href=\"javascript:alert(2)\">l</a>\
                     <p style=\"color: red; background: url(javascript:alert(3))\">s</p>\
                     </mj-text><mj-raw><i>raw</i></mj-raw>";
        let clean = clean(dirty);
        assert_eq!(
            clean,
            "<b>bold</b><a>l</a><p style=\"color:red\">s</p><i>raw</i>"
        );
    }

    #[test]
    fn ten_thousand_nested_divs_do_not_overflow() {
        let deep = format!("{}x{}", "<div>".repeat(10_000), "</div>".repeat(10_000));
        assert!(clean(&deep).contains('x'));
    }

    #[test]
    fn removals_name_each_thing() {
        let mut opened = BTreeSet::new();
        let found = removals(
            "<script>x</script><b onclick=\"y\" class=\"k\">b</b><img src='data:x' alt=a>",
            &mut opened,
        );
        let messages: Vec<&str> = found.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].contains("`<script>`"));
        assert!(messages[1].contains("`onclick`"));
        assert!(messages[2].contains("data:"));
        // The end tag of a reported element is not reported again.
        assert!(removals("</script>", &mut opened).is_empty());
    }

    #[test]
    fn slot_tokens_survive() {
        let html = "<a href=\"BxSLOT61x62xB\">u</a>";
        assert_eq!(clean(html), html);
    }
}
