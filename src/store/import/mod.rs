//! Bulk import of subscribers, in three steps per batch:
//!
//! 1. [`lookup`] reads what the database knows about the batch's addresses (erased, known,
//!    which lists they are on) with three set-based queries;
//! 2. [`plan`] decides, without touching the database, what each row becomes: a new
//!    subscriber, an update, list joins, or a refusal (erased at the person's request, or the
//!    same address twice in the batch);
//! 3. [`write`] carries the plan out with multi-row and `INSERT ... SELECT` statements.
//!
//! The planning step holds every rule an import applies (a list the person left is never
//! re-joined, `--update` is the only way to overwrite fields, an erased address is not added
//! back), so those rules are unit-tested here without SQLite. [`BatchWriter`] feeds batches
//! to an [`Importer`] in the background while the caller reads the next one.

mod batch;
mod conn;
mod lookup;
mod plan;
mod write;

use std::sync::Arc;

use serde::Serialize;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use super::subscribers::push_lower_hex;
use super::{Backend, List, Store, StoreError, SubscriptionStatus, WRITE_LOCK_KEY, now};
use crate::address::Address;
use conn::{Arg, Conn};

pub use batch::{BatchError, BatchWriter};

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

    /// The counts in one line, as `subscribers import` ends and as its errors say how far it
    /// got: "3 added, 1 updated, 0 unchanged, 0 rejected".
    pub fn summary(&self, dry_run: bool) -> String {
        let mut s = format!(
            "{} added, {} updated, {} unchanged, {} rejected",
            self.added, self.updated, self.unchanged, self.rejected
        );
        if self.suppressed > 0 {
            s.push_str(&format!(
                ", {} erased earlier (not re-added)",
                self.suppressed
            ));
        }
        if dry_run {
            s.push_str(" (dry run: nothing was written)");
        }
        s
    }
}

impl Store {
    /// Starts a bulk import: see [`Importer`].
    pub async fn importer(&self) -> Result<Importer, StoreError> {
        let conn = match self.backend {
            Backend::Sqlite => {
                let conn = self.pool.acquire().await.map_err(|e| self.classify(e))?;
                ImportConnection::Any(
                    UncheckedForeignKeys::switch_off(conn)
                        .await
                        .map_err(|e| self.classify(e))?,
                )
            }
            Backend::Postgres => {
                // A connection of its own, native, for COPY (see `conn`), with the pool's
                // settings and the same lock timeout as the pool's connections.
                let options = PgConnectOptions::try_from(&*self.pool.connect_options())
                    .map_err(|e| self.classify(e))?;
                let mut conn = PgConnection::connect_with(&options)
                    .await
                    .map_err(|e| self.classify(e))?;
                let set = format!("SET lock_timeout = {}", self.busy_timeout_ms);
                sqlx::Executor::execute(&mut conn, set.as_str())
                    .await
                    .map_err(|e| self.classify(e))?;
                ImportConnection::Pg(conn)
            }
        };
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
///
/// On PostgreSQL the import has a native connection of its own instead (see `conn`).
pub struct Importer {
    store: Store,
    conn: ImportConnection,
}

/// The import's connection, per backend.
enum ImportConnection {
    /// SQLite: the pool's, with foreign-key checks off.
    Any(UncheckedForeignKeys),
    /// PostgreSQL: a native connection, for COPY.
    Pg(PgConnection),
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
        let classify = |e| store.classify(e);
        match &mut self.conn {
            ImportConnection::Any(guard) => {
                let mut tx = crate::store::begin_write(guard.connection())
                    .await
                    .map_err(classify)?;
                let report =
                    batch_in_transaction(&mut Conn::Any(&mut tx), records, &nonces, options, store)
                        .await?;
                end(tx, options.dry_run).await.map_err(classify)?;
                Ok(report)
            }
            ImportConnection::Pg(conn) => {
                let mut tx = conn.begin().await.map_err(classify)?;
                // The lock every writer of the store takes (see `Store::write`).
                sqlx::query("SELECT pg_advisory_xact_lock($1)::text")
                    .bind(WRITE_LOCK_KEY)
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?;
                let report =
                    batch_in_transaction(&mut Conn::Pg(&mut tx), records, &nonces, options, store)
                        .await?;
                end(tx, options.dry_run).await.map_err(classify)?;
                Ok(report)
            }
        }
    }

    /// Ends the import, handing the connection back to the pool with its checks on.
    pub async fn finish(self) -> Result<(), StoreError> {
        let store = self.store;
        match self.conn {
            ImportConnection::Any(guard) => guard.switch_on().await.map_err(|e| store.classify(e)),
            ImportConnection::Pg(conn) => conn.close().await.map_err(|e| store.classify(e)),
        }
    }
}

/// Commits a batch's transaction, or rolls it back on a dry run.
async fn end<DB: sqlx::Database>(
    tx: sqlx::Transaction<'_, DB>,
    dry_run: bool,
) -> Result<(), sqlx::Error> {
    if dry_run {
        tx.rollback().await
    } else {
        tx.commit().await
    }
}

/// Checks the batch's lists, then looks up, plans and writes it, inside the caller's
/// transaction.
async fn batch_in_transaction(
    conn: &mut Conn<'_>,
    records: &[ImportRecord],
    nonces: &str,
    options: &ImportOptions,
    store: &Store,
) -> Result<ImportReport, StoreError> {
    lists_still_exist(conn, records)
        .await
        .map_err(|e| match e {
            ListCheck::Gone(name) => StoreError::ListNotFound {
                name,
                hint: "; it was removed while the import ran: create it again and re-run the import (rows already imported are kept and not duplicated)".into(),
            },
            ListCheck::Database(e) => store.classify(e),
        })?;
    import_in_transaction(conn, records, nonces, options)
        .await
        .map_err(|e| store.classify(e))
}

/// Looks up, plans and writes one batch inside the caller's transaction.
///
/// Rows refer to their subscriber by id: new subscribers get theirs in [`write`], counting up
/// from the largest id, which is safe because the transaction holds SQLite's write lock from
/// its first statement (`BEGIN IMMEDIATE`), so nothing else can insert meanwhile.
async fn import_in_transaction(
    conn: &mut Conn<'_>,
    records: &[ImportRecord],
    nonces: &str,
    options: &ImportOptions,
) -> Result<ImportReport, sqlx::Error> {
    let now = now();
    let known = lookup::known(conn, records, options.update).await?;
    let plan = plan::plan(records, &known, options);
    write::write(conn, records, plan, nonces, options, &now).await
}

/// A pooled connection with SQLite's foreign-key checks off, for one bulk import.
///
/// `PRAGMA foreign_keys` is a connection setting, so a connection must never go back to the
/// pool with the checks off: `switch_on` turns them on again, and if that fails, or the guard
/// is dropped before (an error or a cancelled task), the connection is detached from the pool
/// and closed instead.
struct UncheckedForeignKeys {
    conn: Option<sqlx::pool::PoolConnection<sqlx::Any>>,
}

impl UncheckedForeignKeys {
    async fn switch_off(
        mut conn: sqlx::pool::PoolConnection<sqlx::Any>,
    ) -> Result<Self, sqlx::Error> {
        // Outside any transaction (SQLite ignores the pragma inside one): a pooled connection
        // never holds one open between uses. PostgreSQL keeps its checks: switching them off
        // needs a superuser, and its checks are cheap next to the insert itself.
        if Backend::of(&conn) == Backend::Sqlite {
            sqlx::query("PRAGMA foreign_keys = OFF")
                .execute(&mut *conn)
                .await?;
        }
        Ok(Self { conn: Some(conn) })
    }

    fn connection(&mut self) -> &mut sqlx::AnyConnection {
        // `conn` is `Some` from `switch_off` until `switch_on` or drop take it.
        self.conn
            .as_deref_mut()
            .expect("connection present until switched on")
    }

    async fn switch_on(mut self) -> Result<(), sqlx::Error> {
        if let Some(mut conn) = self.conn.take() {
            if Backend::of(&conn) == Backend::Postgres {
                return Ok(());
            }
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
async fn lists_still_exist(conn: &mut Conn<'_>, records: &[ImportRecord]) -> Result<(), ListCheck> {
    let mut lists: Vec<&List> = records
        .iter()
        .flat_map(|r| r.lists.iter().map(|(list, _)| list.as_ref()))
        .collect();
    lists.sort_by_key(|l| l.id);
    lists.dedup_by_key(|l| l.id);
    for list in lists {
        let found = conn
            .ints("SELECT id FROM lists WHERE id = $1", &[Arg::Int(list.id)])
            .await
            .map_err(ListCheck::Database)?;
        if found.is_empty() {
            return Err(ListCheck::Gone(list.name.clone()));
        }
    }
    Ok(())
}

/// Characters of a token nonce: 8 random bytes in lower-case hex, as the schema's default.
const NONCE_LEN: usize = 16;

/// `count` token nonces, end to end in one string, from one call to the system's generator.
///
/// The column's default (`lower(hex(randomblob(8)))`) costs SQLite about 0.9 s per million
/// rows, as much as the rest of the row; one `getrandom` for the whole batch costs nothing.
fn token_nonces(count: usize) -> Result<String, StoreError> {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = vec![0u8; count * NONCE_LEN / 2];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StoreError::Randomness)?;
    let mut hex = String::with_capacity(count * NONCE_LEN);
    push_lower_hex(&bytes, &mut hex);
    Ok(hex)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{ImportOptions, ImportRecord};
    use crate::address::Address;
    use crate::store::{List, Store, StoreError};

    /// A row of a file with an `email` and a `lists` column, joining `lists` with no status.
    pub(super) fn row(line: u64, email: &str, lists: &[&Arc<List>]) -> ImportRecord {
        let address = Address::parse(email).expect("valid test address");
        ImportRecord {
            line,
            key: address.key(),
            address,
            name: None,
            language: None,
            attributes: serde_json::Map::new(),
            attributes_json: "{}".into(),
            lists: lists.iter().map(|l| (Arc::clone(l), None)).collect(),
        }
    }

    fn record(line: u64, email: &str, list: &Arc<List>) -> ImportRecord {
        row(line, email, &[list])
    }

    fn options() -> ImportOptions {
        ImportOptions {
            update: false,
            dry_run: false,
            source: "import:test.csv".into(),
        }
    }

    /// A fresh database in a temporary folder (kept alive by the returned guard) with a list.
    async fn store_with_list() -> (tempfile::TempDir, Store, Arc<List>) {
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

    /// A batch that holds an address twice (a caller other than the CSV reader, which refuses
    /// repeats itself) imports it once and rejects the repeat, instead of failing the whole
    /// batch on the unique address key.
    #[tokio::test]
    async fn an_address_twice_in_a_batch_is_imported_once() {
        let (_dir, store, news) = store_with_list().await;
        let batch = [
            record(2, "ana@example.org", &news),
            record(3, "Ana@Example.org", &news),
        ];
        let mut importer = store.importer().await.expect("importer");
        let report = importer
            .import_batch(&batch, &options())
            .await
            .expect("import");
        importer.finish().await.expect("finish");
        assert_eq!((report.added, report.rejected), (1, 1));
        let subscribers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subscribers")
            .fetch_one(store.pool())
            .await
            .expect("count");
        assert_eq!(subscribers, 1);
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
