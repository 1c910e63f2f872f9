//! `bulletin bounces`: read the bounce mailbox once, record what it says, act on it.

use std::path::PathBuf;

use clap::Args;

use super::output::{outln, print_table};
use super::{Context, Outcome, UsageError};
use crate::feedback::{self, Outcome as Handled, Settings, Source};
use crate::token::Keys;

/// Where to read, when not the `[bounces]` section's mailbox.
#[derive(Debug, Args)]
pub struct BouncesArgs {
    /// Read this Maildir folder (the one holding new/ and cur/) [default: [bounces] maildir]
    #[arg(long, value_name = "DIR", conflicts_with = "mbox")]
    maildir: Option<PathBuf>,
    /// Read this mbox file [default: [bounces] mbox]
    #[arg(long, value_name = "FILE")]
    mbox: Option<PathBuf>,
}

/// Runs `bounces`: exit 0 when every message was handled, 3 when some were left for a person.
pub(crate) async fn run(ctx: &Context, args: BouncesArgs) -> anyhow::Result<Outcome> {
    let config = ctx.config.bounces.as_ref();
    let source = match (args.maildir, args.mbox) {
        (Some(dir), _) => Source::Maildir(dir),
        (None, Some(file)) => Source::Mbox(file),
        (None, None) => match (
            config.and_then(|b| b.maildir.clone()),
            config.and_then(|b| b.mbox.clone()),
        ) {
            (Some(dir), _) => Source::Maildir(dir),
            (None, Some(file)) => Source::Mbox(file),
            (None, None) => {
                return Err(UsageError(
                    "no bounce mailbox: pass --maildir DIR or --mbox FILE, or set [bounces] maildir \
                     or mbox in bulletin.toml"
                        .into(),
                )
                .into());
            }
        },
    };
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
    let summary = feedback::process(&store, &keys, &source, settings).await?;
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
    Ok(if summary.left() > 0 {
        Outcome::Partial
    } else {
        Outcome::Success
    })
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
