//! The send engine: claims recipients from the campaign's `deliveries` rows, builds their
//! messages, paces them, hands them to N workers (each with its own transport session), and
//! records every outcome.
//!
//! The loop is one transaction per turn: settle the outcomes that came back since the last
//! turn, claim as many recipients as there are free workers. So a row is `sending` only while
//! its message is with a worker or its outcome waits for the next turn; after a crash those
//! rows, at most the concurrency, are the only uncertain ones, and `campaigns show` lists them.

pub mod reply;
pub mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, mpsc};

use crate::mail::{Personaliser, RecipientData};
use crate::store::{CampaignError, Lease, Outcome, Recipient, Store, StoreError};
pub use reply::{EnhancedCode, Problem, Reply, Stage, Verdict};
pub use transport::{MaildirOutbox, SendError, Session, SmtpRelay, SmtpTimeouts, Transport};

/// Why a send stopped before it was done.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The campaign (another sender holds it, our lease was lost, ...).
    #[error(transparent)]
    Campaign(#[from] CampaignError),
    /// The relay cannot be reached or refuses us (checked before the first message).
    #[error("cannot deliver through {relay}: {cause}")]
    Relay {
        /// The transport.
        relay: String,
        /// What went wrong.
        cause: String,
    },
    /// The database stopped taking writes mid-send.
    #[error("campaign #{campaign}: the database failed mid-send ({cause}). {}", unrecorded_advice(unrecorded, *status_recorded))]
    Unrecorded {
        /// The campaign.
        campaign: i64,
        /// The database error.
        cause: String,
        /// Addresses whose message went to the relay but whose outcome is not recorded.
        unrecorded: Vec<String>,
        /// Whether the campaign could still be marked paused.
        status_recorded: bool,
    },
}

fn unrecorded_advice(unrecorded: &[String], status_recorded: bool) -> String {
    let mut text = if unrecorded.is_empty() {
        "The outcomes of the messages already with the relay were recorded. ".to_string()
    } else {
        format!(
            "{} message(s) went to the relay but their outcome is not recorded: {}; the next `send` treats \
             them as uncertain and sends them again (add --skip-uncertain to leave them out). ",
            unrecorded.len(),
            unrecorded.join(", ")
        )
    };
    text.push_str(if status_recorded {
        "The campaign is paused. "
    } else {
        "The campaign could not be marked paused; with no sender holding it, `send` resumes it all the same. "
    });
    text.push_str(
        "Once the database takes writes again (free disk space, the file's and folder's permissions, \
         another process holding it), run the same `bulletin send` command to resume",
    );
    text
}

/// How fast and how persistently to send.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Workers, each with its own session.
    pub concurrency: usize,
    /// Messages per second; 0 = no limit.
    pub rate: f64,
    /// Messages per hour; 0 = no cap.
    pub hourly_cap: u32,
    /// Attempts per message before a temporary failure is final.
    pub max_attempts: u32,
    /// First retry delay; doubled each attempt, with ±50 % jitter.
    pub retry_base: Duration,
    /// This many transient failures in a row mean the relay is down: pause the campaign.
    pub pause_after_failures: u32,
    /// How long the campaign's lease lasts without renewal; renewed every quarter of it.
    pub lease_ttl: Duration,
}

/// Permanent refusals that might be about us rather than the recipient (policy, content), in
/// a row with nothing accepted in between, after which the relay is taken to refuse us.
const AMBIGUOUS_IN_A_ROW: u32 = 5;

/// Why a run stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Halt {
    /// Ctrl-C, SIGTERM or SIGHUP.
    Interrupted,
    /// `bulletin campaigns pause`.
    Paused,
    /// `bulletin campaigns cancel`.
    Cancelled,
    /// Too many transient failures in a row.
    RelayDown {
        /// How many.
        failures: u32,
        /// The relay.
        relay: String,
        /// The last failure.
        last: String,
    },
    /// The relay refuses us: our sender, credentials, client address, or every recipient.
    RelayRefusesUs {
        /// The refusal, with its stage.
        refusal: String,
    },
    /// Messages were handed over whole with no final reply.
    Uncertain {
        /// How many rows are uncertain.
        count: i64,
    },
    /// The database failed, or our lease was lost.
    Store(String),
}

impl Halt {
    /// The campaign status a halt leaves.
    pub fn campaign_status(&self) -> &'static str {
        match self {
            Self::Cancelled => "cancelled",
            _ => "paused",
        }
    }
}

impl std::fmt::Display for Halt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Interrupted => f.write_str("interrupted; run the same command again to resume"),
            Self::Paused => f.write_str("paused by `bulletin campaigns pause`"),
            Self::Cancelled => f.write_str("cancelled by `bulletin campaigns cancel`"),
            Self::RelayDown {
                failures,
                relay,
                last,
            } => write!(
                f,
                "{failures} temporary failures in a row: the relay looks down ({relay}; last: {last}); \
                 paused — run the same command again to resume"
            ),
            Self::RelayRefusesUs { refusal } => write!(
                f,
                "paused because the relay refuses this sender, not a recipient: {refusal}. \
                 No recipient was marked; fix the relay or [smtp]/[list] settings, then run the same command again to resume"
            ),
            Self::Uncertain { count } => write!(
                f,
                "left {count} message(s) uncertain: the relay took the whole message but no final reply came back, \
                 so it may have them (see `bulletin campaigns show`). Run the same command again to send them again, \
                 or add --skip-uncertain to leave them out"
            ),
            Self::Store(e) => write!(f, "stopped: {e}"),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunReport {
    /// Accepted by the relay in this run.
    pub sent: u64,
    /// Refused for good in this run.
    pub failed: u64,
    /// Temporary failures that were put back for a retry.
    pub retried: u64,
    /// Not sent (left the list, blocklisted) in this run.
    pub skipped: u64,
    /// Handed over whole with no final reply in this run.
    pub uncertain: u64,
    /// Bytes handed to the transport.
    pub bytes: u64,
    /// Why the run stopped early (pause, Ctrl-C, relay down), if it did.
    pub stopped: Option<String>,
    /// The same, as data.
    #[serde(skip)]
    pub halt: Option<Halt>,
    /// Seconds spent.
    pub seconds: f64,
}

/// Progress, for a bar or log lines.
pub trait Progress: Send {
    /// Called after each turn of the loop.
    fn update(&mut self, report: &RunReport, in_flight: usize);
}

/// Paces dispatches at `rate` per second and at most `hourly_cap` per rolling hour.
struct Pacer {
    interval: Option<Duration>,
    next: Instant,
    hourly_cap: u32,
    window_start: Instant,
    in_window: u32,
}

impl Pacer {
    fn new(rate: f64, hourly_cap: u32) -> Self {
        let now = Instant::now();
        Self {
            interval: (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate)),
            next: now,
            hourly_cap,
            window_start: now,
            in_window: 0,
        }
    }

    /// Waits until the next message may go. The schedule advances by a fixed interval from
    /// the first message, so short sleeps that overshoot do not lower the average rate.
    async fn wait(&mut self) {
        if self.hourly_cap > 0 {
            if self.window_start.elapsed() >= Duration::from_secs(3600) {
                self.window_start = Instant::now();
                self.in_window = 0;
            }
            if self.in_window >= self.hourly_cap {
                tokio::time::sleep_until((self.window_start + Duration::from_secs(3600)).into())
                    .await;
                self.window_start = Instant::now();
                self.in_window = 0;
            }
            self.in_window += 1;
        }
        if let Some(interval) = self.interval {
            let now = Instant::now();
            if self.next > now {
                tokio::time::sleep_until(self.next.into()).await;
            } else if now - self.next > interval * 4 {
                // After an idle stretch (waiting for retries) do not burst to catch up.
                self.next = now;
            }
            self.next += interval;
        }
    }
}

struct Job {
    delivery_id: i64,
    subscriber_id: i64,
    email: String,
    attempts: i64,
    retry_from: i64,
    message_id: String,
    bytes: u64,
}

struct Done {
    job: Job,
    result: Result<String, SendError>,
}

/// What a relay can do, learnt from one session opened before the campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// SMTPUTF8 (RFC 6531): addresses with a non-ASCII local part can be delivered.
    pub smtputf8: bool,
}

/// Opens and closes one session: the relay is reachable and accepts our credentials. Called
/// before a campaign is created, so a wrong `[smtp] url` records nothing.
pub async fn check<T: Transport>(transport: &T) -> Result<Capabilities, DeliveryError> {
    let session = transport.open().await.map_err(|e| DeliveryError::Relay {
        relay: transport.describe(),
        cause: e.to_string(),
    })?;
    let capabilities = Capabilities {
        smtputf8: session.smtputf8(),
    };
    session.close().await;
    Ok(capabilities)
}

/// A refusal held back until the relay shows whether it refuses this recipient or everyone.
struct Suspended {
    delivery_id: i64,
    reply: String,
}

/// The state of one run's loop that outcomes feed.
struct Judge<'a> {
    settings: &'a Settings,
    relay: String,
    report: RunReport,
    consecutive_failures: u32,
    ambiguous_in_a_row: u32,
    suspended: Vec<Suspended>,
    halt: Option<Halt>,
}

impl Judge<'_> {
    fn halt(&mut self, halt: Halt) {
        if self.halt.is_none() {
            // Progress sees the run start stopping at once, not only at the end.
            self.report.stopped = Some(halt.to_string());
            self.halt = Some(halt);
        }
    }

    /// Turns a worker's result into the delivery's outcome, or holds it back (`None`).
    fn judge(&mut self, done: &Done) -> Option<Outcome> {
        let job = &done.job;
        let error = match &done.result {
            Ok(reply) => {
                self.consecutive_failures = 0;
                self.ambiguous_in_a_row = 0;
                self.report.sent += 1;
                return Some(Outcome::Sent {
                    reply: reply.clone(),
                    message_id: job.message_id.clone(),
                });
            }
            Err(e) => e,
        };
        let reply = error.reply_text();
        Some(match error.verdict() {
            Verdict::RecipientRefused { mailbox_gone } => {
                self.consecutive_failures = 0;
                self.report.failed += 1;
                Outcome::Failed {
                    reply,
                    // The mailbox does not exist: mailing it again only hurts our reputation.
                    blocklist: mailbox_gone.then_some(job.subscriber_id),
                }
            }
            Verdict::Ambiguous => {
                self.ambiguous_in_a_row += 1;
                if self.ambiguous_in_a_row >= AMBIGUOUS_IN_A_ROW {
                    self.halt(Halt::RelayRefusesUs {
                        refusal: format!(
                            "{} refusals in a row with nothing accepted, the last {}",
                            self.ambiguous_in_a_row, error
                        ),
                    });
                }
                self.suspended.push(Suspended {
                    delivery_id: job.delivery_id,
                    reply,
                });
                return None;
            }
            Verdict::RelayRefusesUs => {
                self.halt(Halt::RelayRefusesUs {
                    refusal: error.to_string(),
                });
                Outcome::Requeue { not_before: None }
            }
            Verdict::RelayUnavailable => {
                self.count_transient(error);
                let delay = self.backoff(i64::from(self.consecutive_failures));
                Outcome::Requeue {
                    not_before: Some(rfc3339_after(delay)),
                }
            }
            Verdict::Uncertain => {
                self.count_transient(error);
                self.report.uncertain += 1;
                Outcome::Uncertain { reply }
            }
            Verdict::RetryRecipient => {
                self.count_transient(error);
                let tried = job.attempts - job.retry_from;
                if tried >= i64::from(self.settings.max_attempts) {
                    self.report.failed += 1;
                    Outcome::Failed {
                        reply: format!("{reply} (gave up after {tried} attempts)"),
                        blocklist: None,
                    }
                } else {
                    self.report.retried += 1;
                    Outcome::Retry {
                        reply,
                        not_before: rfc3339_after(self.backoff(tried)),
                    }
                }
            }
        })
    }

    fn count_transient(&mut self, error: &SendError) {
        self.consecutive_failures += 1;
        let limit = self.settings.pause_after_failures;
        if limit > 0 && self.consecutive_failures >= limit {
            self.halt(Halt::RelayDown {
                failures: self.consecutive_failures,
                relay: self.relay.clone(),
                last: error.to_string(),
            });
        }
    }

    /// The retry base doubled per earlier attempt, with ±50 % jitter.
    fn backoff(&self, attempts: i64) -> f64 {
        let exponent = u32::try_from(attempts.clamp(1, 16) - 1).unwrap_or(0);
        let base = self.settings.retry_base.as_secs_f64() * f64::from(2u32.pow(exponent));
        base * (0.5 + fastrand::f64())
    }

    /// Held-back refusals become the recipients' failures once the relay accepted mail after
    /// them, or at the end of the queue when it accepted this campaign's mail before.
    fn release_suspended(&mut self, finished: &mut Vec<(i64, Outcome)>) {
        self.report.failed += self.suspended.len() as u64;
        for s in self.suspended.drain(..) {
            finished.push((
                s.delivery_id,
                Outcome::Failed {
                    reply: s.reply,
                    blocklist: None,
                },
            ));
        }
    }

    /// Held-back refusals go back to the queue untouched (the run is stopping, or the relay
    /// refuses everyone).
    fn requeue_suspended(&mut self, finished: &mut Vec<(i64, Outcome)>) {
        for s in self.suspended.drain(..) {
            finished.push((s.delivery_id, Outcome::Requeue { not_before: None }));
        }
    }
}

/// Runs a campaign under `lease` until every recipient has an outcome, or until it is paused,
/// interrupted (`stop`), the relay looks down or refuses us, or the database fails.
#[allow(clippy::too_many_arguments)]
pub async fn run<T: Transport>(
    store: &Store,
    lease: &Lease,
    list_id: i64,
    personaliser: Arc<Personaliser>,
    transport: Arc<T>,
    settings: &Settings,
    stop: Arc<AtomicBool>,
    progress: &mut dyn Progress,
) -> Result<RunReport, DeliveryError> {
    let started = Instant::now();
    let campaign_id = lease.campaign_id;
    // Fail before anything is claimed if the relay cannot be reached at all.
    if let Err(e) = check(transport.as_ref()).await {
        let _ = store.release_lease(lease).await;
        return Err(e);
    }

    let concurrency = settings.concurrency.max(1);
    let (job_tx, job_rx) = mpsc::channel::<Recipient>(concurrency);
    let (done_tx, mut done_rx) = mpsc::channel::<Done>(concurrency * 2);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let from = personaliser.envelope_from().to_string();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let job_rx = Arc::clone(&job_rx);
        let done_tx = done_tx.clone();
        let transport = Arc::clone(&transport);
        let from = from.clone();
        let personaliser = Arc::clone(&personaliser);
        workers.push(tokio::spawn(async move {
            let mut session: Option<T::Session> = None;
            loop {
                let recipient = { job_rx.lock().await.recv().await };
                let Some(recipient) = recipient else { break };
                // Built here, in the worker, so that personalising, encoding and signing use
                // every core instead of queueing behind the dispatcher.
                let done = match build_job(&personaliser, &recipient) {
                    Err((job, reason)) => Done {
                        job,
                        result: Err(SendError::new(
                            "bulletin",
                            Stage::RcptTo,
                            Problem::Local(reason),
                        )),
                    },
                    Ok((job, to, bytes)) => {
                        let result = match session.as_mut() {
                            Some(s) => s.send(&from, &to, &bytes).await,
                            None => match transport.open().await {
                                Ok(mut s) => {
                                    let r = s.send(&from, &to, &bytes).await;
                                    session = Some(s);
                                    r
                                }
                                Err(e) => Err(e),
                            },
                        };
                        Done { job, result }
                    }
                };
                if done_tx.send(done).await.is_err() {
                    break;
                }
            }
            if let Some(s) = session {
                s.close().await;
            }
        }));
    }
    drop(done_tx);

    // The heartbeat keeps the lease while the loop waits (a slow relay may take minutes to
    // answer); losing it stops the run.
    let lease_lost = Arc::new(AtomicBool::new(false));
    let heartbeat = {
        let store = store.clone();
        let lease = lease.clone();
        let lost = Arc::clone(&lease_lost);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease.ttl / 4).await;
                if let Err(CampaignError::LeaseLost(_)) = store.renew_lease(&lease).await {
                    lost.store(true, Ordering::Relaxed);
                    break;
                }
            }
        })
    };

    let mut judge = Judge {
        settings,
        relay: transport.describe(),
        report: RunReport::default(),
        consecutive_failures: 0,
        ambiguous_in_a_row: 0,
        suspended: Vec::new(),
        halt: None,
    };
    let mut pacer = Pacer::new(settings.rate, settings.hourly_cap);
    let mut finished: Vec<(i64, Outcome)> = Vec::new();
    // Addresses of the outcomes in `finished`, for an error that must name them.
    let mut finished_emails: Vec<String> = Vec::new();
    let mut in_flight = 0usize;
    // Once the database fails, nothing more is claimed: the loop only collects the outcomes of
    // messages already with the relay, and records them at the end if it can.
    let mut store_failure: Option<DeliveryError> = None;

    loop {
        if judge.halt.is_none() {
            if stop.load(Ordering::Relaxed) {
                judge.halt(Halt::Interrupted);
            } else if lease_lost.load(Ordering::Relaxed) {
                judge.halt(Halt::Store(
                    CampaignError::LeaseLost(campaign_id).to_string(),
                ));
            } else if store_failure.is_none() {
                match store.campaign(campaign_id).await.map(|c| c.status) {
                    Ok(s) if s == "paused" => judge.halt(Halt::Paused),
                    Ok(s) if s == "cancelled" => judge.halt(Halt::Cancelled),
                    Ok(_) => {}
                    Err(e) => {
                        judge.halt(Halt::Store(e.to_string()));
                        store_failure = Some(e.into());
                    }
                }
            }
        }
        if judge.halt.is_some() {
            judge.requeue_suspended(&mut finished);
        }
        if store_failure.is_none() {
            let free = if judge.halt.is_some() {
                0
            } else {
                concurrency - in_flight
            };
            match store
                .settle_and_claim(lease, list_id, &finished, free)
                .await
            {
                Ok(claimed) => {
                    finished.clear();
                    finished_emails.clear();
                    for recipient in claimed {
                        pacer.wait().await;
                        in_flight += 1;
                        if job_tx.send(recipient).await.is_err() {
                            in_flight -= 1;
                        }
                    }
                }
                Err(e) => {
                    judge.halt(Halt::Store(e.to_string()));
                    store_failure = Some(e.into());
                }
            }
        }
        progress.update(&judge.report, in_flight);
        if in_flight == 0 {
            if store_failure.is_some() {
                break;
            }
            if !finished.is_empty() {
                continue;
            }
            if judge.halt.is_some() {
                break;
            }
            // Nothing in flight and nothing claimable now.
            if !judge.suspended.is_empty() {
                // Refusals that no later acceptance explained: the recipients' own if this
                // campaign's mail was accepted before, otherwise the relay refuses everyone.
                let accepted_before = judge.report.sent > 0
                    || store
                        .delivery_counts(campaign_id)
                        .await
                        .map(|c| c.sent > 0)
                        .unwrap_or(false);
                if accepted_before {
                    judge.release_suspended(&mut finished);
                } else {
                    let n = judge.suspended.len();
                    let last = judge
                        .suspended
                        .last()
                        .map(|s| s.reply.clone())
                        .unwrap_or_default();
                    judge.halt(Halt::RelayRefusesUs {
                        refusal: format!(
                            "it refused all {n} recipient(s) it was offered and accepted none, the last: {last}"
                        ),
                    });
                }
                continue;
            }
            match store.next_retry_at(campaign_id).await {
                Err(e) => {
                    judge.halt(Halt::Store(e.to_string()));
                    store_failure = Some(e.into());
                    break;
                }
                Ok(None) => break,
                Ok(Some(at)) => {
                    let wait = seconds_until(&at).clamp(0.05, 5.0);
                    tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                    continue;
                }
            }
        }
        // Wait for at least one outcome, then take every other one already there.
        let Some(first) = done_rx.recv().await else {
            break;
        };
        let mut batch = vec![first];
        while let Ok(more) = done_rx.try_recv() {
            batch.push(more);
        }
        for done in batch {
            in_flight -= 1;
            judge.report.bytes += done.job.bytes;
            let accepted = done.result.is_ok();
            if let Some(outcome) = judge.judge(&done) {
                finished.push((done.job.delivery_id, outcome));
                finished_emails.push(done.job.email.clone());
            }
            if accepted {
                // The relay takes our mail: the refusals held back were about their recipients.
                judge.release_suspended(&mut finished);
            }
        }
    }
    drop(job_tx);
    for w in workers {
        let _ = w.await;
    }
    heartbeat.abort();
    judge.requeue_suspended(&mut finished);

    if let Some(failure) = store_failure {
        return Err(record_after_failure(
            store,
            lease,
            list_id,
            finished,
            finished_emails,
            failure,
        )
        .await);
    }
    let counts = store.delivery_counts(campaign_id).await?;
    if judge.halt.is_none() && counts.queued + counts.sending == 0 && counts.uncertain > 0 {
        judge.halt(Halt::Uncertain {
            count: counts.uncertain,
        });
    }
    let status = match &judge.halt {
        Some(h) => h.campaign_status(),
        None if counts.queued + counts.sending == 0 => "finished",
        None => "paused",
    };
    let reason = judge.halt.as_ref().map(ToString::to_string);
    store
        .set_campaign_status(campaign_id, status, reason.as_deref())
        .await?;
    store.release_lease(lease).await?;
    let mut report = judge.report;
    report.stopped = reason;
    report.halt = judge.halt;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// After the database failed mid-run: tries for a while to record the outcomes that came
/// back and to mark the campaign paused, and says what could not be recorded.
async fn record_after_failure(
    store: &Store,
    lease: &Lease,
    list_id: i64,
    finished: Vec<(i64, Outcome)>,
    emails: Vec<String>,
    failure: DeliveryError,
) -> DeliveryError {
    if matches!(
        failure,
        DeliveryError::Campaign(CampaignError::LeaseLost(_))
    ) {
        // Another sender may own these rows now; it treats them as uncertain.
        return failure;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut recorded = finished.is_empty();
    let mut status_recorded = false;
    while Instant::now() < deadline && !(recorded && status_recorded) {
        if !recorded {
            recorded = store
                .settle_and_claim(lease, list_id, &finished, 0)
                .await
                .is_ok();
        }
        if recorded && !status_recorded {
            status_recorded = store
                .set_campaign_status(
                    lease.campaign_id,
                    "paused",
                    Some(&format!("stopped by a database error: {failure}")),
                )
                .await
                .is_ok();
        }
        if !(recorded && status_recorded) {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    if recorded {
        let _ = store.release_lease(lease).await;
    }
    DeliveryError::Unrecorded {
        campaign: lease.campaign_id,
        cause: failure.to_string(),
        unrecorded: if recorded { Vec::new() } else { emails },
        status_recorded,
    }
}

fn build_job(
    personaliser: &Personaliser,
    r: &Recipient,
) -> Result<(Job, String, Vec<u8>), (Job, String)> {
    let mut job = Job {
        delivery_id: r.delivery_id,
        subscriber_id: r.subscriber_id,
        email: r.email.clone(),
        attempts: r.attempts,
        retry_from: r.retry_from,
        message_id: String::new(),
        bytes: 0,
    };
    match personaliser.build(
        &RecipientData {
            subscriber_id: r.subscriber_id,
            delivery_id: r.delivery_id,
            email: &r.email,
            name: &r.name,
            language: r.language.as_deref(),
            attributes: &r.attributes,
            token_nonce: &r.token_nonce,
        },
        time::OffsetDateTime::now_utc(),
    ) {
        Err(e) => Err((job, format!("the message cannot be built: {e}"))),
        Ok(built) => {
            job.message_id = built.message_id;
            job.bytes = built.bytes.len() as u64;
            Ok((job, built.to, built.bytes))
        }
    }
}

fn rfc3339_after(seconds: f64) -> String {
    crate::store::timestamp(
        time::OffsetDateTime::now_utc() + Duration::from_secs_f64(seconds.max(0.0)),
    )
}

fn seconds_until(rfc3339: &str) -> f64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|t| (t - time::OffsetDateTime::now_utc()).as_seconds_f64())
        .unwrap_or(1.0)
}
