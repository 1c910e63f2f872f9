//! Subscribers and their subscriptions: add one, read, unsubscribe, unblock, erase. (Bulk
//! import is `store::import`.)
//!
//! Every change writes an `events` row in the same transaction as the change itself, so the
//! audit log can never disagree with the data.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use sqlx::AnyConnection;

use super::{List, Store, StoreError, now};
use crate::address::Address;

/// Where a subscriber stands with one list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    /// Waiting for the person to confirm (double opt-in).
    Unconfirmed,
    /// Receives the list's editions.
    Confirmed,
    /// Left the list; never re-subscribed without new consent.
    Unsubscribed,
}

impl SubscriptionStatus {
    /// The value stored in the database and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unconfirmed => "unconfirmed",
            Self::Confirmed => "confirmed",
            Self::Unsubscribed => "unsubscribed",
        }
    }

    /// The status a new subscription to `list` starts in, unless told otherwise.
    pub fn initial_for(list: &List) -> Self {
        if list.double_opt_in {
            Self::Unconfirmed
        } else {
            Self::Confirmed
        }
    }
}

impl FromStr for SubscriptionStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "unconfirmed" => Ok(Self::Unconfirmed),
            "confirmed" => Ok(Self::Confirmed),
            "unsubscribed" => Ok(Self::Unsubscribed),
            other => Err(format!(
                "`{other}` is not a subscription status (unconfirmed, confirmed, unsubscribed)"
            )),
        }
    }
}

impl fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a subscriber may be mailed at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriberStatus {
    /// May receive the lists they subscribed to.
    Active,
    /// Never mailed (hard bounce, abuse complaint, operator's decision).
    Blocklisted,
}

impl SubscriberStatus {
    /// The value stored in the database and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Blocklisted => "blocklisted",
        }
    }
}

impl std::fmt::Display for SubscriberStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A subscriber to add from the command line.
#[derive(Debug, Clone)]
pub struct NewSubscriber {
    /// Validated address.
    pub address: Address,
    /// Display name (validated: no control characters).
    pub name: String,
    /// Preferred language (BCP 47 tag), if known.
    pub language: Option<String>,
    /// Free-form attributes for templates.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// What `add_subscriber` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum AddOutcome {
    /// A new subscriber.
    Added {
        /// Row id.
        id: i64,
    },
    /// An existing subscriber joined lists or had fields changed.
    Updated {
        /// Row id.
        id: i64,
        /// Lists they had left and were not put back on.
        kept_unsubscribed: Vec<String>,
    },
    /// Nothing to do.
    Unchanged {
        /// Row id.
        id: i64,
        /// Lists they had left and were not put back on.
        kept_unsubscribed: Vec<String>,
    },
}

/// One subscriber with their memberships, as listed, shown and exported.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Subscriber {
    /// Row id.
    pub id: i64,
    /// The address as first added, in its own case (lookups go by its lower-cased key).
    pub email: String,
    /// Display name ("" when unknown).
    pub name: String,
    /// Preferred language.
    pub language: Option<String>,
    /// The attributes as stored, JSON object text: see [`Subscriber::attributes_json`].
    #[serde(skip)]
    pub attributes: String,
    /// Whether they may be mailed at all.
    pub status: SubscriberStatus,
    /// When added.
    pub created_at: String,
    /// When last changed.
    pub updated_at: String,
    /// `list:status` pairs joined by `|`, sorted by list name.
    #[serde(skip)]
    pub memberships: Option<String>,
}

impl Subscriber {
    /// `(list, status)` pairs, sorted by list name.
    pub fn subscriptions(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .memberships
            .as_deref()
            .unwrap_or("")
            .split('|')
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.rsplit_once(':'))
            .map(|(l, s)| (l.to_string(), s.to_string()))
            .collect();
        out.sort();
        out
    }

    /// The attributes as a JSON value (an empty object if the text is somehow not JSON).
    pub fn attributes_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.attributes)
            .unwrap_or_else(|_| serde_json::Value::Object(Default::default()))
    }
}

/// One subscription in detail, for `subscribers show`.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Subscription {
    /// The list's name.
    pub list: String,
    /// Where the subscription stands.
    pub status: SubscriptionStatus,
    /// Where consent came from.
    pub consent_source: String,
    /// When the subscription was first recorded (RFC 3339, UTC).
    pub created_at: String,
    /// When confirmed.
    pub confirmed_at: Option<String>,
    /// When unsubscribed.
    pub unsubscribed_at: Option<String>,
}

/// Which subscribers `subscribers list` and `export` show.
#[derive(Debug, Clone, Default)]
pub struct SubscriberFilter {
    /// Only members of this list (any status unless `subscription` is set).
    pub list_id: Option<i64>,
    /// Only subscriptions in this state (on `list_id`, or on any list).
    pub subscription: Option<SubscriptionStatus>,
    /// Only subscribers in this state.
    pub subscriber: Option<SubscriberStatus>,
}

/// The only trace kept of an erased address: a SHA-256 of its lower-cased form.
pub fn suppression_hash(email_key: &str) -> String {
    let mut hasher = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    hasher.update(b"bulletin-erased:");
    hasher.update(email_key.as_bytes());
    let mut out = String::with_capacity(64);
    push_lower_hex(hasher.finish().as_ref(), &mut out);
    out
}

/// Appends `bytes` as lower-case hex (the form of hashes and nonces in the schema).
pub(crate) fn push_lower_hex(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
}

const SUBSCRIBER_COLUMNS: &str =
    "s.id, s.email, s.name, s.language, s.attributes, s.status, s.created_at, s.updated_at,
     (SELECT string_agg(l.name || ':' || x.status, '|')
        FROM subscriptions x JOIN lists l ON l.id = x.list_id
       WHERE x.subscriber_id = s.id) AS memberships";

impl Store {
    /// Adds a subscriber, or joins an existing one to more lists.
    ///
    /// An address that was erased is refused unless `new_consent`; a list the person left is
    /// not re-joined unless `new_consent` either.
    pub async fn add_subscriber(
        &self,
        new: &NewSubscriber,
        lists: &[List],
        status: Option<SubscriptionStatus>,
        new_consent: bool,
        source: &str,
    ) -> Result<AddOutcome, StoreError> {
        let key = new.address.key();
        let hash = suppression_hash(&key);
        let mut tx = self.write().await?;
        let erased: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM suppressions WHERE email_hash = $1")
                .bind(&hash)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.classify(e))?;
        if erased.is_some() {
            if !new_consent {
                return Err(StoreError::Erased(new.address.to_string()));
            }
            sqlx::query("DELETE FROM suppressions WHERE email_hash = $1")
                .bind(&hash)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.classify(e))?;
        }
        let now = now();
        let (id, created) = find_or_create(&mut tx, new, &key, erased.is_some(), source, &now)
            .await
            .map_err(|e| self.classify(e))?;
        let joining = Joining {
            id,
            status,
            new_consent,
            source,
            now: &now,
        };
        let (joined, kept_unsubscribed) = joining
            .join(&mut tx, lists)
            .await
            .map_err(|e| self.classify(e))?;
        let changed = created || joined;
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(match (created, changed) {
            (true, _) => AddOutcome::Added { id },
            (false, true) => AddOutcome::Updated {
                id,
                kept_unsubscribed,
            },
            (false, false) => AddOutcome::Unchanged {
                id,
                kept_unsubscribed,
            },
        })
    }

    /// The subscriber with this address (matched case-insensitively).
    pub async fn subscriber(&self, address: &Address) -> Result<Subscriber, StoreError> {
        sqlx::query_as::<_, Subscriber>(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers s WHERE s.email_key = $1"
        ))
        .bind(address.key())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.classify(e))?
        .ok_or_else(|| StoreError::SubscriberNotFound(address.to_string()))
    }

    /// A subscriber's subscriptions in detail.
    pub async fn subscriptions_of(
        &self,
        subscriber_id: i64,
    ) -> Result<Vec<Subscription>, StoreError> {
        sqlx::query_as::<_, Subscription>(
            "SELECT l.name AS list, x.status, x.consent_source, x.created_at, x.confirmed_at, x.unsubscribed_at
             FROM subscriptions x JOIN lists l ON l.id = x.list_id
             WHERE x.subscriber_id = $1 ORDER BY l.name",
        )
        .bind(subscriber_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.classify(e))
    }

    /// Up to `limit` subscribers matching `filter` with ids above `after_id`, by id.
    ///
    /// Callers page through with the last id they saw (keyset paging), so an export of a
    /// million rows never holds them all in memory, nor one read transaction open throughout.
    pub async fn subscribers_page(
        &self,
        filter: &SubscriberFilter,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<Subscriber>, StoreError> {
        sqlx::query_as::<_, Subscriber>(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers s
             WHERE s.id > $1 AND ($2 IS NULL OR s.status = $2)
               AND (($3 IS NULL AND $4 IS NULL) OR EXISTS (
                     SELECT 1 FROM subscriptions x WHERE x.subscriber_id = s.id
                        AND ($3 IS NULL OR x.list_id = $3)
                        AND ($4 IS NULL OR x.status = $4)))
             ORDER BY s.id LIMIT $5"
        ))
        .bind(after_id)
        .bind(filter.subscriber.map(SubscriberStatus::as_str))
        .bind(filter.list_id)
        .bind(filter.subscription.map(SubscriptionStatus::as_str))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.classify(e))
    }

    /// Unsubscribes from one list, or from every list when `list` is `None`. Returns the lists
    /// left (empty when there was nothing to leave).
    pub async fn unsubscribe(
        &self,
        address: &Address,
        list: Option<&List>,
        source: &str,
    ) -> Result<Vec<String>, StoreError> {
        let subscriber = self.subscriber(address).await?;
        let mut tx = self.write().await?;
        let targets: Vec<(i64, String)> = sqlx::query_as(
            "SELECT l.id, l.name FROM subscriptions x JOIN lists l ON l.id = x.list_id
             WHERE x.subscriber_id = $1 AND x.status <> 'unsubscribed' AND ($2 IS NULL OR l.id = $3)
             ORDER BY l.name",
        )
        .bind(subscriber.id)
        .bind(list.map(|l| l.id))
        .bind(list.map(|l| l.id))
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        let now = now();
        for (list_id, _) in &targets {
            set_subscription_status(
                &mut tx,
                subscriber.id,
                *list_id,
                SubscriptionStatus::Unsubscribed,
                source,
                &now,
            )
            .await
            .map_err(|e| self.classify(e))?;
        }
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(targets.into_iter().map(|(_, name)| name).collect())
    }

    /// Lifts a blocklisting: the subscriber is `active` again, with an `unblocked` event in
    /// the same transaction. Subscriptions are left exactly as they are (a list the person
    /// left stays left). Returns `false`, changing nothing, when they were not blocklisted.
    pub async fn unblock(&self, address: &Address, source: &str) -> Result<bool, StoreError> {
        let subscriber = self.subscriber(address).await?;
        let mut tx = self.write().await?;
        // Checked under the write lock: a send may blocklist them in between.
        let lifted = sqlx::query(
            "UPDATE subscribers SET status = 'active', updated_at = $1
             WHERE id = $2 AND status = 'blocklisted'",
        )
        .bind(now())
        .bind(subscriber.id)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?
        .rows_affected()
            > 0;
        if !lifted {
            return Ok(false);
        }
        Self::event(
            &mut *tx,
            "unblocked",
            Some(subscriber.id),
            None,
            source,
            serde_json::json!({}),
        )
        .await
        .map_err(|e| self.classify(e))?;
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(true)
    }

    /// Erases a subscriber's personal data (GDPR art. 17): the row and its subscriptions go,
    /// events and deliveries lose their link to the person, and a hash of the address stays so
    /// that no import adds them back without new consent.
    pub async fn erase(&self, address: &Address, source: &str) -> Result<(), StoreError> {
        let subscriber = self.subscriber(address).await?;
        let hash = suppression_hash(&address.key());
        let mut tx = self.write().await?;
        let now = now();
        sqlx::query(
            "INSERT INTO suppressions (email_hash, reason, created_at) VALUES ($1, 'erased', $2)
             ON CONFLICT (email_hash) DO NOTHING",
        )
        .bind(&hash)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        sqlx::query("DELETE FROM subscribers WHERE id = $1")
            .bind(subscriber.id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
        Self::event(
            &mut *tx,
            "erased",
            None,
            None,
            source,
            serde_json::json!({ "email_hash": hash }),
        )
        .await
        .map_err(|e| self.classify(e))?;
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(())
    }

    /// Whether an address was erased at the person's request.
    pub async fn is_erased(&self, address: &Address) -> Result<bool, StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM suppressions WHERE email_hash = $1")
                .bind(suppression_hash(&address.key()))
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.classify(e))?;
        Ok(found.is_some())
    }
}

/// The id of the subscriber with address key `key`, adding them from `new` when there is none
/// (`true` when added). A subscriber added back after an erasure gets a `reconsented` event.
async fn find_or_create(
    conn: &mut AnyConnection,
    new: &NewSubscriber,
    key: &str,
    reconsented: bool,
    source: &str,
    now: &str,
) -> Result<(i64, bool), sqlx::Error> {
    let existing: Option<i64> =
        sqlx::query_scalar("SELECT id FROM subscribers WHERE email_key = $1")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(id) = existing {
        return Ok((id, false));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO subscribers (email, email_key, name, language, attributes, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'active', $6, $7) RETURNING id",
    )
    .bind(new.address.as_str())
    .bind(key)
    .bind(&new.name)
    .bind(&new.language)
    .bind(serde_json::Value::Object(new.attributes.clone()).to_string())
    .bind(now)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let kind = if reconsented {
        "reconsented"
    } else {
        "created"
    };
    Store::event(
        &mut *conn,
        kind,
        Some(id),
        None,
        source,
        serde_json::json!({}),
    )
    .await?;
    Ok((id, true))
}

/// One subscriber joining lists from the command line (`subscribers add`).
struct Joining<'a> {
    id: i64,
    /// The status asked for; each list's initial status when `None`.
    status: Option<SubscriptionStatus>,
    /// The person asked to come back: a list they left is joined again.
    new_consent: bool,
    source: &'a str,
    now: &'a str,
}

impl Joining<'_> {
    /// Joins `lists`; returns whether anything changed, and the lists the person left earlier
    /// and stays off (without new consent).
    async fn join(
        &self,
        conn: &mut AnyConnection,
        lists: &[List],
    ) -> Result<(bool, Vec<String>), sqlx::Error> {
        let (id, source, now) = (self.id, self.source, self.now);
        let mut changed = false;
        let mut kept_unsubscribed = Vec::new();
        for list in lists {
            let current: Option<String> = sqlx::query_scalar(
                "SELECT status FROM subscriptions WHERE subscriber_id = $1 AND list_id = $2",
            )
            .bind(id)
            .bind(list.id)
            .fetch_optional(&mut *conn)
            .await?;
            let wanted = self
                .status
                .unwrap_or_else(|| SubscriptionStatus::initial_for(list));
            match current.as_deref() {
                None => {
                    insert_subscription(conn, id, list.id, wanted, source, now).await?;
                    changed = true;
                }
                Some("unsubscribed") if !self.new_consent => {
                    kept_unsubscribed.push(list.name.clone())
                }
                Some(s) if s != wanted.as_str() => {
                    set_subscription_status(conn, id, list.id, wanted, source, now).await?;
                    changed = true;
                }
                Some(_) => {}
            }
        }
        Ok((changed, kept_unsubscribed))
    }
}

pub(super) async fn insert_subscription(
    conn: &mut AnyConnection,
    subscriber_id: i64,
    list_id: i64,
    status: SubscriptionStatus,
    source: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    let confirmed_at = (status == SubscriptionStatus::Confirmed).then_some(now);
    sqlx::query(
        "INSERT INTO subscriptions (subscriber_id, list_id, status, consent_source, created_at, updated_at, confirmed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(subscriber_id)
    .bind(list_id)
    .bind(status.as_str())
    .bind(source)
    .bind(now)
    .bind(now)
    .bind(confirmed_at)
    .execute(&mut *conn)
    .await?;
    Store::event(
        &mut *conn,
        "subscribed",
        Some(subscriber_id),
        Some(list_id),
        source,
        serde_json::json!({ "status": status.as_str() }),
    )
    .await
}

/// Moves one subscription to status `?1` at time `?2` (consent source `?3` unless leaving),
/// for subscriber `?4` and list `?5`, keeping its timestamps right. The caller writes the event.
pub(super) const SET_SUBSCRIPTION_STATUS: &str =
    "UPDATE subscriptions SET status = $1, updated_at = $2,
        confirmed_at = CASE WHEN $1 = 'confirmed' THEN $2 ELSE confirmed_at END,
        unsubscribed_at = CASE WHEN $1 = 'unsubscribed' THEN $2 ELSE NULL END,
        consent_source = CASE WHEN $1 = 'unsubscribed' THEN consent_source ELSE $3 END
     WHERE subscriber_id = $4 AND list_id = $5";

/// Moves one subscription to `status` and writes the event that records it.
pub(super) async fn set_subscription_status(
    conn: &mut AnyConnection,
    subscriber_id: i64,
    list_id: i64,
    status: SubscriptionStatus,
    source: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(SET_SUBSCRIPTION_STATUS)
        .bind(status.as_str())
        .bind(now)
        .bind(source)
        .bind(subscriber_id)
        .bind(list_id)
        .execute(&mut *conn)
        .await?;
    let kind = match status {
        SubscriptionStatus::Unsubscribed => "unsubscribed",
        SubscriptionStatus::Confirmed => "confirmed",
        SubscriptionStatus::Unconfirmed => "subscribed",
    };
    Store::event(
        &mut *conn,
        kind,
        Some(subscriber_id),
        Some(list_id),
        source,
        serde_json::json!({ "status": status.as_str() }),
    )
    .await
}

super::text_enum!(SubscriptionStatus: Unconfirmed, Confirmed, Unsubscribed);
super::text_enum!(SubscriberStatus: Active, Blocklisted);
