//! The queries behind the public web pages (`bulletin serve`): look up what a signed link
//! names, unsubscribe, undo, leave every list, and the double opt-in of the subscription form.
//!
//! Everything here addresses a subscriber by id, because that is what a token carries; the
//! address never travels in a link.
//!
//! An opt-out is never reversed by an old link. The undo of an unsubscribe and the confirmation
//! of a sign-up are each bound to one `events` row (the unsubscribe, the sign-up request), and
//! act only while that row is still the subscription's latest change: any later change, by any
//! route, makes the link stale. Blocklisted subscribers are never re-subscribed from the web,
//! and erased ones no longer exist. Every change writes an `events` row in the same
//! transaction, with the source the caller names (`one-click`, `page`, `form`), and nothing is
//! written when nothing changes, so that a mail scanner or a user clicking twice leaves one
//! event, not two.

use super::subscribers::SET_SUBSCRIPTION_STATUS;
use super::{Flag, Store, StoreError, now, suppression_hash, timestamp};
use crate::address::Address;
use crate::store::{SubscriberStatus, SubscriptionStatus};

/// What a signed link points at: enough to verify the token and to draw the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkTarget {
    /// Mixed into the token's MAC; read before trusting the token.
    pub nonce: String,
    /// The subscriber's preferred language, for the page.
    pub language: Option<String>,
    /// The list's internal name: for links to the form only, never shown to people.
    pub list_name: String,
    /// Whether the public form offers the list.
    pub list_public: bool,
    /// The list's display names and descriptions, for the page's words. Left empty here:
    /// the web service reads them only once the link has verified, so that a forged link
    /// costs no more than before ([`Store::list_texts`]).
    pub list_texts: Vec<super::ListText>,
    /// Where the subscriber stands with the list; `None` when they never joined it.
    pub status: Option<SubscriptionStatus>,
    /// Other lists the subscriber still receives (confirmed or unconfirmed).
    pub other_active_lists: i64,
}

/// What a web action did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebOutcome {
    /// The state changed, and this event records it.
    Changed {
        /// The `events` row written.
        event_id: i64,
    },
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
        /// The list the confirmation link is for.
        list_id: i64,
        /// The subscriber's token nonce, to sign the confirm link.
        nonce: String,
        /// The subscriber's language, for the mail.
        language: Option<String>,
        /// The event recording this request; the confirm link is bound to it.
        event_id: i64,
    },
    /// Nothing to do (already confirmed, blocklisted, erased): the page says the same anyway.
    Nothing,
}

/// What following a link bound to an event (undo, confirm) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundOutcome {
    /// Done: the subscription changed, and an event records it.
    Changed,
    /// Already in the state the link asks for: nothing written.
    AlreadyDone,
    /// The subscription changed since the link's event (or the subscriber is blocklisted):
    /// the link does nothing; only a fresh sign-up can subscribe again.
    Stale,
    /// The subscriber or subscription does not exist (any more).
    Missing,
}

/// The kind of event that records a sign-up request for a subscription that already exists
/// (left earlier, or still unconfirmed): the new confirm link is bound to it.
const CONFIRM_REQUESTED: &str = "confirm_requested";

/// nonce, language, list name, list public, subscription status, other active lists.
type LinkRow = (
    String,
    Option<String>,
    Option<String>,
    Option<Flag>,
    Option<String>,
    i64,
);

impl Store {
    /// The subscriber's nonce and the subscription a link names, or `None` when the
    /// subscriber does not exist (any more).
    pub async fn link_target(
        &self,
        subscriber_id: i64,
        list_id: i64,
    ) -> Result<Option<LinkTarget>, StoreError> {
        let row: Option<LinkRow> = sqlx::query_as(
            "SELECT s.token_nonce, s.language, l.name, CASE WHEN l.public THEN 1 ELSE 0 END, x.status,
                        (SELECT COUNT(*) FROM subscriptions o
                          WHERE o.subscriber_id = s.id AND o.list_id <> $2
                            AND o.status <> 'unsubscribed')
                 FROM subscribers s
                 LEFT JOIN lists l ON l.id = $2
                 LEFT JOIN subscriptions x ON x.subscriber_id = s.id AND x.list_id = $2
                 WHERE s.id = $1",
        )
        .bind(subscriber_id)
        .bind(list_id)
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.classify(e))?;
        let Some((nonce, language, list_name, public, status, others)) = row else {
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
            list_public: public.is_some_and(bool::from),
            list_texts: Vec::new(),
            status: status.and_then(|s| s.parse().ok()),
            other_active_lists: others,
        }))
    }

    /// Leaves one list (the RFC 8058 one-click POST, or the page's button). The event records
    /// the status left (`from`), which an undo restores. Writes nothing when already left, so
    /// that a mail scanner or a user clicking twice leaves one event.
    pub async fn unsubscribe_by_id(
        &self,
        subscriber_id: i64,
        list_id: i64,
        source: &str,
    ) -> Result<WebOutcome, StoreError> {
        let mut tx = self.write().await?;
        let Some(state) = self.bound_state(&mut tx, subscriber_id, list_id).await? else {
            return Ok(WebOutcome::Missing);
        };
        if state.status == SubscriptionStatus::Unsubscribed {
            return Ok(WebOutcome::Unchanged);
        }
        self.set_status(
            &mut tx,
            subscriber_id,
            list_id,
            SubscriptionStatus::Unsubscribed,
            source,
        )
        .await?;
        let event_id = Self::recorded_event(
            &mut *tx,
            "unsubscribed",
            Some(subscriber_id),
            Some(list_id),
            source,
            serde_json::json!({ "status": "unsubscribed", "from": state.status.as_str() }),
        )
        .await
        .map_err(|e| self.classify(e))?;
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(WebOutcome::Changed { event_id })
    }

    /// Undoes the unsubscribe recorded by event `unsubscribed_event`, from the page that made
    /// it: the subscription goes back to what it was before (confirmed, or still unconfirmed).
    /// Only while that unsubscribe is the subscription's latest change and the subscriber is
    /// not blocklisted; a later opt-out by any route is never undone.
    pub async fn undo_unsubscribe(
        &self,
        subscriber_id: i64,
        list_id: i64,
        unsubscribed_event: i64,
        source: &str,
    ) -> Result<BoundOutcome, StoreError> {
        let mut tx = self.write().await?;
        let Some(state) = self.bound_state(&mut tx, subscriber_id, list_id).await? else {
            return Ok(BoundOutcome::Missing);
        };
        let detail = |d: &str| serde_json::from_str::<serde_json::Value>(d).ok();
        // A second press of the same undo button.
        let repeated = state.latest.as_ref().is_some_and(|(_, kind, d)| {
            kind == "resubscribed"
                && detail(d).and_then(|v| v.get("undoes")?.as_i64()) == Some(unsubscribed_event)
        });
        if repeated {
            return Ok(BoundOutcome::AlreadyDone);
        }
        // What the subscription was before the unsubscribe, as the event recorded it.
        let before = state
            .latest
            .as_ref()
            .filter(|(id, kind, _)| *id == unsubscribed_event && kind == "unsubscribed")
            .and_then(|(_, _, d)| {
                detail(d)?
                    .get("from")?
                    .as_str()?
                    .parse::<SubscriptionStatus>()
                    .ok()
            })
            .filter(|s| *s != SubscriptionStatus::Unsubscribed);
        let (Some(before), true, SubscriptionStatus::Unsubscribed) =
            (before, state.active, state.status)
        else {
            return Ok(BoundOutcome::Stale);
        };
        self.set_status(&mut tx, subscriber_id, list_id, before, source)
            .await?;
        Self::event(
            &mut *tx,
            "resubscribed",
            Some(subscriber_id),
            Some(list_id),
            source,
            serde_json::json!({ "status": before.as_str(), "undoes": unsubscribed_event }),
        )
        .await
        .map_err(|e| self.classify(e))?;
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(BoundOutcome::Changed)
    }

    /// Confirms a subscription (double opt-in) from the link that the sign-up request
    /// `request_event` sent. A subscription the person had left is confirmed too: the form and
    /// the confirm link together are new consent. But only while that request is still the
    /// subscription's latest change: a link replayed after an unsubscribe (or after a newer
    /// request) does nothing.
    pub async fn confirm_subscription(
        &self,
        subscriber_id: i64,
        list_id: i64,
        request_event: i64,
        source: &str,
    ) -> Result<BoundOutcome, StoreError> {
        let mut tx = self.write().await?;
        let Some(state) = self.bound_state(&mut tx, subscriber_id, list_id).await? else {
            return Ok(BoundOutcome::Missing);
        };
        if state.status == SubscriptionStatus::Confirmed {
            return Ok(BoundOutcome::AlreadyDone);
        }
        let current = state.latest.as_ref().map(|(id, _, _)| *id) == Some(request_event);
        if !current || !state.active {
            return Ok(BoundOutcome::Stale);
        }
        self.set_status(
            &mut tx,
            subscriber_id,
            list_id,
            SubscriptionStatus::Confirmed,
            source,
        )
        .await?;
        Self::event(
            &mut *tx,
            "confirmed",
            Some(subscriber_id),
            Some(list_id),
            source,
            serde_json::json!({ "status": "confirmed", "request": request_event }),
        )
        .await
        .map_err(|e| self.classify(e))?;
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(BoundOutcome::Changed)
    }

    /// Where a subscription stands, for a link bound to an event: its status, whether the
    /// subscriber is active (not blocklisted), and its latest event (id, kind, detail).
    async fn bound_state(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        subscriber_id: i64,
        list_id: i64,
    ) -> Result<Option<BoundState>, StoreError> {
        let row: Option<(SubscriptionStatus, SubscriberStatus)> = sqlx::query_as(
            "SELECT x.status, s.status FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id
             WHERE x.subscriber_id = $1 AND x.list_id = $2",
        )
        .bind(subscriber_id)
        .bind(list_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| self.classify(e))?;
        let Some((status, subscriber_status)) = row else {
            return Ok(None);
        };
        let latest: Option<(i64, String, String)> = sqlx::query_as(
            "SELECT id, kind, detail FROM events WHERE subscriber_id = $1 AND list_id = $2
             ORDER BY id DESC LIMIT 1",
        )
        .bind(subscriber_id)
        .bind(list_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| self.classify(e))?;
        Ok(Some(BoundState {
            status,
            active: subscriber_status == SubscriberStatus::Active,
            latest,
        }))
    }

    /// Sets one subscription's status and its timestamps (no event: the caller writes it).
    async fn set_status(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        subscriber_id: i64,
        list_id: i64,
        to: SubscriptionStatus,
        source: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(SET_SUBSCRIPTION_STATUS)
            .bind(to.as_str())
            .bind(now())
            .bind(source)
            .bind(subscriber_id)
            .bind(list_id)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.classify(e))?;
        Ok(())
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
            "UPDATE subscriptions SET status = 'unsubscribed', updated_at = $1, unsubscribed_at = $1
             WHERE subscriber_id = $2 AND status <> 'unsubscribed'
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
    ///
    /// At most one request per address in `cooldown_secs` (0: no limit) gets anywhere, the
    /// others get [`PendingOutcome::Nothing`]. The cooldown is taken for every address alike,
    /// known or not, so that neither the work done nor its outcome tells them apart.
    pub async fn subscribe_pending(
        &self,
        address: &Address,
        list_id: i64,
        language: Option<&str>,
        source: &str,
        cooldown_secs: i64,
    ) -> Result<PendingOutcome, StoreError> {
        let key = address.key();
        let hash = suppression_hash(&key);
        let mut tx = self.write().await?;
        if cooldown_secs > 0 && !self.take_cooldown(&mut tx, &hash, cooldown_secs).await? {
            tx.commit().await.map_err(|e| self.classify(e))?;
            return Ok(PendingOutcome::Nothing);
        }
        let erased: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM suppressions WHERE email_hash = $1")
                .bind(&hash)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.classify(e))?;
        if erased.is_some() {
            tx.commit().await.map_err(|e| self.classify(e))?;
            return Ok(PendingOutcome::Nothing);
        }
        let now = now();
        let Some((id, nonce, language)) = self
            .form_subscriber(&mut tx, address, &key, language, source, &now)
            .await?
        else {
            // Committed like every other refusal, so the cooldown holds for blocklisted
            // addresses too and their answer costs the same.
            tx.commit().await.map_err(|e| self.classify(e))?;
            return Ok(PendingOutcome::Nothing);
        };
        let status: Option<SubscriptionStatus> = sqlx::query_scalar(
            "SELECT status FROM subscriptions WHERE subscriber_id = $1 AND list_id = $2",
        )
        .bind(id)
        .bind(list_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        let event_id = match status {
            Some(SubscriptionStatus::Confirmed) => {
                tx.commit().await.map_err(|e| self.classify(e))?;
                return Ok(PendingOutcome::Nothing);
            }
            // Left earlier, or still pending: the status stays as it is until the person
            // confirms, and the new link is bound to this request (older links go stale).
            Some(status) => Self::recorded_event(
                &mut *tx,
                CONFIRM_REQUESTED,
                Some(id),
                Some(list_id),
                source,
                serde_json::json!({ "status": status.as_str() }),
            )
            .await
            .map_err(|e| self.classify(e))?,
            None => {
                sqlx::query(
                    "INSERT INTO subscriptions (subscriber_id, list_id, status, consent_source, created_at, updated_at)
                     VALUES ($1, $2, 'unconfirmed', $3, $4, $5)",
                )
                .bind(id)
                .bind(list_id)
                .bind(source)
                .bind(&now)
                .bind(&now)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.classify(e))?;
                Self::recorded_event(
                    &mut *tx,
                    "subscribed",
                    Some(id),
                    Some(list_id),
                    source,
                    serde_json::json!({ "status": "unconfirmed" }),
                )
                .await
                .map_err(|e| self.classify(e))?
            }
        };
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(PendingOutcome::Confirm {
            subscriber_id: id,
            list_id,
            nonce,
            language,
            event_id,
        })
    }

    /// The subscriber a form request is for: found by address, or created with no name and
    /// no lists. `None` for a blocklisted one, who gets nothing from the form. Returns (id,
    /// token nonce, language).
    async fn form_subscriber(
        &self,
        tx: &mut sqlx::AnyConnection,
        address: &Address,
        key: &str,
        language: Option<&str>,
        source: &str,
        now: &str,
    ) -> Result<Option<(i64, String, Option<String>)>, StoreError> {
        let existing: Option<(i64, SubscriberStatus, String, Option<String>)> = sqlx::query_as(
            "SELECT id, status, token_nonce, language FROM subscribers WHERE email_key = $1",
        )
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        match existing {
            Some((_, SubscriberStatus::Blocklisted, _, _)) => Ok(None),
            Some((id, _, nonce, lang)) => Ok(Some((id, nonce, lang))),
            None => {
                let (id, nonce): (i64, String) = sqlx::query_as(
                    "INSERT INTO subscribers (email, email_key, name, language, attributes, status, created_at, updated_at)
                     VALUES ($1, $2, '', $3, '{}', 'active', $4, $5) RETURNING id, token_nonce",
                )
                .bind(address.as_str())
                .bind(key)
                .bind(language)
                .bind(now)
                .bind(now)
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
                Ok(Some((id, nonce, language.map(str::to_string))))
            }
        }
    }

    /// Records a confirmation request for the address hashed `hash`, unless one was recorded
    /// less than `cooldown_secs` ago; says whether this one may proceed. Expired rows are
    /// deleted first, so a row that remains is a recent one.
    async fn take_cooldown(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        hash: &str,
        cooldown_secs: i64,
    ) -> Result<bool, StoreError> {
        let now = time::OffsetDateTime::now_utc();
        let cutoff = now - time::Duration::seconds(cooldown_secs);
        sqlx::query("DELETE FROM confirmation_cooldowns WHERE requested_at <= $1")
            .bind(timestamp(cutoff))
            .execute(&mut **tx)
            .await
            .map_err(|e| self.classify(e))?;
        let taken = sqlx::query(
            "INSERT INTO confirmation_cooldowns (email_hash, requested_at) VALUES ($1, $2)
             ON CONFLICT (email_hash) DO NOTHING",
        )
        .bind(hash)
        .bind(timestamp(now))
        .execute(&mut **tx)
        .await
        .map_err(|e| self.classify(e))?
        .rows_affected();
        Ok(taken == 1)
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
}

/// Where a subscription stands, for a link bound to an event.
struct BoundState {
    status: SubscriptionStatus,
    /// Not blocklisted.
    active: bool,
    /// The subscription's latest event: id, kind, detail.
    latest: Option<(i64, String, String)>,
}
