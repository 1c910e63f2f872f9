//! The command line: clap definitions (their doc comments are the `--help` text) and the
//! glue that turns arguments into calls on the library. This is the only layer that uses
//! `anyhow`; everything below returns its module's own error type.
//!
//! Exit codes (the README's table): 0 success, 1 runtime failure, 2 usage or input error, 3 partial
//! success (some rows or recipients failed). [`exit_code`] maps an error to 1 or 2 by looking
//! for an input error anywhere in its cause chain.

mod bounces;
mod campaigns;
mod complete;
mod compose;
mod db;
mod doctor;
mod lists;
mod manpage;
mod output;
mod preview;
mod report;
mod scaffold;
mod send;
mod serve;
mod subscribers;
mod worker;

use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};
use crate::store::{Store, StoreError};
pub use output::is_broken_pipe;
use output::outln;

/// Compose newsletter editions from article records and mail them to subscriber lists,
/// exactly once per subscriber.
#[derive(Debug, Parser)]
#[command(name = "bulletin", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Configuration file [default: ./bulletin.toml when present, built-in defaults otherwise]
    #[arg(
        short,
        long,
        global = true,
        env = "BULLETIN_CONFIG",
        help_heading = "Global options",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,

    /// Database URL, e.g. sqlite://bulletin.db (overrides [database] url)
    #[arg(
        long,
        global = true,
        env = "BULLETIN_DATABASE_URL",
        value_name = "URL",
        help_heading = "Global options"
    )]
    pub database: Option<String>,

    /// Print only errors
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = "Global options"
    )]
    pub quiet: bool,

    /// Print more detail (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = "Global options")]
    pub verbose: u8,

    /// Machine-readable output on stdout (one JSON document)
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold a project: bulletin.toml, templates/, editions/, subscribers/
    Init(scaffold::InitArgs),
    /// Create, show and remove mailing lists
    #[command(subcommand)]
    Lists(lists::ListsCommand),
    /// Add, import, show, unsubscribe, erase and export subscribers
    #[command(subcommand)]
    Subscribers(subscribers::SubscribersCommand),
    /// Render an edition into email.html, email.txt and archive.html per language, and lint it
    Compose(compose::ComposeArgs),
    /// Look at an edition before sending: a page per language with the email at desktop and
    /// phone widths, the text part, the headers and the lint report
    Preview(preview::PreviewArgs),
    /// Send an edition to a list: creates the campaign, or resumes it (`--at` schedules it)
    Send(send::SendArgs),
    /// Send every campaign that is due, beside other workers on other hosts, until stopped
    Worker(worker::WorkerArgs),
    /// List, show, pause and cancel campaigns
    #[command(subcommand)]
    Campaigns(campaigns::CampaignsCommand),
    /// Serve the public pages: one-click unsubscribe, subscribe and confirm, the archive
    Serve(serve::ServeArgs),
    /// Read the bounce mailbox: bounces, complaints and auto-replies; blocklist dead addresses,
    /// unsubscribe complainers, mark bounced deliveries
    Bounces(bounces::BouncesArgs),
    /// Check the sending setup before the first send: SPF, DKIM, DMARC, the bounce domain,
    /// the relay (credentials, STARTTLS, SMTPUTF8, SIZE), public_url's /healthz, the secret;
    /// each finding with its fix. Exit code 1 when any is a problem
    Doctor(doctor::DoctorArgs),
    /// Copy a whole store to another database (SQLite to PostgreSQL, or back)
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print completion candidates (what the completion scripts run for `--list`)
    #[command(name = "__complete", hide = true)]
    Complete {
        /// What to list
        what: complete::Candidates,
    },
    /// Write the man pages (bulletin.1 and one per subcommand) into a folder
    Manpage {
        /// Folder to write into
        #[arg(long, default_value = "man")]
        out: PathBuf,
    },
}

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything done.
    Success,
    /// Some rows or recipients failed; the rest were done (exit code 3).
    Partial,
}

/// An input or usage error found by the CLI layer itself (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// What every command gets: the merged configuration and the output settings.
pub(crate) struct Context {
    pub(crate) config: Config,
    pub(crate) json: bool,
    pub(crate) quiet: bool,
    pub(crate) verbose: u8,
    /// `--database` or `BULLETIN_DATABASE_URL` named the database: it may be used outside a
    /// project.
    pub(crate) database_named: bool,
}

impl Context {
    /// Opens the database named by the configuration (creating and migrating it).
    pub(crate) async fn store(&self) -> anyhow::Result<Store> {
        let db = &self.config.database;
        if self.config.source.is_none() && !self.database_named {
            // Opening would create an empty bulletin.db in whatever folder the user stands in.
            let here = std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| "this folder".into());
            return Err(UsageError(format!(
                "no bulletin.toml in {here} or any folder above it, so there is no project whose database to use. \
                 Start one with `bulletin init NAME`, `cd` into an existing project, \
                 or name a database with --database sqlite://PATH"
            ))
            .into());
        }
        if self.verbose > 0 {
            eprintln!("database: {}", db.url);
        }
        let url = self.config.database_connect_url()?;
        Ok(Store::open(&url, db.busy_timeout_ms).await?)
    }

    /// A progress or summary line on stderr, unless `--quiet`.
    pub(crate) fn info(&self, message: impl AsRef<str>) {
        if !self.quiet {
            // Not `eprintln!`, which panics when stderr is a pipe nobody reads any more
            // (`2>&1 | head`); a progress line that cannot be shown is not worth a crash.
            let _ = writeln!(std::io::stderr().lock(), "{}", message.as_ref());
        }
    }

    /// A warning on stderr, unless `--quiet`.
    pub(crate) fn warn(&self, message: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("warning: {}", message.as_ref());
        }
    }

    /// Prints `value` as JSON on stdout.
    pub(crate) fn print_json(&self, value: &impl serde::Serialize) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(value).context("cannot encode JSON output")?;
        outln!("{text}")?;
        Ok(())
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    // Commands that need neither configuration nor database.
    match &cli.command {
        Command::Completions { shell } => {
            complete::print_script(*shell)?;
            return Ok(Outcome::Success);
        }
        Command::Complete { what: _ } => {
            complete::print_candidates(cli.config.as_deref(), cli.database.as_deref()).await;
            return Ok(Outcome::Success);
        }
        Command::Manpage { out } => {
            manpage::write_manpages(out)?;
            return Ok(Outcome::Success);
        }
        Command::Init(args) => return scaffold::init(args, cli.quiet),
        _ => {}
    }
    let env: Vec<(String, String)> = std::env::vars().collect();
    let (mut config, warnings) = Config::load(cli.config.as_deref(), &env)?;
    if let Some(url) = &cli.database {
        config.override_database_url(url)?;
    }
    for w in &warnings {
        if !cli.quiet {
            eprintln!("warning: {w}");
        }
    }
    let database_named =
        cli.database.is_some() || env.iter().any(|(k, _)| k == "BULLETIN_DATABASE_URL");
    let ctx = Context {
        config,
        json: cli.json,
        quiet: cli.quiet,
        verbose: cli.verbose,
        database_named,
    };
    if ctx.verbose > 0 {
        match &ctx.config.source {
            Some(p) => eprintln!("configuration: {}", p.display()),
            None => eprintln!("configuration: built-in defaults (no bulletin.toml here)"),
        }
    }
    match cli.command {
        Command::Lists(cmd) => lists::run(&ctx, cmd).await,
        Command::Subscribers(cmd) => subscribers::run(&ctx, cmd).await,
        Command::Compose(args) => compose::run(&ctx, args),
        Command::Preview(args) => preview::run(&ctx, args).await,
        Command::Send(args) => send::send(&ctx, args).await,
        Command::Worker(args) => worker::run(&ctx, args).await,
        Command::Campaigns(cmd) => campaigns::campaigns(&ctx, cmd).await,
        Command::Serve(args) => serve::run(&ctx, args).await,
        Command::Bounces(args) => bounces::run(&ctx, args).await,
        Command::Doctor(args) => doctor::run(&ctx, args).await,
        Command::Db(cmd) => db::run(&ctx, cmd).await,
        Command::Completions { .. }
        | Command::Complete { .. }
        | Command::Manpage { .. }
        | Command::Init(_) => Ok(Outcome::Success),
    }
}

/// The exit code for an error: 2 when the cause is the user's input, 1 otherwise.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if cause.is::<UsageError>()
            || cause.is::<ConfigError>()
            || cause.is::<crate::subscriber_csv::CsvError>()
            || cause.is::<crate::address::AddressError>()
            || cause.is::<crate::subscriber_input::FieldError>()
            || cause.is::<crate::content::ContentError>()
            || cause.is::<crate::render::RenderError>()
            || cause.is::<crate::token::TokenError>()
        {
            return 2;
        }
        if cause.is::<crate::mail::MailError>()
            || cause.is::<crate::mail::dkim::DkimError>()
            || cause.is::<crate::mail::PersonaliseError>()
        {
            return 2;
        }
        if let Some(e) = cause.downcast_ref::<crate::store::CampaignError>() {
            return match e {
                crate::store::CampaignError::Store(s) if !s.is_input_error() => 1,
                // Another sender at work, or this one cut off: not the operator's input.
                crate::store::CampaignError::Busy { .. }
                | crate::store::CampaignError::LeaseLost(_)
                | crate::store::CampaignError::ClaimedWithoutSubscriber(_) => 1,
                _ => 2,
            };
        }
        if let Some(e) = cause.downcast_ref::<crate::delivery::DeliveryError>() {
            return if e.is_input_error() { 2 } else { 1 };
        }
        if let Some(e) = cause.downcast_ref::<crate::web::WebError>() {
            return if e.is_input_error() { 2 } else { 1 };
        }
        if let Some(e) = cause.downcast_ref::<crate::feedback::FeedbackError>() {
            return if e.is_input_error() { 2 } else { 1 };
        }
        if let Some(e) = cause.downcast_ref::<crate::doctor::DoctorError>() {
            return if e.is_input_error() { 2 } else { 1 };
        }
        if let Some(e) = cause.downcast_ref::<StoreError>() {
            return if e.is_input_error() { 2 } else { 1 };
        }
    }
    1
}

/// The error and its causes on one line, each cause once: library messages often already
/// quote their source, and `{:#}` alone would print it twice.
pub fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// True when stdout is a terminal (tables, prompts) rather than a pipe or file.
pub(crate) fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}
