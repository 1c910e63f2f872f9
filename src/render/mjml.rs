//! From the MJML the templates wrote to HTML, and the checks that run before mrml sees it.
//!
//! mrml is lenient where a theme author needs strictness (it skips unknown `mj-` elements
//! without a word) and reports some mistakes far from their cause (a misplaced closing tag
//! surfaces at an innocent element). It also recurses once per nesting level. So the MJML is
//! checked here first, and every error is traced back to the template line that wrote it.

use super::markdown;
use super::sanitise;
use super::{Finding, LintReport, RenderError, Severity, Theme};
use crate::config::line_of;
use crate::content::Edition;

/// Turns the MJML of one language variant into HTML, refusing unknown elements, misnested
/// closing tags and excessive depth first. mrml's warnings become lint findings: the HTML is
/// still usable, but the theme has a mistake to fix.
pub(super) fn to_html(
    theme: &Theme,
    layout: &str,
    mjml: &str,
    language: &str,
    report: &mut LintReport,
) -> Result<String, RenderError> {
    check_elements(theme, mjml)?;
    if let Some(offset) = mjml_too_deep(mjml) {
        return Err(RenderError::TooDeep {
            file: "generated MJML (check the templates)".into(),
            line: line_of(mjml, offset),
            limit: MAX_MJML_NESTING,
        });
    }
    let parsed = mrml::parse(mjml).map_err(|e| mjml_error(theme, mjml, &e))?;
    for w in &parsed.warnings {
        let generated = line_of(mjml, w.span.start);
        let snippet = mjml.lines().nth(generated - 1).unwrap_or("").trim();
        let (file, line) = theme
            .locate_in_context(mjml, generated)
            .map_or((None, None), |(f, l)| (Some(f), Some(l)));
        report.push(Finding {
            severity: Severity::Warning,
            code: "mjml",
            file,
            line,
            language: Some(language.to_string()),
            message: format!("mrml: {} in `{snippet}`", w.kind),
        });
    }
    let options = mrml::prelude::render::RenderOptions {
        disable_comments: true,
        social_icon_origin: None,
        // The theme uses system fonts: no request to a font service from the reader's client.
        fonts: std::collections::HashMap::new(),
    };
    parsed
        .element
        .render(&options)
        .map_err(|e| RenderError::Mjml {
            file: theme.display(layout),
            line: None,
            message: e.to_string(),
        })
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
pub(super) fn check_depth(edition: &Edition) -> Result<(), RenderError> {
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

#[cfg(test)]
mod tests {
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
