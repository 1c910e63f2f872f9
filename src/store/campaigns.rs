//! Campaigns and their deliveries: the rows that make a send exact.
//!
//! A campaign is one edition (by slug and content hash) sent to one list. Its audience is
//! frozen when it is created: one `deliveries` row per confirmed, active subscriber, all in the
//! same transaction as the campaign row. From then on every recipient's fate is a row:
//! `queued` → `sending` → `sent` | `failed` | `skipped`, with attempts, the relay's last reply
//! and the Message-ID. A row is marked `sending` in the same transaction that hands it to a
//! worker, and settled in the transaction that claims the next ones, so after a crash the only
//! rows whose outcome is unknown are those still `sending`: at most the number in flight.

use serde::Serialize;

use super::{Store, StoreError, now};

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
    /// draft, running, paused, finished, cancelled.
    pub status: String,
    /// When created.
    pub created_at: String,
    /// When last changed.
    pub updated_at: String,
    /// When it finished.
    pub finished_at: Option<String>,
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
}

impl DeliveryCounts {
    /// All rows.
    pub fn total(&self) -> i64 {
        self.queued + self.sending + self.sent + self.failed + self.skipped
    }
}

/// One recipient handed to the sender: everything needed to build their message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Recipient {
    /// The delivery row.
    pub delivery_id: i64,
    /// The subscriber.
    pub subscriber_id: i64,
    /// Address.
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
}

/// One delivery in detail, for `campaigns show`.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct DeliveryRow {
    /// Address (None once erased).
    pub email: Option<String>,
    /// Status.
    pub status: String,
    /// Attempts.
    pub attempts: i64,
    /// The relay's last reply, or why it was skipped.
    pub last_reply: Option<String>,
    /// Message-ID.
    pub message_id: Option<String>,
    /// Last change.
    pub updated_at: String,
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
        /// Why.
        reason: String,
    },
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
        /// The edition.
        slug: String,
        /// The list.
        list: String,
        /// The earlier campaign.
        id: i64,
        /// Its status.
        status: String,
    },
    /// Cancelled campaigns stay cancelled.
    #[error("campaign #{0} for this edition and list was cancelled; it will not be resumed")]
    Cancelled(i64),
    /// No campaign with that id.
    #[error("no campaign #{0}; see `bulletin campaigns list`")]
    NotFound(i64),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
}

const CAMPAIGN_COLUMNS: &str = "id, edition_slug, list_id, list_name, content_hash, subject, status, created_at, updated_at, finished_at";

impl Store {
    /// Creates the campaign for (edition, list, content) with its frozen audience, or finds the
    /// one already started so that it can be resumed.
    pub async fn start_campaign(
        &self,
        slug: &str,
        list: &super::List,
        content_hash: &str,
        subject: &str,
    ) -> Result<Start, CampaignError> {
        let mut tx = self.write().await?;
        let earlier = sqlx::query_as::<_, Campaign>(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE edition_slug = ? AND list_id = ? ORDER BY id"
        ))
        .bind(slug)
        .bind(list.id)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        if let Some(c) = earlier.iter().find(|c| c.content_hash == content_hash) {
            if c.status == "cancelled" {
                return Err(CampaignError::Cancelled(c.id));
            }
            return Ok(Start::Resumed(c.clone()));
        }
        if let Some(c) = earlier.first() {
            return Err(CampaignError::ContentChanged {
                slug: slug.to_string(),
                list: list.name.clone(),
                id: c.id,
                status: c.status.clone(),
            });
        }
        let now = now();
        let campaign = sqlx::query_as::<_, Campaign>(&format!(
            "INSERT INTO campaigns (edition_slug, list_id, list_name, content_hash, subject, status, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, 'running', ?, ?) RETURNING {CAMPAIGN_COLUMNS}"
        ))
        .bind(slug)
        .bind(list.id)
        .bind(&list.name)
        .bind(content_hash)
        .bind(subject)
        .bind(&now)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        let queued = sqlx::query(
            "INSERT INTO deliveries (campaign_id, subscriber_id, language, status, created_at, updated_at)
             SELECT ?1, s.id, s.language, 'queued', ?2, ?2
             FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id
             WHERE x.list_id = ?3 AND x.status = 'confirmed' AND s.status = 'active'
             ORDER BY s.id",
        )
        .bind(campaign.id)
        .bind(&now)
        .bind(list.id)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?
        .rows_affected();
        if queued == 0 {
            // Dropping the transaction rolls the campaign row back.
            return Err(CampaignError::EmptyAudience(list.name.clone()));
        }
        sqlx::query("UPDATE campaigns SET total = ? WHERE id = ?")
            .bind(i64::try_from(queued).unwrap_or(i64::MAX))
            .bind(campaign.id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(Start::Created(
            campaign,
            i64::try_from(queued).unwrap_or(i64::MAX),
        ))
    }

    /// How many subscribers a send to `list_id` would reach now.
    pub async fn audience_size(&self, list_id: i64) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id
             WHERE x.list_id = ? AND x.status = 'confirmed' AND s.status = 'active'",
        )
        .bind(list_id)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.classify(e))
    }

    /// Cancels a campaign: its waiting recipients are skipped, and `send` will not resume it.
    pub async fn cancel_campaign(&self, campaign_id: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE deliveries SET status = 'skipped', last_reply = 'campaign cancelled', updated_at = ?
             WHERE campaign_id = ? AND status = 'queued'",
        )
        .bind(now())
        .bind(campaign_id)
        .execute(&self.pool)
        .await
        .map_err(|e| self.classify(e))?;
        self.set_campaign_status(campaign_id, "cancelled").await
    }

    /// Rows left `sending` by a process that stopped without recording their outcome: the
    /// relay may or may not have them. `requeue` sends them again; otherwise they are skipped.
    pub async fn settle_uncertain(
        &self,
        campaign_id: i64,
        requeue: bool,
    ) -> Result<i64, StoreError> {
        let now = now();
        let sql = if requeue {
            "UPDATE deliveries SET status = 'queued', next_attempt_at = NULL, updated_at = ?1,
                    last_reply = 'uncertain: the sender stopped during delivery; sending again'
             WHERE campaign_id = ?2 AND status = 'sending'"
        } else {
            "UPDATE deliveries SET status = 'skipped', updated_at = ?1,
                    last_reply = 'uncertain: the sender stopped during delivery; not sent again (--skip-uncertain)'
             WHERE campaign_id = ?2 AND status = 'sending'"
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

    /// Records finished attempts and claims up to `limit` more recipients, in one transaction.
    ///
    /// Claimed rows become `sending`. Recipients who left the list, were blocklisted or erased
    /// since the campaign started are marked `skipped` instead of being returned.
    pub async fn settle_and_claim(
        &self,
        campaign_id: i64,
        list_id: i64,
        finished: &[(i64, Outcome)],
        limit: usize,
    ) -> Result<Vec<Recipient>, StoreError> {
        let mut tx = self.write().await?;
        let now = now();
        for (delivery_id, outcome) in finished {
            settle_one(&mut tx, *delivery_id, outcome, &now)
                .await
                .map_err(|e| self.classify(e))?;
        }
        // Recipients no longer entitled to the mail are skipped as they come up for claiming
        // (only the next `limit` rows are looked at: checking the whole queue every turn made
        // a campaign quadratic in its size).
        sqlx::query(
            "UPDATE deliveries SET status = 'skipped', updated_at = ?1,
                    last_reply = CASE
                        WHEN subscriber_id IS NULL THEN 'erased since the campaign started'
                        WHEN (SELECT status FROM subscribers WHERE id = subscriber_id) <> 'active'
                            THEN 'blocklisted since the campaign started'
                        ELSE 'unsubscribed since the campaign started' END
             WHERE id IN (SELECT id FROM deliveries
                          WHERE campaign_id = ?2 AND status = 'queued'
                            AND (next_attempt_at IS NULL OR next_attempt_at <= ?1)
                          ORDER BY id LIMIT ?4)
               AND (
                 subscriber_id IS NULL
                 OR NOT EXISTS (SELECT 1 FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id
                                WHERE x.subscriber_id = deliveries.subscriber_id AND x.list_id = ?3
                                  AND x.status = 'confirmed' AND s.status = 'active'))",
        )
        .bind(&now)
        .bind(campaign_id)
        .bind(list_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        let claimed = if limit == 0 {
            Vec::new()
        } else {
            sqlx::query_as::<_, Recipient>(
                "WITH picked AS (
                     SELECT id FROM deliveries
                     WHERE campaign_id = ?1 AND status = 'queued'
                       AND (next_attempt_at IS NULL OR next_attempt_at <= ?2)
                     ORDER BY id LIMIT ?3)
                 UPDATE deliveries SET status = 'sending', attempts = attempts + 1, updated_at = ?2
                 WHERE id IN (SELECT id FROM picked)
                 RETURNING id AS delivery_id, subscriber_id, attempts,
                     (SELECT email FROM subscribers WHERE id = subscriber_id) AS email,
                     (SELECT name FROM subscribers WHERE id = subscriber_id) AS name,
                     (SELECT language FROM subscribers WHERE id = subscriber_id) AS language,
                     (SELECT attributes FROM subscribers WHERE id = subscriber_id) AS attributes,
                     (SELECT token_nonce FROM subscribers WHERE id = subscriber_id) AS token_nonce",
            )
            .bind(campaign_id)
            .bind(&now)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?
        };
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(claimed)
    }

    /// When the next retry is due, if any delivery waits for one.
    pub async fn next_retry_at(&self, campaign_id: i64) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE campaign_id = ? AND status = 'queued'",
        )
        .bind(campaign_id)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.classify(e))
    }

    /// Counts by status.
    pub async fn delivery_counts(&self, campaign_id: i64) -> Result<DeliveryCounts, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM deliveries WHERE campaign_id = ? GROUP BY status",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.classify(e))?;
        let mut c = DeliveryCounts::default();
        for (status, n) in rows {
            match status.as_str() {
                "queued" => c.queued = n,
                "sending" => c.sending = n,
                "sent" => c.sent = n,
                "failed" => c.failed = n,
                _ => c.skipped += n,
            }
        }
        Ok(c)
    }

    /// Sets a campaign's status, and its counters from its deliveries.
    pub async fn set_campaign_status(
        &self,
        campaign_id: i64,
        status: &str,
    ) -> Result<(), StoreError> {
        let now = now();
        sqlx::query(
            "UPDATE campaigns SET status = ?1, updated_at = ?2,
                    finished_at = CASE WHEN ?1 IN ('finished', 'cancelled') THEN ?2 ELSE finished_at END,
                    sent = (SELECT COUNT(*) FROM deliveries WHERE campaign_id = ?3 AND status = 'sent'),
                    failed = (SELECT COUNT(*) FROM deliveries WHERE campaign_id = ?3 AND status = 'failed'),
                    skipped = (SELECT COUNT(*) FROM deliveries WHERE campaign_id = ?3 AND status = 'skipped')
             WHERE id = ?3",
        )
        .bind(status)
        .bind(&now)
        .bind(campaign_id)
        .execute(&self.pool)
        .await
        .map_err(|e| self.classify(e))?;
        Ok(())
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
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.classify(e))?
        .ok_or(CampaignError::NotFound(id))
    }

    /// A campaign's deliveries that are not plainly sent (failed, skipped, uncertain, waiting),
    /// or all of them.
    pub async fn deliveries(
        &self,
        campaign_id: i64,
        all: bool,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        sqlx::query_as::<_, DeliveryRow>(
            "SELECT s.email, d.status, d.attempts, d.last_reply, d.message_id, d.updated_at
             FROM deliveries d LEFT JOIN subscribers s ON s.id = d.subscriber_id
             WHERE d.campaign_id = ? AND (? OR d.status <> 'sent')
             ORDER BY d.id",
        )
        .bind(campaign_id)
        .bind(all)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.classify(e))
    }

    /// Blocklists a subscriber after a permanent "no such user" reply.
    pub async fn blocklist(
        &self,
        subscriber_id: i64,
        reply: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE subscribers SET status = 'blocklisted', updated_at = ? WHERE id = ?")
            .bind(now())
            .bind(subscriber_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
        Self::event(
            &mut *tx,
            "blocklisted",
            Some(subscriber_id),
            None,
            source,
            serde_json::json!({ "reply": reply }),
        )
        .await
        .map_err(|e| self.classify(e))?;
        tx.commit().await.map_err(|e| self.classify(e))
    }
}

async fn settle_one(
    conn: &mut sqlx::SqliteConnection,
    delivery_id: i64,
    outcome: &Outcome,
    now: &str,
) -> Result<(), sqlx::Error> {
    let (status, reply, message_id, not_before): (&str, &str, Option<&str>, Option<&str>) =
        match outcome {
            Outcome::Sent { reply, message_id } => ("sent", reply, Some(message_id), None),
            Outcome::Failed { reply } => ("failed", reply, None, None),
            Outcome::Retry { reply, not_before } => ("queued", reply, None, Some(not_before)),
            Outcome::Skipped { reason } => ("skipped", reason, None, None),
        };
    sqlx::query(
        "UPDATE deliveries SET status = ?1, last_reply = ?2, message_id = ?3, next_attempt_at = ?4,
                updated_at = ?5, sent_at = CASE WHEN ?1 = 'sent' THEN ?5 ELSE sent_at END
         WHERE id = ?6 AND status = 'sending'",
    )
    .bind(status)
    .bind(reply)
    .bind(message_id)
    .bind(not_before)
    .bind(now)
    .bind(delivery_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
