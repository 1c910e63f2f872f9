//! The database file itself: locked, read-only, newer schema, not a database.

use std::time::Duration;

use sqlx::Executor;

use crate::support::{Project, block_on, connect};

#[test]
fn a_locked_database_fails_clearly_and_writes_nothing() {
    let p = Project::with_lists();
    p.write("people.csv", "email,lists\nana@example.org,news\n");
    let before = p.counts();
    let db = p.db_path();
    block_on(async {
        // Another process holding the write lock for longer than the busy timeout.
        let mut holder = connect(&db).await;
        holder
            .execute("BEGIN IMMEDIATE")
            .await
            .expect("take the write lock");
        holder
            .execute("INSERT INTO lists (name, created_at, updated_at) VALUES ('held', 'x', 'x')")
            .await
            .expect("write inside the held transaction");
        let out = p
            .cmd()
            .env("BULLETIN_DATABASE_BUSY_TIMEOUT_MS", "300")
            .args(["subscribers", "import", "people.csv"])
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("is locked by another process (waited 300 ms)"),
            "{err}"
        );
        assert!(
            err.contains("busy_timeout_ms"),
            "the message says how to wait longer: {err}"
        );
        holder.execute("ROLLBACK").await.expect("release");
    });
    assert_eq!(p.counts(), before);
}

#[test]
fn a_read_only_database_fails_clearly_and_can_still_be_read() {
    let p = Project::with_lists();
    p.ok(&["subscribers", "add", "ana@example.org", "--list", "news"]);
    let before = p.counts();
    let url = format!("sqlite://{}?mode=ro", p.db_path().display());
    let out = p.ok(&["--database", &url, "subscribers", "list", "--format", "csv"]);
    assert!(
        out.contains("ana@example.org"),
        "reading works on a read-only file: {out}"
    );
    let (code, _, err) = p.run(&["--database", &url, "subscribers", "add", "bo@example.org"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is read-only: nothing was changed"), "{err}");
    assert_eq!(p.counts(), before);
}

#[test]
fn a_database_from_a_newer_bulletin_is_refused() {
    let p = Project::with_lists();
    p.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990101000000, 'from the future', TRUE, x'00', 0)",
    );
    let (code, _, err) = p.run(&["lists", "list"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("created by a newer bulletin (schema version 99990101000000"),
        "{err}"
    );
    assert!(err.contains("upgrade bulletin"), "{err}");
}

#[test]
fn a_file_that_is_not_a_database_is_named() {
    let p = Project::new();
    p.write("bulletin.db", vec![b'x'; 4096]);
    let (code, _, err) = p.run(&["lists", "list"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not a bulletin database"), "{err}");
}

#[test]
fn pragmas_make_the_file_safe_for_several_processes() {
    let p = Project::with_lists();
    let db = p.db_path();
    block_on(async {
        let mut conn = connect(&db).await;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut conn)
            .await
            .expect("pragma");
        assert_eq!(mode, "wal");
    });
    // Two writers at once: the second waits for the first instead of failing.
    let spawn = |email: &str| {
        p.std_cmd()
            .args(["subscribers", "add", email, "--list", "news"])
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (spawn("a@example.org"), spawn("b@example.org"));
    for mut child in [a, b] {
        let status = child.wait().expect("wait");
        assert!(status.success());
    }
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(p.scalar("SELECT COUNT(*) FROM subscribers"), 2);
}
