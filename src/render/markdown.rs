//! Markdown for email: HTML for the rich part, readable plain text for the text part, and the
//! checks that are best made on the Markdown itself, where the file and line are still known.

use std::collections::BTreeSet;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::lint::Severity;
use super::sanitise;
use super::slots::{placeholder_slot, substitute_placeholders};

/// How deep Markdown and the raw HTML in it may nest (quotes, lists, emphasis, elements in
/// one another). No reader follows a twentieth level; the bound is there because the MJML
/// parser and renderer recurse once per level, and content nested thousands deep would
/// exhaust the stack and abort the process instead of giving an error.
pub(crate) const MAX_NESTING: usize = 64;

/// Width of the plain-text part: short enough for any mail client, as RFC 3676 suggests.
pub(crate) const TEXT_WIDTH: usize = 72;

fn options() -> Options {
    // No smart punctuation: the text reaches readers as its authors typed it.
    Options::ENABLE_STRIKETHROUGH
}

/// Markdown to HTML, with subscriber placeholders turned into slot tokens and raw HTML
/// sanitised.
///
/// Only Markdown that holds raw HTML goes through the sanitiser: what pulldown-cmark writes
/// from Markdown alone is escaped already, and leaving it byte for byte as it was keeps the
/// content hash of editions composed before, so that a `send` in progress can resume.
pub(crate) fn to_html(markdown: &str) -> String {
    let markdown = substitute_placeholders(markdown);
    let events: Vec<Event<'_>> = Parser::new_ext(&markdown, options()).collect();
    let raw = events
        .iter()
        .any(|e| matches!(e, Event::Html(_) | Event::InlineHtml(_)));
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    if raw { sanitise::clean(&html) } else { html }
}

/// The offset of the first place where `markdown` nests deeper than [`MAX_NESTING`], with the
/// depth reached there.
pub(crate) fn too_deep(markdown: &str) -> Option<usize> {
    let mut depth = 0usize;
    // Elements opened by raw HTML, apart: an end tag closes only what HTML opened.
    let mut raw_depth = 0usize;
    for (event, range) in Parser::new_ext(markdown, options()).into_offset_iter() {
        match event {
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Html(fragment) | Event::InlineHtml(fragment) => {
                for tag in sanitise::tags(&fragment) {
                    if tag.closing {
                        raw_depth = raw_depth.saturating_sub(1);
                    } else if !tag.self_closing
                        && !sanitise::VOID_ELEMENTS.contains(&tag.name.as_str())
                    {
                        raw_depth += 1;
                    }
                    if depth + raw_depth > MAX_NESTING {
                        return Some(range.start);
                    }
                }
            }
            _ => {}
        }
        if depth + raw_depth > MAX_NESTING {
            return Some(range.start);
        }
    }
    None
}

/// A problem found in Markdown: the byte offset in the text, and the message.
pub(crate) struct MarkdownIssue {
    pub(crate) offset: usize,
    /// Errors stop `compose`; warnings (raw HTML removed by the sanitiser) are reported.
    pub(crate) severity: Severity,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    /// The URL or placeholder text the issue is about.
    pub(crate) subject: String,
}

/// Links that are not absolute, images without alt text, and `{{…}}` that are no slot.
pub(crate) fn check(markdown: &str) -> Vec<MarkdownIssue> {
    let mut issues = Vec::new();
    let mut image: Option<(usize, String, String)> = None;
    let mut opened = BTreeSet::new();
    for (event, range) in Parser::new_ext(markdown, options()).into_offset_iter() {
        match event {
            Event::Html(fragment) | Event::InlineHtml(fragment) => {
                // Offsets inside the fragment hold when it is the source text as written
                // (not inside a quote, whose `>` markers pulldown-cmark strips).
                let verbatim = markdown.get(range.clone()) == Some(&*fragment);
                for removal in sanitise::removals(&fragment, &mut opened) {
                    issues.push(MarkdownIssue {
                        offset: range.start + if verbatim { removal.offset } else { 0 },
                        severity: Severity::Warning,
                        code: "html",
                        message: removal.message,
                        subject: String::new(),
                    });
                }
            }
            Event::Start(Tag::Link { dest_url, .. }) => {
                if let Some(message) = link_problem(&dest_url) {
                    issues.push(MarkdownIssue {
                        offset: range.start,
                        severity: Severity::Error,
                        code: "link",
                        message,
                        subject: dest_url.to_string(),
                    });
                }
            }
            Event::Start(Tag::Image { dest_url, .. }) => {
                image = Some((range.start, dest_url.to_string(), String::new()));
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, _, alt)) = image.as_mut() {
                    alt.push_str(&t);
                }
            }
            Event::End(TagEnd::Image) => {
                if let Some((offset, url, alt)) = image.take() {
                    if alt.trim().is_empty() {
                        issues.push(MarkdownIssue {
                            offset,
                            severity: Severity::Error,
                            code: "image-alt",
                            message: format!(
                                "image `{url}` has no alt text; write it as ![what it shows]({url})"
                            ),
                            subject: url.clone(),
                        });
                    }
                    if let Some(message) = link_problem(&url) {
                        issues.push(MarkdownIssue {
                            offset,
                            severity: Severity::Error,
                            code: "link",
                            message,
                            subject: url,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    for (offset, inner) in placeholders(markdown) {
        if placeholder_slot(inner).is_none() {
            issues.push(MarkdownIssue {
                offset,
                severity: Severity::Error,
                code: "placeholder",
                message: unresolved_message(inner),
                subject: inner.to_string(),
            });
        }
    }
    issues
}

/// The message for a `{{…}}` that names no slot, with the closest slot when there is one.
pub(crate) fn unresolved_message(inner: &str) -> String {
    let inner = inner.trim();
    let names: Vec<String> = super::slots::SlotKey::NAMES
        .iter()
        .map(|n| format!("subscriber.{n}"))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    match crate::config::closest(inner, &refs) {
        Some(best) => {
            format!("unresolved placeholder `{{{{{inner}}}}}`; did you mean `{{{{{best}}}}}`?")
        }
        None => format!(
            "unresolved placeholder `{{{{{inner}}}}}`; the placeholders are {}, and \
             subscriber.attributes.NAME",
            names.join(", ")
        ),
    }
}

/// Every `{{…}}` in `text`: its offset and its inside.
pub(crate) fn placeholders(text: &str) -> Vec<(usize, &str)> {
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(start) = text[pos..].find("{{") {
        let start = pos + start;
        let Some(end) = text[start + 2..].find("}}") else {
            break;
        };
        found.push((start, &text[start + 2..start + 2 + end]));
        pos = start + 2 + end + 2;
    }
    found
}

/// Why `url` cannot be used in an email, if it cannot.
pub(crate) fn link_problem(url: &str) -> Option<String> {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:")
    {
        return None;
    }
    if lower.starts_with("{{") || lower.starts_with("bxslot") {
        return None;
    }
    if lower.contains(':') && !lower.starts_with('/') {
        return Some(format!(
            "link `{url}` uses a scheme mail clients block; use an https:// or mailto: link"
        ));
    }
    Some(format!(
        "link `{url}` is relative, and a relative link goes nowhere in an inbox; \
         write the full address, e.g. https://example.org{}{}",
        if lower.starts_with('/') { "" } else { "/" },
        url.trim()
    ))
}

/// Markdown to plain text for people: headings underlined, lists with dashes, links as
/// `text (URL)`, paragraphs wrapped at [`TEXT_WIDTH`].
pub(crate) fn to_text(markdown: &str) -> String {
    let markdown = substitute_placeholders(markdown);
    let mut out = String::new();
    let mut inline = String::new();
    // Each open list: the next number for ordered lists.
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut item_prefix: Option<String> = None;
    let mut quote_depth = 0usize;
    let mut links: Vec<String> = Vec::new();
    let mut heading: Option<HeadingLevel> = None;
    // How many inline elements whose content is dropped (script, style…) are open.
    let mut dropping = 0usize;

    let flush = |out: &mut String,
                 inline: &mut String,
                 item_prefix: &mut Option<String>,
                 lists: &Vec<Option<u64>>,
                 quote_depth: usize| {
        let text = inline.trim().to_string();
        inline.clear();
        if text.is_empty() {
            return;
        }
        let quote = "> ".repeat(quote_depth);
        let indent = "  ".repeat(lists.len().saturating_sub(1));
        let (first, rest) = match item_prefix.take() {
            Some(p) => {
                let pad = " ".repeat(p.chars().count());
                (
                    format!("{quote}{indent}{p}"),
                    format!("{quote}{indent}{pad}"),
                )
            }
            None if !lists.is_empty() => {
                let pad = "  ".repeat(lists.len());
                (format!("{quote}{pad}"), format!("{quote}{pad}"))
            }
            None => (quote.clone(), quote),
        };
        wrap_into(out, &text, &first, &rest, TEXT_WIDTH);
    };

    for event in Parser::new_ext(&markdown, options()) {
        match event {
            Event::Start(Tag::Heading { level, .. }) => heading = Some(level),
            Event::End(TagEnd::Heading(_)) => {
                let text = inline.trim().to_string();
                inline.clear();
                let underline = match heading.take() {
                    Some(HeadingLevel::H1) => '=',
                    _ => '-',
                };
                out.push_str(&text);
                out.push('\n');
                out.extend(std::iter::repeat_n(underline, text.chars().count()));
                out.push_str("\n\n");
            }
            Event::End(TagEnd::Paragraph) => {
                flush(&mut out, &mut inline, &mut item_prefix, &lists, quote_depth);
                if lists.is_empty() {
                    out.push('\n');
                }
            }
            Event::Start(Tag::List(start)) => {
                flush(&mut out, &mut inline, &mut item_prefix, &lists, quote_depth);
                lists.push(start);
            }
            Event::End(TagEnd::List(_)) => {
                flush(&mut out, &mut inline, &mut item_prefix, &lists, quote_depth);
                lists.pop();
                if lists.is_empty() {
                    out.push('\n');
                }
            }
            Event::Start(Tag::Item) => {
                flush(&mut out, &mut inline, &mut item_prefix, &lists, quote_depth);
                item_prefix = Some(match lists.last_mut() {
                    Some(Some(n)) => {
                        let p = format!("{n}. ");
                        *n += 1;
                        p
                    }
                    _ => "- ".to_string(),
                });
            }
            Event::End(TagEnd::Item) => {
                flush(&mut out, &mut inline, &mut item_prefix, &lists, quote_depth);
            }
            Event::Start(Tag::BlockQuote(_)) => quote_depth += 1,
            Event::End(TagEnd::BlockQuote(_)) => quote_depth = quote_depth.saturating_sub(1),
            Event::Start(Tag::Link { dest_url, .. }) => {
                links.push(dest_url.to_string());
                inline.push('\u{1}');
            }
            Event::End(TagEnd::Link) => {
                let url = links.pop().unwrap_or_default();
                // Show the text and the URL, or the URL alone when they are the same.
                if let Some(mark) = inline.rfind('\u{1}') {
                    let text = inline[mark + 1..].to_string();
                    inline.truncate(mark);
                    let shown = url.strip_prefix("mailto:").unwrap_or(&url);
                    if text.trim() == shown || text.trim().is_empty() {
                        inline.push_str(shown);
                    } else {
                        inline.push_str(&text);
                        inline.push_str(" (");
                        inline.push_str(shown);
                        inline.push(')');
                    }
                }
            }
            Event::Start(Tag::Image { .. }) => inline.push('['),
            Event::End(TagEnd::Image) => inline.push(']'),
            // Inside inline <script>, <style> and the like: code the sanitiser drops from the
            // HTML part, not text for readers.
            Event::InlineHtml(html) => {
                for tag in sanitise::tags(&html) {
                    if sanitise::DROPPED_WITH_CONTENT.contains(&tag.name.as_str()) {
                        dropping = if tag.closing {
                            dropping.saturating_sub(1)
                        } else {
                            dropping + 1
                        };
                    }
                }
            }
            Event::Text(_) | Event::Code(_) if dropping > 0 => {}
            Event::Text(t) | Event::Code(t) => inline.push_str(&t),
            Event::SoftBreak => inline.push(' '),
            Event::HardBreak => inline.push('\n'),
            Event::Rule => out.push_str("----------\n\n"),
            Event::End(TagEnd::CodeBlock) => {
                out.push_str(&inline);
                out.push('\n');
                inline.clear();
            }
            // Raw HTML has no place in the text part; its text content is kept by Text events.
            _ => {}
        }
    }
    flush(&mut out, &mut inline, &mut item_prefix, &lists, quote_depth);
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// Appends `text` wrapped at `width`, the first line after `first`, the others after `rest`.
/// Words longer than a line (URLs) are never cut.
pub(crate) fn wrap_into(out: &mut String, text: &str, first: &str, rest: &str, width: usize) {
    for (n, paragraph_line) in text.split('\n').enumerate() {
        let mut line = String::from(if n == 0 { first } else { rest });
        let mut empty = true;
        for word in paragraph_line.split_whitespace() {
            let len = line.chars().count() + usize::from(!empty) + shown_len(word);
            if !empty && len > width {
                out.push_str(line.trim_end());
                out.push('\n');
                line = String::from(rest);
                empty = true;
            }
            if !empty {
                line.push(' ');
            }
            line.push_str(word);
            empty = false;
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// The width `word` will have once filled: a slot token counts as its fallback, or as a
/// typical value (a name) when it has none, not as the long token it is until then.
fn shown_len(word: &str) -> usize {
    let mut len = 0;
    let mut rest = word;
    while let Some(i) = rest.find("BxSLOT") {
        len += rest[..i].chars().count();
        match super::slots::parse_token(&rest[i..]) {
            Some((_, fallback, token_len)) => {
                len += fallback.chars().count().max(10);
                rest = &rest[i + token_len..];
            }
            None => {
                len += "BxSLOT".len();
                rest = &rest[i + "BxSLOT".len()..];
            }
        }
    }
    len + rest.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_for_people() {
        let md = "# Title\n\nSome **bold** text with a [link](https://x.org/a) and \
                  <https://x.org/b>.\n\n- one\n- two [t](mailto:a@x.org)\n\n1. first\n2. second\n";
        assert_eq!(
            to_text(md),
            "Title\n=====\n\nSome bold text with a link (https://x.org/a) and https://x.org/b.\n\n\
             - one\n- two t (a@x.org)\n\n1. first\n2. second\n"
        );
    }

    #[test]
    fn long_paragraphs_wrap() {
        let md = "word ".repeat(40);
        let text = to_text(&md);
        assert!(text.lines().all(|l| l.chars().count() <= TEXT_WIDTH));
        assert!(text.lines().count() > 1);
    }

    #[test]
    fn checks_find_relative_links_missing_alt_and_placeholders() {
        let md = "See [here](/x).\n\n![](https://x.org/i.png)\n\nHi {{subscriber.nam}}\n";
        let issues = check(md);
        let codes: Vec<&str> = issues.iter().map(|i| i.code).collect();
        assert_eq!(codes, ["link", "image-alt", "placeholder"]);
        assert!(
            issues[2]
                .message
                .contains("did you mean `{{subscriber.name}}`")
        );
    }
}
