//! Configuration: defaults on a fresh machine, overrides, and errors that name the key.

use crate::support::{Project, sqlite_only};

#[test]
fn a_project_with_an_empty_config_file_runs_on_defaults_and_creates_bulletin_db_there() {
    if sqlite_only("the default database is the file bulletin.db beside bulletin.toml") {
        return;
    }
    let p = Project::new();
    p.ok(&["lists", "list"]);
    assert!(
        p.db_path().exists(),
        "bulletin.db should be created beside bulletin.toml"
    );
}

#[test]
fn outside_a_project_nothing_is_created_and_the_way_in_is_named() {
    let p = Project::bare();
    for args in [
        &["lists", "add", "news"][..],
        &["subscribers", "list"][..],
        &["campaigns", "list"][..],
    ] {
        let (code, _, err) = p.run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("no bulletin.toml in")
                && err.contains("bulletin init NAME")
                && err.contains("--database"),
            "{args:?}: {err}"
        );
    }
    assert!(
        !p.db_path().exists(),
        "no stray bulletin.db in a folder that is not a project"
    );
    assert!(!p.store_exists());
    // Naming the database is explicit enough.
    p.ok(&["--database", &p.database_url(), "lists", "add", "news"]);
    assert_eq!(p.strings("SELECT name FROM lists"), ["news"]);
}

#[test]
fn from_a_subfolder_the_project_and_its_database_are_found() {
    let p = Project::new();
    p.ok(&["lists", "add", "news"]);
    let deeper = p.path().join("editions/next");
    std::fs::create_dir_all(&deeper).expect("mkdir");
    let out = p
        .cmd()
        .current_dir(&deeper)
        .args(["lists", "list"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("news"));
    assert!(
        !deeper.join("bulletin.db").exists(),
        "the project's database, not a new one in the subfolder"
    );
}

#[test]
fn typo_in_a_key_names_file_line_and_suggestion() {
    let p = Project::new();
    p.write(
        "bulletin.toml",
        "[list]\nname = \"News\"\n\n[smtp]\npool = 4\nrte = 10\n",
    );
    let (code, _, err) = p.run(&["lists", "list"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bulletin.toml:6: unknown key `rte` in [smtp]; did you mean `rate`?"),
        "{err}"
    );
    assert!(
        !p.store_exists(),
        "nothing may be created when the config is bad"
    );
}

#[test]
fn explicit_config_that_is_missing_is_an_input_error() {
    let p = Project::new();
    let (code, _, err) = p.run(&["--config", "nope.toml", "lists", "list"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nope.toml"), "{err}");
}

#[test]
fn relative_database_path_is_taken_from_the_config_folder() {
    if sqlite_only("a relative SQLite file path in [database] url") {
        return;
    }
    let p = Project::new();
    std::fs::create_dir(p.path().join("etc")).expect("mkdir");
    p.write(
        "etc/bulletin.toml",
        "[database]\nurl = \"sqlite://data.db\"\n",
    );
    p.ok(&["--config", "etc/bulletin.toml", "lists", "add", "news"]);
    assert!(p.path().join("etc/data.db").exists());
    assert!(!p.db_path().exists());
}

#[test]
fn environment_and_flag_override_the_file() {
    let p = Project::new();
    p.write("bulletin.toml", "[database]\nurl = \"sqlite://file.db\"\n");
    p.cmd()
        .env("BULLETIN_DATABASE_URL", "sqlite://env.db")
        .args(["lists", "add", "news"])
        .assert()
        .success();
    assert!(p.path().join("env.db").exists());
    p.ok(&["--database", "sqlite://flag.db", "lists", "add", "news"]);
    assert!(p.path().join("flag.db").exists());
    assert!(!p.path().join("file.db").exists());
}

#[test]
fn secrets_are_refused_in_the_file_and_never_printed() {
    let p = Project::new();
    p.write("bulletin.toml", "[smtp]\npassword = \"hunter2-in-file\"\n");
    let (code, out, err) = p.run(&["lists", "list"]);
    assert_eq!(code, 2);
    assert!(err.contains("BULLETIN_SMTP_PASSWORD"), "{err}");
    assert!(!err.contains("hunter2") && !out.contains("hunter2"));

    p.write("bulletin.toml", "");
    let out = p
        .cmd()
        .env("BULLETIN_SMTP_PASSWORD", "hunter2-in-env")
        .env("BULLETIN_SMTP_PASWORD", "typo")
        .args(["-vv", "lists", "list"])
        .output()
        .expect("runs");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(!all.contains("hunter2-in-env"), "{all}");
    assert!(
        all.contains(
            "BULLETIN_SMTP_PASWORD is not used by bulletin; did you mean BULLETIN_SMTP_PASSWORD?"
        ),
        "{all}"
    );
}

#[test]
fn bad_value_names_the_key() {
    let p = Project::new();
    p.write("bulletin.toml", "[smtp]\nurl = \"http://relay\"\n");
    let (code, _, err) = p.run(&["lists", "list"]);
    assert_eq!(code, 2);
    assert!(err.contains("bulletin.toml [smtp] url"), "{err}");
    assert!(err.contains("smtp://"), "{err}");
}

#[test]
fn completions_and_man_pages_are_generated() {
    let p = Project::new();
    let out = p.ok(&["completions", "bash"]);
    assert!(
        out.contains("subscribers") && out.contains("--double-opt-in"),
        "bash completion"
    );
    p.ok(&["manpage", "--out", "man"]);
    let page = std::fs::read_to_string(p.path().join("man/bulletin-subscribers-import.1"))
        .expect("man page for subscribers import");
    assert!(page.contains("dry\\-run"), "{page}");
}

#[test]
fn init_scaffolds_a_project_that_works_and_never_overwrites() {
    let p = Project::new();
    p.ok(&["init", "proj"]);
    for path in [
        "proj/bulletin.toml",
        "proj/templates",
        "proj/editions",
        "proj/subscribers/sample.csv",
    ] {
        assert!(p.path().join(path).exists(), "{path}");
    }
    p.write("proj/bulletin.toml", "# mine\n");
    p.ok(&["init", "proj"]);
    let kept = std::fs::read_to_string(p.path().join("proj/bulletin.toml")).expect("read");
    assert_eq!(kept, "# mine\n");
}
