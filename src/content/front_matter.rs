//! Splitting an article file into front matter and Markdown, and reading the front matter.
//!
//! Front matter is YAML between `---` lines or TOML between `+++` lines, as in Hugo and Zola,
//! so articles exported from either keep working. Both formats are first read into a generic
//! map (to check keys and find the line of each), then into [`ArticleMeta`] by the format's
//! own deserializer, which keeps the line of a type error.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::ContentError;
use crate::config::{closest, line_of};

/// The front matter keys bulletin knows; any other key is an extra, passed to templates,
/// unless it is one edit away from one of these (then it is a typo and an error).
pub(crate) const KNOWN_KEYS: &[&str] = &[
    "title",
    "summary",
    "category",
    "country",
    "language",
    "lang",
    "year",
    "institution",
    "author",
    "contact",
    "image",
    "image_alt",
    "link",
    "links",
    "documents",
    "order",
];

/// Keys an article cannot do without: the card shows them.
pub(crate) const REQUIRED_KEYS: &[&str] = &["title", "summary"];

/// A titled link: an entry of `links` or `documents`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TitledLink {
    /// What the reader sees.
    pub title: String,
    /// Where it goes: an absolute http(s) URL.
    pub url: String,
}

/// A value written either as a number or as text (`year: 2017` or `year: "2017"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum NumberOrText {
    /// Written as a number.
    Number(i64),
    /// Written as text.
    Text(String),
}

impl std::fmt::Display for NumberOrText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Text(t) => f.write_str(t),
        }
    }
}

/// The typed fields of an article's front matter, the fields of a newsroom record.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ArticleMeta {
    /// Headline.
    pub title: String,
    /// One or two sentences shown under the headline.
    pub summary: String,
    /// Newsroom category ("News").
    pub category: Option<String>,
    /// Country the article is about or filed from.
    pub country: Option<String>,
    /// Language code; must match the file name's suffix when given.
    pub language: Option<String>,
    /// `lang`, accepted as a synonym of `language`.
    pub lang: Option<String>,
    /// Year of the record.
    pub year: Option<NumberOrText>,
    /// Publishing institution.
    pub institution: Option<String>,
    /// Author or desk.
    pub author: Option<String>,
    /// Contact address for the article.
    pub contact: Option<String>,
    /// Absolute URL of the article's picture.
    pub image: Option<String>,
    /// Text alternative of `image` (required when `image` is set).
    pub image_alt: Option<String>,
    /// The "Read more" link.
    pub link: Option<String>,
    /// Further reading.
    pub links: Vec<TitledLink>,
    /// Documents to download.
    pub documents: Vec<TitledLink>,
    /// Position within its section when the edition does not list articles explicitly.
    pub order: Option<i64>,
}

/// The parts of an article file.
pub(crate) struct Parsed {
    pub(crate) meta: ArticleMeta,
    /// Keys bulletin does not know, for templates.
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
    /// Line of each front matter key.
    pub(crate) key_lines: BTreeMap<String, usize>,
    /// The Markdown after the closing delimiter.
    pub(crate) body: String,
    /// Line of the body's first line in the file.
    pub(crate) body_line: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Yaml,
    Toml,
}

/// Splits and reads one article file's text.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Parsed, ContentError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let err = |line: usize, message: String| ContentError::FrontMatter {
        path: path.to_path_buf(),
        line,
        message,
    };
    let first = text.lines().next().unwrap_or("").trim_end();
    let (format, delimiter) = match first {
        "---" => (Format::Yaml, "---"),
        "+++" => (Format::Toml, "+++"),
        _ => {
            return Err(err(
                1,
                "no front matter: an article starts with a `---` line, then YAML keys such as \
                 `title:` and `summary:`, then another `---` line (or `+++` and TOML)"
                    .into(),
            ));
        }
    };
    // Byte offset of the front matter's first line and of the closing delimiter.
    let start = first.len() + text[first.len()..].find('\n').map_or(0, |_| 1);
    let start = start.min(text.len());
    let mut offset = start;
    let mut close = None;
    for line in text[start..].split_inclusive('\n') {
        if line.trim_end() == delimiter {
            close = Some((offset, offset + line.len()));
            break;
        }
        offset += line.len();
    }
    let Some((close_start, body_start)) = close else {
        return Err(err(
            1,
            format!(
                "the front matter opened with `{delimiter}` on line 1 is never closed; \
                 add a `{delimiter}` line after the last key"
            ),
        ));
    };
    let front = &text[start..close_start];
    let front_line = 2;
    let body_line = line_of(text, body_start);
    let key_lines = key_lines(front, format, front_line);

    // Generic read: syntax errors, key checks, extras.
    let generic: serde_json::Value = match format {
        Format::Yaml => {
            serde_yaml::from_str(front).map_err(|e| yaml_error(&e, front_line, path))?
        }
        Format::Toml => {
            let table: toml::Table = toml::from_str(front).map_err(|e| {
                let line = e.span().map_or(0, |s| line_of(front, s.start) - 1);
                err(front_line + line, e.message().trim().to_string())
            })?;
            serde_json::to_value(table).map_err(|e| err(front_line, e.to_string()))?
        }
    };
    let map = match generic {
        serde_json::Value::Object(map) => map,
        serde_json::Value::Null => serde_json::Map::new(),
        _ => {
            return Err(err(
                front_line,
                "the front matter must be a set of `key: value` lines".into(),
            ));
        }
    };
    let mut extra = serde_json::Map::new();
    for (key, value) in &map {
        if KNOWN_KEYS.contains(&key.as_str()) {
            continue;
        }
        let candidates: Vec<&str> = KNOWN_KEYS
            .iter()
            .copied()
            .filter(|k| *k != "lang")
            .collect();
        if let Some(best) = closest(key, &candidates) {
            return Err(ContentError::UnknownKey {
                path: path.to_path_buf(),
                line: key_lines.get(key).copied().unwrap_or(front_line),
                key: key.clone(),
                expected: best.to_string(),
            });
        }
        extra.insert(key.clone(), value.clone());
    }
    for key in REQUIRED_KEYS {
        let present = map
            .get(*key)
            .is_some_and(|v| v.as_str().is_some_and(|s| !s.trim().is_empty()));
        if !present {
            return Err(ContentError::MissingField {
                path: path.to_path_buf(),
                line: key_lines.get(*key).copied().unwrap_or(1),
                field: (*key).to_string(),
                example: format!("{key}: \"…\""),
            });
        }
    }

    // Typed read: the format's own deserializer keeps the line of a wrong type.
    let meta: ArticleMeta = match format {
        Format::Yaml => {
            serde_yaml::from_str(front).map_err(|e| yaml_error(&e, front_line, path))?
        }
        Format::Toml => toml::from_str(front).map_err(|e| {
            let line = e.span().map_or(0, |s| line_of(front, s.start) - 1);
            err(front_line + line, e.message().trim().to_string())
        })?,
    };
    Ok(Parsed {
        meta,
        extra,
        key_lines,
        body: text[body_start..].to_string(),
        body_line,
    })
}

fn yaml_error(e: &serde_yaml::Error, front_line: usize, path: &Path) -> ContentError {
    let line = e
        .location()
        .map_or(front_line, |l| front_line + l.line().saturating_sub(1));
    let mut message = e.to_string();
    // serde_yaml appends its own position, relative to the front matter; ours replaces it.
    if let Some(cut) = message.find(" at line ") {
        message.truncate(cut);
    }
    ContentError::FrontMatter {
        path: path.to_path_buf(),
        line,
        message: format!(
            "invalid YAML front matter: {message} (check the quotes and indentation here and on the line above)"
        ),
    }
}

/// The line of each top-level key, found by looking at unindented `key:` / `key =` lines.
fn key_lines(front: &str, format: Format, first_line: usize) -> BTreeMap<String, usize> {
    let separator = match format {
        Format::Yaml => ':',
        Format::Toml => '=',
    };
    let mut lines = BTreeMap::new();
    for (i, line) in front.lines().enumerate() {
        if line.starts_with([' ', '\t', '-', '#', '[']) {
            continue;
        }
        if let Some((key, _)) = line.split_once(separator) {
            let key = key.trim().trim_matches(['"', '\'']);
            if !key.is_empty() {
                lines.entry(key.to_string()).or_insert(first_line + i);
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_toml_give_the_same_meta() {
        let yaml = "---\ntitle: A\nsummary: B\nyear: 2017\ntags: [x]\n---\nBody\n";
        let toml = "+++\ntitle = \"A\"\nsummary = \"B\"\nyear = 2017\ntags = [\"x\"]\n+++\nBody\n";
        for text in [yaml, toml] {
            let p = parse(text, Path::new("a.md")).expect("valid");
            assert_eq!(p.meta.title, "A");
            assert_eq!(p.meta.year, Some(NumberOrText::Number(2017)));
            assert_eq!(p.body, "Body\n");
            assert_eq!(p.body_line, 7);
            assert!(p.extra.contains_key("tags"));
        }
    }

    #[test]
    fn typo_names_line_and_expected_key() {
        let text = "---\ntitle: A\nsumary: B\n---\n";
        let e = parse(text, Path::new("a.md")).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("a.md:3: unknown key `sumary` in the front matter; did you mean `summary`?")
        );
    }
}
