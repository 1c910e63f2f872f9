//! Subscribers and their subscriptions: add, import in batches, read, unsubscribe, erase.
//!
//! Every change writes an `events` row in the same transaction as the change itself, so the
//! audit log can never disagree with the data.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};

use super::{List, Store, StoreError, col, now};
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
    /// Address.
    pub email: String,
    /// Display name ("" when unknown).
    pub name: String,
    /// Preferred language.
    pub language: Option<String>,
    /// JSON object text.
    #[serde(skip)]
    pub attributes: String,
    /// `active` or `blocklisted`.
    pub status: String,
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
    /// The list.
    pub list: String,
    /// unconfirmed, confirmed, unsubscribed.
    pub status: String,
    /// Where consent came from.
    pub consent_source: String,
    /// When subscribed.
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

/// One validated CSV row, ready for the database.
#[derive(Debug, Clone)]
pub struct ImportRecord {
    /// Line of the file where the row starts, for messages.
    pub line: u64,
    /// Validated address.
    pub address: Address,
    /// `address.key()`, computed once while parsing (off the database's critical path).
    pub key: String,
    /// Name, when the file has a `name` column.
    pub name: Option<String>,
    /// Language, when the file has a `lang` column and the cell is not empty.
    pub language: Option<String>,
    /// Attributes from the `attributes` column and any extra columns.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// `attributes` as the JSON text stored in the database, serialised while parsing.
    pub attributes_json: String,
    /// Lists to join, with an explicit status when the file gives one (`news:unconfirmed`).
    pub lists: Vec<(Arc<List>, Option<SubscriptionStatus>)>,
}

/// How an import treats what is already in the database.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Overwrite name, language and attributes of existing subscribers.
    pub update: bool,
    /// Do everything in a transaction and roll it back.
    pub dry_run: bool,
    /// Consent source and event source: `import:<file>`.
    pub source: String,
}

/// What one batch (or a whole import) did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// New subscribers.
    pub added: u64,
    /// Existing subscribers that changed or joined lists.
    pub updated: u64,
    /// Rows that matched the database already.
    pub unchanged: u64,
    /// Rows refused before reaching the database (bad address, duplicate, ...).
    pub rejected: u64,
    /// Rows for addresses erased at the person's request: not added back.
    pub suppressed: u64,
    /// Per-row remarks `(line, message)`: rejections, suppressions, kept unsubscribes.
    pub notes: Vec<(u64, String)>,
}

impl ImportReport {
    /// Adds another batch's counts and notes.
    pub fn absorb(&mut self, other: ImportReport) {
        self.added += other.added;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.rejected += other.rejected;
        self.suppressed += other.suppressed;
        self.notes.extend(other.notes);
    }
}

/// The only trace kept of an erased address: a SHA-256 of its lower-cased form.
pub fn suppression_hash(email_key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"bulletin-erased:");
    hasher.update(email_key.as_bytes());
    let mut out = String::with_capacity(64);
    push_lower_hex(&hasher.finalize(), &mut out);
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
     (SELECT GROUP_CONCAT(l.name || ':' || x.status, '|')
        FROM subscriptions x JOIN lists l ON l.id = x.list_id
       WHERE x.subscriber_id = s.id) AS memberships";

#[derive(Debug)]
struct Existing {
    id: i64,
    name: String,
    language: Option<String>,
    attributes: String,
}

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
            sqlx::query_scalar("SELECT 1 FROM suppressions WHERE email_hash = ?")
                .bind(&hash)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.classify(e))?;
        if erased.is_some() {
            if !new_consent {
                return Err(StoreError::Erased(new.address.to_string()));
            }
            sqlx::query("DELETE FROM suppressions WHERE email_hash = ?")
                .bind(&hash)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.classify(e))?;
        }
        let now = now();
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM subscribers WHERE email_key = ?")
                .bind(&key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.classify(e))?;
        let (id, created) = match existing {
            Some(id) => (id, false),
            None => {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO subscribers (email, email_key, name, language, attributes, status, created_at, updated_at)
                     VALUES (?, ?, ?, ?, ?, 'active', ?, ?) RETURNING id",
                )
                .bind(new.address.as_str())
                .bind(&key)
                .bind(&new.name)
                .bind(&new.language)
                .bind(serde_json::Value::Object(new.attributes.clone()).to_string())
                .bind(&now)
                .bind(&now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.classify(e))?;
                let kind = if erased.is_some() {
                    "reconsented"
                } else {
                    "created"
                };
                Self::event(
                    &mut *tx,
                    kind,
                    Some(id),
                    None,
                    source,
                    serde_json::json!({}),
                )
                .await
                .map_err(|e| self.classify(e))?;
                (id, true)
            }
        };
        let mut changed = created;
        let mut kept_unsubscribed = Vec::new();
        for list in lists {
            let current: Option<String> = sqlx::query_scalar(
                "SELECT status FROM subscriptions WHERE subscriber_id = ? AND list_id = ?",
            )
            .bind(id)
            .bind(list.id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
            let wanted = status.unwrap_or_else(|| SubscriptionStatus::initial_for(list));
            match current.as_deref() {
                None => {
                    insert_subscription(&mut tx, id, list.id, wanted, source, &now)
                        .await
                        .map_err(|e| self.classify(e))?;
                    changed = true;
                }
                Some("unsubscribed") if !new_consent => kept_unsubscribed.push(list.name.clone()),
                Some(s) if s != wanted.as_str() => {
                    set_subscription_status(&mut tx, id, list.id, wanted, source, &now)
                        .await
                        .map_err(|e| self.classify(e))?;
                    changed = true;
                }
                Some(_) => {}
            }
        }
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
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers s WHERE s.email_key = ?"
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
             WHERE x.subscriber_id = ? ORDER BY l.name",
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
             WHERE s.id > ?1 AND (?2 IS NULL OR s.status = ?2)
               AND ((?3 IS NULL AND ?4 IS NULL) OR EXISTS (
                     SELECT 1 FROM subscriptions x WHERE x.subscriber_id = s.id
                        AND (?3 IS NULL OR x.list_id = ?3)
                        AND (?4 IS NULL OR x.status = ?4)))
             ORDER BY s.id LIMIT ?5"
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
             WHERE x.subscriber_id = ? AND x.status <> 'unsubscribed' AND (? IS NULL OR l.id = ?)
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
            "UPDATE subscribers SET status = 'active', updated_at = ?
             WHERE id = ? AND status = 'blocklisted'",
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
            "INSERT INTO suppressions (email_hash, reason, created_at) VALUES (?, 'erased', ?)
             ON CONFLICT (email_hash) DO NOTHING",
        )
        .bind(&hash)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        sqlx::query("DELETE FROM subscribers WHERE id = ?")
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
            sqlx::query_scalar("SELECT 1 FROM suppressions WHERE email_hash = ?")
                .bind(suppression_hash(&address.key()))
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.classify(e))?;
        Ok(found.is_some())
    }

    /// Starts a bulk import: see [`Importer`].
    pub async fn importer(&self) -> Result<Importer, StoreError> {
        let conn = self.pool.acquire().await.map_err(|e| self.classify(e))?;
        let conn = UncheckedForeignKeys::switch_off(conn)
            .await
            .map_err(|e| self.classify(e))?;
        Ok(Importer {
            store: self.clone(),
            conn,
        })
    }
}

/// A bulk import in progress: one connection of the pool, held from the first batch to
/// [`Importer::finish`], that writes batch after batch.
///
/// SQLite's per-row foreign-key checks are off on that connection, as bulk loaders do
/// (`pg_restore`, `mysqldump`'s `FOREIGN_KEY_CHECKS=0`): they cost a third of the
/// subscriptions and events inserts, and here they cannot fail. Every subscriber id written
/// comes from `subscribers` inside the same transaction, and the lists are checked to exist
/// under the same write lock first (`lists_still_exist`), so no row can point at nothing.
/// The setting is switched once for the whole import, not per batch, because changing it
/// makes SQLite re-prepare every cached statement. The connection goes back to the pool only
/// with the checks on again; dropped early (an error), it is closed instead.
pub struct Importer {
    store: Store,
    conn: UncheckedForeignKeys,
}

impl Importer {
    /// Writes one batch of imported rows in one transaction (rolled back on a dry run).
    ///
    /// The batch is read with `IN (...)`-style queries and written with multi-row and
    /// set-based inserts, so a batch of a few thousand rows costs a handful of statements
    /// rather than several per row.
    pub async fn import_batch(
        &mut self,
        records: &[ImportRecord],
        options: &ImportOptions,
    ) -> Result<ImportReport, StoreError> {
        let store = &self.store;
        let nonces = token_nonces(records.len())?;
        let mut tx = self
            .conn
            .connection()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| store.classify(e))?;
        lists_still_exist(&mut tx, records)
            .await
            .map_err(|e| match e {
                ListCheck::Gone(name) => StoreError::ListNotFound {
                    name,
                    hint: "; it was removed while the import ran: create it again and re-run the import (rows already imported are kept and not duplicated)".into(),
                },
                ListCheck::Database(e) => store.classify(e),
            })?;
        let report = import_in_transaction(&mut tx, records, &nonces, options)
            .await
            .map_err(|e| store.classify(e))?;
        if options.dry_run {
            tx.rollback().await.map_err(|e| store.classify(e))?;
        } else {
            tx.commit().await.map_err(|e| store.classify(e))?;
        }
        Ok(report)
    }

    /// Ends the import, handing the connection back to the pool with its checks on.
    pub async fn finish(self) -> Result<(), StoreError> {
        let store = self.store;
        self.conn.switch_on().await.map_err(|e| store.classify(e))
    }
}

/// A pooled connection with SQLite's foreign-key checks off, for one bulk import.
///
/// `PRAGMA foreign_keys` is a connection setting, so a connection must never go back to the
/// pool with the checks off: `switch_on` turns them on again, and if that fails, or the guard
/// is dropped before (an error or a cancelled task), the connection is detached from the pool
/// and closed instead.
struct UncheckedForeignKeys {
    conn: Option<sqlx::pool::PoolConnection<Sqlite>>,
}

impl UncheckedForeignKeys {
    async fn switch_off(mut conn: sqlx::pool::PoolConnection<Sqlite>) -> Result<Self, sqlx::Error> {
        // Outside any transaction (SQLite ignores the pragma inside one): a pooled connection
        // never holds one open between uses.
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&mut *conn)
            .await?;
        Ok(Self { conn: Some(conn) })
    }

    fn connection(&mut self) -> &mut SqliteConnection {
        // `conn` is `Some` from `switch_off` until `switch_on` or drop take it.
        self.conn
            .as_deref_mut()
            .expect("connection present until switched on")
    }

    async fn switch_on(mut self) -> Result<(), sqlx::Error> {
        if let Some(mut conn) = self.conn.take() {
            if let Err(e) = sqlx::query("PRAGMA foreign_keys = ON")
                .execute(&mut *conn)
                .await
            {
                drop(conn.detach());
                return Err(e);
            }
        }
        Ok(())
    }
}

impl Drop for UncheckedForeignKeys {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Closed rather than returned with the checks still off.
            drop(conn.detach());
        }
    }
}

/// Why `lists_still_exist` said no.
enum ListCheck {
    /// This list was removed since the import read the list names.
    Gone(String),
    /// The query itself failed.
    Database(sqlx::Error),
}

/// Checks, under the batch's write lock, that every list the batch joins still exists: the
/// one foreign key of an import that does not come from the transaction's own rows.
async fn lists_still_exist(
    conn: &mut SqliteConnection,
    records: &[ImportRecord],
) -> Result<(), ListCheck> {
    let mut lists: Vec<&List> = records
        .iter()
        .flat_map(|r| r.lists.iter().map(|(list, _)| list.as_ref()))
        .collect();
    lists.sort_by_key(|l| l.id);
    lists.dedup_by_key(|l| l.id);
    for list in lists {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM lists WHERE id = ?")
            .bind(list.id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(ListCheck::Database)?;
        if found.is_none() {
            return Err(ListCheck::Gone(list.name.clone()));
        }
    }
    Ok(())
}

async fn insert_subscription(
    conn: &mut SqliteConnection,
    subscriber_id: i64,
    list_id: i64,
    status: SubscriptionStatus,
    source: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    let confirmed_at = (status == SubscriptionStatus::Confirmed).then_some(now);
    sqlx::query(
        "INSERT INTO subscriptions (subscriber_id, list_id, status, consent_source, created_at, updated_at, confirmed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
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
    "UPDATE subscriptions SET status = ?1, updated_at = ?2,
        confirmed_at = CASE WHEN ?1 = 'confirmed' THEN ?2 ELSE confirmed_at END,
        unsubscribed_at = CASE WHEN ?1 = 'unsubscribed' THEN ?2 ELSE NULL END,
        consent_source = CASE WHEN ?1 = 'unsubscribed' THEN consent_source ELSE ?3 END
     WHERE subscriber_id = ?4 AND list_id = ?5";

async fn set_subscription_status(
    conn: &mut SqliteConnection,
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

/// One subscriber new to the database, as bound to the multi-row insert below.
struct NewRow<'a> {
    id: i64,
    nonce: &'a str,
    email: &'a str,
    key: &'a str,
    name: &'a str,
    language: Option<&'a str>,
    attributes: &'a str,
}

/// The lists a new subscriber joins, with the status on each. A run of new subscribers with
/// the same memberships has consecutive ids, so their subscriptions and events are written by
/// one `INSERT ... SELECT` over the id range instead of row by row.
type Memberships = Vec<(i64, SubscriptionStatus)>;

/// One subscription (and its event) of an existing subscriber joining a list.
struct JoinRow {
    id: i64,
    list: i64,
    status: SubscriptionStatus,
}

/// One `events` row of a batch that is not a subscription.
struct EventRow {
    id: i64,
    list: Option<i64>,
    kind: &'static str,
    detail: String,
}

/// Reads and writes a whole batch with a handful of statements.
///
/// Each statement binds one parameter, a JSON array of the batch's rows, and SQLite unpacks it
/// with `json_each`: binding thousands of parameters one by one through the driver cost more
/// than SQLite's own work (measured: 34k rows/s before, see the import benchmark). Rows refer
/// to their subscriber by id: new subscribers get theirs here, counting up from the largest id,
/// which is safe because the transaction holds SQLite's write lock from its first statement
/// (`BEGIN IMMEDIATE`), so nothing else can insert meanwhile. (PostgreSQL has the same shape
/// with `jsonb_array_elements`, and would take ids from its sequence instead.)
async fn import_in_transaction(
    conn: &mut SqliteConnection,
    records: &[ImportRecord],
    nonces: &str,
    options: &ImportOptions,
) -> Result<ImportReport, sqlx::Error> {
    let mut report = ImportReport::default();
    let now = now();
    let keys: Vec<&str> = records.iter().map(|r| r.key.as_str()).collect();

    // Who is known already, and who was erased: one pass over the batch.
    // Most lists never had anyone erased: skip that lookup when there is nothing to find.
    let any_erased: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM suppressions)")
        .fetch_one(&mut *conn)
        .await?;
    // Arrays of plain strings: json_each hands scalars over without re-encoding them.
    let mut erased = vec![false; records.len()];
    if any_erased {
        let hashes: Vec<String> = keys.iter().map(|k| suppression_hash(k)).collect();
        let rows = sqlx::query(
            "SELECT j.key AS idx FROM json_each(?1) j JOIN suppressions sp ON sp.email_hash = j.value",
        )
        .bind(json(&hashes)?)
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            erased[batch_index(&row)?] = true;
        }
    }
    // Both lookups come back as one JSON array each rather than a row per subscriber: the
    // driver hands rows over one at a time through a channel, which cost more than the
    // lookups themselves when a file is imported again (every row already known).
    let probe = if options.update {
        "SELECT json_group_array(json_array(j.key, s.id, s.name, s.language, s.attributes))
         FROM json_each(?1) j JOIN subscribers s ON s.email_key = j.value"
    } else {
        // Without --update the current fields are never compared: not worth reading.
        "SELECT json_group_array(json_array(j.key, s.id, '', NULL, '{}'))
         FROM json_each(?1) j JOIN subscribers s ON s.email_key = j.value"
    };
    let found: String = sqlx::query_scalar(probe)
        .bind(json(&keys)?)
        .fetch_one(&mut *conn)
        .await?;
    let found: Vec<(usize, i64, String, Option<String>, String)> = from_json(&found)?;
    let mut existing: Vec<Option<Existing>> = (0..records.len()).map(|_| None).collect();
    for (idx, id, name, language, attributes) in found {
        if let Some(slot) = existing.get_mut(idx) {
            *slot = Some(Existing {
                id,
                name,
                language,
                attributes,
            });
        }
    }
    let mut memberships: HashMap<(i64, i64), String> = HashMap::new();
    let ids: Vec<i64> = existing.iter().flatten().map(|e| e.id).collect();
    if !ids.is_empty() {
        let found: String = sqlx::query_scalar(
            "SELECT json_group_array(json_array(subscriber_id, list_id, status)) FROM subscriptions
             WHERE subscriber_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(json(&ids)?)
        .fetch_one(&mut *conn)
        .await?;
        let found: Vec<(i64, i64, String)> = from_json(&found)?;
        for (subscriber_id, list_id, status) in found {
            memberships.insert((subscriber_id, list_id), status);
        }
    }

    // Decide, row by row, then write in bulk.
    let mut fresh: Vec<(usize, Memberships)> = Vec::new();
    let mut joins: Vec<JoinRow> = Vec::new();
    let mut events: Vec<EventRow> = Vec::new();
    let mut updates: Vec<(i64, &ImportRecord, &str)> = Vec::new();
    let mut status_changes: Vec<(i64, i64, SubscriptionStatus)> = Vec::new();

    for (index, record) in records.iter().enumerate() {
        if erased[index] {
            report.suppressed += 1;
            report.notes.push((
                record.line,
                format!(
                    "{} was erased at the person's request; not added back (they must subscribe again themselves)",
                    record.address
                ),
            ));
            continue;
        }
        match &existing[index] {
            None => {
                let memberships = record
                    .lists
                    .iter()
                    .map(|(list, status)| {
                        (
                            list.id,
                            status.unwrap_or_else(|| SubscriptionStatus::initial_for(list)),
                        )
                    })
                    .collect();
                fresh.push((index, memberships));
                report.added += 1;
            }
            Some(current) => {
                let mut changed_fields = Vec::new();
                if options.update {
                    if record.name.as_ref().is_some_and(|n| *n != current.name) {
                        changed_fields.push("name");
                    }
                    if record.language.is_some() && record.language != current.language {
                        changed_fields.push("language");
                    }
                    let same_attributes =
                        serde_json::from_str::<serde_json::Value>(&current.attributes)
                            .map(|v| v == serde_json::Value::Object(record.attributes.clone()))
                            .unwrap_or(false);
                    if !same_attributes {
                        changed_fields.push("attributes");
                    }
                }
                let mut joined = false;
                let mut kept = Vec::new();
                for (list, status) in &record.lists {
                    match memberships.get(&(current.id, list.id)).map(String::as_str) {
                        None => {
                            joins.push(JoinRow {
                                id: current.id,
                                list: list.id,
                                status: status
                                    .unwrap_or_else(|| SubscriptionStatus::initial_for(list)),
                            });
                            joined = true;
                        }
                        Some("unsubscribed") => kept.push(list.name.as_str()),
                        Some(now_status) => {
                            // An explicit status in the file (from an export) is restored.
                            if let Some(wanted) = status
                                && wanted.as_str() != now_status
                            {
                                status_changes.push((current.id, list.id, *wanted));
                                joined = true;
                            }
                        }
                    }
                }
                if !kept.is_empty() {
                    report.notes.push((
                        record.line,
                        format!(
                            "{} unsubscribed from {} earlier; left unsubscribed",
                            record.address,
                            kept.join(", ")
                        ),
                    ));
                }
                if !changed_fields.is_empty() {
                    updates.push((current.id, record, &record.attributes_json));
                    events.push(EventRow {
                        id: current.id,
                        list: None,
                        kind: "updated",
                        detail: serde_json::json!({ "fields": changed_fields }).to_string(),
                    });
                }
                if joined || !changed_fields.is_empty() {
                    report.updated += 1;
                } else {
                    report.unchanged += 1;
                }
            }
        }
    }

    // New subscribers get consecutive ids in file order (so that an export lists them as the
    // file did), counting up from the largest one: safe because `BEGIN IMMEDIATE` holds the
    // write lock, so nobody else inserts meanwhile. (PostgreSQL would take a block of ids
    // from its sequence instead.)
    let first_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM subscribers")
        .fetch_one(&mut *conn)
        .await?;
    let new_rows: Vec<NewRow<'_>> = fresh
        .iter()
        .zip(first_id..)
        .enumerate()
        .map(|(n, ((index, _), id))| {
            let record = &records[*index];
            NewRow {
                nonce: &nonces[n * NONCE_LEN..(n + 1) * NONCE_LEN],
                id,
                email: record.address.as_str(),
                key: &record.key,
                name: record.name.as_deref().unwrap_or(""),
                language: record.language.as_deref(),
                attributes: &record.attributes_json,
            }
        })
        .collect();
    // The timestamp is bound once per statement, not twice per row (binding is most of the
    // import's cost), and the SQL text stays the same from batch to batch, so the prepared
    // statement is reused. (VALUES names its columns column1..N in SQLite and PostgreSQL.)
    for chunk in new_rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO subscribers (id, email, email_key, name, language, attributes, token_nonce,
                                      status, created_at, updated_at)
             SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7,
                    'active', t.at, t.at
             FROM (SELECT ",
        );
        q.push_bind(now.as_str()).push(" AS at) t, (");
        q.push_values(chunk, |mut b, r| {
            b.push_bind(r.id)
                .push_bind(r.email)
                .push_bind(r.key)
                .push_bind(r.name)
                .push_bind(r.language)
                .push_bind(r.attributes)
                .push_bind(r.nonce);
        });
        q.push(") v");
        q.build().execute(&mut *conn).await?;
    }
    // Their subscriptions and events. Files list people with the same lists in long runs
    // (most files have a single run): each run is written by one statement per list, over its
    // id range. A file whose rows keep changing lists falls back to binding row by row.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (index, (_, memberships)) in fresh.iter().enumerate() {
        match runs.last_mut() {
            Some((start, len)) if fresh[*start].1 == *memberships => *len += 1,
            _ => runs.push((index, 1)),
        }
    }
    if runs.len() > SET_BASED_RUNS {
        for ((_, memberships), id) in fresh.iter().zip(first_id..) {
            if memberships.is_empty() {
                events.push(EventRow {
                    id,
                    list: None,
                    kind: "created",
                    detail: "{}".into(),
                });
            }
            for (list, status) in memberships {
                joins.push(JoinRow {
                    id,
                    list: *list,
                    status: *status,
                });
            }
        }
        runs.clear();
    }
    for (start, len) in runs {
        let memberships = &fresh[start].1;
        let first = first_id + start as i64;
        let last = first + len as i64 - 1;
        if memberships.is_empty() {
            // Joining a list is recorded by its `subscribed` event; a subscriber who joins
            // none gets a `created` event so that no change goes unrecorded.
            sqlx::query(
                "INSERT INTO events (occurred_at, kind, subscriber_id, source)
                 SELECT ?, 'created', id, ? FROM subscribers WHERE id BETWEEN ? AND ?",
            )
            .bind(&now)
            .bind(&options.source)
            .bind(first)
            .bind(last)
            .execute(&mut *conn)
            .await?;
        }
        for (list, status) in memberships {
            sqlx::query(
                "INSERT INTO subscriptions (subscriber_id, list_id, status, consent_source, created_at,
                                            updated_at, confirmed_at, unsubscribed_at)
                 SELECT id, ?1, ?2, ?3, ?4, ?4, ?5, ?6 FROM subscribers WHERE id BETWEEN ?7 AND ?8",
            )
            .bind(list)
            .bind(status.as_str())
            .bind(&options.source)
            .bind(&now)
            .bind((*status == SubscriptionStatus::Confirmed).then_some(&now))
            .bind((*status == SubscriptionStatus::Unsubscribed).then_some(&now))
            .bind(first)
            .bind(last)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "INSERT INTO events (occurred_at, kind, subscriber_id, list_id, source, detail)
                 SELECT ?1, ?2, id, ?3, ?4, ?5 FROM subscribers WHERE id BETWEEN ?6 AND ?7",
            )
            .bind(&now)
            .bind(subscription_event_kind(*status))
            .bind(list)
            .bind(&options.source)
            .bind(status_detail(*status))
            .bind(first)
            .bind(last)
            .execute(&mut *conn)
            .await?;
        }
    }

    for (id, record, attributes) in &updates {
        sqlx::query(
            "UPDATE subscribers SET name = COALESCE(?, name), language = COALESCE(?, language),
                    attributes = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&record.name)
        .bind(&record.language)
        .bind(*attributes)
        .bind(&now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    for (subscriber_id, list_id, status) in &status_changes {
        set_subscription_status(
            conn,
            *subscriber_id,
            *list_id,
            *status,
            &options.source,
            &now,
        )
        .await?;
    }
    // Existing subscribers joining a list: rare enough to bind row by row in bulk.
    for chunk in joins.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO subscriptions (subscriber_id, list_id, status, consent_source, created_at, updated_at,
                                        confirmed_at, unsubscribed_at) ",
        );
        q.push_values(chunk, |mut b, j| {
            b.push_bind(j.id)
                .push_bind(j.list)
                .push_bind(j.status.as_str())
                .push_bind(options.source.as_str())
                .push_bind(now.as_str())
                .push_bind(now.as_str())
                .push_bind((j.status == SubscriptionStatus::Confirmed).then_some(now.as_str()))
                .push_bind((j.status == SubscriptionStatus::Unsubscribed).then_some(now.as_str()));
        });
        q.build().execute(&mut *conn).await?;
    }
    let join_events = joins.iter().map(|j| EventRow {
        id: j.id,
        list: Some(j.list),
        kind: subscription_event_kind(j.status),
        detail: status_detail(j.status).to_owned(),
    });
    let all_events: Vec<EventRow> = join_events.chain(events).collect();
    for chunk in all_events.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (occurred_at, kind, subscriber_id, list_id, source, detail) ",
        );
        q.push_values(chunk, |mut b, e| {
            b.push_bind(now.as_str())
                .push_bind(e.kind)
                .push_bind(e.id)
                .push_bind(e.list)
                .push_bind(options.source.as_str())
                .push_bind(e.detail.as_str());
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(report)
}

/// The event that records joining a list with this status: a file may record people who had
/// already left (a migration from another tool).
fn subscription_event_kind(status: SubscriptionStatus) -> &'static str {
    match status {
        SubscriptionStatus::Unsubscribed => "unsubscribed",
        _ => "subscribed",
    }
}

/// The `detail` of a subscription event.
fn status_detail(status: SubscriptionStatus) -> &'static str {
    match status {
        SubscriptionStatus::Unconfirmed => r#"{"status":"unconfirmed"}"#,
        SubscriptionStatus::Confirmed => r#"{"status":"confirmed"}"#,
        SubscriptionStatus::Unsubscribed => r#"{"status":"unsubscribed"}"#,
    }
}

/// Above this many runs of new subscribers joining the same lists, a batch binds their
/// subscriptions row by row instead of writing one `INSERT ... SELECT` per run and list.
const SET_BASED_RUNS: usize = 16;

/// Characters of a token nonce: 8 random bytes in lower-case hex, as the schema's default.
const NONCE_LEN: usize = 16;

/// `count` token nonces, end to end in one string, from one call to the system's generator.
///
/// The column's default (`lower(hex(randomblob(8)))`) costs SQLite about 0.9 s per million
/// rows, as much as the rest of the row; one `getrandom` for the whole batch costs nothing.
fn token_nonces(count: usize) -> Result<String, StoreError> {
    use ring::rand::SecureRandom;
    let mut bytes = vec![0u8; count * NONCE_LEN / 2];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StoreError::Randomness)?;
    let mut hex = String::with_capacity(count * NONCE_LEN);
    push_lower_hex(&bytes, &mut hex);
    Ok(hex)
}

/// Rows per multi-row INSERT: at most 8 parameters a row stays well under SQLite's 32,766.
const ROWS_PER_STATEMENT: usize = 1_000;

/// The position in the batch that a `json_each` row came from.
fn batch_index(row: &sqlx::sqlite::SqliteRow) -> Result<usize, sqlx::Error> {
    usize::try_from(col::<i64>(row, "idx")?)
        .map_err(|_| sqlx::Error::Protocol("negative batch index".into()))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn json(value: &impl Serialize) -> Result<String, sqlx::Error> {
    serde_json::to_string(value).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{ImportOptions, ImportRecord};
    use crate::address::Address;
    use crate::store::{Store, StoreError};

    fn record(line: u64, email: &str, list: &Arc<crate::store::List>) -> ImportRecord {
        let address = Address::parse(email).expect("valid test address");
        ImportRecord {
            line,
            key: address.key(),
            address,
            name: None,
            language: None,
            attributes: serde_json::Map::new(),
            attributes_json: "{}".into(),
            lists: vec![(Arc::clone(list), None)],
        }
    }

    fn options() -> ImportOptions {
        ImportOptions {
            update: false,
            dry_run: false,
            source: "import:test.csv".into(),
        }
    }

    /// A fresh database in a temporary folder (kept alive by the returned guard) with a list.
    async fn store_with_list() -> (tempfile::TempDir, Store, Arc<crate::store::List>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url, 1_000).await.expect("open");
        let news = store
            .create_list("news", false, "test")
            .await
            .expect("list");
        (dir, store, Arc::new(news))
    }

    async fn foreign_keys_on_every_connection(store: &Store) -> Vec<i64> {
        // Hold every connection of the pool at once, so each one is looked at.
        let mut held = Vec::new();
        let mut seen = Vec::new();
        for _ in 0..4 {
            let mut conn = store.pool().acquire().await.expect("connection");
            seen.push(
                sqlx::query_scalar::<_, i64>("PRAGMA foreign_keys")
                    .fetch_one(&mut *conn)
                    .await
                    .expect("pragma"),
            );
            held.push(conn);
        }
        seen
    }

    /// The batch switches SQLite's foreign-key checks off for its own connection only, and
    /// every connection the pool hands out afterwards has them on again.
    #[tokio::test]
    async fn an_import_leaves_foreign_keys_on_in_the_pool() {
        let (_dir, store, news) = store_with_list().await;
        let batch = [
            record(2, "ana@example.org", &news),
            record(3, "bo@example.org", &news),
        ];
        let mut importer = store.importer().await.expect("importer");
        let report = importer
            .import_batch(&batch, &options())
            .await
            .expect("import");
        assert_eq!(report.added, 2);
        importer.finish().await.expect("finish");
        assert_eq!(foreign_keys_on_every_connection(&store).await, [1, 1, 1, 1]);
    }

    /// A list removed after the import looked it up (another process, mid-import) is caught
    /// under the write lock, before anything of the batch is written.
    #[tokio::test]
    async fn a_list_removed_during_the_import_stops_the_batch() {
        let (_dir, store, news) = store_with_list().await;
        store
            .remove_list("news", false, "test")
            .await
            .expect("remove");
        let batch = [record(2, "ana@example.org", &news)];
        let mut importer = store.importer().await.expect("importer");
        let err = importer
            .import_batch(&batch, &options())
            .await
            .expect_err("the list is gone");
        drop(importer);
        assert!(
            matches!(&err, StoreError::ListNotFound { name, hint } if name == "news" && hint.contains("removed while the import ran")),
            "{err}"
        );
        let subscribers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subscribers")
            .fetch_one(store.pool())
            .await
            .expect("count");
        assert_eq!(subscribers, 0);
        assert_eq!(foreign_keys_on_every_connection(&store).await, [1, 1, 1, 1]);
    }
}
