//! The database itself: locked, read-only, newer schema, not a database. Most of it is about
//! the SQLite file and marked so; the rest runs on both backends.

use std::time::Duration;

use sqlx::Executor;

use crate::support::{Backend, Project, block_on, connect, sqlite_only};

#[test]
fn a_locked_database_fails_clearly_and_writes_nothing() {
    if sqlite_only("SQLite's file lock (BEGIN IMMEDIATE) and its busy timeout") {
        return;
    }
    let p = Project::with_lists();
    p.write("people.csv", "email,lists\nana@example.org,news\n");
    let before = p.counts();
    let db = p.database_url();
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
    if sqlite_only("a file opened with SQLite's mode=ro") {
        return;
    }
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
    let checksum = match p.backend() {
        Backend::Sqlite => "x'00'",
        Backend::Postgres => "'\\x00'::bytea",
    };
    p.execute(&format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990101000000, 'from the future', TRUE, {checksum}, 0)"
    ));
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
    if sqlite_only("a bulletin.db file that holds no SQLite database") {
        return;
    }
    let p = Project::new();
    p.write("bulletin.db", vec![b'x'; 4096]);
    let (code, _, err) = p.run(&["lists", "list"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not a bulletin database"), "{err}");
}

#[test]
fn pragmas_make_the_file_safe_for_several_processes() {
    if sqlite_only("SQLite's journal mode (WAL)") {
        return;
    }
    let p = Project::with_lists();
    let db = p.database_url();
    block_on(async {
        let mut conn = connect(&db).await;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut conn)
            .await
            .expect("pragma");
        assert_eq!(mode, "wal");
    });
}

#[test]
fn two_writers_at_once_both_succeed() {
    let p = Project::with_lists();
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

/// A database made by the first release (schema 0001 only) is brought up to date on open,
/// keeping every row, and the rebuilt tables still refuse a status that is not in the model.
#[test]
fn a_database_from_the_first_schema_is_upgraded_with_its_rows() {
    if sqlite_only("a SQLite file written by the first release, and sqlite_master") {
        return;
    }
    let p = Project::new();
    let db = p.db_path();
    let first_only = p.path().join("first-migration");
    std::fs::create_dir(&first_only).expect("mkdir");
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        manifest.join("migrations/sqlite/0001_initial_schema.sql"),
        first_only.join("0001_initial_schema.sql"),
    )
    .expect("copy the first migration");
    block_on(async {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .create_if_missing(true);
        let mut conn = sqlx::ConnectOptions::connect(&options)
            .await
            .expect("create the old database");
        sqlx::migrate::Migrator::new(first_only.as_path())
            .await
            .expect("read the first migration")
            .run(&mut conn)
            .await
            .expect("apply it");
        sqlx::raw_sql(
            "INSERT INTO lists (id, name, created_at, updated_at) VALUES (1, 'news', 't', 't');
             INSERT INTO subscribers (id, email, email_key, created_at, updated_at)
                 VALUES (1, 'Ana@example.org', 'ana@example.org', 't', 't'),
                        (2, 'bo@example.org', 'bo@example.org', 't', 't');
             INSERT INTO subscriptions (subscriber_id, list_id, status, consent_source, created_at, updated_at)
                 VALUES (1, 1, 'confirmed', 'cli', 't', 't'), (2, 1, 'unsubscribed', 'cli', 't', 't');
             INSERT INTO campaigns (id, edition_slug, list_id, list_name, content_hash, subject, created_at, updated_at)
                 VALUES (1, 'ed', 1, 'news', 'h', 'S', 't', 't');
             INSERT INTO deliveries (campaign_id, subscriber_id, status, created_at, updated_at)
                 VALUES (1, 1, 'sent', 't', 't'), (1, 2, 'skipped', 't', 't');",
        )
        .execute(&mut conn)
        .await
        .expect("rows in the old schema");
    });

    // Any command opens the store, which migrates.
    p.ok(&["lists", "list"]);
    assert_eq!(
        p.strings(
            "SELECT subscriber_id || ':' || list_id || ':' || status FROM subscriptions ORDER BY 1"
        ),
        vec!["1:1:confirmed", "2:1:unsubscribed"]
    );
    assert_eq!(
        p.strings("SELECT subscriber_id || ':' || status FROM deliveries ORDER BY 1"),
        vec!["1:sent", "2:skipped"]
    );
    // Every migration of this binary, whatever their number.
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .expect("migrations folder")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM _sqlx_migrations"),
        migrations as i64
    );
    assert_eq!(
        p.scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'subscriptions' AND sql LIKE '%WITHOUT ROWID%'"
        ),
        1
    );
    assert_eq!(
        p.strings("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY 1"),
        vec![
            "confirmation_cooldowns_by_time",
            "deliveries_by_status",
            "deliveries_by_subscriber",
            "delivery_attempts_by_delivery",
            "events_by_subscriber",
            "feedback_by_campaign",
            "feedback_by_delivery",
            "form_rate_windows_by_start",
            "subscriptions_by_list"
        ]
    );
    // The foreign keys still hold: a subscription cannot point at nobody, and erasing a
    // subscriber cascades to the rebuilt table.
    block_on(async {
        let mut conn = sqlx::ConnectOptions::connect(
            &sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&db)
                .foreign_keys(true),
        )
        .await
        .expect("open");
        let bad_status =
            sqlx::query("UPDATE subscriptions SET status = 'maybe' WHERE subscriber_id = 1")
                .execute(&mut conn)
                .await;
        assert!(bad_status.is_err(), "the CHECK survived the rebuild");
        let bad_delivery = sqlx::query("UPDATE deliveries SET status = 'lost' WHERE id = 1")
            .execute(&mut conn)
            .await;
        assert!(bad_delivery.is_err(), "the CHECK survived the rebuild");
        let orphan = sqlx::query(
            "INSERT INTO subscriptions (subscriber_id, list_id, status, consent_source, created_at, updated_at)
             VALUES (99, 1, 'confirmed', 'cli', 't', 't')",
        )
        .execute(&mut conn)
        .await;
        assert!(orphan.is_err(), "the foreign key survived the rebuild");
    });
    p.ok(&["subscribers", "remove", "Ana@example.org", "--yes"]);
    assert_eq!(
        p.strings("SELECT subscriber_id || ':' || status FROM subscriptions"),
        vec!["2:unsubscribed"]
    );
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM deliveries WHERE subscriber_id IS NULL"),
        1
    );
}
