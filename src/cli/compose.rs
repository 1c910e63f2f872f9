//! `bulletin compose`: render an edition into files and print its lint report.
//!
//! Neither this nor `preview` opens the database: composing is something a communications
//! officer does on a laptop with only the edition folder and `bulletin.toml`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use super::{Context, Outcome, UsageError};
use crate::content::{ContentError, Edition};
use crate::render::{self, ListIdentity, RenderError, RenderedEdition, SubscriberSlots, Theme};

/// Arguments of `bulletin compose`.
#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// The edition folder (edition.toml and articles/)
    #[arg(value_hint = clap::ValueHint::DirPath)]
    pub edition: PathBuf,
    /// Write into OUT/<lang>/ [default: out/<edition slug>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Compose only this language
    #[arg(long, value_name = "xx")]
    pub lang: Option<String>,
    /// Which templates to use (`--templates`, else the project's `templates/`, else the built-in theme).
    #[command(flatten)]
    pub theme: ThemeArgs,
}

/// The theme option `compose` and `preview` share.
#[derive(Debug, Args)]
pub struct ThemeArgs {
    /// Theme folder whose *.mjml.hbs / *.txt.hbs files replace the built-in ones
    /// [default: templates/ beside bulletin.toml, or in the current folder]
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

/// The theme folder: the flag (which must exist), else `templates/` beside the configuration
/// file, else `./templates` (either may be absent: the built-in theme is then used whole).
pub(crate) fn templates_dir(ctx: &Context, flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = flag {
        if !dir.is_dir() {
            return Err(UsageError(format!(
                "--templates {}: no such folder; give the folder holding your *.mjml.hbs files",
                dir.display()
            ))
            .into());
        }
        return Ok(dir.to_path_buf());
    }
    Ok(match ctx.config.source.as_ref().and_then(|p| p.parent()) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join("templates"),
        _ => PathBuf::from("templates"),
    })
}

/// The `[list]` part of the configuration, as the renderer needs it.
pub(crate) fn identity(ctx: &Context) -> ListIdentity {
    let l = &ctx.config.list;
    ListIdentity {
        name: l.name.clone(),
        from: l.from.clone(),
        reply_to: l.reply_to.clone(),
        postal_address: l.postal_address.clone(),
        public_url: l.public_url.clone(),
    }
}

/// The made-up subscriber files and previews are filled with, so personalisation shows.
pub(crate) fn sample_subscriber(list: &ListIdentity, slug: &str, lang: &str) -> SubscriberSlots {
    let base = list.public_url.trim_end_matches('/');
    let mut attributes = serde_json::Map::new();
    attributes.insert("country".into(), "Brazil".into());
    SubscriberSlots {
        name: "Ana Lima".into(),
        email: "ana.lima@example.org".into(),
        // The page `serve` shows for test copies: a link clicked in a preview or a composed
        // file explains itself instead of reporting an invalid link.
        unsubscribe_url: format!("{base}{}", crate::mail::Personaliser::TEST_COPY_PATH),
        preferences_url: format!("{base}{}", crate::mail::Personaliser::TEST_PREFERENCES_PATH),
        archive_url: render::archive_url(base, slug, lang),
        attributes,
    }
}

/// Where an edition is published: its web version and, in `assets/`, its local pictures and
/// documents.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Out<'a> {
    /// This folder (`compose --out`).
    Exactly(&'a Path),
    /// `<folder>/<slug>`: `out/` by default, the archive folder for `send`.
    Under(&'a Path),
}

impl Out<'_> {
    /// `--out`, else `out/<slug>`: the folder `compose` writes and `serve` reads by default.
    pub(crate) fn from_flag(flag: Option<&Path>) -> Out<'_> {
        flag.map_or(Out::Under(Path::new("out")), Out::Exactly)
    }

    /// The folder for `edition`.
    pub(crate) fn folder(self, edition: &Edition) -> PathBuf {
        match self {
            Out::Exactly(dir) => dir.to_path_buf(),
            Out::Under(dir) => dir.join(&edition.slug),
        }
    }
}

/// What publishing needs besides the edition: where, and the URL the files are reached at
/// when not through `serve` (`[assets] base_url`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Publish<'a> {
    pub(crate) out: Out<'a>,
    pub(crate) base_url: Option<&'a str>,
}

/// Loads the edition and theme, publishes the edition's local pictures and documents and
/// renders: the part `compose`, `preview` and `send` share.
pub(crate) fn load_and_render(
    edition_dir: &Path,
    templates: &Path,
    list: &ListIdentity,
    publish: Publish<'_>,
    lang: Option<&str>,
) -> Result<(Edition, Theme, RenderedEdition), anyhow::Error> {
    let edition = Edition::load(edition_dir)?;
    let theme = Theme::load(Some(templates))?;
    let to = crate::assets::Destination::new(
        &publish.out.folder(&edition),
        &list.public_url,
        &edition.slug,
        publish.base_url,
    );
    let published = crate::assets::publish(&edition, &to)?;
    let rendered = render::render_with(&edition, &theme, list, lang, &published)?;
    Ok((edition, theme, rendered))
}

#[derive(Serialize)]
struct VariantSummary<'a> {
    language: &'a str,
    subject: &'a str,
    preheader: Option<&'a str>,
    html_bytes: usize,
    files: Vec<String>,
    fell_back: &'a [crate::content::Fallback],
}

#[derive(Serialize)]
struct ComposeReport<'a> {
    slug: &'a str,
    content_hash: &'a str,
    variants: Vec<VariantSummary<'a>>,
    lint: &'a render::LintReport,
}

/// The file and line an input error names, for the JSON report.
fn location(error: &anyhow::Error) -> (Option<String>, Option<usize>) {
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<ContentError>() {
            return match e {
                ContentError::Manifest { path, line, .. }
                | ContentError::FrontMatter { path, line, .. }
                | ContentError::UnknownKey { path, line, .. }
                | ContentError::MissingField { path, line, .. }
                | ContentError::Invalid { path, line, .. } => {
                    (Some(path.display().to_string()), Some(*line))
                }
                ContentError::Read { path, .. }
                | ContentError::TooLarge { path, .. }
                | ContentError::NotAnEdition { path } => (Some(path.display().to_string()), None),
            };
        }
        if let Some(e) = cause.downcast_ref::<RenderError>() {
            return match e {
                RenderError::Template { file, line, .. } | RenderError::Mjml { file, line, .. } => {
                    (Some(file.clone()), *line)
                }
                RenderError::TooDeep { file, line, .. } => (Some(file.clone()), Some(*line)),
                RenderError::Read { path, .. } => (Some(path.display().to_string()), None),
                RenderError::UnknownLayout { manifest, .. } => {
                    (Some(manifest.display().to_string()), None)
                }
                _ => (None, None),
            };
        }
    }
    (None, None)
}

pub(crate) fn run(ctx: &Context, args: ComposeArgs) -> anyhow::Result<Outcome> {
    let list = identity(ctx);
    let templates = templates_dir(ctx, args.theme.templates.as_deref())?;
    let (edition, _theme, rendered) = match load_and_render(
        &args.edition,
        &templates,
        &list,
        Publish {
            out: Out::from_flag(args.out.as_deref()),
            base_url: ctx.config.assets.base_url.as_deref(),
        },
        args.lang.as_deref(),
    ) {
        Ok(r) => r,
        Err(e) => {
            if ctx.json {
                // Scripts get the same shape as a lint report, with the one error in it.
                let (file, line) = location(&e);
                let report = render::LintReport {
                    findings: vec![render::Finding {
                        severity: render::Severity::Error,
                        code: "input",
                        file,
                        line,
                        language: None,
                        message: super::describe(&e),
                    }],
                };
                ctx.print_json(&serde_json::json!({ "lint": report }))?;
            }
            return Err(e);
        }
    };
    let out_root = Out::from_flag(args.out.as_deref()).folder(&edition);
    let mut summaries = Vec::new();
    // Files are written only for a clean edition, so that out/ never holds mail that lint
    // would have stopped.
    let write = rendered.lint.is_ok();
    for (lang, variant) in &rendered.variants {
        let mut files = Vec::new();
        if write {
            let dir = out_root.join(lang);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let sample = sample_subscriber(&list, &edition.slug, lang);
            for (name, body) in [
                ("email.html", variant.html.fill(&sample)),
                ("email.txt", variant.text.fill(&sample)),
                ("archive.html", variant.archive_html.clone()),
                ("email.mjml", variant.mjml.clone()),
            ] {
                let path = dir.join(name);
                std::fs::write(&path, body)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                files.push(path.display().to_string());
            }
        }
        summaries.push(VariantSummary {
            language: lang,
            subject: &variant.subject,
            preheader: variant.preheader.as_deref(),
            html_bytes: variant.html.literal_len(),
            files,
            fell_back: &variant.fell_back,
        });
    }
    if ctx.json {
        ctx.print_json(&ComposeReport {
            slug: &edition.slug,
            content_hash: &rendered.content_hash,
            variants: summaries,
            lint: &rendered.lint,
        })?;
    } else {
        for finding in &rendered.lint.findings {
            eprintln!("{finding}");
        }
        for s in &summaries {
            if write {
                ctx.info(format!(
                    "{}: \"{}\" ({} KB) → {}",
                    s.language,
                    s.subject,
                    s.html_bytes.div_ceil(1024),
                    out_root.join(s.language).display()
                ));
            }
        }
        ctx.info(format!(
            "lint: {} error(s), {} warning(s)",
            rendered.lint.errors(),
            rendered.lint.warnings()
        ));
    }
    if !rendered.lint.is_ok() {
        return Err(RenderError::Lint {
            slug: edition.slug.clone(),
            errors: rendered.lint.errors(),
        }
        .into());
    }
    Ok(Outcome::Success)
}
