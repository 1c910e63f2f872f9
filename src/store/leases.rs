//! Who is sending a campaign: one lease per sender process. A lease is either **exclusive**
//! (`bulletin send`: refused while any other sender holds a live lease, and while it stands no
//! worker joins) or **shared** (`bulletin worker`: any number of workers on any number of hosts
//! work one campaign at once, each claiming its own rows).
//!
//! A lease is taken in a write transaction, and renewed in the same transaction that settles
//! and claims deliveries ([`Store::settle_and_claim`]) as well as by a heartbeat between turns.
//! It expires when not renewed in time. On the same host a lease whose process no longer
//! exists (checked in `/proc`, with the process's start time so that a recycled pid does not
//! pass) is dead at once, so `kill -9` followed by `send` resumes without waiting.
//!
//! Claimed rows carry the lease owner (`deliveries.claimed_by`), and only that owner settles
//! them. So a new lease turns into `uncertain` only the `sending` rows whose owner has no live
//! lease, and a worker that finds another worker's lease dead mid-campaign
//! ([`Store::reap_dead_leases`]) sends that worker's rows again: nobody else's rows are touched.

use std::time::Duration;

use serde::Serialize;

use super::campaigns::CampaignError;
use super::{Store, StoreError, now, timestamp};

/// This process, as a lease holder.
#[derive(Debug, Clone)]
pub struct LeaseHolder {
    /// A random token, new for every process.
    pub owner: String,
    /// The host name.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// The process's start time in clock ticks since boot (Linux), or empty.
    pub pid_started: String,
    /// Shown in leases and logs: a worker's `--name`, else `host:pid`.
    pub name: String,
}

impl LeaseHolder {
    /// The current process.
    pub fn this_process() -> Self {
        let pid = std::process::id();
        let mut random = [0u8; 12];
        // An all-zero token would still be unique together with host and pid, so a failure of
        // the system's random source is not worth refusing to send over.
        let _ =
            aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut random);
        let mut owner = String::with_capacity(24);
        super::subscribers::push_lower_hex(&random, &mut owner);
        let host = host_name();
        Self {
            owner,
            name: format!("{host}:{pid}"),
            host,
            pid,
            pid_started: process_start(pid).unwrap_or_default(),
        }
    }

    /// The same holder under another name (`bulletin worker --name`).
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }
}

/// How a lease shares its campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaseKind {
    /// `bulletin send`: the only sender while it stands.
    Exclusive,
    /// `bulletin worker`: one of any number of cooperating workers.
    Shared,
}

impl LeaseKind {
    /// The value stored in `send_leases.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exclusive => "exclusive",
            Self::Shared => "shared",
        }
    }
}

super::text_enum!(LeaseKind: Exclusive, Shared);

/// A lease held by this process.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The campaign the lease is on.
    pub campaign_id: i64,
    /// Our owner token.
    pub owner: String,
    /// How long the lease lasts without renewal.
    pub ttl: Duration,
    /// Exclusive (`send`) or shared (a worker).
    pub kind: LeaseKind,
}

/// Somebody's lease, as shown to people.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct LeaseInfo {
    /// Owner token.
    pub owner: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: i64,
    /// Process start time, for the liveness check.
    #[serde(skip)]
    pub pid_started: String,
    /// When taken.
    pub acquired_at: String,
    /// Last renewal.
    pub heartbeat_at: String,
    /// When it lapses unless renewed.
    pub expires_at: String,
    /// Exclusive (`send`) or shared (a worker).
    pub kind: LeaseKind,
    /// The holder's name (a worker's `--name`, else `host:pid`).
    pub name: String,
}

impl LeaseInfo {
    /// Whether the lease still stands: not expired, and (on this host) its process lives.
    pub(crate) fn is_live(&self, now: &str, here: &str) -> bool {
        if self.expires_at.as_str() <= now {
            return false;
        }
        if self.host == here {
            let pid = u32::try_from(self.pid).unwrap_or(0);
            return match process_start(pid) {
                None => false,
                Some(started) => self.pid_started.is_empty() || started == self.pid_started,
            };
        }
        true
    }
}

pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`), or None if there is no such
/// process (or no `/proc`).
fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19).map(str::to_string)
}

const LEASE_SELECT: &str =
    "SELECT owner, host, pid, pid_started, acquired_at, heartbeat_at, expires_at, kind, name
     FROM send_leases WHERE campaign_id = $1";

/// Rows in flight whose owner holds no lease on the campaign (any more): the dead senders'.
/// Dead leases are deleted first, in the same transaction.
const ORPHANS: &str = "campaign_id = $2 AND status = 'sending'
     AND (claimed_by IS NULL
          OR claimed_by NOT IN (SELECT owner FROM send_leases WHERE campaign_id = $2))";

fn expiry(ttl: Duration) -> String {
    timestamp(time::OffsetDateTime::now_utc() + ttl)
}

impl Store {
    /// Takes a lease of `kind` on a campaign for `holder`. An exclusive lease is refused while
    /// another sender holds a live lease of either kind; a shared one only while a live
    /// exclusive lease stands. Dead leases are removed, and the rows their holders left
    /// `sending` (only theirs: live workers' rows are left alone) become `uncertain`, in the
    /// same transaction. Returns the lease and how many rows became uncertain.
    pub async fn acquire_lease(
        &self,
        campaign_id: i64,
        holder: &LeaseHolder,
        ttl: Duration,
        kind: LeaseKind,
    ) -> Result<(Lease, i64), CampaignError> {
        let mut tx = self.write().await?;
        let now = now();
        let leases = sqlx::query_as::<_, LeaseInfo>(LEASE_SELECT)
            .bind(campaign_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
        for lease in &leases {
            if lease.is_live(&now, &holder.host) {
                if kind == LeaseKind::Exclusive || lease.kind == LeaseKind::Exclusive {
                    return Err(CampaignError::Busy {
                        id: campaign_id,
                        holder: Box::new(lease.clone()),
                    });
                }
                continue;
            }
            sqlx::query("DELETE FROM send_leases WHERE campaign_id = $1 AND owner = $2")
                .bind(campaign_id)
                .bind(&lease.owner)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.classify(e))?;
        }
        sqlx::query(
            "INSERT INTO send_leases (campaign_id, owner, host, pid, pid_started, acquired_at, heartbeat_at, expires_at, kind, name)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9)",
        )
        .bind(campaign_id)
        .bind(&holder.owner)
        .bind(&holder.host)
        .bind(i64::from(holder.pid))
        .bind(&holder.pid_started)
        .bind(&now)
        .bind(expiry(ttl))
        .bind(kind)
        .bind(&holder.name)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        // The rows of senders with no lease left are a dead sender's.
        let orphans = self
            .settle_orphans(
                &mut tx,
                (campaign_id, &now),
                "sender",
                "status = 'uncertain',
                 last_reply = 'uncertain: the sender stopped while this message was with the relay'",
            )
            .await?;
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok((
            Lease {
                campaign_id,
                owner: holder.owner.clone(),
                ttl,
                kind,
            },
            i64::try_from(orphans).unwrap_or(i64::MAX),
        ))
    }

    /// The rows dead senders left `sending` on a campaign (see [`ORPHANS`]): each is logged
    /// as an attempt that ended now with its outcome unknown (begun when it was claimed), then
    /// changed by `set` (SQL assignments) and released. Returns how many.
    async fn settle_orphans(
        &self,
        conn: &mut sqlx::AnyConnection,
        (campaign_id, now): (i64, &str),
        who: &str,
        set: &str,
    ) -> Result<u64, CampaignError> {
        sqlx::query(&format!(
            "INSERT INTO delivery_attempts
                 (delivery_id, attempt, started_at, finished_at, stage, reply, outcome)
             SELECT id, attempts, updated_at, $1, NULL,
                    'the {who} stopped while this message was with the relay', 'uncertain'
             FROM deliveries WHERE {ORPHANS}"
        ))
        .bind(now)
        .bind(campaign_id)
        .execute(&mut *conn)
        .await
        .map_err(|e| self.classify(e))?;
        Ok(sqlx::query(&format!(
            "UPDATE deliveries SET {set}, updated_at = $1, claimed_by = NULL WHERE {ORPHANS}"
        ))
        .bind(now)
        .bind(campaign_id)
        .execute(&mut *conn)
        .await
        .map_err(|e| self.classify(e))?
        .rows_affected())
    }

    /// A worker's look at its fellow workers mid-campaign: removes the leases that are dead
    /// (expired, or on this host a process that is gone) and queues the rows their holders
    /// left `sending` again, logging each as an uncertain attempt — for workers, uncertain
    /// rows are sent again (as `send` does by default). Rows of live leases are never
    /// touched. Returns the dead holders' names and how many rows were queued again; cheap
    /// (one read) when all are alive.
    pub async fn reap_dead_leases(
        &self,
        campaign_id: i64,
    ) -> Result<(Vec<String>, i64), CampaignError> {
        let here = host_name();
        let leases = sqlx::query_as::<_, LeaseInfo>(LEASE_SELECT)
            .bind(campaign_id)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.classify(e))?;
        if leases.iter().all(|l| l.is_live(&now(), &here)) {
            return Ok((Vec::new(), 0));
        }
        // Under the global write lock: no lease comes or goes meanwhile. Claims do not take
        // it, but they only ever mark rows for an owner whose lease exists.
        let mut tx = self.write().await?;
        let now = now();
        let leases = sqlx::query_as::<_, LeaseInfo>(LEASE_SELECT)
            .bind(campaign_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
        let mut dead = Vec::new();
        for lease in leases.iter().filter(|l| !l.is_live(&now, &here)) {
            sqlx::query("DELETE FROM send_leases WHERE campaign_id = $1 AND owner = $2")
                .bind(campaign_id)
                .bind(&lease.owner)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.classify(e))?;
            dead.push(lease.name.clone());
        }
        if dead.is_empty() {
            return Ok((dead, 0));
        }
        let requeued = self
            .settle_orphans(
                &mut tx,
                (campaign_id, &now),
                "worker",
                "status = 'queued', next_attempt_at = NULL,
                 last_reply = 'was uncertain (its worker stopped while the message was with the relay); sending again'",
            )
            .await?;
        tx.commit().await.map_err(|e| self.classify(e))?;
        let requeued = i64::try_from(requeued).unwrap_or(i64::MAX);
        Ok((dead, requeued))
    }

    /// A worker leaves a campaign: gives its lease up and, in the same transaction, settles
    /// the campaign's status. With `forced` (this worker stopped the campaign: the relay
    /// looks down or refuses us, the database failed) the campaign becomes that status unless
    /// an operator already paused or cancelled it. Otherwise the last worker out marks it
    /// `finished` when no row is waiting, in flight or uncertain; while other workers still
    /// hold live leases it stays `running` for them. Returns the status it is left in.
    pub async fn leave_campaign(
        &self,
        lease: &Lease,
        forced: Option<(super::CampaignStatus, &str)>,
    ) -> Result<super::CampaignStatus, CampaignError> {
        let mut tx = self.write().await?;
        let now = now();
        sqlx::query("DELETE FROM send_leases WHERE campaign_id = $1 AND owner = $2")
            .bind(lease.campaign_id)
            .bind(&lease.owner)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
        let leases = sqlx::query_as::<_, LeaseInfo>(LEASE_SELECT)
            .bind(lease.campaign_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
        let here = host_name();
        let others = leases.iter().any(|l| l.is_live(&now, &here));
        let unsettled: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries
             WHERE campaign_id = $1 AND status IN ('queued', 'sending', 'uncertain')",
        )
        .bind(lease.campaign_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        let (status, reason) = match forced {
            Some((status, reason)) => (Some(status), Some(reason)),
            None if !others && unsettled == 0 => (Some(super::CampaignStatus::Finished), None),
            None => (None, None),
        };
        if let Some(status) = status {
            // Only a running campaign: an operator's pause or cancel stands.
            sqlx::query(&format!(
                "{} AND status = 'running'",
                super::campaigns::SET_STATUS
            ))
            .bind(status)
            .bind(&now)
            .bind(lease.campaign_id)
            .bind(reason)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
        }
        let left: super::CampaignStatus =
            sqlx::query_scalar("SELECT status FROM campaigns WHERE id = $1")
                .bind(lease.campaign_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.classify(e))?;
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(left)
    }

    /// How many live leases other than `lease` stand on its campaign.
    pub async fn other_live_leases(&self, lease: &Lease) -> Result<usize, StoreError> {
        let here = host_name();
        let now = now();
        let leases = sqlx::query_as::<_, LeaseInfo>(LEASE_SELECT)
            .bind(lease.campaign_id)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.classify(e))?;
        Ok(leases
            .iter()
            .filter(|l| l.owner != lease.owner && l.is_live(&now, &here))
            .count())
    }

    /// Renews `lease` inside `conn`'s transaction; `LeaseLost` if it lapsed and was taken or
    /// removed meanwhile (this sender was suspended or cut off for longer than its lifetime).
    pub(crate) async fn renew_lease_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        lease: &Lease,
    ) -> Result<(), CampaignError> {
        let renewed = sqlx::query(
            "UPDATE send_leases SET heartbeat_at = $1, expires_at = $2
             WHERE campaign_id = $3 AND owner = $4",
        )
        .bind(now())
        .bind(expiry(lease.ttl))
        .bind(lease.campaign_id)
        .bind(&lease.owner)
        .execute(&mut *conn)
        .await
        .map_err(|e| self.classify(e))?
        .rows_affected();
        if renewed == 0 {
            return Err(CampaignError::LeaseLost(lease.campaign_id));
        }
        Ok(())
    }

    /// Renews `lease` between turns (the heartbeat). It touches only its own lease row, so
    /// it does not wait for the global write lock (a long import must not starve it).
    pub async fn renew_lease(&self, lease: &Lease) -> Result<(), CampaignError> {
        let mut tx = self.write_rows().await?;
        self.renew_lease_in(&mut tx, lease).await?;
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(())
    }

    /// Gives `lease` up.
    pub async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM send_leases WHERE campaign_id = $1 AND owner = $2")
            .bind(lease.campaign_id)
            .bind(&lease.owner)
            .execute(&self.pool)
            .await
            .map_err(|e| self.classify(e))?;
        Ok(())
    }

    /// The live lease on a campaign, if a sender holds one.
    pub async fn live_lease(&self, campaign_id: i64) -> Result<Option<LeaseInfo>, StoreError> {
        let now = now();
        let here = host_name();
        let leases = sqlx::query_as::<_, LeaseInfo>(LEASE_SELECT)
            .bind(campaign_id)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.classify(e))?;
        Ok(leases.into_iter().find(|l| l.is_live(&now, &here)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_recycled_pid_is_not_taken_for_it() {
        let me = LeaseHolder::this_process();
        assert!(!me.pid_started.is_empty(), "Linux has /proc");
        let info = |pid: u32, started: &str, expires: &str| LeaseInfo {
            owner: "x".into(),
            host: me.host.clone(),
            pid: i64::from(pid),
            pid_started: started.into(),
            acquired_at: String::new(),
            heartbeat_at: String::new(),
            expires_at: expires.into(),
            kind: LeaseKind::Shared,
            name: String::new(),
        };
        let later = "9999-01-01T00:00:00.000Z";
        let now = now();
        assert!(info(me.pid, &me.pid_started, later).is_live(&now, &me.host));
        assert!(
            !info(me.pid, "1", later).is_live(&now, &me.host),
            "pid reused"
        );
        assert!(!info(me.pid, &me.pid_started, "2000-01-01T00:00:00.000Z").is_live(&now, &me.host));
        // Another host's lease is judged by its expiry alone.
        assert!(info(u32::MAX, "", later).is_live(&now, "elsewhere"));
    }
}
