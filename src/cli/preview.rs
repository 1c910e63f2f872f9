//! `bulletin preview`: one page showing, per language, the email at desktop and phone widths,
//! the text part, the message headers and the lint report. Written to a file, or served on
//! 127.0.0.1 and re-rendered whenever a file of the edition or the theme changes.
//!
//! Changes are found by comparing file modification times and sizes on each request (the page
//! asks every second). Polling a few dozen files is cheap, needs no platform file-watching
//! API, and cannot miss an editor's save-by-rename.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context as _;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use clap::Args;

use super::compose::{Out, Publish, identity, load_and_render, sample_subscriber, templates_dir};
use super::{Context, Outcome, UsageError};
use crate::content::Edition;
use crate::render::lint::CLIP_LIMIT_BYTES;
use crate::render::{ListIdentity, RenderedEdition, Severity, Theme};

mod frames;

/// Where `--serve` listens when no address is given.
const DEFAULT_ADDR: &str = "127.0.0.1:8025";

/// Arguments of `bulletin preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The edition folder (edition.toml and articles/)
    #[arg(value_hint = clap::ValueHint::DirPath)]
    pub edition: PathBuf,
    /// Serve the preview on ADDR and re-render when a file changes [default: 127.0.0.1:8025]
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = DEFAULT_ADDR)]
    pub serve: Option<String>,
    /// Send a test copy of every language to this address through the SMTP relay, subject
    /// prefixed [TEST]; no campaign is created (repeatable)
    #[arg(long, value_name = "EMAIL")]
    pub to: Vec<String>,
    /// Without --serve, the page to write [default: out/<edition slug>/preview.html]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Which templates to use (`--templates`, else the project's `templates/`, else the built-in theme).
    #[command(flatten)]
    pub theme: super::compose::ThemeArgs,
}

/// Everything one render produced, ready to serve.
struct Rendered {
    page: String,
    emails: BTreeMap<String, String>,
    texts: BTreeMap<String, String>,
}

/// What the server keeps between requests.
struct Preview {
    edition_dir: PathBuf,
    templates: PathBuf,
    list: ListIdentity,
    /// `[assets] base_url`.
    base_url: Option<String>,
    /// Where the edition's pictures and documents were published, for `/assets/`.
    assets_dir: Option<PathBuf>,
    from: String,
    reply_to: Option<String>,
    list_id: String,
    fingerprint: Vec<(PathBuf, Option<SystemTime>, u64)>,
    version: u64,
    current: Rendered,
}

impl Preview {
    /// Re-renders when a watched file changed since the last render.
    fn refresh(&mut self) {
        let now = fingerprint(&self.edition_dir, &self.templates);
        if now != self.fingerprint {
            self.fingerprint = now;
            self.version += 1;
            self.current = self.render();
        }
    }

    fn render(&mut self) -> Rendered {
        let meta = HeaderInfo {
            from: &self.from,
            reply_to: self.reply_to.as_deref(),
            list_id: &self.list_id,
        };
        match load_and_render(
            &self.edition_dir,
            &self.templates,
            &self.list,
            publish(self.base_url.as_deref()),
            None,
        ) {
            Ok((edition, theme, rendered)) => {
                let built = build(
                    &edition,
                    &theme,
                    &rendered,
                    &self.list,
                    &meta,
                    Some(self.version),
                );
                let assets = destination(&self.list, self.base_url.as_deref(), &edition);
                // Served by this preview server at /assets/.
                let built = localise(built, &assets.url, "/assets");
                self.assets_dir = Some(assets.dir);
                built
            }
            Err(e) => Rendered {
                page: error_page(&super::describe(&e), Some(self.version)),
                emails: BTreeMap::new(),
                texts: BTreeMap::new(),
            },
        }
    }
}

/// Modification time and size of every file that can change the output.
fn fingerprint(edition: &Path, templates: &Path) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    let mut files = Vec::new();
    for dir in [
        edition.to_path_buf(),
        edition.join("articles"),
        templates.to_path_buf(),
    ] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if let Ok(meta) = entry.metadata() {
                    if meta.is_file() {
                        files.push((path, meta.modified().ok(), meta.len()));
                    }
                }
            }
        }
    }
    files.sort();
    files
}

struct HeaderInfo<'a> {
    from: &'a str,
    reply_to: Option<&'a str>,
    list_id: &'a str,
}

pub(crate) async fn run(ctx: &Context, args: PreviewArgs) -> anyhow::Result<Outcome> {
    if !args.to.is_empty() {
        let templates = templates_dir(ctx, args.theme.templates.as_deref())?;
        return super::send::test_send(ctx, &args.edition, &templates, &args.to).await;
    }
    let list = identity(ctx);
    let templates = templates_dir(ctx, args.theme.templates.as_deref())?;
    let meta = HeaderInfo {
        from: &ctx.config.list.from,
        reply_to: ctx.config.list.reply_to.as_deref(),
        list_id: &ctx.config.list.id,
    };
    let Some(addr) = args.serve else {
        let base_url = ctx.config.assets.base_url.as_deref();
        let (edition, theme, rendered) =
            load_and_render(&args.edition, &templates, &list, publish(base_url), None)?;
        let built = build(&edition, &theme, &rendered, &list, &meta, None);
        // The page is opened from the disk: the pictures too, where compose published them.
        let assets = destination(&list, base_url, &edition);
        let local = std::path::absolute(&assets.dir)
            .with_context(|| format!("cannot resolve {}", assets.dir.display()))?;
        let built = localise(built, &assets.url, &format!("file://{}", local.display()));
        let path = args
            .out
            .unwrap_or_else(|| Path::new("out").join(&edition.slug).join("preview.html"));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, built.page)
            .with_context(|| format!("cannot write {}", path.display()))?;
        ctx.info(format!(
            "preview written to {} ({})",
            path.display(),
            summary(&rendered)
        ));
        return Ok(Outcome::Success);
    };
    let mut state = Preview {
        edition_dir: args.edition.clone(),
        templates,
        list,
        base_url: ctx.config.assets.base_url.clone(),
        assets_dir: None,
        from: meta.from.to_string(),
        reply_to: meta.reply_to.map(str::to_string),
        list_id: meta.list_id.to_string(),
        fingerprint: Vec::new(),
        version: 0,
        current: Rendered {
            page: String::new(),
            emails: BTreeMap::new(),
            texts: BTreeMap::new(),
        },
    };
    // A broken edition at start is an input error; later breakage is shown on the page.
    load_and_render(
        &state.edition_dir,
        &state.templates,
        &state.list,
        publish(state.base_url.as_deref()),
        None,
    )?;
    state.refresh();
    serve(&addr, Arc::new(Mutex::new(state)), ctx).await
}

fn summary(rendered: &RenderedEdition) -> String {
    format!(
        "{} language(s), lint: {} error(s), {} warning(s)",
        rendered.variants.len(),
        rendered.lint.errors(),
        rendered.lint.warnings()
    )
}

type Shared = Arc<Mutex<Preview>>;

async fn serve(addr: &str, state: Shared, ctx: &Context) -> anyhow::Result<Outcome> {
    let app = axum::Router::new()
        .route("/", axum::routing::get(page))
        .route("/version", axum::routing::get(version))
        .route("/email/{lang}", axum::routing::get(email))
        .route("/text/{lang}", axum::routing::get(text))
        .route("/assets/{name}", axum::routing::get(asset))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| UsageError(format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr().context("no local address")?;
    // Always printed, even with --quiet: it is how a person (or a test) finds the page.
    eprintln!("preview: serving http://{local}/ (Ctrl-C to stop)");
    ctx.info("preview: the page re-renders when a file of the edition or theme changes");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the preview server stopped")?;
    Ok(Outcome::Success)
}

fn with_state<T>(state: &Shared, f: impl FnOnce(&mut Preview) -> T) -> Result<T, StatusCode> {
    let mut guard = state
        .lock()
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    guard.refresh();
    Ok(f(&mut guard))
}

fn html(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn page(State(state): State<Shared>) -> Response {
    match with_state(&state, |p| p.current.page.clone()) {
        Ok(body) => html(body),
        Err(code) => code.into_response(),
    }
}

async fn version(State(state): State<Shared>) -> Response {
    match with_state(&state, |p| p.version.to_string()) {
        Ok(v) => ([(header::CACHE_CONTROL, "no-store")], v).into_response(),
        Err(code) => code.into_response(),
    }
}

async fn email(State(state): State<Shared>, UrlPath(lang): UrlPath<String>) -> Response {
    match with_state(&state, |p| p.current.emails.get(&lang).cloned()) {
        Ok(Some(body)) => html(body),
        Ok(None) => (StatusCode::NOT_FOUND, format!("no `{lang}` variant\n")).into_response(),
        Err(code) => code.into_response(),
    }
}

async fn text(State(state): State<Shared>, UrlPath(lang): UrlPath<String>) -> Response {
    match with_state(&state, |p| p.current.texts.get(&lang).cloned()) {
        Ok(Some(body)) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, format!("no `{lang}` variant\n")).into_response(),
        Err(code) => code.into_response(),
    }
}

/// The preview publishes where `compose` does by default, `out/<slug>`.
fn publish(base_url: Option<&str>) -> Publish<'_> {
    Publish {
        out: Out::Under(Path::new("out")),
        base_url,
    }
}

/// Where the preview published the edition's files and the URL the email links them at.
fn destination(
    list: &ListIdentity,
    base_url: Option<&str>,
    edition: &Edition,
) -> crate::assets::Destination {
    let folder = publish(base_url).out.folder(edition);
    crate::assets::Destination::new(&folder, &list.public_url, &edition.slug, base_url)
}

/// The preview with the published files' URL replaced by `local`, so that it shows the
/// processed pictures before they are on the web (nothing is uploaded by a preview).
fn localise(built: Rendered, public: &str, local: &str) -> Rendered {
    let (from, to) = (format!("{public}/"), format!("{local}/"));
    let swap = |m: BTreeMap<String, String>| -> BTreeMap<String, String> {
        m.into_iter()
            .map(|(k, v)| (k, v.replace(&from, &to)))
            .collect()
    };
    Rendered {
        page: built.page.replace(&from, &to),
        emails: swap(built.emails),
        texts: built.texts,
    }
}

/// `GET /assets/{name}`: a published picture or document, for the preview's frames. The name
/// must be a plain file name: nothing outside the edition's assets folder is served.
async fn asset(State(state): State<Shared>, UrlPath(name): UrlPath<String>) -> Response {
    let dir = match with_state(&state, |p| p.assets_dir.clone()) {
        Ok(Some(dir)) => dir,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(code) => return code.into_response(),
    };
    match crate::web::assets::read(&dir, &name).await {
        Some((content_type, bytes)) => {
            ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    crate::render::slots::escape_html(&mut out, text);
    out
}

/// The email's HTML size against Gmail's clipping limit (the filled email as sent, not the
/// lint's generous estimate), and every link of it with the text a reader clicks and its
/// target: what to check by eye before sending.
fn size_and_links(lang: &str, html: &str) -> String {
    let bytes = html.len();
    let limit_kb = CLIP_LIMIT_BYTES / 1024;
    let kb = format!("{:.1}", bytes as f64 / 1024.0);
    let size = if bytes > CLIP_LIMIT_BYTES {
        format!(
            "<p class=\"error\" id=\"size-{l}\"><strong>HTML size: {kb} KB ({bytes} bytes), over Gmail’s \
             {limit_kb} KB clipping limit</strong>: Gmail will hide the end of this email, unsubscribe \
             link included. Shorten the articles or move some to the web version.</p>",
            l = esc(lang)
        )
    } else {
        format!(
            "<p class=\"ok\" id=\"size-{l}\">HTML size: {kb} KB ({bytes} bytes) of Gmail’s {limit_kb} KB \
             clipping limit</p>",
            l = esc(lang)
        )
    };
    let found = links(html);
    let rows: String = found
        .iter()
        .map(|(text, target)| format!("<tr><td>{text}</td><td><code>{target}</code></td></tr>"))
        .collect();
    format!(
        "{size}<details open><summary>Links ({n})</summary><table class=\"headers\" id=\"links-{l}\">\
         <tr><th>Text</th><th>Target</th></tr>{rows}</table></details>",
        n = found.len(),
        l = esc(lang)
    )
}

/// Every `<a href>` of an email as (text a reader sees, target), in document order. Both are
/// taken from the email's own HTML, where entities are already escaped; only `<` and `>` (no
/// tag is left after stripping them) are escaped again, so the page shows them as text.
fn links(html: &str) -> Vec<(String, String)> {
    let neutral = |s: &str| s.replace('<', "&lt;").replace('>', "&gt;");
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(i) = html[pos..].find("<a ") {
        let start = pos + i;
        let Some(tag_len) = html[start..].find('>') else {
            break;
        };
        let tag = &html[start..start + tag_len];
        let inner_start = start + tag_len + 1;
        let inner_end = html[inner_start..]
            .find("</a>")
            .map_or(html.len(), |e| inner_start + e);
        let inner = &html[inner_start..inner_end];
        pos = inner_end;
        let Some(target) = attribute(tag, "href") else {
            continue;
        };
        let text = visible_text(inner);
        let text = if !text.is_empty() {
            text
        } else if let Some(alt) = attribute(inner, "alt").filter(|a| !a.trim().is_empty()) {
            format!("image: {alt}")
        } else {
            "(no text)".to_string()
        };
        found.push((neutral(&text), neutral(target)));
    }
    found
}

/// The value of `name="…"` in an HTML fragment, preceded by whitespace (so that `data-href`
/// is not `href`).
fn attribute<'a>(html: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!("{name}=\"");
    let mut pos = 0;
    while let Some(i) = html[pos..].find(&needle) {
        let at = pos + i;
        let value_start = at + needle.len();
        if html[..at].ends_with(char::is_whitespace) {
            return html[value_start..].split('"').next();
        }
        pos = value_start;
    }
    None
}

/// The text of an HTML fragment without its tags, whitespace collapsed.
fn visible_text(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

const STYLE: &str = r#"
body { margin: 0; font: 15px/1.5 -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; background: #e9edf2; color: #1f2933; }
header { background: #0b4f8a; color: #fff; padding: 14px 24px; position: sticky; top: 0; z-index: 2; }
header h1 { margin: 0; font-size: 18px; }
header nav a { color: #cfe3f6; margin-right: 14px; }
.status { font-size: 14px; color: #cfe3f6; }
section.variant { padding: 18px 24px 30px; border-bottom: 1px solid #cbd2d9; }
figcaption { font-size: 13px; color: #52606d; margin-bottom: 6px; }
h1, h2, p, li { overflow-wrap: anywhere; }
table.headers { border-collapse: collapse; background: #fff; font-size: 13px; max-width: 100%; }
table.headers th, table.headers td { text-align: left; padding: 4px 10px; border-bottom: 1px solid #e4e7eb; vertical-align: top; overflow-wrap: anywhere; }
pre.text { background: #fff; padding: 14px; border: 1px solid #cbd2d9; max-width: 80ch; box-sizing: border-box; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 13px; }
@media (max-width: 720px) { header, section.variant { padding-left: 8px; padding-right: 8px; } }
ul.lint { background: #fff; padding: 10px 10px 10px 30px; border: 1px solid #cbd2d9; }
.error { color: #b42318; } .warning { color: #8a5a00; } .ok { color: #1d7a3a; }
header .status.ok { color: #b7f5c8; } header .status.warning { color: #ffe08a; } header .status.error { color: #ffc4bd; }
details { margin-top: 14px; } summary { cursor: pointer; font-weight: 600; }
"#;

fn reload_script(version: Option<u64>) -> String {
    match version {
        // Ask the server every second whether a file changed, and reload when it did.
        Some(v) => format!(
            "<script>setInterval(function(){{fetch('/version',{{cache:'no-store'}}).then(function(r){{return r.text()}}).then(function(t){{if(t.trim()!=='{v}')location.reload()}}).catch(function(){{}})}},1000);</script>"
        ),
        None => String::new(),
    }
}

fn error_page(message: &str, version: Option<u64>) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>bulletin preview: error</title><style>{STYLE}</style></head><body><header><h1>bulletin preview</h1></header>\
         <section class=\"variant\"><h2 class=\"error\">The edition does not render</h2>\
         <pre class=\"text error\" id=\"error\">{}</pre><p>Fix the file; this page reloads by itself.</p></section>{}</body></html>",
        esc(message),
        reload_script(version)
    )
}

fn build(
    edition: &Edition,
    theme: &Theme,
    rendered: &RenderedEdition,
    list: &ListIdentity,
    meta: &HeaderInfo<'_>,
    version: Option<u64>,
) -> Rendered {
    let mut emails = BTreeMap::new();
    let mut texts = BTreeMap::new();
    let mut body = String::new();
    let lint = &rendered.lint;
    let status_class = if lint.errors() > 0 {
        "error"
    } else if lint.warnings() > 0 {
        "warning"
    } else {
        "ok"
    };
    let nav: String = rendered
        .variants
        .keys()
        .map(|l| format!("<a href=\"#lang-{l}\">{}</a>", esc(l)))
        .collect();
    body.push_str(&format!(
        "<header><h1>{} — preview</h1><nav>{nav}</nav><div class=\"status {status_class}\" id=\"lint-status\">lint: {} error(s), {} warning(s) · theme: {}</div></header>",
        esc(&edition.slug),
        lint.errors(),
        lint.warnings(),
        esc(&theme
            .override_dir
            .as_ref()
            .map_or_else(|| "built-in".to_string(), |d| format!("built-in + {}", d.display()))),
    ));
    for (lang, variant) in &rendered.variants {
        let sample = sample_subscriber(list, &edition.slug, lang);
        let html = variant.html.fill(&sample);
        let text = variant.text.fill(&sample);
        let mut headers = vec![
            ("From", meta.from.to_string()),
            ("To", format!("{} <{}>", sample.name, sample.email)),
            ("Subject", variant.subject.clone()),
            ("List-Id", format!("{} <{}>", list.name, meta.list_id)),
            ("List-Unsubscribe", format!("<{}>", sample.unsubscribe_url)),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()),
            ("Content-Language", lang.clone()),
            (
                "Content-Type",
                "multipart/alternative (text/plain + text/html, UTF-8)".into(),
            ),
        ];
        if let Some(r) = meta.reply_to {
            headers.insert(1, ("Reply-To", r.to_string()));
        }
        if let Some(p) = &variant.preheader {
            headers.push(("Preheader (in the HTML)", p.clone()));
        }
        let header_rows: String = headers
            .iter()
            .map(|(k, v)| format!("<tr><th>{k}</th><td>{}</td></tr>", esc(v)))
            .collect();
        let findings: String = lint
            .findings
            .iter()
            .filter(|f| f.language.as_deref().is_none_or(|l| l == lang))
            .map(|f| {
                let class = match f.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                format!("<li class=\"{class}\">{}</li>", esc(&f.to_string()))
            })
            .collect();
        let findings = if findings.is_empty() {
            "<li class=\"ok\">no findings</li>".to_string()
        } else {
            findings
        };
        let fell_back = if variant.fell_back.is_empty() {
            String::new()
        } else {
            let parts: Vec<String> = variant.fell_back.iter().map(|f| esc(&f.part)).collect();
            format!(
                "<p class=\"warning\">Shown in `{}` (no translation): {}</p>",
                esc(&edition.default_language),
                parts.join(", ")
            )
        };
        body.push_str(&format!(
            "<section class=\"variant\" id=\"lang-{l}\"><h2>{l}: {subject}</h2>{fell_back}{frames}\
             {checks}<details open><summary>Message headers</summary><table class=\"headers\">{header_rows}</table></details>\
             <details open><summary>Lint</summary><ul class=\"lint\">{findings}</ul></details>\
             <details><summary>Text part</summary><pre class=\"text\">{text_esc}</pre></details></section>",
            l = esc(lang),
            subject = esc(&variant.subject),
            frames = frames::frames(lang, &html),
            text_esc = esc(&text),
            checks = size_and_links(lang, &html),
        ));
        emails.insert(lang.clone(), html);
        texts.insert(lang.clone(), text);
    }
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} — bulletin preview</title><style>{STYLE}{}</style></head><body>{body}{}{}</body></html>",
        esc(&edition.slug),
        frames::FRAME_STYLE,
        frames::FIT_SCRIPT,
        reload_script(version)
    );
    Rendered {
        page,
        emails,
        texts,
    }
}
