//! What `campaigns report` reads: one campaign's outcome from its deliveries, their attempt
//! log, the bounce mailbox's `feedback` rows and the audit log, aggregated in SQL so that a
//! campaign of a million recipients costs a few grouped scans, not a million rows in memory.

use serde::Serialize;

use super::{CampaignError, DeliveryCounts, Store, StoreError};

/// A campaign's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignReport {
    /// Campaign id.
    pub id: i64,
    /// The edition's slug.
    pub edition_slug: String,
    /// The list's name.
    pub list_name: String,
    /// The subject in the default language.
    pub subject: String,
    /// Where it stands.
    pub status: String,
    /// Recipients by delivery status.
    pub counts: DeliveryCounts,
    /// Failed deliveries by the relay's reply (its first 60 characters), most frequent first.
    pub failed_why: Vec<Count>,
    /// Bounce mailbox messages about this campaign by kind (`hard`, `soft`, `rejected`,
    /// `delayed`, `complaint`, `auto_reply`, `delivered`).
    pub feedback: Vec<Count>,
    /// Unsubscribes from the campaign's list by its recipients after it started and before the
    /// list's next campaign, by source (`one-click`, `page`, `complaint`, `cli`, ...).
    pub unsubscribes: Vec<Count>,
    /// Per language.
    pub by_language: Vec<Breakdown>,
    /// Per recipient domain.
    pub by_domain: Vec<Breakdown>,
    /// First attempt's start (RFC 3339).
    pub first_attempt: Option<String>,
    /// Last attempt's end (RFC 3339).
    pub last_attempt: Option<String>,
    /// Messages the relay accepted per minute of the send, with failures and deferrals.
    pub per_minute: Vec<Minute>,
    /// Clicks per link and per language, when the campaign counted them (`track_clicks`).
    pub clicks: Option<super::ClickReport>,
}

/// A label and how many.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Count {
    /// What is counted.
    pub key: String,
    /// How many.
    pub count: i64,
}

/// Outcomes for one language or domain.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Breakdown {
    /// The language or the domain.
    pub key: String,
    /// Recipients.
    pub audience: i64,
    /// Accepted by the relay and not bounced.
    pub sent: i64,
    /// Refused for good by the relay.
    pub failed: i64,
    /// Reported undeliverable afterwards.
    pub bounced: i64,
    /// Complaints.
    pub complaints: i64,
}

/// One minute of the send.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Minute {
    /// `YYYY-MM-DDTHH:MM`.
    pub minute: String,
    /// Attempts the relay accepted.
    pub sent: i64,
    /// Attempts refused for good.
    pub failed: i64,
    /// Attempts deferred for a retry.
    pub deferred: i64,
}

/// Outcomes per `{key}`: the language, or the domain of the subscriber's address.
const BREAKDOWN: &str = "SELECT {key} AS key, COUNT(*) AS audience,
        SUM(CASE WHEN d.status = 'sent' THEN 1 ELSE 0 END) AS sent, SUM(CASE WHEN d.status = 'failed' THEN 1 ELSE 0 END) AS failed,
        SUM(CASE WHEN d.status = 'bounced' THEN 1 ELSE 0 END) AS bounced,
        SUM(CASE WHEN EXISTS (SELECT 1 FROM feedback f WHERE f.delivery_id = d.id AND f.kind = 'complaint')
                 THEN 1 ELSE 0 END)
            AS complaints
     FROM deliveries d LEFT JOIN subscribers s ON s.id = d.subscriber_id
     WHERE d.campaign_id = $1
     GROUP BY 1 ORDER BY audience DESC, key";

impl Store {
    /// The report of campaign `id`.
    pub async fn campaign_report(&self, id: i64) -> Result<CampaignReport, CampaignError> {
        let c = self.campaign(id).await?;
        let counts = self.delivery_counts(id).await?;
        let q = |sql: &'static str| sqlx::query_as::<_, Count>(sql).bind(id);
        let failed_why = q(
            "SELECT substr(COALESCE(last_reply, '(no reply)'), 1, 60) AS key,
                    COUNT(*) AS count
             FROM deliveries WHERE campaign_id = $1 AND status = 'failed'
             GROUP BY 1 ORDER BY count DESC, key",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.classify(e))?;
        let feedback = q("SELECT kind AS key, COUNT(*) AS count FROM feedback
             WHERE campaign_id = $1 GROUP BY kind ORDER BY count DESC, kind")
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.classify(e))?;
        let unsubscribes = self.attributed_unsubscribes(id).await?;
        let by_language = self
            .breakdown(id, "COALESCE(d.language, '?')")
            .await
            .map_err(|e| self.classify(e))?;
        let by_domain = self
            .breakdown(
                id,
                // The position of the '@': `instr` in SQLite, `strpos` in PostgreSQL.
                match self.backend() {
                    super::Backend::Sqlite => {
                        "COALESCE(lower(substr(s.email, instr(s.email, '@') + 1)), '(erased)')"
                    }
                    super::Backend::Postgres => {
                        "COALESCE(lower(substr(s.email, strpos(s.email, '@') + 1)), '(erased)')"
                    }
                },
            )
            .await
            .map_err(|e| self.classify(e))?;
        let (first_attempt, last_attempt): (Option<String>, Option<String>) = sqlx::query_as(
            "SELECT MIN(a.started_at), MAX(a.finished_at) FROM delivery_attempts a
             JOIN deliveries d ON d.id = a.delivery_id WHERE d.campaign_id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.classify(e))?;
        let per_minute = sqlx::query_as::<_, Minute>(
            "SELECT substr(a.finished_at, 1, 16) AS minute,
                    SUM(CASE WHEN a.outcome = 'sent' THEN 1 ELSE 0 END) AS sent, SUM(CASE WHEN a.outcome = 'failed' THEN 1 ELSE 0 END) AS failed,
                    SUM(CASE WHEN a.outcome = 'deferred' THEN 1 ELSE 0 END) AS deferred
             FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
             WHERE d.campaign_id = $1 GROUP BY 1 ORDER BY 1",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.classify(e))?;
        let clicks = self.click_report(id).await?;
        Ok(CampaignReport {
            id,
            edition_slug: c.edition_slug,
            list_name: c.list_name,
            subject: c.subject,
            status: c.status.to_string(),
            counts,
            failed_why,
            feedback,
            unsubscribes,
            by_language,
            by_domain,
            first_attempt,
            last_attempt,
            per_minute,
            clicks,
        })
    }

    async fn breakdown(&self, id: i64, key: &str) -> Result<Vec<Breakdown>, sqlx::Error> {
        sqlx::query_as::<_, Breakdown>(&BREAKDOWN.replace("{key}", key))
            .bind(id)
            .fetch_all(&self.pool)
            .await
    }

    /// Unsubscribes from the campaign's list by its recipients between its start and the
    /// start of the list's next campaign: a link does not say which message it came from, so
    /// this is the window in which this campaign was the latest one they received.
    async fn attributed_unsubscribes(&self, id: i64) -> Result<Vec<Count>, StoreError> {
        sqlx::query_as::<_, Count>(
            "WITH c AS (SELECT id, list_id, COALESCE(started_at, created_at) AS began
                        FROM campaigns WHERE id = $1),
                  next AS (SELECT MIN(COALESCE(o.started_at, o.created_at)) AS began
                           FROM campaigns o, c
                           WHERE o.list_id = c.list_id AND o.id > c.id)
             SELECT e.source AS key, COUNT(*) AS count
             FROM events e, c
             WHERE e.kind = 'unsubscribed' AND e.list_id = c.list_id
               AND e.occurred_at >= c.began
               AND (e.occurred_at < (SELECT began FROM next) OR (SELECT began FROM next) IS NULL)
               AND e.subscriber_id IN (SELECT subscriber_id FROM deliveries WHERE campaign_id = $1)
             GROUP BY e.source ORDER BY count DESC, key",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.classify(e))
    }
}
