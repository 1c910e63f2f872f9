//! `bulletin campaigns …`: what each campaign did, and steering it from another shell.

use std::collections::BTreeMap;

use clap::{Args, Subcommand, ValueEnum};

use super::output::{outln, print_table};
use super::{Context, Outcome, UsageError};
use crate::store::{
    AttemptRow, CampaignStatus, DeliveryCounts, DeliveryQuery, DeliveryRow, DeliveryStatus,
    LeaseInfo, Store,
};

/// Campaign commands.
#[derive(Debug, Subcommand)]
pub enum CampaignsCommand {
    /// Every campaign with its counts
    List,
    /// One campaign: counts, and per recipient its status, attempts, when it was last tried
    /// and delivered, its Message-ID and the relay's last reply. Without a filter, every
    /// recipient that was not plainly sent
    Show(ShowArgs),
    /// Stop a running campaign after the messages in flight (workers stop claiming for it
    /// within one turn), or keep a scheduled one from starting; `campaigns resume` or `send`
    /// resumes it
    Pause {
        /// Campaign id
        id: i64,
    },
    /// Hand a paused campaign back to the workers: running again, or scheduled again when it
    /// had not started
    Resume {
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
    /// What a campaign did: delivered, failed and why, bounced, complaints and unsubscribes,
    /// per language and per domain, the send's rate and the complaint rate; also written as an
    /// HTML page with a chart of each minute's sends
    Report(super::report::ReportArgs),
}

/// What `campaigns show` reports, and how.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Campaign id
    id: i64,
    /// List every recipient, sent ones too
    #[arg(long, conflicts_with_all = ["failed", "uncertain"])]
    all: bool,
    /// Only recipients refused for good (with --uncertain: either)
    #[arg(long)]
    failed: bool,
    /// Only recipients the relay may or may not have: no final reply came, or their sender
    /// stopped with the message in flight (with --failed: either)
    #[arg(long)]
    uncertain: bool,
    /// Only this recipient, whatever became of it, with each of its attempts
    #[arg(long, value_name = "ADDR")]
    recipient: Option<String>,
    /// Also list each attempt of the recipients shown: when it began and ended, its outcome,
    /// where it failed and the relay's reply
    #[arg(long)]
    attempts: bool,
    /// `table` to read, `csv` for a spreadsheet: one row per recipient, or per attempt with
    /// --attempts, with a header
    #[arg(long, value_enum, default_value_t = ShowFormat::Table)]
    format: ShowFormat,
}

/// How `campaigns show` writes what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ShowFormat {
    /// A summary and aligned columns
    Table,
    /// Comma-separated values with a header, for a spreadsheet or a script
    Csv,
}

pub(crate) async fn campaigns(ctx: &Context, cmd: CampaignsCommand) -> anyhow::Result<Outcome> {
    let store = ctx.store().await?;
    match cmd {
        CampaignsCommand::List => list(ctx, &store).await?,
        CampaignsCommand::Show(args) => show(ctx, &store, &args).await?,
        CampaignsCommand::Report(args) => super::report::run(ctx, &store, &args).await?,
        CampaignsCommand::Pause { id } => pause(ctx, &store, id).await?,
        CampaignsCommand::Resume { id } => resume(ctx, &store, id).await?,
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
                "running (no sender; `send` or a `worker` resumes)".to_string()
            } else if let (true, Some(at)) = (c.is_scheduled(), c.scheduled_at.as_deref()) {
                let when = super::send::describe_schedule(at, c.schedule_zone.as_deref());
                if c.status == CampaignStatus::Draft {
                    format!("scheduled for {when}")
                } else {
                    format!("{} (was scheduled for {when}, not started)", c.status)
                }
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

/// One campaign: counts, its sender or why it is paused, and its recipients as asked (by
/// default those not plainly sent), with their attempts when asked.
async fn show(ctx: &Context, store: &Store, args: &ShowArgs) -> anyhow::Result<()> {
    if ctx.json && args.format == ShowFormat::Csv {
        return Err(UsageError("choose one of --json and --format csv".into()).into());
    }
    let c = store.campaign(args.id).await?;
    let n = store.delivery_counts(args.id).await?;
    let sender = store.live_lease(args.id).await?;
    let key = match &args.recipient {
        Some(addr) => Some(
            crate::address::Address::parse(addr)
                .map_err(|e| UsageError(format!("--recipient {addr}: {e}")))?
                .key(),
        ),
        None => None,
    };
    let statuses = selected_statuses(args, sender.is_some());
    let query = DeliveryQuery {
        statuses: statuses.as_deref(),
        email_key: key.as_deref(),
    };
    let mut rows = store.deliveries(args.id, query).await?;
    if let (Some(addr), true, None) = (&args.recipient, rows.is_empty(), &statuses) {
        return Err(UsageError(format!(
            "{addr} is not a recipient of campaign #{}; `bulletin campaigns show {} --all` lists them all",
            args.id, args.id
        ))
        .into());
    }
    for row in &mut rows {
        // Rows in flight are uncertain once no live sender holds them: the relay may have them.
        if row.status == DeliveryStatus::Sending && sender.is_none() {
            row.status = DeliveryStatus::Uncertain;
        }
    }
    let with_attempts = args.attempts || args.recipient.is_some() || ctx.json;
    let attempts = if with_attempts {
        attempts_by_delivery(store.attempts(args.id, query).await?)
    } else {
        BTreeMap::new()
    };
    if ctx.json {
        let deliveries: Vec<ShownDelivery<'_>> = rows
            .iter()
            .map(|d| ShownDelivery {
                delivery: d,
                attempt_log: attempts.get(&d.id).map(Vec::as_slice).unwrap_or_default(),
            })
            .collect();
        ctx.print_json(
            &serde_json::json!({ "campaign": c, "counts": n, "deliveries": deliveries }),
        )?;
    } else if args.format == ShowFormat::Csv {
        // The row shape is chosen explicitly: per attempt only with --attempts.
        outln!("{}", report_csv(&rows, args.attempts.then_some(&attempts))?)?;
    } else {
        print_summary(&c, &n, sender.as_ref())?;
        let list_attempts = args.attempts || args.recipient.is_some();
        print_recipients(&rows, list_attempts.then_some(&attempts))?;
        if rows.is_empty() && statuses.is_some() && (args.failed || args.uncertain) {
            ctx.info("no recipient matches");
        }
    }
    Ok(())
}

/// The statuses `show` selects: `None` for all.
fn selected_statuses(args: &ShowArgs, sender_alive: bool) -> Option<Vec<DeliveryStatus>> {
    use DeliveryStatus as D;
    if args.failed || args.uncertain {
        let mut wanted = Vec::new();
        if args.failed {
            wanted.push(D::Failed);
        }
        if args.uncertain {
            wanted.push(D::Uncertain);
            if !sender_alive {
                // Left in flight by a sender that is gone: nobody knows what became of them.
                wanted.push(D::Sending);
            }
        }
        Some(wanted)
    } else if args.all || args.recipient.is_some() {
        None
    } else {
        Some(vec![
            D::Queued,
            D::Sending,
            D::Failed,
            D::Skipped,
            D::Uncertain,
            D::Bounced,
        ])
    }
}

/// A delivery as `--json` writes it: its fields and each of its attempts.
#[derive(serde::Serialize)]
struct ShownDelivery<'a> {
    #[serde(flatten)]
    delivery: &'a DeliveryRow,
    attempt_log: &'a [AttemptRow],
}

/// Attempts grouped by delivery id.
fn attempts_by_delivery(attempts: Vec<AttemptRow>) -> BTreeMap<i64, Vec<AttemptRow>> {
    let mut by_delivery: BTreeMap<i64, Vec<AttemptRow>> = BTreeMap::new();
    for a in attempts {
        by_delivery.entry(a.delivery_id).or_default().push(a);
    }
    by_delivery
}

/// The campaign, its counts, its sender and why it is paused.
fn print_summary(
    c: &crate::store::Campaign,
    n: &DeliveryCounts,
    sender: Option<&LeaseInfo>,
) -> anyhow::Result<()> {
    outln!(
        "campaign #{}: {} → {} ({})",
        c.id,
        c.edition_slug,
        c.list_name,
        c.status
    )?;
    outln!("subject:  {}", c.subject)?;
    if let (true, Some(at)) = (c.is_scheduled(), c.scheduled_at.as_deref()) {
        outln!(
            "scheduled for {}{}",
            super::send::describe_schedule(at, c.schedule_zone.as_deref()),
            if c.status == CampaignStatus::Draft {
                "; a `bulletin worker` starts it then"
            } else {
                ""
            }
        )?;
    }
    let (in_flight, uncertain) = match sender {
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
    if n.bounced > 0 {
        outln!(
            "bounced {}: accepted by the relay, then reported undeliverable (`bulletin bounces`)",
            n.bounced
        )?;
    }
    if let Some(l) = sender {
        outln!(
            "sender:   {}pid {} on {}, since {}, last heard from {}",
            match l.kind {
                crate::store::LeaseKind::Shared => format!("worker {}, ", l.name),
                crate::store::LeaseKind::Exclusive => String::new(),
            },
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
    Ok(())
}

const RECIPIENT_COLUMNS: [&str; 7] = [
    "recipient",
    "status",
    "attempts",
    "last attempt",
    "delivered",
    "message-id",
    "last reply",
];
const ATTEMPT_COLUMNS: [&str; 7] = [
    "recipient",
    "attempt",
    "started",
    "finished",
    "outcome",
    "stage",
    "reply",
];

fn recipient_cells(d: &DeliveryRow) -> Vec<String> {
    vec![
        d.email.clone().unwrap_or_else(|| "(erased)".into()),
        d.status.to_string(),
        d.attempts.to_string(),
        d.last_attempt_at.clone().unwrap_or_default(),
        d.sent_at.clone().unwrap_or_default(),
        d.message_id.clone().unwrap_or_default(),
        d.last_reply.clone().unwrap_or_default(),
    ]
}

/// One row per attempt of each delivery in `rows` that has any.
fn attempt_cells(
    rows: &[DeliveryRow],
    attempts: &BTreeMap<i64, Vec<AttemptRow>>,
) -> Vec<Vec<String>> {
    let mut cells = Vec::new();
    for d in rows {
        for a in attempts.get(&d.id).into_iter().flatten() {
            cells.push(vec![
                d.email.clone().unwrap_or_else(|| "(erased)".into()),
                a.attempt.to_string(),
                a.started_at.clone(),
                a.finished_at.clone(),
                a.outcome.clone(),
                a.stage.clone().unwrap_or_default(),
                a.reply.clone(),
            ]);
        }
    }
    cells
}

/// The recipients' table, then their attempts' when asked.
fn print_recipients(
    rows: &[DeliveryRow],
    attempts: Option<&BTreeMap<i64, Vec<AttemptRow>>>,
) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    outln!()?;
    let table: Vec<Vec<String>> = rows.iter().map(recipient_cells).collect();
    print_table(&RECIPIENT_COLUMNS, &table)?;
    if let Some(attempts) = attempts {
        outln!()?;
        let cells = attempt_cells(rows, attempts);
        if cells.is_empty() {
            outln!("no attempts logged")?;
        } else {
            print_table(&ATTEMPT_COLUMNS, &cells)?;
        }
    }
    Ok(())
}

/// The report as CSV with a header: one row per recipient, or per attempt when `attempts` is
/// given. Without the final newline (`outln!` adds it).
fn report_csv(
    rows: &[DeliveryRow],
    attempts: Option<&BTreeMap<i64, Vec<AttemptRow>>>,
) -> anyhow::Result<String> {
    let (header, cells) = match attempts {
        Some(attempts) => (ATTEMPT_COLUMNS, attempt_cells(rows, attempts)),
        None => (
            RECIPIENT_COLUMNS,
            rows.iter().map(recipient_cells).collect(),
        ),
    };
    let header = header.map(|h| h.replace([' ', '-'], "_"));
    csv_table(&header, &cells)
}

/// A CSV table with a header row, formula-like cells neutralised as the subscriber export
/// does, no trailing newline.
pub(super) fn csv_table(header: &[String], cells: &[Vec<String>]) -> anyhow::Result<String> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(header)?;
    for row in cells {
        out.write_record(
            row.iter()
                .map(|c| crate::subscriber_csv::neutralise_formula(c).into_owned()),
        )?;
    }
    let bytes = out
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write CSV: {e}"))?;
    let mut text = String::from_utf8(bytes)?;
    text.truncate(text.trim_end_matches('\n').len());
    Ok(text)
}

/// Asks the campaign's sender to stop after the messages in flight.
async fn pause(ctx: &Context, store: &Store, id: i64) -> anyhow::Result<()> {
    let c = store.campaign(id).await?;
    let scheduled = c.status == CampaignStatus::Draft && c.is_scheduled();
    if c.status != CampaignStatus::Running && !scheduled {
        return Err(UsageError(format!("campaign #{id} is {}, not running", c.status)).into());
    }
    store
        .set_campaign_status(
            id,
            CampaignStatus::Paused,
            Some("paused by `bulletin campaigns pause`"),
        )
        .await?;
    ctx.info(if scheduled {
        format!(
            "campaign #{id} paused before its scheduled time: no worker starts it; `bulletin campaigns resume {id}` \
             schedules it again (or `bulletin send` with the same edition and list starts it now)"
        )
    } else {
        format!(
            "campaign #{id} paused; `bulletin campaigns resume {id}` hands it back to the workers, \
             `bulletin send` with the same edition and list resumes it"
        )
    });
    Ok(())
}

/// Hands a paused campaign back to the workers.
async fn resume(ctx: &Context, store: &Store, id: i64) -> anyhow::Result<()> {
    let c = store.campaign(id).await?;
    if c.status != CampaignStatus::Paused {
        return Err(UsageError(format!(
            "campaign #{id} is {}, not paused; only a paused campaign can be resumed",
            c.status
        ))
        .into());
    }
    let status = if c.is_scheduled() {
        CampaignStatus::Draft
    } else {
        CampaignStatus::Running
    };
    store.set_campaign_status(id, status, None).await?;
    ctx.info(match (status, c.scheduled_at.as_deref()) {
        (CampaignStatus::Draft, Some(at)) => format!(
            "campaign #{id} scheduled again for {} (a worker starts it at once if that time has passed)",
            super::send::describe_schedule(at, c.schedule_zone.as_deref())
        ),
        _ => format!("campaign #{id} running again: a `bulletin worker` picks it up at its next poll"),
    });
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
