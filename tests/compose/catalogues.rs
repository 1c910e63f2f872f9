//! The theme's words come from Fluent catalogues a project can override and extend from its
//! `locales/` folder, without recompiling; a missing word falls back per key and lint names it.

use std::path::Path;

use predicates::prelude::*;

/// The minimal fixture edition copied into `dir`, with a Swahili variant added (a language
/// bulletin has no built-in catalogue for).
fn edition_with_swahili(dir: &Path) -> std::path::PathBuf {
    let edition = dir.join("minimal");
    super::copy_dir(&super::fixture("minimal"), &edition);
    let manifest = edition.join("edition.toml");
    let mut text = std::fs::read_to_string(&manifest).expect("read manifest");
    text.push_str(
        "\n[translations.sw]\ntitle = \"Habari za pwani\"\nsubject = \"Habari za pwani\"\n\
         preheader = \"Toleo fupi.\"\nintro = \"Habari kutoka pwani!\"\n",
    );
    std::fs::write(&manifest, text).expect("write manifest");
    edition
}

#[test]
fn a_project_locale_overrides_words_and_adds_a_language_and_lint_names_each_fallback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let edition = edition_with_swahili(dir.path());
    std::fs::create_dir_all(dir.path().join("locales/sw")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("locales/es")).expect("mkdir");
    std::fs::write(
        dir.path().join("locales/sw/theme.ftl"),
        "unsubscribe = Jiondoe\npreferences = Mapendeleo yako\n",
    )
    .expect("write sw");
    std::fs::write(
        dir.path().join("locales/es/theme.ftl"),
        "unsubscribe = Cancelar la suscripción\n",
    )
    .expect("write es");
    super::bulletin(dir.path())
        .arg("compose")
        .arg(&edition)
        .assert()
        .success()
        .stderr(
            predicate::str::contains("theme-fallback")
                .and(predicate::str::contains(
                    "`read-more` (theme words, shown in `en`)",
                ))
                .and(predicate::str::contains("locales/sw/theme.ftl"))
                .and(predicate::str::contains("`unsubscribe`").not()),
        );
    let out = dir.path().join("out/minimal");
    let sw = std::fs::read_to_string(out.join("sw/email.html")).expect("sw html");
    assert!(
        sw.contains(">Jiondoe</a>"),
        "the project's Swahili word is used"
    );
    assert!(sw.contains(">Mapendeleo yako</a>"));
    assert!(
        sw.contains("View in your browser"),
        "a missing word is English"
    );
    let es = std::fs::read_to_string(out.join("es/email.html")).expect("es html");
    assert!(
        es.contains(">Cancelar la suscripción</a>"),
        "one word overridden"
    );
    assert!(
        es.contains(">Preferencias</a>"),
        "the other built-in words stay"
    );
}

#[test]
fn a_bad_catalogue_stops_compose_naming_its_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("locales/es")).expect("mkdir");
    std::fs::write(
        dir.path().join("locales/es/theme.ftl"),
        "# Nuestras palabras\nread-more = Leer\nunsubscribe = { $x\n",
    )
    .expect("write");
    super::bulletin(dir.path())
        .arg("compose")
        .arg(super::fixture("minimal"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("locales/es/theme.ftl:3:")
                .and(predicate::str::contains("projectfluent.org")),
        );
}
