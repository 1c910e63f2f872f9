//! Splitting an article file into front matter and Markdown, and reading the front matter.
//!
//! Front matter is YAML between `---` lines or TOML between `+++` lines, as in Hugo and Zola,
//! so articles exported from either keep working. Both formats are read once, into
//! [`ArticleMeta`], by the format's own deserializer: it keeps the line of a syntax or type
//! error, and the keys bulletin does not know are collected by the same read (a flattened
//! map) to be checked for typos and passed to templates.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::ContentError;
use crate::diagnostic::{SourceFile, closest, line_of};

/// The front matter keys bulletin knows (the fields of [`ArticleMeta`]): an unknown key
/// close to one of these is a typo and an error rather than an extra.
const KNOWN_KEYS: &[&str] = &[
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
    "image_focus",
];

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
    /// The headline, shown as the article's title in every layout.
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
    /// The article's picture: an absolute URL, or a file in the edition folder
    /// (`images/field-visit.jpg`) that compose resizes and publishes.
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
    /// Asks compose to crop a local `image` to 3:2 around this point: `center`, `top`,
    /// `bottom`, `left`, `right`, or `X% Y%` (from the left, from the top). Without it a
    /// picture is only resized, never cropped.
    pub image_focus: Option<String>,
    /// Keys bulletin does not know, gathered by the same read; the front matter reader moves
    /// them to `Article::extra` after checking them for typos, so this is empty afterwards.
    #[serde(flatten)]
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
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
    let (format, front_start, front_end, body_start) = split(text, path)?;
    let front = &text[front_start..front_end];
    // The front matter starts on line 2, after the opening delimiter.
    let file = SourceFile::part(path, front, 2);
    let key_lines = match format {
        Format::Yaml => file.yaml_keys().ok_or_else(|| ContentError::FrontMatter {
            path: path.to_path_buf(),
            line: 2,
            message: "the front matter must be a set of `key: value` lines".into(),
        })?,
        Format::Toml => file.toml_keys(),
    };
    let mut meta: ArticleMeta = match format {
        Format::Yaml => serde_saphyr::from_str(front).map_err(|e| yaml_error(&e, file))?,
        Format::Toml => toml::from_str(front).map_err(|e| ContentError::FrontMatter {
            path: path.to_path_buf(),
            line: file.toml_line(&e),
            message: e.message().trim().to_string(),
        })?,
    };
    let extra = std::mem::take(&mut meta.extra);
    check_keys(&meta, &extra, &key_lines, path)?;
    Ok(Parsed {
        meta,
        extra,
        key_lines,
        body: text[body_start..].to_string(),
        body_line: line_of(text, body_start),
    })
}

/// The format, and the byte offsets of the front matter's first line, of its closing
/// delimiter and of the body.
fn split(text: &str, path: &Path) -> Result<(Format, usize, usize, usize), ContentError> {
    let err = |message: String| ContentError::FrontMatter {
        path: path.to_path_buf(),
        line: 1,
        message,
    };
    let first = text.lines().next().unwrap_or("").trim_end();
    let (format, delimiter) = match first {
        "---" => (Format::Yaml, "---"),
        "+++" => (Format::Toml, "+++"),
        _ => {
            return Err(err(
                "no front matter: an article starts with a `---` line, then YAML keys such as \
                 `title:` and `summary:`, then another `---` line (or `+++` and TOML)"
                    .into(),
            ));
        }
    };
    // After the first line's `\n`, wherever it is: a CRLF line is one byte longer than
    // `lines()` shows, and starting on its `\n` would shift every line by one.
    let start = text.find('\n').map_or(text.len(), |i| i + 1);
    let mut offset = start;
    for line in text[start..].split_inclusive('\n') {
        if line.trim_end() == delimiter {
            return Ok((format, start, offset, offset + line.len()));
        }
        offset += line.len();
    }
    Err(err(format!(
        "the front matter opened with `{delimiter}` on line 1 is never closed; \
         add a `{delimiter}` line after the last key"
    )))
}

/// An unknown key close to a known one is a typo, and the keys a card shows are present.
fn check_keys(
    meta: &ArticleMeta,
    extra: &serde_json::Map<String, serde_json::Value>,
    key_lines: &BTreeMap<String, usize>,
    path: &Path,
) -> Result<(), ContentError> {
    // `lang` is a synonym of `language`: suggesting it would only confuse.
    let candidates: Vec<&str> = KNOWN_KEYS
        .iter()
        .copied()
        .filter(|k| *k != "lang")
        .collect();
    for key in extra.keys() {
        if let Some(best) = closest(key, &candidates) {
            return Err(ContentError::UnknownKey {
                path: path.to_path_buf(),
                line: key_lines.get(key).copied().unwrap_or(2),
                key: key.clone(),
                expected: best.to_string(),
            });
        }
    }
    for (key, value) in [("title", &meta.title), ("summary", &meta.summary)] {
        if value.trim().is_empty() {
            return Err(ContentError::MissingField {
                path: path.to_path_buf(),
                line: key_lines.get(key).copied().unwrap_or(1),
                field: key.to_string(),
                example: format!("{key}: \"…\""),
            });
        }
    }
    Ok(())
}

/// A YAML syntax or type error, at the line the parser marks.
fn yaml_error(e: &serde_saphyr::Error, file: SourceFile<'_>) -> ContentError {
    let mut message = e.without_snippet().to_string();
    // The parser appends its own position, relative to the front matter; ours replaces it.
    if let Some(cut) = message.find(" at line ") {
        message.truncate(cut);
    }
    ContentError::FrontMatter {
        path: file.path.to_path_buf(),
        line: file.yaml_line(e),
        message: format!(
            "invalid YAML front matter: {message} (check the quotes and indentation here and on the line above)"
        ),
    }
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

    #[test]
    fn front_matter_that_is_not_a_mapping() {
        let e = parse("---\n- title\n- summary\n---\n", Path::new("a.md"))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("a.md:2: the front matter must be a set of `key: value` lines")
        );
    }
}
