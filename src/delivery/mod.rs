//! Delivery: from a rendered edition and a list to one outcome per recipient.
//!
//! - [`campaign`]: the lifecycle around a run — choose the transport ([`Relay`]), create or
//!   resume the campaign, take its lease, settle what an earlier sender left ([`begin`]).
//! - `engine`: the run itself ([`run`]) — claim, build, pace, send, judge, record.
//! - [`reply`]: what an SMTP failure means, by stage and codes.
//! - [`transport`]: the SMTP relay and the Maildir outbox behind one [`Transport`] trait.

pub mod campaign;
mod engine;
pub mod estimate;
pub mod reply;
pub mod transport;

use std::time::Duration;

use crate::store::{CampaignError, CampaignStatus, StoreError};
pub use campaign::{BeginOptions, Begun, CampaignKey, Joined, Relay, RelaySession, begin, join};
pub use engine::{Run, WorkerCap, run};
pub use reply::{EnhancedCode, Problem, Reply, Stage, Verdict};
pub use transport::{
    MaildirOutbox, MaildirSession, RelayUrlError, SendError, Session, SmtpRelay, SmtpSession,
    SmtpTimeouts, Transport,
};

/// Why a send stopped before it was done.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The database; its error says which file and why.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The campaign (another sender holds it, our lease was lost, ...).
    #[error(transparent)]
    Campaign(#[from] CampaignError),
    /// `[smtp] url` cannot be used.
    #[error(transparent)]
    RelayUrl(#[from] RelayUrlError),
    /// A setting the transport needs (credentials) is wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The outbox folder cannot be created.
    #[error("cannot create the outbox {path}: {source}")]
    Outbox {
        /// The folder given with `--outbox`.
        path: String,
        /// What went wrong, for the operator.
        source: std::io::Error,
    },
    /// The relay cannot be reached or refuses us (checked before the first message).
    #[error("cannot deliver through {relay}: {cause}")]
    Relay {
        /// The transport, as `describe()` names it.
        relay: String,
        /// What went wrong.
        cause: String,
    },
    /// The database stopped taking writes mid-send.
    #[error("campaign #{campaign}: the database failed mid-send ({cause}). {}", unrecorded_advice(unrecorded, *status_recorded))]
    Unrecorded {
        /// The campaign whose outcomes could not all be recorded.
        campaign: i64,
        /// The database error.
        cause: String,
        /// Addresses whose message went to the relay but whose outcome is not recorded.
        unrecorded: Vec<String>,
        /// Whether the campaign could still be marked paused.
        status_recorded: bool,
    },
}

impl DeliveryError {
    /// Whether the operator's input or configuration is at fault (exit code 2).
    pub fn is_input_error(&self) -> bool {
        match self {
            Self::RelayUrl(_) | Self::Config(_) => true,
            Self::Store(e) => e.is_input_error(),
            Self::Campaign(CampaignError::Store(e)) => e.is_input_error(),
            Self::Campaign(
                CampaignError::Busy { .. }
                | CampaignError::LeaseLost(_)
                | CampaignError::ClaimedWithoutSubscriber(_),
            ) => false,
            Self::Campaign(_) => true,
            _ => false,
        }
    }
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

impl Settings {
    /// The settings of `[smtp]`, with `--concurrency` and `--rate` when given.
    pub fn from_config(
        config: &crate::config::Config,
        concurrency: Option<usize>,
        rate: Option<f64>,
    ) -> Self {
        let smtp = &config.smtp;
        Self {
            concurrency: concurrency.unwrap_or(smtp.pool as usize).max(1),
            rate: rate.unwrap_or(smtp.rate),
            hourly_cap: smtp.hourly_cap,
            max_attempts: smtp.max_attempts,
            retry_base: Duration::from_millis(smtp.retry_base_ms),
            pause_after_failures: 20,
            lease_ttl: Duration::from_secs(smtp.lease_secs),
        }
    }
}

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
        /// The relay, as `describe()` names it.
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
    /// This worker's own hourly cap (`worker --hourly-cap`) is used up and it was told to
    /// leave rather than wait (`--once`); the campaign goes on with other workers.
    WorkerCapped {
        /// Its cap.
        cap: i64,
        /// When its next message may leave, "HH:MM UTC".
        next: String,
    },
}

impl Halt {
    /// The campaign status a halt leaves.
    pub fn campaign_status(&self) -> CampaignStatus {
        match self {
            Self::Cancelled => CampaignStatus::Cancelled,
            _ => CampaignStatus::Paused,
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
            Self::WorkerCapped { cap, next } => write!(
                f,
                "this worker's hourly cap {cap} is reached; its next message at {next}; \
                 the campaign stays running for other workers"
            ),
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

    /// This worker's own hourly cap ([`WorkerCap`]) is used up: nothing more is claimed
    /// before `next`. Called at every look while it stays so (say it once per window).
    fn worker_capped(&mut self, next: time::OffsetDateTime) {
        let _ = next;
    }
}

/// A time as "HH:MM UTC", for saying when a worker's next hour window opens.
pub fn hour_minute_utc(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:02}:{:02} UTC", t.hour(), t.minute())
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
