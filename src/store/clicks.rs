//! The links of campaigns that count clicks (`campaign_links`, migration 0008): recorded once
//! per campaign and language when the send starts, followed by `serve`'s `/c/{token}`, and
//! summed up for `campaigns report`. Counts only: nothing here says who clicked.

use serde::Serialize;

use super::{Store, StoreError, now};

/// Clicks of one URL of a campaign, over all its language variants.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct LinkClicks {
    /// The address the link leads to.
    pub url: String,
    /// GET requests to its redirect that looked like a browser (scanners that imitate one
    /// included: see the README).
    pub clicks: i64,
    /// GET requests that did not look like a browser (no `Accept-Language`).
    pub automated: i64,
    /// How many language variants carry it.
    pub variants: i64,
}

/// Clicks of a campaign: per link and per language.
#[derive(Debug, Clone, Serialize)]
pub struct ClickReport {
    /// Per URL, most clicked first (then in the order of the default layout).
    pub links: Vec<LinkClicks>,
    /// Per language variant: (language, clicks on all its links).
    pub by_language: Vec<super::Count>,
    /// Clicks in all.
    pub total: i64,
    /// Automated requests in all.
    pub automated: i64,
}

/// How a request to a link's redirect is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Not at all (a `HEAD`: the redirect is shown, nothing is followed).
    Look,
    /// As a click.
    Click,
    /// As an automated request (a scanner, a previewer).
    Automated,
}

impl Store {
    /// Records the links of one language variant of `campaign_id`, in order of first
    /// appearance, and returns their ids in the same order. Recording them again (a resumed
    /// campaign) returns the ids already given, so links in messages sent before keep working.
    pub async fn record_links(
        &self,
        campaign_id: i64,
        language: &str,
        urls: &[String],
    ) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.classify(e))?;
        let created = now();
        let mut ids = Vec::with_capacity(urls.len());
        for (position, url) in (1_i64..).zip(urls) {
            sqlx::query(
                "INSERT INTO campaign_links (campaign_id, language, position, url, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (campaign_id, language, url) DO NOTHING",
            )
            .bind(campaign_id)
            .bind(language)
            .bind(position)
            .bind(url)
            .bind(&created)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
            let (id,): (i64,) = sqlx::query_as(
                "SELECT id FROM campaign_links WHERE campaign_id = $1 AND language = $2 AND url = $3",
            )
            .bind(campaign_id)
            .bind(language)
            .bind(url)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
            ids.push(id);
        }
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(ids)
    }

    /// Whether campaign `campaign_id` recorded links when it began: a resumed campaign keeps
    /// counting (or not counting) as it began, whatever the edition or list says now, so that
    /// its messages do not differ by when they were sent.
    pub async fn counts_clicks(&self, campaign_id: i64) -> Result<bool, StoreError> {
        sqlx::query_scalar::<_, super::Flag>(
            "SELECT EXISTS (SELECT 1 FROM campaign_links WHERE campaign_id = $1)",
        )
        .bind(campaign_id)
        .fetch_one(&self.pool)
        .await
        .map(bool::from)
        .map_err(|e| self.classify(e))
    }

    /// The URL of link `link_id` when it belongs to `campaign_id` (both from a verified
    /// token), counting the request as `how` says: one UPDATE, so a flood of clicks costs
    /// no more than a flood of reads. `None` when there is no such link of that campaign.
    pub async fn follow_link(
        &self,
        campaign_id: i64,
        link_id: i64,
        how: Follow,
    ) -> Result<Option<String>, StoreError> {
        let sql = match how {
            Follow::Click => {
                "UPDATE campaign_links SET clicks = clicks + 1
                 WHERE id = $1 AND campaign_id = $2 RETURNING url"
            }
            Follow::Automated => {
                "UPDATE campaign_links SET automated = automated + 1
                 WHERE id = $1 AND campaign_id = $2 RETURNING url"
            }
            Follow::Look => "SELECT url FROM campaign_links WHERE id = $1 AND campaign_id = $2",
        };
        let row: Option<(String,)> = sqlx::query_as(sql)
            .bind(link_id)
            .bind(campaign_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.classify(e))?;
        Ok(row.map(|(url,)| url))
    }

    /// The clicks of campaign `id`; `None` when it did not count clicks (no links recorded).
    pub async fn click_report(&self, id: i64) -> Result<Option<ClickReport>, StoreError> {
        let links = sqlx::query_as::<_, LinkClicks>(
            "SELECT url, CAST(SUM(clicks) AS BIGINT) AS clicks,
                    CAST(SUM(automated) AS BIGINT) AS automated, COUNT(*) AS variants
             FROM campaign_links WHERE campaign_id = $1
             GROUP BY url ORDER BY clicks DESC, MIN(position), url",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.classify(e))?;
        if links.is_empty() {
            return Ok(None);
        }
        let by_language = sqlx::query_as::<_, super::Count>(
            "SELECT language AS key, CAST(SUM(clicks) AS BIGINT) AS count
             FROM campaign_links WHERE campaign_id = $1
             GROUP BY language ORDER BY count DESC, key",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.classify(e))?;
        let total = links.iter().map(|l| l.clicks).sum();
        let automated = links.iter().map(|l| l.automated).sum();
        Ok(Some(ClickReport {
            links,
            by_language,
            total,
            automated,
        }))
    }
}
