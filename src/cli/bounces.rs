//! `bulletin bounces`: read the bounce mailbox once, record what it says, act on it.

use std::path::PathBuf;

use clap::Args;

use super::output::{outln, print_table};
use super::{Context, Outcome, UsageError};
use crate::feedback::imap::ImapSource;
use crate::feedback::{self, Outcome as Handled, Settings, Source};
use crate::token::Keys;

/// Where to read, when not the `[bounces]` section's mailbox.
#[derive(Debug, Args)]
pub struct BouncesArgs {
    /// Read this Maildir folder (the one holding new/ and cur/) [default: [bounces] maildir]
    #[arg(long, value_name = "DIR", conflicts_with = "mbox")]
    maildir: Option<PathBuf>,
    /// Read this mbox file [default: [bounces] mbox]
    #[arg(long, value_name = "FILE", conflicts_with = "imap")]
    mbox: Option<PathBuf>,
    /// Read this IMAP mailbox, imaps://host/MAILBOX (user and password from [bounces]
    /// imap_username and BULLETIN_BOUNCES_IMAP_PASSWORD or imap_password_file)
    /// [default: [bounces] imap_url]
    #[arg(long, value_name = "URL", conflicts_with = "maildir")]
    imap: Option<String>,
    /// Keep running: read the mailbox again every SECS seconds until interrupted
    #[arg(long, value_name = "SECS")]
    watch: Option<u64>,
}

/// Runs `bounces`: exit 0 when every message was handled, 3 when some were left for a person.
pub(crate) async fn run(ctx: &Context, args: BouncesArgs) -> anyhow::Result<Outcome> {
    let config = ctx.config.bounces.as_ref();
    let watch = args.watch;
    let source = source(ctx, args)?;
    let secret = ctx.config.token_secret()?.ok_or_else(|| {
        UsageError(
            "no token secret to check the return paths' signatures with: set BULLETIN_SECRET or \
             [server] secret_file (the one `send` used)"
                .into(),
        )
    })?;
    let keys = Keys::new(&secret, &ctx.config.previous_token_secrets()?)?;
    let store = ctx.store().await?;
    let settings = Settings {
        local_part: config.map_or("bounces", |b| b.local_part.as_str()),
        soft_limit: config.map_or(3, |b| b.soft_limit),
    };
    let Some(every) = watch else {
        let summary = pass(ctx, &store, &keys, &source, settings).await?;
        return Ok(if summary.left() > 0 {
            Outcome::Partial
        } else {
            Outcome::Success
        });
    };
    // A long-running reader (a systemd service instead of a cron job): one pass every `every`
    // seconds until SIGINT or SIGTERM, which end it between passes, never inside one.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    loop {
        pass(ctx, &store, &keys, &source, settings).await?;
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(every.max(1))) => {}
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    ctx.info("stopped watching the bounce mailbox");
    Ok(Outcome::Success)
}

/// One pass over the mailbox, reported.
async fn pass(
    ctx: &Context,
    store: &crate::store::Store,
    keys: &Keys,
    source: &Source,
    settings: Settings<'_>,
) -> anyhow::Result<feedback::Summary> {
    let summary = feedback::process(store, keys, source, settings).await?;
    if ctx.json {
        ctx.print_json(&summary)?;
    } else {
        print_summary(&summary)?;
    }
    ctx.info(format!(
        "{}: {} message(s) read, {} recorded, {} left for a person",
        source.describe(),
        summary.messages.len(),
        summary.recorded(),
        summary.left()
    ));
    Ok(summary)
}

/// The mailbox named on the command line, else the first of `[bounces]` maildir, mbox,
/// imap_url.
fn source(ctx: &Context, args: BouncesArgs) -> anyhow::Result<Source> {
    let config = ctx.config.bounces.as_ref();
    // A mailbox on the command line wins over all of the file's.
    let named = args.maildir.is_some() || args.mbox.is_some() || args.imap.is_some();
    let from_file = |pick: fn(&crate::config::BouncesConfig) -> Option<PathBuf>| {
        config.filter(|_| !named).and_then(pick)
    };
    if let Some(dir) = args.maildir.or_else(|| from_file(|b| b.maildir.clone())) {
        return Ok(Source::Maildir(dir));
    }
    if let Some(file) = args.mbox.or_else(|| from_file(|b| b.mbox.clone())) {
        return Ok(Source::Mbox(file));
    }
    let imap = args
        .imap
        .or_else(|| config.filter(|_| !named).and_then(|b| b.imap_url.clone()));
    let Some(url) = imap else {
        return Err(UsageError(
            "no bounce mailbox: pass --maildir DIR, --mbox FILE or --imap URL, or set [bounces] \
             maildir, mbox or imap_url in bulletin.toml"
                .into(),
        )
        .into());
    };
    let username = config
        .and_then(|b| b.imap_username.clone())
        .ok_or_else(|| {
            UsageError("an IMAP mailbox needs [bounces] imap_username (and its password)".into())
        })?;
    let password = ctx.config.bounces_imap_password()?.ok_or_else(|| {
        UsageError(
            "no IMAP password: set BULLETIN_BOUNCES_IMAP_PASSWORD or [bounces] imap_password_file"
                .into(),
        )
    })?;
    Ok(Source::Imap(ImapSource::new(&url, &username, password)?))
}

fn print_summary(summary: &feedback::Summary) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = summary
        .messages
        .iter()
        .filter(|p| !matches!(p.outcome, Handled::AlreadyHandled))
        .map(|p| {
            let (kind, what) = match &p.outcome {
                Handled::Recorded {
                    report,
                    delivery_id,
                    decision,
                    ..
                } => (
                    report.kind.to_string(),
                    format!(
                        "{}{}",
                        delivery_id.map_or(String::new(), |d| format!("delivery {d}: ")),
                        decision.describe()
                    ),
                ),
                Handled::Unclassified { reason } => ("?".into(), format!("left: {reason}")),
                Handled::Unmatched { report } => (
                    report.kind.to_string(),
                    "left: names no delivery of ours (no valid return-path token)".into(),
                ),
                Handled::AlreadyHandled => (String::new(), String::new()),
            };
            let evidence = match &p.outcome {
                Handled::Recorded { report, .. } | Handled::Unmatched { report } => {
                    [report.status.as_deref(), report.diagnostic.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" ")
                }
                _ => String::new(),
            };
            vec![p.origin.clone(), kind, what, evidence]
        })
        .collect();
    if rows.is_empty() {
        outln!("nothing new in the bounce mailbox")?;
        return Ok(());
    }
    print_table(&["message", "kind", "decision", "evidence"], &rows)?;
    Ok(())
}
