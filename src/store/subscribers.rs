//! Subscribers and their subscriptions: add, import in batches, read, unsubscribe, erase.
//!
//! Every change writes an `events` row in the same transaction as the change itself, so the
//! audit log can never disagree with the data.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

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
    /// Name, when the file has a `name` column.
    pub name: Option<String>,
    /// Language, when the file has a `lang` column and the cell is not empty.
    pub language: Option<String>,
    /// Attributes from the `attributes` column and any extra columns.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Lists to join, with an explicit status when the file gives one (`news:unconfirmed`).
    pub lists: Vec<(List, Option<SubscriptionStatus>)>,
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
    let digest = Sha256::digest(format!("bulletin-erased:{email_key}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

const SUBSCRIBER_COLUMNS: &str =
    "s.id, s.email, s.name, s.language, s.attributes, s.status, s.created_at, s.updated_at,
     (SELECT GROUP_CONCAT(l.name || ':' || x.status, '|')
        FROM subscriptions x JOIN lists l ON l.id = x.list_id
       WHERE x.subscriber_id = s.id) AS memberships";

/// Multi-row statements are cut into chunks of this many rows, well under SQLite's limit of
/// 32,766 bound parameters per statement.
const ROWS_PER_STATEMENT: usize = 500;

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

    /// Writes one batch of imported rows in one transaction (rolled back on a dry run).
    ///
    /// The batch is read with three `IN (...)` queries and written with multi-row inserts, so a
    /// batch of a few thousand rows costs a handful of statements rather than several per row.
    pub async fn import_batch(
        &self,
        records: &[ImportRecord],
        options: &ImportOptions,
    ) -> Result<ImportReport, StoreError> {
        let mut tx = self.write().await?;
        let report = import_in_transaction(&mut tx, records, options)
            .await
            .map_err(|e| self.classify(e))?;
        if options.dry_run {
            tx.rollback().await.map_err(|e| self.classify(e))?;
        } else {
            tx.commit().await.map_err(|e| self.classify(e))?;
        }
        Ok(report)
    }
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

async fn set_subscription_status(
    conn: &mut SqliteConnection,
    subscriber_id: i64,
    list_id: i64,
    status: SubscriptionStatus,
    source: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE subscriptions SET status = ?1, updated_at = ?2,
                confirmed_at = CASE WHEN ?1 = 'confirmed' THEN ?2 ELSE confirmed_at END,
                unsubscribed_at = CASE WHEN ?1 = 'unsubscribed' THEN ?2 ELSE NULL END,
                consent_source = CASE WHEN ?1 = 'unsubscribed' THEN consent_source ELSE ?3 END
         WHERE subscriber_id = ?4 AND list_id = ?5",
    )
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

/// A pending `events` row of a batch.
struct PendingEvent {
    kind: &'static str,
    subscriber: SubscriberRef,
    list_id: Option<i64>,
    detail: String,
}

/// A subscriber of the batch: known id, or the index of a row about to be inserted.
#[derive(Clone, Copy)]
enum SubscriberRef {
    Id(i64),
    New(usize),
}

async fn import_in_transaction(
    conn: &mut SqliteConnection,
    records: &[ImportRecord],
    options: &ImportOptions,
) -> Result<ImportReport, sqlx::Error> {
    let mut report = ImportReport::default();
    let now = now();
    let keys: Vec<String> = records.iter().map(|r| r.address.key()).collect();

    let mut suppressed = HashSet::new();
    let mut existing: HashMap<String, Existing> = HashMap::new();
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let hashes: Vec<String> = chunk.iter().map(|k| suppression_hash(k)).collect();
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT email_hash FROM suppressions WHERE email_hash IN (",
        );
        push_list(&mut q, &hashes);
        let found: Vec<String> = q.build_query_scalar().fetch_all(&mut *conn).await?;
        suppressed.extend(found);

        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, email_key, name, language, attributes FROM subscribers WHERE email_key IN (",
        );
        push_list(&mut q, chunk);
        for row in q.build().fetch_all(&mut *conn).await? {
            existing.insert(
                col(&row, "email_key")?,
                Existing {
                    id: col(&row, "id")?,
                    name: col(&row, "name")?,
                    language: col(&row, "language")?,
                    attributes: col(&row, "attributes")?,
                },
            );
        }
    }
    let mut memberships: HashMap<(i64, i64), String> = HashMap::new();
    let ids: Vec<i64> = existing.values().map(|e| e.id).collect();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT subscriber_id, list_id, status FROM subscriptions WHERE subscriber_id IN (",
        );
        let mut sep = q.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        q.push(")");
        for row in q.build().fetch_all(&mut *conn).await? {
            memberships.insert(
                (col(&row, "subscriber_id")?, col(&row, "list_id")?),
                col(&row, "status")?,
            );
        }
    }

    // Decide, row by row, then write in bulk.
    let mut new_rows: Vec<(&ImportRecord, &str)> = Vec::new();
    let mut updates: Vec<(i64, &ImportRecord, String)> = Vec::new();
    let mut new_subscriptions: Vec<(SubscriberRef, i64, SubscriptionStatus)> = Vec::new();
    let mut status_changes: Vec<(i64, i64, SubscriptionStatus)> = Vec::new();
    let mut events: Vec<PendingEvent> = Vec::new();

    for (record, key) in records.iter().zip(&keys) {
        if suppressed.contains(&suppression_hash(key)) {
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
        let attributes = serde_json::Value::Object(record.attributes.clone()).to_string();
        match existing.get(key.as_str()) {
            None => {
                let index = new_rows.len();
                new_rows.push((record, key));
                events.push(PendingEvent {
                    kind: "created",
                    subscriber: SubscriberRef::New(index),
                    list_id: None,
                    detail: "{}".into(),
                });
                for (list, status) in &record.lists {
                    let status = status.unwrap_or_else(|| SubscriptionStatus::initial_for(list));
                    new_subscriptions.push((SubscriberRef::New(index), list.id, status));
                }
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
                            let status =
                                status.unwrap_or_else(|| SubscriptionStatus::initial_for(list));
                            new_subscriptions.push((
                                SubscriberRef::Id(current.id),
                                list.id,
                                status,
                            ));
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
                    updates.push((current.id, record, attributes));
                    events.push(PendingEvent {
                        kind: "updated",
                        subscriber: SubscriberRef::Id(current.id),
                        list_id: None,
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

    // New subscribers, with their ids read back by address.
    let mut new_ids: Vec<i64> = vec![0; new_rows.len()];
    for (chunk_index, chunk) in new_rows.chunks(ROWS_PER_STATEMENT).enumerate() {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO subscribers (email, email_key, name, language, attributes, status, created_at, updated_at) ",
        );
        q.push_values(chunk, |mut b, (record, key)| {
            b.push_bind(record.address.as_str())
                .push_bind(*key)
                .push_bind(record.name.clone().unwrap_or_default())
                .push_bind(record.language.clone())
                .push_bind(serde_json::Value::Object(record.attributes.clone()).to_string())
                .push_bind("active")
                .push_bind(&now)
                .push_bind(&now);
        });
        q.push(" RETURNING id, email_key");
        let returned = q.build().fetch_all(&mut *conn).await?;
        let mut by_key = HashMap::with_capacity(returned.len());
        for row in returned {
            by_key.insert(col::<String>(&row, "email_key")?, col::<i64>(&row, "id")?);
        }
        for (offset, (_, key)) in chunk.iter().enumerate() {
            new_ids[chunk_index * ROWS_PER_STATEMENT + offset] = by_key
                .get(*key)
                .copied()
                .ok_or_else(|| sqlx::Error::Protocol(format!("insert of {key} returned no id")))?;
        }
    }
    let resolve = |r: SubscriberRef| match r {
        SubscriberRef::Id(id) => id,
        SubscriberRef::New(i) => new_ids[i],
    };

    for (id, record, attributes) in &updates {
        sqlx::query(
            "UPDATE subscribers SET name = COALESCE(?, name), language = COALESCE(?, language),
                    attributes = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&record.name)
        .bind(&record.language)
        .bind(attributes)
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

    for chunk in new_subscriptions.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO subscriptions (subscriber_id, list_id, status, consent_source, created_at, updated_at, confirmed_at, unsubscribed_at) ",
        );
        q.push_values(chunk, |mut b, (who, list_id, status)| {
            let confirmed_at = (*status == SubscriptionStatus::Confirmed).then_some(now.as_str());
            let unsubscribed_at =
                (*status == SubscriptionStatus::Unsubscribed).then_some(now.as_str());
            b.push_bind(resolve(*who))
                .push_bind(*list_id)
                .push_bind(status.as_str())
                .push_bind(&options.source)
                .push_bind(&now)
                .push_bind(&now)
                .push_bind(confirmed_at)
                .push_bind(unsubscribed_at);
        });
        q.build().execute(&mut *conn).await?;
    }
    events.extend(
        new_subscriptions
            .iter()
            .map(|(who, list_id, status)| PendingEvent {
                // A file may record people who had already left (a migration from another tool).
                kind: if *status == SubscriptionStatus::Unsubscribed {
                    "unsubscribed"
                } else {
                    "subscribed"
                },
                subscriber: *who,
                list_id: Some(*list_id),
                detail: format!("{{\"status\":\"{}\"}}", status.as_str()),
            }),
    );
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (occurred_at, kind, subscriber_id, list_id, source, detail) ",
        );
        q.push_values(chunk, |mut b, e| {
            b.push_bind(&now)
                .push_bind(e.kind)
                .push_bind(resolve(e.subscriber))
                .push_bind(e.list_id)
                .push_bind(&options.source)
                .push_bind(&e.detail);
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(report)
}

fn push_list(q: &mut QueryBuilder<'_, Sqlite>, values: &[String]) {
    let mut sep = q.separated(", ");
    for v in values {
        sep.push_bind(v.clone());
    }
    q.push(")");
}
