//! Carrying out a [`Plan`]: the last step of an import, and the one that sets its speed.
//!
//! Binding values through the driver is most of an import's cost, so the batch is written
//! with as few bound values as the statements allow: new subscribers by multi-row `INSERT`s
//! of up to [`ROWS_PER_STATEMENT`] rows; their subscriptions and events by one
//! `INSERT ... SELECT` per run of rows joining the same lists, over the run's id range, with
//! a handful of parameters whatever the run's length; the rare rest (updates, joins of known
//! subscribers, files whose rows keep changing lists) by multi-row `INSERT`s or row by row.

use sqlx::AnyConnection;
use sqlx::postgres::PgConnection;

use super::conn::{Arg, Conn};
use super::plan::{EventRow, JoinRow, Memberships, Plan, Update};
use super::{ImportOptions, ImportRecord, ImportReport, NONCE_LEN};
use crate::store::SubscriptionStatus;
use crate::store::copy::push_copy_text;
use crate::store::subscribers::SET_SUBSCRIPTION_STATUS;

/// Above this many runs of new subscribers joining the same lists, a batch binds their
/// subscriptions row by row instead of writing one `INSERT ... SELECT` per run and list.
const SET_BASED_RUNS: usize = 16;

/// Rows per multi-row INSERT: at most 8 parameters a row, within
/// [`crate::store::SQLITE_VALUES_PER_STATEMENT`] (binding cost grows with its square).
const ROWS_PER_STATEMENT: usize = crate::store::SQLITE_VALUES_PER_STATEMENT / 8;

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

/// Writes `plan`, made from `records`, at time `now`; `nonces` holds a token nonce per record.
/// Returns the plan's report.
///
/// On PostgreSQL the new subscribers, and every subscription and event the batch adds, go
/// through `COPY … FROM STDIN` (one statement per table, whatever the batch's size, and no
/// bound parameters at all); on SQLite through the multi-row and set-based inserts below.
pub(super) async fn write(
    conn: &mut Conn<'_>,
    records: &[ImportRecord],
    plan: Plan<'_>,
    nonces: &str,
    options: &ImportOptions,
    now: &str,
) -> Result<ImportReport, sqlx::Error> {
    let Plan {
        report,
        fresh,
        mut joins,
        updates,
        status_changes,
        mut events,
    } = plan;
    // New subscribers get consecutive ids in file order (so that an export lists them as the
    // file did), counting up from the largest one: safe because the transaction holds the
    // write lock (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's advisory lock that every writer
    // takes), so nobody else inserts meanwhile.
    let first_id = conn
        .int("SELECT COALESCE(MAX(id), 0) + 1 FROM subscribers", &[])
        .await?;
    let new = NewSubscribers {
        fresh: &fresh,
        first_id,
    };
    let rows = new_rows(records, &fresh, first_id, nonces);
    match conn {
        Conn::Any(c) => {
            insert_subscribers(c, &rows, now).await?;
            new.write_memberships(c, options, now, &mut joins, &mut events)
                .await?;
        }
        Conn::Pg(c) => {
            copy_subscribers(c, &rows, now).await?;
            if !fresh.is_empty() {
                // The ids above were written, not drawn from the identity's sequence: move
                // it past them, in the same transaction (under the write lock), so the next
                // insert that lets the server pick (a form subscription) gets a free one.
                sqlx::query(
                    "SELECT setval(pg_get_serial_sequence('subscribers', 'id'), MAX(id))::text FROM subscribers",
                )
                .execute(&mut **c)
                .await?;
            }
            // COPY takes any number of rows for the price of one statement: the new
            // subscribers' subscriptions and events go with the other joins below.
            new.row_by_row(&mut joins, &mut events);
        }
    }
    update_fields(conn, &updates, now).await?;
    for change in &status_changes {
        set_status(
            conn,
            change.id,
            change.list,
            change.status,
            &options.source,
            now,
        )
        .await?;
    }
    match conn {
        Conn::Any(c) => {
            insert_joins(c, &joins, options, now).await?;
            insert_events(c, &joins, events, options, now).await?;
        }
        Conn::Pg(c) => {
            copy_joins(c, &joins, options, now).await?;
            copy_events(c, &joins, events, options, now).await?;
        }
    }
    Ok(report)
}

/// The new subscribers' own rows, with ids counting up from `first_id`.
fn new_rows<'a>(
    records: &'a [ImportRecord],
    fresh: &[(usize, Memberships)],
    first_id: i64,
    nonces: &'a str,
) -> Vec<NewRow<'a>> {
    fresh
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
        .collect()
}

/// The new subscribers' own rows (SQLite).
async fn insert_subscribers(
    conn: &mut AnyConnection,
    new_rows: &[NewRow<'_>],
    now: &str,
) -> Result<(), sqlx::Error> {
    // The timestamp is bound once per statement, not twice per row (binding is most of the
    // import's cost), and the SQL text stays the same from batch to batch, so the prepared
    // statement is reused. (VALUES names its columns column1..N in SQLite and PostgreSQL.)
    for chunk in new_rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO subscribers (id, email, email_key, name, language, attributes, token_nonce,
                                      status, created_at, updated_at)
             SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7,
                    'active', t.at, t.at
             FROM (SELECT CAST($1 AS TEXT) AS at) t, (VALUES {}) v",
            placeholders(chunk.len(), 7, 2)
        );
        let mut q = sqlx::query(&sql).bind(now);
        for r in chunk {
            q = q
                .bind(r.id)
                .bind(r.email)
                .bind(r.key)
                .bind(r.name)
                .bind(r.language)
                .bind(r.attributes)
                .bind(r.nonce);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// `($first, $first+1, …), (…)`: `rows` rows of `columns` numbered placeholders, for a
/// multi-row `VALUES` (sqlx's `QueryBuilder` writes `?` for the `Any` driver, which
/// PostgreSQL does not take).
fn placeholders(rows: usize, columns: usize, first: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 6);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(first + row * columns + column).to_string());
        }
        sql.push(')');
    }
    sql
}

/// The new subscribers of a batch: `fresh[i]` got id `first_id + i`.
struct NewSubscribers<'p> {
    fresh: &'p [(usize, Memberships)],
    first_id: i64,
}

impl NewSubscribers<'_> {
    /// Their subscriptions and events. Files list people with the same lists in long runs
    /// (most files have a single run): each run is written by one statement per list, over
    /// its id range. A file whose rows keep changing lists falls back to binding row by row:
    /// its subscriptions go to `joins` and its `created` events to `events`.
    async fn write_memberships(
        &self,
        conn: &mut AnyConnection,
        options: &ImportOptions,
        now: &str,
        joins: &mut Vec<JoinRow>,
        events: &mut Vec<EventRow>,
    ) -> Result<(), sqlx::Error> {
        let runs = self.runs();
        if runs.len() > SET_BASED_RUNS {
            self.row_by_row(joins, events);
            return Ok(());
        }
        for (start, len) in runs {
            let memberships = &self.fresh[start].1;
            let first = self.first_id + start as i64;
            let last = first + len as i64 - 1;
            if memberships.is_empty() {
                // Joining a list is recorded by its `subscribed` event; a subscriber who
                // joins none gets a `created` event so that no change goes unrecorded.
                sqlx::query(
                    "INSERT INTO events (occurred_at, kind, subscriber_id, source)
                     SELECT $1, 'created', id, $2 FROM subscribers WHERE id BETWEEN $3 AND $4",
                )
                .bind(now)
                .bind(&options.source)
                .bind(first)
                .bind(last)
                .execute(&mut *conn)
                .await?;
            }
            for (list, status) in memberships {
                insert_run_subscriptions(conn, *list, *status, (first, last), options, now).await?;
            }
        }
        Ok(())
    }

    /// `(start, len)` of each run of consecutive new subscribers joining the same lists.
    fn runs(&self) -> Vec<(usize, usize)> {
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for (index, (_, memberships)) in self.fresh.iter().enumerate() {
            match runs.last_mut() {
                Some((start, len)) if self.fresh[*start].1 == *memberships => *len += 1,
                _ => runs.push((index, 1)),
            }
        }
        runs
    }

    /// Their subscriptions and `created` events as rows, for the multi-row inserts.
    fn row_by_row(&self, joins: &mut Vec<JoinRow>, events: &mut Vec<EventRow>) {
        for ((_, memberships), id) in self.fresh.iter().zip(self.first_id..) {
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
    }
}

/// One run's subscriptions to `list`, and their events, for the ids `first..=last`.
async fn insert_run_subscriptions(
    conn: &mut AnyConnection,
    list: i64,
    status: SubscriptionStatus,
    (first, last): (i64, i64),
    options: &ImportOptions,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO subscriptions (subscriber_id, list_id, status, consent_source, created_at,
                                    updated_at, confirmed_at, unsubscribed_at)
         SELECT id, $1, $2, $3, $4, $4, $5, $6 FROM subscribers WHERE id BETWEEN $7 AND $8",
    )
    .bind(list)
    .bind(status.as_str())
    .bind(&options.source)
    .bind(now)
    .bind((status == SubscriptionStatus::Confirmed).then_some(now))
    .bind((status == SubscriptionStatus::Unsubscribed).then_some(now))
    .bind(first)
    .bind(last)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO events (occurred_at, kind, subscriber_id, list_id, source, detail)
         SELECT $1, $2, id, $3, $4, $5 FROM subscribers WHERE id BETWEEN $6 AND $7",
    )
    .bind(now)
    .bind(subscription_event_kind(status))
    .bind(list)
    .bind(&options.source)
    .bind(status_detail(status))
    .bind(first)
    .bind(last)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Overwrites the fields of existing subscribers (`--update`).
async fn update_fields(
    conn: &mut Conn<'_>,
    updates: &[Update<'_>],
    now: &str,
) -> Result<(), sqlx::Error> {
    for Update { id, record } in updates {
        conn.execute(
            "UPDATE subscribers SET name = COALESCE($1, name), language = COALESCE($2, language),
                    attributes = $3, updated_at = $4 WHERE id = $5",
            &[
                Arg::OptText(record.name.as_deref()),
                Arg::OptText(record.language.as_deref()),
                Arg::Text(&record.attributes_json),
                Arg::Text(now),
                Arg::Int(*id),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Moves one subscription to `status` and records it, as `set_subscription_status` does for
/// the rest of the store, on either kind of connection.
async fn set_status(
    conn: &mut Conn<'_>,
    subscriber_id: i64,
    list_id: i64,
    status: SubscriptionStatus,
    source: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    conn.execute(
        SET_SUBSCRIPTION_STATUS,
        &[
            Arg::Text(status.as_str()),
            Arg::Text(now),
            Arg::Text(source),
            Arg::Int(subscriber_id),
            Arg::Int(list_id),
        ],
    )
    .await?;
    let kind = match status {
        SubscriptionStatus::Unsubscribed => "unsubscribed",
        SubscriptionStatus::Confirmed => "confirmed",
        SubscriptionStatus::Unconfirmed => "subscribed",
    };
    conn.execute(
        "INSERT INTO events (occurred_at, kind, subscriber_id, list_id, source, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            Arg::Text(now),
            Arg::Text(kind),
            Arg::Int(subscriber_id),
            Arg::Int(list_id),
            Arg::Text(source),
            Arg::Text(status_detail(status)),
        ],
    )
    .await
}

/// Subscriptions bound row by row: existing subscribers joining a list (rare enough), and
/// new ones when their file keeps changing lists.
async fn insert_joins(
    conn: &mut AnyConnection,
    joins: &[JoinRow],
    options: &ImportOptions,
    now: &str,
) -> Result<(), sqlx::Error> {
    for chunk in joins.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO subscriptions (subscriber_id, list_id, status, consent_source, created_at, updated_at,
                                        confirmed_at, unsubscribed_at) VALUES {}",
            placeholders(chunk.len(), 8, 1)
        );
        let mut q = sqlx::query(&sql);
        for j in chunk {
            q = q
                .bind(j.id)
                .bind(j.list)
                .bind(j.status.as_str())
                .bind(options.source.as_str())
                .bind(now)
                .bind(now)
                .bind((j.status == SubscriptionStatus::Confirmed).then_some(now))
                .bind((j.status == SubscriptionStatus::Unsubscribed).then_some(now));
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The events of `joins` first, then `events`, bound row by row.
async fn insert_events(
    conn: &mut AnyConnection,
    joins: &[JoinRow],
    events: Vec<EventRow>,
    options: &ImportOptions,
    now: &str,
) -> Result<(), sqlx::Error> {
    let all_events = with_join_events(joins, events);
    for chunk in all_events.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO events (occurred_at, kind, subscriber_id, list_id, source, detail) VALUES {}",
            placeholders(chunk.len(), 6, 1)
        );
        let mut q = sqlx::query(&sql);
        for e in chunk {
            q = q
                .bind(now)
                .bind(e.kind)
                .bind(e.id)
                .bind(e.list)
                .bind(options.source.as_str())
                .bind(e.detail.as_str());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The events of `joins`, then `events`.
fn with_join_events(joins: &[JoinRow], events: Vec<EventRow>) -> Vec<EventRow> {
    let join_events = joins.iter().map(|j| EventRow {
        id: j.id,
        list: Some(j.list),
        kind: subscription_event_kind(j.status),
        detail: status_detail(j.status).to_owned(),
    });
    join_events.chain(events).collect()
}

/// Rows of COPY's text format, field by field (see `store::copy` for the escaping).
struct CopyRows {
    data: Vec<u8>,
    /// At the start of a line: no tab before the next field.
    line_start: bool,
}

impl CopyRows {
    fn with_capacity(bytes: usize) -> Self {
        Self {
            data: Vec::with_capacity(bytes),
            line_start: true,
        }
    }

    fn separate(&mut self) {
        if !self.line_start {
            self.data.push(b'\t');
        }
        self.line_start = false;
    }

    fn text(&mut self, text: &str) -> &mut Self {
        self.separate();
        push_copy_text(&mut self.data, text);
        self
    }

    fn opt_text(&mut self, text: Option<&str>) -> &mut Self {
        match text {
            Some(text) => self.text(text),
            None => {
                self.separate();
                self.data.extend_from_slice(b"\\N");
                self
            }
        }
    }

    fn int(&mut self, n: i64) -> &mut Self {
        self.separate();
        self.data.extend_from_slice(n.to_string().as_bytes());
        self
    }

    fn opt_int(&mut self, n: Option<i64>) -> &mut Self {
        match n {
            Some(n) => self.int(n),
            None => self.opt_text(None),
        }
    }

    fn end_line(&mut self) {
        self.data.push(b'\n');
        self.line_start = true;
    }

    /// Sends the rows with `copy` (a `COPY … FROM STDIN`), unless there are none.
    async fn send(self, conn: &mut PgConnection, copy: &str) -> Result<(), sqlx::Error> {
        if self.data.is_empty() {
            return Ok(());
        }
        let mut stream = conn.copy_in_raw(copy).await?;
        if let Err(e) = stream.send(self.data).await {
            let _ = stream.abort("bulletin import failed").await;
            return Err(e);
        }
        stream.finish().await.map(|_| ())
    }
}

/// The new subscribers' own rows (PostgreSQL), by COPY.
async fn copy_subscribers(
    conn: &mut PgConnection,
    new_rows: &[NewRow<'_>],
    now: &str,
) -> Result<(), sqlx::Error> {
    let mut rows = CopyRows::with_capacity(new_rows.len() * 160);
    for r in new_rows {
        rows.int(r.id)
            .text(r.email)
            .text(r.key)
            .text(r.name)
            .opt_text(r.language)
            .text(r.attributes)
            .text(r.nonce)
            .text("active")
            .text(now)
            .text(now)
            .end_line();
    }
    rows.send(
        conn,
        "COPY subscribers (id, email, email_key, name, language, attributes, token_nonce, status,
                           created_at, updated_at) FROM STDIN",
    )
    .await
}

/// Subscriptions (PostgreSQL), by COPY.
async fn copy_joins(
    conn: &mut PgConnection,
    joins: &[JoinRow],
    options: &ImportOptions,
    now: &str,
) -> Result<(), sqlx::Error> {
    let mut rows = CopyRows::with_capacity(joins.len() * 100);
    for j in joins {
        rows.int(j.id)
            .int(j.list)
            .text(j.status.as_str())
            .text(&options.source)
            .text(now)
            .text(now)
            .opt_text((j.status == SubscriptionStatus::Confirmed).then_some(now))
            .opt_text((j.status == SubscriptionStatus::Unsubscribed).then_some(now))
            .end_line();
    }
    rows.send(
        conn,
        "COPY subscriptions (subscriber_id, list_id, status, consent_source, created_at, updated_at,
                             confirmed_at, unsubscribed_at) FROM STDIN",
    )
    .await
}

/// The events of `joins` first, then `events` (PostgreSQL), by COPY; the server numbers them.
async fn copy_events(
    conn: &mut PgConnection,
    joins: &[JoinRow],
    events: Vec<EventRow>,
    options: &ImportOptions,
    now: &str,
) -> Result<(), sqlx::Error> {
    let all_events = with_join_events(joins, events);
    let mut rows = CopyRows::with_capacity(all_events.len() * 100);
    for e in &all_events {
        rows.text(now)
            .text(e.kind)
            .int(e.id)
            .opt_int(e.list)
            .text(&options.source)
            .text(&e.detail)
            .end_line();
    }
    rows.send(
        conn,
        "COPY events (occurred_at, kind, subscriber_id, list_id, source, detail) FROM STDIN",
    )
    .await
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
