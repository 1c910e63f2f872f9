//! The words bulletin shows people, per language: Fluent message catalogues, the direction a
//! language is written in, and dates and numbers from CLDR (see [`cldr`]).
//!
//! Articles are translated by people; the catalogues hold the words the program writes itself
//! (the email theme's footer and buttons, and any other domain registered in [`builtin`]).
//! They are [Fluent](https://projectfluent.org) files, one per language and domain, so that
//! plural forms, gender and the like are the translator's business and not the code's.
//!
//! Where they come from, later ones winning message by message:
//!
//! 1. the built-in files `src/i18n/locales/<lang>/<domain>.ftl`, compiled into the binary and
//!    listed in [`builtin::CATALOGUES`];
//! 2. a project's own `locales/<lang>/<domain>.ftl` (beside `bulletin.toml`), which override
//!    built-in messages, add new ones, or add a whole language without recompiling.
//!
//! A message missing in the requested language falls back per message: `pt-BR` → `pt` →
//! `en`. [`Catalogues::message`] says when it did, so that lint can name every fallback
//! instead of letting an English word slip into a Portuguese edition unnoticed.
//!
//! Numbers inside messages (`{ $count }`) are written with the digits and separators of the
//! catalogue's language by ICU4X (so `ar-EG` reading `ar`'s catalogue writes `ar`'s digits
//! until it has a catalogue of its own), and plural selectors use CLDR's plural rules.

pub(crate) mod builtin;
pub mod cldr;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::memoizer::MemoizerKind;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

pub use cldr::{NumberFormatter, format_date};

/// The language every chain of fallbacks ends in: its catalogues are complete by definition.
pub const FALLBACK_LANGUAGE: &str = "en";

/// What can stop catalogues from loading. Each names the file and, for syntax, the line.
#[derive(Debug, thiserror::Error)]
pub enum I18nError {
    /// A catalogue file or folder cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A folder under `locales/` is not named by a language tag.
    #[error(
        "{path}: `{name}` is not a language tag; name each folder under locales/ by its \
         language, like `ar`, `pt-BR` or `zh-Hant`"
    )]
    BadLanguage {
        /// The folder.
        path: PathBuf,
        /// Its name.
        name: String,
    },
    /// A `.ftl` file is not valid Fluent.
    #[error("{file}:{line}: {message}; see https://projectfluent.org/fluent/guide/ for the syntax")]
    Syntax {
        /// The file (`src/i18n/locales/… (built-in)` for a built-in one).
        file: String,
        /// 1-based line of the first error.
        line: usize,
        /// What the parser expected.
        message: String,
    },
    /// The same message is defined twice in one file.
    #[error("{file}:{line}: message `{id}` is already defined at line {first}; keep one of them")]
    Duplicate {
        /// The file.
        file: String,
        /// 1-based line of the second definition.
        line: usize,
        /// 1-based line of the first.
        first: usize,
        /// The message id.
        id: String,
    },
}

/// Which way a language's script runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// Left to right.
    Ltr,
    /// Right to left.
    Rtl,
}

impl Dir {
    /// `ltr` or `rtl`, as HTML's `dir` attribute and CSS's `direction` write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::Ltr => "ltr",
            Dir::Rtl => "rtl",
        }
    }

    /// The side text starts on: `left` or `right`, for `text-align` and `align` attributes.
    pub fn start(self) -> &'static str {
        match self {
            Dir::Ltr => "left",
            Dir::Rtl => "right",
        }
    }

    /// The side text ends on: `right` or `left`.
    pub fn end(self) -> &'static str {
        match self {
            Dir::Ltr => "right",
            Dir::Rtl => "left",
        }
    }
}

/// Languages whose default script runs right to left (ISO 639 codes as BCP 47 writes them).
const RTL_LANGUAGES: &[&str] = &[
    "ar", "arc", "bal", "bqi", "ckb", "dv", "fa", "glk", "he", "iw", "khw", "ks", "ku-arab", "lrc",
    "mzn", "nqo", "pnb", "prs", "ps", "sd", "syr", "ug", "ur", "yi", "ji",
];

/// Scripts written right to left (ISO 15924), for tags that name their script.
const RTL_SCRIPTS: &[&str] = &[
    "adlm", "arab", "aran", "hebr", "mand", "mend", "nkoo", "rohg", "samr", "syrc", "thaa", "yezi",
];

/// Which way `lang` (a BCP 47 tag) is written. A script subtag decides when there is one
/// (`pa-Arab` is right to left, `ku-Latn` left to right); otherwise the language's usual
/// script does.
pub fn direction(lang: &str) -> Dir {
    let lower = lang.to_ascii_lowercase();
    let mut subtags = lower.split(['-', '_']);
    let language = subtags.next().unwrap_or_default();
    if let Some(script) =
        subtags.find(|s| s.len() == 4 && s.chars().all(|c| c.is_ascii_alphabetic()))
    {
        return if RTL_SCRIPTS.contains(&script) {
            Dir::Rtl
        } else {
            Dir::Ltr
        };
    }
    if RTL_LANGUAGES.contains(&language) {
        Dir::Rtl
    } else {
        Dir::Ltr
    }
}

/// Where a message was not found in the language asked for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fallback {
    /// The catalogue domain (`theme`, `pages`…).
    pub domain: String,
    /// The message id.
    pub key: String,
    /// The language asked for.
    pub requested: String,
    /// The language whose text was used, or `None` when no catalogue has the message (the
    /// id itself was shown).
    pub used: Option<String>,
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.used {
            Some(used) => write!(
                f,
                "`{}` ({} words, shown in `{used}`)",
                self.key, self.domain
            ),
            None => write!(f, "`{}` ({} words, in no catalogue)", self.key, self.domain),
        }
    }
}

/// One language's messages of one domain.
struct Catalogue {
    bundle: FluentBundle<FluentResource>,
    /// Message ids, to list a domain's messages (Fluent bundles cannot enumerate).
    ids: BTreeSet<String>,
}

/// Every language's catalogues: the built-in ones with a project's on top.
pub struct Catalogues {
    /// By (language tag, domain).
    catalogues: BTreeMap<(String, String), Catalogue>,
}

impl std::fmt::Debug for Catalogues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogues")
            .field("catalogues", &self.catalogues.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Catalogues {
    /// Only the catalogues compiled into the binary.
    pub fn builtin() -> Result<Self, I18nError> {
        let mut catalogues = Self {
            catalogues: BTreeMap::new(),
        };
        for row in builtin::CATALOGUES {
            let file = format!(
                "src/i18n/locales/{}/{}.ftl (built-in)",
                row.lang, row.domain
            );
            catalogues.add(row.lang, row.domain, &file, row.source.to_string())?;
        }
        Ok(catalogues)
    }

    /// The built-in catalogues with `project_dir`'s `<lang>/<domain>.ftl` files on top (the
    /// folder may be absent). A project file overrides built-in messages one by one and may
    /// add messages, domains and languages.
    pub fn load(project_dir: Option<&Path>) -> Result<Self, I18nError> {
        let mut catalogues = Self::builtin()?;
        let Some(dir) = project_dir.filter(|d| d.is_dir()) else {
            return Ok(catalogues);
        };
        for (lang_dir, lang) in sorted_entries(dir)? {
            if !lang_dir.is_dir() {
                continue;
            }
            let tag: LanguageIdentifier = lang.parse().map_err(|_| I18nError::BadLanguage {
                path: lang_dir.clone(),
                name: lang.clone(),
            })?;
            for (path, file) in sorted_entries(&lang_dir)? {
                let Some(domain) = file.strip_suffix(".ftl") else {
                    continue;
                };
                let source = std::fs::read_to_string(&path).map_err(|source| I18nError::Read {
                    path: path.clone(),
                    source,
                })?;
                let display = path.display().to_string();
                catalogues.add(&tag.to_string(), domain, &display, source)?;
            }
        }
        Ok(catalogues)
    }

    /// Parses `source` and adds its messages to (`lang`, `domain`), replacing messages of the
    /// same id that an earlier file gave.
    fn add(
        &mut self,
        lang: &str,
        domain: &str,
        file: &str,
        source: String,
    ) -> Result<(), I18nError> {
        let resource = parse(file, source)?;
        let key = (lang.to_string(), domain.to_string());
        let catalogue = self.catalogues.entry(key).or_insert_with(|| {
            let tag: LanguageIdentifier = lang.parse().unwrap_or_default();
            let mut bundle = FluentBundle::new_concurrent(vec![tag]);
            bundle.set_formatter(Some(format_number));
            Catalogue {
                bundle,
                ids: BTreeSet::new(),
            }
        });
        for entry in resource.entries() {
            if let fluent_syntax::ast::Entry::Message(m) = entry {
                catalogue.ids.insert(m.id.name.to_string());
            }
        }
        catalogue.bundle.add_resource_overriding(resource);
        Ok(())
    }

    /// The languages that have at least one catalogue, in tag order.
    pub fn languages(&self) -> BTreeSet<&str> {
        self.catalogues.keys().map(|(l, _)| l.as_str()).collect()
    }

    /// Whether `lang` has its own catalogue of `domain` (not counting fallbacks).
    pub fn has(&self, lang: &str, domain: &str) -> bool {
        self.catalogues
            .contains_key(&(canonical(lang), domain.to_string()))
    }

    /// Message `key` of `domain` in `lang`, formatted with `args`; when the language (and its
    /// base language) lacks it, the first of the chain that has it, with a [`Fallback`] that
    /// says so. A message in no catalogue comes back as its id, also with a `Fallback`.
    ///
    /// Placeables are wrapped in Unicode isolates (FSI…PDI), Fluent's default, so that a
    /// left-to-right value inside right-to-left text keeps its place.
    pub fn message(
        &self,
        lang: &str,
        domain: &str,
        key: &str,
        args: Option<&FluentArgs<'_>>,
    ) -> (String, Option<Fallback>) {
        let chain = chain(lang);
        for (i, candidate) in chain.iter().enumerate() {
            let Some(catalogue) = self
                .catalogues
                .get(&(candidate.clone(), domain.to_string()))
            else {
                continue;
            };
            let Some(pattern) = catalogue.bundle.get_message(key).and_then(|m| m.value()) else {
                continue;
            };
            let mut errors = Vec::new();
            let text = catalogue
                .bundle
                .format_pattern(pattern, args, &mut errors)
                .into_owned();
            // `pt-BR` reading `pt`'s words is the catalogue working as meant; only a different
            // language is worth a lint warning.
            let fallback = (i > 0 && primary(candidate) != primary(lang)).then(|| Fallback {
                domain: domain.to_string(),
                key: key.to_string(),
                requested: lang.to_string(),
                used: Some(candidate.clone()),
            });
            return (text, fallback);
        }
        let missing = Fallback {
            domain: domain.to_string(),
            key: key.to_string(),
            requested: lang.to_string(),
            used: None,
        };
        (key.to_string(), Some(missing))
    }

    /// Every message of `domain` that `lang` or a language of its fallback chain defines,
    /// formatted without arguments, by id; and the ones that fell back.
    pub fn messages(&self, lang: &str, domain: &str) -> (BTreeMap<String, String>, Vec<Fallback>) {
        let ids: BTreeSet<&String> = chain(lang)
            .iter()
            .filter_map(|l| self.catalogues.get(&(l.clone(), domain.to_string())))
            .flat_map(|c| &c.ids)
            .collect();
        let mut messages = BTreeMap::new();
        let mut fell_back = Vec::new();
        for id in ids {
            let (text, fallback) = self.message(lang, domain, id, None);
            fell_back.extend(fallback);
            messages.insert(id.clone(), text);
        }
        (messages, fell_back)
    }
}

/// `lang` as catalogues are keyed: the canonical form of the tag (`pt-br` → `pt-BR`).
fn canonical(lang: &str) -> String {
    lang.parse::<LanguageIdentifier>()
        .map_or_else(|_| lang.to_string(), |l| l.to_string())
}

/// The language subtag of a tag, lower-cased: `pt-BR` → `pt`.
fn primary(lang: &str) -> String {
    lang.split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// The languages to look in, in order: `zh-Hant-TW` → `zh-Hant` → `zh` → `en`.
fn chain(lang: &str) -> Vec<String> {
    let mut chain = Vec::new();
    let mut tag = canonical(lang);
    loop {
        chain.push(tag.clone());
        match tag.rsplit_once('-') {
            Some((shorter, _)) => tag = shorter.to_string(),
            None => break,
        }
    }
    if !chain.iter().any(|l| l == FALLBACK_LANGUAGE) {
        chain.push(FALLBACK_LANGUAGE.to_string());
    }
    chain
}

/// Parses one `.ftl` file, refusing syntax errors and messages defined twice.
fn parse(file: &str, source: String) -> Result<FluentResource, I18nError> {
    let line_of =
        |text: &str, offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let resource = match FluentResource::try_new(source) {
        Ok(r) => r,
        Err((resource, errors)) => {
            let source = resource.source();
            let first = errors.iter().min_by_key(|e| e.pos.start);
            return Err(I18nError::Syntax {
                file: file.to_string(),
                // The slice starts at the entry that holds the error; `pos` may be where
                // the parser gave up, lines later (an unclosed `{` is noticed at the end).
                line: first.map_or(1, |e| {
                    line_of(source, e.slice.as_ref().map_or(e.pos.start, |s| s.start))
                }),
                message: first.map_or_else(|| "invalid Fluent".into(), ToString::to_string),
            });
        }
    };
    // Fluent's runtime AST has no spans; an entry starts at the beginning of a line with its
    // id and `=` (the grammar requires it), so that is where a definition is.
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, line) in resource.source().lines().enumerate() {
        let Some((id, _)) = line.split_once('=') else {
            continue;
        };
        let id = id.trim_end();
        let is_id = id.starts_with(|c: char| c.is_ascii_alphabetic())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !is_id {
            continue;
        }
        if let Some(first) = seen.insert(id, index + 1) {
            return Err(I18nError::Duplicate {
                file: file.to_string(),
                line: index + 1,
                first,
                id: id.to_string(),
            });
        }
    }
    Ok(resource)
}

/// The entries of `dir` with their names, sorted, so that loading order is the same on
/// every machine.
fn sorted_entries(dir: &Path) -> Result<Vec<(PathBuf, String)>, I18nError> {
    let read_error = |source| I18nError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            let name = name.to_string();
            entries.push((path, name));
        }
    }
    entries.sort();
    Ok(entries)
}

/// Fluent's hook for writing values: numbers get the bundle language's digits and
/// separators from CLDR; everything else is written as Fluent writes it.
fn format_number(
    value: &FluentValue<'_>,
    memoizer: &intl_memoizer::concurrent::IntlLangMemoizer,
) -> Option<String> {
    let FluentValue::Number(number) = value else {
        return None;
    };
    memoizer
        .with_try_get_threadsafe::<NumberFormatter, _, _>((), |f| f.format(&number.as_string()))
        .ok()
}

impl intl_memoizer::Memoizable for NumberFormatter {
    type Args = ();
    type Error = std::convert::Infallible;

    fn construct(lang: LanguageIdentifier, _: ()) -> Result<Self, Self::Error> {
        Ok(NumberFormatter::new(&lang.to_string()))
    }
}

#[cfg(test)]
mod tests;
