//! Finding the local files an edition refers to: the articles' `image`, `link`, `links` and
//! `documents`, the pictures and links of their Markdown, and the edition's `hero`, each
//! with the file and line that names it and the place in the layout that decides its width.

use std::path::PathBuf;

use pulldown_cmark::{Event, Options, Parser, Tag};

use super::{Focus, Issue, Place, is_local};
use crate::content::{Article, Edition, Layout};
use crate::diagnostic::line_of;

/// What a local file is used as.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Use {
    /// Shown as a picture at `place`, cropped to `focus` when given.
    Picture { place: Place, focus: Option<Focus> },
    /// Linked to: published as it is.
    Document,
}

/// One mention of a local file.
#[derive(Debug, Clone)]
pub(super) struct Mention {
    /// The path as written, relative to the edition folder.
    pub(super) reference: String,
    pub(super) used_as: Use,
    /// The file that names it (an article or edition.toml).
    pub(super) file: PathBuf,
    /// 1-based line there.
    pub(super) line: Option<usize>,
}

/// Every local file the edition mentions, and the problems found on the way (a bad
/// `image_focus`).
pub(super) fn mentions(edition: &Edition) -> (Vec<Mention>, Vec<Issue>) {
    let mut found = Vec::new();
    let mut issues = Vec::new();
    if let Some(hero) = edition.hero.as_ref().filter(|h| is_local(&h.image)) {
        found.push(Mention {
            reference: hero.image.trim().to_string(),
            used_as: Use::Picture {
                place: Place::Hero,
                focus: None,
            },
            file: edition.manifest_path.clone(),
            line: Some(hero.line),
        });
    }
    for section in &edition.sections {
        let place = match section.layout {
            Layout::Cards => Place::Card,
            Layout::Grid => Place::Tile {
                columns: section.columns,
            },
        };
        let articles = section
            .articles
            .iter()
            .filter_map(|slug| edition.articles.get(slug))
            .flat_map(|versions| versions.values());
        for article in articles {
            in_article(article, place, &mut found, &mut issues);
        }
    }
    (found, issues)
}

/// The mentions of one article shown at `place`.
fn in_article(article: &Article, place: Place, found: &mut Vec<Mention>, issues: &mut Vec<Issue>) {
    let m = &article.meta;
    let line = |key: &str| article.key_lines.get(key).copied();
    let mut mention = |reference: &str, used_as: Use, line: Option<usize>| {
        if is_local(reference) {
            found.push(Mention {
                reference: reference.trim().to_string(),
                used_as,
                file: article.path.clone(),
                line,
            });
        }
    };
    if let Some(image) = &m.image {
        let focus = m.image_focus.as_deref().and_then(|text| {
            let focus = Focus::parse(text);
            if focus.is_none() {
                issues.push(Issue::error(
                    "image-focus",
                    &article.path,
                    line("image_focus"),
                    format!(
                        "image_focus `{text}` is not a place; write center, top, bottom, left, \
                         right, or two percentages such as \"50% 30%\" (from the left, from the top)"
                    ),
                ));
            }
            focus
        });
        mention(image, Use::Picture { place, focus }, line("image"));
    }
    if let Some(link) = &m.link {
        mention(link, Use::Document, line("link"));
    }
    for (key, list) in [("links", &m.links), ("documents", &m.documents)] {
        for l in list {
            mention(&l.url, Use::Document, line(key));
        }
    }
    let body = Parser::new_ext(&article.body, Options::ENABLE_STRIKETHROUGH).into_offset_iter();
    // The line is counted only for links and pictures: counting it for every event made the
    // scan quadratic in the body's length.
    let at = |start: usize| Some(article.body_line + line_of(&article.body, start) - 1);
    for (event, range) in body {
        match event {
            Event::Start(Tag::Image { dest_url, .. }) => mention(
                &dest_url,
                Use::Picture { place, focus: None },
                at(range.start),
            ),
            Event::Start(Tag::Link { dest_url, .. }) => {
                mention(&dest_url, Use::Document, at(range.start))
            }
            _ => {}
        }
    }
}
