//! The pages subscribers see, in their language: plain, accessible HTML with one inline
//! stylesheet and no script, image, font or anything else fetched from anywhere.
//!
//! Every word a subscriber reads comes from the `pages` and `confirmation` message catalogues
//! ([`crate::i18n`]: `src/i18n/locales/<lang>/pages.ftl`, overridable and extendable from a
//! project's `locales/` folder), so that adding a language is adding files, not code. The
//! pages exist in every language that has a `pages` catalogue; a message missing in one falls
//! back to English message by message.
//!
//! Every value put into HTML goes through [`escape`]; list names come from the database and
//! newsletter names from configuration, neither of which is trusted to be markup-free. Values
//! inside a message are isolated (`<bdi>`) so that a Latin name in Arabic text, or the
//! reverse, keeps its place; right-to-left pages carry `dir="rtl"` and the stylesheet uses
//! logical properties only, so the same CSS mirrors.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{LazyLock, Mutex};

use base64::Engine as _;
use fluent_bundle::{FluentArgs, FluentValue};

use crate::i18n::{Catalogues, Dir, I18nError, direction};

/// The catalogue domain of the pages.
const PAGES: &str = "pages";
/// The catalogue domain of the confirmation mail.
pub(crate) const CONFIRMATION: &str = "confirmation";

/// A language the pages are written in (one with a `pages` catalogue); cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lang(&'static str);

impl Lang {
    /// English: the last fallback, complete by definition.
    pub const FALLBACK: Lang = Lang(crate::i18n::FALLBACK_LANGUAGE);

    /// The tag for `<html lang>`.
    pub fn tag(self) -> &'static str {
        self.0
    }

    /// Which way the language is written.
    pub fn dir(self) -> Dir {
        direction(self.0)
    }
}

/// Tags of languages the pages exist in, kept for the life of the process so that [`Lang`]
/// can be `Copy`: a handful of short strings, each stored once however many times the
/// catalogues are loaded.
static TAGS: LazyLock<Mutex<BTreeSet<&'static str>>> = LazyLock::new(Default::default);

fn intern(tag: &str) -> &'static str {
    let mut tags = TAGS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(found) = tags.get(tag) {
        return found;
    }
    let leaked: &'static str = Box::leak(tag.to_string().into_boxed_str());
    tags.insert(leaked);
    leaked
}

/// The words of the pages and the confirmation mail in every language that has them.
#[derive(Debug)]
pub struct PageWords {
    catalogues: Catalogues,
    /// Languages with a `pages` catalogue, in tag order.
    languages: Vec<Lang>,
}

impl PageWords {
    /// The built-in catalogues with a project's `locales/` folder (absent: none) on top.
    pub fn load(locales: Option<&Path>) -> Result<Self, I18nError> {
        let catalogues = Catalogues::load(locales)?;
        let languages = catalogues
            .languages()
            .into_iter()
            .filter(|l| catalogues.has(l, PAGES))
            .map(|l| Lang(intern(l)))
            .collect();
        Ok(Self {
            catalogues,
            languages,
        })
    }

    /// Every language the pages are written in.
    pub fn languages(&self) -> &[Lang] {
        &self.languages
    }

    /// The page language for a BCP 47 tag: the tag itself, else a shorter form of it
    /// (`ar-EG` → `ar`, `zh-Hant-TW` → `zh-Hant` → `zh`), if the pages have it.
    pub fn lang(&self, tag: &str) -> Option<Lang> {
        let tag = tag.trim().replace('_', "-");
        let mut candidate = tag.as_str();
        loop {
            if let Some(found) = self
                .languages
                .iter()
                .find(|l| l.0.eq_ignore_ascii_case(candidate))
            {
                return Some(*found);
            }
            candidate = candidate.rsplit_once('-')?.0;
        }
    }

    /// Picks a language: an explicit choice, then the subscriber's own, then the browser's
    /// `Accept-Language` (in the order given; q-values are rarely anything but decreasing),
    /// then English.
    pub fn negotiate(
        &self,
        explicit: Option<&str>,
        subscriber: Option<&str>,
        accept_language: Option<&str>,
    ) -> Lang {
        explicit
            .and_then(|t| self.lang(t))
            .or_else(|| subscriber.and_then(|t| self.lang(t)))
            .or_else(|| {
                accept_language?
                    .split(',')
                    .filter_map(|part| part.split(';').next())
                    .find_map(|t| self.lang(t))
            })
            .unwrap_or(Lang::FALLBACK)
    }

    /// The words of the pages in `lang`.
    pub fn pages(&self, lang: Lang) -> Words<'_> {
        Words {
            catalogues: &self.catalogues,
            domain: PAGES,
            lang,
        }
    }

    /// The words of the confirmation mail in `lang`.
    pub fn confirmation(&self, lang: Lang) -> Words<'_> {
        Words {
            catalogues: &self.catalogues,
            domain: CONFIRMATION,
            lang,
        }
    }
}

/// A value for a message's `{ $name }`.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    /// Text (a list's name, a link).
    Text(&'a str),
    /// A count, which plural rules and the language's digits apply to.
    Number(i64),
}

/// First strong isolate and pop directional isolate: what Fluent wraps each value in.
const FSI: char = '\u{2068}';
const PDI: char = '\u{2069}';

/// One domain's messages in one language.
#[derive(Debug, Clone, Copy)]
pub struct Words<'a> {
    catalogues: &'a Catalogues,
    domain: &'static str,
    lang: Lang,
}

impl Words<'_> {
    /// The language of these words.
    pub fn lang(&self) -> Lang {
        self.lang
    }

    fn raw(&self, key: &str, args: &[(&str, Arg<'_>)]) -> String {
        let mut fluent = FluentArgs::new();
        for (name, value) in args {
            match value {
                Arg::Text(t) => fluent.set(*name, FluentValue::from(*t)),
                Arg::Number(n) => fluent.set(*name, FluentValue::from(*n)),
            }
        }
        let args = (!args.is_empty()).then_some(&fluent);
        self.catalogues
            .message(self.lang.tag(), self.domain, key, args)
            .0
    }

    /// Message `key` as plain text (a `<title>`, a mail's subject and text part). In a
    /// right-to-left language values stay isolated by Unicode marks, which is what keeps a
    /// Latin name in its place there; in a left-to-right language they would only be
    /// invisible clutter, so they are removed.
    pub fn text(&self, key: &str) -> String {
        self.text_with(key, &[])
    }

    /// [`Words::text`] with values.
    pub fn text_with(&self, key: &str, args: &[(&str, Arg<'_>)]) -> String {
        let text = self.raw(key, args);
        match self.lang.dir() {
            Dir::Rtl => text,
            Dir::Ltr => text.replace([FSI, PDI], ""),
        }
    }

    /// Message `key` as HTML: escaped, each value isolated in `<bdi>`.
    pub fn html(&self, key: &str) -> String {
        self.html_with(key, &[])
    }

    /// [`Words::html`] with values.
    pub fn html_with(&self, key: &str, args: &[(&str, Arg<'_>)]) -> String {
        escape(&self.raw(key, args))
            .replace(FSI, "<bdi>")
            .replace(PDI, "</bdi>")
    }
}

/// The one stylesheet, inline so that a page needs no second request. The CSP allows exactly
/// this text by its hash, so no injected style (let alone script) can run.
const CSS: &str = "body{font:1.05rem/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
color:#1a1a1a;background:#fafafa;margin:0}\
main{max-width:36rem;margin:3rem auto;padding:0 1.25rem}\
.brand{font-weight:600;color:#444;margin-bottom:2rem}\
h1{font-size:1.5rem;line-height:1.25}\
button{font:inherit;padding:.6rem 1.2rem;border-radius:.3rem;border:2px solid #1d4ed8;\
background:#1d4ed8;color:#fff;cursor:pointer}\
button.secondary{background:#fff;color:#1d4ed8}\
button:focus,input:focus,select:focus{outline:3px solid #f59e0b;outline-offset:2px}\
label{display:block;font-weight:600;margin-top:1rem}\
input[type=email],select{font:inherit;width:100%;box-sizing:border-box;padding:.5rem;\
border:1px solid #666;border-radius:.3rem}\
form{margin:1.5rem 0}\
.error{color:#b91c1c;font-weight:600}\
.notice{color:#166534;font-weight:600}\
fieldset{border:1px solid #ccc;border-radius:.3rem;padding:.5rem 1rem 1rem}\
.choice{margin:.6rem 0}.choice label{display:inline;font-weight:600;margin:0}\
.hint{display:block;color:#444;font-size:.95rem;margin-inline-start:1.7rem}\
input[type=text]{font:inherit;width:100%;box-sizing:border-box;padding:.5rem;\
border:1px solid #666;border-radius:.3rem}\
.hp{position:absolute;inset-inline-start:-10000px;width:1px;height:1px;overflow:hidden}\
a{color:#1d4ed8}";

/// The Content-Security-Policy of every page but the archive's.
pub(crate) static PAGE_CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        CSS.as_bytes(),
    ));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    )
});

/// Escapes text for HTML content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `title` is text (escaped here), `body` is HTML already escaped by the caller.
pub(crate) fn page(lang: Lang, site: &str, title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"{lang}\" dir=\"{dir}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n<title>{title} · {site}</title>\n\
         <style>{CSS}</style>\n</head>\n<body>\n<main>\n<p class=\"brand\"><bdi>{site}</bdi></p>\n\
         <h1>{heading}</h1>\n{body}\n</main>\n</body>\n</html>\n",
        lang = lang.tag(),
        dir = lang.dir().as_str(),
        // A right-to-left title keeps Fluent's isolation marks (see `Words::text`): fine in
        // `<title>`, and made `<bdi>` elements in the heading like in the rest of the page.
        title = escape(title),
        heading = escape(title).replace(FSI, "<bdi>").replace(PDI, "</bdi>"),
        site = escape(site),
    )
}

/// A paragraph of already-escaped HTML.
pub(crate) fn para(html: &str) -> String {
    format!("<p>{html}</p>\n")
}

/// A form with one button that POSTs to `action` (already a path, escaped here).
pub(crate) fn button_form(
    action: &str,
    hidden: &[(&str, &str)],
    label: &str,
    primary: bool,
) -> String {
    let mut inputs = String::new();
    for (name, value) in hidden {
        inputs.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        ));
    }
    let class = if primary { "" } else { " class=\"secondary\"" };
    format!(
        "<form method=\"post\" action=\"{}\">{inputs}<button type=\"submit\"{class}>{}</button></form>\n",
        escape(action),
        escape(label)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> PageWords {
        PageWords::load(None).expect("built-in catalogues load")
    }

    #[test]
    fn negotiation_order() {
        let w = words();
        let tag = |l: Lang| l.tag();
        assert_eq!(tag(w.negotiate(Some("fr"), Some("en"), None)), "fr");
        assert_eq!(tag(w.negotiate(None, Some("fr-CA"), Some("en"))), "fr");
        assert_eq!(
            tag(w.negotiate(None, Some("sw"), Some("sw-KE,ar-EG;q=0.8,en;q=0.5"))),
            "ar"
        );
        assert_eq!(tag(w.negotiate(None, None, Some("xx"))), "en");
    }

    #[test]
    fn the_six_un_languages_have_pages_and_a_mail() {
        let w = words();
        for tag in ["ar", "en", "es", "fr", "ru", "zh"] {
            let lang = w.lang(tag).unwrap_or_else(|| panic!("no pages in {tag}"));
            let name = w.pages(lang).text("language-name");
            assert_ne!(name, "language-name", "{tag}");
            let subject = w
                .confirmation(lang)
                .text_with("subject", &[("list", Arg::Text("X"))]);
            assert!(subject.contains('X'), "{tag}: {subject}");
        }
        assert_eq!(w.lang("ar").map(Lang::dir), Some(Dir::Rtl));
    }

    #[test]
    fn values_are_escaped_and_isolated() {
        let w = words();
        let en = w.pages(Lang::FALLBACK);
        let s = en.html_with(
            "unsubscribe-title",
            &[("list", Arg::Text("<script>x</script>"))],
        );
        assert_eq!(
            s,
            "Unsubscribe from <bdi>&lt;script&gt;x&lt;/script&gt;</bdi>?"
        );
        let plain = en.text_with("unsubscribe-title", &[("list", Arg::Text("News"))]);
        assert_eq!(plain, "Unsubscribe from News?");
        let p = page(Lang::FALLBACK, "A & B", "T<", "<p>ok</p>");
        assert!(p.contains("<title>T&lt; · A &amp; B</title>"));
        assert!(p.contains("<html lang=\"en\" dir=\"ltr\">"));
    }

    #[test]
    fn plurals_follow_the_language() {
        let w = words();
        let en = w.pages(Lang::FALLBACK);
        assert_eq!(
            en.text_with("others-hint", &[("count", Arg::Number(1))]),
            "You still receive one other list from us."
        );
        assert_eq!(
            en.text_with("others-hint", &[("count", Arg::Number(3))]),
            "You still receive 3 other lists from us."
        );
    }

    #[test]
    fn csp_allows_exactly_the_stylesheet() {
        assert!(PAGE_CSP.contains("style-src 'sha256-"));
        assert!(!PAGE_CSP.contains("unsafe-inline"));
    }
}
