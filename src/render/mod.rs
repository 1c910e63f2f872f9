//! Rendering an edition: Handlebars over the edition data produces MJML, mrml turns it into
//! responsive HTML, and the result is compiled into a [`CompiledTemplate`] whose subscriber
//! slots are filled per recipient later. The plain-text part, the web-archive page and the
//! lint report come out of the same pass.
//!
//! All the expensive work (Handlebars, Markdown, mrml) runs once per edition and language;
//! `mail` only calls [`CompiledTemplate::fill`] per recipient. That is the contract this module
//! keeps with the send path, and why subscriber values never enter the template data: the
//! templates see slot tokens instead (see [`slots`]).

mod i18n;
pub mod lint;
mod markdown;
mod sanitise;
pub mod slots;
mod theme;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::config::line_of;
use crate::content::{Edition, Fallback, Layout};

pub use lint::{Finding, LintReport, Severity};
pub use slots::{CompiledTemplate, Escape, Kind, Slot, SlotKey, SubscriberSlots};
pub use theme::{TemplateSource, Theme};

use slots::token;

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
        /// The limit.
        limit: usize,
    },
    /// The lint report has errors.
    #[error("lint found {errors} error(s) in `{slug}`; fix them and compose again")]
    Lint {
        /// The edition.
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

/// Renders every language of `edition` (or only `only`).
pub fn render(
    edition: &Edition,
    theme: &Theme,
    list: &ListIdentity,
    only: Option<&str>,
) -> Result<RenderedEdition, RenderError> {
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
    let text_template = if theme.sources.contains_key(&format!("{layout}.txt")) {
        format!("{layout}.txt")
    } else {
        "email.txt".to_string()
    };
    let languages: Vec<String> = match only {
        Some(l) if edition.languages.iter().any(|x| x == l) => vec![l.to_string()],
        Some(l) => {
            return Err(RenderError::UnknownLanguage {
                language: l.to_string(),
                available: edition.languages.join(", "),
            });
        }
        None => edition.languages.clone(),
    };

    check_depth(edition)?;
    let mut report = LintReport::default();
    let reported = lint_content(edition, &mut report);
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
    let attributes = referenced_attributes(edition, theme);
    let options = mrml::prelude::render::RenderOptions {
        disable_comments: true,
        social_icon_origin: None,
        // The theme uses system fonts: no request to a font service from the reader's client.
        fonts: std::collections::HashMap::new(),
    };

    let mut variants = BTreeMap::new();
    let mut hasher = Sha256::new();
    for language in &languages {
        let (data, fell_back, subject, preheader) = data_for(edition, list, language, &attributes);
        let mjml = theme
            .html
            .render(&layout, &data)
            .map_err(|e| hb_error(theme, &e))?;
        check_elements(theme, &mjml)?;
        if let Some(offset) = mjml_too_deep(&mjml) {
            return Err(RenderError::TooDeep {
                file: "generated MJML (check the templates)".into(),
                line: line_of(&mjml, offset),
                limit: MAX_MJML_NESTING,
            });
        }
        let parsed = mrml::parse(&mjml).map_err(|e| mjml_error(theme, &mjml, &e))?;
        for w in &parsed.warnings {
            let generated = line_of(&mjml, w.span.start);
            let snippet = mjml.lines().nth(generated - 1).unwrap_or("").trim();
            let (file, line) = theme
                .locate_in_context(&mjml, generated)
                .map_or((None, None), |(f, l)| (Some(f), Some(l)));
            report.push(Finding {
                severity: Severity::Warning,
                code: "mjml",
                file,
                line,
                language: Some(language.clone()),
                message: format!("mrml: {} in `{snippet}`", w.kind),
            });
        }
        let html = parsed
            .element
            .render(&options)
            .map_err(|e| RenderError::Mjml {
                file: theme.display(&layout),
                line: None,
                message: e.to_string(),
            })?;
        let text = theme
            .text
            .render(&text_template, &data)
            .map_err(|e| hb_error(theme, &e))?;
        let html = CompiledTemplate::compile(&html, Kind::Html);
        let text = CompiledTemplate::compile(&tidy_text(&text), Kind::Text);
        let archive_html = html.fill(&archive_slots(list, &edition.slug, language));

        lint_variant(
            &mut report,
            theme,
            language,
            &html,
            &text,
            &[&layout, &text_template],
            &reported,
        );
        lint_texts(
            &mut report,
            edition,
            language,
            &subject,
            preheader.as_deref(),
        );
        if !fell_back.is_empty() {
            let parts: Vec<&str> = fell_back.iter().map(|f| f.part.as_str()).collect();
            report.push(Finding {
                severity: Severity::Warning,
                code: "fallback",
                file: None,
                line: None,
                language: Some(language.clone()),
                message: format!(
                    "untranslated, shown in `{}`: {}",
                    edition.default_language,
                    parts.join(", ")
                ),
            });
        }

        hasher.update(language.as_bytes());
        hasher.update([0]);
        hasher.update(subject.as_bytes());
        hasher.update([0]);
        hasher.update(preheader.as_deref().unwrap_or("").as_bytes());
        hasher.update([0]);
        hasher.update(html.with_placeholders().as_bytes());
        hasher.update([0]);
        hasher.update(text.with_placeholders().as_bytes());
        hasher.update([0]);
        variants.insert(
            language.clone(),
            RenderedVariant {
                language: language.clone(),
                subject,
                preheader,
                html,
                text,
                archive_html,
                mjml,
                fell_back,
            },
        );
    }
    report.sort();
    let content_hash = hasher
        .finalize()
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

/// Attribute names templates or content refer to as `subscriber.attributes.NAME`: the
/// template data gets a slot for each, so strict mode accepts them.
fn referenced_attributes(edition: &Edition, theme: &Theme) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut scan = |text: &str| {
        for (i, _) in text.match_indices("subscriber.attributes.") {
            let rest = &text[i + "subscriber.attributes.".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    };
    for s in theme.sources.values() {
        scan(&s.text);
    }
    for versions in edition.articles.values() {
        for a in versions.values() {
            scan(&a.body);
            scan(&a.meta.title);
            scan(&a.meta.summary);
        }
    }
    for t in edition.texts.values() {
        if let Some(i) = &t.intro {
            scan(i);
        }
    }
    names
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

type VariantData = (Value, Vec<Fallback>, String, Option<String>);

/// The Handlebars data of one language variant, what fell back, the subject and preheader.
fn data_for(
    edition: &Edition,
    list: &ListIdentity,
    language: &str,
    attributes: &BTreeSet<String>,
) -> VariantData {
    let default = &edition.default_language;
    let mut fell_back = Vec::new();
    let base = edition.texts.get(default).cloned().unwrap_or_default();
    let own = edition.texts.get(language).cloned().unwrap_or_default();
    let mut pick = |name: &str, own: Option<String>, base: Option<String>| -> Option<String> {
        match own {
            Some(v) => Some(v),
            None => {
                if language != default && base.is_some() {
                    fell_back.push(Fallback {
                        part: name.to_string(),
                        file: edition.manifest_path.clone(),
                    });
                }
                base
            }
        }
    };
    let title = pick("title", own.title, base.title).unwrap_or_default();
    let subject = pick("subject", own.subject, base.subject).unwrap_or_default();
    let preheader = pick("preheader", own.preheader, base.preheader);
    let intro = pick("intro", own.intro, base.intro);
    let (labels, labels_fell_back) = i18n::labels(language);
    if labels_fell_back {
        fell_back.push(Fallback {
            part: "theme labels".into(),
            file: PathBuf::from("templates"),
        });
    }

    let mut sections = Vec::new();
    let mut documents: Vec<Value> = Vec::new();
    let mut seen_documents = BTreeSet::new();
    for section in &edition.sections {
        let (section_title, section_fell_back) = section.title_in(language, default);
        if section_fell_back && !section_title.is_empty() {
            fell_back.push(Fallback {
                part: format!("section {} title", section.id),
                file: edition.manifest_path.clone(),
            });
        }
        let mut articles = Vec::new();
        for slug in &section.articles {
            let Some((article, article_fell_back)) = edition.article(slug, language) else {
                continue;
            };
            if article_fell_back {
                fell_back.push(Fallback {
                    part: format!("article {slug}"),
                    file: article.path.clone(),
                });
            }
            for d in &article.meta.documents {
                if seen_documents.insert(d.url.clone()) {
                    documents.push(json!({ "title": d.title, "url": d.url }));
                }
            }
            let m = &article.meta;
            articles.push(json!({
                "slug": slug,
                "language": article.language,
                "fell_back": article_fell_back,
                "title": slots::substitute_placeholders(&m.title),
                "summary": slots::substitute_placeholders(&m.summary),
                "category": m.category,
                "country": m.country,
                "year": m.year.as_ref().map(ToString::to_string),
                "institution": m.institution,
                "author": m.author,
                "contact": m.contact,
                "image": m.image,
                "image_alt": m.image_alt,
                "link": m.link,
                "links": m.links,
                "documents": m.documents,
                "body": article.body,
                "extra": article.extra,
            }));
        }
        let columns = usize::from(section.columns.max(1));
        let rows: Vec<Value> = articles
            .chunks(columns)
            .map(|chunk| Value::Array(chunk.to_vec()))
            .collect();
        sections.push(json!({
            "id": section.id,
            "title": section_title,
            "layout": match section.layout { Layout::Cards => "cards", Layout::Grid => "grid" },
            "is_grid": section.layout == Layout::Grid,
            "is_cards": section.layout == Layout::Cards,
            "columns": columns,
            "rows": rows,
            "articles": articles,
        }));
    }

    let mut attrs = Map::new();
    for name in attributes {
        attrs.insert(
            name.clone(),
            Value::String(token(&SlotKey::Attribute(name.clone()), "")),
        );
    }
    let date = edition.date;
    let data = json!({
        "lang": language,
        "dir": if matches!(language.split('-').next(), Some("ar" | "he" | "fa" | "ur")) { "rtl" } else { "ltr" },
        "edition": {
            "slug": edition.slug,
            "title": title,
            "subject": subject,
            "preheader": preheader,
            "date": format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day()),
            "languages": edition.languages,
            "default_language": default,
        },
        "intro": intro,
        "sections": sections,
        "documents": documents,
        "labels": labels,
        "list": {
            "name": list.name,
            "sender": list.sender_name(),
            "postal_address": list.postal_address,
            "public_url": list.public_url.trim_end_matches('/'),
        },
        "subscriber": {
            "name": token(&SlotKey::Name, ""),
            "email": token(&SlotKey::Email, ""),
            "unsubscribe_url": token(&SlotKey::UnsubscribeUrl, ""),
            "preferences_url": token(&SlotKey::PreferencesUrl, ""),
            "archive_url": token(&SlotKey::ArchiveUrl, ""),
            "attributes": attrs,
        },
    });
    (data, fell_back, subject, preheader)
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

/// Elements MJML 4 defines. mrml skips unknown `mj-` elements without a word, so a typo such
/// as `<mj-colum>` would silently drop its content; bulletin refuses them instead.
const MJML_ELEMENTS: &[&str] = &[
    "mjml",
    "mj-head",
    "mj-body",
    "mj-attributes",
    "mj-all",
    "mj-class",
    "mj-breakpoint",
    "mj-font",
    "mj-include",
    "mj-preview",
    "mj-raw",
    "mj-style",
    "mj-title",
    "mj-accordion",
    "mj-accordion-element",
    "mj-accordion-text",
    "mj-accordion-title",
    "mj-button",
    "mj-carousel",
    "mj-carousel-image",
    "mj-column",
    "mj-divider",
    "mj-group",
    "mj-hero",
    "mj-image",
    "mj-navbar",
    "mj-navbar-link",
    "mj-section",
    "mj-social",
    "mj-social-element",
    "mj-spacer",
    "mj-table",
    "mj-text",
    "mj-wrapper",
];

/// The first unknown `<mj-…>` element of `mjml`, as an error naming the template line.
fn check_elements(theme: &Theme, mjml: &str) -> Result<(), RenderError> {
    for (offset, _) in mjml.match_indices("<mj-") {
        let name: String = mjml[offset + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if MJML_ELEMENTS.contains(&name.as_str()) {
            continue;
        }
        let generated = line_of(mjml, offset);
        let hint = crate::config::closest(&name, MJML_ELEMENTS)
            .map(|b| format!("; did you mean `<{b}>`?"))
            .unwrap_or_default();
        let (file, line) = theme
            .locate_in_context(mjml, generated)
            .or_else(|| theme.locate(&format!("<{name}")))
            .map_or(("generated MJML".to_string(), Some(generated)), |(f, l)| {
                (f, Some(l))
            });
        return Err(RenderError::Mjml {
            file,
            line,
            message: format!("unknown element `<{name}>`{hint}"),
        });
    }
    check_nesting(theme, mjml)
}

/// Finds the first closing `</mj-…>` that does not close the innermost open element. mrml
/// reports such a mistake later, at an innocent element; this names the line to fix.
fn check_nesting(theme: &Theme, mjml: &str) -> Result<(), RenderError> {
    let mut open: Vec<&str> = Vec::new();
    let mut pos = 0;
    while let Some(i) = mjml[pos..].find('<') {
        let at = pos + i;
        let rest = &mjml[at + 1..];
        let closing = rest.starts_with('/');
        let name_start = usize::from(closing);
        let name_len = rest[name_start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(rest.len() - name_start);
        let name = &rest[name_start..name_start + name_len];
        // Just past the `>` of this tag.
        let end = rest.find('>').map_or(mjml.len(), |e| at + 2 + e);
        pos = end.max(at + 1);
        if !(name == "mjml" || name.starts_with("mj-")) {
            continue;
        }
        // Text inside these is not MJML.
        if !closing
            && matches!(
                name,
                "mj-raw" | "mj-style" | "mj-text" | "mj-button" | "mj-table"
            )
        {
            let close = format!("</{name}>");
            if !mjml[at..end].ends_with("/>") {
                if let Some(c) = mjml[end..].find(&close) {
                    pos = end + c + close.len();
                }
            }
            continue;
        }
        if closing {
            if open.last() == Some(&name) {
                open.pop();
                continue;
            }
            let generated = line_of(mjml, at);
            let (file, line) = theme
                .locate_in_context(mjml, generated)
                .map_or(("generated MJML".to_string(), Some(generated)), |(f, l)| {
                    (f, Some(l))
                });
            let inner = open.last().map_or_else(
                || "nothing is open".to_string(),
                |o| format!("the innermost open element is `<{o}>`"),
            );
            return Err(RenderError::Mjml {
                file,
                line,
                message: format!("`</{name}>` closes an element that is not open here ({inner})"),
            });
        }
        if !mjml[at..end].ends_with("/>") {
            open.push(name);
        }
    }
    Ok(())
}

/// An mrml parse error, traced back to the template line that wrote the bad MJML.
fn mjml_error(theme: &Theme, mjml: &str, e: &mrml::prelude::parser::Error) -> RenderError {
    use mrml::prelude::parser::Error as E;
    let generated = match e {
        E::UnexpectedElement { position, .. }
        | E::UnexpectedToken { position, .. }
        | E::MissingAttribute { position, .. }
        | E::InvalidAttribute { position, .. }
        | E::InvalidFormat { position, .. }
        | E::IncludeLoaderError { position, .. } => Some(line_of(mjml, position.start)),
        E::ParserError { source, .. } => usize::try_from(source.pos().row).ok(),
        _ => None,
    };
    let reason = e.to_string();
    let reason = reason
        .split(" in root template")
        .next()
        .unwrap_or(&reason)
        .to_string();
    let Some(generated) = generated.filter(|l| *l > 0) else {
        return RenderError::Mjml {
            file: "generated MJML".into(),
            line: None,
            message: format!("{reason} (compose writes the MJML to email.mjml when it renders)"),
        };
    };
    let line_text = mjml.lines().nth(generated - 1).unwrap_or("").trim();
    let message = format!("{reason} at `{line_text}`");
    match theme.locate_in_context(mjml, generated) {
        Some((file, line)) => RenderError::Mjml {
            file,
            line: Some(line),
            message,
        },
        None => RenderError::Mjml {
            file: "generated MJML".into(),
            line: Some(generated),
            message,
        },
    }
}

/// Refuses Markdown nested deeper than [`markdown::MAX_NESTING`], naming the file and line,
/// before any of it reaches the MJML parser (which recurses once per level).
fn check_depth(edition: &Edition) -> Result<(), RenderError> {
    let too_deep = |file: &std::path::Path, line: usize| RenderError::TooDeep {
        file: file.display().to_string(),
        line,
        limit: markdown::MAX_NESTING,
    };
    for versions in edition.articles.values() {
        for a in versions.values() {
            if let Some(offset) = markdown::too_deep(&a.body) {
                return Err(too_deep(
                    &a.path,
                    a.body_line + line_of(&a.body, offset) - 1,
                ));
            }
        }
    }
    for texts in edition.texts.values() {
        if let Some(intro) = &texts.intro
            && let Some(offset) = markdown::too_deep(intro)
        {
            return Err(too_deep(
                &edition.manifest_path,
                texts.intro_line + line_of(intro, offset),
            ));
        }
    }
    Ok(())
}

/// How deep the MJML a theme produces may nest, content included: the content's own bound
/// plus ample room for the layout. A theme deeper than this is refused rather than handed to
/// mrml, whose parser and renderer recurse once per level.
const MAX_MJML_NESTING: usize = 4 * markdown::MAX_NESTING;

/// The offset where the elements of `mjml` first nest deeper than [`MAX_MJML_NESTING`].
fn mjml_too_deep(mjml: &str) -> Option<usize> {
    let mut depth = 0usize;
    for tag in sanitise::tags(mjml) {
        if tag.closing {
            depth = depth.saturating_sub(1);
        } else if !tag.self_closing && !sanitise::VOID_ELEMENTS.contains(&tag.name.as_str()) {
            depth += 1;
            if depth > MAX_MJML_NESTING {
                return Some(tag.offset);
            }
        }
    }
    None
}

/// Checks made on the content files, where file and line are known. Returns the placeholders
/// (their inner text) and URLs reported, so the checks on the output do not report them again.
fn lint_content(edition: &Edition, report: &mut LintReport) -> BTreeSet<String> {
    let mut reported = BTreeSet::new();
    let push_issue = |report: &mut LintReport,
                      file: &std::path::Path,
                      line: usize,
                      issue: markdown::MarkdownIssue| {
        report.push(Finding {
            severity: issue.severity,
            code: issue.code,
            file: Some(file.display().to_string()),
            line: Some(line),
            language: None,
            message: issue.message,
        });
    };
    for versions in edition.articles.values() {
        for a in versions.values() {
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
    }
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

/// Checks made on one variant's output.
fn lint_variant(
    report: &mut LintReport,
    theme: &Theme,
    language: &str,
    html: &CompiledTemplate,
    text: &CompiledTemplate,
    templates: &[&str; 2],
    reported: &BTreeSet<String>,
) {
    let lang = Some(language.to_string());
    let finding = |code: &'static str, located: Option<(String, usize)>, message: String| {
        let (file, line) = located.map_or((None, None), |(f, l)| (Some(f), Some(l)));
        Finding {
            severity: Severity::Error,
            code,
            file,
            line,
            language: lang.clone(),
            message,
        }
    };
    // Slots are sized generously: a long name, a long signed unsubscribe URL.
    let size = html.literal_len() + 120 * html.slots().len();
    if size > lint::CLIP_LIMIT_BYTES {
        report.push(finding(
            "size",
            None,
            format!(
                "the HTML is {} KB; Gmail clips messages over {} KB, hiding the rest and the \
                 unsubscribe link: shorten the articles or move some to the web version",
                size.div_ceil(1024),
                lint::CLIP_LIMIT_BYTES / 1024
            ),
        ));
    }
    let has_unsubscribe = |t: &CompiledTemplate, escape: Escape| {
        t.slots()
            .iter()
            .any(|s| s.key == SlotKey::UnsubscribeUrl && s.escape == escape)
    };
    if !has_unsubscribe(html, Escape::Url) {
        report.push(finding(
            "unsubscribe",
            None,
            format!(
                "{} has no unsubscribe link; add <a href=\"{{{{subscriber.unsubscribe_url}}}}\"> \
                 to the footer",
                theme.display(templates[0])
            ),
        ));
    }
    if !has_unsubscribe(text, Escape::Text) {
        report.push(finding(
            "unsubscribe",
            None,
            format!(
                "{} has no unsubscribe line; add {{{{subscriber.unsubscribe_url}}}}",
                theme.display(templates[1])
            ),
        ));
    }
    for (document, name) in [(html, "HTML"), (text, "text")] {
        let literal = document.with_placeholders();
        for (offset, inner) in markdown::placeholders(&literal) {
            if inner.starts_with("subscriber.") && inner.contains(" |") {
                continue; // a slot, as `with_placeholders` shows it
            }
            if reported.contains(inner) {
                continue;
            }
            let generated = line_of(&literal, offset);
            report.push(finding(
                "placeholder",
                theme.locate(&format!("{{{{{inner}}}}}")),
                format!(
                    "{} (generated {name} line {generated})",
                    markdown::unresolved_message(inner)
                ),
            ));
        }
    }
    let literal = html.with_placeholders();
    for (_, url) in lint::urls(&literal) {
        let url = url.replace("&amp;", "&");
        if url.starts_with("{{subscriber.") || reported.contains(&url) {
            continue;
        }
        if let Some(message) = markdown::link_problem(&url) {
            report.push(finding("link", theme.locate(&url), message));
        }
    }
    for (_, src) in lint::images_without_alt(&literal) {
        if reported.contains(&src) {
            continue;
        }
        report.push(finding(
            "image-alt",
            theme.locate(&src),
            format!("image `{src}` has no alt text; give it an `alt` attribute"),
        ));
    }
}

/// Warnings about the subject and preheader of one variant.
fn lint_texts(
    report: &mut LintReport,
    edition: &Edition,
    language: &str,
    subject: &str,
    preheader: Option<&str>,
) {
    let file = Some(edition.manifest_path.display().to_string());
    let chars = subject.chars().count();
    if chars > lint::SUBJECT_MAX_CHARS {
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
                lint::SUBJECT_MAX_CHARS
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

#[cfg(test)]
mod depth_tests {
    use super::*;

    /// The deepest MJML `render` lets through parses and renders on a thread with the 2 MiB
    /// stack of a tokio worker, in a debug build (whose stack frames are the largest).
    #[test]
    fn the_deepest_allowed_mjml_renders_on_a_small_stack() {
        let depth = MAX_MJML_NESTING - 8;
        let mjml = format!(
            "<mjml><mj-body><mj-section><mj-column><mj-text>{}x{}</mj-text></mj-column>\
             </mj-section></mj-body></mjml>",
            "<div>".repeat(depth),
            "</div>".repeat(depth)
        );
        assert!(mjml_too_deep(&mjml).is_none());
        let handle = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                let parsed = mrml::parse(&mjml).expect("valid MJML");
                let html = parsed
                    .element
                    .render(&mrml::prelude::render::RenderOptions::default())
                    .expect("renders");
                html.len()
            })
            .expect("thread starts");
        assert!(handle.join().expect("no stack overflow") > 0);
        let deeper = format!("<mjml>{}</mjml>", "<div>".repeat(MAX_MJML_NESTING + 1));
        assert!(mjml_too_deep(&deeper).is_some());
    }
}
