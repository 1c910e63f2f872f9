//! Editions broken on purpose: each must stop `compose` with exit code 2 and a message that
//! names the file and line to fix (and, where one exists, the fix).

use predicates::prelude::*;

/// Runs `compose` on fixture `name` (with its own templates/ when it has one) and returns
/// stderr, after checking the exit code.
fn compose_fails(name: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let edition = super::fixture(name);
    let mut cmd = super::bulletin(dir.path());
    cmd.arg("compose").arg(&edition);
    let templates = edition.join("templates");
    if templates.is_dir() {
        cmd.arg("--templates").arg(&templates);
    }
    let out = cmd.assert().failure().code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        !dir.path().join("out").exists(),
        "{name}: nothing is written for a broken edition"
    );
    stderr
}

fn assert_names(stderr: &str, file_line: &str, message: &str) {
    assert!(
        stderr.contains(file_line),
        "expected `{file_line}` in:\n{stderr}"
    );
    assert!(
        stderr.contains(message),
        "expected `{message}` in:\n{stderr}"
    );
}

#[test]
fn bad_yaml_front_matter() {
    let e = compose_fails("broken-yaml");
    assert_names(
        &e,
        "broken-yaml/articles/story.md:3:",
        "invalid YAML front matter",
    );
}

#[test]
fn missing_required_field() {
    let e = compose_fails("missing-field");
    assert_names(
        &e,
        "missing-field/articles/story.md:1:",
        "the front matter has no `summary`; add a line such as `summary: \"…\"`",
    );
}

#[test]
fn unknown_key_with_a_close_match() {
    let e = compose_fails("unknown-key");
    assert_names(
        &e,
        "unknown-key/articles/story.md:3:",
        "unknown key `sumary` in the front matter; did you mean `summary`?",
    );
}

#[test]
fn undefined_handlebars_variable() {
    let e = compose_fails("bad-handlebars");
    assert_names(
        &e,
        "bad-handlebars/templates/intro.mjml.hbs:3:",
        "`{{subscriber.nmae}}` is not defined; did you mean `subscriber.name`?",
    );
}

#[test]
fn unclosed_handlebars_block() {
    let e = compose_fails("bad-handlebars-syntax");
    assert_names(
        &e,
        "bad-handlebars-syntax/templates/intro.mjml.hbs:3:",
        "`{{#if}}` is never closed; add `{{/if}}`",
    );
}

#[test]
fn mjml_closing_tag_out_of_place() {
    let e = compose_fails("bad-mjml");
    assert_names(
        &e,
        "bad-mjml/templates/intro.mjml.hbs:5:",
        "MJML error: `</mj-column>` closes an element that is not open here",
    );
}

#[test]
fn mjml_unknown_element() {
    let e = compose_fails("bad-mjml-element");
    assert_names(
        &e,
        "bad-mjml-element/templates/intro.mjml.hbs:2:",
        "unknown element `<mj-colum>`; did you mean `<mj-column>`?",
    );
}

#[test]
fn relative_link() {
    let e = compose_fails("relative-link");
    assert_names(
        &e,
        "error[link] ",
        "relative-link/articles/story.md:7: link `/reports/2024.pdf` is relative",
    );
    assert!(e.contains("lint found 1 error(s)"), "{e}");
}

#[test]
fn image_without_alt_text() {
    let e = compose_fails("image-without-alt");
    assert_names(
        &e,
        "image-without-alt/articles/story.md:7:",
        "has no alt text; write it as ![what it shows](",
    );
}

#[test]
fn unresolved_placeholder() {
    let e = compose_fails("unresolved-placeholder");
    assert_names(
        &e,
        "unresolved-placeholder/articles/story.md:5:",
        "unresolved placeholder `{{subscriber.nam}}`; did you mean `{{subscriber.name}}`?",
    );
}

#[test]
fn missing_unsubscribe_link() {
    let e = compose_fails("no-unsubscribe");
    assert_names(&e, "error[unsubscribe]", "has no unsubscribe link");
}

#[test]
fn html_over_gmail_clipping_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let edition = dir.path().join("too-big");
    super::copy_dir(&super::fixture("too-big"), &edition);
    let article = edition.join("articles/story.md");
    let mut text = std::fs::read_to_string(&article).expect("read");
    for i in 0..700 {
        text.push_str(&format!(
            "\nParagraph {i}: the quick brown fox jumps over the lazy dog, again and again, \
             until the email is far too long for an inbox to show it whole.\n"
        ));
    }
    std::fs::write(&article, text).expect("write");
    let out = super::bulletin(dir.path())
        .arg("compose")
        .arg(&edition)
        .assert()
        .failure()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("error[size] (en): the HTML is")
            && stderr.contains("Gmail clips messages over 102 KB"),
        "{stderr}"
    );
}

#[test]
fn json_report_for_scripts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = super::bulletin(dir.path())
        .args(["--json", "compose"])
        .arg(super::fixture("relative-link"))
        .assert()
        .failure()
        .code(2);
    let report: serde_json::Value =
        serde_json::from_slice(&out.get_output().stdout).expect("stdout is JSON");
    let finding = &report["lint"]["findings"][0];
    assert_eq!(finding["severity"], "error");
    assert_eq!(finding["code"], "link");
    assert_eq!(finding["line"], 7);
    assert!(
        finding["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("articles/story.md"))
    );

    // An input error is reported in the same shape.
    super::bulletin(dir.path())
        .args(["--json", "compose"])
        .arg(super::fixture("unknown-key"))
        .assert()
        .code(2)
        .stdout(predicate::str::contains("\"code\": \"input\""))
        .stdout(predicate::str::contains("\"line\": 3"));
}

#[test]
fn not_an_edition_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    super::bulletin(dir.path())
        .args(["compose", "."])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "is not an edition folder: it has no edition.toml",
        ));
}

/// Writes an edition folder `name` into `dir` from its manifest and articles, and returns
/// `compose`'s stderr after checking that it failed as an input error.
fn compose_generated(
    dir: &std::path::Path,
    name: &str,
    manifest: &str,
    articles: &[(&str, &str)],
) -> String {
    let edition = dir.join(name);
    std::fs::create_dir_all(edition.join("articles")).expect("create edition");
    std::fs::write(edition.join("edition.toml"), manifest).expect("write manifest");
    for (file, text) in articles {
        std::fs::write(edition.join("articles").join(file), text).expect("write article");
    }
    let out = super::bulletin(dir)
        .arg("compose")
        .arg(&edition)
        .assert()
        .failure()
        .code(2);
    String::from_utf8_lossy(&out.get_output().stderr).to_string()
}

/// A bad `columns` in the second grid is reported at its own line, not at the first
/// `columns =` of the file (which belongs to a valid grid).
#[test]
fn bad_grid_columns_names_the_line_of_that_section() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = "slug = \"grids\"\n\
                    title = \"Grids\"\n\
                    subject = \"Two grids\"\n\
                    date = \"2024-03-01\"\n\
                    default_language = \"en\"\n\
                    \n\
                    [[sections]]\n\
                    id = \"first\"\n\
                    title = \"First\"\n\
                    layout = \"grid\"\n\
                    columns = 3\n\
                    articles = [\"one\"]\n\
                    \n\
                    [[sections]]\n\
                    id = \"second\"\n\
                    title = \"Second\"\n\
                    layout = \"grid\"\n\
                    columns = 5\n\
                    articles = [\"two\"]\n";
    let article = "---\ntitle: \"A story\"\nsummary: \"A summary.\"\n---\nBody.\n";
    let e = compose_generated(
        dir.path(),
        "grids",
        manifest,
        &[("one.md", article), ("two.md", article)],
    );
    assert_names(
        &e,
        "grids/edition.toml:18:",
        "section `second`: a grid has 2 or 3 columns",
    );
}

/// Front matter line numbers of an article saved with CRLF line ends are those an editor
/// shows, as with LF: the typo on line 3 is reported on line 3.
#[test]
fn crlf_front_matter_names_the_same_lines_as_lf() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = std::fs::read_to_string(super::fixture("unknown-key").join("edition.toml"))
        .expect("read manifest");
    let article =
        "---\r\ntitle: \"A story\"\r\nsumary: \"The key above is misspelt.\"\r\n---\r\nBody.\r\n";
    let e = compose_generated(
        dir.path(),
        "unknown-key",
        &manifest,
        &[("story.md", article)],
    );
    assert_names(
        &e,
        "unknown-key/articles/story.md:3:",
        "unknown key `sumary` in the front matter; did you mean `summary`?",
    );
}
