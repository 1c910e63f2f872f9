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
mod manifest;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use front_matter::{ArticleMeta, NumberOrText, TitledLink};

use crate::diagnostic::{Located, SourceFile};

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
        /// The edition file (`edition.toml` or an article) where it was found.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The folder has no `edition.toml`.
    #[error(
        "{path} is not an edition folder: it has no edition.toml (see editions/glo-act-special-edition/ for an example)"
    )]
    NotAnEdition {
        /// The edition folder that was given.
        path: PathBuf,
    },
    /// `edition.toml` is not valid TOML or a value has the wrong type.
    #[error("{path}:{line}: {message}")]
    Manifest {
        /// The edition file (`edition.toml` or an article) where it was found.
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
        /// The edition file (`edition.toml` or an article) where it was found.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl ContentError {
    /// `edition.toml` that does not parse.
    fn manifest(at: Located) -> Self {
        Self::Manifest {
            path: at.path,
            line: at.line,
            message: at.message,
        }
    }

    /// A value that parses but is wrong.
    fn invalid(at: Located) -> Self {
        Self::Invalid {
            path: at.path,
            line: at.line,
            message: at.message,
        }
    }
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
    /// How the section's articles are laid out: full-width cards, or a grid of columns.
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
    /// The edition file (`edition.toml` or an article) where it was found.
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
    /// Whether the theme greets the reader before the intro (`greeting = false` when the
    /// intro does it).
    pub greeting: bool,
    /// Whether a campaign of this edition counts clicks (`track_clicks = true`, off by
    /// default): see [`crate::clicks`].
    pub track_clicks: bool,
    /// Edition texts per language (the default language's are complete).
    pub texts: BTreeMap<String, EditionTexts>,
    /// Sections in order.
    pub sections: Vec<Section>,
    /// Articles by slug, then by language.
    pub articles: BTreeMap<String, BTreeMap<String, Article>>,
    /// The picture at the top of the email, when `hero` is set.
    pub hero: Option<Hero>,
}

/// `hero` and `hero_alt` of edition.toml: the picture the header shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hero {
    /// A file in the edition folder, or an absolute URL, as written.
    pub image: String,
    /// Its text alternative.
    pub alt: String,
    /// Line of `hero` in edition.toml.
    pub line: usize,
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
        let manifest = manifest::parse(SourceFile::new(&manifest_path, &text))?;
        let articles = load_articles(&dir.join("articles"))?;
        build(dir, &manifest_path, &text, manifest, articles)
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

/// Checks the manifest against the articles and assembles the edition.
fn build(
    dir: &Path,
    manifest_path: &Path,
    text: &str,
    m: manifest::Manifest,
    mut articles: BTreeMap<String, BTreeMap<String, Article>>,
) -> Result<Edition, ContentError> {
    let file = SourceFile::new(manifest_path, text);
    m.check_identity(file)?;
    let date = m.date(file)?;
    let default = m.default_language.get_ref().clone();
    settle_languages(dir, &default, &mut articles)?;
    let sections = m.sections(file, &articles)?;
    m.check_listed(file, &articles)?;
    let languages = m.languages(file, &articles)?;
    let texts = m.texts(file);
    let hero = m.hero(file)?;
    Ok(Edition {
        dir: dir.to_path_buf(),
        manifest_path: manifest_path.to_path_buf(),
        slug: m.slug.into_inner(),
        date,
        default_language: default,
        languages,
        template: m.template.unwrap_or_else(|| "default".into()),
        list: m.list,
        greeting: m.greeting,
        track_clicks: m.track_clicks,
        texts,
        sections,
        articles,
        hero,
    })
}

/// Files `x.md` under the default language (`x.en.md` may say so explicitly), and checks
/// that each article's declared language matches its file name, that a picture has its alt
/// text, and that every translation has an original.
fn settle_languages(
    dir: &Path,
    default: &str,
    articles: &mut BTreeMap<String, BTreeMap<String, Article>>,
) -> Result<(), ContentError> {
    for (slug, versions) in articles {
        if let Some(mut a) = versions.remove("") {
            if let Some(other) = versions.get(default) {
                return Err(ContentError::Invalid {
                    path: other.path.clone(),
                    line: 1,
                    message: format!(
                        "both {} and this file are the `{default}` version of `{slug}`; remove one",
                        a.path.display()
                    ),
                });
            }
            a.language = default.to_string();
            versions.insert(default.to_string(), a);
        }
        for (language, a) in versions.iter() {
            check_article(slug, language, a)?;
        }
        if !versions.contains_key(default) {
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
    Ok(())
}

/// The checks of one article that need its language: a declared `language` (or `lang`)
/// matches the file name, and an `image` has its `image_alt`.
fn check_article(slug: &str, language: &str, a: &Article) -> Result<(), ContentError> {
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
    Ok(())
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
}
