//! `bulletin init NAME`: a project that composes, previews and sends at once, with no edits,
//! through the real binary in an empty folder, and that a second `init` leaves alone.

use std::path::Path;

use bulletin_testkit::project::{Backend, Project};
use mail_parser::MessageParser;

/// The binary in `dir`, with nothing from the caller's environment choosing a configuration.
fn bulletin(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("bulletin").expect("binary");
    cmd.current_dir(dir);
    for key in bulletin_testkit::bulletin_vars() {
        cmd.env_remove(key);
    }
    cmd
}

/// Runs `args` in `dir`, expecting success; returns stderr.
fn ok(dir: &Path, args: &[&str]) -> String {
    ok_on(dir, None, args)
}

/// [`ok`] on the database `url` when given (the PostgreSQL pass), else on the project's
/// own default, the SQLite file `init` configures.
fn ok_on(dir: &Path, url: Option<&str>, args: &[&str]) -> String {
    let mut cmd = bulletin(dir);
    if let Some(url) = url {
        cmd.env("BULLETIN_DATABASE_URL", url);
    }
    let out = cmd
        .env(
            "BULLETIN_SECRET",
            "a-test-secret-0123456789abcdef0123456789",
        )
        .args(args)
        .output()
        .expect("binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "`bulletin {}` failed:\n{}\n{stderr}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// The example edition's folder name, as `init` writes it and its next steps name it.
const EDITION: &str = "editions/first-edition";

#[test]
fn init_makes_a_project_that_composes_previews_and_sends_with_no_edits() {
    let tmp = Project::bare();
    let said = ok(tmp.path(), &["init", "my-news"]);
    let project = tmp.path().join("my-news");
    let url = (tmp.backend() == Backend::Postgres).then(|| tmp.database_url());
    let ok = |dir: &Path, args: &[&str]| ok_on(dir, url.as_deref(), args);

    // The next steps start with `cd NAME` and name the exact commands played below.
    let steps = said
        .split_once("Next steps:")
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no next steps in:\n{said}"));
    let commands: Vec<&str> = steps
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(commands.first().copied(), Some("cd my-news"), "{said}");
    for expected in [
        format!("bulletin compose {EDITION}"),
        format!("bulletin preview {EDITION}"),
        "bulletin lists add news".to_string(),
        "bulletin subscribers import subscribers/sample.csv".to_string(),
        format!("bulletin send {EDITION} --list news --outbox outbox --yes"),
    ] {
        assert!(
            commands.iter().any(|c| c.starts_with(&expected)),
            "`{expected}` in:\n{said}"
        );
    }

    let report = ok(&project, &["compose", EDITION]);
    assert!(
        report.contains("lint: 0 error(s), 0 warning(s)"),
        "the example edition lints clean: {report}"
    );
    for lang in ["en", "fr"] {
        let html = std::fs::read_to_string(
            project
                .join("out/first-edition")
                .join(lang)
                .join("email.html"),
        )
        .expect("composed HTML");
        assert!(html.contains("<img"), "{lang}: the example has a picture");
    }
    ok(&project, &["preview", EDITION]);
    assert!(project.join("out/first-edition/preview.html").is_file());

    ok(&project, &["lists", "add", "news"]);
    ok(
        &project,
        &["subscribers", "import", "subscribers/sample.csv"],
    );
    ok(
        &project,
        &[
            "send", EDITION, "--list", "news", "--outbox", "outbox", "--yes",
        ],
    );

    // One message per sample subscriber, each in the subscriber's language.
    let csv = std::fs::read_to_string(project.join("subscribers/sample.csv")).expect("csv");
    let people: Vec<(String, String)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[0].to_string(), cells[2].to_string())
        })
        .collect();
    let languages: std::collections::BTreeSet<&str> =
        people.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(languages.into_iter().collect::<Vec<_>>(), ["en", "fr"]);
    let mut received = Vec::new();
    for entry in std::fs::read_dir(project.join("outbox/new")).expect("Maildir outbox/new") {
        let raw = std::fs::read(entry.expect("entry").path()).expect("message");
        let message = MessageParser::default().parse(&raw).expect("parses");
        let to = message
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .expect("a recipient")
            .to_string();
        let html = message.body_html(0).expect("an HTML part").to_string();
        let lang = ["en", "fr"]
            .into_iter()
            .find(|l| html.contains(&format!("<html lang=\"{l}\"")))
            .unwrap_or("?")
            .to_string();
        let text = message.body_text(0).expect("a text part").to_string();
        received.push((to, lang, text));
    }
    received.sort();
    let mut expected = people.clone();
    expected.sort();
    assert_eq!(
        received
            .iter()
            .map(|(to, lang, _)| (to.clone(), lang.clone()))
            .collect::<Vec<_>>(),
        expected
    );
    for (to, lang, text) in &received {
        let words = if lang == "fr" {
            "Se désabonner"
        } else {
            "Unsubscribe"
        };
        assert!(text.contains(words), "{to} ({lang}):\n{text}");
    }
}

#[test]
fn init_again_overwrites_nothing_and_says_what_it_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    ok(tmp.path(), &["init", "my-news"]);
    let project = tmp.path().join("my-news");
    let config = project.join("bulletin.toml");
    let article = project.join(EDITION).join("edition.toml");
    std::fs::write(&config, "# mine\n").expect("write");
    std::fs::write(&article, "# mine too\n").expect("write");
    let said = ok(tmp.path(), &["init", "my-news"]);
    assert_eq!(std::fs::read_to_string(&config).expect("read"), "# mine\n");
    assert_eq!(
        std::fs::read_to_string(&article).expect("read"),
        "# mine too\n"
    );
    for kept in ["bulletin.toml", "edition.toml", "sample.csv"] {
        assert!(
            said.lines()
                .any(|l| l.starts_with("kept existing") && l.contains(kept)),
            "`kept existing …{kept}` in:\n{said}"
        );
    }
    assert!(!said.contains("created"), "{said}");
}
