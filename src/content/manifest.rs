//! `edition.toml`: its shape, and the checks and defaults that turn it into the edition's
//! date, sections, languages and texts.
//!
//! Every value a message may point at is read as a `toml::Spanned`, so that an error names
//! the line of the value at fault (the third section's `columns`, the second listing of an
//! article) rather than the first line in the file that looks like it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use toml::Spanned;

use super::{Article, ContentError, EditionTexts, Hero, Layout, Section, is_language_code};
use crate::diagnostic::{SourceFile, closest, missing_field, unknown_field};

/// Articles by slug, then language.
type Articles = BTreeMap<String, BTreeMap<String, Article>>;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DateField {
    Text(String),
    Toml(toml::value::Datetime),
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Manifest {
    pub(super) slug: Spanned<String>,
    title: String,
    subject: Spanned<String>,
    preheader: Option<String>,
    date: Spanned<DateField>,
    pub(super) default_language: Spanned<String>,
    #[serde(default)]
    languages: Vec<Spanned<String>>,
    pub(super) template: Option<String>,
    pub(super) list: Option<String>,
    intro: Option<Spanned<String>>,
    /// Whether the theme writes its greeting line ("Dear Ana Lima,") before the intro; an
    /// intro that greets the reader itself sets this to false.
    #[serde(default = "default_greeting")]
    pub(super) greeting: bool,
    /// Count clicks: the links of the mail go through `bulletin serve`'s `/c/` redirect.
    #[serde(default)]
    pub(super) track_clicks: bool,
    #[serde(default)]
    translations: BTreeMap<Spanned<String>, ManifestTranslation>,
    #[serde(default)]
    sections: Vec<ManifestSection>,
    #[serde(default)]
    articles: Vec<Spanned<String>>,
    /// The header picture: a file in the edition folder or an absolute URL.
    pub(super) hero: Option<Spanned<String>>,
    /// Its text alternative (required with `hero`).
    pub(super) hero_alt: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestTranslation {
    title: Option<String>,
    subject: Option<Spanned<String>>,
    preheader: Option<String>,
    intro: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestSection {
    id: String,
    title: String,
    #[serde(default = "default_layout")]
    layout: Layout,
    columns: Option<Spanned<u8>>,
    articles: Vec<Spanned<String>>,
    #[serde(default)]
    title_translations: BTreeMap<String, String>,
}

fn default_greeting() -> bool {
    true
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
            "greeting",
            "track_clicks",
            "translations",
            "sections",
            "articles",
            "hero",
            "hero_alt",
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

/// Reads `edition.toml`; syntax errors, unknown keys (with the closest known one) and
/// missing keys name their line.
pub(super) fn parse(file: SourceFile<'_>) -> Result<Manifest, ContentError> {
    toml::from_str(file.text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let message = e.message().trim();
        let message = if let Some(key) = unknown_field(message) {
            let table = match file.toml_table_at(offset) {
                Some(h) if h.starts_with("translations") => "translations",
                Some(h) if h.starts_with("sections") => "sections",
                _ => "",
            };
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
                Some(best) => format!("unknown key `{key}` in {place}; did you mean `{best}`?"),
                None => format!(
                    "unknown key `{key}` in {place}; valid keys: {}",
                    keys.join(", ")
                ),
            }
        } else if let Some(key) = missing_field(message) {
            format!("edition.toml needs `{key}`; add a line such as `{key} = \"…\"`")
        } else {
            message.to_string()
        };
        ContentError::manifest(file.at(offset, message))
    })
}

impl Manifest {
    /// Checks the values that become folder names, URLs and language tags.
    pub(super) fn check_identity(&self, file: SourceFile<'_>) -> Result<(), ContentError> {
        let slug = self.slug.get_ref();
        let slug_ok = !slug.is_empty()
            && slug
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !slug_ok {
            return Err(ContentError::invalid(file.at_line(
                file.line_of_spanned(&self.slug),
                format!(
                    "slug `{slug}` must be lowercase letters, digits and '-' (it becomes a folder and a URL)"
                ),
            )));
        }
        let default = self.default_language.get_ref();
        if !is_language_code(default) {
            return Err(ContentError::invalid(file.at_line(
                file.line_of_spanned(&self.default_language),
                format!("`{default}` is not a language code such as `en` or `pt-BR`"),
            )));
        }
        Ok(())
    }

    /// The publication date, written as a TOML date or as text.
    pub(super) fn date(&self, file: SourceFile<'_>) -> Result<time::Date, ContentError> {
        let text = match self.date.get_ref() {
            DateField::Text(t) => t.clone(),
            DateField::Toml(d) => d.to_string(),
        };
        time::Date::parse(
            &text,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .map_err(|_| {
            ContentError::invalid(file.at_line(
                file.line_of_spanned(&self.date),
                format!("date `{text}` must be written YYYY-MM-DD, e.g. 2017-06-30"),
            ))
        })
    }

    /// The sections as written, or one section of every article: in the order `articles`
    /// lists them, else by their `order` key, then by slug.
    pub(super) fn sections(
        &self,
        file: SourceFile<'_>,
        articles: &Articles,
    ) -> Result<Vec<Section>, ContentError> {
        if self.sections.is_empty() {
            let slugs = if self.articles.is_empty() {
                let default = self.default_language.get_ref();
                let mut slugs: Vec<String> = articles.keys().cloned().collect();
                slugs.sort_by_key(|s| {
                    let order = articles
                        .get(s)
                        .and_then(|v| v.get(default))
                        .and_then(|a| a.meta.order);
                    (order.unwrap_or(i64::MAX), s.clone())
                });
                slugs
            } else {
                self.articles.iter().map(|s| s.get_ref().clone()).collect()
            };
            return Ok(vec![Section {
                id: "articles".into(),
                title: String::new(),
                title_translations: BTreeMap::new(),
                layout: Layout::Cards,
                columns: 1,
                articles: slugs,
            }]);
        }
        let mut sections = Vec::new();
        for s in &self.sections {
            let columns = s.columns.as_ref().map_or(2, |c| *c.get_ref());
            if s.layout == Layout::Grid && !(2..=3).contains(&columns) {
                // The line of this section's `columns`: a bad value is always written.
                let line = s.columns.as_ref().map_or(1, |c| file.line_of_spanned(c));
                return Err(ContentError::invalid(file.at_line(
                    line,
                    format!("section `{}`: a grid has 2 or 3 columns", s.id),
                )));
            }
            sections.push(Section {
                id: s.id.clone(),
                title: s.title.clone(),
                title_translations: s.title_translations.clone(),
                layout: s.layout,
                columns,
                articles: s.articles.iter().map(|a| a.get_ref().clone()).collect(),
            });
        }
        Ok(sections)
    }

    /// Every article the file lists exists and is listed once.
    pub(super) fn check_listed(
        &self,
        file: SourceFile<'_>,
        articles: &Articles,
    ) -> Result<(), ContentError> {
        let listed = if self.sections.is_empty() {
            self.articles.iter().collect::<Vec<_>>()
        } else {
            self.sections.iter().flat_map(|s| &s.articles).collect()
        };
        let known: Vec<&str> = articles.keys().map(String::as_str).collect();
        let mut seen = BTreeSet::new();
        for entry in listed {
            let slug = entry.get_ref();
            let line = file.line_of_spanned(entry);
            if !articles.contains_key(slug) {
                let hint = match closest(slug, &known) {
                    Some(best) => format!("; did you mean `{best}`?"),
                    None => format!("; add articles/{slug}.md"),
                };
                return Err(ContentError::invalid(file.at_line(
                    line,
                    format!("there is no article `{slug}` in articles/{hint}"),
                )));
            }
            if !seen.insert(slug) {
                return Err(ContentError::invalid(
                    file.at_line(line, format!("article `{slug}` is listed twice")),
                ));
            }
        }
        Ok(())
    }

    /// The default language, then every other one named anywhere, unless listed explicitly.
    pub(super) fn languages(
        &self,
        file: SourceFile<'_>,
        articles: &Articles,
    ) -> Result<Vec<String>, ContentError> {
        let default = self.default_language.get_ref();
        let mut languages = vec![default.clone()];
        if self.languages.is_empty() {
            let mut others = BTreeSet::new();
            others.extend(self.translations.keys().map(|l| l.get_ref().clone()));
            for versions in articles.values() {
                others.extend(versions.keys().cloned());
            }
            others.remove(default);
            languages.extend(others);
        }
        for l in &self.languages {
            let code = l.get_ref();
            if !is_language_code(code) {
                return Err(ContentError::invalid(file.at_line(
                    file.line_of_spanned(l),
                    format!("`{code}` is not a language code such as `fr`"),
                )));
            }
            if code != default {
                languages.push(code.clone());
            }
        }
        for l in self.translations.keys() {
            let code = l.get_ref();
            if !is_language_code(code) {
                return Err(ContentError::invalid(file.at_line(
                    file.line_of_spanned(l),
                    format!(
                        "`[translations.{code}]`: `{code}` is not a language code such as `fr`"
                    ),
                )));
            }
        }
        Ok(languages)
    }

    /// The header picture, with its alt text, which it must have.
    pub(super) fn hero(&self, file: SourceFile<'_>) -> Result<Option<Hero>, ContentError> {
        let Some(hero) = &self.hero else {
            return Ok(None);
        };
        let line = file.line_of_spanned(hero);
        let alt = self.hero_alt.clone().unwrap_or_default();
        if alt.trim().is_empty() {
            return Err(ContentError::MissingField {
                path: file.path.to_path_buf(),
                line,
                field: "hero_alt".into(),
                example: "hero_alt = \"What the picture shows\"".into(),
            });
        }
        Ok(Some(Hero {
            image: hero.get_ref().clone(),
            alt,
            line,
        }))
    }

    /// The edition's texts per language, with the lines of `subject` and `intro` for
    /// messages about their content (the table's header, or line 1, when absent).
    pub(super) fn texts(&self, file: SourceFile<'_>) -> BTreeMap<String, EditionTexts> {
        let line = |value: Option<&Spanned<String>>, otherwise: usize| {
            value.map_or(otherwise, |v| file.line_of_spanned(v))
        };
        let mut texts = BTreeMap::new();
        texts.insert(
            self.default_language.get_ref().clone(),
            EditionTexts {
                title: Some(self.title.clone()),
                subject: Some(self.subject.get_ref().clone()),
                preheader: self.preheader.clone(),
                intro: self.intro.as_ref().map(|i| i.get_ref().clone()),
                intro_line: line(self.intro.as_ref(), 1),
                subject_line: line(Some(&self.subject), 1),
            },
        );
        for (lang, t) in &self.translations {
            let header = file.line_of_spanned(lang);
            texts.insert(
                lang.get_ref().clone(),
                EditionTexts {
                    title: t.title.clone(),
                    subject: t.subject.as_ref().map(|s| s.get_ref().clone()),
                    preheader: t.preheader.clone(),
                    intro: t.intro.as_ref().map(|i| i.get_ref().clone()),
                    intro_line: line(t.intro.as_ref(), header),
                    subject_line: line(t.subject.as_ref(), header),
                },
            );
        }
        texts
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn manifest_typo_names_line_and_key() {
        let text = "title = \"x\"\nsubjct = \"y\"\n";
        let e = parse(SourceFile::new(Path::new("edition.toml"), text))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("edition.toml:2: unknown key `subjct` in the top level; did you mean `subject`?")
        );
    }
}
