//! The catalogues compiled into the binary: one row per `locales/<lang>/<domain>.ftl` file.
//!
//! This table is the only list of built-in catalogues. A new domain (the public pages, the
//! confirmation mail) or a new language is a new file under `src/i18n/locales/` and a new
//! row here; nothing else in the code names them. A project adds or overrides messages
//! without recompiling through its own `locales/<lang>/<domain>.ftl` (see [`super`]).

/// One built-in catalogue file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BuiltIn {
    /// BCP 47 language tag, as the folder is named.
    pub(crate) lang: &'static str,
    /// What the messages are for: `theme` is the email theme's own words.
    pub(crate) domain: &'static str,
    /// The Fluent source.
    pub(crate) source: &'static str,
}

/// Expands to one [`BuiltIn`] row for `locales/<lang>/<domain>.ftl`.
macro_rules! ftl {
    ($lang:literal, $domain:literal) => {
        BuiltIn {
            lang: $lang,
            domain: $domain,
            source: include_str!(concat!("locales/", $lang, "/", $domain, ".ftl")),
        }
    };
}

/// Every built-in catalogue file. Keep rows grouped by domain, languages in tag order.
pub(crate) const CATALOGUES: &[BuiltIn] = &[
    ftl!("ar", "theme"),
    ftl!("de", "theme"),
    ftl!("en", "theme"),
    ftl!("es", "theme"),
    ftl!("fr", "theme"),
    ftl!("pt", "theme"),
    ftl!("ru", "theme"),
    ftl!("zh", "theme"),
    // The public pages of `bulletin serve` and its confirmation mail.
    ftl!("ar", "pages"),
    ftl!("en", "pages"),
    ftl!("es", "pages"),
    ftl!("fr", "pages"),
    ftl!("ru", "pages"),
    ftl!("zh", "pages"),
    ftl!("ar", "confirmation"),
    ftl!("en", "confirmation"),
    ftl!("es", "confirmation"),
    ftl!("fr", "confirmation"),
    ftl!("ru", "confirmation"),
    ftl!("zh", "confirmation"),
];
