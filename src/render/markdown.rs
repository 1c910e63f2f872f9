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
    // A file of the edition: compose publishes it, and the assets report says when it cannot.
    if crate::assets::is_local(url) {
        return None;
    }
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
    let mut writer = TextWriter::default();
    for event in Parser::new_ext(&markdown, options()) {
        writer.event(event);
    }
    writer.flush();
    let mut out = writer.out;
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// The state of [`to_text`] between Markdown events: the text written so far, and the
/// inline text of the block being read, written once the block ends and its indent is known.
#[derive(Default)]
struct TextWriter {
    out: String,
    inline: String,
    /// Each open list: the next number for ordered lists.
    lists: Vec<Option<u64>>,
    item_prefix: Option<String>,
    quote_depth: usize,
    /// The URLs of the open links.
    links: Vec<String>,
    heading: Option<HeadingLevel>,
    /// How many inline elements whose content is dropped (script, style…) are open.
    dropping: usize,
}

impl TextWriter {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(Tag::Heading { level, .. }) => self.heading = Some(level),
            Event::End(TagEnd::Heading(_)) => self.end_heading(),
            Event::End(TagEnd::Paragraph) => {
                self.flush();
                if self.lists.is_empty() {
                    self.out.push('\n');
                }
            }
            Event::Start(Tag::List(start)) => {
                self.flush();
                self.lists.push(start);
            }
            Event::End(TagEnd::List(_)) => {
                self.flush();
                self.lists.pop();
                if self.lists.is_empty() {
                    self.out.push('\n');
                }
            }
            Event::Start(Tag::Item) => self.start_item(),
            Event::End(TagEnd::Item) => self.flush(),
            Event::Start(Tag::BlockQuote(_)) => self.quote_depth += 1,
            Event::End(TagEnd::BlockQuote(_)) => {
                self.quote_depth = self.quote_depth.saturating_sub(1);
            }
            Event::Start(Tag::Link { dest_url, .. }) => {
                self.links.push(dest_url.to_string());
                self.inline.push('\u{1}');
            }
            Event::End(TagEnd::Link) => self.end_link(),
            Event::Start(Tag::Image { .. }) => self.inline.push('['),
            Event::End(TagEnd::Image) => self.inline.push(']'),
            Event::InlineHtml(html) => self.inline_html(&html),
            Event::Text(_) | Event::Code(_) if self.dropping > 0 => {}
            Event::Text(t) | Event::Code(t) => self.inline.push_str(&t),
            Event::SoftBreak => self.inline.push(' '),
            Event::HardBreak => self.inline.push('\n'),
            Event::Rule => self.out.push_str("----------\n\n"),
            Event::End(TagEnd::CodeBlock) => {
                self.out.push_str(&self.inline);
                self.out.push('\n');
                self.inline.clear();
            }
            // Raw HTML has no place in the text part; its text content is kept by Text events.
            _ => {}
        }
    }

    /// Writes the pending inline text as a wrapped block, indented for the quotes and lists
    /// it is in, after the list item's marker when it is the item's first block.
    fn flush(&mut self) {
        let text = self.inline.trim().to_string();
        self.inline.clear();
        if text.is_empty() {
            return;
        }
        let quote = "> ".repeat(self.quote_depth);
        let indent = "  ".repeat(self.lists.len().saturating_sub(1));
        let (first, rest) = match self.item_prefix.take() {
            Some(p) => {
                let pad = " ".repeat(p.chars().count());
                (
                    format!("{quote}{indent}{p}"),
                    format!("{quote}{indent}{pad}"),
                )
            }
            None if !self.lists.is_empty() => {
                let pad = "  ".repeat(self.lists.len());
                (format!("{quote}{pad}"), format!("{quote}{pad}"))
            }
            None => (quote.clone(), quote),
        };
        wrap_into(&mut self.out, &text, &first, &rest, TEXT_WIDTH);
    }

    fn end_heading(&mut self) {
        let text = self.inline.trim().to_string();
        self.inline.clear();
        let underline = match self.heading.take() {
            Some(HeadingLevel::H1) => '=',
            _ => '-',
        };
        self.out.push_str(&text);
        self.out.push('\n');
        self.out
            .extend(std::iter::repeat_n(underline, text.chars().count()));
        self.out.push_str("\n\n");
    }

    fn start_item(&mut self) {
        self.flush();
        self.item_prefix = Some(match self.lists.last_mut() {
            Some(Some(n)) => {
                let p = format!("{n}. ");
                *n += 1;
                p
            }
            _ => "- ".to_string(),
        });
    }

    /// Shows the link's text and its URL, or the URL alone when they are the same.
    fn end_link(&mut self) {
        let url = self.links.pop().unwrap_or_default();
        if let Some(mark) = self.inline.rfind('\u{1}') {
            let text = self.inline[mark + 1..].to_string();
            self.inline.truncate(mark);
            let shown = url.strip_prefix("mailto:").unwrap_or(&url);
            if text.trim() == shown || text.trim().is_empty() {
                self.inline.push_str(shown);
            } else {
                self.inline.push_str(&text);
                self.inline.push_str(" (");
                self.inline.push_str(shown);
                self.inline.push(')');
            }
        }
    }

    /// Inside inline <script>, <style> and the like: code the sanitiser drops from the HTML
    /// part, not text for readers.
    fn inline_html(&mut self, html: &str) {
        for tag in sanitise::tags(html) {
            if sanitise::DROPPED_WITH_CONTENT.contains(&tag.name.as_str()) {
                self.dropping = if tag.closing {
                    self.dropping.saturating_sub(1)
                } else {
                    self.dropping + 1
                };
            }
        }
    }
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
