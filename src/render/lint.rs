//! The lint report: what would make the edition break, clip, or look careless in an inbox.
//!
//! Errors stop `compose` (exit code 2): an unresolved placeholder, a missing unsubscribe link,
//! HTML over Gmail's 102 KB clipping limit, a relative or unsafe link, an image without alt
//! text. Warnings are printed and the edition still composes: mrml warnings, a long subject, a
//! missing preheader or postal address, a language variant that fell back. Each finding names
//! the file and line when it has one.

use std::fmt;

use serde::Serialize;

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
    /// `html`.
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
