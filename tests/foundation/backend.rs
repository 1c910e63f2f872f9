//! The test harness itself: each project gets a database of its own on the backend of this
//! run (`BULLETIN_TEST_BACKEND`), the helpers read and write it, the binary is pointed at it,
//! and it goes away with the project. On PostgreSQL this proves that `./test.sh` started a
//! real server, before any of bulletin's own store code runs against it.

use bulletin_testkit::backend::{self, Backend};
use bulletin_testkit::block_on;

use crate::support::Project;

#[test]
fn each_project_has_a_database_of_its_own_that_goes_with_it() {
    let (a, b) = (Project::new(), Project::new());
    assert_eq!(a.backend(), Backend::current());
    let url = a.database_url();
    assert_ne!(url, b.database_url(), "two projects share a database");
    assert!(!a.store_exists(), "a fresh project has no store yet");
    if a.backend() == Backend::Sqlite {
        // An empty file is an empty SQLite database; the helpers do not create one.
        std::fs::File::create(a.db_path()).expect("create the file");
    }
    // The helpers, through the Any driver, with SQL both backends take.
    a.execute("CREATE TABLE t (n BIGINT NOT NULL); INSERT INTO t (n) VALUES (1), (2);");
    assert_eq!(a.scalar("SELECT COUNT(*) FROM t"), 2);
    assert_eq!(a.scalar("SELECT CAST(SUM(n) AS BIGINT) FROM t"), 3);
    assert_eq!(
        a.strings("SELECT CAST(n AS TEXT) FROM t ORDER BY n"),
        vec!["1", "2"]
    );
    assert!(a.store_exists());
    assert!(
        !b.store_exists(),
        "the other project's database is untouched"
    );

    match a.backend() {
        Backend::Sqlite => {
            assert_eq!(url, format!("sqlite://{}", a.db_path().display()));
            let folder = a.path().to_path_buf();
            drop(a);
            assert!(!folder.exists(), "the project folder outlived the project");
        }
        Backend::Postgres => {
            let path = url
                .split('?')
                .next()
                .expect("split yields one part at least");
            let name = path
                .rsplit('/')
                .next()
                .expect("a database name")
                .to_string();
            assert!(name.starts_with("bt_"), "{url}");
            assert!(block_on(backend::database_exists(&name)));
            drop(a);
            assert!(
                !block_on(backend::database_exists(&name)),
                "database {name} outlived its project"
            );
        }
    }
}

#[test]
fn the_binary_uses_the_project_database_and_a_bare_folder_stays_no_project() {
    let p = Project::new();
    // `-v` names the database before opening it, so this holds whatever the store can do.
    let (_, _, err) = p.run(&["-v", "lists", "list"]);
    let named = err
        .lines()
        .find_map(|l| l.strip_prefix("database: "))
        .unwrap_or_else(|| panic!("-v names the database: {err}"));
    match p.backend() {
        Backend::Sqlite => assert!(named.ends_with("bulletin.db"), "{named}"),
        Backend::Postgres => assert_eq!(named, p.database_url()),
    }
    let bare = Project::bare();
    let (code, _, err) = bare.run(&["lists", "list"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no bulletin.toml"), "{err}");
}

#[test]
fn a_database_url_keeps_the_server_and_its_options() {
    for (admin, project) in [
        (
            "postgres://u@127.0.0.1:5433/postgres",
            "postgres://u@127.0.0.1:5433/bt_1",
        ),
        (
            "postgres://u:p@h:1/postgres?sslmode=disable",
            "postgres://u:p@h:1/bt_1?sslmode=disable",
        ),
        ("postgres://u@h:1", "postgres://u@h:1/bt_1"),
        (
            "postgres://127.0.0.1:1/postgres?user=bulletin_test",
            "postgres://127.0.0.1:1/bt_1?user=bulletin_test",
        ),
    ] {
        assert_eq!(backend::with_database(admin, "bt_1"), project, "{admin}");
    }
}
