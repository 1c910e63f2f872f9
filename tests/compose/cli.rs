//! `bulletin compose` and `bulletin preview` (file mode) as a user runs them.

use predicates::prelude::*;

#[test]
fn compose_writes_every_language_and_a_clean_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    super::bulletin(dir.path())
        .arg("compose")
        .arg(super::example())
        .assert()
        .success()
        // The Arabic and Spanish variants leave some articles in English on purpose.
        .stderr(predicate::str::contains("lint: 0 error(s), 2 warning(s)"));
    for lang in ["ar", "en", "es", "fr"] {
        let out = dir.path().join("out/glo-act-special-edition").join(lang);
        for file in ["email.html", "email.txt", "archive.html", "email.mjml"] {
            assert!(out.join(file).is_file(), "{lang}/{file}");
        }
        let html = std::fs::read_to_string(out.join("email.html")).expect("html");
        assert!(html.contains(&format!("<html lang=\"{lang}\"")));
        assert!(
            html.contains("Ana Lima"),
            "the sample subscriber fills the file"
        );
        assert!(!html.contains("BxSLOT"));
        let text = std::fs::read_to_string(out.join("email.txt")).expect("text");
        assert!(text.contains("https://newsletter.example.org/u/test-copy"));
        let archive = std::fs::read_to_string(out.join("archive.html")).expect("archive");
        assert!(!archive.contains("Ana Lima"), "the web version is nobody's");
    }
}

#[test]
fn compose_one_language_into_a_chosen_folder_with_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = super::bulletin(dir.path())
        .args(["--json", "compose", "--lang", "fr", "--out", "site"])
        .arg(super::example())
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).expect("JSON");
    assert_eq!(report["slug"], "glo-act-special-edition");
    assert_eq!(report["variants"].as_array().map(Vec::len), Some(1));
    assert_eq!(report["variants"][0]["language"], "fr");
    assert_eq!(report["content_hash"].as_str().map(str::len), Some(64));
    assert!(dir.path().join("site/fr/email.html").is_file());
    assert!(!dir.path().join("site/en").exists());

    super::bulletin(dir.path())
        .args(["compose", "--lang", "de"])
        .arg(super::example())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no `de` variant; its languages are en, ar, es, fr",
        ));
}

#[test]
fn project_templates_override_the_built_in_theme_file_by_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    super::write_template(
        dir.path(),
        "intro.mjml.hbs",
        "<mj-section><mj-column><mj-text>Our own intro for {{default subscriber.name \"you\"}}.</mj-text></mj-column></mj-section>\n",
    );
    super::bulletin(dir.path())
        .arg("compose")
        .arg(super::example())
        .assert()
        .success();
    let html =
        std::fs::read_to_string(dir.path().join("out/glo-act-special-edition/en/email.html"))
            .expect("html");
    assert!(html.contains("Our own intro for <bdi>Ana Lima</bdi>."));
    assert!(
        html.contains("Six pillars"),
        "the other built-in partials stay"
    );
}

#[test]
fn preview_writes_one_page_with_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    super::bulletin(dir.path())
        .args(["preview", "--out", "p.html"])
        .arg(super::fixture("minimal"))
        .assert()
        .success();
    let page = std::fs::read_to_string(dir.path().join("p.html")).expect("page");
    for part in [
        "id=\"lang-en\"",
        "id=\"lang-es\"",
        "Desktop (700 px)",
        "Phone (375 px)",
        "Message headers",
        "List-Unsubscribe",
        "Text part",
        "untranslated, shown in `en`: article tides",
    ] {
        assert!(page.contains(part), "missing {part}");
    }
    super::bulletin(dir.path())
        .args(["preview", "--to", "not-an-address"])
        .arg(super::fixture("minimal"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not an address"));
}
