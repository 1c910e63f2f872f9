//! Local pictures and documents of an edition, published beside its web version.
//!
//! An article may name `images/field-visit.jpg` or `files/factsheet.pdf` instead of a URL. Mail
//! cannot carry a path, so before rendering, [`publish`] turns each local file into a file of
//! the edition's published folder (`<out>/assets/`, which `bulletin serve` serves under
//! `/archive/<slug>/assets/`) and the renderer links it by absolute URL:
//!
//! - pictures are made email-ready by [`picture`]: upright, metadata stripped, resized to the
//!   width the layout shows them at (twice that for high-density screens), JPEG or PNG;
//! - documents are copied as they are.
//!
//! Every published name carries a hash (`field-visit-3f9c…1a.jpg`): of the source bytes and
//! the processing settings for a picture, of the content for a document. A name therefore
//! always means the same bytes, which is what lets `serve` mark them `immutable`, and it is
//! also the cache: a picture whose name already exists is not processed again. Pictures are
//! processed in parallel, one worker per core.
//!
//! Problems with the files themselves (missing, unreadable, too heavy) are [`Issue`]s that the
//! renderer adds to the lint report with the file and line that named them; only a failure
//! to write the output is an [`AssetError`].

mod collect;
mod picture;

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use collect::{Mention, Use};
pub use picture::Focus;

use crate::content::Edition;

/// The folder, inside an edition's published folder, that holds its pictures and documents.
pub const FOLDER: &str = "assets";

/// A picture over this many bytes after processing is reported: it slows the email down.
pub const PICTURE_WARN_BYTES: u64 = 300 * 1000;

/// The pictures of one email together over this many bytes are reported.
pub const TOTAL_WARN_BYTES: u64 = 1000 * 1000;

/// A linked document over this many bytes is reported: readers on a phone pay for it.
pub const DOCUMENT_WARN_BYTES: u64 = 10 * 1000 * 1000;

/// The largest source file read (a picture or a document). A newsletter links reports, not
/// archives; a bigger file is a mistake better caught before it is copied and published.
pub const MAX_SOURCE_BYTES: u64 = 100 * 1024 * 1024;

/// Changes whenever processing changes what a picture's bytes are, so that a cached output
/// made by an older bulletin is not taken for the new one.
const PIPELINE: &str = "bulletin-picture-1";

/// What stops publishing: the output cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    /// The published folder or a file in it cannot be written.
    #[error("cannot write {path}: {source}; check that the folder exists and is writable")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Where a picture is shown, which decides how wide it is (the built-in theme's widths).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Place {
    /// A full-width card: its picture and the pictures of its text.
    Card,
    /// A grid tile of a section with `columns` columns.
    Tile {
        /// 2 or 3.
        columns: u8,
    },
    /// The edition's header picture.
    Hero,
}

impl Place {
    /// The width in CSS pixels the layout shows a picture at: the 640 px body less the
    /// paddings of the blocks around it (card: 8 + 24 px a side; tile: the 620 px wrapper cut
    /// into columns, less 10 + 8 px a side).
    pub fn css_width(self) -> u32 {
        match self {
            Self::Card => 576,
            Self::Tile { columns } => 620 / u32::from(columns.max(1)) - 36,
            Self::Hero => 640,
        }
    }

    /// The most pixels a picture shown here needs: twice its CSS width, for high-density
    /// screens.
    pub fn pixel_width(self) -> u32 {
        self.css_width() * 2
    }
}

/// One published file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// Its absolute URL.
    pub url: String,
    /// The published file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Width and height in pixels, for a picture.
    pub pixels: Option<(u32, u32)>,
    /// The kind and size a reader sees next to a link: `PDF, 1.2 MB`.
    pub label: String,
}

impl Asset {
    /// The size in CSS pixels a picture is shown at in `place`: the place's width, or the
    /// picture's own when it is narrower (never enlarged), and the height that keeps its shape.
    pub fn shown_at(&self, place: Place) -> Option<(u32, u32)> {
        let (w, h) = self.pixels?;
        let width = place.css_width().min(w).max(1);
        let height = u64::from(h) * u64::from(width) / u64::from(w.max(1));
        Some((width, u32::try_from(height).unwrap_or(u32::MAX).max(1)))
    }
}

/// A problem with a local file, for the lint report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Whether it stops `compose` (else a warning).
    pub error: bool,
    /// Short stable name: `asset-missing`, `asset-unreadable`, `asset-path`, `image-focus`,
    /// `image-size`, `image-weight`, `document-size`.
    pub code: &'static str,
    /// The file that names the asset.
    pub file: PathBuf,
    /// 1-based line there.
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Issue {
    fn error(code: &'static str, file: &Path, line: Option<usize>, message: String) -> Self {
        Self {
            error: true,
            code,
            file: file.to_path_buf(),
            line,
            message,
        }
    }

    fn warning(code: &'static str, file: &Path, line: Option<usize>, message: String) -> Self {
        Self {
            error: false,
            ..Self::error(code, file, line, message)
        }
    }
}

/// Where published files go and the URL they are reached at.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The folder the files are written to (`<out>/assets`).
    pub dir: PathBuf,
    /// The URL of that folder, without a trailing slash.
    pub url: String,
}

impl Destination {
    /// The assets folder of an edition published into `out` (`out/<slug>` by default), reached
    /// at `{public_url}/archive/{slug}/assets/`, or at `base_url` when the files are hosted
    /// elsewhere (`[assets] base_url`).
    pub fn new(out: &Path, public_url: &str, slug: &str, base_url: Option<&str>) -> Self {
        let url = match base_url.map(str::trim).filter(|b| !b.is_empty()) {
            Some(base) => base.trim_end_matches('/').to_string(),
            None => format!(
                "{}/archive/{slug}/{FOLDER}",
                public_url.trim().trim_end_matches('/')
            ),
        };
        Self {
            dir: out.join(FOLDER),
            url,
        }
    }
}

/// The published files of an edition, by the reference that named them.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// Pictures by (reference, place).
    pictures: BTreeMap<(String, Place), Asset>,
    /// Documents by reference.
    documents: BTreeMap<String, Asset>,
    /// What is wrong with the files, for the lint report.
    pub issues: Vec<Issue>,
    /// The URL of the published folder (see [`Destination::url`]).
    pub url: String,
}

impl Published {
    /// The picture `reference` published for `place`.
    pub fn picture(&self, reference: &str, place: Place) -> Option<&Asset> {
        self.pictures.get(&(reference.trim().to_string(), place))
    }

    /// The document `reference` (a file that is linked, not shown).
    pub fn document(&self, reference: &str) -> Option<&Asset> {
        self.documents.get(reference.trim())
    }

    /// Whether nothing local was published or reported.
    pub fn is_empty(&self) -> bool {
        self.pictures.is_empty() && self.documents.is_empty() && self.issues.is_empty()
    }

    /// The bytes of every distinct published picture: the weight of the email's images.
    pub fn picture_bytes(&self) -> u64 {
        let mut seen = std::collections::BTreeSet::new();
        self.pictures
            .values()
            .filter(|a| seen.insert(&a.path))
            .map(|a| a.bytes)
            .sum()
    }
}

/// Whether `reference` names a file of the edition rather than a place on the web: no
/// scheme, not an anchor, not a subscriber placeholder.
pub fn is_local(reference: &str) -> bool {
    let r = reference.trim();
    let scheme = r.split_once(':').is_some_and(|(s, _)| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    !r.is_empty()
        && !scheme
        && !r.starts_with(['/', '#', '?', '\\'])
        && !r.starts_with("{{")
        && !r.to_ascii_lowercase().starts_with("bxslot")
}

/// Every local file `edition` names, as (reference, where a picture is shown or `None` for a
/// document, the file and line naming it): what a render must find published.
pub(crate) fn mentioned(edition: &Edition) -> Vec<(String, Option<Place>, PathBuf, Option<usize>)> {
    collect::mentions(edition)
        .0
        .into_iter()
        .map(|m| {
            let place = match m.used_as {
                Use::Picture { place, .. } => Some(place),
                Use::Document => None,
            };
            (m.reference, place, m.file, m.line)
        })
        .collect()
}

/// One unit of work: a file processed one way, for every mention that needs it that way.
struct Job {
    reference: String,
    used_as: Use,
    mentions: Vec<Mention>,
}

/// Publishes every local file `edition` refers to into `to`, reusing what an earlier run
/// published, and reports what is wrong with them.
pub fn publish(edition: &Edition, to: &Destination) -> Result<Published, AssetError> {
    let (mentions, mut issues) = collect::mentions(edition);
    let mut jobs: Vec<Job> = Vec::new();
    for m in mentions {
        match jobs
            .iter_mut()
            .find(|j| j.reference == m.reference && j.used_as == m.used_as)
        {
            Some(job) => job.mentions.push(m),
            None => jobs.push(Job {
                reference: m.reference.clone(),
                used_as: m.used_as,
                mentions: vec![m],
            }),
        }
    }
    let mut published = Published {
        url: to.url.clone(),
        ..Published::default()
    };
    if jobs.is_empty() {
        published.issues = issues;
        return Ok(published);
    }
    std::fs::create_dir_all(&to.dir).map_err(|source| AssetError::Write {
        path: to.dir.clone(),
        source,
    })?;
    for (job, outcome) in jobs.iter().zip(run_parallel(edition, to, &jobs)) {
        match outcome? {
            Ok(asset) => {
                weigh(job, &asset, &mut issues);
                match job.used_as {
                    Use::Picture { place, .. } => {
                        published
                            .pictures
                            .insert((job.reference.clone(), place), asset);
                    }
                    Use::Document => {
                        published.documents.insert(job.reference.clone(), asset);
                    }
                }
            }
            Err((code, message)) => {
                // Each place that names the file is told (the translations too).
                for m in &job.mentions {
                    issues.push(Issue::error(code, &m.file, m.line, message.clone()));
                }
            }
        }
    }
    let total = published.picture_bytes();
    if total > TOTAL_WARN_BYTES {
        issues.push(Issue::warning(
            "image-weight",
            &edition.manifest_path,
            None,
            format!(
                "the pictures of this email weigh {} together; readers on a phone wait for all \
                 of them: use fewer, or crop them with image_focus",
                size_text(total)
            ),
        ));
    }
    published.issues = issues;
    Ok(published)
}

/// The size warnings of one published file.
fn weigh(job: &Job, asset: &Asset, issues: &mut Vec<Issue>) {
    let first = &job.mentions[0];
    let (limit, code, advice) = match job.used_as {
        Use::Picture { .. } => (
            PICTURE_WARN_BYTES,
            "image-size",
            "a busy photo compresses badly; crop it with image_focus or choose a calmer one",
        ),
        Use::Document => (
            DOCUMENT_WARN_BYTES,
            "document-size",
            "readers on a phone pay for every megabyte; publish a lighter version",
        ),
    };
    if asset.bytes > limit {
        issues.push(Issue::warning(
            code,
            &first.file,
            first.line,
            format!(
                "`{}` is still {} after processing (over {}); {advice}",
                job.reference,
                size_text(asset.bytes),
                size_text(limit)
            ),
        ));
    }
}

/// The outcome of each job, in order: an asset, a problem for the report (code, message), or
/// a failure to write. Jobs are spread over one worker per core.
type Outcome = Result<Result<Asset, (&'static str, String)>, AssetError>;

fn run_parallel(edition: &Edition, to: &Destination, jobs: &[Job]) -> Vec<Outcome> {
    let workers = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(jobs.len());
    let next = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<usize, Outcome>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let outcome = run_job(edition, to, job);
                    // A poisoned lock means another worker panicked; its panic is re-raised
                    // by the scope, so this worker's result no longer matters.
                    if let Ok(mut r) = results.lock() {
                        r.insert(i, outcome);
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    (0..jobs.len())
        .map(|i| {
            results.remove(&i).unwrap_or_else(|| {
                Ok(Err((
                    "asset-unreadable",
                    "processing this file failed unexpectedly".into(),
                )))
            })
        })
        .collect()
}

/// Publishes one file.
fn run_job(edition: &Edition, to: &Destination, job: &Job) -> Outcome {
    let source = match source_path(&edition.dir, &job.reference) {
        Ok(p) => p,
        Err(problem) => return Ok(Err(problem)),
    };
    let bytes = match read_source(&source, &job.reference) {
        Ok(b) => b,
        Err(problem) => return Ok(Err(problem)),
    };
    let stem = plain_stem(&source);
    match job.used_as {
        Use::Picture { place, focus } => publish_picture(to, job, &bytes, &stem, place, focus),
        Use::Document => {
            let extension = source
                .extension()
                .and_then(|e| e.to_str())
                .map(|e| {
                    e.chars()
                        .filter(char::is_ascii_alphanumeric)
                        .collect::<String>()
                })
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "bin".into())
                .to_ascii_lowercase();
            let name = format!("{stem}-{}.{extension}", hash16(&[&bytes]));
            let path = to.dir.join(&name);
            if !path.is_file() {
                write_atomically(&path, &bytes)?;
            }
            Ok(Ok(Asset {
                url: format!("{}/{name}", to.url),
                path,
                bytes: bytes.len() as u64,
                pixels: None,
                label: format!(
                    "{}, {}",
                    extension.to_ascii_uppercase(),
                    size_text(bytes.len() as u64)
                ),
            }))
        }
    }
}

/// Processes (or finds from an earlier run) one picture.
fn publish_picture(
    to: &Destination,
    job: &Job,
    bytes: &[u8],
    stem: &str,
    place: Place,
    focus: Option<Focus>,
) -> Outcome {
    let width = place.pixel_width();
    let focus_key = focus.map_or_else(String::new, |f| format!("{}:{}", f.x, f.y));
    let key = hash16(&[
        PIPELINE.as_bytes(),
        bytes,
        width.to_string().as_bytes(),
        focus_key.as_bytes(),
    ]);
    for extension in ["jpg", "png"] {
        let name = format!("{stem}-{key}.{extension}");
        let path = to.dir.join(&name);
        if let (Ok(meta), Ok(pixels)) = (path.metadata(), image::image_dimensions(&path)) {
            return Ok(Ok(picture_asset(to, name, path, meta.len(), pixels)));
        }
    }
    // The decoders are written to refuse bad input with an error, but one that panics on a
    // malformed file must cost this file, not the whole compose.
    let processed = std::panic::catch_unwind(|| picture::process(bytes, width, focus))
        .unwrap_or_else(|_| Err("the decoder failed on it".into()));
    let encoded = match processed {
        Ok(e) => e,
        Err(why) => {
            return Ok(Err((
                "asset-unreadable",
                format!("`{}`: {why}", job.reference),
            )));
        }
    };
    let name = format!("{stem}-{key}.{}", encoded.extension);
    let path = to.dir.join(&name);
    write_atomically(&path, &encoded.bytes)?;
    Ok(Ok(picture_asset(
        to,
        name,
        path,
        encoded.bytes.len() as u64,
        (encoded.width, encoded.height),
    )))
}

fn picture_asset(
    to: &Destination,
    name: String,
    path: PathBuf,
    bytes: u64,
    pixels: (u32, u32),
) -> Asset {
    let kind = if name.ends_with(".png") {
        "PNG"
    } else {
        "JPEG"
    };
    Asset {
        url: format!("{}/{name}", to.url),
        path,
        bytes,
        pixels: Some(pixels),
        label: format!("{kind}, {}", size_text(bytes)),
    }
}

/// The file `reference` names inside `dir`; a path that leaves the edition folder is refused
/// (an edition is published whole: it must not pull in files from elsewhere on the disk).
fn source_path(dir: &Path, reference: &str) -> Result<PathBuf, (&'static str, String)> {
    let path = reference.split(['?', '#']).next().unwrap_or(reference);
    let relative = Path::new(path);
    let escapes = relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if escapes {
        return Err((
            "asset-path",
            format!(
                "`{reference}` leaves the edition folder; copy the file into it (e.g. images/) \
                 and name it from there"
            ),
        ));
    }
    let full = dir.join(relative);
    let inside = match (full.canonicalize(), dir.canonicalize()) {
        (Ok(file), Ok(root)) => file.starts_with(root),
        _ => true, // missing: said below
    };
    if !inside {
        return Err((
            "asset-path",
            format!(
                "`{reference}` is a link to a file outside the edition folder; copy the file \
                 into the folder instead"
            ),
        ));
    }
    if !full.is_file() {
        return Err((
            "asset-missing",
            format!(
                "`{reference}`: no such file in the edition folder {}; check the name (paths \
                 are relative to the folder holding edition.toml), or use an https:// URL",
                dir.display()
            ),
        ));
    }
    Ok(full)
}

/// Reads a source file, refusing one over [`MAX_SOURCE_BYTES`] before reading it.
fn read_source(path: &Path, reference: &str) -> Result<Vec<u8>, (&'static str, String)> {
    let unreadable = |e: std::io::Error| {
        (
            "asset-unreadable",
            format!("`{reference}`: cannot read it: {e}"),
        )
    };
    let size = path.metadata().map_err(unreadable)?.len();
    if size > MAX_SOURCE_BYTES {
        return Err((
            "asset-unreadable",
            format!(
                "`{reference}` is {}; files over {} are not published: link to where it is \
                 hosted instead",
                size_text(size),
                size_text(MAX_SOURCE_BYTES)
            ),
        ));
    }
    std::fs::read(path).map_err(unreadable)
}

/// The file name's stem cut to letters, digits and `-`, so that a published name needs no
/// escaping in a URL and cannot hold a path.
fn plain_stem(path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("file");
    let mut out = String::new();
    for c in stem.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out: String = out.trim_matches('-').chars().take(48).collect();
    if out.is_empty() { "file".into() } else { out }
}

/// The first 16 hex digits of the SHA-256 of `parts`, each followed by a NUL byte.
fn hash16(parts: &[&[u8]]) -> String {
    let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for p in parts {
        h.update(p);
        h.update(&[0]);
    }
    h.finish().as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `bytes` to a temporary file beside `path` and renames it into place, so that a
/// published name never holds half a file (a reader may be fetching it while compose runs).
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), AssetError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("asset");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let failed = |source| AssetError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(failed)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        failed(e)
    })
}

/// A size as readers read it: `820 KB`, `1.2 MB` (decimal units, as file managers show).
pub fn size_text(bytes: u64) -> String {
    if bytes < 1000 * 1000 {
        format!("{} KB", bytes.div_ceil(1000).max(1))
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_references() {
        for local in ["images/a.jpg", "a.png", "files/fact sheet.pdf", "./x.pdf"] {
            assert!(is_local(local), "{local}");
        }
        for remote in [
            "https://x.org/a.jpg",
            "mailto:a@b.org",
            "/absolute.jpg",
            "#anchor",
            "{{subscriber.archive_url}}",
            "data:image/png;base64,AA",
            "",
        ] {
            assert!(!is_local(remote), "{remote}");
        }
    }

    #[test]
    fn paths_out_of_the_edition_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        for bad in ["../secret.jpg", "images/../../x.jpg"] {
            let (code, _) = source_path(dir.path(), bad).expect_err(bad);
            assert_eq!(code, "asset-path", "{bad}");
        }
        let (code, message) = source_path(dir.path(), "images/none.jpg").expect_err("missing");
        assert_eq!(code, "asset-missing");
        assert!(message.contains("images/none.jpg"), "{message}");
        #[cfg(unix)]
        {
            let outside = tempfile::tempdir().expect("tempdir");
            std::fs::write(outside.path().join("secret.pdf"), "x").expect("write");
            std::os::unix::fs::symlink(outside.path().join("secret.pdf"), dir.path().join("a.pdf"))
                .expect("symlink");
            let (code, _) = source_path(dir.path(), "a.pdf").expect_err("a link out");
            assert_eq!(code, "asset-path");
        }
    }

    #[test]
    fn names_and_sizes() {
        assert_eq!(
            plain_stem(Path::new("x/Field Visit (2).JPG")),
            "field-visit-2"
        );
        assert_eq!(plain_stem(Path::new("x/ééé.png")), "file");
        assert_eq!(size_text(1_234_567), "1.2 MB");
        assert_eq!(size_text(820_001), "821 KB");
        assert_eq!(Place::Card.pixel_width(), 1152);
        assert_eq!(Place::Tile { columns: 2 }.css_width(), 274);
    }
}
