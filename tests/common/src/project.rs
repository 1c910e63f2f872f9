//! A throw-away project folder and helpers to run the binary in it and look at its database,
//! on the backend this test run exercises ([`Backend::current`]): the SQLite file
//! `bulletin.db` in the folder, or a fresh PostgreSQL database of the project's own.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;
use sqlx::{AnyConnection, Connection};

pub use crate::backend::{Backend, sqlite_only};
pub use crate::block_on;

/// A temporary folder holding the configuration and input files, and its database: a file
/// in the folder, or (PostgreSQL) a database made on first use and dropped with the project.
pub struct Project {
    dir: tempfile::TempDir,
    backend: Backend,
    /// The PostgreSQL database's name, once made.
    postgres: OnceLock<String>,
}

impl Project {
    /// A project folder: an empty `bulletin.toml` (defaults) and nothing else.
    pub fn new() -> Self {
        let p = Self::bare();
        p.write(
            "bulletin.toml",
            "# a test project: every setting at its default\n",
        );
        p
    }

    /// A folder with no `bulletin.toml`: not a project.
    pub fn bare() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            backend: Backend::current(),
            postgres: OnceLock::new(),
        }
    }

    /// The project folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The backend this project's database lives on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Where the SQLite file is (or would be): only meaningful on [`Backend::Sqlite`], for
    /// tests of the file itself.
    pub fn db_path(&self) -> PathBuf {
        self.path().join("bulletin.db")
    }

    /// The URL of the project's database: `sqlite:///…/bulletin.db`, or the project's own
    /// PostgreSQL database (created now if it was not yet).
    pub fn database_url(&self) -> String {
        match self.backend {
            Backend::Sqlite => format!("sqlite://{}", self.db_path().display()),
            Backend::Postgres => {
                let name = self
                    .postgres
                    .get_or_init(|| block_on_own_thread(crate::backend::create_database()));
                crate::backend::with_database(&crate::backend::admin_url(), name)
            }
        }
    }

    /// Whether the binary has made the store: the SQLite file exists, or the PostgreSQL
    /// database holds a table. For tests that prove a command wrote nothing.
    pub fn store_exists(&self) -> bool {
        match self.backend {
            Backend::Sqlite => self.db_path().exists(),
            Backend::Postgres if self.postgres.get().is_none() => false,
            Backend::Postgres => {
                self.scalar(
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
                ) > 0
            }
        }
    }

    /// A connection of the test's own to the project's database (any backend).
    pub async fn connect(&self) -> AnyConnection {
        connect(&self.database_url()).await
    }

    /// The binary, run in the project folder with a clean `BULLETIN_*` environment; on
    /// PostgreSQL, `BULLETIN_DATABASE_URL` names the project's database when the folder is a
    /// project (has a `bulletin.toml`). A folder that is not one stays "not a project" on
    /// both backends: the variable would make the binary accept it.
    pub fn std_cmd(&self) -> std::process::Command {
        self.program(assert_cmd::cargo::cargo_bin("bulletin"))
    }

    /// Any program (a wrapper such as `script` that runs the binary) in the project folder,
    /// with the environment [`Project::std_cmd`] gives the binary.
    pub fn program(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let mut cmd = std::process::Command::new(program);
        cmd.current_dir(self.path());
        for key in crate::bulletin_vars() {
            cmd.env_remove(key);
        }
        if self.backend == Backend::Postgres && self.path().join("bulletin.toml").exists() {
            cmd.env("BULLETIN_DATABASE_URL", self.database_url());
        }
        cmd
    }

    /// [`Project::std_cmd`] with assert_cmd's conveniences (stdin, assertions).
    pub fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
    }

    /// Runs the binary with `args` and returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd().args(args).output().expect("binary runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(
            code, 0,
            "bulletin {args:?} failed:\nstdout: {out}\nstderr: {err}"
        );
        out
    }

    /// Writes `contents` to `name` in the project folder; returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, contents).expect("write input file");
        path
    }

    /// One number from the database, read with a separate connection. The SQL must be valid
    /// on both backends and the value a 64-bit integer on both (`COUNT(*)` is; cast a `SUM`
    /// with `CAST(… AS BIGINT)`).
    pub fn scalar(&self, sql: &str) -> i64 {
        let url = self.database_url();
        let sql = sql.to_string();
        block_on(async move {
            let mut conn = connect(&url).await;
            sqlx::query_scalar::<_, i64>(&sql)
                .fetch_one(&mut conn)
                .await
                .expect("query")
        })
    }

    /// Rows of text from the database.
    pub fn strings(&self, sql: &str) -> Vec<String> {
        let url = self.database_url();
        let sql = sql.to_string();
        block_on(async move {
            let mut conn = connect(&url).await;
            sqlx::query_scalar::<_, String>(&sql)
                .fetch_all(&mut conn)
                .await
                .expect("query")
        })
    }

    /// Executes a statement against the database.
    pub fn execute(&self, sql: &str) {
        let url = self.database_url();
        let sql = sql.to_string();
        block_on(async move {
            let mut conn = connect(&url).await;
            sqlx::raw_sql(&sql)
                .execute(&mut conn)
                .await
                .expect("statement");
        });
    }

    /// A snapshot of every table's row count, to prove that a failed command wrote nothing.
    pub fn counts(&self) -> Vec<(String, i64)> {
        [
            "lists",
            "subscribers",
            "subscriptions",
            "suppressions",
            "events",
        ]
        .iter()
        .map(|t| {
            (
                t.to_string(),
                self.scalar(&format!("SELECT COUNT(*) FROM {t}")),
            )
        })
        .collect()
    }

    /// The project with two lists: `news` (single opt-in) and `partners` (double opt-in).
    pub fn with_lists() -> Self {
        let p = Self::new();
        p.ok(&["lists", "add", "news"]);
        p.ok(&["lists", "add", "partners", "--double-opt-in"]);
        p
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        // Best effort: a database left behind dies with the throw-away server anyway, and a
        // panic here would hide the test's own failure.
        if let Some(name) = self.postgres.get() {
            let name = name.clone();
            let dropped = std::thread::spawn(move || {
                block_on(async move { crate::backend::drop_database(&name).await })
            })
            .join();
            match dropped {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("could not drop the test database: {e}"),
                Err(_) => eprintln!("could not drop the test database: its thread panicked"),
            }
        }
    }
}

/// Opens the database at `url` (`sqlite://…` or `postgres://…`) through sqlx's Any driver.
pub async fn connect(url: &str) -> AnyConnection {
    static DRIVERS: std::sync::Once = std::sync::Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);
    AnyConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("open the test database {url}: {e}"))
}

/// Runs `f` to its end on a thread and runtime of its own, so that it works from inside a
/// test's async block as well as from `Drop`.
fn block_on_own_thread<F>(f: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || block_on(f))
        .join()
        .unwrap_or_else(|_| panic!("the database helper thread panicked"))
}
