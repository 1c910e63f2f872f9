//! Who is sending a campaign: one lease per sender process, so that two `send` commands (two
//! operators, or cron and a person) never work the same campaign at once, and a crashed
//! sender's in-flight rows are recognised as uncertain only once its lease is gone.
//!
//! A lease is taken in a write transaction, and renewed in the same transaction that settles
//! and claims deliveries ([`Store::settle_and_claim`]) as well as by a heartbeat between turns.
//! It expires when not renewed in time. On the same host a lease whose process no longer
//! exists (checked in `/proc`, with the process's start time so that a recycled pid does not
//! pass) is dead at once, so `kill -9` followed by `send` resumes without waiting.
//!
//! Claimed rows carry the lease owner (`deliveries.claimed_by`), and only that owner settles
//! them: the shape several cooperating workers need later, each with its own lease and rows.

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
        Self {
            owner,
            host: host_name(),
            pid,
            pid_started: process_start(pid).unwrap_or_default(),
        }
    }
}

/// A lease held by this process.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The campaign the lease is on.
    pub campaign_id: i64,
    /// Our owner token.
    pub owner: String,
    /// How long the lease lasts without renewal.
    pub ttl: Duration,
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
}

impl LeaseInfo {
    /// Whether the lease still stands: not expired, and (on this host) its process lives.
    fn is_live(&self, now: &str, here: &str) -> bool {
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

fn host_name() -> String {
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

fn expiry(ttl: Duration) -> String {
    timestamp(time::OffsetDateTime::now_utc() + ttl)
}

impl Store {
    /// Takes the lease on a campaign for `holder`, refusing while another sender holds a live
    /// one. Dead leases are removed, and rows their holders left `sending` become `uncertain`,
    /// in the same transaction. Returns the lease and how many rows became uncertain.
    pub async fn acquire_lease(
        &self,
        campaign_id: i64,
        holder: &LeaseHolder,
        ttl: Duration,
    ) -> Result<(Lease, i64), CampaignError> {
        let mut tx = self.write().await?;
        let now = now();
        let leases = sqlx::query_as::<_, LeaseInfo>(
            "SELECT owner, host, pid, pid_started, acquired_at, heartbeat_at, expires_at
             FROM send_leases WHERE campaign_id = $1",
        )
        .bind(campaign_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        for lease in &leases {
            if lease.is_live(&now, &holder.host) {
                return Err(CampaignError::Busy {
                    id: campaign_id,
                    holder: Box::new(lease.clone()),
                });
            }
            sqlx::query("DELETE FROM send_leases WHERE campaign_id = $1 AND owner = $2")
                .bind(campaign_id)
                .bind(&lease.owner)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.classify(e))?;
        }
        sqlx::query(
            "INSERT INTO send_leases (campaign_id, owner, host, pid, pid_started, acquired_at, heartbeat_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
        )
        .bind(campaign_id)
        .bind(&holder.owner)
        .bind(&holder.host)
        .bind(i64::from(holder.pid))
        .bind(&holder.pid_started)
        .bind(&now)
        .bind(expiry(ttl))
        .execute(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        // Every lease but ours is gone, so every `sending` row but ours is a dead sender's. Its
        // attempt is logged as it ends: begun when the row was claimed, outcome unknown.
        sqlx::query(
            "INSERT INTO delivery_attempts
                 (delivery_id, attempt, started_at, finished_at, stage, reply, outcome)
             SELECT id, attempts, updated_at, $1, NULL,
                    'the sender stopped while this message was with the relay', 'uncertain'
             FROM deliveries WHERE campaign_id = $2 AND status = 'sending'",
        )
        .bind(&now)
        .bind(campaign_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        let orphans = sqlx::query(
            "UPDATE deliveries SET status = 'uncertain', updated_at = $1,
                    last_reply = 'uncertain: the sender stopped while this message was with the relay'
             WHERE campaign_id = $2 AND status = 'sending'",
        )
        .bind(&now)
        .bind(campaign_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?
        .rows_affected();
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok((
            Lease {
                campaign_id,
                owner: holder.owner.clone(),
                ttl,
            },
            i64::try_from(orphans).unwrap_or(i64::MAX),
        ))
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

    /// Renews `lease` between turns (the heartbeat).
    pub async fn renew_lease(&self, lease: &Lease) -> Result<(), CampaignError> {
        let mut tx = self.write().await?;
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
        let leases = sqlx::query_as::<_, LeaseInfo>(
            "SELECT owner, host, pid, pid_started, acquired_at, heartbeat_at, expires_at
             FROM send_leases WHERE campaign_id = $1",
        )
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
