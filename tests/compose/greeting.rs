//! The theme's greeting line ("Dear Ana Lima,") and an intro that greets the reader itself:
//! the lint report warns about the double greeting, and `greeting = false` in edition.toml
//! takes the theme's line away.

use std::path::{Path, PathBuf};

use predicates::prelude::*;

/// Composes fixture `name` in a fresh folder: the folder, and what `compose` printed.
fn compose(name: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = super::bulletin(dir.path())
        .arg("compose")
        .arg(super::fixture(name))
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    (dir, stderr)
}

fn read(dir: &Path, slug: &str, lang: &str, file: &str) -> String {
    std::fs::read_to_string(dir.join("out").join(slug).join(lang).join(file))
        .expect("composed file")
}

/// A copy of fixture `name` in `dir`, its edition.toml changed by `edit`.
fn edited_copy(dir: &Path, name: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let edition = dir.join("e");
    super::copy_dir(&super::fixture(name), &edition);
    let manifest = edition.join("edition.toml");
    let text = std::fs::read_to_string(&manifest).expect("read");
    std::fs::write(&manifest, edit(&text)).expect("write");
    edition
}

#[test]
fn an_intro_that_greets_while_the_theme_greets_is_a_warning_naming_file_and_line() {
    let (dir, stderr) = compose("greeting-twice");
    // One warning per intro, on the line where its text starts, with the fix.
    for (line, word) in [(10, "Hello"), (18, "Bonjour")] {
        let at = format!("greeting-twice/edition.toml:{line}");
        assert!(
            stderr.lines().any(|l| l.starts_with("warning[greeting]")
                && l.contains(&at)
                && l.contains(&format!("`{word}`"))
                && l.contains("greeting = false")),
            "expected a greeting warning at {at}:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("lint: 0 error(s), 2 warning(s)"),
        "{stderr}"
    );
    // The theme's line is there: the reader would be greeted twice.
    assert!(read(dir.path(), "greeting-twice", "en", "email.txt").contains("Dear Ana Lima,"));
    assert!(
        read(dir.path(), "greeting-twice", "fr", "email.html")
            .contains("Bonjour <bdi>Ana Lima</bdi>,")
    );
}

#[test]
fn greeting_false_leaves_the_theme_greeting_out_of_html_and_text() {
    let (dir, stderr) = compose("greeting-off");
    assert!(
        stderr.contains("lint: 0 error(s), 0 warning(s)"),
        "{stderr}"
    );
    for (lang, theme_greeting, own) in [
        ("en", "Dear Ana Lima,", "Hello Ana Lima, the planting day"),
        ("fr", "Bonjour Ana Lima,</", "Bonjour Ana Lima, la journée"),
    ] {
        let html = read(dir.path(), "greeting-off", lang, "email.html");
        let text = read(dir.path(), "greeting-off", lang, "email.txt");
        // In HTML a subscriber's name is isolated in <bdi>.
        let isolated = |s: &str| s.replace("Ana Lima", "<bdi>Ana Lima</bdi>");
        assert!(!html.contains(&isolated(theme_greeting)), "{lang}: {html}");
        assert!(
            !text.contains(&theme_greeting.replace("</", "\n")),
            "{lang}: {text}"
        );
        assert!(
            html.contains(&isolated(own)) && text.contains(own),
            "{lang}: the intro stays"
        );
    }
}

#[test]
fn greeting_must_be_true_or_false() {
    let dir = tempfile::tempdir().expect("tempdir");
    let edition = edited_copy(dir.path(), "greeting-off", |text| {
        text.replace("greeting = false", "greeting = \"no\"")
    });
    super::bulletin(dir.path())
        .arg("compose")
        .arg(&edition)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("edition.toml:9"))
        .stderr(predicate::str::contains("expected a boolean"));
}

#[test]
fn no_greeting_and_no_intro_leave_no_empty_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Both intros gone: the block under the header would have nothing in it.
    let edition = edited_copy(dir.path(), "greeting-off", |text| {
        let without: String = text
            .split("intro = \"\"\"")
            .enumerate()
            .map(|(i, part)| match part.split_once("\"\"\"") {
                Some((_, rest)) if i > 0 => rest.to_string(),
                _ => part.to_string(),
            })
            .collect();
        assert!(!without.contains("intro ="), "{without}");
        without
    });
    super::bulletin(dir.path())
        .arg("compose")
        .arg(&edition)
        .assert()
        .success();
    let html = read(dir.path(), "greeting-off", "en", "email.html");
    assert!(html.contains("Planting day"), "the articles are there");
    assert!(
        !html.contains("class=\"intro"),
        "an empty intro block: {html}"
    );
}
