//! Mailing lists: create, list with counts, look up by name, remove.

use serde::Serialize;

use super::{Store, StoreError, now};
use crate::config::closest;

/// A mailing list.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct List {
    /// Row id.
    pub id: i64,
    /// Unique name, as used on the command line and in the CSV `lists` column.
    pub name: String,
    /// New subscriptions start `unconfirmed` until the person confirms by mail.
    pub double_opt_in: bool,
    /// When it was created.
    pub created_at: String,
}

/// A list with its subscription counts, for `lists list`.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct ListSummary {
    /// Unique name.
    pub name: String,
    /// Whether new subscriptions need confirming.
    pub double_opt_in: bool,
    /// Confirmed subscriptions of active subscribers: the audience of a send.
    pub confirmed: i64,
    /// Waiting for confirmation (active subscribers).
    pub unconfirmed: i64,
    /// Left the list.
    pub unsubscribed: i64,
    /// Subscribed (confirmed or not) but blocklisted, so never mailed.
    pub blocklisted: i64,
    /// When it was created.
    pub created_at: String,
}

/// List names travel in a `|`-separated CSV column with an optional `:status` suffix, and on
/// the command line: keep them to a shape that needs no quoting anywhere.
fn valid_list_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl Store {
    /// Creates a list.
    pub async fn create_list(
        &self,
        name: &str,
        double_opt_in: bool,
        source: &str,
    ) -> Result<List, StoreError> {
        if !valid_list_name(name) {
            return Err(StoreError::BadListName(name.to_string()));
        }
        let mut tx = self.write().await?;
        let now = now();
        let inserted = sqlx::query_as::<_, List>(
            "INSERT INTO lists (name, double_opt_in, created_at, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (name) DO NOTHING
             RETURNING id, name, double_opt_in, created_at",
        )
        .bind(name)
        .bind(double_opt_in)
        .bind(&now)
        .bind(&now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.classify(e))?;
        let Some(list) = inserted else {
            return Err(StoreError::ListExists(name.to_string()));
        };
        Self::event(
            &mut *tx,
            "list_created",
            None,
            Some(list.id),
            source,
            serde_json::json!({ "double_opt_in": double_opt_in }),
        )
        .await
        .map_err(|e| self.classify(e))?;
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(list)
    }

    /// Every list, by name.
    pub async fn all_lists(&self) -> Result<Vec<List>, StoreError> {
        sqlx::query_as::<_, List>(
            "SELECT id, name, double_opt_in, created_at FROM lists ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.classify(e))
    }

    /// Every list with its counts.
    pub async fn list_summaries(&self) -> Result<Vec<ListSummary>, StoreError> {
        sqlx::query_as::<_, ListSummary>(
            // Each subscription counts once: a blocklisted subscriber's confirmed subscription
            // is not audience, so it counts as blocklisted, not confirmed.
            "SELECT l.name, l.double_opt_in, l.created_at,
                    COALESCE(SUM(CASE WHEN s.status = 'confirmed' AND p.status = 'active'
                                      THEN 1 ELSE 0 END), 0) AS confirmed,
                    COALESCE(SUM(CASE WHEN s.status = 'unconfirmed' AND p.status = 'active'
                                      THEN 1 ELSE 0 END), 0) AS unconfirmed,
                    COALESCE(SUM(CASE WHEN s.status = 'unsubscribed' THEN 1 ELSE 0 END), 0) AS unsubscribed,
                    COALESCE(SUM(CASE WHEN s.status <> 'unsubscribed' AND p.status = 'blocklisted'
                                      THEN 1 ELSE 0 END), 0) AS blocklisted
             FROM lists l
             LEFT JOIN subscriptions s ON s.list_id = l.id
             LEFT JOIN subscribers p ON p.id = s.subscriber_id
             GROUP BY l.id ORDER BY l.name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.classify(e))
    }

    /// The list called `name`, or an error suggesting the closest existing name.
    pub async fn list_named(&self, name: &str) -> Result<List, StoreError> {
        let found = sqlx::query_as::<_, List>(
            "SELECT id, name, double_opt_in, created_at FROM lists WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.classify(e))?;
        match found {
            Some(list) => Ok(list),
            None => Err(self.list_not_found(name).await),
        }
    }

    /// The "no such list" error, with the closest name or the command that creates it.
    pub(crate) async fn list_not_found(&self, name: &str) -> StoreError {
        let names: Vec<String> = self
            .all_lists()
            .await
            .map(|ls| ls.into_iter().map(|l| l.name).collect())
            .unwrap_or_default();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let hint = match closest(name, &refs) {
            Some(best) => format!("; did you mean `{best}`?"),
            None if names.is_empty() => {
                format!("; there are no lists yet: create it with `bulletin lists add {name}`")
            }
            None => format!(
                "; the lists are: {} (or create it with `bulletin lists add {name}`)",
                names.join(", ")
            ),
        };
        StoreError::ListNotFound {
            name: name.to_string(),
            hint,
        }
    }

    /// Removes a list and its subscriptions (the subscribers stay). Refuses when campaigns
    /// name the list, unless `force`.
    pub async fn remove_list(
        &self,
        name: &str,
        force: bool,
        source: &str,
    ) -> Result<(), StoreError> {
        let list = self.list_named(name).await?;
        let mut tx = self.write().await?;
        let campaigns: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM campaigns WHERE list_id = ?")
            .bind(list.id)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
        if campaigns > 0 && !force {
            return Err(StoreError::ListInUse {
                name: name.to_string(),
                campaigns,
            });
        }
        let subscriptions: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM subscriptions WHERE list_id = ?")
                .bind(list.id)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.classify(e))?;
        Self::event(
            &mut *tx,
            "list_removed",
            None,
            None,
            source,
            serde_json::json!({ "list": name, "subscriptions": subscriptions }),
        )
        .await
        .map_err(|e| self.classify(e))?;
        sqlx::query("DELETE FROM lists WHERE id = ?")
            .bind(list.id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::valid_list_name;

    #[test]
    fn list_names_need_no_quoting() {
        for good in ["news", "glo-act.news", "Team_2"] {
            assert!(valid_list_name(good), "{good}");
        }
        for bad in ["", "-x", "a|b", "a:b", "a b", "é", &"x".repeat(65)] {
            assert!(!valid_list_name(bad), "{bad}");
        }
    }
}
