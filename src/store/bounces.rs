//! What the bounce mailbox tells us, written down: one `feedback` row per message read, the
//! delivery it names turned `bounced`, and the policy's decision about the subscriber
//! (blocklisted, unsubscribed from the list), all in one transaction with their events.
//!
//! The policy's facts live here because they need the database (how many soft bounces in a
//! row a subscriber has had across campaigns); what a message *says* is decided in
//! `crate::feedback`, which hands over a [`NewFeedback`].

use serde::Serialize;

use super::{Store, StoreError, now};
use crate::store::DeliveryStatus;

/// What one message from the bounce mailbox is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    /// Permanent failure about the mailbox (5.1.1 no such user, 5.1.10 null MX, 5.2.1
    /// disabled, ...): the address is blocklisted at once.
    Hard,
    /// The relay gave up for a reason that may pass (4.x.x at expiry, 5.2.2 mailbox full):
    /// counts towards the soft-bounce limit.
    Soft,
    /// Permanent failure that is not about the mailbox (policy, content, size): the delivery
    /// is bounced, the address kept.
    Rejected,
    /// A warning that delivery is still being tried: recorded, nothing changes.
    Delayed,
    /// An ARF complaint (RFC 5965): the subscriber leaves the list at once.
    Complaint,
    /// An out-of-office or other auto-reply (RFC 3834): not a bounce.
    AutoReply,
    /// A DSN saying the message was delivered or relayed: not a bounce.
    Delivered,
}

impl FeedbackKind {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hard => "hard",
            Self::Soft => "soft",
            Self::Rejected => "rejected",
            Self::Delayed => "delayed",
            Self::Complaint => "complaint",
            Self::AutoReply => "auto_reply",
            Self::Delivered => "delivered",
        }
    }

    /// A final failure of the delivery: it becomes `bounced`.
    pub fn bounces_delivery(self) -> bool {
        matches!(self, Self::Hard | Self::Soft | Self::Rejected)
    }
}

impl std::fmt::Display for FeedbackKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The delivery a message was matched to, with what the policy needs about it.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct FeedbackTarget {
    /// The delivery row.
    pub delivery_id: i64,
    /// Its campaign.
    pub campaign_id: i64,
    /// The campaign's list (None once the list was removed).
    pub list_id: Option<i64>,
    /// The subscriber (None once erased).
    pub subscriber_id: Option<i64>,
    /// Their address, to check a DSN's Final-Recipient against when the match was not signed.
    pub email: Option<String>,
    /// The delivery's status now.
    pub status: DeliveryStatus,
}

/// One message to record.
#[derive(Debug, Clone)]
pub struct NewFeedback<'a> {
    /// SHA-256 (hex) of the message's bytes.
    pub message_key: &'a str,
    /// Where it was read.
    pub origin: &'a str,
    /// What it is.
    pub kind: FeedbackKind,
    /// The delivery it names, when one was found.
    pub target: Option<&'a FeedbackTarget>,
    /// RFC 3464 `Action`, or the ARF `Feedback-Type` for a complaint.
    pub action: Option<&'a str>,
    /// The enhanced status code.
    pub status: Option<&'a str>,
    /// The remote server's words.
    pub diagnostic: Option<&'a str>,
    /// How the delivery was found (`verp`, `message-id`).
    pub matched_by: &'a str,
}

/// What recording a message did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Decision {
    /// The same message was recorded by an earlier run: nothing done.
    AlreadyHandled,
    /// Recorded; these are the changes made.
    Recorded {
        /// The delivery went from sent (or uncertain) to bounced.
        delivery_bounced: bool,
        /// The subscriber was blocklisted now.
        blocklisted: bool,
        /// The subscriber left the campaign's list now (a complaint).
        unsubscribed: bool,
        /// Soft bounces in a row so far, this one included (soft bounces only).
        soft_in_a_row: u32,
    },
}

impl Decision {
    /// One line for people: what was done.
    pub fn describe(&self) -> String {
        let Self::Recorded {
            delivery_bounced,
            blocklisted,
            unsubscribed,
            soft_in_a_row,
        } = self
        else {
            return "already handled".into();
        };
        let mut parts = Vec::new();
        if *delivery_bounced {
            parts.push("delivery bounced".to_string());
        }
        if *soft_in_a_row > 0 {
            parts.push(format!("soft bounce {soft_in_a_row} in a row"));
        }
        if *blocklisted {
            parts.push("address blocklisted".into());
        }
        if *unsubscribed {
            parts.push("unsubscribed from the list".into());
        }
        if parts.is_empty() {
            parts.push("nothing changed".into());
        }
        parts.join(", ")
    }
}

impl Store {
    /// Whether a message with this key was recorded already.
    pub async fn feedback_recorded(&self, message_key: &str) -> Result<bool, StoreError> {
        sqlx::query_scalar::<_, super::Flag>(
            "SELECT EXISTS (SELECT 1 FROM feedback WHERE message_key = $1)",
        )
        .bind(message_key)
        .fetch_one(&self.pool)
        .await
        .map(bool::from)
        .map_err(|e| self.classify(e))
    }

    /// The delivery with this id, if it exists.
    pub async fn feedback_target(
        &self,
        delivery_id: i64,
    ) -> Result<Option<FeedbackTarget>, StoreError> {
        sqlx::query_as(
            "SELECT d.id AS delivery_id, d.campaign_id, c.list_id, d.subscriber_id, s.email, d.status
             FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id
             LEFT JOIN subscribers s ON s.id = d.subscriber_id
             WHERE d.id = $1",
        )
        .bind(delivery_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.classify(e))
    }

    /// Records one message and applies the policy to it, in one transaction: a final failure
    /// turns its delivery `bounced`; a hard bounce, or the `soft_limit`-th soft bounce in a row
    /// across campaigns, blocklists the address; a complaint unsubscribes it from the
    /// campaign's list. Each change writes an event with source `bounce` or `complaint` and
    /// the evidence.
    pub async fn record_feedback(
        &self,
        f: &NewFeedback<'_>,
        soft_limit: u32,
    ) -> Result<Decision, StoreError> {
        let mut tx = self.write().await?;
        let applied = apply(&mut tx, f, soft_limit)
            .await
            .map_err(|e| self.classify(e))?;
        let Some(changes) = applied else {
            // Recorded by an earlier run, or by another process meanwhile: undo this one's
            // changes.
            tx.rollback().await.map_err(|e| self.classify(e))?;
            return Ok(Decision::AlreadyHandled);
        };
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(changes.into())
    }
}

/// The policy, inside the caller's transaction; `None` when the message was recorded before.
async fn apply(
    tx: &mut sqlx::AnyConnection,
    f: &NewFeedback<'_>,
    soft_limit: u32,
) -> Result<Option<Changes>, sqlx::Error> {
    let now = now();
    let t = f.target;
    let mut changes = Changes::default();
    if let Some(t) = t.filter(|_| f.kind.bounces_delivery()) {
        changes.delivery_bounced = bounce_delivery(&mut *tx, t, f, &now).await?;
    }
    if f.kind == FeedbackKind::Soft
        && let Some(t) = t
    {
        changes.soft_in_a_row = soft_in_a_row(&mut *tx, t, soft_limit).await? + 1;
    }
    let reason = match f.kind {
        FeedbackKind::Hard => Some("hard bounce".to_string()),
        FeedbackKind::Soft if changes.soft_in_a_row >= soft_limit => {
            Some(format!("{} soft bounces in a row", changes.soft_in_a_row))
        }
        _ => None,
    };
    let evidence = evidence(f, changes.soft_in_a_row);
    if let Some(t) = t
        && let Some(subscriber_id) = t.subscriber_id
    {
        if f.kind.bounces_delivery() || f.kind == FeedbackKind::Delayed {
            Store::event(
                &mut *tx,
                "bounced",
                Some(subscriber_id),
                t.list_id,
                "bounce",
                evidence.clone(),
            )
            .await?;
        }
        if let Some(reason) = &reason {
            changes.blocklisted = blocklist(&mut *tx, subscriber_id, reason, &evidence).await?;
        }
        if f.kind == FeedbackKind::Complaint {
            changes.unsubscribed = unsubscribe(&mut *tx, t, subscriber_id, &evidence).await?;
        }
    }
    let inserted = sqlx::query(
        "INSERT INTO feedback (message_key, received_at, origin, kind, delivery_id, campaign_id,
                               subscriber_id, action, status, diagnostic, decision)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (message_key) DO NOTHING",
    )
    .bind(f.message_key)
    .bind(&now)
    .bind(f.origin)
    .bind(f.kind)
    .bind(t.map(|t| t.delivery_id))
    .bind(t.map(|t| t.campaign_id))
    .bind(t.and_then(|t| t.subscriber_id))
    .bind(f.action)
    .bind(f.status)
    .bind(f.diagnostic)
    .bind(Decision::from(changes.clone()).describe())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok((inserted > 0).then_some(changes))
}

/// The changes one message made, before they become a [`Decision`].
#[derive(Default, Clone)]
struct Changes {
    delivery_bounced: bool,
    blocklisted: bool,
    unsubscribed: bool,
    soft_in_a_row: u32,
}

impl From<Changes> for Decision {
    fn from(c: Changes) -> Self {
        Self::Recorded {
            delivery_bounced: c.delivery_bounced,
            blocklisted: c.blocklisted,
            unsubscribed: c.unsubscribed,
            soft_in_a_row: c.soft_in_a_row,
        }
    }
}

fn evidence(f: &NewFeedback<'_>, soft_in_a_row: u32) -> serde_json::Value {
    let mut detail = serde_json::json!({
        "kind": f.kind.as_str(),
        "action": f.action,
        "status": f.status,
        "diagnostic": f.diagnostic,
        "matched_by": f.matched_by,
        "origin": f.origin,
    });
    if let Some(t) = f.target {
        detail["delivery_id"] = t.delivery_id.into();
        detail["campaign_id"] = t.campaign_id.into();
    }
    if f.kind == FeedbackKind::Soft {
        detail["soft_in_a_row"] = soft_in_a_row.into();
    }
    detail
}

/// Sent (or uncertain) becomes bounced; the diagnostic replaces the relay's "250 ok" as the
/// reply shown (the attempt log keeps the relay's).
async fn bounce_delivery(
    tx: &mut sqlx::AnyConnection,
    t: &FeedbackTarget,
    f: &NewFeedback<'_>,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let reply = match (f.status, f.diagnostic) {
        (Some(s), Some(d)) => format!("bounced ({s}): {d}"),
        (Some(s), None) => format!("bounced ({s})"),
        (None, Some(d)) => format!("bounced: {d}"),
        (None, None) => "bounced".to_string(),
    };
    let changed = sqlx::query(
        "UPDATE deliveries SET status = 'bounced', last_reply = $1, updated_at = $2
         WHERE id = $3 AND status IN ('sent', 'uncertain')",
    )
    .bind(reply)
    .bind(now)
    .bind(t.delivery_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed > 0 {
        sqlx::query(
            "UPDATE campaigns SET sent = (SELECT COUNT(*) FROM deliveries
                                          WHERE campaign_id = $1 AND status = 'sent')
             WHERE id = $1",
        )
        .bind(t.campaign_id)
        .execute(&mut *tx)
        .await?;
    }
    Ok(changed > 0)
}

/// Soft bounces in a row before this one: the subscriber's earlier deliveries, newest first,
/// each of which had a soft bounce, until the first that had none. Deliveries of later
/// campaigns do not break the run (their bounces may simply not have arrived yet).
async fn soft_in_a_row(
    tx: &mut sqlx::AnyConnection,
    t: &FeedbackTarget,
    limit: u32,
) -> Result<u32, sqlx::Error> {
    let Some(subscriber_id) = t.subscriber_id else {
        return Ok(0);
    };
    let earlier: Vec<super::Flag> = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM feedback f WHERE f.delivery_id = d.id AND f.kind = 'soft')
         FROM deliveries d
         WHERE d.subscriber_id = $1 AND d.campaign_id < $2
               AND d.status IN ('sent', 'bounced', 'uncertain')
         ORDER BY d.campaign_id DESC LIMIT $3",
    )
    .bind(subscriber_id)
    .bind(t.campaign_id)
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await?;
    let run = earlier.iter().take_while(|soft| soft.0).count();
    Ok(u32::try_from(run).unwrap_or(u32::MAX))
}

async fn blocklist(
    tx: &mut sqlx::AnyConnection,
    subscriber_id: i64,
    reason: &str,
    evidence: &serde_json::Value,
) -> Result<bool, sqlx::Error> {
    let changed = sqlx::query(
        "UPDATE subscribers SET status = 'blocklisted', updated_at = $1 WHERE id = $2 AND status = 'active'",
    )
    .bind(now())
    .bind(subscriber_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed > 0 {
        let mut detail = evidence.clone();
        detail["reason"] = reason.into();
        Store::event(
            &mut *tx,
            "blocklisted",
            Some(subscriber_id),
            None,
            "bounce",
            detail,
        )
        .await?;
    }
    Ok(changed > 0)
}

/// A complaint: the subscriber leaves the list the complained-of message came from.
async fn unsubscribe(
    tx: &mut sqlx::AnyConnection,
    t: &FeedbackTarget,
    subscriber_id: i64,
    evidence: &serde_json::Value,
) -> Result<bool, sqlx::Error> {
    let Some(list_id) = t.list_id else {
        return Ok(false);
    };
    let now = now();
    let changed = sqlx::query(
        "UPDATE subscriptions SET status = 'unsubscribed', updated_at = $1, unsubscribed_at = $1
         WHERE subscriber_id = $2 AND list_id = $3 AND status <> 'unsubscribed'",
    )
    .bind(&now)
    .bind(subscriber_id)
    .bind(list_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Store::event(
        &mut *tx,
        if changed > 0 {
            "unsubscribed"
        } else {
            "complained"
        },
        Some(subscriber_id),
        Some(list_id),
        "complaint",
        evidence.clone(),
    )
    .await?;
    Ok(changed > 0)
}

super::text_enum!(FeedbackKind: Hard, Soft, Rejected, Delayed, Complaint, AutoReply, Delivered);
