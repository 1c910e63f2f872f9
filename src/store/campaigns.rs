//! Campaigns and their deliveries: the rows that make a send exact.
//!
//! A campaign is one edition (by slug and content hash) sent to one list. Its audience is
//! frozen when it is created: one `deliveries` row per confirmed, active subscriber, all in the
//! same transaction as the campaign row. From then on every recipient's fate is a row:
//! `queued` → `sending` → `sent` | `failed` | `skipped` | `uncertain`, with attempts, the
//! relay's last reply and the Message-ID. A row is marked `sending` in the same transaction that
//! hands it to a worker (under the sender's lease, see [`super::leases`]), and settled in the
//! transaction that claims the next ones, so after a crash the only rows whose outcome is
//! unknown are those still `sending`: at most the number in flight. `uncertain` is a message
//! handed over whole with no final reply; `send` treats those on resume like crash leftovers.

use serde::Serialize;

use super::report::{Attempt, record_attempt};
use super::{Store, StoreError, now};

/// Where a campaign stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CampaignStatus {
    /// Created, not started (not used by `send`, which starts at once).
    Draft,
    /// Being sent, or left by a sender that stopped without a word (no live lease).
    Running,
    /// Stopped; `send` with the same edition and list resumes it.
    Paused,
    /// Every recipient has an outcome.
    Finished,
    /// Stopped for good; never resumed.
    Cancelled,
}

impl CampaignStatus {
    /// The value stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Finished => "finished",
            Self::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for CampaignStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of one recipient of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting, perhaps for a retry.
    Queued,
    /// With a sender now (or, once its lease is gone, uncertain).
    Sending,
    /// Accepted by the relay.
    Sent,
    /// Refused for good.
    Failed,
    /// Not sent: unsubscribed, blocklisted, erased, or the campaign was cancelled.
    Skipped,
    /// Handed over whole with no final reply: the relay may have it.
    Uncertain,
    /// Accepted by the relay, then reported undeliverable by a delivery status notification
    /// (`bulletin bounces`).
    Bounced,
}

impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DeliveryStatus {
    /// The value stored in the database and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Uncertain => "uncertain",
            Self::Bounced => "bounced",
        }
    }
}

/// A campaign as listed and shown.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Campaign {
    /// Row id.
    pub id: i64,
    /// The edition's slug.
    pub edition_slug: String,
    /// The list's id (None once the list was removed).
    pub list_id: Option<i64>,
    /// The list's name.
    pub list_name: String,
    /// Hash of the rendered content.
    pub content_hash: String,
    /// Subject in the default language.
    pub subject: String,
    /// Where it stands.
    pub status: CampaignStatus,
    /// When created.
    pub created_at: String,
    /// When last changed.
    pub updated_at: String,
    /// When it finished.
    pub finished_at: Option<String>,
    /// Why it is paused, when it is.
    pub halt_reason: Option<String>,
    /// When its audience was frozen and sending began (None: scheduled, not started yet).
    pub started_at: Option<String>,
    /// Where `send` found the edition (relative to the project folder when inside it), for
    /// workers to compose it again; None for campaigns from before workers existed.
    pub edition_path: Option<String>,
    /// The campaign's messages per second across all its senders; 0 = no limit.
    pub rate: f64,
    /// The campaign's messages per rolling hour across all its senders; 0 = no cap.
    pub hourly_cap: i64,
    /// `send --at`: when a worker starts it (RFC 3339 UTC).
    pub scheduled_at: Option<String>,
    /// The time zone `--at` was given in (an IANA name, or the offset as written).
    pub schedule_zone: Option<String>,
}

impl Campaign {
    /// Scheduled with `send --at` and not started yet (its audience is not frozen).
    pub fn is_scheduled(&self) -> bool {
        self.scheduled_at.is_some() && self.started_at.is_none()
    }
}

/// A campaign's caps, held across every sender of it (see [`Store::reserve_slots`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Caps {
    /// Messages per second; 0 = no limit.
    pub rate: f64,
    /// Messages per rolling hour; 0 = no cap.
    pub hourly_cap: i64,
}

impl Caps {
    /// Whether either cap limits sending.
    pub fn limits(&self) -> bool {
        self.rate > 0.0 || self.hourly_cap > 0
    }
}

/// What a new campaign records besides its edition and list.
#[derive(Debug, Clone)]
pub struct NewCampaign<'a> {
    /// The edition's slug.
    pub slug: &'a str,
    /// The hash of its rendered content.
    pub content_hash: &'a str,
    /// The subject in the default language.
    pub subject: &'a str,
    /// Where the edition is, for workers.
    pub edition_path: Option<&'a str>,
    /// The campaign's caps.
    pub caps: Caps,
}

/// When a scheduled campaign starts, as `send --at` recorded it.
#[derive(Debug, Clone)]
pub struct Scheduled {
    /// RFC 3339 UTC.
    pub at: String,
    /// The zone it was given in, for listings.
    pub zone: String,
}

/// Counts of a campaign's deliveries by status.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Waiting (including those waiting for a retry).
    pub queued: i64,
    /// Handed to the relay, outcome not yet recorded (after a crash: uncertain).
    pub sending: i64,
    /// Accepted by the relay.
    pub sent: i64,
    /// Refused for good.
    pub failed: i64,
    /// Not sent: unsubscribed, blocklisted or erased since the campaign started.
    pub skipped: i64,
    /// Handed over whole with no final reply, or left in flight by a sender that died: the
    /// relay may have them.
    pub uncertain: i64,
    /// Accepted by the relay, then reported undeliverable by a DSN.
    pub bounced: i64,
}

impl DeliveryCounts {
    /// All rows.
    pub fn total(&self) -> i64 {
        self.queued
            + self.sending
            + self.sent
            + self.failed
            + self.skipped
            + self.uncertain
            + self.bounced
    }
}

/// One recipient handed to the sender: everything needed to build their message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Recipient {
    /// The delivery row.
    pub delivery_id: i64,
    /// The subscriber the delivery is for.
    pub subscriber_id: i64,
    /// Their address, where the message goes.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Preferred language.
    pub language: Option<String>,
    /// JSON object text.
    pub attributes: String,
    /// Mixed into their unsubscribe token.
    pub token_nonce: String,
    /// Attempts so far, including this one.
    pub attempts: i64,
    /// Attempts made before an operator last asked to retry failed deliveries.
    pub retry_from: i64,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Accepted by the relay.
    Sent {
        /// The relay's reply.
        reply: String,
        /// Our Message-ID.
        message_id: String,
    },
    /// Refused for good.
    Failed {
        /// The relay's reply or the error.
        reply: String,
        /// Blocklist this subscriber in the same transaction: the mailbox does not exist.
        blocklist: Option<i64>,
    },
    /// Refused for now: back to the queue, not before `not_before`.
    Retry {
        /// The relay's reply or the error.
        reply: String,
        /// RFC 3339 time of the next attempt.
        not_before: String,
    },
    /// Not sent: no longer subscribed, blocklisted, erased.
    Skipped {
        /// What went wrong, for the operator.
        reason: String,
    },
    /// Not tried after all (the relay could not take mail, or refused us): back to the queue
    /// as it was, the attempt not counted.
    Requeue {
        /// Not before this RFC 3339 time, if set.
        not_before: Option<String>,
    },
    /// Handed over whole, but no final reply came: the relay may have it.
    Uncertain {
        /// What happened instead of the reply.
        reply: String,
    },
}

/// An outcome to record, with the attempt it ends.
#[derive(Debug, Clone)]
pub struct Settlement {
    /// The delivery row.
    pub delivery_id: i64,
    /// What became of it.
    pub outcome: Outcome,
    /// The try that led there, written to `delivery_attempts` unless the outcome is
    /// [`Outcome::Requeue`] (handed back untried: not an attempt).
    pub attempt: Attempt,
}

/// How `start_campaign` found things.
#[derive(Debug, Clone)]
pub enum Start {
    /// A new campaign with this many recipients.
    Created(Campaign, i64),
    /// The same edition was already started for this list: resume it.
    Resumed(Campaign),
}

/// Problems particular to campaigns.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// The list has nobody to send to.
    #[error(
        "list `{0}` has no confirmed subscribers; nothing to send (see `bulletin subscribers list --list {0}`)"
    )]
    EmptyAudience(String),
    /// The edition changed after a campaign for it started.
    #[error(
        "edition `{slug}` was already sent to list `{list}` as campaign #{id} ({status}) with different content; \
         bulletin never mails the same edition twice: give the corrected edition a new slug, \
         or finish campaign #{id} from the content it started with"
    )]
    ContentChanged {
        /// The edition's slug.
        slug: String,
        /// The list it was sent to.
        list: String,
        /// The earlier campaign.
        id: i64,
        /// Its status.
        status: CampaignStatus,
    },
    /// `send` of an edition and list that `send --at` scheduled, before its time.
    #[error(
        "campaign #{id} for this edition and list is scheduled for {at}; use `bulletin campaigns cancel {id}` \
         or wait (a `bulletin worker` starts it then), or pass --now to start it at once"
    )]
    Scheduled {
        /// The scheduled campaign.
        id: i64,
        /// When, as listings show it.
        at: String,
    },
    /// `send --at` of an edition and list that already have a campaign.
    #[error(
        "edition `{slug}` already has campaign #{id} ({status}) for list `{list}`; only a new edition can be \
         scheduled (`bulletin send` without --at resumes #{id})"
    )]
    AlreadyExists {
        /// The edition's slug.
        slug: String,
        /// The list.
        list: String,
        /// The campaign there is.
        id: i64,
        /// Its status.
        status: CampaignStatus,
    },
    /// Cancelled campaigns stay cancelled.
    #[error("campaign #{0} for this edition and list was cancelled; it will not be resumed")]
    Cancelled(i64),
    /// No campaign with that id.
    #[error("no campaign #{0}; see `bulletin campaigns list`")]
    NotFound(i64),
    /// Another sender holds the campaign's lease.
    #[error(
        "campaign #{id} is being sent by {} (pid {} on host {}, since {}, last heard from {}); \
         {}. Wait for it to finish, or stop it with \
         `bulletin campaigns pause {id}`; if that process is gone for good, its lease lapses at {}",
        match holder.kind { super::LeaseKind::Exclusive => "another `bulletin send`".to_string(),
                            super::LeaseKind::Shared => format!("`bulletin worker` {}", holder.name) },
        holder.pid, holder.host, holder.acquired_at, holder.heartbeat_at,
        match holder.kind { super::LeaseKind::Exclusive => "bulletin sends a campaign from one process at a time",
                            super::LeaseKind::Shared => "`send` works a campaign alone, never beside workers" },
        holder.expires_at
    )]
    Busy {
        /// The campaign that was already started.
        id: i64,
        /// Who holds it (boxed: errors travel by value, and this one is large).
        holder: Box<super::LeaseInfo>,
    },
    /// Our lease lapsed and was taken or removed while we were sending.
    #[error(
        "lost the lease on campaign #{0}: this sender was not heard from for longer than the lease lasts \
         (suspended, or the database unreachable), and another sender may have taken over; stopped"
    )]
    LeaseLost(i64),
    /// A claimed row's subscriber was missing: the store is inconsistent (nothing was claimed).
    #[error(
        "delivery {0} came up for sending without its subscriber's details; nothing was claimed. \
         Check the database with `bulletin doctor`"
    )]
    ClaimedWithoutSubscriber(i64),
    /// The database the rows live in.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sets campaign $3's status ($1, at $2, with reason $4) and its counters from its
/// deliveries; callers may add to the `WHERE`.
pub(super) const SET_STATUS: &str =
    "UPDATE campaigns SET status = $1, updated_at = $2, halt_reason = $4,
        finished_at = CASE WHEN $1 IN ('finished', 'cancelled') THEN $2 ELSE finished_at END,
        sent = (SELECT COUNT(*) FROM deliveries WHERE campaign_id = $3 AND status = 'sent'),
        failed = (SELECT COUNT(*) FROM deliveries WHERE campaign_id = $3 AND status = 'failed'),
        skipped = (SELECT COUNT(*) FROM deliveries WHERE campaign_id = $3 AND status = 'skipped')
     WHERE id = $3";

const CAMPAIGN_COLUMNS: &str = "id, edition_slug, list_id, list_name, content_hash, subject, status, created_at, updated_at, finished_at, halt_reason, started_at, edition_path, rate, hourly_cap, scheduled_at, schedule_zone";

impl Store {
    /// Creates the campaign for (edition, list, content) with its frozen audience, or finds the
    /// one already started so that it can be resumed. A campaign scheduled by `send --at` and
    /// not started yet is refused (`Scheduled`) before its time unless `start_now`; once due,
    /// or paused before it began, its audience is frozen now and it counts as created.
    pub async fn start_campaign(
        &self,
        list: &super::List,
        new: &NewCampaign<'_>,
        start_now: bool,
    ) -> Result<Start, CampaignError> {
        let mut tx = self.write().await?;
        let now = now();
        let earlier = sqlx::query_as::<_, Campaign>(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE edition_slug = $1 AND list_id = $2 ORDER BY id"
        ))
        .bind(new.slug)
        .bind(list.id)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        if let Some(c) = earlier.iter().find(|c| c.content_hash == new.content_hash) {
            if c.status == CampaignStatus::Cancelled {
                return Err(CampaignError::Cancelled(c.id));
            }
            if !c.is_scheduled() {
                return Ok(Start::Resumed(c.clone()));
            }
            let at = c.scheduled_at.clone().unwrap_or_default();
            if c.status == CampaignStatus::Draft && at.as_str() > now.as_str() && !start_now {
                return Err(CampaignError::Scheduled { id: c.id, at });
            }
            let n = self
                .freeze_audience(&mut tx, c.id, (list.id, &list.name), &now)
                .await?;
            tx.commit().await.map_err(|e| self.classify(e))?;
            self.refresh_planner_statistics().await;
            let campaign = self.campaign(c.id).await?;
            return Ok(Start::Created(campaign, n));
        }
        if let Some(c) = earlier.first() {
            return Err(CampaignError::ContentChanged {
                slug: new.slug.to_string(),
                list: list.name.clone(),
                id: c.id,
                status: c.status,
            });
        }
        let campaign = self.insert_campaign(&mut tx, list, new, None, &now).await?;
        // An empty audience rolls the campaign row back with the transaction (dropped).
        let queued = self
            .freeze_audience(&mut tx, campaign.id, (list.id, &list.name), &now)
            .await?;
        tx.commit().await.map_err(|e| self.classify(e))?;
        self.refresh_planner_statistics().await;
        let campaign = self.campaign(campaign.id).await?;
        Ok(Start::Created(campaign, queued))
    }

    /// The campaign row, `draft` until its audience is frozen; scheduled when `when` is given.
    async fn insert_campaign(
        &self,
        conn: &mut sqlx::AnyConnection,
        list: &super::List,
        new: &NewCampaign<'_>,
        when: Option<&Scheduled>,
        now: &str,
    ) -> Result<Campaign, CampaignError> {
        sqlx::query_as::<_, Campaign>(&format!(
            "INSERT INTO campaigns (edition_slug, list_id, list_name, content_hash, subject, status, created_at, updated_at,
                                    edition_path, rate, hourly_cap, scheduled_at, schedule_zone)
             VALUES ($1, $2, $3, $4, $5, 'draft', $6, $6, $7, $8, $9, $10, $11) RETURNING {CAMPAIGN_COLUMNS}"
        ))
        .bind(new.slug)
        .bind(list.id)
        .bind(&list.name)
        .bind(new.content_hash)
        .bind(new.subject)
        .bind(now)
        .bind(new.edition_path)
        .bind(new.caps.rate)
        .bind(new.caps.hourly_cap)
        .bind(when.map(|w| w.at.as_str()))
        .bind(when.map(|w| w.zone.as_str()))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| self.classify(e).into())
    }

    /// One `deliveries` row per confirmed, active subscriber of `list`, and the campaign
    /// `running` from now; `EmptyAudience` (the caller drops the transaction) when nobody is.
    async fn freeze_audience(
        &self,
        conn: &mut sqlx::AnyConnection,
        campaign_id: i64,
        (list_id, list_name): (i64, &str),
        now: &str,
    ) -> Result<i64, CampaignError> {
        let queued = sqlx::query(
            "INSERT INTO deliveries (campaign_id, subscriber_id, language, status, created_at, updated_at)
             SELECT $1, s.id, s.language, 'queued', $2, $2
             FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id
             WHERE x.list_id = $3 AND x.status = 'confirmed' AND s.status = 'active'
             ORDER BY s.id",
        )
        .bind(campaign_id)
        .bind(now)
        .bind(list_id)
        .execute(&mut *conn)
        .await
        .map_err(|e| self.classify(e))?
        .rows_affected();
        if queued == 0 {
            return Err(CampaignError::EmptyAudience(list_name.to_string()));
        }
        let queued = i64::try_from(queued).unwrap_or(i64::MAX);
        sqlx::query(
            "UPDATE campaigns SET total = $1, status = 'running', started_at = $2, updated_at = $2
             WHERE id = $3",
        )
        .bind(queued)
        .bind(now)
        .bind(campaign_id)
        .execute(&mut *conn)
        .await
        .map_err(|e| self.classify(e))?;
        Ok(queued)
    }

    /// Records a campaign for `send --at`: status `draft` with `scheduled_at`, no audience
    /// yet (it is frozen when a worker starts it, so that it reaches the list as it is then).
    /// Refused when the edition already has a campaign for the list.
    pub async fn schedule_campaign(
        &self,
        list: &super::List,
        new: &NewCampaign<'_>,
        when: &Scheduled,
    ) -> Result<Campaign, CampaignError> {
        let mut tx = self.write().await?;
        let earlier = sqlx::query_as::<_, Campaign>(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE edition_slug = $1 AND list_id = $2 ORDER BY id"
        ))
        .bind(new.slug)
        .bind(list.id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        if let Some(c) = earlier {
            return Err(CampaignError::AlreadyExists {
                slug: new.slug.to_string(),
                list: list.name.clone(),
                id: c.id,
                status: c.status,
            });
        }
        let now = now();
        let campaign = self
            .insert_campaign(&mut tx, list, new, Some(when), &now)
            .await?;
        Self::event(
            &mut *tx,
            "campaign_scheduled",
            None,
            Some(list.id),
            "cli",
            serde_json::json!({ "campaign": campaign.id, "at": when.at }),
        )
        .await
        .map_err(|e| self.classify(e))?;
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(campaign)
    }

    /// The campaigns a worker should work now: running ones, and scheduled drafts whose time
    /// has come. Oldest first.
    pub async fn due_campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        sqlx::query_as::<_, Campaign>(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns
             WHERE status = 'running'
                OR (status = 'draft' AND scheduled_at IS NOT NULL AND started_at IS NULL AND scheduled_at <= $1)
             ORDER BY id"
        ))
        .bind(now())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.classify(e))
    }

    /// Starts a scheduled campaign whose time has come: freezes its audience and makes it
    /// `running`, once, whichever worker gets here first (the others find it running). A list
    /// that has nobody to send to by then cancels it, saying why. Returns the campaign as it
    /// is afterwards, and whether this call started (or cancelled) it.
    pub async fn start_due(&self, campaign_id: i64) -> Result<(Campaign, bool), CampaignError> {
        let mut tx = self.write().await?;
        let now = now();
        let c = sqlx::query_as::<_, Campaign>(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1"
        ))
        .bind(campaign_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?
        .ok_or(CampaignError::NotFound(campaign_id))?;
        let due = c.status == CampaignStatus::Draft
            && c.is_scheduled()
            && c.scheduled_at
                .as_deref()
                .is_some_and(|at| at <= now.as_str());
        if !due {
            return Ok((c, false));
        }
        // The list's id is cleared when the list is removed: nobody to send to then.
        let frozen = match c.list_id {
            Some(id) => {
                self.freeze_audience(&mut tx, c.id, (id, &c.list_name), &now)
                    .await
            }
            None => Err(CampaignError::EmptyAudience(c.list_name.clone())),
        };
        let started = frozen.is_ok();
        match frozen {
            Ok(_) => {}
            Err(CampaignError::EmptyAudience(_)) => {
                sqlx::query(
                    "UPDATE campaigns SET status = 'cancelled', updated_at = $1, finished_at = $1,
                            halt_reason = 'nobody to send to when it was due: the list has no confirmed subscribers (or was removed)'
                     WHERE id = $2",
                )
                .bind(&now)
                .bind(c.id)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.classify(e))?;
            }
            Err(e) => return Err(e),
        }
        tx.commit().await.map_err(|e| self.classify(e))?;
        if started {
            self.refresh_planner_statistics().await;
        }
        Ok((self.campaign(campaign_id).await?, true))
    }

    /// After a campaign's audience was frozen: on PostgreSQL, brings the planner's statistics
    /// of the tables every claim reads up to date (`ANALYZE`, a sample of at most 30,000 rows
    /// each, a fraction of a second even at a million rows).
    ///
    /// Why: the first campaign usually follows the import at once, before autovacuum has
    /// looked at the new rows. With no statistics the planner assumed one row per list and one
    /// queued delivery, and its cached plan for the claim hashed the whole list's
    /// subscriptions and sorted the whole queue on every turn (measured: 34 ms a claim at
    /// 20,000 recipients). Nothing to do on SQLite, whose planner does not depend on gathered
    /// statistics for these statements. A failure changes nothing but speed (a role that does
    /// not own the tables, say), so it is not an error.
    async fn refresh_planner_statistics(&self) {
        if self.backend() == super::Backend::Postgres {
            let _ = sqlx::query("ANALYZE deliveries, subscriptions, subscribers")
                .execute(&self.pool)
                .await;
        }
    }

    /// Reserves up to `wanted` send slots of a campaign's shared caps, for every sender of it
    /// at once: a short transaction on its `campaign_pacing` row. Returns how many may leave
    /// now (claim at most that many rows), or, when none may, how long until the next slot,
    /// and the hour window the slots belong to (for [`Store::refund_slots`]).
    ///
    /// The rate is a schedule that advances by a fixed interval per message; after an idle
    /// stretch it restarts from now rather than bursting to catch up (at most four slots of
    /// slack, as the engine's own pacer). The hourly cap counts messages per window of an hour
    /// from its first message.
    pub async fn reserve_slots(
        &self,
        campaign_id: i64,
        caps: Caps,
        wanted: usize,
    ) -> Result<Reservation, CampaignError> {
        if !caps.limits() || wanted == 0 {
            return Ok(Reservation {
                granted: wanted,
                wait: std::time::Duration::ZERO,
                window: 0,
                next_slot: 0,
            });
        }
        let paced = self
            .reserve_paced(
                super::pacing::PacingRow::Campaign(campaign_id),
                caps,
                wanted,
            )
            .await?;
        Ok(Reservation {
            granted: paced.granted,
            wait: paced.wait,
            window: paced.window_start_us,
            next_slot: paced.next_slot_us,
        })
    }

    /// Gives back `unused` slots of the reservation `from` ([`Store::reserve_slots`]) that
    /// found no row to claim (the queue ran dry), so that a worker at the end of the queue
    /// does not eat the slots of the others. Each part goes back only if nobody moved it
    /// since: the schedule only while its next slot is still the one this reservation left
    /// (had another worker reserved after it, moving the schedule back would hand out slots
    /// whose time that worker already used, over the rate), and the hourly count only within
    /// the window the slots were taken from (in a new window they are worth nothing, and
    /// returning them would let it exceed the cap).
    pub async fn refund_slots(
        &self,
        campaign_id: i64,
        caps: Caps,
        from: &Reservation,
        unused: usize,
    ) -> Result<(), StoreError> {
        if !caps.limits() || unused == 0 {
            return Ok(());
        }
        let unused = i64::try_from(unused).unwrap_or(i64::MAX);
        let interval = if caps.rate > 0.0 {
            ((1e6 / caps.rate) as i64).max(1)
        } else {
            0
        };
        sqlx::query(
            "UPDATE campaign_pacing
                SET next_slot_us = CASE WHEN next_slot_us = $5 THEN next_slot_us - $1
                                        ELSE next_slot_us END,
                    window_count = CASE WHEN window_start_us <> $4 THEN window_count
                                        WHEN window_count > $2 THEN window_count - $2 ELSE 0 END
              WHERE campaign_id = $3",
        )
        .bind(unused.saturating_mul(interval))
        .bind(unused)
        .bind(campaign_id)
        .bind(from.window)
        .bind(from.next_slot)
        .execute(&self.pool)
        .await
        .map_err(|e| self.classify(e))?;
        Ok(())
    }

    /// How many subscribers a send to `list_id` would reach now.
    pub async fn audience_size(&self, list_id: i64) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id
             WHERE x.list_id = $1 AND x.status = 'confirmed' AND s.status = 'active'",
        )
        .bind(list_id)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.classify(e))
    }

    /// How many of a send's audience have an address whose local part is not ASCII: they
    /// need a relay that announces SMTPUTF8 (RFC 6531). Domains are stored IDNA-encoded, so
    /// only the local part can hold such characters.
    pub async fn audience_needing_smtputf8(&self, list_id: i64) -> Result<i64, StoreError> {
        // "Any character outside printable ASCII": SQLite's GLOB and PostgreSQL's regular
        // expression say it each in their own way.
        let sql = match self.backend() {
            super::Backend::Sqlite => {
                "SELECT COUNT(*) FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id
                 WHERE x.list_id = $1 AND x.status = 'confirmed' AND s.status = 'active'
                   AND s.email GLOB '*[^ -~]*'"
            }
            super::Backend::Postgres => {
                "SELECT COUNT(*) FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id
                 WHERE x.list_id = $1 AND x.status = 'confirmed' AND s.status = 'active'
                   AND s.email ~ '[^ -~]'"
            }
        };
        sqlx::query_scalar(sql)
            .bind(list_id)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.classify(e))
    }

    /// Cancels a campaign: its waiting recipients are skipped, and `send` will not resume it.
    /// One transaction, so that a worker starting it meanwhile (a scheduled campaign) cannot
    /// slip queued rows in between.
    pub async fn cancel_campaign(&self, campaign_id: i64) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let now = now();
        sqlx::query(
            "UPDATE deliveries SET status = 'skipped', last_reply = 'campaign cancelled', updated_at = $1
             WHERE campaign_id = $2 AND status = 'queued'",
        )
        .bind(&now)
        .bind(campaign_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        sqlx::query(
            "UPDATE campaigns SET status = 'cancelled', updated_at = $1, halt_reason = NULL, finished_at = $1,
                    sent = (SELECT COUNT(*) FROM deliveries WHERE campaign_id = $2 AND status = 'sent'),
                    failed = (SELECT COUNT(*) FROM deliveries WHERE campaign_id = $2 AND status = 'failed'),
                    skipped = (SELECT COUNT(*) FROM deliveries WHERE campaign_id = $2 AND status = 'skipped')
             WHERE id = $2",
        )
        .bind(&now)
        .bind(campaign_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        tx.commit().await.map_err(|e| self.classify(e))
    }

    /// Uncertain rows (left in flight by a sender that stopped, or handed over with no final
    /// reply): the relay may or may not have them. `requeue` sends them again; otherwise they
    /// are skipped. Call with the campaign's lease held, after [`Store::acquire_lease`] turned a
    /// dead sender's rows uncertain.
    pub async fn settle_uncertain(
        &self,
        campaign_id: i64,
        requeue: bool,
    ) -> Result<i64, StoreError> {
        let now = now();
        let sql = if requeue {
            "UPDATE deliveries SET status = 'queued', next_attempt_at = NULL, updated_at = $1,
                    last_reply = 'was uncertain (' || COALESCE(last_reply, '') || '); sending again'
             WHERE campaign_id = $2 AND status = 'uncertain'"
        } else {
            "UPDATE deliveries SET status = 'skipped', updated_at = $1,
                    last_reply = 'was uncertain (' || COALESCE(last_reply, '') || '); not sent again (--skip-uncertain)'
             WHERE campaign_id = $2 AND status = 'uncertain'"
        };
        let n = sqlx::query(sql)
            .bind(&now)
            .bind(campaign_id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.classify(e))?
            .rows_affected();
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }

    /// Renews `lease`, records finished attempts and claims up to `limit` more recipients, in
    /// one transaction.
    ///
    /// Claimed rows become `sending`, marked as the lease owner's. Recipients who left the
    /// list, were blocklisted or erased since the campaign started are marked `skipped` instead
    /// of being returned. Fails with `LeaseLost`, writing nothing, if the lease lapsed.
    ///
    /// `cursor` is this claimer's place in the queue (see [`ClaimCursor`]); a fresh one is
    /// always correct, only slower.
    pub async fn settle_and_claim(
        &self,
        lease: &super::Lease,
        list_id: i64,
        finished: &[Settlement],
        limit: usize,
        cursor: &mut ClaimCursor,
    ) -> Result<Vec<Recipient>, CampaignError> {
        // Not the global write lock: every statement below is safe beside other workers'
        // (READ COMMITTED on PostgreSQL). The lease renewal and the settlements touch only this
        // owner's lease and rows (`claimed_by = owner`); the skip and the claim re-check
        // `status = 'queued'` in their own WHERE and, on PostgreSQL, pick rows with
        // `FOR UPDATE SKIP LOCKED`, so two workers never wait on each other's rows (no
        // deadlock) and each row is claimed by exactly one of them.
        let mut tx = self.write_rows().await?;
        self.renew_lease_in(&mut tx, lease).await?;
        let now = now();
        // Accepted messages, nearly all of them, are settled a chunk per statement pair (a
        // round trip per statement matters on PostgreSQL); the rest one by one.
        let mut sent = Vec::new();
        let mut others = Vec::new();
        for settlement in finished {
            match &settlement.outcome {
                Outcome::Sent { reply, message_id } => sent.push(Accepted {
                    settlement,
                    reply,
                    message_id,
                }),
                _ => others.push(settlement),
            }
        }
        for chunk in sent.chunks(SENT_PER_STATEMENT) {
            settle_sent(&mut tx, chunk, &lease.owner, &now)
                .await
                .map_err(|e| self.classify(e))?;
        }
        for settlement in others {
            settle_one(&mut tx, settlement, &lease.owner, &now)
                .await
                .map_err(|e| self.classify(e))?;
        }
        let mut claimed = Vec::new();
        // The highest row id the claims looked at (claimed or skipped): final either way.
        let mut highest = None;
        if limit > 0 {
            let start = cursor.start();
            let mut after = start;
            let mut rewound = false;
            loop {
                let wanted = limit - claimed.len();
                let looked = self
                    .claim_rows(&mut tx, lease, list_id, &now, after, wanted)
                    .await?;
                highest = highest.max(looked.highest);
                claimed.extend(looked.claimed);
                if claimed.len() >= limit {
                    break;
                }
                match looked.highest {
                    // Every row looked at was taken, some of them skipped: there may be more
                    // claimable rows right above.
                    Some(h) if looked.rows == wanted => after = h,
                    // The rows above the cursor ran out (for now): look again from the first
                    // row, for retries that came due and rows given back below it.
                    _ if start > 0 && !rewound => {
                        rewound = true;
                        cursor.rewound();
                        after = 0;
                    }
                    _ => break,
                }
            }
        }
        tx.commit().await.map_err(|e| self.classify(e))?;
        // Only after the commit: a claim rolled back must not move the cursor past its rows.
        if let Some(last) = highest {
            cursor.advance(last);
        }
        Ok(claimed)
    }

    /// Within a claim, one statement: takes the next `limit` queued rows after id `after`,
    /// claims those whose recipients are still entitled to the mail and marks the others
    /// `skipped`, saying why.
    ///
    /// One statement rather than a skip then a claim: a round trip saved on every turn of a
    /// send, which is what a PostgreSQL send's speed is made of.
    async fn claim_rows(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        lease: &super::Lease,
        list_id: i64,
        now: &str,
        after: i64,
        limit: usize,
    ) -> Result<LookedAt, CampaignError> {
        // Backend-specific: SQLite has no `FOR UPDATE` (nor needs it: one writer at a time).
        // On PostgreSQL the picked rows are a MATERIALIZED CTE, computed once: as a plain
        // `id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` the planner may rescan the
        // subquery once per outer row (a nested-loop semi join), and each rescan locks and
        // returns other rows, so one claim took the whole queue.
        let (materialized, skip_locked) = match self.backend() {
            super::Backend::Sqlite => ("", ""),
            super::Backend::Postgres => ("MATERIALIZED", "FOR UPDATE SKIP LOCKED"),
        };
        let wanted = i64::try_from(limit).unwrap_or(i64::MAX);
        // Recipients no longer entitled to the mail are skipped as they come up for claiming
        // (only the rows looked at are judged: checking the whole queue every turn made a
        // campaign quadratic in its size). `why` is NULL for a recipient still entitled.
        // `judged` is MATERIALIZED so that SQLite computes `why` once a row: inlined, it put
        // the expression (and its subscription lookup) into each of the four columns set.
        // The RETURNING list names only `deliveries` (SQLite allows no other table there), so
        // what became of each row is read back from its new status.
        let rows = sqlx::query_as::<_, ClaimedRow>(&format!(
            "WITH picked AS {materialized} (
                 SELECT id, subscriber_id FROM deliveries
                 WHERE campaign_id = $1 AND status = 'queued' AND id > $5
                   AND (next_attempt_at IS NULL OR next_attempt_at <= $2)
                 ORDER BY id LIMIT $3 {skip_locked}),
             judged AS MATERIALIZED (
                 SELECT p.id, CASE
                     WHEN p.subscriber_id IS NULL THEN 'erased since the campaign started'
                     WHEN s.status <> 'active' THEN 'blocklisted since the campaign started'
                     WHEN s.id IS NULL OR NOT EXISTS (
                         SELECT 1 FROM subscriptions x
                         WHERE x.subscriber_id = p.subscriber_id AND x.list_id = $6
                           AND x.status = 'confirmed')
                         THEN 'unsubscribed since the campaign started'
                     END AS why
                 FROM picked p LEFT JOIN subscribers s ON s.id = p.subscriber_id)
             UPDATE deliveries SET
                 status = CASE WHEN judged.why IS NULL THEN 'sending' ELSE 'skipped' END,
                 attempts = CASE WHEN judged.why IS NULL THEN attempts + 1 ELSE attempts END,
                 claimed_by = CASE WHEN judged.why IS NULL THEN $4 ELSE claimed_by END,
                 last_reply = COALESCE(judged.why, last_reply),
                 updated_at = $2
             FROM judged
             WHERE deliveries.id = judged.id AND deliveries.status = 'queued'
             RETURNING deliveries.id AS delivery_id, deliveries.status AS status,
                 deliveries.subscriber_id AS subscriber_id, deliveries.attempts AS attempts,
                 deliveries.retry_from AS retry_from,
                 (SELECT email FROM subscribers WHERE id = deliveries.subscriber_id) AS email,
                 (SELECT name FROM subscribers WHERE id = deliveries.subscriber_id) AS name,
                 (SELECT language FROM subscribers WHERE id = deliveries.subscriber_id) AS language,
                 (SELECT attributes FROM subscribers WHERE id = deliveries.subscriber_id) AS attributes,
                 (SELECT token_nonce FROM subscribers WHERE id = deliveries.subscriber_id) AS token_nonce"
        ))
        .bind(lease.campaign_id)
        .bind(now)
        .bind(wanted)
        .bind(&lease.owner)
        .bind(after)
        .bind(list_id)
        .fetch_all(&mut **tx)
        .await
        .map_err(|e| self.classify(e))?;
        let mut looked = LookedAt {
            rows: rows.len(),
            highest: rows.iter().map(|r| r.delivery_id).max(),
            claimed: Vec::with_capacity(rows.len()),
        };
        for row in rows {
            if row.status != "sending" {
                continue;
            }
            // A row claimed for sending has a subscriber who is active and subscribed (the
            // same statement judged it so, on one snapshot), so every field is there. Were one
            // missing, the error rolls the whole claim back and the send pauses, rather than
            // mail going to nobody.
            let (Some(subscriber_id), Some(email), Some(name), Some(attributes), Some(token_nonce)) = (
                row.subscriber_id,
                row.email,
                row.name,
                row.attributes,
                row.token_nonce,
            ) else {
                return Err(CampaignError::ClaimedWithoutSubscriber(row.delivery_id));
            };
            looked.claimed.push(Recipient {
                delivery_id: row.delivery_id,
                subscriber_id,
                email,
                name,
                language: row.language,
                attributes,
                token_nonce,
                attempts: row.attempts,
                retry_from: row.retry_from,
            });
        }
        Ok(looked)
    }

    /// When the next retry is due, if any delivery waits for one.
    pub async fn next_retry_at(&self, campaign_id: i64) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE campaign_id = $1 AND status = 'queued'",
        )
        .bind(campaign_id)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.classify(e))
    }

    /// Counts by status.
    pub async fn delivery_counts(&self, campaign_id: i64) -> Result<DeliveryCounts, StoreError> {
        let rows: Vec<(DeliveryStatus, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM deliveries WHERE campaign_id = $1 GROUP BY status",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.classify(e))?;
        let mut c = DeliveryCounts::default();
        for (status, n) in rows {
            match status {
                DeliveryStatus::Queued => c.queued = n,
                DeliveryStatus::Sending => c.sending = n,
                DeliveryStatus::Sent => c.sent = n,
                DeliveryStatus::Failed => c.failed = n,
                DeliveryStatus::Uncertain => c.uncertain = n,
                DeliveryStatus::Skipped => c.skipped = n,
                DeliveryStatus::Bounced => c.bounced = n,
            }
        }
        Ok(c)
    }

    /// Sets a campaign's status, and its counters from its deliveries; `reason` says why it
    /// is paused (cleared otherwise).
    pub async fn set_campaign_status(
        &self,
        campaign_id: i64,
        status: CampaignStatus,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = now();
        sqlx::query(SET_STATUS)
            .bind(status)
            .bind(&now)
            .bind(campaign_id)
            .bind(reason)
            .execute(&self.pool)
            .await
            .map_err(|e| self.classify(e))?;
        Ok(())
    }

    /// Puts a campaign's failed deliveries back in the queue, after their cause was fixed (a
    /// relay refusal, a full mailbox). Each retry is a new attempt: `attempts` keeps counting,
    /// and the attempts limit counts afresh from here. Recipients who are blocklisted stay
    /// failed (lift that first with `subscribers unblock`). Returns (requeued, still
    /// blocklisted); a finished campaign becomes paused so that `send` resumes it.
    pub async fn retry_failed(&self, campaign_id: i64) -> Result<(i64, i64), CampaignError> {
        let campaign = self.campaign(campaign_id).await?;
        if campaign.status == CampaignStatus::Cancelled {
            return Err(CampaignError::Cancelled(campaign_id));
        }
        let mut tx = self.write().await?;
        let now = now();
        let requeued = sqlx::query(
            "UPDATE deliveries SET status = 'queued', next_attempt_at = NULL, retry_from = attempts,
                    updated_at = $1, last_reply = 'retry requested after: ' || COALESCE(last_reply, '')
             WHERE campaign_id = $2 AND status = 'failed'
               AND subscriber_id IN (SELECT id FROM subscribers WHERE status = 'active')",
        )
        .bind(&now)
        .bind(campaign_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?
        .rows_affected();
        let blocked: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE campaign_id = $1 AND status = 'failed'",
        )
        .bind(campaign_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        let requeued = i64::try_from(requeued).unwrap_or(i64::MAX);
        if requeued > 0 {
            sqlx::query(
                "UPDATE campaigns SET status = 'paused', finished_at = NULL, updated_at = $1,
                        halt_reason = 'failed deliveries queued again by `campaigns retry`'
                 WHERE id = $2 AND status = 'finished'",
            )
            .bind(&now)
            .bind(campaign_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
            Self::event(
                &mut *tx,
                "campaign_retry",
                None,
                None,
                "cli",
                serde_json::json!({ "campaign": campaign_id, "requeued": requeued }),
            )
            .await
            .map_err(|e| self.classify(e))?;
        }
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok((requeued, blocked))
    }

    /// Every campaign, newest first.
    pub async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        sqlx::query_as::<_, Campaign>(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns ORDER BY id DESC"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.classify(e))
    }

    /// One campaign.
    pub async fn campaign(&self, id: i64) -> Result<Campaign, CampaignError> {
        sqlx::query_as::<_, Campaign>(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.classify(e))?
        .ok_or(CampaignError::NotFound(id))
    }
}

/// What [`Store::reserve_slots`] granted.
#[derive(Debug, Clone, Copy)]
pub struct Reservation {
    /// How many messages may leave now.
    pub granted: usize,
    /// When none may: how long until the next slot.
    pub wait: std::time::Duration,
    /// The hour window (its start, µs since the Unix epoch) the slots belong to.
    pub window: i64,
    /// The schedule's next slot as this reservation left it (µs since the Unix epoch).
    pub next_slot: i64,
}

/// One row a claim statement took: claimed for sending, or skipped.
#[derive(Debug, sqlx::FromRow)]
struct ClaimedRow {
    delivery_id: i64,
    status: String,
    subscriber_id: Option<i64>,
    attempts: i64,
    retry_from: i64,
    email: Option<String>,
    name: Option<String>,
    language: Option<String>,
    attributes: Option<String>,
    token_nonce: Option<String>,
}

/// What one claim statement did.
struct LookedAt {
    /// How many queued rows it took (claimed or skipped).
    rows: usize,
    /// The highest id among them.
    highest: Option<i64>,
    /// Those claimed for sending.
    claimed: Vec<Recipient>,
}

/// A claimer's place in a campaign's queue: the highest row id it has claimed.
///
/// Claims take queued rows in id order, and the rows below the last claim are almost all
/// sent already. Starting each claim after this id lets the database go straight to the next
/// queued rows instead of walking past every row already sent: on PostgreSQL, whose planner
/// keeps the statistics of the campaign's start (every row queued) and so walks the primary
/// key from the first id, each claim otherwise cost more as the campaign went on (quadratic in
/// its size). Rows can become queued again below the cursor (a retry that came due, a dead
/// worker's rows given back), so a claim starts from the first row again whenever the rows
/// above the cursor run out, and at least every [`ClaimCursor::REWIND_EVERY`].
#[derive(Debug)]
pub struct ClaimCursor {
    after: i64,
    rewound_at: std::time::Instant,
}

impl Default for ClaimCursor {
    fn default() -> Self {
        Self::new()
    }
}

impl ClaimCursor {
    /// How often a claim looks from the first row again even while rows remain above the
    /// cursor, so that a retry that came due waits at most this long for its turn.
    pub const REWIND_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

    /// A cursor at the start of the queue.
    pub fn new() -> Self {
        Self {
            after: 0,
            rewound_at: std::time::Instant::now(),
        }
    }

    /// The id the next claim starts after: 0 (the first row) when a rewind is due.
    fn start(&mut self) -> i64 {
        if self.rewound_at.elapsed() >= Self::REWIND_EVERY {
            self.rewound();
        }
        self.after
    }

    /// Back to the first row.
    fn rewound(&mut self) {
        self.after = 0;
        self.rewound_at = std::time::Instant::now();
    }

    /// After a committed claim whose highest row id was `last`.
    fn advance(&mut self, last: i64) {
        self.after = self.after.max(last);
    }
}

/// Microseconds since the Unix epoch, the pacing rows' clock.
pub(super) fn now_us() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// The pacing arithmetic of [`Store::reserve_slots`] and [`Store::reserve_worker_slots`]
/// (its transaction is [`Store::reserve_paced`]), apart so that it can be tested alone:
/// from the row's (next slot, window start, count) at `now`, grants up to `wanted` slots.
/// Returns (granted, next slot, window start, count, wait before the next slot when none was
/// granted).
pub(super) fn pace(
    caps: Caps,
    (mut next, mut window_start, mut count): (i64, i64, i64),
    now: i64,
    wanted: usize,
) -> (usize, i64, i64, i64, std::time::Duration) {
    const HOUR_US: i64 = 3_600_000_000;
    let wait_us =
        |until: i64| std::time::Duration::from_micros(u64::try_from(until - now).unwrap_or(0));
    let mut granted = i64::try_from(wanted).unwrap_or(i64::MAX);
    if caps.hourly_cap > 0 {
        if now - window_start >= HOUR_US {
            window_start = now;
            count = 0;
        }
        if count >= caps.hourly_cap {
            return (
                0,
                next,
                window_start,
                count,
                wait_us(window_start + HOUR_US),
            );
        }
        granted = granted.min(caps.hourly_cap - count);
    }
    if caps.rate > 0.0 {
        // At least 1 µs, so that an absurd rate still advances the schedule.
        let interval = ((1e6 / caps.rate) as i64).max(1);
        if next > now {
            return (0, next, window_start, count, wait_us(next));
        }
        if now - next > interval * 4 {
            // After an idle stretch, do not burst to catch up.
            next = now;
        }
        granted = granted.min((now - next) / interval + 1);
        next += granted * interval;
    }
    count += granted;
    (
        usize::try_from(granted).unwrap_or(0),
        next,
        window_start,
        count,
        std::time::Duration::ZERO,
    )
}

/// Records one outcome, only on a row this owner claimed and has not settled yet, and the
/// attempt that led to it (one INSERT in the same transaction, so the log is exact).
async fn settle_one(
    conn: &mut sqlx::AnyConnection,
    settlement: &Settlement,
    owner: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    let Settlement {
        delivery_id,
        outcome,
        attempt,
    } = settlement;
    if let Outcome::Requeue { not_before } = outcome {
        // As if never claimed: the attempt is not counted, not logged, and the last reply stays.
        sqlx::query(
            "UPDATE deliveries SET status = 'queued', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
                    next_attempt_at = $1, updated_at = $2, claimed_by = NULL
             WHERE id = $3 AND status = 'sending' AND claimed_by = $4",
        )
        .bind(not_before.as_deref())
        .bind(now)
        .bind(delivery_id)
        .bind(owner)
        .execute(&mut *conn)
        .await?;
        return Ok(());
    }
    use DeliveryStatus as D;
    let (status, reply, message_id, not_before): (D, &str, Option<&str>, Option<&str>) =
        match outcome {
            Outcome::Sent { reply, message_id } => (D::Sent, reply, Some(message_id), None),
            Outcome::Failed { reply, .. } => (D::Failed, reply, None, None),
            Outcome::Retry { reply, not_before } => (D::Queued, reply, None, Some(not_before)),
            Outcome::Skipped { reason } => (D::Skipped, reason, None, None),
            Outcome::Uncertain { reply } => (D::Uncertain, reply, None, None),
            Outcome::Requeue { .. } => return Ok(()),
        };
    // Delivered when the relay said so, not when this turn got round to recording it.
    // `claimed_by` stays: which sender settled the row (its lease owner token).
    let settled = sqlx::query(
        "UPDATE deliveries SET status = $1, last_reply = $2, message_id = $3, next_attempt_at = $4,
                updated_at = $5, sent_at = CASE WHEN $1 = 'sent' THEN $8 ELSE sent_at END
         WHERE id = $6 AND status = 'sending' AND claimed_by = $7",
    )
    .bind(status)
    .bind(reply)
    .bind(message_id)
    .bind(not_before)
    .bind(now)
    .bind(delivery_id)
    .bind(owner)
    .bind(&attempt.finished_at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    // A row that is not ours (any more) is logged by whoever settles it.
    if settled > 0 {
        record_attempt(&mut *conn, *delivery_id, attempt, outcome, reply).await?;
    }
    if let Outcome::Failed {
        reply,
        blocklist: Some(subscriber_id),
    } = outcome
    {
        let changed = sqlx::query(
            "UPDATE subscribers SET status = 'blocklisted', updated_at = $1 WHERE id = $2 AND status = 'active'",
        )
        .bind(now)
        .bind(subscriber_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if changed > 0 {
            Store::event(
                &mut *conn,
                "blocklisted",
                Some(*subscriber_id),
                None,
                "bounce",
                serde_json::json!({ "reply": reply }),
            )
            .await?;
        }
    }
    Ok(())
}

/// A settlement whose outcome is [`Outcome::Sent`], with its parts.
struct Accepted<'a> {
    settlement: &'a Settlement,
    reply: &'a str,
    message_id: &'a str,
}

/// Accepted messages settled per statement by [`settle_sent`]: 4 parameters a row in the
/// update and 6 in the log, far below either server's limit on parameters.
const SENT_PER_STATEMENT: usize = 64;

/// Records accepted messages as [`settle_one`] does, in two
/// statements for the lot instead of two each: the rows still `sending` and this owner's are
/// marked sent, and only those get their attempt logged (a row that is not ours any more is
/// logged by whoever settles it).
async fn settle_sent(
    conn: &mut sqlx::AnyConnection,
    sent: &[Accepted<'_>],
    owner: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    if sent.is_empty() {
        return Ok(());
    }
    // `(VALUES …) AS v` names its columns column1, column2, … on both servers.
    let rows = (0..sent.len())
        .map(|i| {
            let p = 3 + i * 4;
            format!("(${}, ${}, ${}, ${})", p, p + 1, p + 2, p + 3)
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "UPDATE deliveries SET status = 'sent', last_reply = v.column2, message_id = v.column3,
                next_attempt_at = NULL, updated_at = $1, sent_at = v.column4
         FROM (VALUES {rows}) AS v
         WHERE deliveries.id = v.column1 AND deliveries.status = 'sending'
           AND deliveries.claimed_by = $2
         RETURNING deliveries.id"
    );
    let mut update = sqlx::query_scalar::<_, i64>(&sql).bind(now).bind(owner);
    for accepted in sent {
        update = update
            .bind(accepted.settlement.delivery_id)
            .bind(accepted.reply)
            .bind(accepted.message_id)
            .bind(accepted.settlement.attempt.finished_at.as_str());
    }
    let settled: std::collections::HashSet<i64> =
        update.fetch_all(&mut *conn).await?.into_iter().collect();
    let logged: Vec<&Accepted<'_>> = sent
        .iter()
        .filter(|a| settled.contains(&a.settlement.delivery_id))
        .collect();
    if logged.is_empty() {
        return Ok(());
    }
    let rows = (0..logged.len())
        .map(|i| {
            let p = 1 + i * 6;
            format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, 'sent')",
                p,
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO delivery_attempts
             (delivery_id, attempt, started_at, finished_at, stage, reply, outcome)
         VALUES {rows}"
    );
    let mut insert = sqlx::query(&sql);
    for accepted in logged {
        let attempt = &accepted.settlement.attempt;
        insert = insert
            .bind(accepted.settlement.delivery_id)
            .bind(attempt.number)
            .bind(attempt.started_at.as_str())
            .bind(attempt.finished_at.as_str())
            .bind(attempt.stage.as_deref())
            .bind(accepted.reply);
    }
    insert.execute(&mut *conn).await?;
    Ok(())
}

super::text_enum!(CampaignStatus: Draft, Running, Paused, Finished, Cancelled);
super::text_enum!(DeliveryStatus: Queued, Sending, Sent, Failed, Skipped, Uncertain, Bounced);

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in a temporary SQLite file with list `news` and a started campaign of `n`
    /// confirmed recipients.
    async fn campaign_of(n: usize) -> (tempfile::TempDir, Store, super::super::List, Campaign) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store = Store::open(&url, 5_000).await.expect("store");
        let list = store
            .create_list("news", false, "test")
            .await
            .expect("list");
        for i in 0..n {
            let new = super::super::NewSubscriber {
                address: crate::address::Address::parse(&format!("r{i}@example.org"))
                    .expect("address"),
                name: format!("R {i}"),
                language: None,
                attributes: serde_json::Map::new(),
            };
            store
                .add_subscriber(
                    &new,
                    std::slice::from_ref(&list),
                    Some(super::super::SubscriptionStatus::Confirmed),
                    true,
                    "test",
                )
                .await
                .expect("subscriber");
        }
        let new = NewCampaign {
            slug: "e",
            content_hash: "h",
            subject: "s",
            edition_path: None,
            caps: Caps {
                rate: 0.0,
                hourly_cap: 0,
            },
        };
        let Start::Created(campaign, _) = store
            .start_campaign(&list, &new, true)
            .await
            .expect("campaign")
        else {
            panic!("a new campaign");
        };
        (dir, store, list, campaign)
    }

    /// The lease of a `send` on `campaign`, for 60 s.
    async fn sender_lease(store: &Store, campaign: &Campaign) -> super::super::Lease {
        let holder = super::super::LeaseHolder::this_process();
        let (lease, _) = store
            .acquire_lease(
                campaign.id,
                &holder,
                std::time::Duration::from_secs(60),
                super::super::LeaseKind::Exclusive,
            )
            .await
            .expect("lease");
        lease
    }

    /// A claim goes on after the previous one, and still finds a row that became queued
    /// again below its cursor (a dead worker's row given back) once the rows above run out.
    #[tokio::test]
    async fn claims_go_on_from_the_cursor_and_rewind_for_rows_queued_again_below_it() {
        let (_dir, store, list, campaign) = campaign_of(10).await;
        let lease = sender_lease(&store, &campaign).await;
        let mut cursor = ClaimCursor::new();
        let claim = async |n: usize, cursor: &mut ClaimCursor| -> Vec<i64> {
            let rows = store
                .settle_and_claim(&lease, list.id, &[], n, cursor)
                .await
                .expect("claim");
            rows.iter().map(|r| r.delivery_id).collect()
        };
        let first = claim(3, &mut cursor).await;
        assert_eq!(first.len(), 3);
        // The second row is handed back, as for a worker whose lease died.
        sqlx::query("UPDATE deliveries SET status = 'queued', claimed_by = NULL WHERE id = $1")
            .bind(first[1])
            .execute(store.pool())
            .await
            .expect("give back");
        let second = claim(3, &mut cursor).await;
        assert!(
            second.iter().all(|id| *id > first[2]),
            "the claim went on after the cursor: {second:?} after {first:?}"
        );
        let rest = claim(10, &mut cursor).await;
        assert_eq!(
            rest.len(),
            5,
            "the four left above the cursor, and the one below"
        );
        assert!(rest.contains(&first[1]), "{rest:?} lacks {}", first[1]);
        assert!(claim(10, &mut cursor).await.is_empty());
        // A fresh cursor (another process) is always right, only slower.
        assert!(claim(10, &mut ClaimCursor::new()).await.is_empty());
    }

    /// The claim statement skips, saying why, the recipients who left since the campaign
    /// started, and goes on past them until it has as many as it was asked for.
    #[tokio::test]
    async fn a_claim_skips_those_who_left_with_why_and_still_takes_what_it_asked_for() {
        let (_dir, store, list, campaign) = campaign_of(10).await;
        let lease = sender_lease(&store, &campaign).await;
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM deliveries ORDER BY id")
            .fetch_all(store.pool())
            .await
            .expect("ids");
        let exec = async |sql: &str, id: i64| {
            sqlx::query(sql)
                .bind(id)
                .execute(store.pool())
                .await
                .expect(sql);
        };
        // Rows 2 to 5 (of 10) left in three ways; rows 1 and 6 onwards are still entitled.
        let unsubscribe = "UPDATE subscriptions SET status = 'unsubscribed' WHERE subscriber_id = \
                           (SELECT subscriber_id FROM deliveries WHERE id = $1)";
        let blocklist = "UPDATE subscribers SET status = 'blocklisted' WHERE id = \
                         (SELECT subscriber_id FROM deliveries WHERE id = $1)";
        let erase = "UPDATE deliveries SET subscriber_id = NULL WHERE id = $1";
        for (sql, row) in [
            (unsubscribe, 1),
            (unsubscribe, 2),
            (blocklist, 3),
            (erase, 4),
        ] {
            exec(sql, ids[row]).await;
        }

        let claimed = store
            .settle_and_claim(&lease, list.id, &[], 3, &mut ClaimCursor::new())
            .await
            .expect("claim");
        let mut got: Vec<i64> = claimed.iter().map(|r| r.delivery_id).collect();
        got.sort_unstable();
        assert_eq!(got, vec![ids[0], ids[5], ids[6]], "three entitled rows");
        assert!(
            claimed
                .iter()
                .all(|r| r.attempts == 1 && !r.email.is_empty())
        );
        let rows: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT status, last_reply FROM deliveries ORDER BY id")
                .fetch_all(store.pool())
                .await
                .expect("rows");
        let why = |r: &(String, Option<String>)| (r.0.clone(), r.1.clone().unwrap_or_default());
        assert_eq!(why(&rows[0]).0, "sending");
        for (i, reason) in [
            (1, "unsubscribed since the campaign started"),
            (2, "unsubscribed since the campaign started"),
            (3, "blocklisted since the campaign started"),
            (4, "erased since the campaign started"),
        ] {
            assert_eq!(
                why(&rows[i]),
                ("skipped".to_string(), reason.to_string()),
                "row {i}"
            );
        }
        assert_eq!(
            why(&rows[7]).0,
            "queued",
            "nothing taken beyond what was asked for"
        );
        let attempts: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(attempts), 0) FROM deliveries WHERE status = 'skipped'",
        )
        .fetch_one(store.pool())
        .await
        .expect("attempts");
        assert_eq!(attempts, 0, "a skipped row was never attempted");
    }

    /// Slots given back go into the hour window they were taken from only: once another
    /// worker has opened a new window, they would let it exceed the campaign's hourly cap.
    #[tokio::test]
    async fn campaign_slots_go_back_only_into_the_window_they_came_from() {
        let (_dir, store, _list, campaign) = campaign_of(1).await;
        let caps = Caps {
            rate: 0.0,
            hourly_cap: 10,
        };
        let first = store
            .reserve_slots(campaign.id, caps, 10)
            .await
            .expect("reserve");
        assert_eq!(first.granted, 10);
        store
            .refund_slots(campaign.id, caps, &first, 3)
            .await
            .expect("refund");
        let again = store
            .reserve_slots(campaign.id, caps, 10)
            .await
            .expect("reserve");
        assert_eq!(again.granted, 3, "unused slots of this window come back");
        // An hour later a fellow worker opens a new window and takes it all.
        sqlx::query("UPDATE campaign_pacing SET window_start_us = window_start_us - 3600000001")
            .execute(store.pool())
            .await
            .expect("age the window");
        let aged = first.window - 3_600_000_001;
        let fresh = store
            .reserve_slots(campaign.id, caps, 10)
            .await
            .expect("reserve");
        assert_eq!(fresh.granted, 10);
        let stale = Reservation {
            window: aged,
            ..fresh
        };
        store
            .refund_slots(campaign.id, caps, &stale, 4)
            .await
            .expect("late refund");
        let after = store
            .reserve_slots(campaign.id, caps, 1)
            .await
            .expect("reserve");
        assert_eq!(
            after.granted, 0,
            "the new window holds no more than the cap"
        );
    }

    /// The rate's schedule moves back for slots given back only while nobody reserved after
    /// them: otherwise the next reservation would get slots whose time was already used.
    #[tokio::test]
    async fn the_schedule_moves_back_only_while_nobody_reserved_after() {
        let (_dir, store, _list, campaign) = campaign_of(1).await;
        let caps = Caps {
            rate: 1000.0,
            hourly_cap: 0,
        };
        let next_slot = async || -> i64 {
            sqlx::query_scalar("SELECT next_slot_us FROM campaign_pacing WHERE campaign_id = $1")
                .bind(campaign.id)
                .fetch_one(store.pool())
                .await
                .expect("row")
        };
        let a = store.reserve_slots(campaign.id, caps, 1).await.expect("a");
        assert_eq!(a.granted, 1);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let b = store.reserve_slots(campaign.id, caps, 1).await.expect("b");
        assert_eq!(b.granted, 1);
        store
            .refund_slots(campaign.id, caps, &a, 1)
            .await
            .expect("refund a");
        assert_eq!(next_slot().await, b.next_slot, "b's slot stays b's");
        store
            .refund_slots(campaign.id, caps, &b, 1)
            .await
            .expect("refund b");
        assert_eq!(
            next_slot().await,
            b.next_slot - 1_000,
            "the last one goes back"
        );
    }

    #[test]
    fn the_shared_pacer_grants_only_due_slots_and_holds_the_hourly_cap() {
        let caps = Caps {
            rate: 10.0,
            hourly_cap: 0,
        };
        let now = 1_800_000_000_000_000; // 2027, in µs
        // A fresh row: one slot now, the next 100 ms later.
        let (n, next, ..) = pace(caps, (0, 0, 0), now, 5);
        assert_eq!((n, next), (1, now + 100_000));
        // Asked again at once: nothing, and the wait until that slot.
        let (n, _, _, _, wait) = pace(caps, (next, 0, 0), now, 5);
        assert_eq!((n, wait.as_micros()), (0, 100_000));
        // 250 ms later: the two slots due by then (at 100 and 200 ms), no more.
        let (n, next2, ..) = pace(caps, (next, 0, 0), now + 250_000, 5);
        assert_eq!((n, next2), (2, now + 300_000));
        let hourly = Caps {
            rate: 0.0,
            hourly_cap: 3,
        };
        let (n, _, start, count, _) = pace(hourly, (0, 0, 0), now, 5);
        assert_eq!((n, start, count), (3, now, 3));
        let (n, _, _, _, wait) = pace(hourly, (0, start, count), now + 1, 5);
        assert_eq!(n, 0);
        assert!(wait.as_secs() >= 3599, "{wait:?}");
    }
}
