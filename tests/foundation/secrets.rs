//! Secrets in URLs and empty secrets (#9 item 19), and error messages that point at what
//! exists: the variable that was set, the sections there are, the folder that is missing
//! (#9 item 20).

use crate::support::{Project, sqlite_only};

/// Runs `lists list` with `env` set and returns (exit code, stderr).
fn run_with(p: &Project, env: &[(&str, &str)]) -> (i32, String) {
    // The file's own [database] url is what some cases test, on either backend: not the
    // project database the harness names for the PostgreSQL pass.
    let out = p
        .cmd()
        .env_remove("BULLETIN_DATABASE_URL")
        .envs(env.iter().copied())
        .args(["lists", "list"])
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn credentials_in_urls_are_refused_and_never_printed() {
    let p = Project::new();
    for (file, env) in [
        (
            "[smtp]\nurl = \"smtp://user:hunter2@relay.example.org:587\"\n",
            None,
        ),
        (
            "",
            Some((
                "BULLETIN_SMTP_URL",
                "smtps://user:hunter2@relay.example.org",
            )),
        ),
        (
            "",
            Some((
                "BULLETIN_DATABASE_URL",
                "postgres://u:hunter2@db.example.org/news",
            )),
        ),
        (
            "[database]\nurl = \"sqlite://u:hunter2@localhost/bulletin.db\"\n",
            None,
        ),
    ] {
        p.write("bulletin.toml", file);
        let env: Vec<(&str, &str)> = env.into_iter().collect();
        let (code, err) = run_with(&p, &env);
        assert_eq!(code, 2, "{file} {env:?}: {err}");
        assert!(!err.contains("hunter2"), "the password was printed: {err}");
        assert!(err.contains("password"), "a hint to the right place: {err}");
        if let Some((name, _)) = env.first() {
            assert!(err.starts_with(&format!("error: {name}")), "{err}");
        } else {
            assert!(err.contains("bulletin.toml"), "{err}");
        }
        assert!(!p.db_path().exists());
    }
    // Nor through the --database flag.
    p.write("bulletin.toml", "");
    let (code, _, err) = p.run(&[
        "--database",
        "postgres://u:hunter2@db.example.org/x",
        "lists",
        "list",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        !err.contains("hunter2") && err.contains("--database"),
        "{err}"
    );
    // The SMTP one names where a password does belong.
    let (_, err) = run_with(
        &p,
        &[("BULLETIN_SMTP_URL", "smtp://ana:hunter2@relay.example.org")],
    );
    assert!(
        err.contains("BULLETIN_SMTP_PASSWORD") && err.contains("password_file"),
        "{err}"
    );
}

#[test]
fn secrets_of_only_whitespace_are_refused() {
    let p = Project::new();
    p.write("bulletin.toml", "");
    for (name, value) in [
        ("BULLETIN_SMTP_PASSWORD", "   "),
        ("BULLETIN_SECRET", "\t\n"),
    ] {
        let (code, err) = run_with(&p, &[(name, value)]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(name) && err.contains("whitespace"), "{err}");
    }
    p.write("secret.key", "  \n");
    p.write("bulletin.toml", "[server]\nsecret_file = \"secret.key\"\n");
    let (code, _, err) = p.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("secret.key") && err.contains("whitespace"),
        "{err}"
    );
}

#[test]
fn an_error_from_the_environment_names_the_variable() {
    let p = Project::new();
    p.write("bulletin.toml", "[smtp]\npool = 4\n");
    let (code, err) = run_with(&p, &[("BULLETIN_SMTP_URL", "relay.example.org:25")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("error: BULLETIN_SMTP_URL:"), "{err}");
    assert!(!err.contains("bulletin.toml"), "{err}");
    let (code, err) = run_with(&p, &[("BULLETIN_SMTP_POOL", "0")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("error: BULLETIN_SMTP_POOL:"), "{err}");
}

#[test]
fn an_unknown_section_lists_the_sections() {
    let p = Project::new();
    p.write(
        "bulletin.toml",
        "[list]\nname = \"x\"\n\n[smpt]\nurl = \"smtp://a:1\"\n",
    );
    let (code, _, err) = p.run(&["lists", "list"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bulletin.toml:4: unknown section [smpt]; did you mean [smtp]?"),
        "{err}"
    );
    assert!(
        err.contains("[list], [database], [smtp], [dkim], [bounces], [server], [assets]"),
        "{err}"
    );
}

#[test]
fn messages_name_no_document_that_does_not_exist() {
    let p = Project::new();
    p.write("bulletin.toml", "[list]\nname =\n");
    let (code, _, err) = p.run(&["lists", "list"]);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains(".md"), "{err}");
    assert!(err.contains("bulletin init"), "{err}");
}

#[test]
fn a_database_that_cannot_be_opened_says_which_folder() {
    if sqlite_only("SQLite file paths in missing folders, files and folders") {
        return;
    }
    let p = Project::new();
    let (code, _, err) = p.run(&["--database", "sqlite://missing/b.db", "lists", "list"]);
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains("code: 14"), "{err}");
    assert!(
        err.contains("missing/b.db") && err.contains("the folder missing does not exist"),
        "{err}"
    );
    p.write("plain", "a file");
    let (_, _, err) = p.run(&["--database", "sqlite://plain/b.db", "lists", "list"]);
    assert!(err.contains("plain is a file, not a folder"), "{err}");
    std::fs::create_dir(p.path().join("folder.db")).expect("mkdir");
    let (_, _, err) = p.run(&["--database", "sqlite://folder.db", "lists", "list"]);
    assert!(err.contains("folder.db is a folder"), "{err}");
}
