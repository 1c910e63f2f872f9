//! The theme: Handlebars templates that produce MJML (and the plain-text part), the built-in
//! default theme embedded in the binary, a project's `templates/` folder overriding it file by
//! file, and the helpers templates may call.
//!
//! Two registries are kept because the two outputs escape differently: the MJML registry
//! HTML-escapes every `{{value}}`, the text registry writes values as they are. Both run in
//! strict mode, so a misspelt variable is an error naming the template and line instead of
//! an empty space in fifty thousand inboxes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, PathAndJson, RenderContext,
    RenderError as HbError, RenderErrorReason, Renderable,
};

use super::RenderError;
use super::markdown;
use super::slots::{escape_html, with_fallback};
use crate::i18n::Catalogues;

/// The default theme, compiled into the binary so that `bulletin compose` works anywhere.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "layout.mjml.hbs",
        include_str!("../../templates/layout.mjml.hbs"),
    ),
    (
        "head.mjml.hbs",
        include_str!("../../templates/head.mjml.hbs"),
    ),
    (
        "header.mjml.hbs",
        include_str!("../../templates/header.mjml.hbs"),
    ),
    (
        "intro.mjml.hbs",
        include_str!("../../templates/intro.mjml.hbs"),
    ),
    (
        "card.mjml.hbs",
        include_str!("../../templates/card.mjml.hbs"),
    ),
    (
        "grid.mjml.hbs",
        include_str!("../../templates/grid.mjml.hbs"),
    ),
    (
        "documents.mjml.hbs",
        include_str!("../../templates/documents.mjml.hbs"),
    ),
    (
        "footer.mjml.hbs",
        include_str!("../../templates/footer.mjml.hbs"),
    ),
    (
        "email.txt.hbs",
        include_str!("../../templates/email.txt.hbs"),
    ),
];

/// One template's source, kept to point errors at the right file and line.
#[derive(Debug, Clone)]
pub struct TemplateSource {
    /// How messages name it: the override's path, or `templates/x.mjml.hbs (built-in)`.
    pub display: String,
    /// The file, for overrides (watched for changes by `preview --serve`).
    pub path: Option<PathBuf>,
    /// The template text.
    pub text: String,
}

/// The loaded theme: both registries and the sources behind them.
pub struct Theme {
    pub(crate) html: Handlebars<'static>,
    /// The same HTML templates with their plain partial calls (`{{> card}}` on a line of its
    /// own) replaced by the partial's text. Handlebars clones the whole current context into
    /// every partial it expands (a tenth of a render, measured); inlined, the partials cost
    /// nothing. Render errors are reported from `html`, which knows the partial's own file.
    pub(crate) html_inlined: Handlebars<'static>,
    pub(crate) text: Handlebars<'static>,
    /// The theme's words per language (domain `theme`), built-in and the project's own.
    pub catalogues: Catalogues,
    /// Sources by registered name (`layout`, `card`, `email.txt`).
    pub sources: BTreeMap<String, TemplateSource>,
    /// The folder overrides were read from, if it exists.
    pub override_dir: Option<PathBuf>,
}

impl std::fmt::Debug for Theme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Theme")
            .field("templates", &self.sources.keys().collect::<Vec<_>>())
            .field("override_dir", &self.override_dir)
            .finish()
    }
}

/// `text` with every line that is only a plain partial call (`{{> name}}`, no parameters)
/// replaced by that partial's text, itself inlined, to a depth of 8 (deeper or unknown calls
/// are left to Handlebars). With `prevent_indent` this is exactly what Handlebars renders for
/// such a line.
fn inline_partials(text: &str, sources: &BTreeMap<String, TemplateSource>, depth: u8) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let call = line
            .trim()
            .strip_prefix("{{>")
            .and_then(|r| r.strip_suffix("}}"))
            .map(str::trim)
            .filter(|name| !name.is_empty() && !name.contains(char::is_whitespace));
        match call
            .and_then(|name| sources.get(name))
            .filter(|_| depth < 8)
        {
            Some(partial) => {
                out.push_str(&inline_partials(&partial.text, sources, depth + 1));
                if !out.ends_with('\n') {
                    out.push('\n');
                }
            }
            None => out.push_str(line),
        }
    }
    out
}

/// Registered name of a template file: `card.mjml.hbs` → `card`, `email.txt.hbs` → `email.txt`.
fn template_name(file: &str) -> Option<(String, bool)> {
    if let Some(n) = file.strip_suffix(".mjml.hbs") {
        return Some((n.to_string(), true));
    }
    file.strip_suffix(".txt.hbs")
        .map(|n| (format!("{n}.txt"), false))
}

impl Theme {
    /// The built-in theme with the `*.mjml.hbs` / `*.txt.hbs` files of `override_dir` (when it
    /// exists) replacing built-in files of the same name or adding partials, and the message
    /// catalogues of the `locales/` folder beside it (a project's `templates/` and `locales/`
    /// both sit beside `bulletin.toml`) on top of the built-in ones.
    pub fn load(override_dir: Option<&Path>) -> Result<Self, RenderError> {
        let locales = override_dir
            .and_then(Path::parent)
            .map(|project| project.join("locales"));
        let catalogues = Catalogues::load(locales.as_deref())?;
        let mut sources = BTreeMap::new();
        for (file, text) in BUILT_IN {
            if let Some((name, _)) = template_name(file) {
                sources.insert(
                    name,
                    TemplateSource {
                        display: format!("templates/{file} (built-in)"),
                        path: None,
                        text: (*text).to_string(),
                    },
                );
            }
        }
        let override_dir = override_dir.filter(|d| d.is_dir()).map(Path::to_path_buf);
        if let Some(dir) = &override_dir {
            let entries = std::fs::read_dir(dir).map_err(|source| RenderError::Read {
                path: dir.clone(),
                source,
            })?;
            let mut files: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            for path in files {
                let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
                    continue;
                };
                let Some((name, _)) = template_name(file) else {
                    continue;
                };
                let text = std::fs::read_to_string(&path).map_err(|source| RenderError::Read {
                    path: path.clone(),
                    source,
                })?;
                sources.insert(
                    name,
                    TemplateSource {
                        display: path.display().to_string(),
                        path: Some(path.clone()),
                        text,
                    },
                );
            }
        }
        let mut html = Handlebars::new();
        let mut html_inlined = Handlebars::new();
        let mut text = Handlebars::new();
        for r in [&mut html, &mut html_inlined, &mut text] {
            r.set_strict_mode(true);
            // Indenting partials would indent Markdown output and the text part's lines.
            r.set_prevent_indent(true);
            r.register_helper("markdown", Box::new(markdown_helper));
            r.register_helper("date", Box::new(date_helper));
            r.register_helper("url", Box::new(url_helper));
            r.register_helper("default", Box::new(default_helper));
            r.register_helper("upper", Box::new(upper_helper));
            r.register_helper("underline", Box::new(underline_helper));
            r.register_helper("wrap", Box::new(wrap_helper));
            r.register_helper("part", Box::new(PartHelper));
            r.register_helper("number", Box::new(number_helper));
        }
        text.register_escape_fn(handlebars::no_escape);
        for (name, source) in &sources {
            let registry = if name.ends_with(".txt") {
                &mut text
            } else {
                &mut html
            };
            registry
                .register_template_string(name, &source.text)
                .map_err(|e| {
                    let (line, _) = e.pos().unwrap_or((0, 0));
                    // The parser notices an unclosed block only at the end of the file; the
                    // line that opened it is the one to fix.
                    let (line, message) = match unclosed_block(&source.text) {
                        Some((opened, name)) => (
                            opened,
                            format!("`{{{{#{name}}}}}` is never closed; add `{{{{/{name}}}}}`"),
                        ),
                        None => (
                            line,
                            format!(
                                "invalid Handlebars syntax near this line ({})",
                                e.reason().to_string().chars().take(80).collect::<String>()
                            ),
                        ),
                    };
                    RenderError::Template {
                        file: source.display.clone(),
                        line: (line > 0).then_some(line),
                        message,
                    }
                })?;
        }
        for (name, source) in sources.iter().filter(|(n, _)| !n.ends_with(".txt")) {
            // The sources registered above without error; an inlined one is made of them.
            html_inlined
                .register_template_string(name, inline_partials(&source.text, &sources, 0))
                .map_err(|e| RenderError::Template {
                    file: source.display.clone(),
                    line: None,
                    message: format!("its partials could not be inlined: {}", e.reason()),
                })?;
        }
        Ok(Self {
            html,
            html_inlined,
            text,
            catalogues,
            sources,
            override_dir,
        })
    }

    /// Where a registered template's text comes from, for messages.
    pub(crate) fn display(&self, name: &str) -> String {
        self.sources
            .get(name)
            .map_or_else(|| name.to_string(), |s| s.display.clone())
    }

    /// The template line that most likely wrote line `line` (1-based) of `generated`: among the
    /// template lines equal to it, the one whose neighbours also match the generated
    /// neighbours best. Partials are copied line by line into the output, so context is a
    /// good witness of where a line came from.
    pub(crate) fn locate_in_context(
        &self,
        generated: &str,
        line: usize,
    ) -> Option<(String, usize)> {
        let lines: Vec<&str> = generated.lines().map(str::trim).collect();
        let target = *lines.get(line.checked_sub(1)?)?;
        if target.is_empty() {
            return None;
        }
        let mut best: Option<(usize, String, usize)> = None;
        for s in self.sources.values() {
            let source: Vec<&str> = s.text.lines().map(str::trim).collect();
            for (i, l) in source.iter().enumerate() {
                if *l != target {
                    continue;
                }
                let mut score = 0;
                for k in 1..=3 {
                    let before = (i.checked_sub(k), (line - 1).checked_sub(k));
                    if let (Some(a), Some(b)) = before {
                        score += usize::from(source.get(a) == lines.get(b));
                    }
                    score += usize::from(
                        source.get(i + k).is_some() && source.get(i + k) == lines.get(line - 1 + k),
                    );
                }
                if best.as_ref().is_none_or(|(b, _, _)| score > *b) {
                    best = Some((score, s.display.clone(), i + 1));
                }
            }
        }
        best.map(|(_, file, line)| (file, line))
    }

    /// The first template line that contains `needle`, as `(display, line)`: how a problem
    /// found in generated MJML or HTML is traced back to the template that wrote it.
    pub(crate) fn locate(&self, needle: &str) -> Option<(String, usize)> {
        let needle = needle.trim();
        if needle.len() < 3 {
            return None;
        }
        self.sources.values().find_map(|s| {
            s.text
                .lines()
                .position(|l| l.contains(needle))
                .map(|i| (s.display.clone(), i + 1))
        })
    }
}

/// The line and name of the first `{{#block}}` without its `{{/block}}`.
fn unclosed_block(text: &str) -> Option<(usize, String)> {
    let mut open: Vec<(usize, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find("{{") {
            let tag = rest[start + 2..].trim_start_matches('~');
            let name = |t: &str| -> String {
                t.chars()
                    .take_while(|c| !c.is_whitespace() && *c != '}' && *c != '~')
                    .collect()
            };
            if let Some(t) = tag.strip_prefix('#') {
                open.push((i + 1, name(t.trim_start_matches(['>', '*']))));
            } else if let Some(t) = tag.strip_prefix('/') {
                let n = name(t);
                if let Some(pos) = open.iter().rposition(|(_, o)| *o == n) {
                    open.truncate(pos);
                }
            }
            rest = &rest[start + 2..];
        }
    }
    open.into_iter().next()
}

/// A parameter as text; missing values are errors in strict mode, null is "".
fn param_str<'a>(h: &'a Helper<'_>, index: usize, r: &Handlebars<'_>) -> Result<&'a str, HbError> {
    let Some(p) = h.param(index) else {
        return Err(RenderErrorReason::ParamNotFoundForIndex(helper_name(h), index).into());
    };
    value_str(p, r)
}

fn value_str<'a>(p: &'a PathAndJson<'_>, r: &Handlebars<'_>) -> Result<&'a str, HbError> {
    if r.strict_mode() && p.is_value_missing() {
        return Err(HbError::strict_error(p.relative_path()));
    }
    match p.value() {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Null => Ok(""),
        _ => Err(RenderErrorReason::InvalidParamType("text").into()),
    }
}

fn helper_name(h: &Helper<'_>) -> &'static str {
    match h.name() {
        "markdown" => "markdown",
        "date" => "date",
        "url" => "url",
        "default" => "default",
        "upper" => "upper",
        "underline" => "underline",
        "part" => "part",
        "number" => "number",
        _ => "wrap",
    }
}

/// The language of the variant being rendered (the template data's `lang`).
fn variant_language(ctx: &Context) -> &str {
    ctx.data()
        .get("lang")
        .and_then(|l| l.as_str())
        .unwrap_or(crate::i18n::FALLBACK_LANGUAGE)
}

/// True when rendering the text part (the registry that does not escape).
fn is_text(r: &Handlebars<'_>) -> bool {
    (r.get_escape_fn())("<") == "<"
}

/// `{{markdown text}}`: Markdown as HTML in the MJML registry, as wrapped text in the text one.
fn markdown_helper(
    h: &Helper<'_>,
    r: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let text = param_str(h, 0, r)?;
    if is_text(r) {
        out.write(&markdown::to_text(text))?;
    } else {
        out.write(&markdown::to_html(text))?;
    }
    Ok(())
}

/// `{{date edition.date}}`: an ISO date written the way the edition's language writes dates.
fn date_helper(
    h: &Helper<'_>,
    r: &Handlebars<'_>,
    ctx: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let iso = param_str(h, 0, r)?;
    let lang = variant_language(ctx);
    let date = time::Date::parse(
        iso,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| {
        HbError::from(RenderErrorReason::Other(format!(
            "`{iso}` is not a YYYY-MM-DD date"
        )))
    })?;
    let text = crate::i18n::format_date(date, lang);
    out.write(&(r.get_escape_fn())(&text))?;
    Ok(())
}

/// `{{#part this}}…{{/part}}` or `{{#part intro_language}}…{{/part}}`: content written in
/// another language than the variant's (an untranslated article in the Arabic variant) is
/// wrapped in its own `lang` and `dir`, so that screen readers switch voice and its
/// punctuation and alignment follow its own direction. The parameter is a language tag, or
/// an object with a `language` field. Content in the variant's language is written as it
/// is, and so is everything in the text part, which has no markup to carry it.
struct PartHelper;

impl HelperDef for PartHelper {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let Some(inner) = h.template() else {
            return Ok(());
        };
        let param = h
            .param(0)
            .ok_or(RenderErrorReason::ParamNotFoundForIndex("part", 0))?;
        let value = param.value();
        let language = value
            .as_str()
            .or_else(|| value.get("language").and_then(serde_json::Value::as_str));
        let variant = variant_language(ctx);
        let other = match language {
            Some(l) if !l.is_empty() && l != variant && !is_text(r) => Some(l),
            _ => None,
        };
        let Some(language) = other else {
            return inner.render(r, ctx, rc, out);
        };
        let dir = crate::i18n::direction(language);
        let mut tag = String::from("<div lang=\"");
        escape_html(&mut tag, language);
        tag.push_str(&format!(
            "\" dir=\"{0}\" class=\"part-{0}\" style=\"text-align:{1};\">",
            dir.as_str(),
            dir.start()
        ));
        out.write(&tag)?;
        inner.render(r, ctx, rc, out)?;
        out.write("</div>")?;
        Ok(())
    }
}

/// `{{number value}}`: a number (or text holding one, `1234.5`) with the digits and separators
/// of the variant's language, from CLDR: "1,234.5", "1 234,5", "١٬٢٣٤٫٥" in `ar-EG`.
/// Text that is not a number is written as it is.
fn number_helper(
    h: &Helper<'_>,
    r: &Handlebars<'_>,
    ctx: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let Some(param) = h.param(0) else {
        return Err(RenderErrorReason::ParamNotFoundForIndex("number", 0).into());
    };
    let raw = match param.value() {
        serde_json::Value::Number(n) => n.to_string(),
        _ => value_str(param, r)?.to_string(),
    };
    let lang = variant_language(ctx);
    let text = crate::i18n::NumberFormatter::new(lang).format(raw.trim());
    out.write(&(r.get_escape_fn())(&text))?;
    Ok(())
}

/// `{{url value}}`: a URL for an `href` or `src`. Subscriber slots pass through; web and mail
/// URLs are escaped for the attribute; anything else (`javascript:`) is refused.
fn url_helper(
    h: &Helper<'_>,
    r: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let url = param_str(h, 0, r)?.trim();
    let lower = url.to_ascii_lowercase();
    let scheme = lower.split_once(':').map(|(s, _)| s);
    if matches!(scheme, Some(s) if !matches!(s, "http" | "https" | "mailto")) {
        return Err(RenderErrorReason::Other(format!(
            "`{url}` is not a safe link; only http, https and mailto URLs are written"
        ))
        .into());
    }
    out.write(&(r.get_escape_fn())(url))?;
    Ok(())
}

/// `{{default value "fallback"}}`: the value, or the fallback when it is empty. On a subscriber
/// slot the choice is made per recipient, when the slot is filled.
fn default_helper(
    h: &Helper<'_>,
    r: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let value = param_str(h, 0, r)?;
    let fallback = param_str(h, 1, r)?;
    if let Some(slot) = with_fallback(value, fallback) {
        out.write(&slot)?;
        return Ok(());
    }
    let chosen = if value.trim().is_empty() {
        fallback
    } else {
        value
    };
    out.write(&(r.get_escape_fn())(chosen))?;
    Ok(())
}

/// `{{upper text}}`: capitals, for text-part headings.
fn upper_helper(
    h: &Helper<'_>,
    r: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let text = param_str(h, 0, r)?.to_uppercase();
    out.write(&(r.get_escape_fn())(&text))?;
    Ok(())
}

/// `{{underline text "="}}`: a line of the character as long as the text.
fn underline_helper(
    h: &Helper<'_>,
    r: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let text = param_str(h, 0, r)?;
    let ch = h
        .param(1)
        .and_then(|p| p.value().as_str())
        .and_then(|s| s.chars().next())
        .unwrap_or('-');
    let line: String = std::iter::repeat_n(ch, text.chars().count().min(72)).collect();
    out.write(&line)?;
    Ok(())
}

/// `{{wrap text}}`: plain text wrapped at the text part's width.
fn wrap_helper(
    h: &Helper<'_>,
    r: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let text = param_str(h, 0, r)?;
    let mut wrapped = String::new();
    markdown::wrap_into(&mut wrapped, text, "", "", markdown::TEXT_WIDTH);
    let wrapped = wrapped.trim_end();
    if is_text(r) {
        out.write(wrapped)?;
    } else {
        let mut escaped = String::new();
        escape_html(&mut escaped, wrapped);
        out.write(&escaped)?;
    }
    Ok(())
}
