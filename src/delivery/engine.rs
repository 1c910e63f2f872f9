//! The send engine: claims recipients under the campaign's lease, builds their messages in
//! N workers (each with its own transport session), paces them, judges every outcome by its
//! SMTP stage and codes, and records it.
//!
//! The loop is one transaction per turn: renew the lease, settle the outcomes that came back
//! since the last turn, claim as many recipients as there are free workers. So a row is
//! `sending` only while its message is with a worker or its outcome waits for the next turn;
//! after a crash those rows, at most the concurrency, are the only uncertain ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, mpsc};

use super::{
    DeliveryError, Halt, Problem, Progress, RunReport, SendError, Session, Settings, Stage,
    Transport, Verdict,
};
use crate::mail::{Personaliser, RecipientData};
use crate::store::{
    Attempt, CampaignError, CampaignStatus, Caps, ClaimCursor, Lease, LeaseKind, Outcome,
    Recipient, Reservation, Settlement, Store,
};

/// Permanent refusals that might be about us rather than the recipient (policy, content), in
/// a row with nothing accepted in between, after which the relay is taken to refuse us.
const AMBIGUOUS_IN_A_ROW: u32 = 5;

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

    /// Whether a rate or an hourly cap limits dispatches.
    fn paces(&self) -> bool {
        self.interval.is_some() || self.hourly_cap > 0
    }

    /// How long [`Pacer::wait`] would sleep now.
    fn wait_time(&self) -> Duration {
        if self.hourly_cap > 0
            && self.in_window >= self.hourly_cap
            && self.window_start.elapsed() < Duration::from_secs(3600)
        {
            return (self.window_start + Duration::from_secs(3600))
                .saturating_duration_since(Instant::now());
        }
        self.next.saturating_duration_since(Instant::now())
    }

    /// When the next message may go.
    fn next_due(&self) -> Instant {
        Instant::now() + self.wait_time()
    }

    /// Takes up to `n` more dispatches that are already due, without waiting; returns how many.
    fn take_due(&mut self, n: usize) -> usize {
        let mut taken = 0;
        while taken < n && self.wait_time().is_zero() {
            if self.hourly_cap > 0 {
                self.in_window += 1;
            }
            if let Some(interval) = self.interval {
                self.next += interval;
            }
            taken += 1;
        }
        taken
    }
}

/// How often a worker whose own hourly cap is used up looks at the database again (its row:
/// a fellow worker of the same name may give slots back; the campaign: others may finish
/// it). In between it only sleeps, so a worker waiting out its hour costs the database
/// nothing but the loop's status check.
const CAPPED_RECHECK: Duration = Duration::from_secs(5);

/// A pacing wait longer than this first settles what came back, so that a crash during it
/// cannot leave delivered messages unrecorded (and sent again on resume).
const SETTLE_BEFORE_WAITING: Duration = Duration::from_millis(100);

/// How often a running send reads its campaign's status, for an operator's pause or cancel
/// from another command. Not every turn: a turn takes a millisecond or two, and on
/// PostgreSQL the read was one of its round trips. A pause waits at most this much longer to
/// be seen, and the end of a run always looks first (see `idle`).
const STATUS_CHECK_EVERY: Duration = Duration::from_millis(100);

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
    /// When the worker began sending (connecting first if it had to), RFC 3339.
    started_at: String,
    /// When the relay answered or the attempt failed.
    finished_at: String,
    result: Result<String, SendError>,
}

impl Done {
    /// The attempt's record for the log: its number, times, and where it failed.
    fn attempt(&self) -> Attempt {
        Attempt {
            number: self.job.attempts,
            started_at: self.started_at.clone(),
            finished_at: self.finished_at.clone(),
            stage: self.result.as_ref().err().map(|e| e.stage.to_string()),
        }
    }
}

/// A refusal held back until the relay shows whether it refuses this recipient or everyone.
struct Suspended {
    delivery_id: i64,
    reply: String,
    attempt: Attempt,
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
                    attempt: done.attempt(),
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
    fn release_suspended(&mut self, finished: &mut Vec<Settlement>) {
        self.report.failed += self.suspended.len() as u64;
        for s in self.suspended.drain(..) {
            finished.push(Settlement {
                delivery_id: s.delivery_id,
                outcome: Outcome::Failed {
                    reply: s.reply,
                    blocklist: None,
                },
                attempt: s.attempt,
            });
        }
    }

    /// Held-back refusals go back to the queue untouched (the run is stopping, or the relay
    /// refuses everyone).
    fn requeue_suspended(&mut self, finished: &mut Vec<Settlement>) {
        for s in self.suspended.drain(..) {
            finished.push(Settlement {
                delivery_id: s.delivery_id,
                outcome: Outcome::Requeue { not_before: None },
                attempt: s.attempt,
            });
        }
    }
}

/// Everything one run of a campaign works with.
pub struct Run<'a, T> {
    /// The database the rows live in.
    pub store: &'a Store,
    /// The campaign's lease, held by this process.
    pub lease: &'a Lease,
    /// The list the campaign goes to (entitlement is checked against it at each claim).
    pub list_id: i64,
    /// Builds each recipient's message.
    pub personaliser: Arc<Personaliser>,
    /// Where messages go.
    pub transport: Arc<T>,
    /// Pace and persistence.
    pub settings: &'a Settings,
    /// Set by a signal handler: stop claiming, finish what is in flight.
    pub stop: Arc<AtomicBool>,
    /// The campaign's own caps, reserved in the database before every claim so that they
    /// hold across all its workers ([`Store::reserve_slots`]); `None` when this process is
    /// the campaign's only sender (`send`), which paces alone.
    pub shared_caps: Option<Caps>,
    /// This worker's own hourly cap, reserved in the database under its name before the
    /// campaign's caps ([`Store::reserve_worker_slots`]); `None` without one.
    pub worker_cap: Option<WorkerCap>,
}

/// A worker's own hourly cap (`bulletin worker --name mx1 --hourly-cap 500`): one outbound
/// IP's allowance, held in the `worker_pacing` row of its name, so that it counts across
/// every campaign and every restart, and workers sharing the name share it.
#[derive(Debug, Clone)]
pub struct WorkerCap {
    /// The worker's name: the row its count lives in.
    pub name: String,
    /// Messages per hour window (counted from the window's first message); more than 0.
    pub hourly_cap: i64,
    /// With the cap used up and nothing in flight, end the run ([`super::Halt::WorkerCapped`],
    /// the campaign left running for others: `--once`) instead of waiting in it, lease kept,
    /// for the next window.
    pub leave_when_reached: bool,
}

/// The engine's view of its [`WorkerCap`] between turns.
struct Own {
    cap: WorkerCap,
    /// Slots of the worker's row held for the claim about to be made (unused ones go back).
    reserved: usize,
    /// The hour window they were taken from.
    window: i64,
    /// While the cap is used up: when the next window opens.
    until: Option<Instant>,
    /// The same, as a time of day, for the log and the halt.
    next_at: Option<time::OffsetDateTime>,
    /// When the worker's row was last read while capped.
    checked: Instant,
}

/// Runs a campaign under its lease until every recipient has an outcome, or until it is
/// paused, interrupted, the relay looks down or refuses us, or the database fails. Called
/// after [`super::begin`], which checked the relay and took the lease.
pub async fn run<T: Transport>(
    run: Run<'_, T>,
    progress: &mut dyn Progress,
) -> Result<RunReport, DeliveryError> {
    // The relay was checked by `begin`, moments ago; if it went down since, the workers'
    // failures say so (and enough of them in a row pause the campaign).
    let started = Instant::now();
    let concurrency = run.settings.concurrency.max(1);
    let (job_tx, job_rx) = mpsc::channel::<Recipient>(concurrency);
    let (done_tx, done_rx) = mpsc::channel::<Done>(concurrency * 2);
    let workers = spawn_workers(&run, concurrency, job_rx, done_tx);
    let lease_lost = Arc::new(AtomicBool::new(false));
    let heartbeat = spawn_heartbeat(run.store, run.lease, Arc::clone(&lease_lost));
    let mut loop_state = Loop {
        store: run.store,
        lease: run.lease,
        list_id: run.list_id,
        concurrency,
        judge: Judge {
            settings: run.settings,
            relay: run.transport.describe(),
            report: RunReport::default(),
            consecutive_failures: 0,
            ambiguous_in_a_row: 0,
            suspended: Vec::new(),
            halt: None,
        },
        pacer: Pacer::new(run.settings.rate, run.settings.hourly_cap),
        caps: run.shared_caps.filter(Caps::limits),
        own: run
            .worker_cap
            .clone()
            .filter(|c| c.hourly_cap > 0)
            .map(|cap| Own {
                cap,
                reserved: 0,
                window: 0,
                until: None,
                next_at: None,
                checked: Instant::now(),
            }),
        shared_wake: None,
        reserved: 0,
        reserved_from: None,
        slot_wait: false,
        last_reap: Instant::now(),
        last_status_check: None,
        cursor: ClaimCursor::new(),
        finished: Vec::new(),
        finished_emails: Vec::new(),
        in_flight: 0,
        store_failure: None,
        job_tx,
        done_rx,
    };
    loop_state.drive(&run.stop, &lease_lost, progress).await;
    let Loop {
        judge,
        mut finished,
        finished_emails,
        store_failure,
        job_tx,
        ..
    } = loop_state;
    drop(job_tx);
    for w in workers {
        let _ = w.await;
    }
    heartbeat.abort();
    let mut judge = judge;
    judge.requeue_suspended(&mut finished);
    if let Some(failure) = store_failure {
        return Err(record_after_failure(
            run.store,
            run.lease,
            run.list_id,
            finished,
            finished_emails,
            failure,
        )
        .await);
    }
    finish(run.store, run.lease, judge, started).await
}

/// Workers, each with its own transport session, build and send the messages they are given.
fn spawn_workers<T: Transport>(
    run: &Run<'_, T>,
    concurrency: usize,
    job_rx: mpsc::Receiver<Recipient>,
    done_tx: mpsc::Sender<Done>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let job_rx = Arc::new(Mutex::new(job_rx));
    (0..concurrency)
        .map(|_| {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            let transport = Arc::clone(&run.transport);
            let personaliser = Arc::clone(&run.personaliser);
            tokio::spawn(async move {
                let mut session: Option<T::Session> = None;
                loop {
                    let recipient = { job_rx.lock().await.recv().await };
                    let Some(recipient) = recipient else { break };
                    let done =
                        work(&personaliser, transport.as_ref(), &mut session, &recipient).await;
                    if done_tx.send(done).await.is_err() {
                        break;
                    }
                }
                if let Some(s) = session {
                    s.close().await;
                }
            })
        })
        .collect()
}

/// One recipient in a worker: build the message here, so that personalising, encoding and
/// signing use every core instead of queueing behind the dispatcher, then send it.
async fn work<T: Transport>(
    personaliser: &Personaliser,
    transport: &T,
    session: &mut Option<T::Session>,
    recipient: &Recipient,
) -> Done {
    match build_job(personaliser, recipient) {
        Err((job, reason)) => {
            let now = crate::store::now();
            Done {
                job,
                started_at: now.clone(),
                finished_at: now,
                result: Err(SendError::new(
                    "bulletin",
                    Stage::RcptTo,
                    Problem::Local(reason),
                )),
            }
        }
        Ok((job, (from, to, bytes))) => {
            let started_at = crate::store::now();
            let result = match session.as_mut() {
                Some(s) => s.send(&from, &to, &bytes).await,
                None => match transport.open().await {
                    Ok(mut s) => {
                        let r = s.send(&from, &to, &bytes).await;
                        *session = Some(s);
                        r
                    }
                    Err(e) => Err(e),
                },
            };
            Done {
                job,
                started_at,
                finished_at: crate::store::now(),
                result,
            }
        }
    }
}

/// The heartbeat keeps the lease while the loop waits (a slow relay may take minutes to
/// answer); losing it stops the run.
fn spawn_heartbeat(
    store: &Store,
    lease: &Lease,
    lost: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    let store = store.clone();
    let lease = lease.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(lease.ttl / 4).await;
            if let Err(CampaignError::LeaseLost(_)) = store.renew_lease(&lease).await {
                lost.store(true, Ordering::Relaxed);
                break;
            }
        }
    })
}

/// The dispatcher's state between turns.
struct Loop<'a> {
    store: &'a Store,
    lease: &'a Lease,
    list_id: i64,
    concurrency: usize,
    judge: Judge<'a>,
    pacer: Pacer,
    /// The campaign's caps, shared through the database (workers only).
    caps: Option<Caps>,
    /// This worker's own hourly cap, shared through the database under its name.
    own: Option<Own>,
    /// When the campaign's shared schedule has the next slot, after a reservation found none.
    shared_wake: Option<Instant>,
    /// Slots reserved for the claim about to be made; unused ones are given back.
    reserved: usize,
    /// The reservation they came from (what to give them back to).
    reserved_from: Option<Reservation>,
    /// The last turn found no shared slot with nothing in flight: turn again, do not stop.
    slot_wait: bool,
    /// When this worker last looked for dead fellow workers (shared leases only).
    last_reap: Instant,
    /// When the loop last read the campaign's status (see [`STATUS_CHECK_EVERY`]); none yet
    /// at the first turn.
    last_status_check: Option<Instant>,
    /// Where this run's next claim starts in the campaign's queue.
    cursor: ClaimCursor,
    /// Outcomes to record at the next turn.
    finished: Vec<Settlement>,
    /// Their addresses, for an error that must name them.
    finished_emails: Vec<String>,
    in_flight: usize,
    /// Once the database fails, nothing more is claimed: the loop only collects the outcomes
    /// of messages already with the relay, and records them at the end if it can.
    store_failure: Option<DeliveryError>,
    job_tx: mpsc::Sender<Recipient>,
    done_rx: mpsc::Receiver<Done>,
}

/// What to do after a turn with nothing in flight.
enum Next {
    Stop,
    TurnAgain,
}

impl Loop<'_> {
    async fn drive(
        &mut self,
        stop: &AtomicBool,
        lease_lost: &AtomicBool,
        progress: &mut dyn Progress,
    ) {
        loop {
            self.look_for_halt(stop, lease_lost).await;
            if self.judge.halt.is_some() {
                self.judge.requeue_suspended(&mut self.finished);
            }
            if self.store_failure.is_none() {
                self.turn().await;
            }
            if let Some(next) = self.own.as_ref().and_then(|o| o.next_at) {
                progress.worker_capped(next);
            }
            progress.update(&self.judge.report, self.in_flight);
            if self.in_flight == 0 {
                match self.idle().await {
                    Next::Stop => break,
                    Next::TurnAgain => continue,
                }
            }
            if !self.collect().await {
                break;
            }
        }
    }

    fn fail_store(&mut self, e: DeliveryError) {
        self.judge.halt(Halt::Store(e.to_string()));
        self.store_failure = Some(e);
    }

    /// A signal, a lost lease, or an operator's pause or cancel from another command.
    async fn look_for_halt(&mut self, stop: &AtomicBool, lease_lost: &AtomicBool) {
        if self.judge.halt.is_some() {
            return;
        }
        if stop.load(Ordering::Relaxed) {
            self.judge.halt(Halt::Interrupted);
        } else if lease_lost.load(Ordering::Relaxed) {
            let lost = CampaignError::LeaseLost(self.lease.campaign_id);
            self.judge.halt(Halt::Store(lost.to_string()));
        } else if self.store_failure.is_none() {
            // A worker notices a fellow worker's dead lease mid-campaign (a third of the lease's
            // life at most, so within a lease of its death) and sends its rows again.
            let every = (self.lease.ttl / 3).min(Duration::from_secs(5));
            if self.lease.kind == LeaseKind::Shared && self.last_reap.elapsed() >= every {
                self.last_reap = Instant::now();
                if let Err(e) = self.store.reap_dead_leases(self.lease.campaign_id).await {
                    self.fail_store(e.into());
                    return;
                }
            }
            if self
                .last_status_check
                .is_none_or(|at| at.elapsed() >= STATUS_CHECK_EVERY)
            {
                self.check_status().await;
            }
        }
    }

    /// An operator's pause or cancel, from another command.
    async fn check_status(&mut self) {
        self.last_status_check = Some(Instant::now());
        match self
            .store
            .campaign(self.lease.campaign_id)
            .await
            .map(|c| c.status)
        {
            Ok(CampaignStatus::Paused) => self.judge.halt(Halt::Paused),
            Ok(CampaignStatus::Cancelled) => self.judge.halt(Halt::Cancelled),
            Ok(_) => {}
            Err(e) => self.fail_store(e.into()),
        }
    }

    /// One transaction: renew the lease, record what came back, claim as many recipients as
    /// there are free workers, and hand them out at the pace allowed.
    ///
    /// Under a rate or an hourly cap the pacing happens before the claim, and only what may
    /// leave now is claimed: a claimed row waiting for its slot would hold back the settling of
    /// everything that came back meanwhile, and a `kill -9` then would leave those messages
    /// delivered but unrecorded, to be sent again on resume.
    async fn turn(&mut self) {
        let mut free = if self.judge.halt.is_some() {
            0
        } else {
            self.concurrency - self.in_flight
        };
        if free > 0 && (self.pacer.paces() || self.caps.is_some() || self.own.is_some()) {
            let shared_later = self.shared_wake.is_some_and(|w| w > Instant::now())
                || self.own_until().is_some_and(|w| w > Instant::now());
            if self.in_flight > 0 && (!self.pacer.wait_time().is_zero() || shared_later) {
                // Not yet: `collect` wakes the loop when the slot is due.
                free = 0;
            } else {
                if self.pacer.paces() {
                    if self.pacer.wait_time() > SETTLE_BEFORE_WAITING && !self.finished.is_empty() {
                        self.settle_and_claim(0).await;
                    }
                    self.pacer.wait().await;
                    free = 1 + self.pacer.take_due(free - 1);
                }
                if self.own.is_some() {
                    free = self.reserve_own(free).await;
                }
                if let (Some(caps), true) = (self.caps, free > 0) {
                    // This worker's own rate and hourly cap came first; the campaign's, shared
                    // with every worker, now: the stricter wins. Still before the claim.
                    // The worker's slots are taken first because they are the scarce ones
                    // (an hour's allowance, not a schedule): a capped worker then never
                    // touches the campaign's row, so it cannot hold or move the campaign's
                    // schedule for the others; what the campaign allows less goes straight
                    // back to the worker's row, in the same window.
                    let granted = self.reserve(caps, free).await;
                    self.give_back_own(free - granted).await;
                    free = granted;
                }
            }
        }
        self.settle_and_claim(free).await;
    }

    /// Reserves up to `wanted` slots of the campaign's shared caps. With none free and
    /// nothing in flight it waits (at most half a second, then the loop looks for a pause or
    /// a signal and turns again), settling first what came back.
    async fn reserve(&mut self, caps: Caps, wanted: usize) -> usize {
        match self
            .store
            .reserve_slots(self.lease.campaign_id, caps, wanted)
            .await
        {
            Err(e) => {
                self.fail_store(e.into());
                0
            }
            Ok(r) if r.granted > 0 => {
                self.shared_wake = None;
                self.reserved = r.granted;
                self.reserved_from = Some(r);
                r.granted
            }
            Ok(Reservation { wait, .. }) => {
                self.shared_wake = Some(Instant::now() + wait);
                if self.in_flight == 0 {
                    if wait > SETTLE_BEFORE_WAITING && !self.finished.is_empty() {
                        self.settle_and_claim(0).await;
                    }
                    tokio::time::sleep(wait.min(Duration::from_millis(500))).await;
                    self.slot_wait = true;
                }
                0
            }
        }
    }

    /// When this worker's own cap opens again, while it is used up.
    fn own_until(&self) -> Option<Instant> {
        self.own.as_ref().and_then(|o| o.until)
    }

    /// Reserves up to `wanted` slots of this worker's own hourly cap, on its name's row. With
    /// none left it waits in the run (lease kept by the heartbeat, a signal or a pause still
    /// seen within half a second), or, told to leave (`--once`), halts the run; with nothing
    /// left to claim in the campaign it lets `idle` end the run as usual instead of waiting.
    async fn reserve_own(&mut self, wanted: usize) -> usize {
        let Some(own) = self.own.as_mut() else {
            return wanted;
        };
        let now = Instant::now();
        if let Some(until) = own.until.filter(|u| *u > now) {
            if own.checked.elapsed() < CAPPED_RECHECK && !own.cap.leave_when_reached {
                // Known to be used up, looked at a moment ago: only wait.
                tokio::time::sleep((until - now).min(Duration::from_millis(500))).await;
                self.slot_wait = true;
                return 0;
            }
        }
        own.checked = now;
        let name = own.cap.name.clone();
        let reserved = self
            .store
            .reserve_worker_slots(&name, own.cap.hourly_cap, wanted)
            .await;
        let slots = match reserved {
            Ok(slots) => slots,
            Err(e) => {
                self.fail_store(e.into());
                return 0;
            }
        };
        let Some(own) = self.own.as_mut() else {
            return 0;
        };
        own.window = slots.window;
        if slots.granted > 0 {
            own.reserved = slots.granted;
            own.until = None;
            own.next_at = None;
            return slots.granted;
        }
        let next_at = slots.next_at.unwrap_or_else(time::OffsetDateTime::now_utc);
        let wait = (next_at - time::OffsetDateTime::now_utc())
            .try_into()
            .unwrap_or(Duration::ZERO);
        own.until = Some(Instant::now() + wait);
        own.next_at = Some(next_at);
        if self.in_flight > 0 {
            // `collect` wakes the loop when the window opens; the flight lands meanwhile.
            return 0;
        }
        if own.cap.leave_when_reached {
            let halt = super::Halt::WorkerCapped {
                cap: own.cap.hourly_cap,
                next: super::hour_minute_utc(next_at),
            };
            self.judge.halt(halt);
            return 0;
        }
        // Wait only while the campaign has rows this worker could claim: once the others
        // have sent the rest, `idle` ends the run (and the last worker out finishes it).
        match self.store.delivery_counts(self.lease.campaign_id).await {
            Err(e) => self.fail_store(e.into()),
            Ok(c) if c.queued + c.uncertain > 0 => {
                if wait > SETTLE_BEFORE_WAITING && !self.finished.is_empty() {
                    self.settle_and_claim(0).await;
                }
                tokio::time::sleep(wait.min(Duration::from_millis(500))).await;
                self.slot_wait = true;
            }
            Ok(_) => {}
        }
        0
    }

    /// Gives `unused` slots back to this worker's own row, into the window they came from.
    async fn give_back_own(&mut self, unused: usize) {
        let Some(own) = self.own.as_mut() else {
            return;
        };
        let unused = unused.min(own.reserved);
        if unused == 0 {
            return;
        }
        own.reserved -= unused;
        let (name, window) = (own.cap.name.clone(), own.window);
        if let Err(e) = self.store.refund_worker_slots(&name, window, unused).await {
            self.fail_store(e.into());
        }
    }

    /// Records what came back and claims up to `free` recipients, handing them to the workers.
    async fn settle_and_claim(&mut self, free: usize) {
        match self
            .store
            .settle_and_claim(
                self.lease,
                self.list_id,
                &self.finished,
                free,
                &mut self.cursor,
            )
            .await
        {
            Ok(claimed) => {
                self.finished.clear();
                self.finished_emails.clear();
                let unused = std::mem::take(&mut self.reserved).saturating_sub(claimed.len());
                // The worker's own slots the claim did not use go back too (the queue ran
                // dry, or rows were skipped at the claim), into the window they came from.
                let own_unused = self
                    .own
                    .as_ref()
                    .map_or(0, |o| o.reserved.saturating_sub(claimed.len()));
                self.give_back_own(own_unused).await;
                if let Some(own) = self.own.as_mut() {
                    own.reserved = 0;
                }
                let from = self.reserved_from.take();
                if let (Some(caps), Some(from), true) = (self.caps, from, unused > 0) {
                    // The queue ran dry (for now): give the slots back to the other workers,
                    // and look again a little later rather than at once.
                    self.shared_wake = Some(Instant::now() + Duration::from_millis(200));
                    if let Err(e) = self
                        .store
                        .refund_slots(self.lease.campaign_id, caps, &from, unused)
                        .await
                    {
                        self.fail_store(e.into());
                    }
                }
                for recipient in claimed {
                    self.in_flight += 1;
                    if self.job_tx.send(recipient).await.is_err() {
                        self.in_flight -= 1;
                    }
                }
            }
            Err(e) => self.fail_store(e.into()),
        }
    }

    /// Nothing in flight and nothing claimable now: done, waiting for retries, or judging the
    /// refusals held back.
    async fn idle(&mut self) -> Next {
        if self.store_failure.is_some() {
            return Next::Stop;
        }
        if !self.finished.is_empty() {
            return Next::TurnAgain;
        }
        if self.judge.halt.is_some() {
            return Next::Stop;
        }
        if !self.judge.suspended.is_empty() {
            self.judge_suspended_at_the_end().await;
            return Next::TurnAgain;
        }
        if std::mem::take(&mut self.slot_wait) {
            return Next::TurnAgain;
        }
        match self.store.next_retry_at(self.lease.campaign_id).await {
            Err(e) => {
                self.fail_store(e.into());
                Next::Stop
            }
            Ok(None) if self.lease.kind == LeaseKind::Shared => self.idle_worker().await,
            Ok(None) => {
                // About to mark the campaign finished: a pause or cancel since the last look
                // must be seen first, or the end of the run would overwrite it.
                self.check_status().await;
                Next::Stop
            }
            Ok(Some(at)) => {
                let wait = seconds_until(&at).clamp(0.05, 5.0);
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                Next::TurnAgain
            }
        }
    }

    /// A worker with nothing left to claim: the rows of workers that died are its to send
    /// again (once their leases are dead), uncertain rows are sent again (the workers'
    /// policy), and while other workers still have rows in flight it waits for them, so that
    /// `worker --once` ends only when the campaign is done or another live worker holds it.
    async fn idle_worker(&mut self) -> Next {
        let id = self.lease.campaign_id;
        match self.store.reap_dead_leases(id).await {
            Err(e) => {
                self.fail_store(e.into());
                return Next::Stop;
            }
            Ok((_, requeued)) if requeued > 0 => return Next::TurnAgain,
            Ok(_) => {}
        }
        let counts = match self.store.delivery_counts(id).await {
            Ok(c) => c,
            Err(e) => {
                self.fail_store(e.into());
                return Next::Stop;
            }
        };
        if counts.uncertain > 0 {
            if let Err(e) = self.store.settle_uncertain(id, true).await {
                self.fail_store(e.into());
                return Next::Stop;
            }
            return Next::TurnAgain;
        }
        if counts.queued + counts.sending > 0 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            return Next::TurnAgain;
        }
        Next::Stop
    }

    /// Refusals that no later acceptance explained: the recipients' own if this campaign's
    /// mail was accepted before, otherwise the relay refuses everyone.
    async fn judge_suspended_at_the_end(&mut self) {
        let accepted_before = self.judge.report.sent > 0
            || self
                .store
                .delivery_counts(self.lease.campaign_id)
                .await
                .map(|c| c.sent > 0)
                .unwrap_or(false);
        if accepted_before {
            self.judge.release_suspended(&mut self.finished);
            return;
        }
        let n = self.judge.suspended.len();
        let last = self
            .judge
            .suspended
            .last()
            .map(|s| s.reply.clone())
            .unwrap_or_default();
        self.judge.halt(Halt::RelayRefusesUs {
            refusal: format!(
                "it refused all {n} recipient(s) it was offered and accepted none, the last: {last}"
            ),
        });
    }

    /// Waits for at least one outcome, takes every other one already there, and judges them.
    /// False when the workers are gone.
    ///
    /// Under a rate with free workers it also returns, with nothing collected, when the next
    /// message may go, so that the next turn dispatches it on time.
    async fn collect(&mut self) -> bool {
        let wake = ((self.pacer.paces() || self.caps.is_some() || self.own.is_some())
            && self.in_flight < self.concurrency
            && self.judge.halt.is_none()
            && self.store_failure.is_none())
        .then(|| {
            let local = if self.pacer.paces() {
                self.pacer.next_due()
            } else {
                Instant::now()
            };
            let local = self.own_until().map_or(local, |own| local.max(own));
            self.shared_wake.map_or(local, |shared| local.max(shared))
        });
        let first = match wake {
            Some(at) => tokio::select! {
                done = self.done_rx.recv() => done,
                () = tokio::time::sleep_until(at.into()) => return true,
            },
            None => self.done_rx.recv().await,
        };
        let Some(first) = first else {
            return false;
        };
        let mut batch = vec![first];
        while let Ok(more) = self.done_rx.try_recv() {
            batch.push(more);
        }
        for done in batch {
            self.in_flight -= 1;
            self.judge.report.bytes += done.job.bytes;
            let accepted = done.result.is_ok();
            if let Some(outcome) = self.judge.judge(&done) {
                self.finished.push(Settlement {
                    delivery_id: done.job.delivery_id,
                    outcome,
                    attempt: done.attempt(),
                });
                self.finished_emails.push(done.job.email.clone());
            }
            if accepted {
                // The relay takes our mail: the refusals held back were about their recipients.
                self.judge.release_suspended(&mut self.finished);
            }
        }
        true
    }
}

/// Marks the campaign finished or paused (with why) and gives the lease up.
async fn finish(
    store: &Store,
    lease: &Lease,
    mut judge: Judge<'_>,
    started: Instant,
) -> Result<RunReport, DeliveryError> {
    if lease.kind == LeaseKind::Shared {
        // A worker stops the campaign only for what concerns it as a whole; a signal, a pause
        // or a cancel leave it as it is (the operator already set it, or other workers go on),
        // and so does a lost lease (this worker was cut off; the others carry on).
        let forced = match &judge.halt {
            None
            | Some(
                Halt::Interrupted
                | Halt::Paused
                | Halt::Cancelled
                | Halt::Store(_)
                | Halt::WorkerCapped { .. },
            ) => None,
            Some(h) => Some((h.campaign_status(), h.to_string())),
        };
        store
            .leave_campaign(lease, forced.as_ref().map(|(s, r)| (*s, r.as_str())))
            .await?;
        let mut report = judge.report;
        report.stopped = judge.halt.as_ref().map(ToString::to_string);
        report.halt = judge.halt;
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let counts = store.delivery_counts(lease.campaign_id).await?;
    if judge.halt.is_none() && counts.queued + counts.sending == 0 && counts.uncertain > 0 {
        judge.halt(Halt::Uncertain {
            count: counts.uncertain,
        });
    }
    let status = match &judge.halt {
        Some(h) => h.campaign_status(),
        None if counts.queued + counts.sending == 0 => CampaignStatus::Finished,
        None => CampaignStatus::Paused,
    };
    let reason = judge.halt.as_ref().map(ToString::to_string);
    store
        .set_campaign_status(lease.campaign_id, status, reason.as_deref())
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
    finished: Vec<Settlement>,
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
                .settle_and_claim(lease, list_id, &finished, 0, &mut ClaimCursor::new())
                .await
                .is_ok();
        }
        if recorded && !status_recorded {
            status_recorded = store
                .set_campaign_status(
                    lease.campaign_id,
                    CampaignStatus::Paused,
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

/// A message ready to send: envelope sender, recipient, bytes.
type Envelope = (String, String, Vec<u8>);

fn build_job(personaliser: &Personaliser, r: &Recipient) -> Result<(Job, Envelope), (Job, String)> {
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
            Ok((job, (built.envelope_from, built.to, built.bytes)))
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
