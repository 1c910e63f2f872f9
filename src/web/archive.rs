//! `/archive/`: the web versions of editions, as `compose` wrote them into
//! `[server] archive_dir` (`<slug>/<lang>/archive.html`).
//!
//! Only published editions are public: one that was sent (a campaign of it delivered at least
//! one message, per the database), or one the operator published explicitly by creating the
//! file `<slug>/published` in the archive folder. A draft that `compose` wrote is not: it may
//! hold embargoed news or mistakes. Without the database (missing, unavailable) the archive
//! answers 503, since it cannot tell what was sent.
//!
//! Path traversal is impossible by construction: the slug and language from the URL must be
//! plain names (letters, digits, `-`, `_`, `.`, not starting with a dot), so they cannot hold
//! `/`, `\` or `..`; and the file finally opened must still lie inside the archive folder once
//! symbolic links are resolved.

use std::path::{Path as FsPath, PathBuf};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::pages::{self, escape};
use super::{AppState, Denied, PageError, html};

/// The archive pages are the edition's own HTML: inline styles (MJML writes them) and the
/// edition's images, but still no script, frame, font or form.
const ARCHIVE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A name that can only mean one folder: no separators, no `..`, nothing hidden.
pub(super) fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The file whose presence publishes an edition that was not sent.
const PUBLISHED_MARKER: &str = "published";

/// Whether `slug` may be shown: sent, or marked published in the archive folder.
fn is_public(dir: &FsPath, slug: &str, sent: &[String]) -> bool {
    sent.iter().any(|s| s == slug) || dir.join(slug).join(PUBLISHED_MARKER).is_file()
}

/// Every (slug, languages) in the archive folder that is public, sorted.
fn public_editions(dir: &FsPath, sent: &[String]) -> Vec<(String, Vec<String>)> {
    editions(dir)
        .into_iter()
        .filter(|(slug, _)| is_public(dir, slug, sent))
        .collect()
}

/// Every (slug, languages) in the archive folder, sorted.
fn editions(dir: &FsPath) -> Vec<(String, Vec<String>)> {
    let names = |d: &FsPath| -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| plain_name(n))
            .collect();
        out.sort();
        out
    };
    names(dir)
        .into_iter()
        .filter_map(|slug| {
            let langs: Vec<String> = names(&dir.join(&slug))
                .into_iter()
                .filter(|l| resolve(dir, &slug, l).is_some())
                .collect();
            (!langs.is_empty()).then_some((slug, langs))
        })
        .collect()
}

/// The file for `slug`/`lang`, if it exists inside the archive folder.
fn resolve(dir: &FsPath, slug: &str, lang: &str) -> Option<PathBuf> {
    if !plain_name(slug) || !plain_name(lang) {
        return None;
    }
    let root = dir.canonicalize().ok()?;
    let file = root
        .join(slug)
        .join(lang)
        .join("archive.html")
        .canonicalize()
        .ok()?;
    // A symbolic link inside the folder must not lead out of it.
    file.starts_with(&root).then_some(file)
}

/// `GET /archive` → `/archive/`.
pub(super) async fn redirect(State(state): State<AppState>) -> Redirect {
    Redirect::permanent(&format!("{}/archive/", state.settings().base_path))
}

/// `GET /archive/`: every edition and its languages.
pub(super) async fn index(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let lang = state.browser_lang(&headers);
    let s = state.pages(lang);
    let sent = state
        .read(|store| store.sent_editions())
        .await
        .map_err(|why| state.refuse(lang, why))?;
    let dir = state.settings().archive_dir.clone();
    let found = tokio::task::spawn_blocking(move || public_editions(&dir, &sent))
        .await
        .unwrap_or_default();
    let base = escape(&state.settings().base_path);
    let body = if found.is_empty() {
        pages::para(&s.html("archive-empty"))
    } else {
        let mut items = String::from("<ul>\n");
        for (slug, langs) in &found {
            let words = &state.settings().words;
            let links: Vec<String> = langs
                .iter()
                .map(|l| {
                    // Each language under its own name when the pages know it (`العربية`),
                    // else its tag.
                    let name = words
                        .lang(l)
                        .filter(|found| found.tag().eq_ignore_ascii_case(l))
                        .map_or_else(|| escape(l), |found| words.pages(found).html("language-name"));
                    format!(
                        "<a href=\"{base}/archive/{s}/{l}/\" hreflang=\"{l}\" lang=\"{l}\">{name}</a>",
                        s = escape(slug),
                        l = escape(l)
                    )
                })
                .collect();
            items.push_str(&format!(
                "<li>{} — {}</li>\n",
                escape(slug),
                links.join(" · ")
            ));
        }
        items.push_str("</ul>");
        items
    };
    let mut response = html(
        StatusCode::OK,
        pages::page(
            lang,
            &state.settings().site_name,
            &s.text("archive-title"),
            &body,
        ),
    );
    // Public and the same for everyone: a proxy may cache it briefly.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}

/// `GET /archive/{slug}/{lang}[/]`: one edition's web version.
pub(super) async fn edition(
    State(state): State<AppState>,
    Path((slug, lang)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let sent = state
        .read(|store| store.sent_editions())
        .await
        .map_err(|why| state.refuse(state.browser_lang(&headers), why))?;
    let dir = state.settings().archive_dir.clone();
    let file = tokio::task::spawn_blocking(move || {
        // `resolve` first: it refuses names that are not plain before any is used in a path.
        let found = resolve(&dir, &slug, &lang)?;
        is_public(&dir, &slug, &sent).then_some(())?;
        std::fs::read(found).ok()
    })
    .await
    .ok()
    .flatten();
    let Some(bytes) = file else {
        return Err(state.refuse(state.browser_lang(&headers), Denied::NotFound));
    };
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, ARCHIVE_CSP),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_is_impossible() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("out");
        std::fs::create_dir_all(root.join("ed/en")).expect("mkdir");
        std::fs::write(root.join("ed/en/archive.html"), "x").expect("write");
        std::fs::write(dir.path().join("secret.html"), "s").expect("write");
        assert!(resolve(&root, "ed", "en").is_some());
        for (slug, lang) in [
            ("..", "en"),
            ("ed", ".."),
            ("..%2F..", "en"),
            ("ed/../..", "en"),
            (".hidden", "en"),
            ("", "en"),
            ("ed", "en\\..\\.."),
        ] {
            assert!(resolve(&root, slug, lang).is_none(), "{slug}/{lang}");
        }
        #[cfg(unix)]
        {
            std::fs::create_dir_all(dir.path().join("elsewhere/en")).expect("mkdir");
            std::fs::write(dir.path().join("elsewhere/en/archive.html"), "s").expect("write");
            std::os::unix::fs::symlink(dir.path().join("elsewhere"), root.join("link"))
                .expect("symlink");
            assert!(resolve(&root, "link", "en").is_none());
        }
        assert_eq!(
            editions(&root),
            vec![("ed".to_string(), vec!["en".to_string()])]
        );
    }
}
