//! The send engine: claims recipients from the campaign's `deliveries` rows, builds their
//! messages, paces them, hands them to N workers (each with its own transport session), and
//! records every outcome.
//!
//! The loop is one transaction per turn: settle the outcomes that came back since the last
//! turn, claim as many recipients as there are free workers. So a row is `sending` only while
//! its message is with a worker or its outcome waits for the next turn; after a crash those
//! rows, at most the concurrency, are the only uncertain ones, and `campaigns show` lists them.

pub mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, mpsc};

use crate::mail::{Personaliser, RecipientData};
use crate::store::{Outcome, Recipient, Store, StoreError};
pub use transport::{MaildirOutbox, SendError, Session, SmtpRelay, Transport};

/// Why a send stopped before it was done.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The relay cannot be reached or refuses us (checked before the first message).
    #[error("cannot deliver through {relay}: {cause}")]
    Relay {
        /// The transport.
        relay: String,
        /// What went wrong.
        cause: String,
    },
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
    /// Bytes handed to the transport.
    pub bytes: u64,
    /// Why the run stopped early (pause, Ctrl-C, relay down), if it did.
    pub stopped: Option<String>,
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
    attempts: i64,
    message_id: String,
    bytes: u64,
}

struct Done {
    job: Job,
    result: Result<String, SendError>,
    /// The message could not be built (a stored address that no longer parses).
    unbuildable: Option<String>,
}

/// Opens and closes one session: the relay is reachable and accepts our credentials. Called
/// before a campaign is created, so a wrong `[smtp] url` records nothing.
pub async fn check<T: Transport>(transport: &T) -> Result<(), DeliveryError> {
    let session = transport.open().await.map_err(|e| DeliveryError::Relay {
        relay: transport.describe(),
        cause: e.to_string(),
    })?;
    session.close().await;
    Ok(())
}

/// Runs a campaign until every recipient has an outcome, or until it is paused, interrupted
/// (`stop`), or the relay looks down.
#[allow(clippy::too_many_arguments)]
pub async fn run<T: Transport>(
    store: &Store,
    campaign_id: i64,
    list_id: i64,
    personaliser: Arc<Personaliser>,
    transport: Arc<T>,
    settings: &Settings,
    stop: Arc<AtomicBool>,
    progress: &mut dyn Progress,
) -> Result<RunReport, DeliveryError> {
    let started = Instant::now();
    // Fail before anything is claimed if the relay cannot be reached at all.
    check(transport.as_ref()).await?;

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
                    Err(reason) => Done {
                        job: Job {
                            delivery_id: recipient.delivery_id,
                            subscriber_id: recipient.subscriber_id,
                            attempts: recipient.attempts,
                            message_id: String::new(),
                            bytes: 0,
                        },
                        result: Err(SendError::Permanent(reason.clone())),
                        unbuildable: Some(reason),
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
                        Done {
                            job,
                            result,
                            unbuildable: None,
                        }
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

    let mut report = RunReport::default();
    let mut pacer = Pacer::new(settings.rate, settings.hourly_cap);
    let mut finished: Vec<(i64, Outcome)> = Vec::new();
    let mut in_flight = 0usize;
    let mut consecutive_failures = 0u32;
    let mut halt: Option<String> = None;

    loop {
        if halt.is_none() {
            if stop.load(Ordering::Relaxed) {
                halt = Some("interrupted; run the same command again to resume".into());
            } else {
                let status = store.campaign(campaign_id).await.map(|c| c.status);
                match status.as_deref() {
                    Ok("paused") => halt = Some("paused by `bulletin campaigns pause`".into()),
                    Ok("cancelled") => {
                        halt = Some("cancelled by `bulletin campaigns cancel`".into())
                    }
                    _ => {}
                }
            }
        }
        let free = if halt.is_some() {
            0
        } else {
            concurrency - in_flight
        };
        let claimed = store
            .settle_and_claim(campaign_id, list_id, &finished, free)
            .await?;
        finished.clear();
        for recipient in claimed {
            pacer.wait().await;
            in_flight += 1;
            if job_tx.send(recipient).await.is_err() {
                in_flight -= 1;
            }
        }
        progress.update(&report, in_flight);
        if in_flight == 0 {
            if !finished.is_empty() {
                continue;
            }
            if halt.is_some() {
                break;
            }
            // Nothing in flight and nothing claimable: done, or waiting for retries.
            match store.next_retry_at(campaign_id).await? {
                None => break,
                Some(at) => {
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
            report.bytes += done.job.bytes;
            let outcome = match &done.unbuildable {
                Some(reason) => {
                    report.failed += 1;
                    Outcome::Failed {
                        reply: reason.clone(),
                    }
                }
                None => {
                    judge(
                        store,
                        &done,
                        settings,
                        &mut report,
                        &mut consecutive_failures,
                    )
                    .await?
                }
            };
            finished.push((done.job.delivery_id, outcome));
        }
        if settings.pause_after_failures > 0
            && consecutive_failures >= settings.pause_after_failures
            && halt.is_none()
        {
            halt = Some(format!(
                "{} temporary failures in a row: the relay looks down ({}); paused — run the same command again to resume",
                consecutive_failures,
                transport.describe()
            ));
        }
    }
    drop(job_tx);
    for w in workers {
        let _ = w.await;
    }
    let counts = store.delivery_counts(campaign_id).await?;
    let status = match &halt {
        Some(h) if h.starts_with("cancelled") => "cancelled",
        Some(_) => "paused",
        None if counts.queued + counts.sending == 0 => "finished",
        None => "paused",
    };
    store.set_campaign_status(campaign_id, status).await?;
    report.stopped = halt;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn build_job(personaliser: &Personaliser, r: &Recipient) -> Result<(Job, String, Vec<u8>), String> {
    let built = personaliser
        .build(
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
        )
        .map_err(|e| e.to_string())?;
    Ok((
        Job {
            delivery_id: r.delivery_id,
            subscriber_id: r.subscriber_id,
            attempts: r.attempts,
            message_id: built.message_id,
            bytes: built.bytes.len() as u64,
        },
        built.to,
        built.bytes,
    ))
}

/// Turns a worker's result into the delivery's outcome.
async fn judge(
    store: &Store,
    done: &Done,
    settings: &Settings,
    report: &mut RunReport,
    consecutive_failures: &mut u32,
) -> Result<Outcome, StoreError> {
    Ok(match &done.result {
        Ok(reply) => {
            *consecutive_failures = 0;
            report.sent += 1;
            Outcome::Sent {
                reply: reply.clone(),
                message_id: done.job.message_id.clone(),
            }
        }
        Err(SendError::Permanent(reply)) => {
            *consecutive_failures = 0;
            report.failed += 1;
            // 5.1.x: the mailbox does not exist. Mailing it again only hurts our reputation.
            if reply.contains("5.1.1") || reply.contains("5.1.0") || reply.contains("5.1.10") {
                store
                    .blocklist(done.job.subscriber_id, reply, "bounce")
                    .await?;
            }
            Outcome::Failed {
                reply: reply.clone(),
            }
        }
        Err(SendError::Transient(reply)) => {
            *consecutive_failures += 1;
            if done.job.attempts >= i64::from(settings.max_attempts) {
                report.failed += 1;
                Outcome::Failed {
                    reply: format!("{reply} (gave up after {} attempts)", done.job.attempts),
                }
            } else {
                report.retried += 1;
                let exponent = u32::try_from(done.job.attempts.clamp(1, 16) - 1).unwrap_or(0);
                let base = settings.retry_base.as_secs_f64() * f64::from(2u32.pow(exponent));
                let delay = base * (0.5 + fastrand::f64());
                Outcome::Retry {
                    reply: reply.clone(),
                    not_before: rfc3339_after(delay),
                }
            }
        }
    })
}

fn rfc3339_after(seconds: f64) -> String {
    let t = time::OffsetDateTime::now_utc() + Duration::from_secs_f64(seconds.max(0.0));
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&format).unwrap_or_default()
}

fn seconds_until(rfc3339: &str) -> f64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|t| (t - time::OffsetDateTime::now_utc()).as_seconds_f64())
        .unwrap_or(1.0)
}
