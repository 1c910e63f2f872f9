//! The pacing rows that hold caps across processes: `campaign_pacing` (a campaign's rate and
//! hourly cap, shared by all its workers: [`Store::reserve_slots`]) and `worker_pacing` (one
//! worker's own hourly cap, `bulletin worker --name mx1 --hourly-cap 500`, under its name:
//! [`Store::reserve_worker_slots`]).
//!
//! Both reserve through one transaction ([`Store::reserve_paced`]) and one arithmetic
//! ([`super::campaigns::pace`]). A worker's row is keyed by its `--name`, not its process, so
//! every campaign it works and every restart count against the same hour window, and workers
//! that share a name (one outbound IP's identity) share the cap.

use super::campaigns::{Caps, now_us, pace};
use super::{Backend, Store, StoreError};

/// Which pacing row a reservation is made on.
#[derive(Debug, Clone, Copy)]
pub(super) enum PacingRow<'a> {
    /// A campaign's row in `campaign_pacing`.
    Campaign(i64),
    /// A worker name's row in `worker_pacing`.
    Worker(&'a str),
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

impl<'a> PacingRow<'a> {
    /// The table and its key column. Static names only: nothing from outside reaches the SQL.
    fn table(self) -> (&'static str, &'static str) {
        match self {
            Self::Campaign(_) => ("campaign_pacing", "campaign_id"),
            Self::Worker(_) => ("worker_pacing", "name"),
        }
    }

    /// Binds the row's key to the query's next placeholder.
    fn bind<'q>(self, q: AnyQuery<'q>) -> AnyQuery<'q>
    where
        'a: 'q,
    {
        match self {
            Self::Campaign(id) => q.bind(id),
            Self::Worker(name) => q.bind(name),
        }
    }
}

/// What one reservation on a pacing row found.
#[derive(Debug, Clone, Copy)]
pub(super) struct Paced {
    /// Slots granted (0 when none may leave now).
    pub granted: usize,
    /// When none were granted, how long until the next one.
    pub wait: std::time::Duration,
    /// The start of the row's hour window after the reservation, in µs.
    pub window_start_us: i64,
    /// The row's next slot after the reservation, in µs.
    pub next_slot_us: i64,
    /// The clock the reservation was made at, in µs.
    pub now_us: i64,
}

/// What [`Store::reserve_worker_slots`] granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSlots {
    /// How many messages may leave now: claim at most that many rows.
    pub granted: usize,
    /// The hour window the slots belong to; unused ones are given back with it
    /// ([`Store::refund_worker_slots`]).
    pub window: i64,
    /// When none were granted: when the window ends and the next message may leave.
    pub next_at: Option<time::OffsetDateTime>,
}

impl Store {
    /// Reserves up to `wanted` slots on one pacing row, for every process that paces on it:
    /// a short write transaction that reads the row, runs [`pace`] and writes the row back.
    pub(super) async fn reserve_paced(
        &self,
        row: PacingRow<'_>,
        caps: Caps,
        wanted: usize,
    ) -> Result<Paced, StoreError> {
        let (table, key) = row.table();
        let mut tx = self.write_rows().await?;
        row.bind(sqlx::query(&format!(
            "INSERT INTO {table} ({key}) VALUES ($1) ON CONFLICT ({key}) DO NOTHING"
        )))
        .execute(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        // PostgreSQL: the row lock makes the reservations take turns (READ COMMITTED would
        // otherwise let two read the same slot). SQLite's BEGIN IMMEDIATE already did.
        let lock = match self.backend() {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        };
        let select = format!(
            "SELECT next_slot_us, window_start_us, window_count FROM {table} WHERE {key} = $1{lock}"
        );
        let select = sqlx::query_as(&select);
        let select = match row {
            PacingRow::Campaign(id) => select.bind(id),
            PacingRow::Worker(name) => select.bind(name),
        };
        let (next, window_start, count): (i64, i64, i64) = select
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
        let now = now_us();
        let (granted, next, window_start, count, wait) =
            pace(caps, (next, window_start, count), now, wanted);
        if granted > 0 {
            row.bind(
                sqlx::query(&format!(
                    "UPDATE {table} SET next_slot_us = $1, window_start_us = $2, window_count = $3
                     WHERE {key} = $4"
                ))
                .bind(next)
                .bind(window_start)
                .bind(count),
            )
            .execute(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
        }
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(Paced {
            granted,
            wait,
            window_start_us: window_start,
            next_slot_us: next,
            now_us: now,
        })
    }

    /// Reserves up to `wanted` send slots of the worker `name`'s own hourly cap (`worker
    /// --hourly-cap`), counted across every campaign and run of every worker of that name.
    /// Slots are counted when reserved, so a message that fails or is retried uses one too
    /// (the outbound IP did offer it); give back what no row was claimed for.
    pub async fn reserve_worker_slots(
        &self,
        name: &str,
        hourly_cap: i64,
        wanted: usize,
    ) -> Result<WorkerSlots, StoreError> {
        let caps = Caps {
            rate: 0.0,
            hourly_cap,
        };
        if !caps.limits() || wanted == 0 {
            return Ok(WorkerSlots {
                granted: wanted,
                window: 0,
                next_at: None,
            });
        }
        let paced = self
            .reserve_paced(PacingRow::Worker(name), caps, wanted)
            .await?;
        let next_at = (paced.granted == 0).then(|| {
            let at_us = i128::from(paced.now_us)
                + i128::try_from(paced.wait.as_micros()).unwrap_or(i128::MAX / 2);
            // An hour from a time read off this clock is always a representable date.
            time::OffsetDateTime::from_unix_timestamp_nanos(at_us * 1000)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        });
        Ok(WorkerSlots {
            granted: paced.granted,
            window: paced.window_start_us,
            next_at,
        })
    }

    /// Gives back `unused` slots of [`Store::reserve_worker_slots`] (the campaign's own caps
    /// allowed fewer, or the queue ran dry), but only into the window they were taken from:
    /// once another worker of the same name has started a new window, slots of the old one
    /// are worth nothing, and returning them would let the new window exceed the cap.
    pub async fn refund_worker_slots(
        &self,
        name: &str,
        window: i64,
        unused: usize,
    ) -> Result<(), StoreError> {
        if unused == 0 {
            return Ok(());
        }
        let unused = i64::try_from(unused).unwrap_or(i64::MAX);
        sqlx::query(
            "UPDATE worker_pacing
                SET window_count = CASE WHEN window_count > $1 THEN window_count - $1 ELSE 0 END
              WHERE name = $2 AND window_start_us = $3",
        )
        .bind(unused)
        .bind(name)
        .bind(window)
        .execute(&self.pool)
        .await
        .map_err(|e| self.classify(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_worker_s_hourly_cap_is_its_name_s_and_slots_go_back_only_into_their_window() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("p.db").display());
        let store = Store::open(&url, 5_000).await.expect("store");
        let take = |name: &'static str, wanted: usize| {
            let store = store.clone();
            async move {
                store
                    .reserve_worker_slots(name, 10, wanted)
                    .await
                    .expect("reserve")
            }
        };
        let first = take("mx1", 4).await;
        assert_eq!((first.granted, first.next_at), (4, None));
        assert_eq!(take("mx1", 10).await.granted, 6, "the rest of the hour");
        let used_up = take("mx1", 1).await;
        assert_eq!(used_up.granted, 0);
        let opens = used_up.next_at.expect("when it opens");
        assert_eq!(
            opens.unix_timestamp_nanos() / 1000,
            i128::from(first.window) + 3_600_000_000,
            "an hour after the window's first message"
        );
        assert_eq!(take("mx2", 3).await.granted, 3, "another name, another cap");
        // Slots that found no row go back, into the same window.
        store
            .refund_worker_slots("mx1", first.window, 2)
            .await
            .expect("refund");
        assert_eq!(take("mx1", 5).await.granted, 2);
        // An hour later a new window opens; slots of the old one given back then are worth
        // nothing, or the new window would hold more than the cap.
        sqlx::query("UPDATE worker_pacing SET window_start_us = window_start_us - 3600000001")
            .execute(store.pool())
            .await
            .expect("age the window");
        let aged = first.window - 3_600_000_001;
        let fresh = take("mx1", 10).await;
        assert_eq!(fresh.granted, 10);
        assert_ne!(fresh.window, aged);
        store
            .refund_worker_slots("mx1", aged, 4)
            .await
            .expect("refund");
        assert_eq!(take("mx1", 1).await.granted, 0, "the cap holds");
        // No cap: everything, and no row written.
        let free = store.reserve_worker_slots("mx3", 0, 7).await.expect("free");
        assert_eq!(free.granted, 7);
    }
}
