//! Which database server the integration tests run the binary against, chosen for the whole
//! test run by the environment (`./test.sh` runs the suite once per backend):
//!
//! - `BULLETIN_TEST_BACKEND` unset or `sqlite`: a SQLite file in each project's folder;
//! - `BULLETIN_TEST_BACKEND=postgres`: a fresh database per project on the PostgreSQL server
//!   whose admin URL is `BULLETIN_TEST_POSTGRES_URL` (`./test.sh` starts a throw-away one).
//!
//! A missing or unknown setting is a test failure naming the variable, never a skip.

use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};

/// The variable choosing the backend.
pub const BACKEND_VAR: &str = "BULLETIN_TEST_BACKEND";
/// The variable holding the PostgreSQL admin URL (a role that may create databases).
pub const POSTGRES_URL_VAR: &str = "BULLETIN_TEST_POSTGRES_URL";

/// The store backend this test run exercises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file, `bulletin.db` in the project folder (the default).
    Sqlite,
    /// A database of its own per project on a PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend named by `BULLETIN_TEST_BACKEND`; panics (fails the test) on a value it
    /// does not know, rather than quietly testing SQLite twice.
    pub fn current() -> Self {
        match std::env::var(BACKEND_VAR) {
            Err(std::env::VarError::NotPresent) => Backend::Sqlite,
            Ok(v) if v.is_empty() || v == "sqlite" => Backend::Sqlite,
            Ok(v) if v == "postgres" || v == "postgresql" => Backend::Postgres,
            Ok(v) => panic!("{BACKEND_VAR}={v:?} is not a backend: use `sqlite` or `postgres`"),
            Err(e) => panic!("{BACKEND_VAR} is not readable ({e}): use `sqlite` or `postgres`"),
        }
    }
}

/// Marks a test of the SQLite file itself (permissions, locks, WAL, a file written by an old
/// version), which has no PostgreSQL counterpart. Returns `true` when the test must return
/// now because this pass runs on PostgreSQL, and says so on stderr with `why`:
///
/// ```ignore
/// if sqlite_only("the file's permissions") { return; }
/// ```
///
/// Only for such tests: anything both backends do must run on both.
pub fn sqlite_only(why: &str) -> bool {
    match Backend::current() {
        Backend::Sqlite => false,
        Backend::Postgres => {
            eprintln!("SQLite-only test, returns early on PostgreSQL: {why}");
            true
        }
    }
}

/// `BULLETIN_TEST_POSTGRES_URL`, or a test failure saying how to get one.
pub fn admin_url() -> String {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{BACKEND_VAR}=postgres needs {POSTGRES_URL_VAR}, the URL of a PostgreSQL role that may \
             create databases (e.g. postgres://127.0.0.1:PORT/postgres?user=bulletin_test); \
             ./test.sh starts a throw-away server and sets it"
        ),
    }
}

/// `url` with its database (the path) replaced by `database`, keeping any `?query`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A connection to the admin database of the test server.
pub async fn admin_connection() -> PgConnection {
    let url = admin_url();
    PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!("cannot connect to {POSTGRES_URL_VAR}={url}: {e} (is the server running?)")
    })
}

/// Creates an empty database with a fresh name; returns its name.
pub async fn create_database() -> String {
    // Names are only letters, digits and `_`: safe to splice into the statement.
    let name = format!("bt_{:016x}", fastrand::u64(..));
    let mut admin = admin_connection().await;
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on the test server: {e}"));
    let _ = admin.close().await;
    name
}

/// Drops `name`, disconnecting whoever still uses it (a `serve` the test left running).
pub async fn drop_database(name: &str) -> Result<(), sqlx::Error> {
    let mut admin = PgConnection::connect(&admin_url()).await?;
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await?;
    admin.close().await
}

/// Whether the test server has a database called `name`.
pub async fn database_exists(name: &str) -> bool {
    let mut admin = admin_connection().await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .expect("read pg_database");
    n == 1
}
