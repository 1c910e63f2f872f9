//! `bulletin worker`: a long-running sender that works every campaign that is due — running
//! ones, and those `send --at` scheduled once their time has come — beside any number of
//! other workers on other hosts (each with a shared lease and its own claimed rows), until
//! SIGTERM or SIGINT; `--once` sends what is due now and exits (cron, tests).
//!
//! A worker composes each campaign's edition itself, from the path `send` recorded (relative
//! to the project folder: every worker host runs in a copy of the same project folder), and
//! works a campaign only when its own composition has the campaign's content hash: a host
//! with another version of the edition refuses it loudly and leaves it to the others.
//!
//! `--hourly-cap` is the worker's own allowance (one outbound IP's), counted in the database
//! under its `--name` so that it holds across campaigns and restarts; when it is used up the
//! worker stops claiming until the next hour window (`--once`: it exits, saying so).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;

use super::send::{Prepared, personaliser_for, prepare_edition, stop_on_signals};
use super::{Context, Outcome, UsageError};
use crate::delivery::{
    self, DeliveryError, Progress, Relay, Run, RunReport, Settings, WorkerCap, hour_minute_utc,
};
use crate::store::{Campaign, CampaignError, CampaignStatus, Caps, LeaseHolder, Store};

/// Arguments of `bulletin worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Deliver into this Maildir folder instead of the SMTP relay
    #[arg(long, value_name = "DIR")]
    pub outbox: Option<PathBuf>,
    /// This worker's own cap in messages per second (one outbound IP's), on top of each
    /// campaign's cap shared by all its workers; the stricter wins. 0 = none of its own
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// Parallel connections (overrides [smtp] pool)
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// How often to look for campaigns that are due, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub poll: f64,
    /// Send what is due now, then exit (for cron and tests)
    #[arg(long)]
    pub once: bool,
    /// Shown in leases, `campaigns show` and log lines (default host:pid). With
    /// --hourly-cap it is also the key of the cap's count: name the outbound IP (e.g. mx1)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// This worker's own cap in messages per hour (one outbound IP's, e.g. 500 for a new IP),
    /// across every campaign it works and across restarts: counted in the database under
    /// --name, which it needs; workers with the same --name share it. When it is used up the
    /// worker stops claiming until the next hour window (with --once it exits, saying when);
    /// other workers carry on. 0 = none of its own
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub hourly_cap: Option<i64>,
}

/// What one worker keeps between polls.
struct Worker<'a> {
    ctx: &'a Context,
    store: Store,
    relay: Arc<Relay>,
    settings: Settings,
    holder: LeaseHolder,
    stop: Arc<AtomicBool>,
    /// Each campaign's composed edition, or `None` when this worker refuses it.
    prepared: HashMap<i64, Option<Arc<Prepared>>>,
    /// Campaigns already reported as kept off (a `send` holds them), said once.
    told: HashSet<i64>,
    /// Campaigns whose edition could not be composed, said once (tried again each poll: a
    /// missing file may be deployed, the database may come back).
    uncomposed: HashSet<i64>,
    /// A campaign ended in an error this run (exit code 1 with `--once`).
    failed: bool,
    /// This worker's own hourly cap, if it has one.
    cap: Option<WorkerCap>,
    /// While the cap is used up: when its next window opens (Unix seconds, 0 = not capped
    /// as far as this process knows), so that it is said once per window.
    capped_until: AtomicI64,
    /// `--once`: a used-up cap ends the work instead of waiting for the next window.
    once: bool,
}

pub(crate) async fn run(ctx: &Context, args: WorkerArgs) -> anyhow::Result<Outcome> {
    if !(args.poll.is_finite() && args.poll > 0.0 && args.poll <= 86_400.0) {
        return Err(UsageError(format!(
            "--poll {}: give a number of seconds between 0 and 86400 (e.g. --poll 5)",
            args.poll
        ))
        .into());
    }
    if let Some(rate) = args.rate.filter(|r| !(r.is_finite() && *r >= 0.0)) {
        return Err(UsageError(format!(
            "--rate {rate}: give messages per second, 0 or more"
        ))
        .into());
    }
    let cap = worker_cap(&args)?;
    let mut holder = LeaseHolder::this_process();
    if let Some(name) = &args.name {
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(UsageError(format!(
                "--name {name:?}: give 1 to 100 printable characters (e.g. --name mx2)"
            ))
            .into());
        }
        holder = holder.named(name);
    }
    let store = ctx.store().await?;
    let relay = Arc::new(Relay::from_config(&ctx.config, args.outbox.as_deref())?);
    // The campaign's own caps are reserved in the database; this process paces only its own.
    let mut settings = Settings::from_config(&ctx.config, args.concurrency, None);
    settings.rate = args.rate.unwrap_or(0.0);
    settings.hourly_cap = 0;
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signals(Arc::clone(&stop))?;
    let mut worker = Worker {
        ctx,
        store,
        relay,
        settings,
        holder,
        stop,
        prepared: HashMap::new(),
        told: HashSet::new(),
        uncomposed: HashSet::new(),
        failed: false,
        cap,
        capped_until: AtomicI64::new(0),
        once: args.once,
    };
    worker.say(format!(
        "started (pid {}, polling every {} s{}{})",
        std::process::id(),
        args.poll,
        if args.once { ", once" } else { "" },
        worker
            .cap
            .as_ref()
            .map(|c| format!(", own hourly cap {}", c.hourly_cap))
            .unwrap_or_default()
    ));
    loop {
        if let Err(e) = worker.pass().await {
            // The database may come back: a long-running worker keeps trying.
            worker.say(format!("cannot look for due campaigns: {e:#}"));
            worker.failed = true;
        }
        if args.once || worker.stopping() {
            break;
        }
        let until = Instant::now() + Duration::from_secs_f64(args.poll);
        while Instant::now() < until && !worker.stopping() {
            tokio::time::sleep(Duration::from_millis(100).min(until - Instant::now())).await;
        }
        if worker.stopping() {
            break;
        }
    }
    worker.say("stopped");
    worker.store.close().await;
    Ok(if worker.failed && args.once {
        Outcome::Partial
    } else {
        Outcome::Success
    })
}

impl Worker<'_> {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// A log line on stderr, naming this worker.
    fn say(&self, line: impl AsRef<str>) {
        self.ctx
            .info(format!("worker {}: {}", self.holder.name, line.as_ref()));
    }

    /// Works every campaign that is due now, oldest first.
    async fn pass(&mut self) -> anyhow::Result<()> {
        for campaign in self.store.due_campaigns().await? {
            if self.stopping() {
                break;
            }
            let campaign = if campaign.is_scheduled() {
                let (started, by_us) = self.store.start_due(campaign.id).await?;
                // Said only by the worker that started it (another may have got there first).
                if by_us && started.status == CampaignStatus::Running {
                    self.say(format!(
                        "campaign #{}: scheduled time came; started for {} recipient(s) of {}",
                        started.id,
                        self.store.delivery_counts(started.id).await?.total(),
                        started.list_name
                    ));
                } else if by_us && started.status == CampaignStatus::Cancelled {
                    self.say(format!(
                        "campaign #{}: {}",
                        started.id,
                        started.halt_reason.as_deref().unwrap_or("cancelled")
                    ));
                }
                started
            } else {
                campaign
            };
            if campaign.status != CampaignStatus::Running {
                continue;
            }
            if self.once && self.capped_until.load(Ordering::Relaxed) > now_unix() {
                // Said once already; with --once there is no next window to wait for.
                continue;
            }
            if let Err(e) = self.work(&campaign).await {
                self.say(format!("campaign #{}: {e:#}", campaign.id));
                self.failed = true;
            }
        }
        Ok(())
    }

    /// Composes the campaign's edition (once per campaign), or says why it refuses it.
    async fn prepare(&mut self, campaign: &Campaign) -> Option<Arc<Prepared>> {
        if let Some(known) = self.prepared.get(&campaign.id) {
            return known.clone();
        }
        match self.compose(campaign).await {
            Ok(prepared) => {
                self.uncomposed.remove(&campaign.id);
                self.prepared.insert(campaign.id, prepared.clone());
                prepared
            }
            Err(e) => {
                if self.uncomposed.insert(campaign.id) {
                    self.ctx.warn(format!(
                        "worker {}: campaign #{}: {e:#}; leaving it to other workers (tried again at each poll)",
                        self.holder.name, campaign.id
                    ));
                }
                None
            }
        }
    }

    /// The campaign's edition composed here: `Ok(None)` when this worker refuses it for good
    /// (no path on record, other content), an error when composing failed (tried again).
    async fn compose(&self, campaign: &Campaign) -> anyhow::Result<Option<Arc<Prepared>>> {
        let Some(recorded) = campaign.edition_path.as_deref() else {
            self.ctx.warn(format!(
                "worker {}: campaign #{} has no edition path on record (started before workers existed); \
                 leaving it to `bulletin send`",
                self.holder.name, campaign.id
            ));
            return Ok(None);
        };
        let path = self.resolve(recorded);
        let prepared = prepare_edition(
            self.ctx,
            self.store.clone(),
            &path,
            &campaign.list_name,
            None,
        )
        .await
        .with_context(|| format!("cannot compose {}", path.display()))?;
        if prepared.rendered.content_hash != campaign.content_hash {
            self.ctx.warn(format!(
                "worker {}: REFUSING campaign #{}: {} composes here to content hash {}, but the campaign was \
                 started with {}; a worker never mixes content, so it leaves this campaign to workers that \
                 have the same edition (copy the project folder as it was when the campaign was sent)",
                self.holder.name,
                campaign.id,
                path.display(),
                prepared.rendered.content_hash,
                campaign.content_hash
            ));
            return Ok(None);
        }
        Ok(Some(Arc::new(prepared)))
    }

    /// A recorded edition path: relative ones are the project folder's.
    fn resolve(&self, recorded: &str) -> PathBuf {
        let path = Path::new(recorded);
        if path.is_absolute() {
            return path.to_path_buf();
        }
        let project = self
            .ctx
            .config
            .source
            .as_ref()
            .and_then(|f| f.parent())
            .map(Path::to_path_buf)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_default();
        project.join(path)
    }

    /// Joins one campaign and sends its rows until it is done (or stopped, or left to others).
    async fn work(&mut self, campaign: &Campaign) -> anyhow::Result<()> {
        let Some(p) = self.prepare(campaign).await else {
            return Ok(());
        };
        let joined = match delivery::join(
            &self.store,
            self.relay.as_ref(),
            campaign,
            &self.holder,
            self.settings.lease_ttl,
        )
        .await
        {
            Ok(j) => j,
            Err(DeliveryError::Campaign(CampaignError::Busy { holder, .. })) => {
                if self.told.insert(campaign.id) {
                    self.say(format!(
                        "campaign #{}: `bulletin send` (pid {} on {}) works it alone; keeping off",
                        campaign.id, holder.pid, holder.host
                    ));
                }
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        self.told.remove(&campaign.id);
        if joined.orphaned + joined.uncertain > 0 {
            self.say(format!(
                "campaign #{}: {} uncertain recipient(s) (left in flight by senders that stopped) will be sent again",
                campaign.id,
                joined.uncertain.max(joined.orphaned)
            ));
        }
        // The first worker records the campaign's links when it counts clicks; the others
        // (and later runs) follow what is recorded.
        let counting = self.store.counts_clicks(campaign.id).await?;
        let personaliser =
            personaliser_for(self.ctx, &p, campaign.id, p.track_clicks && !counting).await;
        let personaliser = match personaliser {
            Ok(x) => x,
            Err(e) => {
                let _ = self.store.release_lease(&joined.lease).await;
                return Err(e);
            }
        };
        self.say(format!(
            "campaign #{} ({} to {}): working{}",
            campaign.id,
            campaign.edition_slug,
            campaign.list_name,
            caps_text(campaign)
        ));
        let mut progress = LogProgress {
            ctx: self.ctx,
            name: self.holder.name.clone(),
            campaign: campaign.id,
            last: Instant::now(),
            hourly_cap: self.cap.as_ref().map_or(0, |c| c.hourly_cap),
            capped_until: &self.capped_until,
        };
        let report = delivery::run(
            Run {
                store: &self.store,
                lease: &joined.lease,
                list_id: p.list.id,
                personaliser: Arc::new(personaliser),
                transport: Arc::clone(&self.relay),
                settings: &self.settings,
                stop: Arc::clone(&self.stop),
                shared_caps: Some(Caps {
                    rate: campaign.rate,
                    hourly_cap: campaign.hourly_cap,
                }),
                worker_cap: self.cap.clone(),
            },
            &mut progress,
        )
        .await?;
        let status = self.store.campaign(campaign.id).await?.status;
        self.say(format!(
            "campaign #{}: this worker sent {}, failed {}, skipped {} in {:.1} s; campaign {}{}",
            campaign.id,
            report.sent,
            report.failed,
            report.skipped,
            report.seconds,
            status,
            report
                .stopped
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        ));
        if status == CampaignStatus::Finished || status == CampaignStatus::Cancelled {
            self.prepared.remove(&campaign.id);
        }
        Ok(())
    }
}

/// `--hourly-cap`, checked: `None` for none (0 or not given). Refused without `--name`: the
/// count lives under the worker's name, and the default one changes at every restart.
fn worker_cap(args: &WorkerArgs) -> Result<Option<WorkerCap>, UsageError> {
    let cap = match args.hourly_cap {
        None | Some(0) => return Ok(None),
        Some(n) if n < 0 => {
            return Err(UsageError(format!(
                "--hourly-cap {n}: give a whole number of messages per hour, 0 or more \
                 (0 = no cap of this worker's own; e.g. --hourly-cap 500)"
            )));
        }
        Some(n) => n,
    };
    let Some(name) = args.name.clone() else {
        return Err(UsageError(format!(
            "--hourly-cap {cap} needs --name: the cap is counted in the database under the \
             worker's name, and without --name the name is host:pid, which changes at every \
             restart, so a restarted worker would get a fresh {cap}. Name the outbound IP this \
             worker sends from, e.g. `bulletin worker --name mx1 --hourly-cap {cap}` (workers \
             with the same name share the cap)"
        )));
    };
    Ok(Some(WorkerCap {
        name,
        hourly_cap: cap,
        leave_when_reached: args.once,
    }))
}

/// Seconds since the Unix epoch.
fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The campaign's caps, for the log.
fn caps_text(c: &Campaign) -> String {
    let mut parts = Vec::new();
    if c.rate > 0.0 {
        parts.push(format!("{}/s", c.rate));
    }
    if c.hourly_cap > 0 {
        parts.push(format!("{}/hour", c.hourly_cap));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(
            ", campaign capped at {} across all workers",
            parts.join(" and ")
        )
    }
}

/// A log line every 30 seconds while a campaign runs, and one when the worker's own hourly
/// cap is used up.
struct LogProgress<'a> {
    ctx: &'a Context,
    name: String,
    campaign: i64,
    last: Instant,
    /// The worker's own hourly cap (0 = none), for its log line.
    hourly_cap: i64,
    /// The worker's: when its used-up cap opens again, as last said (once per window, across
    /// the campaigns it works).
    capped_until: &'a AtomicI64,
}

impl Progress for LogProgress<'_> {
    fn worker_capped(&mut self, next: time::OffsetDateTime) {
        let at = next.unix_timestamp();
        if self.capped_until.swap(at, Ordering::Relaxed) != at {
            self.ctx.info(format!(
                "worker {}: hourly cap {} reached; next message at {}",
                self.name,
                self.hourly_cap,
                hour_minute_utc(next)
            ));
        }
    }

    fn update(&mut self, r: &RunReport, in_flight: usize) {
        if self.last.elapsed() < Duration::from_secs(30) {
            return;
        }
        self.last = Instant::now();
        self.ctx.info(format!(
            "worker {}: campaign #{}: sent {}, failed {}, retrying {}, in flight {in_flight}",
            self.name, self.campaign, r.sent, r.failed, r.retried
        ));
    }
}
