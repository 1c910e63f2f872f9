//! The queries behind the public web pages (`bulletin serve`): look up what a signed link
//! names, unsubscribe, undo, leave every list, and the double opt-in of the subscription form.
//!
//! Everything here addresses a subscriber by id, because that is what a token carries; the
//! address never travels in a link. Every change writes an `events` row in the same
//! transaction, with the source the caller names (`one-click`, `page`, `form`), and nothing is
//! written when nothing changes, so that a mail scanner or a user clicking twice leaves one
//! event, not two.

use super::{Store, StoreError, now, suppression_hash};
use crate::address::Address;
use crate::store::SubscriptionStatus;

/// What a signed link points at: enough to verify the token and to draw the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkTarget {
    /// Mixed into the token's MAC; read before trusting the token.
    pub nonce: String,
    /// The subscriber's preferred language, for the page.
    pub language: Option<String>,
    /// The list's name.
    pub list_name: String,
    /// Where the subscriber stands with the list; `None` when they never joined it.
    pub status: Option<SubscriptionStatus>,
    /// Other lists the subscriber still receives (confirmed or unconfirmed).
    pub other_active_lists: i64,
}

/// What a web action did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebOutcome {
    /// The state changed (and an event was written).
    Changed,
    /// It was already so: nothing written.
    Unchanged,
    /// The subscriber or subscription does not exist (erased, list removed).
    Missing,
}

/// What a subscription request from the public form led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingOutcome {
    /// Send a confirmation mail for this subscription.
    Confirm {
        /// The subscriber (new or existing).
        subscriber_id: i64,
        /// The list.
        list_id: i64,
        /// The subscriber's token nonce, to sign the confirm link.
        nonce: String,
        /// The subscriber's language, for the mail.
        language: Option<String>,
    },
    /// Nothing to do (already confirmed, blocklisted, erased): the page says the same anyway.
    Nothing,
}

/// nonce, language, list name, subscription status, other active lists.
type LinkRow = (String, Option<String>, Option<String>, Option<String>, i64);

impl Store {
    /// The subscriber's nonce and the subscription a link names, or `None` when the
    /// subscriber does not exist (any more).
    pub async fn link_target(
        &self,
        subscriber_id: i64,
        list_id: i64,
    ) -> Result<Option<LinkTarget>, StoreError> {
        let row: Option<LinkRow> = sqlx::query_as(
            "SELECT s.token_nonce, s.language, l.name, x.status,
                        (SELECT COUNT(*) FROM subscriptions o
                          WHERE o.subscriber_id = s.id AND o.list_id <> ?2
                            AND o.status <> 'unsubscribed')
                 FROM subscribers s
                 LEFT JOIN lists l ON l.id = ?2
                 LEFT JOIN subscriptions x ON x.subscriber_id = s.id AND x.list_id = ?2
                 WHERE s.id = ?1",
        )
        .bind(subscriber_id)
        .bind(list_id)
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.classify(e))?;
        let Some((nonce, language, list_name, status, others)) = row else {
            return Ok(None);
        };
        // A removed list: the link names nothing any more.
        let Some(list_name) = list_name else {
            return Ok(None);
        };
        Ok(Some(LinkTarget {
            nonce,
            language,
            list_name,
            status: status.and_then(|s| s.parse().ok()),
            other_active_lists: others,
        }))
    }

    /// Leaves one list (the RFC 8058 one-click POST, or the page's button).
    pub async fn unsubscribe_by_id(
        &self,
        subscriber_id: i64,
        list_id: i64,
        source: &str,
    ) -> Result<WebOutcome, StoreError> {
        self.move_subscription(
            subscriber_id,
            list_id,
            &["confirmed", "unconfirmed"],
            SubscriptionStatus::Unsubscribed,
            "unsubscribed",
            source,
        )
        .await
    }

    /// Undoes an unsubscribe from the page that follows it: the person who just left, holding
    /// the list's own link, asks to stay.
    pub async fn resubscribe(
        &self,
        subscriber_id: i64,
        list_id: i64,
        source: &str,
    ) -> Result<WebOutcome, StoreError> {
        self.move_subscription(
            subscriber_id,
            list_id,
            &["unsubscribed"],
            SubscriptionStatus::Confirmed,
            "resubscribed",
            source,
        )
        .await
    }

    /// Confirms a subscription (double opt-in). A subscription the person had left is
    /// confirmed too: the form and the confirm link together are new consent.
    pub async fn confirm_subscription(
        &self,
        subscriber_id: i64,
        list_id: i64,
        source: &str,
    ) -> Result<WebOutcome, StoreError> {
        self.move_subscription(
            subscriber_id,
            list_id,
            &["unconfirmed", "unsubscribed"],
            SubscriptionStatus::Confirmed,
            "confirmed",
            source,
        )
        .await
    }

    /// Leaves every list; returns the names of the lists left.
    pub async fn unsubscribe_everywhere(
        &self,
        subscriber_id: i64,
        source: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.write().await?;
        let now = now();
        let left: Vec<(i64, String)> = sqlx::query_as(
            "UPDATE subscriptions SET status = 'unsubscribed', updated_at = ?1, unsubscribed_at = ?1
             WHERE subscriber_id = ?2 AND status <> 'unsubscribed'
             RETURNING list_id, (SELECT name FROM lists WHERE id = list_id)",
        )
        .bind(&now)
        .bind(subscriber_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        for (list_id, _) in &left {
            Self::event(
                &mut *tx,
                "unsubscribed",
                Some(subscriber_id),
                Some(*list_id),
                source,
                serde_json::json!({ "status": "unsubscribed", "scope": "all" }),
            )
            .await
            .map_err(|e| self.classify(e))?;
        }
        tx.commit().await.map_err(|e| self.classify(e))?;
        let mut names: Vec<String> = left.into_iter().map(|(_, n)| n).collect();
        names.sort();
        Ok(names)
    }

    /// A subscription request from the public form, before any confirmation.
    ///
    /// A new address gets a subscriber row and an `unconfirmed` subscription. A subscription
    /// the person had left stays `unsubscribed` until they confirm: a stranger typing their
    /// address must not be able to change anything. Blocklisted and erased addresses get
    /// nothing, and the caller shows the same page in every case.
    pub async fn subscribe_pending(
        &self,
        address: &Address,
        list_id: i64,
        language: Option<&str>,
        source: &str,
    ) -> Result<PendingOutcome, StoreError> {
        let key = address.key();
        let mut tx = self.write().await?;
        let erased: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM suppressions WHERE email_hash = ?")
                .bind(suppression_hash(&key))
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.classify(e))?;
        if erased.is_some() {
            return Ok(PendingOutcome::Nothing);
        }
        let now = now();
        let existing: Option<(i64, String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, status, token_nonce, language FROM subscribers WHERE email_key = ?",
        )
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        let (id, nonce, language) = match existing {
            Some((_, status, _, _)) if status != "active" => return Ok(PendingOutcome::Nothing),
            Some((id, _, nonce, lang)) => (id, nonce, lang),
            None => {
                let (id, nonce): (i64, String) = sqlx::query_as(
                    "INSERT INTO subscribers (email, email_key, name, language, attributes, status, created_at, updated_at)
                     VALUES (?, ?, '', ?, '{}', 'active', ?, ?) RETURNING id, token_nonce",
                )
                .bind(address.as_str())
                .bind(&key)
                .bind(language)
                .bind(&now)
                .bind(&now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.classify(e))?;
                Self::event(
                    &mut *tx,
                    "created",
                    Some(id),
                    None,
                    source,
                    serde_json::json!({}),
                )
                .await
                .map_err(|e| self.classify(e))?;
                (id, nonce, language.map(str::to_string))
            }
        };
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM subscriptions WHERE subscriber_id = ? AND list_id = ?",
        )
        .bind(id)
        .bind(list_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        match status.as_deref() {
            Some("confirmed") => {
                tx.commit().await.map_err(|e| self.classify(e))?;
                return Ok(PendingOutcome::Nothing);
            }
            Some(_) => {}
            None => {
                sqlx::query(
                    "INSERT INTO subscriptions (subscriber_id, list_id, status, consent_source, created_at, updated_at)
                     VALUES (?, ?, 'unconfirmed', ?, ?, ?)",
                )
                .bind(id)
                .bind(list_id)
                .bind(source)
                .bind(&now)
                .bind(&now)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.classify(e))?;
                Self::event(
                    &mut *tx,
                    "subscribed",
                    Some(id),
                    Some(list_id),
                    source,
                    serde_json::json!({ "status": "unconfirmed" }),
                )
                .await
                .map_err(|e| self.classify(e))?;
            }
        }
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(PendingOutcome::Confirm {
            subscriber_id: id,
            list_id,
            nonce,
            language,
        })
    }

    /// The editions the archive may show because they were sent: at least one campaign of the
    /// edition delivered at least one message. A campaign that was only created, or whose
    /// every message failed, leaves its edition a draft.
    pub async fn sent_editions(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT DISTINCT c.edition_slug FROM campaigns c
             WHERE EXISTS (SELECT 1 FROM deliveries d
                           WHERE d.campaign_id = c.id AND d.status = 'sent')
             ORDER BY 1",
        )
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.classify(e))
    }

    /// Answers whether the database can be read at all, for `/healthz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(self.pool())
            .await
            .map(|_| ())
            .map_err(|e| self.classify(e))
    }

    /// Moves one subscription from any of `from` to `to`, writing an event of `kind` when it
    /// moved. The `WHERE status IN` makes it idempotent and race-free: two simultaneous
    /// clicks change the row once.
    async fn move_subscription(
        &self,
        subscriber_id: i64,
        list_id: i64,
        from: &[&str],
        to: SubscriptionStatus,
        kind: &str,
        source: &str,
    ) -> Result<WebOutcome, StoreError> {
        let mut tx = self.write().await?;
        let now = now();
        let from_json = serde_json::json!(from).to_string();
        let changed = sqlx::query(
            "UPDATE subscriptions SET status = ?1, updated_at = ?2,
                    confirmed_at = CASE WHEN ?1 = 'confirmed' THEN ?2 ELSE confirmed_at END,
                    unsubscribed_at = CASE WHEN ?1 = 'unsubscribed' THEN ?2 ELSE NULL END,
                    consent_source = CASE WHEN ?1 = 'unsubscribed' THEN consent_source ELSE ?3 END
             WHERE subscriber_id = ?4 AND list_id = ?5
               AND status IN (SELECT value FROM json_each(?6))",
        )
        .bind(to.as_str())
        .bind(&now)
        .bind(source)
        .bind(subscriber_id)
        .bind(list_id)
        .bind(&from_json)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?
        .rows_affected();
        if changed == 0 {
            let exists: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM subscriptions WHERE subscriber_id = ? AND list_id = ?",
            )
            .bind(subscriber_id)
            .bind(list_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
            tx.commit().await.map_err(|e| self.classify(e))?;
            return Ok(if exists.is_some() {
                WebOutcome::Unchanged
            } else {
                WebOutcome::Missing
            });
        }
        Self::event(
            &mut *tx,
            kind,
            Some(subscriber_id),
            Some(list_id),
            source,
            serde_json::json!({ "status": to.as_str() }),
        )
        .await
        .map_err(|e| self.classify(e))?;
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(WebOutcome::Changed)
    }
}
