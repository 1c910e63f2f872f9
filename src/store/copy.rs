//! `bulletin db copy`: a whole store from one database into another, SQLite to PostgreSQL
//! (the way out of one machine) or back (the way home), keeping every id.
//!
//! The copy reads the source in one snapshot (a read transaction), table by table in
//! foreign-key order, each table streamed in key order (constant memory: a row is encoded
//! and forgotten), and writes the target in **one** transaction: an error anywhere rolls it
//! back and leaves the target as empty as it was found. A target holding any row in any table
//! is refused before anything is written. Before the commit, the rows of each table are
//! counted on both sides; a difference rolls everything back too.
//!
//! Into PostgreSQL the rows go through `COPY … FROM STDIN` (text format, see
//! [`push_copy_field`]), on a native `PgConnection`: sqlx's `Any` driver, which every other
//! query of the store goes through, has no way to speak the COPY sub-protocol. The
//! transaction takes the store's write lock (the same advisory lock as [`Store::write`]), and
//! moves each identity sequence past the ids it wrote, so the next row the server numbers
//! gets a free id. Into SQLite the rows go through multi-row `INSERT`s in one `BEGIN
//! IMMEDIATE` transaction.
//!
//! Columns are not listed here: each side's catalogue names them (so a migration that adds a
//! column needs no change here), and both sides must have the same columns and the same
//! schema version. Tables are listed, in the order their foreign keys need; a table the
//! schema has and this list lacks is an error rather than a silent gap.

use std::collections::BTreeSet;
use std::str::FromStr;

use futures_util::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AnyConnection, Connection, Row, ValueRef};

use super::{Backend, Store, StoreError, WRITE_LOCK_KEY};

/// Every table of the store, parents before children. `send_leases` is copied too: a lease
/// names the process that held a campaign and when it expires, so a copied one either still
/// protects a running send (whose rows it would otherwise let a second sender take) or has
/// expired and is taken over as usual.
pub const TABLES: &[&str] = &[
    "lists",
    "list_texts",
    "subscribers",
    "subscriptions",
    "suppressions",
    "campaigns",
    "campaign_pacing",
    "worker_pacing",
    "deliveries",
    "delivery_attempts",
    "send_leases",
    "events",
    "confirmation_cooldowns",
    "form_rate_windows",
    "feedback",
    "campaign_links",
];

/// Bytes of COPY data gathered before they are sent to the server: large enough that the
/// round trips do not matter, small enough that memory stays flat whatever the table's size.
const COPY_CHUNK: usize = 1 << 20;

/// What a copy can fail with. Messages name the database (never with a password) and the fix.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// One of the two stores could not be opened or migrated.
    #[error("cannot open the {side} database: {source}")]
    Open {
        /// "source" or "target".
        side: &'static str,
        /// Why.
        source: StoreError,
    },
    /// The two stores are at different schema versions even after migrating.
    #[error(
        "the source is at schema version {from} and the target at {to}; run the same bulletin \
         version against both (the newer one migrates the older database when it opens it)"
    )]
    SchemaVersion {
        /// The source's newest migration.
        from: i64,
        /// The target's newest migration.
        to: i64,
    },
    /// The target holds rows: copying would mix two stores.
    #[error(
        "the target database {target} is not empty (table {table} has {rows} row(s)); nothing was \
         written. Copy into a freshly created, empty database (e.g. createdb NAME, or a new file)"
    )]
    NotEmpty {
        /// The target, without its password.
        target: String,
        /// The first table found with rows.
        table: &'static str,
        /// How many.
        rows: i64,
    },
    /// A table's columns differ between the two sides, or a side has a table not in [`TABLES`].
    #[error("the two databases do not have the same schema: {0}; nothing was written")]
    Schema(String),
    /// Reading the source failed.
    #[error(
        "reading the source database {path} failed: {source}; nothing was written to the target"
    )]
    Read {
        /// The source, without its password.
        path: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// Writing the target failed; its transaction was rolled back.
    #[error(
        "writing table {table} of the target database {path} failed: {source}; the transaction \
         was rolled back and the target is still empty"
    )]
    Write {
        /// The target, without its password.
        path: String,
        /// The table being written (or "-" outside one).
        table: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The row counts of a table differ after the copy; the transaction was rolled back.
    #[error(
        "table {table}: {source_rows} row(s) in the source but {target_rows} in the target; the \
         transaction was rolled back and the target is still empty"
    )]
    CountMismatch {
        /// The table.
        table: &'static str,
        /// Its rows in the source.
        source_rows: i64,
        /// Its rows in the target, before the rollback.
        target_rows: i64,
        /// Every table's counts, for the operator.
        counts: Vec<TableCount>,
    },
}

/// The rows of one table on each side, as the copy verified them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableCount {
    /// The table.
    pub table: &'static str,
    /// Rows in the source snapshot.
    pub source: i64,
    /// Rows in the target before the commit.
    pub target: i64,
}

/// One value of a row on its way from one database to the other.
enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// Copies the whole store at `from_url` into the empty store at `to_url` (both migrated to
/// this binary's schema first), verifying each table's row count; returns the counts.
pub async fn copy_store(
    from_url: &str,
    to_url: &str,
    busy_timeout_ms: u64,
) -> Result<Vec<TableCount>, CopyError> {
    let from = Store::open(from_url, busy_timeout_ms)
        .await
        .map_err(|source| CopyError::Open {
            side: "source",
            source,
        })?;
    let to = Store::open(to_url, busy_timeout_ms)
        .await
        .map_err(|source| CopyError::Open {
            side: "target",
            source,
        })?;
    let result = copy_between(&from, &to, to_url).await;
    from.close().await;
    to.close().await;
    result
}

async fn copy_between(
    from: &Store,
    to: &Store,
    to_url: &str,
) -> Result<Vec<TableCount>, CopyError> {
    let paths = Paths {
        from: from.path(),
        to: to.path(),
    };
    let (write, read) = (paths.write(), paths.read());
    let (from_version, to_version) = (
        schema_version(from).await.map_err(&read)?,
        schema_version(to).await.map_err(|e| write("-", e))?,
    );
    if from_version != to_version {
        return Err(CopyError::SchemaVersion {
            from: from_version,
            to: to_version,
        });
    }
    let mut columns = Vec::with_capacity(TABLES.len());
    {
        let mut source = from.pool().acquire().await.map_err(&read)?;
        let mut target = to.pool().acquire().await.map_err(|e| write("-", e))?;
        check_tables(&mut source, "source").await.map_err(&read)??;
        check_tables(&mut target, "target")
            .await
            .map_err(|e| write("-", e))??;
        for table in TABLES {
            let here = table_columns(&mut source, table).await.map_err(&read)?;
            let there = table_columns(&mut target, table)
                .await
                .map_err(|e| write(table, e))?;
            let names = |c: &[Column]| c.iter().map(|c| c.name.clone()).collect::<BTreeSet<_>>();
            if names(&here) != names(&there) {
                return Err(CopyError::Schema(format!(
                    "table {table} has columns {:?} in the source but {:?} in the target",
                    names(&here),
                    names(&there)
                )));
            }
            columns.push(here);
        }
    }

    // The source, read in one snapshot so that the counts match the rows streamed.
    let mut source = from.pool().acquire().await.map_err(&read)?;
    let snapshot = match from.backend() {
        Backend::Sqlite => "BEGIN",
        Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    };
    let mut source = (*source).begin_with(snapshot).await.map_err(&read)?;
    let counts = match to.backend() {
        Backend::Postgres => {
            // The copy's own connection, native rather than through the `Any` driver: COPY
            // is a sub-protocol of its own that only `PgConnection` speaks.
            let options = PgConnectOptions::from_str(to_url).map_err(|e| write("-", e))?;
            let mut conn = PgConnection::connect_with(&options)
                .await
                .map_err(|e| write("-", e))?;
            let result = into_postgres(&mut source, &mut conn, &columns, paths).await;
            let _ = conn.close().await;
            result?
        }
        Backend::Sqlite => {
            let mut tx = to.write().await.map_err(|e| CopyError::Open {
                side: "target",
                source: e,
            })?;
            let counts = into_sqlite(&mut source, &mut tx, &columns, paths).await?;
            tx.commit().await.map_err(|e| write("-", e))?;
            counts
        }
    };
    // Only read: ending the snapshot cannot lose anything.
    let _ = source.rollback().await;
    Ok(counts)
}

/// The two databases as messages name them (never with a password).
#[derive(Clone, Copy)]
struct Paths<'a> {
    from: &'a str,
    to: &'a str,
}

impl<'a> Paths<'a> {
    fn read(self) -> impl Fn(sqlx::Error) -> CopyError + 'a {
        move |source| CopyError::Read {
            path: self.from.to_string(),
            source,
        }
    }

    fn write(self) -> impl Fn(&'static str, sqlx::Error) -> CopyError + 'a {
        move |table, source| CopyError::Write {
            path: self.to.to_string(),
            table,
            source,
        }
    }
}

/// A column as the copy reads it.
struct Column {
    name: String,
    /// Declared `BOOLEAN`: read as 0/1 (the `Any` driver refuses SQLite's booleans), written
    /// as 0/1 (which PostgreSQL's boolean input takes).
    boolean: bool,
}

/// The newest migration applied to `store`.
async fn schema_version(store: &Store) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
        .fetch_one(store.pool())
        .await
}

/// Checks that the schema has exactly the tables of [`TABLES`] (besides the migrations').
async fn check_tables(
    conn: &mut AnyConnection,
    side: &str,
) -> Result<Result<(), CopyError>, sqlx::Error> {
    let sql = match Backend::of(conn) {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             AND name <> '_sqlx_migrations'"
        }
        Backend::Postgres => {
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
             AND table_name <> '_sqlx_migrations'"
        }
    };
    let found: BTreeSet<String> = sqlx::query_scalar::<_, String>(sql)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    let known: BTreeSet<String> = TABLES.iter().map(|t| t.to_string()).collect();
    if found != known {
        let extra: Vec<_> = found.difference(&known).collect();
        let missing: Vec<_> = known.difference(&found).collect();
        return Ok(Err(CopyError::Schema(format!(
            "the {side} has tables this copy does not know {extra:?} and lacks {missing:?}; \
             use the bulletin version that created the database"
        ))));
    }
    Ok(Ok(()))
}

/// The columns of `table` in the order of the catalogue.
async fn table_columns(conn: &mut AnyConnection, table: &str) -> Result<Vec<Column>, sqlx::Error> {
    let sql = match Backend::of(conn) {
        Backend::Sqlite => "SELECT name, upper(type) FROM pragma_table_info($1) ORDER BY cid",
        Backend::Postgres => {
            "SELECT column_name::text, upper(data_type::text) FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
        }
    };
    let rows: Vec<(String, String)> = sqlx::query_as(sql).bind(table).fetch_all(conn).await?;
    Ok(rows
        .into_iter()
        .map(|(name, ty)| Column {
            boolean: ty == "BOOLEAN",
            name,
        })
        .collect())
}

/// `"name"` with any `"` doubled: column names come from the catalogue, not from this file.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `col1, col2, …` for the target's column list.
fn column_list(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| quoted(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The source's `SELECT` of a whole table, in key order (the first column: `id`, a list id or
/// an address hash), flags as 0/1.
fn select_sql(table: &str, columns: &[Column]) -> String {
    let list = columns
        .iter()
        .map(|c| {
            let name = quoted(&c.name);
            if c.boolean {
                format!(
                    "CAST(CASE WHEN {name} IS NULL THEN NULL WHEN {name} THEN 1 ELSE 0 END \
                     AS BIGINT) AS {name}"
                )
            } else {
                name
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let order = columns
        .iter()
        .take(2)
        .map(|c| quoted(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT {list} FROM {table} ORDER BY {order}")
}

/// Reads column `i` of a source row, whatever its type.
fn value(row: &sqlx::any::AnyRow, i: usize) -> Result<Value, sqlx::Error> {
    use sqlx::any::AnyTypeInfoKind as Kind;
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    Ok(match raw.type_info().kind() {
        Kind::Null => Value::Null,
        // Unchecked: the kind was just looked at, and each decoder takes every width.
        Kind::Bool => Value::Int(i64::from(row.try_get_unchecked::<bool, _>(i)?)),
        Kind::SmallInt | Kind::Integer | Kind::BigInt => Value::Int(row.try_get_unchecked(i)?),
        Kind::Real | Kind::Double => Value::Real(row.try_get_unchecked(i)?),
        Kind::Text => Value::Text(row.try_get_unchecked(i)?),
        Kind::Blob => Value::Blob(row.try_get_unchecked(i)?),
    })
}

/// Appends one field to a line of `COPY … FROM STDIN` text format: `\N` for NULL, and in text
/// the four characters the format gives a meaning escaped (backslash, tab, newline, carriage
/// return), so that an empty string stays an empty string and a name holding `\N` stays
/// those two characters. Everything else, any UTF-8 included, goes as it is.
fn push_copy_field(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"\\N"),
        Value::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Real(x) => out.extend_from_slice(x.to_string().as_bytes()),
        Value::Text(text) => push_copy_text(out, text),
        Value::Blob(bytes) => {
            // bytea's hex input `\x…`, its backslash escaped for the COPY format.
            out.extend_from_slice(b"\\\\x");
            for b in bytes {
                out.extend_from_slice(format!("{b:02x}").as_bytes());
            }
        }
    }
}

/// Text escaped for COPY's text format (see [`push_copy_field`]).
pub(crate) fn push_copy_text(out: &mut Vec<u8>, text: &str) {
    for &b in text.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// Counts the rows of `table` on a connection of either driver's kind.
async fn count_any(conn: &mut AnyConnection, table: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(conn)
        .await
}

async fn count_pg(conn: &mut PgConnection, table: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(conn)
        .await
}

/// Compares the counts; the first difference is the error.
fn verify(counts: Vec<TableCount>) -> Result<Vec<TableCount>, CopyError> {
    match counts.iter().find(|c| c.source != c.target) {
        Some(bad) => Err(CopyError::CountMismatch {
            table: bad.table,
            source_rows: bad.source,
            target_rows: bad.target,
            counts: counts.clone(),
        }),
        None => Ok(counts),
    }
}

/// The copy into PostgreSQL, in one transaction on `conn`: COPY per table, sequences moved,
/// counts verified, then commit. Any error drops the transaction, which rolls it back.
async fn into_postgres(
    source: &mut AnyConnection,
    conn: &mut PgConnection,
    columns: &[Vec<Column>],
    paths: Paths<'_>,
) -> Result<Vec<TableCount>, CopyError> {
    let (write, read) = (paths.write(), paths.read());
    let path = paths.to;
    let mut tx = conn.begin().await.map_err(|e| write("-", e))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)::text")
        .bind(WRITE_LOCK_KEY)
        .execute(&mut *tx)
        .await
        .map_err(|e| write("-", e))?;
    for table in TABLES {
        let rows = count_pg(&mut tx, table)
            .await
            .map_err(|e| write(table, e))?;
        if rows > 0 {
            return Err(CopyError::NotEmpty {
                target: path.to_string(),
                table,
                rows,
            });
        }
    }
    let mut counts = Vec::with_capacity(TABLES.len());
    for (table, columns) in TABLES.iter().zip(columns) {
        let sql = format!("COPY {table} ({}) FROM STDIN", column_list(columns));
        let mut copy = tx.copy_in_raw(&sql).await.map_err(|e| write(table, e))?;
        let select = select_sql(table, columns);
        let mut rows = sqlx::query(&select).persistent(false).fetch(&mut *source);
        let mut buf = Vec::with_capacity(COPY_CHUNK + 4096);
        let streamed: Result<(), CopyError> = async {
            while let Some(row) = rows.try_next().await.map_err(&read)? {
                for i in 0..columns.len() {
                    if i > 0 {
                        buf.push(b'\t');
                    }
                    push_copy_field(&mut buf, &value(&row, i).map_err(&read)?);
                }
                buf.push(b'\n');
                if buf.len() >= COPY_CHUNK {
                    copy.send(std::mem::take(&mut buf))
                        .await
                        .map_err(|e| write(table, e))?;
                    buf.reserve(COPY_CHUNK + 4096);
                }
            }
            Ok(())
        }
        .await;
        drop(rows);
        if let Err(e) = streamed {
            // Ends the COPY on the server side; the transaction is rolled back on drop.
            let _ = copy.abort("bulletin db copy failed").await;
            return Err(e);
        }
        if !buf.is_empty() {
            copy.send(buf).await.map_err(|e| write(table, e))?;
        }
        copy.finish().await.map_err(|e| write(table, e))?;
        if columns.iter().any(|c| c.name == "id") {
            // Ids were written, not drawn from the identity's sequence: move it past them so
            // the next row the server numbers gets a free id. (`setval` of NULL, an empty
            // table, does nothing.)
            sqlx::query(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), MAX(id))::text FROM {table}"
            ))
            .execute(&mut *tx)
            .await
            .map_err(|e| write(table, e))?;
        }
        counts.push(TableCount {
            table,
            source: count_any(source, table).await.map_err(&read)?,
            target: count_pg(&mut tx, table)
                .await
                .map_err(|e| write(table, e))?,
        });
    }
    let counts = verify(counts)?;
    tx.commit().await.map_err(|e| write("-", e))?;
    Ok(counts)
}

/// The copy into SQLite, inside the caller's write transaction: multi-row `INSERT`s per table,
/// counts verified. The caller commits; an error drops (rolls back) the transaction.
async fn into_sqlite(
    source: &mut AnyConnection,
    tx: &mut AnyConnection,
    columns: &[Vec<Column>],
    paths: Paths<'_>,
) -> Result<Vec<TableCount>, CopyError> {
    let (write, read) = (paths.write(), paths.read());
    let path = paths.to;
    for table in TABLES {
        let rows = count_any(tx, table).await.map_err(|e| write(table, e))?;
        if rows > 0 {
            return Err(CopyError::NotEmpty {
                target: path.to_string(),
                table,
                rows,
            });
        }
    }
    let mut counts = Vec::with_capacity(TABLES.len());
    for (table, columns) in TABLES.iter().zip(columns) {
        let width = columns.len();
        let per_statement = (super::SQLITE_VALUES_PER_STATEMENT / width).max(1);
        let select = select_sql(table, columns);
        let mut rows = sqlx::query(&select).persistent(false).fetch(&mut *source);
        let mut pending: Vec<Value> = Vec::with_capacity(per_statement * width);
        loop {
            let row = rows.try_next().await.map_err(&read)?;
            if let Some(row) = &row {
                for i in 0..width {
                    pending.push(value(row, i).map_err(&read)?);
                }
            }
            let full = pending.len() >= per_statement * width;
            if full || (row.is_none() && !pending.is_empty()) {
                insert_sqlite(tx, table, columns, &pending)
                    .await
                    .map_err(|e| write(table, e))?;
                pending.clear();
            }
            if row.is_none() {
                break;
            }
        }
        drop(rows);
        counts.push(TableCount {
            table,
            source: count_any(source, table).await.map_err(&read)?,
            target: count_any(tx, table).await.map_err(|e| write(table, e))?,
        });
    }
    verify(counts)
}

/// One multi-row `INSERT` of `values` (whole rows of `columns`, end to end).
async fn insert_sqlite(
    tx: &mut AnyConnection,
    table: &str,
    columns: &[Column],
    values: &[Value],
) -> Result<(), sqlx::Error> {
    let width = columns.len();
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", column_list(columns));
    for row in 0..values.len() / width {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..width {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(row * width + column + 1).to_string());
        }
        sql.push(')');
    }
    let mut q = sqlx::query(&sql);
    for v in values {
        q = match v {
            Value::Null => q.bind(None::<i64>),
            Value::Int(n) => q.bind(*n),
            Value::Real(x) => q.bind(*x),
            Value::Text(t) => q.bind(t.as_str()),
            Value::Blob(b) => q.bind(b.as_slice()),
        };
    }
    q.execute(tx).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::{Value, push_copy_field};

    fn line(values: &[Value]) -> String {
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            push_copy_field(&mut out, v);
        }
        String::from_utf8(out).expect("utf-8 in, utf-8 out")
    }

    /// The characters COPY's text format gives a meaning are escaped; NULL and the empty
    /// string stay apart; everything else passes as it is.
    #[test]
    fn copy_fields_are_escaped() {
        assert_eq!(
            line(&[
                Value::Text("a\tb\nc\rd\\e".into()),
                Value::Text(String::new()),
                Value::Null,
                Value::Text("\\N".into()),
                Value::Text("مرحبا 👋".into()),
                Value::Int(-7),
                Value::Blob(vec![0, 255]),
            ]),
            "a\\tb\\nc\\rd\\\\e\t\t\\N\t\\\\N\tمرحبا 👋\t-7\t\\\\x00ff"
        );
    }
}
