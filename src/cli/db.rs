//! `bulletin db …`: the database as a whole (today: copying a store to another database).

use std::path::PathBuf;

use clap::Subcommand;

use super::output::print_table;
use super::{Context, Outcome};
use crate::config::ConfigError;
use crate::store::{CopyError, TableCount};

/// Database commands.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy a whole store into an empty database, keeping every id: SQLite to PostgreSQL, or
    /// back. Both are migrated to this version's schema first; a target holding any row is
    /// refused; the target is written in one transaction (an error leaves it empty); each
    /// table's rows are counted on both sides and printed, and a difference is an error.
    ///
    /// Passwords never go in a URL: a postgres:// URL takes BULLETIN_DATABASE_PASSWORD or
    /// [database] password_file as --database does; --from-password-file or
    /// --to-password-file give one side its own (two servers with two passwords).
    ///
    /// Example: bulletin db copy --from sqlite://bulletin.db --to postgres://bulletin@db.example.org/bulletin
    Copy {
        /// The store to read: sqlite://FILE or postgres://USER@HOST/DATABASE
        #[arg(long, value_name = "URL")]
        from: String,
        /// The empty database to write: sqlite://FILE or postgres://USER@HOST/DATABASE
        #[arg(long, value_name = "URL")]
        to: String,
        /// File holding the password of the --from server (instead of the configured one)
        #[arg(long, value_name = "PATH")]
        from_password_file: Option<PathBuf>,
        /// File holding the password of the --to server (instead of the configured one)
        #[arg(long, value_name = "PATH")]
        to_password_file: Option<PathBuf>,
    },
}

/// Runs a `db` command.
pub(crate) async fn run(ctx: &Context, cmd: DbCommand) -> anyhow::Result<Outcome> {
    match cmd {
        DbCommand::Copy {
            from,
            to,
            from_password_file,
            to_password_file,
        } => {
            let from_url = connect_url(ctx, &from, "--from", from_password_file)?;
            let to_url = connect_url(ctx, &to, "--to", to_password_file)?;
            let busy = ctx.config.database.busy_timeout_ms;
            match crate::store::copy_store(&from_url, &to_url, busy).await {
                Ok(counts) => {
                    print_counts(ctx, &counts)?;
                    let rows: i64 = counts.iter().map(|c| c.target).sum();
                    ctx.info(format!(
                        "copied {rows} row(s) in {} tables; every count matches",
                        counts.len()
                    ));
                    Ok(Outcome::Success)
                }
                Err(e) => {
                    if let CopyError::CountMismatch { counts, .. } = &e {
                        print_counts(ctx, counts)?;
                    }
                    Err(e.into())
                }
            }
        }
    }
}

/// The URL to connect to `url` with: the same rules as `--database` (no password in it), and
/// the password from `password_file` when given, else from the configuration.
fn connect_url(
    ctx: &Context,
    url: &str,
    flag: &str,
    password_file: Option<PathBuf>,
) -> anyhow::Result<String> {
    let mut config = ctx.config.clone();
    // The same checks as --database; their message names the flag the URL came from.
    config.override_database_url(url).map_err(|e| match e {
        ConfigError::Invalid { message, .. } => ConfigError::Invalid {
            origin: flag.to_string(),
            message,
        },
        other => other,
    })?;
    if let Some(file) = password_file {
        config.database.password = None;
        config.database.password_file = Some(file);
    }
    Ok(config.database_connect_url()?)
}

/// The verified counts: a table on stdout, or JSON.
fn print_counts(ctx: &Context, counts: &[TableCount]) -> anyhow::Result<()> {
    if ctx.json {
        return ctx.print_json(&counts);
    }
    if ctx.quiet {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = counts
        .iter()
        .map(|c| {
            vec![
                c.table.to_string(),
                c.source.to_string(),
                c.target.to_string(),
            ]
        })
        .collect();
    print_table(&["TABLE", "SOURCE", "TARGET"], &rows)?;
    Ok(())
}
