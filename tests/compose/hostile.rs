//! Hostile article bodies: nesting deep enough to exhaust a recursive parser, and raw HTML
//! that tries to run script or to leave the MJML block it is put in. `compose` must end with
//! an exit code (never a signal), and what reaches `email.html` and `archive.html` must be
//! clean.

use std::path::{Path, PathBuf};

/// A copy of the `minimal` fixture in `dir` with `body` appended to `articles/tides.md`.
fn edition_with(dir: &Path, body: &str) -> PathBuf {
    let edition = dir.join("edition");
    super::copy_dir(&super::fixture("minimal"), &edition);
    let article = edition.join("articles/tides.md");
    let mut text = std::fs::read_to_string(&article).expect("fixture article");
    // The fixture ends with a newline: one blank line, and the body starts on line 7.
    text.push('\n');
    text.push_str(body);
    std::fs::write(&article, text).expect("write article");
    edition
}

/// Runs `compose` on the `minimal` edition with `body` appended to one article, in a fresh
/// folder (returned, so that its `out/` can be read), with the output and stderr.
fn compose(body: &str) -> (tempfile::TempDir, std::process::Output, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let edition = edition_with(dir.path(), body);
    let out = super::bulletin(dir.path())
        .arg("compose")
        .arg(&edition)
        .output()
        .expect("binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (dir, out, stderr)
}

/// Runs `compose` on a body nested 10,000 levels deep: it must exit with a code, 0 or 2, and
/// when it refuses, name the article file.
fn compose_survives(body: &str) {
    let (_dir, out, stderr) = compose(body);
    let code = out.status.code();
    assert!(
        code.is_some(),
        "compose was killed by a signal ({:?}):\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("overflow"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    if code != Some(0) {
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("articles/tides.md:"), "{stderr}");
        assert!(stderr.contains("nest"), "{stderr}");
    }
}

const DEPTH: usize = 10_000;

#[test]
fn ten_thousand_quote_levels() {
    compose_survives(&format!("{} deep\n", ">".repeat(DEPTH)));
}

#[test]
fn ten_thousand_list_levels() {
    // `- - - item` opens a list in a list item on one line: 10,000 levels in 20 KB (indented
    // lines would make a file of 100 MB, refused for its size before any parsing).
    compose_survives(&format!("{}item\n", "- ".repeat(DEPTH)));
}

#[test]
fn ten_thousand_emphasis_levels() {
    compose_survives(&format!("{}x{}\n", "*".repeat(DEPTH), "*".repeat(DEPTH)));
}

#[test]
fn ten_thousand_nested_divs() {
    compose_survives(&format!(
        "{}x{}\n",
        "<div>".repeat(DEPTH),
        "</div>".repeat(DEPTH)
    ));
}

#[test]
fn nesting_refusal_names_the_line() {
    let (_dir, out, stderr) = compose(&format!("{} deep\n", ">".repeat(500)));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("articles/tides.md:7:"), "{stderr}");
}

/// Raw HTML that would run script, load remote frames, restyle the page or close the
/// `<mj-text>` it sits in to open an `<mj-raw>` of its own.
const HOSTILE_HTML: &str = "\
Hello <b onclick=\"steal()\">bold</b> and <a href=\"javascript:alert(1)\">a link</a>.

<script>alert('script')</script>

<iframe src=\"https://evil.example/frame\"></iframe>

<style>body { display: none }</style>

<p style=\"color: red; background: url(javascript:alert(2))\">styled</p>

</mj-text></mj-column></mj-section><mj-raw><script>alert('raw')</script></mj-raw>

<img src=\"https://newsletter.example.org/i.png\" alt=\"fine\" onerror=\"alert(3)\">
";

#[test]
fn raw_html_is_sanitised_and_reported() {
    let (dir, out, stderr) = compose(HOSTILE_HTML);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for lang in ["en", "es"] {
        let folder = dir.path().join("out/minimal").join(lang);
        for file in ["email.html", "archive.html"] {
            let html = std::fs::read_to_string(folder.join(file)).expect("composed file");
            let lower = html.to_lowercase();
            for bad in [
                "<script",
                "alert(",
                "onclick",
                "onerror",
                "javascript:",
                "<iframe",
                "evil.example",
                "display: none",
                "steal()",
            ] {
                assert!(!lower.contains(bad), "{lang}/{file} holds `{bad}`");
            }
            // What is allowed stays: the text, the bold, the safe image and colour.
            assert!(html.contains("<b>bold</b>"), "{lang}/{file}");
            assert!(html.contains("styled"), "{lang}/{file}");
            assert!(html.contains("color:red") || html.contains("color: red"));
            assert!(html.contains("alt=\"fine\""), "{lang}/{file}");
        }
        // Nor does script text reach the text part.
        let text = std::fs::read_to_string(folder.join("email.txt")).expect("text part");
        assert!(!text.contains("alert("), "{lang}/email.txt: {text}");
        assert!(text.contains("bold"), "{lang}/email.txt");
        // The MJML block was not left: no mj-raw of the article's own in the MJML.
        let mjml = std::fs::read_to_string(folder.join("email.mjml")).expect("mjml");
        let count = |s: &str| mjml.matches(s).count();
        assert_eq!(count("<mj-raw>"), count("</mj-raw>"));
        assert!(!mjml.contains("alert('raw')"), "{lang}: {mjml}");
    }
    // The lint report names what was removed, with file and line, as warnings.
    for (line, what) in [
        (7, "onclick"),
        (7, "javascript:"),
        (9, "<script>"),
        (11, "<iframe>"),
        (13, "<style>"),
        (15, "url("),
        (17, "</mj-text>"),
        (17, "<mj-raw>"),
        (19, "onerror"),
    ] {
        let at = format!("articles/tides.md:{line}:");
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with("warning[html]") && l.contains(&at) && l.contains(what)),
            "expected a warning for `{what}` on line {line}:\n{stderr}"
        );
    }
}

/// A 50 MB article is refused from its size, before it is read (the file here is sparse: it
/// costs no disk, and reading it would cost 50 MB and more to parse).
#[test]
fn a_huge_article_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let edition = edition_with(dir.path(), "");
    let article = edition.join("articles/huge.md");
    std::fs::File::create(&article)
        .and_then(|f| f.set_len(50_000_000))
        .expect("sparse file");
    let out = super::bulletin(dir.path())
        .arg("compose")
        .arg(&edition)
        .output()
        .expect("binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("articles/huge.md") && stderr.contains("1 MiB"),
        "{stderr}"
    );
}
