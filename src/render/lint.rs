//! The lint report: what would make the edition break, clip, or look careless in an inbox.
//!
//! Errors stop `compose` (exit code 2): an unresolved placeholder, a missing unsubscribe link,
//! HTML over Gmail's 102 KB clipping limit, a relative or unsafe link, an image without alt
//! text. Warnings are printed and the edition still composes: mrml warnings, a long subject, a
//! missing preheader or postal address, a language variant that fell back, an intro that
//! greets the reader after the theme's own greeting. Each finding names
//! the file and line when it has one.
//!
//! The checks run in two places: on the content files, where the file and line of a mistake
//! are known (`lint_content`), and on each language variant's output, for what the theme
//! wrote (`lint_variant`); what the first reports, the second does not report again.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::markdown::{self, MarkdownIssue};
use super::slots::{self, CompiledTemplate, Escape, SlotKey};
use super::{ListIdentity, Theme};
use crate::assets::Published;
use crate::config::line_of;
use crate::content::{Article, Edition, Fallback};

/// Gmail clips a message whose HTML is larger than this, hiding the rest, unsubscribe included.
pub const CLIP_LIMIT_BYTES: usize = 102 * 1024;

/// Subjects longer than this are cut in most inbox lists.
pub const SUBJECT_MAX_CHARS: usize = 78;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Stops `compose`.
    Error,
    /// Reported; the edition still composes.
    Warning,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// Short stable name of the check, for scripts: `link`, `image-alt`, `placeholder`,
    /// `size`, `unsubscribe`, `mjml`, `subject`, `preheader`, `postal-address`, `fallback`,
    /// `html`, `greeting`, and for local files `asset-missing`, `asset-unreadable`,
    /// `asset-path`, `image-focus`, `image-size`, `image-weight`, `document-size`.
    pub code: &'static str,
    /// The file it is in, when known.
    pub file: Option<String>,
    /// 1-based line in that file, when known.
    pub line: Option<usize>,
    /// The language variant, when it concerns one.
    pub language: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{severity}[{}]", self.code)?;
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, " {file}:{line}")?,
            (Some(file), None) => write!(f, " {file}")?,
            _ => {}
        }
        if let Some(lang) = &self.language {
            write!(f, " ({lang})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every finding of one edition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LintReport {
    /// Findings, errors first, then in the order found.
    pub findings: Vec<Finding>,
}

impl LintReport {
    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// True when nothing stops the edition.
    pub fn is_ok(&self) -> bool {
        self.errors() == 0
    }

    pub(crate) fn push(&mut self, finding: Finding) {
        if !self.findings.contains(&finding) {
            self.findings.push(finding);
        }
    }

    pub(crate) fn sort(&mut self) {
        // Stable: within a severity, the order found (file by file) is kept.
        self.findings.sort_by_key(|f| f.severity);
    }
}

impl fmt::Display for LintReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(f, "{finding}")?;
        }
        write!(
            f,
            "lint: {} error(s), {} warning(s)",
            self.errors(),
            self.warnings()
        )
    }
}

/// Every `href`/`src` attribute value of an HTML document, with its byte offset.
pub(crate) fn urls(html: &str) -> Vec<(usize, &str)> {
    let mut found = Vec::new();
    for attr in ["href=\"", "src=\""] {
        let mut pos = 0;
        while let Some(i) = html[pos..].find(attr) {
            let start = pos + i + attr.len();
            let Some(len) = html[start..].find('"') else {
                break;
            };
            // `data-href=` and the like are not links.
            let prev = html[..pos + i].chars().next_back();
            if prev.is_some_and(|c| c.is_whitespace()) {
                found.push((start, &html[start..start + len]));
            }
            pos = start + len;
        }
    }
    found.sort_by_key(|(o, _)| *o);
    found
}

/// `<img>` tags whose `alt` is missing or empty: their offset and `src`.
pub(crate) fn images_without_alt(html: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(i) = html[pos..].find("<img") {
        let start = pos + i;
        let end = html[start..].find('>').map_or(html.len(), |e| start + e);
        let tag = &html[start..end];
        let alt = tag
            .find(" alt=\"")
            .map(|a| &tag[a + 6..])
            .and_then(|rest| rest.split('"').next());
        if alt.is_none_or(|a| a.trim().is_empty()) {
            let src = tag
                .find(" src=\"")
                .map(|s| &tag[s + 6..])
                .and_then(|rest| rest.split('"').next())
                .unwrap_or("");
            found.push((start, src.to_string()));
        }
        pos = end;
    }
    found
}

/// Checks made on the content files, where file and line are known. Returns the placeholders
/// (their inner text) and URLs reported, so the checks on the output do not report them again.
pub(super) fn lint_content(edition: &Edition, report: &mut LintReport) -> BTreeSet<String> {
    let mut reported = BTreeSet::new();
    for versions in edition.articles.values() {
        for a in versions.values() {
            lint_article(a, report, &mut reported);
        }
    }
    lint_greeting(edition, report);
    for texts in edition.texts.values() {
        if let Some(intro) = &texts.intro {
            for issue in markdown::check(intro) {
                if issue.severity == Severity::Error {
                    reported.insert(issue.subject.clone());
                }
                // The intro starts on the line after `intro = """`.
                let line = texts.intro_line + line_of(intro, issue.offset);
                push_issue(report, &edition.manifest_path, line, issue);
            }
        }
    }
    reported
}

/// Words that open a greeting, per language (the first subtag of the variant's language).
/// A language without a list is checked against all of them.
const GREETING_WORDS: &[(&str, &[&str])] = &[
    ("en", &["hello", "hi", "dear"]),
    ("fr", &["bonjour", "cher", "chère"]),
    ("es", &["hola", "estimado", "estimada"]),
    ("pt", &["olá", "caro", "cara"]),
    ("de", &["hallo", "liebe", "lieber"]),
];

/// The greeting word an intro starts with, if it starts with one: `Hello`, `**Bonjour**`,
/// `¡Hola,`. Markdown markers and punctuation around the first word do not count.
fn greeting_word<'a>(intro: &'a str, language: &str) -> Option<&'a str> {
    let is_marker = |c: char| !c.is_alphanumeric();
    let first = intro.trim_start_matches(is_marker);
    let word = first
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .filter(|w| !w.is_empty())?;
    let lower = word.to_lowercase();
    let base = language.split('-').next().unwrap_or(language);
    let mut lists = GREETING_WORDS.iter().filter(|(l, _)| *l == base).peekable();
    let known = if lists.peek().is_some() {
        lists.any(|(_, words)| words.contains(&lower.as_str()))
    } else {
        GREETING_WORDS
            .iter()
            .any(|(_, words)| words.contains(&lower.as_str()))
    };
    known.then_some(word)
}

/// The line of edition.toml where an intro's text starts: the line after `intro = """`
/// when the value opens a multi-line string, else the key's own line.
fn intro_text_line(manifest: &str, intro_line: usize, intro: &str) -> usize {
    let opens_block = manifest
        .lines()
        .nth(intro_line.saturating_sub(1))
        .is_some_and(|l| {
            let l = l.trim_end();
            l.ends_with("\"\"\"") || l.ends_with("'''")
        });
    let leading = intro.len() - intro.trim_start().len();
    let within = line_of(intro, leading) - 1;
    if opens_block {
        intro_line + 1 + within
    } else {
        intro_line + within
    }
}

/// A warning for each intro that greets the reader while the theme writes its own greeting
/// line before it: the reader would read "Dear Ana Lima, Hello Ana Lima".
fn lint_greeting(edition: &Edition, report: &mut LintReport) {
    if !edition.greeting {
        return;
    }
    // Only to place the warning; the edition was read from this file moments ago.
    let manifest = std::fs::read_to_string(&edition.manifest_path).unwrap_or_default();
    for (language, texts) in &edition.texts {
        let Some(intro) = &texts.intro else { continue };
        let Some(word) = greeting_word(intro, language) else {
            continue;
        };
        report.push(Finding {
            severity: Severity::Warning,
            code: "greeting",
            file: Some(edition.manifest_path.display().to_string()),
            line: Some(intro_text_line(&manifest, texts.intro_line, intro)),
            language: Some(language.clone()),
            message: format!(
                "the intro starts with the greeting `{word}` and the theme greets the reader \
                 too, so they would be greeted twice; add `greeting = false` to edition.toml \
                 (or start the intro differently)"
            ),
        });
    }
}

fn push_issue(report: &mut LintReport, file: &Path, line: usize, issue: MarkdownIssue) {
    report.push(Finding {
        severity: issue.severity,
        code: issue.code,
        file: Some(file.display().to_string()),
        line: Some(line),
        language: None,
        message: issue.message,
    });
}

/// The checks of one article file: its body, the placeholders of its title and summary, and
/// the URLs of its front matter.
fn lint_article(a: &Article, report: &mut LintReport, reported: &mut BTreeSet<String>) {
    for issue in markdown::check(&a.body) {
        let line = a.body_line + line_of(&a.body, issue.offset) - 1;
        if issue.severity == Severity::Error {
            reported.insert(issue.subject.clone());
        }
        push_issue(report, &a.path, line, issue);
    }
    for (key, text) in [("title", &a.meta.title), ("summary", &a.meta.summary)] {
        for (_, inner) in markdown::placeholders(text) {
            if slots::placeholder_slot(inner).is_none() {
                reported.insert(inner.to_string());
                report.push(Finding {
                    severity: Severity::Error,
                    code: "placeholder",
                    file: Some(a.path.display().to_string()),
                    line: a.key_lines.get(key).copied(),
                    language: None,
                    message: markdown::unresolved_message(inner),
                });
            }
        }
    }
    let m = &a.meta;
    let mut urls: Vec<(&str, &str)> = Vec::new();
    if let Some(l) = &m.link {
        urls.push(("link", l));
    }
    if let Some(i) = &m.image {
        urls.push(("image", i));
    }
    urls.extend(m.links.iter().map(|l| ("links", l.url.as_str())));
    urls.extend(m.documents.iter().map(|d| ("documents", d.url.as_str())));
    for (key, url) in urls {
        if let Some(message) = markdown::link_problem(url) {
            reported.insert(url.to_string());
            // The key's own line, or the line of the URL inside a list.
            let text = std::fs::read_to_string(&a.path).unwrap_or_default();
            let line = text
                .find(url)
                .map(|o| line_of(&text, o))
                .or_else(|| a.key_lines.get(key).copied());
            report.push(Finding {
                severity: Severity::Error,
                code: "link",
                file: Some(a.path.display().to_string()),
                line,
                language: None,
                message,
            });
        }
    }
}

/// The problems with the edition's local files, and the ones that were not published at all
/// (the edition was rendered without publishing them first).
pub(super) fn lint_assets(edition: &Edition, assets: &Published, report: &mut LintReport) {
    for issue in &assets.issues {
        report.push(Finding {
            severity: if issue.error {
                Severity::Error
            } else {
                Severity::Warning
            },
            code: issue.code,
            file: Some(issue.file.display().to_string()),
            line: issue.line,
            language: None,
            message: issue.message.clone(),
        });
    }
    for (reference, place, file, line) in crate::assets::mentioned(edition) {
        let found = match place {
            Some(place) => assets.picture(&reference, place).is_some(),
            None => assets.document(&reference).is_some(),
        };
        let explained = assets
            .issues
            .iter()
            .any(|i| i.error && i.file == file && i.line == line);
        if !found && !explained {
            report.push(Finding {
                severity: Severity::Error,
                code: "asset-missing",
                file: Some(file.display().to_string()),
                line,
                language: None,
                message: format!(
                    "`{reference}` is a file of the edition, and this render did not publish it; \
                     `bulletin compose` publishes local pictures and documents"
                ),
            });
        }
    }
}

/// The warning for a list without a postal address: the footer would lack one.
pub(super) fn lint_list(list: &ListIdentity, report: &mut LintReport) {
    if list
        .postal_address
        .as_deref()
        .is_none_or(|a| a.trim().is_empty())
    {
        report.push(Finding {
            severity: Severity::Warning,
            code: "postal-address",
            file: None,
            line: None,
            language: None,
            message:
                "no postal address for the footer; set [list] postal_address in bulletin.toml \
                      (anti-spam laws such as CAN-SPAM require one)"
                    .into(),
        });
    }
}

/// One language variant's output, with what the checks on it need to know.
pub(super) struct VariantOutput<'a> {
    /// Language code.
    pub(super) language: &'a str,
    /// The HTML part.
    pub(super) html: &'a CompiledTemplate,
    /// The text part.
    pub(super) text: &'a CompiledTemplate,
    /// The HTML and text templates that produced them, for messages.
    pub(super) templates: [&'a str; 2],
}

impl VariantOutput<'_> {
    /// An error finding about this variant, at a template line when one is known.
    fn finding(
        &self,
        code: &'static str,
        located: Option<(String, usize)>,
        message: String,
    ) -> Finding {
        let (file, line) = located.map_or((None, None), |(f, l)| (Some(f), Some(l)));
        Finding {
            severity: Severity::Error,
            code,
            file,
            line,
            language: Some(self.language.to_string()),
            message,
        }
    }
}

/// Checks made on one variant's output. `reported` holds what the content checks already
/// reported, so the same mistake is not reported twice.
pub(super) fn lint_variant(
    report: &mut LintReport,
    theme: &Theme,
    out: &VariantOutput<'_>,
    reported: &BTreeSet<String>,
) {
    lint_size_and_unsubscribe(report, theme, out);
    lint_placeholders(report, theme, out, reported);
    lint_links_and_images(report, theme, out, reported);
}

/// Gmail's clipping limit, and an unsubscribe slot in both parts.
fn lint_size_and_unsubscribe(report: &mut LintReport, theme: &Theme, out: &VariantOutput<'_>) {
    let (html, text) = (out.html, out.text);
    // Slots are sized generously: a long name, a long signed unsubscribe URL.
    let size = html.literal_len() + 120 * html.slots().len();
    if size > CLIP_LIMIT_BYTES {
        report.push(out.finding(
            "size",
            None,
            format!(
                "the HTML is {} KB; Gmail clips messages over {} KB, hiding the rest and the \
                 unsubscribe link: shorten the articles or move some to the web version",
                size.div_ceil(1024),
                CLIP_LIMIT_BYTES / 1024
            ),
        ));
    }
    let has_unsubscribe = |t: &CompiledTemplate, escape: Escape| {
        t.slots()
            .iter()
            .any(|s| s.key == SlotKey::UnsubscribeUrl && s.escape == escape)
    };
    if !has_unsubscribe(html, Escape::Url) {
        report.push(out.finding(
            "unsubscribe",
            None,
            format!(
                "{} has no unsubscribe link; add <a href=\"{{{{subscriber.unsubscribe_url}}}}\"> \
                 to the footer",
                theme.display(out.templates[0])
            ),
        ));
    }
    if !has_unsubscribe(text, Escape::Text) {
        report.push(out.finding(
            "unsubscribe",
            None,
            format!(
                "{} has no unsubscribe line; add {{{{subscriber.unsubscribe_url}}}}",
                theme.display(out.templates[1])
            ),
        ));
    }
}

/// Placeholders left in either part that are not subscriber slots.
fn lint_placeholders(
    report: &mut LintReport,
    theme: &Theme,
    out: &VariantOutput<'_>,
    reported: &BTreeSet<String>,
) {
    for (document, name) in [(out.html, "HTML"), (out.text, "text")] {
        let literal = document.with_placeholders();
        for (offset, inner) in markdown::placeholders(&literal) {
            if inner.starts_with("subscriber.") && inner.contains(" |") {
                continue; // a slot, as `with_placeholders` shows it
            }
            if reported.contains(inner) {
                continue;
            }
            let generated = line_of(&literal, offset);
            report.push(out.finding(
                "placeholder",
                theme.locate(&format!("{{{{{inner}}}}}")),
                format!(
                    "{} (generated {name} line {generated})",
                    markdown::unresolved_message(inner)
                ),
            ));
        }
    }
}

/// Links the theme wrote that are relative or unsafe, and its images without alt text.
fn lint_links_and_images(
    report: &mut LintReport,
    theme: &Theme,
    out: &VariantOutput<'_>,
    reported: &BTreeSet<String>,
) {
    let literal = out.html.with_placeholders();
    for (_, url) in urls(&literal) {
        let url = url.replace("&amp;", "&");
        if url.starts_with("{{subscriber.") || reported.contains(&url) {
            continue;
        }
        if let Some(message) = markdown::link_problem(&url) {
            report.push(out.finding("link", theme.locate(&url), message));
        }
    }
    for (_, src) in images_without_alt(&literal) {
        if reported.contains(&src) {
            continue;
        }
        report.push(out.finding(
            "image-alt",
            theme.locate(&src),
            format!("image `{src}` has no alt text; give it an `alt` attribute"),
        ));
    }
}

/// Warnings about the subject and preheader of one variant.
pub(super) fn lint_texts(
    report: &mut LintReport,
    edition: &Edition,
    language: &str,
    subject: &str,
    preheader: Option<&str>,
) {
    let file = Some(edition.manifest_path.display().to_string());
    let chars = subject.chars().count();
    if chars > SUBJECT_MAX_CHARS {
        report.push(Finding {
            severity: Severity::Warning,
            code: "subject",
            file: file.clone(),
            // The translation's own subject line, or the default one it fell back to.
            line: edition
                .texts
                .get(language)
                .filter(|t| t.subject.is_some())
                .or_else(|| edition.texts.get(&edition.default_language))
                .map(|t| t.subject_line),
            language: Some(language.to_string()),
            message: format!(
                "the subject has {chars} characters; inboxes cut it after about {}",
                SUBJECT_MAX_CHARS
            ),
        });
    }
    if preheader.is_none_or(|p| p.trim().is_empty()) {
        report.push(Finding {
            severity: Severity::Warning,
            code: "preheader",
            file,
            line: None,
            language: Some(language.to_string()),
            message: "no preheader: inboxes will show the first words of the email instead; \
                      add `preheader = \"…\"` to edition.toml"
                .into(),
        });
    }
}

/// The warning listing what one variant shows in the default language for want of a
/// translation.
pub(super) fn lint_fallback(
    report: &mut LintReport,
    edition: &Edition,
    language: &str,
    fell_back: &[Fallback],
) {
    if fell_back.is_empty() {
        return;
    }
    let parts: Vec<&str> = fell_back.iter().map(|f| f.part.as_str()).collect();
    report.push(Finding {
        severity: Severity::Warning,
        code: "fallback",
        file: None,
        line: None,
        language: Some(language.to_string()),
        message: format!(
            "untranslated, shown in `{}`: {}",
            edition.default_language,
            parts.join(", ")
        ),
    });
}

/// Names every theme word the language's catalogue lacks and which language showed it
/// instead, with the file that would fix it.
pub(super) fn lint_theme_words(
    report: &mut LintReport,
    language: &str,
    fell_back: &[crate::i18n::Fallback],
) {
    if fell_back.is_empty() {
        return;
    }
    let words: Vec<String> = fell_back.iter().map(ToString::to_string).collect();
    report.push(Finding {
        severity: Severity::Warning,
        code: "theme-fallback",
        file: None,
        line: None,
        language: Some(language.to_string()),
        message: format!(
            "the theme's words are not all translated into `{language}`: {}; add them to \
             locales/{language}/theme.ftl (README: translations)",
            words.join(", ")
        ),
    });
}

#[cfg(test)]
mod tests {
    use super::{greeting_word, intro_text_line};

    #[test]
    fn greeting_words_are_found_past_markdown_and_punctuation() {
        assert_eq!(
            greeting_word("Hello {{subscriber.name}},", "en"),
            Some("Hello")
        );
        assert_eq!(greeting_word("**Chère** lectrice,", "fr"), Some("Chère"));
        assert_eq!(greeting_word("¡Hola, amigos!", "es-MX"), Some("Hola"));
        assert_eq!(greeting_word("Liebe Leserin,", "it"), Some("Liebe"));
        // Only the first word, whole: "Highlights" is not "hi", and a greeting later on is
        // the writer's choice.
        assert_eq!(greeting_word("Highlights of the month", "en"), None);
        assert_eq!(
            greeting_word("This month, hello to our new members", "en"),
            None
        );
        assert_eq!(greeting_word("Hola", "en"), None, "the language's own list");
        assert_eq!(greeting_word("", "en"), None);
    }

    #[test]
    fn an_intro_line_is_where_its_text_starts() {
        let manifest = "slug = \"x\"\nintro = \"\"\"\n\nHello\n\"\"\"\nother = 1\nintro = \"Hi\"\n";
        assert_eq!(intro_text_line(manifest, 2, "\nHello\n"), 4);
        assert_eq!(intro_text_line(manifest, 7, "Hi"), 7);
    }
}
