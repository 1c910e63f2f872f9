use super::*;

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

#[test]
fn every_built_in_language_has_every_theme_message() {
    let catalogues = Catalogues::builtin().expect("built-in catalogues parse");
    let (english, _) = catalogues.messages("en", "theme");
    assert!(english.contains_key("read-more"));
    for lang in ["ar", "de", "es", "fr", "pt", "ru", "zh"] {
        let (messages, fell_back) = catalogues.messages(lang, "theme");
        assert_eq!(fell_back, [], "{lang} lacks theme messages");
        for (id, text) in &messages {
            // Some words are spelt the same in both languages.
            if (lang, id.as_str()) == ("fr", "contact") {
                continue;
            }
            assert_ne!(
                Some(text),
                english.get(id),
                "{lang} `{id}` is the English text"
            );
        }
    }
}

#[test]
fn a_missing_message_falls_back_per_key_and_says_so() {
    let dir = project(&[("sw/theme.ftl", "read-more = Soma zaidi\n")]);
    let catalogues = Catalogues::load(Some(dir.path())).expect("loads");
    assert_eq!(
        catalogues.message("sw", "theme", "read-more", None),
        ("Soma zaidi".to_string(), None)
    );
    let (text, fallback) = catalogues.message("sw", "theme", "unsubscribe", None);
    assert_eq!(text, "Unsubscribe");
    let fallback = fallback.expect("reported");
    assert_eq!(fallback.used.as_deref(), Some("en"));
    assert_eq!(fallback.key, "unsubscribe");
    // A regional variant reads its base language's words without a warning.
    assert_eq!(
        catalogues.message("pt-BR", "theme", "read-more", None),
        ("Ler mais".to_string(), None)
    );
    let (text, fallback) = catalogues.message("fr", "theme", "no-such-key", None);
    assert_eq!(text, "no-such-key");
    assert_eq!(fallback.expect("reported").used, None);
}

#[test]
fn a_project_overrides_one_message_and_keeps_the_others() {
    let dir = project(&[(
        "fr/theme.ftl",
        "read-more = Lire l’article\nextra = En plus\n",
    )]);
    let catalogues = Catalogues::load(Some(dir.path())).expect("loads");
    let (messages, fell_back) = catalogues.messages("fr", "theme");
    assert_eq!(messages["read-more"], "Lire l’article");
    assert_eq!(messages["unsubscribe"], "Se désabonner");
    assert_eq!(messages["extra"], "En plus");
    assert_eq!(fell_back, []);
}

#[test]
fn plurals_follow_the_languages_rules_and_numbers_its_digits() {
    let dir = project(&[
        (
            "ru/pages.ftl",
            "lists = { $count ->\n    [one] { $count } рассылка\n    [few] { $count } рассылки\n   *[many] { $count } рассылок\n}\n",
        ),
        (
            "ar/pages.ftl",
            "lists = { $count ->\n    [zero] لا قوائم\n    [one] قائمة واحدة\n    [two] قائمتان\n    [few] { $count } قوائم\n   *[other] { $count } قائمة\n}\n",
        ),
    ]);
    let catalogues = Catalogues::load(Some(dir.path())).expect("loads");
    let count = |lang: &str, n: i64| {
        let mut args = FluentArgs::new();
        args.set("count", n);
        let (text, _) = catalogues.message(lang, "pages", "lists", Some(&args));
        text.replace(['\u{2068}', '\u{2069}'], "")
    };
    assert_eq!(count("ru", 1), "1 рассылка");
    assert_eq!(count("ru", 3), "3 рассылки");
    assert_eq!(count("ru", 25), "25 рассылок");
    assert_eq!(count("ar", 2), "قائمتان");
    assert_eq!(count("ar", 5), "5 قوائم");
    assert_eq!(count("ar", 11), "11 قائمة");
    // The catalogue's language decides the digits: `ar-EG` reading `ar`'s catalogue writes
    // `ar`'s digits, and gets Egypt's Arabic-Indic ones from a catalogue of its own.
    assert_eq!(count("ar-EG", 11), "11 قائمة");
}

#[test]
fn a_bad_file_is_an_error_naming_file_and_line() {
    let dir = project(&[(
        "es/theme.ftl",
        "# comment\nread-more = Leer\nunsubscribe = { $x\n",
    )]);
    let err = Catalogues::load(Some(dir.path())).expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("es/theme.ftl:3:"), "{text}");
    assert!(text.contains("projectfluent.org"), "{text}");

    let dir = project(&[("es/theme.ftl", "read-more = Leer\n\nread-more = Ver\n")]);
    let text = Catalogues::load(Some(dir.path()))
        .expect_err("refused")
        .to_string();
    assert!(
        text.contains("es/theme.ftl:3: message `read-more` is already defined at line 1"),
        "{text}"
    );

    let dir = project(&[("not a tag/theme.ftl", "a = b\n")]);
    let text = Catalogues::load(Some(dir.path()))
        .expect_err("refused")
        .to_string();
    assert!(text.contains("`not a tag` is not a language tag"), "{text}");
}

#[test]
fn direction_follows_script_then_language() {
    for rtl in [
        "ar", "ar-EG", "fa", "he", "ur", "ps", "dv", "yi", "ckb", "pa-Arab", "prs",
    ] {
        assert_eq!(direction(rtl), Dir::Rtl, "{rtl}");
    }
    for ltr in ["en", "fr", "zh-Hant", "ru", "ku-Latn", "az", "uz-Cyrl"] {
        assert_eq!(direction(ltr), Dir::Ltr, "{ltr}");
    }
}
