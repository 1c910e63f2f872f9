//! `bulletin campaigns …`: what each campaign did, and steering it from another shell.

use clap::Subcommand;

use super::output::{outln, print_table};
use super::{Context, Outcome, UsageError};
use crate::store::{CampaignStatus, DeliveryStatus, Store};

/// Campaign commands.
#[derive(Debug, Subcommand)]
pub enum CampaignsCommand {
    /// Every campaign with its counts
    List,
    /// One campaign: counts, and every recipient that was not plainly sent (who failed and why)
    Show {
        /// Campaign id
        id: i64,
        /// List every recipient, sent ones too
        #[arg(long)]
        all: bool,
    },
    /// Stop a running campaign after the messages in flight; `send` resumes it
    Pause {
        /// Campaign id
        id: i64,
    },
    /// Stop a campaign for good; its remaining recipients are skipped
    Cancel {
        /// Campaign id
        id: i64,
    },
    /// Queue a campaign's failed deliveries again after their cause was fixed; `send` with the
    /// same edition and list then delivers them, each as a new attempt
    Retry {
        /// Campaign id
        id: i64,
    },
}

pub(crate) async fn campaigns(ctx: &Context, cmd: CampaignsCommand) -> anyhow::Result<Outcome> {
    let store = ctx.store().await?;
    match cmd {
        CampaignsCommand::List => list(ctx, &store).await?,
        CampaignsCommand::Show { id, all } => show(ctx, &store, id, all).await?,
        CampaignsCommand::Pause { id } => pause(ctx, &store, id).await?,
        CampaignsCommand::Cancel { id } => cancel(ctx, &store, id).await?,
        CampaignsCommand::Retry { id } => retry(ctx, &store, id).await?,
    }
    store.close().await;
    Ok(Outcome::Success)
}

/// Every campaign with its counts.
async fn list(ctx: &Context, store: &Store) -> anyhow::Result<()> {
    let all = store.campaigns().await?;
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for c in &all {
        let n = store.delivery_counts(c.id).await?;
        json.push(serde_json::json!({ "campaign": c, "counts": n }));
        // A campaign left `running` by a sender that is gone is waiting for `send`.
        let status =
            if c.status == CampaignStatus::Running && store.live_lease(c.id).await?.is_none() {
                "running (no sender; `send` resumes)".to_string()
            } else {
                c.status.to_string()
            };
        rows.push(vec![
            c.id.to_string(),
            c.edition_slug.clone(),
            c.list_name.clone(),
            status,
            n.total().to_string(),
            n.sent.to_string(),
            n.failed.to_string(),
            n.skipped.to_string(),
            (n.queued + n.sending).to_string(),
            c.created_at.clone(),
        ]);
    }
    if ctx.json {
        ctx.print_json(&json)?;
    } else if rows.is_empty() {
        ctx.info("no campaigns yet; `bulletin send EDITION --list L` starts one");
    } else {
        print_table(
            &[
                "id", "edition", "list", "status", "total", "sent", "failed", "skipped", "waiting",
                "created",
            ],
            &rows,
        )?;
    }
    Ok(())
}

/// One campaign: counts, its sender or why it is paused, and the recipients not plainly sent.
async fn show(ctx: &Context, store: &Store, id: i64, all: bool) -> anyhow::Result<()> {
    let c = store.campaign(id).await?;
    let n = store.delivery_counts(id).await?;
    let rows = store.deliveries(id, all).await?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({ "campaign": c, "counts": n, "deliveries": rows }))?;
    } else {
        outln!(
            "campaign #{}: {} → {} ({})",
            c.id,
            c.edition_slug,
            c.list_name,
            c.status
        )?;
        outln!("subject:  {}", c.subject)?;
        let sender = store.live_lease(id).await?;
        // Rows in flight are uncertain only once no live sender holds them.
        let (in_flight, uncertain) = match &sender {
            Some(_) => (n.sending, n.uncertain),
            None => (0, n.uncertain + n.sending),
        };
        outln!(
            "total {}: {} sent, {} failed, {} skipped, {} queued, {in_flight} in flight, {uncertain} uncertain (the relay may have them)",
            n.total(),
            n.sent,
            n.failed,
            n.skipped,
            n.queued,
        )?;
        if let Some(l) = &sender {
            outln!(
                "sender:   pid {} on {}, since {}, last heard from {}",
                l.pid,
                l.host,
                l.acquired_at,
                l.heartbeat_at
            )?;
        }
        if let Some(reason) = c
            .halt_reason
            .as_deref()
            .filter(|_| c.status == CampaignStatus::Paused)
        {
            outln!("paused:   {reason}")?;
        }
        if !rows.is_empty() {
            outln!()?;
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|d| {
                    vec![
                        d.email.clone().unwrap_or_else(|| "(erased)".into()),
                        if d.status == DeliveryStatus::Sending && sender.is_none() {
                            "uncertain".into()
                        } else {
                            d.status.to_string()
                        },
                        d.attempts.to_string(),
                        d.last_reply.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(&["recipient", "status", "attempts", "last reply"], &table)?;
        }
    }
    Ok(())
}

/// Asks the campaign's sender to stop after the messages in flight.
async fn pause(ctx: &Context, store: &Store, id: i64) -> anyhow::Result<()> {
    let c = store.campaign(id).await?;
    if c.status != CampaignStatus::Running {
        return Err(UsageError(format!("campaign #{id} is {}, not running", c.status)).into());
    }
    store
        .set_campaign_status(
            id,
            CampaignStatus::Paused,
            Some("paused by `bulletin campaigns pause`"),
        )
        .await?;
    ctx.info(format!(
        "campaign #{id} paused; `bulletin send` with the same edition and list resumes it"
    ));
    Ok(())
}

/// Stops a campaign for good; its waiting recipients are skipped.
async fn cancel(ctx: &Context, store: &Store, id: i64) -> anyhow::Result<()> {
    let c = store.campaign(id).await?;
    if matches!(
        c.status,
        CampaignStatus::Finished | CampaignStatus::Cancelled
    ) {
        return Err(UsageError(format!("campaign #{id} is already {}", c.status)).into());
    }
    store.cancel_campaign(id).await?;
    ctx.info(format!("campaign #{id} cancelled"));
    Ok(())
}

/// Queues failed deliveries again.
async fn retry(ctx: &Context, store: &Store, id: i64) -> anyhow::Result<()> {
    let (requeued, blocked) = store.retry_failed(id).await?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({ "campaign": id, "requeued": requeued, "still_failed_blocklisted": blocked }))?;
    } else {
        ctx.info(format!(
            "campaign #{id}: {requeued} failed deliver(y/ies) queued again; `bulletin send` with the same edition and list delivers them{}",
            if blocked > 0 {
                format!(". {blocked} stay failed because the address is blocklisted (lift with `bulletin subscribers unblock ADDR`, then retry)")
            } else {
                String::new()
            }
        ));
    }
    Ok(())
}
