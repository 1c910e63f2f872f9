//! `/archive/{slug}/assets/{name}`: the pictures and documents `compose` published beside an
//! edition's web version (`<archive_dir>/<slug>/assets/`), which its email links to.
//!
//! They are served whether or not the edition is public yet: a test copy's pictures must
//! show before the send, and a published name holds a hash of its content, so it cannot be
//! guessed from the outside. Hashed names never change content, so they are marked
//! `immutable` for a year; any other name may be replaced and is cached briefly.
//!
//! Nothing outside an assets folder is reachable: the slug and the name must be plain names
//! (no separator, no `..`, nothing hidden), and the file finally opened must still lie inside
//! the assets folder once symbolic links are resolved.

use std::path::{Path as FsPath, PathBuf};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
// The archive's rule for a name that can only mean one file of one folder.
use super::archive::plain_name;
use crate::assets::FOLDER;

/// Published files are shown, never run: no script, no plugin, and an HTML or SVG document
/// someone linked is sandboxed away from this site's pages.
const ASSET_CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox";

/// The media type of a published file, from its extension.
pub(crate) fn content_type(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match extension.as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("svg") => "image/svg+xml",
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain; charset=utf-8",
        Some("csv") => "text/csv; charset=utf-8",
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some("pptx") => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        Some("odt") => "application/vnd.oasis.opendocument.text",
        Some("zip") => "application/zip",
        _ => "application/octet-stream",
    }
}

/// Whether `name` is one `compose` gave a content hash (`stem-0123456789abcdef.ext`).
pub(crate) fn is_hashed(name: &str) -> bool {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    stem.rsplit_once('-').is_some_and(|(_, hash)| {
        hash.len() == 16 && hash.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
    })
}

/// The file `name` of the folder `dir`, if it is a plain name of a file inside it.
fn resolve(dir: &FsPath, name: &str) -> Option<PathBuf> {
    if !plain_name(name) {
        return None;
    }
    let root = dir.canonicalize().ok()?;
    let file = root.join(name).canonicalize().ok()?;
    (file.starts_with(&root) && file.is_file()).then_some(file)
}

/// Reads the published file `name` of the assets folder `dir`, with its media type.
pub(crate) async fn read(dir: &FsPath, name: &str) -> Option<(&'static str, Vec<u8>)> {
    let file = resolve(dir, name)?;
    let bytes = tokio::task::spawn_blocking(move || std::fs::read(file).ok())
        .await
        .ok()
        .flatten()?;
    Some((content_type(name), bytes))
}

/// `GET /archive/{slug}/assets/{name}`.
pub(super) async fn file(
    State(state): State<AppState>,
    Path((slug, name)): Path<(String, String)>,
) -> Response {
    if !plain_name(&slug) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let dir = state.settings().archive_dir.join(&slug).join(FOLDER);
    let Some((content_type, bytes)) = read(&dir, &name).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let cache = if is_hashed(&name) {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
            (header::CONTENT_SECURITY_POLICY, ASSET_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_hashed("field-visit-0123456789abcdef.jpg"));
        assert!(!is_hashed("field-visit.jpg"));
        assert!(!is_hashed("x-0123456789ABCDEF.jpg"));
        assert_eq!(content_type("a.PDF"), "application/pdf");
        assert_eq!(content_type("noext"), "application/octet-stream");
        for bad in ["..", ".hidden", "a/b", "a\\b", "", "%2e%2e"] {
            assert!(!plain_name(bad), "{bad}");
        }
    }
}
