//! Editions and their article records: reading `edition.toml` and `articles/*.md`, checking
//! them, and deciding which article text each language variant uses.
//!
//! An edition is a folder. `edition.toml` holds what belongs to the issue as a whole (slug,
//! title, subject, preheader, date, languages, sections); each article is a Markdown file with
//! front matter. A translation sits beside its original with the language before `.md`
//! (`pillars.md` is the default language, `pillars.fr.md` French). A variant is rendered for
//! every language that appears anywhere; where a translation is missing, the default
//! language's article is used and the variant records that it fell back.
//!
//! Everything the rest of the pipeline needs is checked here, once, with errors that name the
//! file and line and suggest the fix: later stages may assume a well-formed [`Edition`].

mod front_matter;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use front_matter::{ArticleMeta, NumberOrText, TitledLink};

use crate::config::{closest, line_of};

/// What can be wrong with an edition folder. Every variant names the file (and line).
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// A file or folder cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file over [`MAX_FILE_BYTES`].
    #[error(
        "{path} is {size} bytes; an article or edition.toml may be at most 1 MiB ({MAX_FILE_BYTES} bytes): split it, or link to the long text instead"
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The folder has no `edition.toml`.
    #[error(
        "{path} is not an edition folder: it has no edition.toml (see editions/glo-act-special-edition/ for an example)"
    )]
    NotAnEdition {
        /// The folder.
        path: PathBuf,
    },
    /// `edition.toml` is not valid TOML or a value has the wrong type.
    #[error("{path}:{line}: {message}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Front matter that is missing, unclosed, or not valid YAML/TOML.
    #[error("{path}:{line}: {message}")]
    FrontMatter {
        /// The article file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A key one edit away from a known key: a typo that would silently drop the value.
    #[error("{path}:{line}: unknown key `{key}` in the front matter; did you mean `{expected}`?")]
    UnknownKey {
        /// The article file.
        path: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// The key as written.
        key: String,
        /// The known key it is closest to.
        expected: String,
    },
    /// A required front matter key is missing or empty.
    #[error("{path}:{line}: the front matter has no `{field}`; add a line such as `{example}`")]
    MissingField {
        /// The article file.
        path: PathBuf,
        /// 1-based line (of the key when present but empty, else of the opening delimiter).
        line: usize,
        /// The missing key.
        field: String,
        /// A line to add.
        example: String,
    },
    /// A value that parses but is wrong (language mismatch, unknown article, bad date...).
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// How a section lays out its articles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// One full-width card per article: headline, summary, body, links.
    Cards,
    /// Two or three columns of short cards (headline, summary, body) that stack on phones.
    Grid,
}

/// A section of the edition: a titled, ordered group of articles.
#[derive(Debug, Clone)]
pub struct Section {
    /// Identifier, used as an anchor.
    pub id: String,
    /// Title in the default language.
    pub title: String,
    /// Title per other language.
    pub title_translations: BTreeMap<String, String>,
    /// Layout.
    pub layout: Layout,
    /// Columns of a grid (2 or 3).
    pub columns: u8,
    /// Article slugs, in order.
    pub articles: Vec<String>,
}

impl Section {
    /// The title in `language`, and whether it fell back to the default language.
    pub fn title_in(&self, language: &str, default_language: &str) -> (&str, bool) {
        match self.title_translations.get(language) {
            Some(t) => (t, false),
            None => (&self.title, language != default_language),
        }
    }
}

/// One article in one language.
#[derive(Debug, Clone)]
pub struct Article {
    /// File name without language suffix and `.md`: the article's identity across languages.
    pub slug: String,
    /// Language of this text.
    pub language: String,
    /// The file.
    pub path: PathBuf,
    /// The front matter's typed fields.
    pub meta: ArticleMeta,
    /// Front matter keys bulletin does not know, passed to templates as `extra`.
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Line of each front matter key, for messages.
    pub key_lines: BTreeMap<String, usize>,
    /// The Markdown body.
    pub body: String,
    /// Line of the body's first line in the file.
    pub body_line: usize,
}

/// The texts of the edition itself in one language.
#[derive(Debug, Clone, Default)]
pub struct EditionTexts {
    /// Title shown in the header.
    pub title: Option<String>,
    /// Mail subject.
    pub subject: Option<String>,
    /// Preheader: the line inboxes show after the subject.
    pub preheader: Option<String>,
    /// Introduction, Markdown.
    pub intro: Option<String>,
    /// Line of `intro` in edition.toml, for messages about its content.
    pub intro_line: usize,
    /// Line of `subject` in edition.toml.
    pub subject_line: usize,
}

/// A whole edition, read and checked.
#[derive(Debug, Clone)]
pub struct Edition {
    /// The edition folder.
    pub dir: PathBuf,
    /// `edition.toml`.
    pub manifest_path: PathBuf,
    /// Identifier, used in output paths and archive URLs.
    pub slug: String,
    /// Publication date.
    pub date: time::Date,
    /// Language of the untranslated texts.
    pub default_language: String,
    /// Every language a variant is rendered for, the default first.
    pub languages: Vec<String>,
    /// Name of the layout template (`default`, or a layout of the project's own theme).
    pub template: String,
    /// Mailing list the edition is meant for, when the manifest names one.
    pub list: Option<String>,
    /// Edition texts per language (the default language's are complete).
    pub texts: BTreeMap<String, EditionTexts>,
    /// Sections in order.
    pub sections: Vec<Section>,
    /// Articles by slug, then by language.
    pub articles: BTreeMap<String, BTreeMap<String, Article>>,
}

/// Where a variant used the default language's text instead of a translation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fallback {
    /// What fell back: `article pillar-strategy`, `subject`, `section pillars title`.
    pub part: String,
    /// The file whose text was used instead.
    pub file: PathBuf,
}

impl Edition {
    /// Reads and checks the edition in `dir`.
    pub fn load(dir: &Path) -> Result<Self, ContentError> {
        let manifest_path = dir.join("edition.toml");
        if !manifest_path.is_file() {
            if !dir.is_dir() {
                return Err(ContentError::Read {
                    path: dir.to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no such folder; give the path of an edition folder",
                    ),
                });
            }
            return Err(ContentError::NotAnEdition {
                path: dir.to_path_buf(),
            });
        }
        let text = read(&manifest_path)?;
        let manifest = parse_manifest(&text, &manifest_path)?;
        let articles = load_articles(&dir.join("articles"))?;
        build(dir, manifest_path, &text, manifest, articles)
    }

    /// The article `slug` in `language`, or the default language's when it has no translation
    /// (the flag is then true).
    pub fn article(&self, slug: &str, language: &str) -> Option<(&Article, bool)> {
        let versions = self.articles.get(slug)?;
        if let Some(a) = versions.get(language) {
            return Some((a, false));
        }
        versions.get(&self.default_language).map(|a| (a, true))
    }
}

/// Largest article or edition.toml read, in bytes. An edition's whole text is a few hundred
/// KB at most (Gmail clips mail over 102 KB), while parsing and rendering cost many times a
/// file's size in memory: a 50 MB file by mistake (a pasted export, a binary renamed `.md`)
/// would cost gigabytes before any useful error.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Reads a text file of the edition, refusing one over [`MAX_FILE_BYTES`] from its size,
/// before reading it.
fn read(path: &Path) -> Result<String, ContentError> {
    use std::io::Read as _;
    let read_error = |source| ContentError::Read {
        path: path.to_path_buf(),
        source,
    };
    let too_large = |size: u64| ContentError::TooLarge {
        path: path.to_path_buf(),
        size,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let size = file.metadata().map_err(read_error)?.len();
    if size > MAX_FILE_BYTES {
        return Err(too_large(size));
    }
    // The file may grow between the size check and the read: never read past the limit.
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes)
        .map_err(|e| read_error(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DateField {
    Text(String),
    Toml(toml::value::Datetime),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    slug: String,
    title: String,
    subject: String,
    preheader: Option<String>,
    date: DateField,
    default_language: String,
    #[serde(default)]
    languages: Vec<String>,
    template: Option<String>,
    list: Option<String>,
    intro: Option<String>,
    #[serde(default)]
    translations: BTreeMap<String, ManifestTranslation>,
    #[serde(default)]
    sections: Vec<ManifestSection>,
    #[serde(default)]
    articles: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestTranslation {
    title: Option<String>,
    subject: Option<String>,
    preheader: Option<String>,
    intro: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestSection {
    id: String,
    title: String,
    #[serde(default = "default_layout")]
    layout: Layout,
    columns: Option<u8>,
    articles: Vec<String>,
    #[serde(default)]
    title_translations: BTreeMap<String, String>,
}

fn default_layout() -> Layout {
    Layout::Cards
}

/// Valid keys per manifest table, for "did you mean" hints.
const MANIFEST_KEYS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "slug",
            "title",
            "subject",
            "preheader",
            "date",
            "default_language",
            "languages",
            "template",
            "list",
            "intro",
            "translations",
            "sections",
            "articles",
        ],
    ),
    ("translations", &["title", "subject", "preheader", "intro"]),
    (
        "sections",
        &[
            "id",
            "title",
            "layout",
            "columns",
            "articles",
            "title_translations",
        ],
    ),
];

fn parse_manifest(text: &str, path: &Path) -> Result<Manifest, ContentError> {
    toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let line = line_of(text, offset);
        let message = e.message().trim();
        let message = if let Some(rest) = message.strip_prefix("unknown field `") {
            let key = rest.split('`').next().unwrap_or_default();
            let table = table_at(text, offset);
            let keys = MANIFEST_KEYS
                .iter()
                .find(|(name, _)| *name == table)
                .map_or(&[][..], |(_, k)| *k);
            let place = if table.is_empty() {
                "the top level".to_string()
            } else {
                format!("[{table}]")
            };
            match closest(key, keys) {
                Some(best) => {
                    format!("unknown key `{key}` in {place}; did you mean `{best}`?")
                }
                None => format!(
                    "unknown key `{key}` in {place}; valid keys: {}",
                    keys.join(", ")
                ),
            }
        } else if let Some(rest) = message.strip_prefix("missing field `") {
            let key = rest.split('`').next().unwrap_or_default();
            format!("edition.toml needs `{key}`; add a line such as `{key} = \"…\"`")
        } else {
            message.to_string()
        };
        ContentError::Manifest {
            path: path.to_path_buf(),
            line,
            message,
        }
    })
}

/// The table (`translations`, `sections`, or "" for the top level) in force at `offset`.
fn table_at(text: &str, offset: usize) -> &'static str {
    let before = &text[..offset.min(text.len())];
    let header = before.lines().rev().find_map(|line| {
        let t = line.trim();
        t.starts_with('[')
            .then(|| t.trim_matches(['[', ']']).to_string())
    });
    match header {
        Some(h) if h.starts_with("translations") => "translations",
        Some(h) if h.starts_with("sections") => "sections",
        _ => "",
    }
}

/// Articles by slug, then language. The language of `x.md` is unknown until the manifest is
/// read, so it is stored under "" and moved to the default language by [`build`].
fn load_articles(dir: &Path) -> Result<BTreeMap<String, BTreeMap<String, Article>>, ContentError> {
    let mut articles: BTreeMap<String, BTreeMap<String, Article>> = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(articles),
        Err(source) => {
            return Err(ContentError::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ContentError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "md") {
            paths.push(path);
        }
    }
    paths.sort();
    for path in paths {
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let (slug, language) = match stem.rsplit_once('.') {
            Some((slug, lang)) if is_language_code(lang) => (slug.to_string(), lang.to_string()),
            _ => (stem.to_string(), String::new()),
        };
        let text = read(&path)?;
        let parsed = front_matter::parse(&text, &path)?;
        let article = Article {
            slug: slug.clone(),
            language: language.clone(),
            path,
            meta: parsed.meta,
            extra: parsed.extra,
            key_lines: parsed.key_lines,
            body: parsed.body,
            body_line: parsed.body_line,
        };
        articles.entry(slug).or_default().insert(language, article);
    }
    Ok(articles)
}

/// `fr`, `pt`, `pt-BR`, `zh-Hant`: a BCP 47 language with an optional region or script.
fn is_language_code(s: &str) -> bool {
    let mut parts = s.split('-');
    let lang_ok = parts
        .next()
        .is_some_and(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_lowercase()));
    lang_ok
        && parts.all(|p| (2..=4).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn build(
    dir: &Path,
    manifest_path: PathBuf,
    text: &str,
    m: Manifest,
    mut articles: BTreeMap<String, BTreeMap<String, Article>>,
) -> Result<Edition, ContentError> {
    let line_of_key = |key: &str| -> usize {
        text.lines()
            .position(|l| {
                l.trim_start()
                    .strip_prefix(key)
                    .is_some_and(|r| r.trim_start().starts_with('='))
            })
            .map_or(1, |i| i + 1)
    };
    let invalid = |line: usize, message: String| ContentError::Invalid {
        path: manifest_path.clone(),
        line,
        message,
    };
    if m.slug.is_empty()
        || !m
            .slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(invalid(
            line_of_key("slug"),
            format!(
                "slug `{}` must be lowercase letters, digits and '-' (it becomes a folder and a URL)",
                m.slug
            ),
        ));
    }
    if !is_language_code(&m.default_language) {
        return Err(invalid(
            line_of_key("default_language"),
            format!(
                "`{}` is not a language code such as `en` or `pt-BR`",
                m.default_language
            ),
        ));
    }
    let date_text = match &m.date {
        DateField::Text(t) => t.clone(),
        DateField::Toml(d) => d.to_string(),
    };
    let date = time::Date::parse(
        &date_text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| {
        invalid(
            line_of_key("date"),
            format!("date `{date_text}` must be written YYYY-MM-DD, e.g. 2017-06-30"),
        )
    })?;
    let default = m.default_language.clone();

    // `x.md` is in the default language; `x.en.md` may say so explicitly.
    for (slug, versions) in &mut articles {
        if let Some(mut a) = versions.remove("") {
            if let Some(other) = versions.get(&default) {
                return Err(ContentError::Invalid {
                    path: other.path.clone(),
                    line: 1,
                    message: format!(
                        "both {} and this file are the `{default}` version of `{slug}`; remove one",
                        a.path.display()
                    ),
                });
            }
            a.language = default.clone();
            versions.insert(default.clone(), a);
        }
        for (language, a) in versions.iter() {
            let declared = a.meta.language.as_ref().or(a.meta.lang.as_ref());
            if let Some(d) = declared {
                if d != language {
                    let key = if a.meta.language.is_some() {
                        "language"
                    } else {
                        "lang"
                    };
                    return Err(ContentError::Invalid {
                        path: a.path.clone(),
                        line: a.key_lines.get(key).copied().unwrap_or(1),
                        message: format!(
                            "`{key}: {d}` does not match the file name, which makes it `{language}`; \
                             rename the file to {slug}.{d}.md or fix the key"
                        ),
                    });
                }
            }
            if a.meta.image.is_some() && a.meta.image_alt.as_deref().is_none_or(str::is_empty) {
                return Err(ContentError::MissingField {
                    path: a.path.clone(),
                    line: a.key_lines.get("image").copied().unwrap_or(1),
                    field: "image_alt".into(),
                    example: "image_alt: \"What the picture shows\"".into(),
                });
            }
        }
        if !versions.contains_key(&default) {
            let any = versions.values().next().map(|a| a.path.clone());
            return Err(ContentError::Invalid {
                path: any.unwrap_or_else(|| dir.join("articles")),
                line: 1,
                message: format!(
                    "`{slug}` has translations but no `{default}` original; add articles/{slug}.md \
                     (the default language is the fallback for every other language)"
                ),
            });
        }
    }

    // Sections: as written, or one section of every article in `order`.
    let known: Vec<&str> = articles.keys().map(String::as_str).collect();
    let mut sections = Vec::new();
    if m.sections.is_empty() {
        let mut slugs: Vec<String> = if m.articles.is_empty() {
            articles.keys().cloned().collect()
        } else {
            m.articles.clone()
        };
        if m.articles.is_empty() {
            slugs.sort_by_key(|s| {
                let order = articles
                    .get(s)
                    .and_then(|v| v.get(&default))
                    .and_then(|a| a.meta.order);
                (order.unwrap_or(i64::MAX), s.clone())
            });
        }
        sections.push(Section {
            id: "articles".into(),
            title: String::new(),
            title_translations: BTreeMap::new(),
            layout: Layout::Cards,
            columns: 1,
            articles: slugs,
        });
    } else {
        for s in &m.sections {
            let columns = s.columns.unwrap_or(2);
            if s.layout == Layout::Grid && !(2..=3).contains(&columns) {
                return Err(invalid(
                    line_of_key("columns"),
                    format!("section `{}`: a grid has 2 or 3 columns", s.id),
                ));
            }
            sections.push(Section {
                id: s.id.clone(),
                title: s.title.clone(),
                title_translations: s.title_translations.clone(),
                layout: s.layout,
                columns,
                articles: s.articles.clone(),
            });
        }
    }
    let mut listed = BTreeSet::new();
    for s in &sections {
        for slug in &s.articles {
            if !articles.contains_key(slug) {
                let line = text
                    .find(&format!("\"{slug}\""))
                    .map_or(1, |o| line_of(text, o));
                let hint = match closest(slug, &known) {
                    Some(best) => format!("; did you mean `{best}`?"),
                    None => format!("; add articles/{slug}.md"),
                };
                return Err(invalid(
                    line,
                    format!("there is no article `{slug}` in articles/{hint}"),
                ));
            }
            if !listed.insert(slug.clone()) {
                return Err(invalid(
                    line_of(text, text.find(&format!("\"{slug}\"")).unwrap_or(0)),
                    format!("article `{slug}` is listed twice"),
                ));
            }
        }
    }

    // Languages: the default, then every other one named anywhere, unless listed explicitly.
    let mut languages = vec![default.clone()];
    if m.languages.is_empty() {
        let mut others = BTreeSet::new();
        others.extend(m.translations.keys().cloned());
        for versions in articles.values() {
            others.extend(versions.keys().cloned());
        }
        others.remove(&default);
        languages.extend(others);
    } else {
        for l in &m.languages {
            if !is_language_code(l) {
                return Err(invalid(
                    line_of_key("languages"),
                    format!("`{l}` is not a language code such as `fr`"),
                ));
            }
            if *l != default {
                languages.push(l.clone());
            }
        }
    }
    for l in m.translations.keys() {
        if !is_language_code(l) {
            return Err(invalid(
                text.find(&format!("[translations.{l}]"))
                    .map_or(1, |o| line_of(text, o)),
                format!("`[translations.{l}]`: `{l}` is not a language code such as `fr`"),
            ));
        }
    }

    // Lines of the text keys, for messages: the first `key` line after the table's header
    // (the top level for the default language).
    let key_line_after = |start: usize, key: &str| -> usize {
        text[start..]
            .lines()
            .position(|l| {
                l.trim_start()
                    .strip_prefix(key)
                    .is_some_and(|r| r.trim_start().starts_with('='))
            })
            .map_or(line_of(text, start), |i| line_of(text, start) + i)
    };
    let mut texts = BTreeMap::new();
    texts.insert(
        default.clone(),
        EditionTexts {
            title: Some(m.title.clone()),
            subject: Some(m.subject.clone()),
            preheader: m.preheader.clone(),
            intro: m.intro.clone(),
            intro_line: key_line_after(0, "intro"),
            subject_line: key_line_after(0, "subject"),
        },
    );
    for (lang, t) in &m.translations {
        let header = text.find(&format!("[translations.{lang}]")).unwrap_or(0);
        texts.insert(
            lang.clone(),
            EditionTexts {
                title: t.title.clone(),
                subject: t.subject.clone(),
                preheader: t.preheader.clone(),
                intro: t.intro.clone(),
                intro_line: key_line_after(header, "intro"),
                subject_line: key_line_after(header, "subject"),
            },
        );
    }
    Ok(Edition {
        dir: dir.to_path_buf(),
        manifest_path,
        slug: m.slug,
        date,
        default_language: default,
        languages,
        template: m.template.unwrap_or_else(|| "default".into()),
        list: m.list,
        texts,
        sections,
        articles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_codes() {
        for ok in ["en", "fr", "pt-BR", "zh-Hant", "ast"] {
            assert!(is_language_code(ok), "{ok}");
        }
        for bad in ["", "e", "EN", "english", "fr_FR", "1a"] {
            assert!(!is_language_code(bad), "{bad}");
        }
    }

    #[test]
    fn manifest_typo_names_line_and_key() {
        let text = "title = \"x\"\nsubjct = \"y\"\n";
        let e = parse_manifest(text, Path::new("edition.toml"))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("edition.toml:2: unknown key `subjct` in the top level; did you mean `subject`?")
        );
    }
}
