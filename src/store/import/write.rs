//! Carrying out a [`Plan`]: the last step of an import, and the one that sets its speed.
//!
//! Binding values through the driver is most of an import's cost, so the batch is written
//! with as few bound values as the statements allow: new subscribers by multi-row `INSERT`s
//! of up to [`ROWS_PER_STATEMENT`] rows; their subscriptions and events by one
//! `INSERT ... SELECT` per run of rows joining the same lists, over the run's id range, with
//! a handful of parameters whatever the run's length; the rare rest (updates, joins of known
//! subscribers, files whose rows keep changing lists) by multi-row `INSERT`s or row by row.

use sqlx::AnyConnection;

use crate::store::Backend;

use super::plan::{EventRow, JoinRow, Memberships, Plan, Update};
use super::{ImportOptions, ImportRecord, ImportReport, NONCE_LEN};
use crate::store::SubscriptionStatus;
use crate::store::subscribers::set_subscription_status;

/// Above this many runs of new subscribers joining the same lists, a batch binds their
/// subscriptions row by row instead of writing one `INSERT ... SELECT` per run and list.
const SET_BASED_RUNS: usize = 16;

/// Rows per multi-row INSERT: at most 8 parameters a row stays well under SQLite's 32,766.
const ROWS_PER_STATEMENT: usize = 1_000;

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
pub(super) async fn write(
    conn: &mut AnyConnection,
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
    // file did), counting up from the largest one: safe because `BEGIN IMMEDIATE` holds the
    // write lock, so nobody else inserts meanwhile. (PostgreSQL would take a block of ids
    // from its sequence instead.)
    let first_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM subscribers")
        .fetch_one(&mut *conn)
        .await?;
    insert_subscribers(conn, records, &fresh, first_id, nonces, now).await?;
    if !fresh.is_empty() && Backend::of(conn) == Backend::Postgres {
        // The ids above were written, not drawn from the identity's sequence: move it past
        // them, in the same transaction (under the write lock), so the next insert that lets
        // the server pick (a form subscription) gets a free one.
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('subscribers', 'id'), MAX(id))::text FROM subscribers",
        )
        .execute(&mut *conn)
        .await?;
    }
    let new = NewSubscribers {
        fresh: &fresh,
        first_id,
    };
    new.write_memberships(conn, options, now, &mut joins, &mut events)
        .await?;
    update_fields(conn, &updates, now).await?;
    for change in &status_changes {
        set_subscription_status(
            conn,
            change.id,
            change.list,
            change.status,
            &options.source,
            now,
        )
        .await?;
    }
    insert_joins(conn, &joins, options, now).await?;
    insert_events(conn, &joins, events, options, now).await?;
    Ok(report)
}

/// The new subscribers' own rows, with ids counting up from `first_id`.
async fn insert_subscribers(
    conn: &mut AnyConnection,
    records: &[ImportRecord],
    fresh: &[(usize, Memberships)],
    first_id: i64,
    nonces: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
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
    conn: &mut AnyConnection,
    updates: &[Update<'_>],
    now: &str,
) -> Result<(), sqlx::Error> {
    for Update { id, record } in updates {
        sqlx::query(
            "UPDATE subscribers SET name = COALESCE($1, name), language = COALESCE($2, language),
                    attributes = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(&record.name)
        .bind(&record.language)
        .bind(&record.attributes_json)
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
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
    let join_events = joins.iter().map(|j| EventRow {
        id: j.id,
        list: Some(j.list),
        kind: subscription_event_kind(j.status),
        detail: status_detail(j.status).to_owned(),
    });
    let all_events: Vec<EventRow> = join_events.chain(events).collect();
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
