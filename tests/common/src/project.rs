//! A throw-away project folder and helpers to run the binary in it and look at its database.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

pub use crate::block_on;

/// A temporary folder holding a database file and input files.
pub struct Project {
    dir: tempfile::TempDir,
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
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db_path(&self) -> PathBuf {
        self.path().join("bulletin.db")
    }

    /// The binary, run in the project folder with a clean `BULLETIN_*` environment.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("bulletin"));
        cmd.current_dir(self.path());
        for (key, _) in std::env::vars() {
            if key.starts_with("BULLETIN_") {
                cmd.env_remove(key);
            }
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

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, contents).expect("write input file");
        path
    }

    /// One number from the database, read with a separate connection.
    pub fn scalar(&self, sql: &str) -> i64 {
        let path = self.db_path();
        let sql = sql.to_string();
        block_on(async move {
            let mut conn = connect(&path).await;
            sqlx::query_scalar::<_, i64>(&sql)
                .fetch_one(&mut conn)
                .await
                .expect("query")
        })
    }

    /// Rows of text from the database.
    pub fn strings(&self, sql: &str) -> Vec<String> {
        let path = self.db_path();
        let sql = sql.to_string();
        block_on(async move {
            let mut conn = connect(&path).await;
            sqlx::query_scalar::<_, String>(&sql)
                .fetch_all(&mut conn)
                .await
                .expect("query")
        })
    }

    /// Executes a statement against the database.
    pub fn execute(&self, sql: &str) {
        let path = self.db_path();
        let sql = sql.to_string();
        block_on(async move {
            let mut conn = connect(&path).await;
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

pub async fn connect(path: &Path) -> SqliteConnection {
    SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path))
        .await
        .expect("open test database")
}
