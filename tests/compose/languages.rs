//! Each built-in language's variant is entirely in that language: none of the theme's English
//! words remain, and the date is written the way CLDR says the language writes it.

use std::path::Path;

use bulletin::content::Edition;
use bulletin::i18n::Catalogues;
use bulletin::render::{self, Theme};

/// Built-in languages and the CLDR long form of 30 June 2017 in each.
const DATES: &[(&str, &str)] = &[
    ("ar", "30 يونيو 2017"),
    ("de", "30. Juni 2017"),
    ("en", "30 June 2017"),
    ("es", "30 de junio de 2017"),
    ("fr", "30 juin 2017"),
    ("pt", "30 de junho de 2017"),
    ("ru", "30 июня 2017\u{202f}г."),
    ("zh", "2017年6月30日"),
];

/// An edition written in `lang` only, whose own words are neutral (`X1`…) so that any English
/// in the output can only be the theme's. It uses every theme word: greeting, links, button,
/// documents, footer.
fn edition_in(dir: &Path, lang: &str) {
    std::fs::create_dir_all(dir.join("articles")).expect("mkdir");
    std::fs::write(
        dir.join("edition.toml"),
        format!(
            "slug = \"x-{lang}\"\ntitle = \"X1\"\nsubject = \"X2\"\npreheader = \"X3\"\n\
             date = \"2017-06-30\"\ndefault_language = \"{lang}\"\nintro = \"X4\"\n\n\
             [[sections]]\nid = \"s\"\ntitle = \"X5\"\nlayout = \"cards\"\narticles = [\"a\"]\n"
        ),
    )
    .expect("write manifest");
    std::fs::write(
        dir.join("articles/a.md"),
        format!(
            "---\ntitle: X6\nsummary: X7\nlanguage: {lang}\nlink: \"https://example.org/a\"\n\
             links:\n  - title: X8\n    url: \"https://example.org/b\"\n\
             documents:\n  - title: X9\n    url: \"https://example.org/c.pdf\"\n---\nX10\n"
        ),
    )
    .expect("write article");
}

#[test]
fn every_built_in_language_has_no_english_theme_word_and_a_cldr_date() {
    let theme = Theme::load(None).expect("theme");
    let (english, _) = Catalogues::builtin()
        .expect("catalogues")
        .messages("en", "theme");
    for (lang, date) in DATES {
        let dir = tempfile::tempdir().expect("tempdir");
        edition_in(dir.path(), lang);
        let edition = Edition::load(dir.path()).expect("edition loads");
        let rendered = render::render(&edition, &theme, &super::list(), None).expect("renders");
        let variant = &rendered.variants[*lang];
        let html = variant.html.with_placeholders();
        let text = variant.text.with_placeholders();
        assert!(html.contains(date), "{lang}: no `{date}` in the HTML");
        assert!(text.contains(date), "{lang}: no `{date}` in the text part");
        assert!(
            rendered
                .lint
                .findings
                .iter()
                .all(|f| f.code != "theme-fallback"),
            "{lang}: {}",
            rendered.lint
        );
        if *lang == "en" {
            continue;
        }
        for (id, word) in &english {
            // Punctuation, and words spelt alike in both languages (French "Contact"), are
            // not English; the theme does not show `contact` anyway.
            if word.chars().count() < 3 || id == "contact" {
                continue;
            }
            assert!(
                !html.contains(word.as_str()),
                "{lang}: English `{word}` ({id}) in the HTML"
            );
            assert!(
                !text.contains(word.as_str()),
                "{lang}: English `{word}` ({id}) in the text"
            );
        }
    }
}
