//! What `campaigns show` reports: each recipient's delivery and the log of its attempts.
//!
//! The log (`delivery_attempts`) is written by [`record_attempt`], called only from the
//! transaction that settles the attempt's delivery (`settle_and_claim`), so a delivery and its
//! log never disagree. Everything else here reads.

use serde::Serialize;

use super::campaigns::{DeliveryStatus, Outcome};
use super::{Store, StoreError};

/// How fast the relay took a finished campaign: its delivered messages and the time from its
/// first attempt's start to its last attempt's end.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SendTiming {
    /// The campaign measured.
    pub campaign_id: i64,
    /// Messages it delivered.
    pub messages: i64,
    /// Seconds from its first attempt's start to its last attempt's end.
    pub seconds: f64,
}

impl SendTiming {
    /// Messages per second; `None` for a campaign too small or too quick to measure (under a
    /// second, or under 10 messages).
    pub fn rate(&self) -> Option<f64> {
        (self.messages >= 10 && self.seconds >= 1.0).then(|| self.messages as f64 / self.seconds)
    }
}

/// One try at delivering a message, as the sending worker saw it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The delivery's attempt count when it was claimed for this try (1 for the first).
    pub number: i64,
    /// When the worker began sending (RFC 3339 UTC), connecting first if it had to.
    pub started_at: String,
    /// When the relay answered, or the try failed.
    pub finished_at: String,
    /// Where in the SMTP conversation it failed (`RCPT TO`, `end of data`, ...); `None` when
    /// the message was accepted.
    pub stage: Option<String>,
}

/// Writes `attempt`'s row in the log. `reply` is what the delivery records as its last reply.
/// Call only in the transaction that settles the delivery with `outcome`, never for
/// [`Outcome::Requeue`] (handed back untried).
pub(super) async fn record_attempt(
    conn: &mut sqlx::AnyConnection,
    delivery_id: i64,
    attempt: &Attempt,
    outcome: &Outcome,
    reply: &str,
) -> Result<(), sqlx::Error> {
    let outcome = match outcome {
        Outcome::Sent { .. } => "sent",
        Outcome::Retry { .. } => "deferred",
        Outcome::Failed { .. } => "failed",
        Outcome::Uncertain { .. } => "uncertain",
        Outcome::Skipped { .. } => "skipped",
        Outcome::Requeue { .. } => return Ok(()),
    };
    sqlx::query(
        "INSERT INTO delivery_attempts
             (delivery_id, attempt, started_at, finished_at, stage, reply, outcome)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(delivery_id)
    .bind(attempt.number)
    .bind(&attempt.started_at)
    .bind(&attempt.finished_at)
    .bind(attempt.stage.as_deref())
    .bind(reply)
    .bind(outcome)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One recipient of a campaign, for `campaigns show`.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct DeliveryRow {
    /// The delivery row's id, which its attempts point at.
    #[serde(skip)]
    pub id: i64,
    /// Address (None once erased).
    pub email: Option<String>,
    /// What became of it.
    pub status: DeliveryStatus,
    /// Attempts made (an attempt handed back untried is not counted).
    pub attempts: i64,
    /// When the last logged attempt began (None before the first, and for deliveries made
    /// before bulletin kept the log).
    pub last_attempt_at: Option<String>,
    /// When the relay accepted it.
    pub sent_at: Option<String>,
    /// The relay's last reply, or why it was skipped.
    pub last_reply: Option<String>,
    /// Message-ID of the message as sent.
    pub message_id: Option<String>,
    /// Last change.
    pub updated_at: String,
}

/// One logged attempt, for `campaigns show --attempts`.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct AttemptRow {
    /// The delivery it belongs to.
    #[serde(skip)]
    pub delivery_id: i64,
    /// 1 for the first attempt, and so on.
    pub attempt: i64,
    /// When the worker began sending.
    pub started_at: String,
    /// When the relay answered, or the attempt failed.
    pub finished_at: String,
    /// Where a failure happened; None when accepted.
    pub stage: Option<String>,
    /// The relay's reply, or what happened instead of one.
    pub reply: String,
    /// `sent`, `deferred` (tried again later), `failed`, `uncertain` or `skipped`.
    pub outcome: String,
}

/// Which of a campaign's deliveries to report.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeliveryQuery<'a> {
    /// Only these statuses; `None` for every status.
    pub statuses: Option<&'a [DeliveryStatus]>,
    /// Only this recipient: the address's key (see [`crate::address::Address::key`]).
    pub email_key: Option<&'a str>,
}

impl DeliveryQuery<'_> {
    /// The conditions on `d` (deliveries) and `s` (subscribers) after `d.campaign_id = $1`,
    /// with a placeholder (`$2`, `$3`…) per value that [`DeliveryQuery::bind`] binds in the
    /// same order.
    fn conditions(&self) -> String {
        let mut sql = String::new();
        let mut next = 2;
        let mut mark = || {
            next += 1;
            format!("${}", next - 1)
        };
        if let Some(statuses) = self.statuses {
            if statuses.is_empty() {
                sql.push_str(" AND 0 = 1");
            } else {
                let marks: Vec<String> = statuses.iter().map(|_| mark()).collect();
                sql.push_str(&format!(" AND d.status IN ({})", marks.join(", ")));
            }
        }
        if self.email_key.is_some() {
            sql.push_str(&format!(" AND s.email_key = {}", mark()));
        }
        sql
    }

    /// Binds the values [`DeliveryQuery::conditions`] has placeholders for.
    fn bind<'q, O>(
        &self,
        mut q: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>
    where
        Self: 'q,
    {
        for status in self.statuses.unwrap_or_default() {
            q = q.bind(*status);
        }
        if let Some(key) = self.email_key {
            q = q.bind(key);
        }
        q
    }
}

impl Store {
    /// How fast the most recently finished campaign that delivered anything was sent, from
    /// its attempt log; `None` before the first such campaign.
    pub async fn last_send_timing(&self) -> Result<Option<SendTiming>, StoreError> {
        let row: Option<(i64, i64, String, String)> = sqlx::query_as(
            "SELECT d.campaign_id, COUNT(*), MIN(a.started_at), MAX(a.finished_at)
             FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
             WHERE a.outcome = 'sent' AND d.campaign_id = (
                 SELECT c.id FROM campaigns c
                 WHERE c.status = 'finished'
                   AND EXISTS (SELECT 1 FROM deliveries x WHERE x.campaign_id = c.id AND x.status = 'sent')
                 ORDER BY c.finished_at DESC, c.id DESC LIMIT 1)
             GROUP BY d.campaign_id",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.classify(e))?;
        let Some((campaign_id, messages, first, last)) = row else {
            return Ok(None);
        };
        let at = |t: &str| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        };
        // Times are written by this program in RFC 3339; one that does not parse means a
        // hand-edited row, which is no measurement.
        Ok(at(&first).zip(at(&last)).map(|(first, last)| SendTiming {
            campaign_id,
            messages,
            seconds: (last - first).as_seconds_f64().max(0.0),
        }))
    }

    /// A campaign's deliveries that `query` selects, in the order they were queued.
    pub async fn deliveries(
        &self,
        campaign_id: i64,
        query: DeliveryQuery<'_>,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let sql = format!(
            "SELECT d.id, s.email, d.status, d.attempts, d.sent_at, d.last_reply, d.message_id,
                    d.updated_at,
                    (SELECT MAX(a.started_at) FROM delivery_attempts a WHERE a.delivery_id = d.id)
                        AS last_attempt_at
             FROM deliveries d LEFT JOIN subscribers s ON s.id = d.subscriber_id
             WHERE d.campaign_id = $1{} ORDER BY d.id",
            query.conditions()
        );
        query
            .bind(sqlx::query_as::<_, DeliveryRow>(&sql).bind(campaign_id))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.classify(e))
    }

    /// Every logged attempt of the deliveries `query` selects, by delivery and then in the
    /// order they were made.
    pub async fn attempts(
        &self,
        campaign_id: i64,
        query: DeliveryQuery<'_>,
    ) -> Result<Vec<AttemptRow>, StoreError> {
        let sql = format!(
            "SELECT a.delivery_id, a.attempt, a.started_at, a.finished_at, a.stage, a.reply,
                    a.outcome
             FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
                  LEFT JOIN subscribers s ON s.id = d.subscriber_id
             WHERE d.campaign_id = $1{} ORDER BY a.delivery_id, a.attempt, a.id",
            query.conditions()
        );
        query
            .bind(sqlx::query_as::<_, AttemptRow>(&sql).bind(campaign_id))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.classify(e))
    }
}
