//! Rendering an edition: Handlebars over the edition data produces MJML, mrml turns it into
//! responsive HTML, and the result is compiled into a [`CompiledTemplate`] whose subscriber
//! slots are filled per recipient later. The plain-text part, the web-archive page and the
//! lint report come out of the same pass.
//!
//! All the expensive work (Handlebars, Markdown, mrml) runs once per edition and language;
//! `mail` only calls [`CompiledTemplate::fill`] per recipient. That is the contract this module
//! keeps with the send path, and why subscriber values never enter the template data: the
//! templates see slot tokens instead (see [`slots`]).
//!
//! One job per file: `data` builds what the templates see (with the `theme` catalogue's
//! words of [`crate::i18n`] as the theme's own labels), `theme` loads the templates and their helpers, `markdown` and
//! `sanitise` turn article text into HTML and plain text, `bidi` marks a right-to-left
//! variant's Outlook tables and text part, [`slots`] compiles the output, `mjml`
//! checks the generated MJML and turns it into HTML, [`lint`] checks content and output, and
//! this file runs the pass once per language and hashes the result.

mod bidi;
mod data;
pub mod lint;
mod local_urls;
mod markdown;
mod mjml;
mod sanitise;
pub mod slots;
mod theme;
mod web_version;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Map;

use crate::assets::Published;
use crate::content::{Edition, Fallback};

pub use lint::{Finding, LintReport, Severity};
pub use slots::{CompiledTemplate, Escape, Kind, Slot, SlotKey, SubscriberSlots};
pub use theme::{TemplateSource, Theme};

/// What can stop an edition from rendering. Lint findings are not errors here: they are in
/// [`RenderedEdition::lint`], and [`RenderError::Lint`] is what `compose` returns for them.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A Handlebars template does not parse or fails to render (strict mode: unknown variable).
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Template {
        /// The template (its path, or `templates/x.mjml.hbs (built-in)`).
        file: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The MJML the templates produced is not valid MJML.
    #[error("{file}{}: MJML error: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Mjml {
        /// The template that most likely wrote the bad MJML, or `generated MJML`.
        file: String,
        /// 1-based line in that file.
        line: Option<usize>,
        /// mrml's message, with the offending line.
        message: String,
    },
    /// `template = "x"` in edition.toml names no layout.
    #[error(
        "{manifest}: template `{name}` not found; use `default` or add templates/{name}.mjml.hbs"
    )]
    UnknownLayout {
        /// edition.toml.
        manifest: PathBuf,
        /// The name given.
        name: String,
    },
    /// `--lang` names a language the edition does not have.
    #[error("the edition has no `{language}` variant; its languages are {available}")]
    UnknownLanguage {
        /// The language asked for.
        language: String,
        /// The edition's languages.
        available: String,
    },
    /// Content nested so deep that rendering it could exhaust the stack.
    #[error(
        "{file}:{line}: the text nests more than {limit} levels deep (quotes, lists, emphasis \
         or HTML elements inside one another); no reader follows that many: flatten it"
    )]
    TooDeep {
        /// The article, edition.toml, or `generated MJML`.
        file: String,
        /// 1-based line where the limit is passed.
        line: usize,
        /// The deepest nesting allowed.
        limit: usize,
    },
    /// A message catalogue (`locales/<lang>/*.ftl`) does not load.
    #[error(transparent)]
    Catalogue(#[from] crate::i18n::I18nError),
    /// The lint report has errors.
    #[error("lint found {errors} error(s) in `{slug}`; fix them and compose again")]
    Lint {
        /// The slug of the edition that has the errors.
        slug: String,
        /// How many errors.
        errors: usize,
    },
}

/// Who the newsletter is from: the `[list]` part of the configuration the rendering needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListIdentity {
    /// Human name of the newsletter.
    pub name: String,
    /// `From` header.
    pub from: String,
    /// `Reply-To` header.
    pub reply_to: Option<String>,
    /// Postal address for the footer.
    pub postal_address: Option<String>,
    /// Base of unsubscribe, preferences and archive URLs (no trailing slash needed).
    pub public_url: String,
}

impl ListIdentity {
    /// The display name of the `From` header, or the list name.
    fn sender_name(&self) -> String {
        match self.from.split_once('<') {
            Some((name, _)) if !name.trim().is_empty() => name.trim().trim_matches('"').to_string(),
            _ => self.name.clone(),
        }
    }
}

/// The web address of an edition's archive page in one language.
pub fn archive_url(public_url: &str, slug: &str, language: &str) -> String {
    format!(
        "{}/archive/{slug}/{language}/",
        public_url.trim_end_matches('/')
    )
}

/// One language of a rendered edition: everything `mail` needs to build a message.
#[derive(Debug, Clone)]
pub struct RenderedVariant {
    /// Language code.
    pub language: String,
    /// Mail subject.
    pub subject: String,
    /// Preheader (already inside the HTML; kept for previews and reports).
    pub preheader: Option<String>,
    /// The HTML part, compiled.
    pub html: CompiledTemplate,
    /// The plain-text part, compiled.
    pub text: CompiledTemplate,
    /// The web version, without any subscriber's data.
    pub archive_html: String,
    /// The MJML the templates produced (for debugging a theme, and the mrml benchmark).
    pub mjml: String,
    /// What used the default language's text instead of a translation.
    pub fell_back: Vec<Fallback>,
}

/// A rendered edition: one variant per language, a hash to recognise it, and its lint report.
#[derive(Debug, Clone)]
pub struct RenderedEdition {
    /// The edition's slug.
    pub slug: String,
    /// Default language (the variant for subscribers whose language has none).
    pub default_language: String,
    /// Variants by language.
    pub variants: BTreeMap<String, RenderedVariant>,
    /// SHA-256 (hex) of everything a recipient can receive: subjects, preheaders, both parts
    /// with their slots. Equal hashes mean the same mail; `send` uses it to tell an edition
    /// that changed between runs.
    pub content_hash: String,
    /// What lint found.
    pub lint: LintReport,
}

impl RenderedEdition {
    /// The variant for a subscriber's language, or the default language's.
    pub fn variant_for(&self, language: Option<&str>) -> Option<&RenderedVariant> {
        language
            .and_then(|l| {
                self.variants.get(l).or_else(|| {
                    // `pt-BR` subscribers get `pt` when there is no `pt-BR` variant.
                    let base = l.split('-').next()?;
                    self.variants.get(base)
                })
            })
            .or_else(|| self.variants.get(&self.default_language))
    }
}

/// The slots the web version is filled with: links that work for anyone, no personal data.
pub fn archive_slots(list: &ListIdentity, slug: &str, language: &str) -> SubscriberSlots {
    let base = list.public_url.trim_end_matches('/');
    SubscriberSlots {
        name: String::new(),
        email: String::new(),
        unsubscribe_url: format!("{base}/unsubscribe"),
        preferences_url: format!("{base}/preferences"),
        archive_url: archive_url(base, slug, language),
        attributes: Map::new(),
    }
}

/// Renders every language of `edition` (or only `only`), with no local file published: an
/// edition that names one gets a lint error. [`render_with`] renders with what
/// [`crate::assets::publish`] published.
pub fn render(
    edition: &Edition,
    theme: &Theme,
    list: &ListIdentity,
    only: Option<&str>,
) -> Result<RenderedEdition, RenderError> {
    render_with(edition, theme, list, only, &Published::default())
}

/// Renders every language of `edition` (or only `only`), linking its local pictures and
/// documents where `assets` says they were published, and reporting its problems with them.
pub fn render_with(
    edition: &Edition,
    theme: &Theme,
    list: &ListIdentity,
    only: Option<&str>,
    assets: &Published,
) -> Result<RenderedEdition, RenderError> {
    let templates = Templates::choose(edition, theme)?;
    let languages = languages(edition, only)?;
    mjml::check_depth(edition)?;
    let mut report = LintReport::default();
    let reported = lint::lint_content(edition, &mut report);
    lint::lint_assets(edition, assets, &mut report);
    lint::lint_list(list, &mut report);
    let pass = Pass {
        edition,
        theme,
        list,
        templates,
        attributes: data::referenced_attributes(edition, theme),
        reported,
        assets,
    };
    let mut variants = BTreeMap::new();
    let mut hasher = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for language in languages {
        let variant = pass.variant(language, &mut report)?;
        hash_variant(&mut hasher, &variant);
        variants.insert(language.to_string(), variant);
    }
    report.sort();
    let content_hash = hasher
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(RenderedEdition {
        slug: edition.slug.clone(),
        default_language: edition.default_language.clone(),
        variants,
        content_hash,
        lint: report,
    })
}

/// The languages to render: all of the edition's, or the one asked for if it has it.
fn languages<'a>(edition: &'a Edition, only: Option<&'a str>) -> Result<Vec<&'a str>, RenderError> {
    match only {
        Some(l) if edition.languages.iter().any(|x| x == l) => Ok(vec![l]),
        Some(l) => Err(RenderError::UnknownLanguage {
            language: l.to_string(),
            available: edition.languages.join(", "),
        }),
        None => Ok(edition.languages.iter().map(String::as_str).collect()),
    }
}

/// The two templates an edition renders with: its MJML layout and the text template.
struct Templates {
    layout: String,
    text: String,
}

impl Templates {
    /// `template = "default"` is the theme's `layout`; a layout without a text template of its
    /// own (`x.txt`) uses `email.txt`.
    fn choose(edition: &Edition, theme: &Theme) -> Result<Self, RenderError> {
        let layout = if edition.template == "default" {
            "layout".to_string()
        } else {
            edition.template.clone()
        };
        if !theme.sources.contains_key(&layout) {
            return Err(RenderError::UnknownLayout {
                manifest: edition.manifest_path.clone(),
                name: edition.template.clone(),
            });
        }
        let text = if theme.sources.contains_key(&format!("{layout}.txt")) {
            format!("{layout}.txt")
        } else {
            "email.txt".to_string()
        };
        Ok(Self { layout, text })
    }
}

/// What every language variant of one render shares.
struct Pass<'a> {
    edition: &'a Edition,
    theme: &'a Theme,
    list: &'a ListIdentity,
    templates: Templates,
    /// Attribute names the templates and content use, each given a slot.
    attributes: BTreeSet<String>,
    /// What the content checks reported, so the output checks do not report it again.
    reported: BTreeSet<String>,
    /// The edition's local files, as published.
    assets: &'a Published,
}

impl Pass<'_> {
    /// Renders and lints one language variant.
    fn variant(
        &self,
        language: &str,
        report: &mut LintReport,
    ) -> Result<RenderedVariant, RenderError> {
        let (edition, theme, templates) = (self.edition, self.theme, &self.templates);
        let variant = data::variant_data(
            edition,
            self.list,
            theme,
            language,
            &self.attributes,
            self.assets,
        );
        // One conversion to JSON serves both templates.
        let context = handlebars::Context::wraps(&variant.data).map_err(|e| hb_error(theme, &e))?;
        let mjml = match theme
            .html_inlined
            .render_with_context(&templates.layout, &context)
        {
            Ok(mjml) => mjml,
            // The same templates with their partials as files, for the error's own file.
            Err(_) => theme
                .html
                .render_with_context(&templates.layout, &context)
                .map_err(|e| hb_error(theme, &e))?,
        };
        let html = mjml::to_html(theme, &templates.layout, &mjml, language, report)?;
        let text = theme
            .text
            .render_with_context(&templates.text, &context)
            .map_err(|e| hb_error(theme, &e))?;
        let mut text = tidy_text(&text);
        let html = if crate::i18n::direction(language) == crate::i18n::Dir::Rtl {
            text = bidi::rtl_text(&text);
            bidi::outlook_rtl(&html)
        } else {
            html
        };
        let html = CompiledTemplate::compile(&html, Kind::Html);
        let text = CompiledTemplate::compile(&text, Kind::Text);
        let archive_html = web_version::strip_inbox_only(&html.fill(&archive_slots(
            self.list,
            &edition.slug,
            language,
        )));

        let output = lint::VariantOutput {
            language,
            html: &html,
            text: &text,
            templates: [&templates.layout, &templates.text],
        };
        lint::lint_variant(report, theme, &output, &self.reported);
        let data::EditionData {
            subject, preheader, ..
        } = variant.data.edition;
        lint::lint_texts(report, edition, language, &subject, preheader.as_deref());
        lint::lint_fallback(report, edition, language, &variant.fell_back);
        lint::lint_theme_words(report, language, &variant.theme_fell_back);
        Ok(RenderedVariant {
            language: language.to_string(),
            subject,
            preheader,
            html,
            text,
            archive_html,
            mjml,
            fell_back: variant.fell_back,
        })
    }
}

/// Adds to the content hash what a recipient of `variant` can receive. Fields are separated by
/// a NUL byte, so that text moving from one field to the next changes the hash.
fn hash_variant(hasher: &mut aws_lc_rs::digest::Context, variant: &RenderedVariant) {
    for part in [
        variant.language.as_str(),
        &variant.subject,
        variant.preheader.as_deref().unwrap_or(""),
        &variant.html.with_placeholders(),
        &variant.text.with_placeholders(),
    ] {
        hasher.update(part.as_bytes());
        hasher.update(&[0]);
    }
}

/// Collapses runs of blank lines the text template leaves between blocks into one.
fn tidy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 || out.is_empty() {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// A Handlebars error, named by template file and line, with a suggestion for strict mode.
fn hb_error(theme: &Theme, e: &handlebars::RenderError) -> RenderError {
    let file = e
        .template_name
        .as_deref()
        .map_or_else(|| "template".to_string(), |n| theme.display(n));
    let message = match e.reason() {
        handlebars::RenderErrorReason::MissingVariable(Some(path)) => {
            let hint = path
                .strip_prefix("subscriber.")
                .and_then(|rest| {
                    crate::config::closest(rest, SlotKey::NAMES)
                        .map(|best| format!("; did you mean `subscriber.{best}`?"))
                })
                .unwrap_or_else(|| {
                    "; check the spelling against the template data (README: templates)".into()
                });
            format!("`{{{{{path}}}}}` is not defined{hint}")
        }
        handlebars::RenderErrorReason::TemplateError(t) => t.reason().to_string(),
        other => other.to_string(),
    };
    RenderError::Template {
        file,
        line: e.line_no,
        message,
    }
}
