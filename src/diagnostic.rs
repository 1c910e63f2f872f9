//! Positions in input files, turned into the `path:line:` of a message, and "did you mean"
//! hints.
//!
//! Every file a person writes for bulletin (`bulletin.toml`, `edition.toml`, an article's
//! front matter) is reported the same way: `path:line: message`, with the closest known name
//! when a name is misspelt. The positions come from the parsers themselves (the span of a
//! `toml::de::Error`, a `toml::Spanned` value, the location of a YAML error); this module
//! only turns byte offsets into lines, so that no caller searches a file's text for a key
//! and finds the wrong one. It has no error type of its own: it cannot fail.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The text of an input file, or of a part of one, with the file's path: what turns a byte
/// offset or a parser's location into `path:line`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourceFile<'a> {
    /// The file, as messages name it.
    pub(crate) path: &'a Path,
    /// The text offsets point into.
    pub(crate) text: &'a str,
    /// Line of the file on which `text` starts: 1 for a whole file, more for front matter.
    first_line: usize,
}

impl<'a> SourceFile<'a> {
    /// A whole file.
    pub(crate) fn new(path: &'a Path, text: &'a str) -> Self {
        Self::part(path, text, 1)
    }

    /// `text` is the part of the file `path` that starts on line `first_line` (the front
    /// matter of an article), so that lines of the part are reported as lines of the file.
    pub(crate) fn part(path: &'a Path, text: &'a str, first_line: usize) -> Self {
        Self {
            path,
            text,
            first_line,
        }
    }

    /// The file's line of byte `offset` of the text.
    pub(crate) fn line(&self, offset: usize) -> usize {
        self.first_line + line_of(self.text, offset) - 1
    }

    /// The file's line of the start of a value read with `toml::Spanned`.
    pub(crate) fn line_of_spanned<T>(&self, value: &toml::Spanned<T>) -> usize {
        self.line(value.span().start)
    }

    /// The file's line of a TOML error, the text's first line when the error has no span.
    pub(crate) fn toml_line(&self, error: &toml::de::Error) -> usize {
        self.line(error.span().map_or(0, |s| s.start))
    }

    /// The file's line of a YAML error, the text's first line when the error has no location.
    pub(crate) fn yaml_line(&self, error: &serde_saphyr::Error) -> usize {
        let relative = error
            .location()
            .map_or(1, |l| usize::try_from(l.line()).unwrap_or(usize::MAX));
        self.first_line + relative.max(1) - 1
    }

    /// The TOML table whose body holds `offset`: the name inside the last `[header]` or
    /// `[[header]]` before it (`smtp`, `sections`, `translations.fr`), `None` at the top level.
    ///
    /// A serde error names an unknown key, not the table it was found in; the error's span
    /// says where, and the table is the one in force there.
    pub(crate) fn toml_table_at(&self, offset: usize) -> Option<&'a str> {
        let before = &self.text[..offset.min(self.text.len())];
        before.lines().rev().find_map(|line| {
            let inner = line.trim().strip_prefix('[')?.split(']').next()?;
            Some(inner.trim_matches('[').trim())
        })
    }

    /// Whether the line holding `offset` is a `[table]` header: serde reports an unknown
    /// table as an unknown key of the level above, at the header.
    pub(crate) fn is_toml_header(&self, offset: usize) -> bool {
        let offset = offset.min(self.text.len());
        let start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        self.text[start..].trim_start().starts_with('[')
    }

    /// The line of each key of a YAML mapping, from the parser's marks; `None` when the text
    /// holds something else (a list, a sentence). Empty or null text is an empty mapping.
    ///
    /// The walk stops quietly at a syntax error, which the deserializer then reports with its
    /// own line; the keys seen until then are kept.
    pub(crate) fn yaml_keys(&self) -> Option<BTreeMap<String, usize>> {
        use serde_saphyr::granit_parser::{Event, Parser};
        let mut keys = BTreeMap::new();
        // Depth of nesting, and whether the next node at depth 1 is a key or a value.
        let mut depth = 0usize;
        let mut expect_key = true;
        for item in Parser::new_from_str(self.text) {
            let Ok((event, span)) = item else { break };
            let node = matches!(
                event,
                Event::Scalar(..)
                    | Event::Alias(..)
                    | Event::MappingStart(..)
                    | Event::SequenceStart(..)
            );
            if depth == 0 && node {
                match &event {
                    Event::MappingStart(..) => {}
                    Event::Scalar(v, ..) if matches!(v.trim(), "" | "~" | "null") => {}
                    _ => return None,
                }
            }
            if depth == 1 && node {
                if let (true, Event::Scalar(name, ..)) = (expect_key, &event) {
                    let line = self.first_line + span.start.line().max(1) - 1;
                    keys.entry(name.to_string()).or_insert(line);
                }
                expect_key = !expect_key;
            }
            match event {
                Event::MappingStart(..) | Event::SequenceStart(..) => depth += 1,
                Event::MappingEnd | Event::SequenceEnd => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        Some(keys)
    }

    /// The line of each top-level key of a TOML text (a `[table]` header's at the header),
    /// from the parser's spans; none when the text does not parse, which the deserializer
    /// then reports.
    pub(crate) fn toml_keys(&self) -> BTreeMap<String, usize> {
        let keys: BTreeMap<toml::Spanned<String>, serde::de::IgnoredAny> =
            toml::from_str(self.text).unwrap_or_default();
        keys.keys()
            .map(|k| (k.get_ref().clone(), self.line_of_spanned(k)))
            .collect()
    }

    /// A message about the line holding byte `offset`.
    pub(crate) fn at(&self, offset: usize, message: impl Into<String>) -> Located {
        self.at_line(self.line(offset), message)
    }

    /// A message about line `line` of the file.
    pub(crate) fn at_line(&self, line: usize, message: impl Into<String>) -> Located {
        Located {
            path: self.path.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

/// A message about one line of one file, shown as `path:line: message`; the error enums of
/// the modules that read files are built from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    /// The file the message is about, as given.
    pub(crate) path: PathBuf,
    /// 1-based line.
    pub(crate) line: usize,
    /// What is wrong, with the fix where one is known.
    pub(crate) message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

/// 1-based line number of byte `offset` in `text`. Only `\n` ends a line, so a CRLF file
/// counts as its editor shows it.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The candidate closest to `word` by edit distance, when it is close enough to be a typo.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The key of serde's "unknown field `x`, expected ..." message: serde's derive reports an
/// unknown key only in that text, for every format.
pub(crate) fn unknown_field(message: &str) -> Option<&str> {
    message
        .trim()
        .strip_prefix("unknown field `")?
        .split('`')
        .next()
}

/// The key of serde's "missing field `x`" message.
pub(crate) fn missing_field(message: &str) -> Option<&str> {
    message
        .trim()
        .strip_prefix("missing field `")?
        .split('`')
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_newlines_only() {
        let text = "a\r\nb\r\nc";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 3), 2);
        assert_eq!(line_of(text, text.len() + 10), 3);
        let part = SourceFile::part(Path::new("a.md"), "x: 1\ny: 2\n", 2);
        assert_eq!(part.line(5), 3);
        assert_eq!(part.at(5, "bad").to_string(), "a.md:3: bad");
    }

    #[test]
    fn table_in_force() {
        let text = "a = 1\n[smtp]\nrte = 2\n[[sections]]\nid = 3\n";
        let file = SourceFile::new(Path::new("x.toml"), text);
        assert_eq!(file.toml_table_at(2), None);
        assert_eq!(
            file.toml_table_at(text.find("rte").unwrap_or(0)),
            Some("smtp")
        );
        assert_eq!(file.toml_table_at(text.len()), Some("sections"));
        assert!(file.is_toml_header(text.find("smtp").unwrap_or(0)));
        assert!(!file.is_toml_header(text.find("rte").unwrap_or(0)));
    }

    #[test]
    fn keys_at_their_lines() {
        let yaml = "title: A\r\nlinks:\r\n  - title: x\r\n    url: y\r\n\"summary\": B\r\n";
        let keys = SourceFile::part(Path::new("a.md"), yaml, 2).yaml_keys();
        let expected: BTreeMap<String, usize> = [("title", 2), ("links", 3), ("summary", 6)]
            .map(|(k, l)| (k.to_string(), l))
            .into();
        assert_eq!(keys, Some(expected.clone()));
        assert_eq!(
            SourceFile::part(Path::new("a.md"), "- a\n", 2).yaml_keys(),
            None
        );
        assert_eq!(
            SourceFile::part(Path::new("a.md"), "", 2).yaml_keys(),
            Some(BTreeMap::new())
        );
        let toml = "title = \"A\"\r\nlinks = [\r\n  { title = \"x\", url = \"y\" },\r\n]\r\nsummary = \"B\"\r\n";
        let keys = SourceFile::part(Path::new("a.md"), toml, 2).toml_keys();
        assert_eq!(keys, expected);
    }

    #[test]
    fn typos_and_serde_messages() {
        assert_eq!(closest("rte", &["rate", "pool"]), Some("rate"));
        assert_eq!(closest("colour", &["rate", "pool"]), None);
        assert_eq!(
            unknown_field("unknown field `rte`, expected one of `rate`"),
            Some("rte")
        );
        assert_eq!(missing_field("missing field `slug`"), Some("slug"));
    }
}
