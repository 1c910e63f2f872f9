//! The data the templates see for one language variant, as typed structs.
//!
//! The field names are the template interface documented in the README (`edition.title`,
//! `sections`, `subscriber.unsubscribe_url`…): renaming a field breaks every project's own
//! theme, so a struct here is a contract, not an implementation detail. Subscriber values are
//! slot tokens, never a person's data (see [`super::slots`]).
//!
//! Most fields borrow from the [`Edition`]: the data lives only for the two template renders
//! of its variant.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Map, Value};

use super::slots::{self, SlotKey, token};
use super::{ListIdentity, Theme};
use crate::assets::{Place, Published};
use crate::content::{Article, Edition, Fallback, Layout, Section, TitledLink};
use crate::i18n;

/// Everything the templates of one variant see.
#[derive(Serialize)]
pub(super) struct TemplateData<'a> {
    lang: &'a str,
    /// `rtl` for scripts written right to left, else `ltr`.
    dir: &'static str,
    /// Whether the variant is written right to left (`dir` is `rtl`).
    rtl: bool,
    /// The side lines start on, `left` or `right`: for `align`, `text-align`, `padding-…`.
    start: &'static str,
    /// The side lines end on, `right` or `left`.
    end: &'static str,
    /// The arrow that points onward in reading order: `→`, or `←` right to left.
    forward: &'static str,
    /// The language the intro is written in (the default language's when it fell back).
    intro_language: &'a str,
    pub(super) edition: EditionData<'a>,
    intro: Option<String>,
    sections: Vec<SectionData<'a>>,
    /// Every article's documents, each URL once, in the order of the edition.
    documents: Vec<LinkData<'a>>,
    /// The `theme` catalogue's messages, ids written with `_` for `-` (`labels.read_more`).
    labels: BTreeMap<String, String>,
    list: ListData<'a>,
    subscriber: SubscriberData,
}

/// `edition.*`: the edition's own texts in this language.
#[derive(Serialize)]
pub(super) struct EditionData<'a> {
    slug: &'a str,
    title: String,
    pub(super) subject: String,
    pub(super) preheader: Option<String>,
    /// The language the title is written in (the default language's when it fell back).
    title_language: &'a str,
    /// `YYYY-MM-DD`; the `date` helper formats it per language.
    date: String,
    languages: &'a [String],
    default_language: &'a str,
    /// Whether the theme writes its greeting line before the intro.
    greeting: bool,
    /// The header picture, when the edition has one.
    hero: Option<PictureData<'a>>,
}

/// A picture as the templates place it: its URL, alt text, and the size in CSS pixels it is
/// shown at (known for pictures compose published, absent for a URL from elsewhere).
#[derive(Clone, Serialize)]
struct PictureData<'a> {
    url: String,
    alt: &'a str,
    width: Option<u32>,
    height: Option<u32>,
}

/// An entry of `links` or `documents`, with a published local file's kind and size
/// (`PDF, 1.2 MB`).
#[derive(Clone, Serialize)]
struct LinkData<'a> {
    title: &'a str,
    url: String,
    size: Option<String>,
}

/// One entry of `sections`.
#[derive(Serialize)]
struct SectionData<'a> {
    id: &'a str,
    title: &'a str,
    /// The language of `title` (the default language's when it fell back).
    language: &'a str,
    layout: &'static str,
    is_grid: bool,
    is_cards: bool,
    columns: usize,
    /// The articles cut into rows of `columns`, for grid layouts.
    rows: Vec<Vec<ArticleData<'a>>>,
    articles: Vec<ArticleData<'a>>,
}

/// One article as a section shows it.
#[derive(Clone, Serialize)]
struct ArticleData<'a> {
    slug: &'a str,
    language: &'a str,
    fell_back: bool,
    /// The direction of the article's own language, `ltr` or `rtl`.
    dir: &'static str,
    /// The side the article's lines start on, `left` or `right`.
    start: &'static str,
    /// With subscriber placeholders turned into slot tokens.
    title: String,
    /// With subscriber placeholders turned into slot tokens.
    summary: String,
    category: Option<&'a str>,
    country: Option<&'a str>,
    /// As written, number or text.
    year: Option<String>,
    institution: Option<&'a str>,
    author: Option<&'a str>,
    contact: Option<&'a str>,
    /// The picture's URL (published for a local file).
    image: Option<String>,
    image_alt: Option<&'a str>,
    /// The picture's shown width and height in CSS pixels, when compose published it.
    image_width: Option<u32>,
    image_height: Option<u32>,
    link: Option<String>,
    links: Vec<LinkData<'a>>,
    documents: Vec<LinkData<'a>>,
    /// Markdown, with local files replaced by their published URLs; the `markdown` helper
    /// renders it.
    body: String,
    extra: &'a Map<String, Value>,
}

/// `list.*`: who sends the newsletter.
#[derive(Serialize)]
struct ListData<'a> {
    name: &'a str,
    sender: String,
    postal_address: Option<&'a str>,
    /// Without a trailing slash, so that templates can append `/archive/`.
    public_url: &'a str,
}

/// `subscriber.*`: a slot token per value, filled per recipient after rendering.
#[derive(Serialize)]
struct SubscriberData {
    name: String,
    email: String,
    unsubscribe_url: String,
    preferences_url: String,
    archive_url: String,
    attributes: BTreeMap<String, String>,
}

/// The template data of one variant, and what in it fell back to the default language.
pub(super) struct VariantData<'a> {
    pub(super) data: TemplateData<'a>,
    pub(super) fell_back: Vec<Fallback>,
    /// Theme words missing from the language's catalogue, each shown in another language.
    pub(super) theme_fell_back: Vec<i18n::Fallback>,
}

/// Picks a translated text or the default language's, recording each fallback.
struct Picker<'a> {
    edition: &'a Edition,
    language: &'a str,
    fell_back: Vec<Fallback>,
}

impl Picker<'_> {
    fn is_default(&self) -> bool {
        self.language == self.edition.default_language
    }

    fn fell_back(&mut self, part: String, file: PathBuf) {
        self.fell_back.push(Fallback { part, file });
    }

    /// `own` when the language has it, else `base`, which counts as a fallback in any
    /// language but the default.
    fn pick(&mut self, name: &str, own: Option<String>, base: Option<String>) -> Option<String> {
        if own.is_some() {
            return own;
        }
        if !self.is_default() && base.is_some() {
            self.fell_back(name.to_string(), self.edition.manifest_path.clone());
        }
        base
    }
}

/// The template data of `language`, with a slot for each of `attributes`.
pub(super) fn variant_data<'a>(
    edition: &'a Edition,
    list: &'a ListIdentity,
    theme: &Theme,
    language: &'a str,
    attributes: &BTreeSet<String>,
    assets: &Published,
) -> VariantData<'a> {
    let mut picker = Picker {
        edition,
        language,
        fell_back: Vec::new(),
    };
    let (mut edition_data, intro, intro_language) = edition_data(&mut picker);
    edition_data.hero = edition
        .hero
        .as_ref()
        .map(|h| picture(&h.image, &h.alt, Place::Hero, assets));
    let (messages, theme_fell_back) = theme.catalogues.messages(language, "theme");
    let labels = messages
        .into_iter()
        .map(|(id, text)| (id.replace('-', "_"), text))
        .collect();
    let sections: Vec<SectionData<'a>> = edition
        .sections
        .iter()
        .map(|section| section_data(section, &mut picker, assets))
        .collect();
    let direction = i18n::direction(language);
    let data = TemplateData {
        lang: language,
        dir: direction.as_str(),
        rtl: direction == i18n::Dir::Rtl,
        start: direction.start(),
        end: direction.end(),
        forward: match direction {
            i18n::Dir::Ltr => "→",
            i18n::Dir::Rtl => "←",
        },
        intro_language,
        edition: edition_data,
        intro,
        documents: documents(&sections),
        sections,
        labels,
        list: ListData {
            name: &list.name,
            sender: list.sender_name(),
            postal_address: list.postal_address.as_deref(),
            public_url: list.public_url.trim_end_matches('/'),
        },
        subscriber: subscriber_data(attributes),
    };
    VariantData {
        data,
        fell_back: picker.fell_back,
        theme_fell_back,
    }
}

/// The edition's own texts in the picker's language, and its intro.
fn edition_data<'a>(picker: &mut Picker<'a>) -> (EditionData<'a>, Option<String>, &'a str) {
    let edition = picker.edition;
    let default = &edition.default_language;
    let base = edition.texts.get(default).cloned().unwrap_or_default();
    let own = edition
        .texts
        .get(picker.language)
        .cloned()
        .unwrap_or_default();
    // The language a picked text is written in: the variant's own, or the default's.
    let language_of = |own: bool| {
        if own {
            picker.language
        } else {
            default.as_str()
        }
    };
    let title_language = language_of(own.title.is_some());
    let intro_language = language_of(own.intro.is_some());
    let title = picker
        .pick("title", own.title, base.title)
        .unwrap_or_default();
    let subject = picker
        .pick("subject", own.subject, base.subject)
        .unwrap_or_default();
    let preheader = picker.pick("preheader", own.preheader, base.preheader);
    let intro = picker.pick("intro", own.intro, base.intro);
    let date = edition.date;
    let data = EditionData {
        slug: &edition.slug,
        title,
        subject,
        preheader,
        title_language,
        date: format!(
            "{:04}-{:02}-{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        ),
        languages: &edition.languages,
        default_language: default,
        greeting: edition.greeting,
        hero: None,
    };
    (data, intro, intro_language)
}

/// Every article's documents, each URL once, in the order of the edition.
fn documents<'a>(sections: &[SectionData<'a>]) -> Vec<LinkData<'a>> {
    let mut seen = BTreeSet::new();
    sections
        .iter()
        .flat_map(|s| &s.articles)
        .flat_map(|a| &a.documents)
        .filter(|d| seen.insert(d.url.clone()))
        .cloned()
        .collect()
}

/// One section in the picker's language, with its articles.
fn section_data<'a>(
    section: &'a Section,
    picker: &mut Picker<'a>,
    assets: &Published,
) -> SectionData<'a> {
    let edition = picker.edition;
    let (title, title_fell_back) = section.title_in(picker.language, &edition.default_language);
    if title_fell_back && !title.is_empty() {
        picker.fell_back(
            format!("section {} title", section.id),
            edition.manifest_path.clone(),
        );
    }
    let place = match section.layout {
        Layout::Cards => Place::Card,
        Layout::Grid => Place::Tile {
            columns: section.columns,
        },
    };
    let mut articles = Vec::new();
    for slug in &section.articles {
        let Some((article, article_fell_back)) = edition.article(slug, picker.language) else {
            continue;
        };
        if article_fell_back {
            picker.fell_back(format!("article {slug}"), article.path.clone());
        }
        articles.push(article_data(
            slug,
            article,
            article_fell_back,
            place,
            assets,
        ));
    }
    let columns = usize::from(section.columns.max(1));
    SectionData {
        id: &section.id,
        title,
        language: if title_fell_back {
            &edition.default_language
        } else {
            picker.language
        },
        layout: match section.layout {
            Layout::Cards => "cards",
            Layout::Grid => "grid",
        },
        is_grid: section.layout == Layout::Grid,
        is_cards: section.layout == Layout::Cards,
        columns,
        rows: articles.chunks(columns).map(<[_]>::to_vec).collect(),
        articles,
    }
}

fn article_data<'a>(
    slug: &'a str,
    article: &'a Article,
    fell_back: bool,
    place: Place,
    assets: &Published,
) -> ArticleData<'a> {
    let m = &article.meta;
    let direction = i18n::direction(&article.language);
    let image = m
        .image
        .as_deref()
        .map(|i| picture(i, m.image_alt.as_deref().unwrap_or(""), place, assets));
    ArticleData {
        slug,
        language: &article.language,
        fell_back,
        dir: direction.as_str(),
        start: direction.start(),
        title: slots::substitute_placeholders(&m.title),
        summary: slots::substitute_placeholders(&m.summary),
        category: m.category.as_deref(),
        country: m.country.as_deref(),
        year: m.year.as_ref().map(ToString::to_string),
        institution: m.institution.as_deref(),
        author: m.author.as_deref(),
        contact: m.contact.as_deref(),
        image_width: image.as_ref().and_then(|i| i.width),
        image_height: image.as_ref().and_then(|i| i.height),
        image: image.map(|i| i.url),
        image_alt: m.image_alt.as_deref(),
        link: m.link.as_deref().map(|l| link_url(l, assets)),
        links: m.links.iter().map(|l| link_data(l, assets)).collect(),
        documents: m.documents.iter().map(|l| link_data(l, assets)).collect(),
        body: super::local_urls::rewrite(&article.body, place, assets),
        extra: &article.extra,
    }
}

/// A picture as written (`images/x.jpg` or a URL) as the templates place it.
fn picture<'a>(reference: &str, alt: &'a str, place: Place, assets: &Published) -> PictureData<'a> {
    match assets.picture(reference, place) {
        Some(asset) => {
            let shown = asset.shown_at(place);
            PictureData {
                url: asset.url.clone(),
                alt,
                width: shown.map(|(w, _)| w),
                height: shown.map(|(_, h)| h),
            }
        }
        None => PictureData {
            url: reference.to_string(),
            alt,
            width: None,
            height: None,
        },
    }
}

/// A link's URL: a published local file's, or the link as written.
fn link_url(reference: &str, assets: &Published) -> String {
    assets
        .document(reference)
        .map_or_else(|| reference.to_string(), |a| a.url.clone())
}

fn link_data<'a>(link: &'a TitledLink, assets: &Published) -> LinkData<'a> {
    let published = assets.document(&link.url);
    LinkData {
        title: &link.title,
        url: published.map_or_else(|| link.url.clone(), |a| a.url.clone()),
        size: published.map(|a| a.label.clone()),
    }
}

fn subscriber_data(attributes: &BTreeSet<String>) -> SubscriberData {
    SubscriberData {
        name: token(&SlotKey::Name, ""),
        email: token(&SlotKey::Email, ""),
        unsubscribe_url: token(&SlotKey::UnsubscribeUrl, ""),
        preferences_url: token(&SlotKey::PreferencesUrl, ""),
        archive_url: token(&SlotKey::ArchiveUrl, ""),
        attributes: attributes
            .iter()
            .map(|name| {
                let slot = token(&SlotKey::Attribute(name.clone()), "");
                (name.clone(), slot)
            })
            .collect(),
    }
}

/// Attribute names templates or content refer to as `subscriber.attributes.NAME`: the
/// template data gets a slot for each, so strict mode accepts them.
pub(super) fn referenced_attributes(edition: &Edition, theme: &Theme) -> BTreeSet<String> {
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
