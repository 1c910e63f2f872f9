//! Mailing lists: create, list with counts, look up by name, remove; and what subscribers see
//! of a list (whether the public form offers it, its name and description per language).

use serde::Serialize;

use super::{Flag, Store, StoreError, now};
use crate::config::closest;

/// A mailing list.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct List {
    /// Row id.
    pub id: i64,
    /// Unique name, as used on the command line and in the CSV `lists` column.
    pub name: String,
    /// New subscriptions start `unconfirmed` until the person confirms by mail.
    #[sqlx(try_from = "Flag")]
    pub double_opt_in: bool,
    /// Offered by the public subscription form and the preference centre.
    #[sqlx(try_from = "Flag")]
    pub public: bool,
    /// Campaigns sent to it count clicks (`lists set --track-clicks`), whatever the edition says.
    #[sqlx(try_from = "Flag")]
    pub track_clicks: bool,
    /// When it was created.
    pub created_at: String,
}

/// The columns of [`List`], flags as integers (see [`Flag`]).
const LIST_COLUMNS: &str = "id, name, CASE WHEN double_opt_in THEN 1 ELSE 0 END AS double_opt_in,
     CASE WHEN public THEN 1 ELSE 0 END AS public,
     CASE WHEN track_clicks THEN 1 ELSE 0 END AS track_clicks, created_at";

/// The name and description of a list that subscribers read, in one language.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct ListText {
    /// The list.
    #[serde(skip)]
    pub list_id: i64,
    /// A normalised BCP 47 tag.
    pub language: String,
    /// The name people read (`Noticias del proyecto`).
    pub display_name: String,
    /// One or two sentences on what the list sends; may be empty.
    pub description: String,
}

/// Picks the text of a list for a reader of `lang`: that exact tag, then its primary
/// language (`pt` for `pt-BR`), then any regional form of it, then English, then the first
/// language the list has. `None` when the list has no text at all: callers then show the
/// newsletter's name, never the internal list name.
pub fn pick_text<'a>(texts: &'a [ListText], lang: &str) -> Option<&'a ListText> {
    let primary = |tag: &str| tag.split('-').next().unwrap_or(tag).to_ascii_lowercase();
    let wanted = primary(lang);
    texts
        .iter()
        .find(|t| t.language.eq_ignore_ascii_case(lang))
        .or_else(|| texts.iter().find(|t| t.language == wanted))
        .or_else(|| texts.iter().find(|t| primary(&t.language) == wanted))
        .or_else(|| texts.iter().find(|t| primary(&t.language) == "en"))
        .or_else(|| texts.first())
}

/// A list with its subscription counts, for `lists list`.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct ListSummary {
    /// Unique name.
    pub name: String,
    /// Whether new subscriptions need confirming.
    #[sqlx(try_from = "Flag")]
    pub double_opt_in: bool,
    /// Offered by the public form.
    #[sqlx(try_from = "Flag")]
    pub public: bool,
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
        let inserted = sqlx::query_as::<_, List>(&format!(
            "INSERT INTO lists (name, double_opt_in, created_at, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO NOTHING
             RETURNING {LIST_COLUMNS}"
        ))
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
        sqlx::query_as::<_, List>(&format!("SELECT {LIST_COLUMNS} FROM lists ORDER BY name"))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.classify(e))
    }

    /// Every list with its counts.
    pub async fn list_summaries(&self) -> Result<Vec<ListSummary>, StoreError> {
        sqlx::query_as::<_, ListSummary>(
            // Each subscription counts once: a blocklisted subscriber's confirmed subscription
            // is not audience, so it counts as blocklisted, not confirmed.
            "SELECT l.name, CASE WHEN l.double_opt_in THEN 1 ELSE 0 END AS double_opt_in,
                    CASE WHEN l.public THEN 1 ELSE 0 END AS public, l.created_at,
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
        let found =
            sqlx::query_as::<_, List>(&format!("SELECT {LIST_COLUMNS} FROM lists WHERE name = $1"))
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
        let campaigns: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM campaigns WHERE list_id = $1")
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
            sqlx::query_scalar("SELECT COUNT(*) FROM subscriptions WHERE list_id = $1")
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
        sqlx::query("DELETE FROM lists WHERE id = $1")
            .bind(list.id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(())
    }
}

/// A change to what subscribers see of a list (`bulletin lists set`); `None` leaves a part as
/// it is.
#[derive(Debug, Clone, Default)]
pub struct ListAppearance {
    /// Offer it on the public form, or stop offering it.
    pub public: Option<bool>,
    /// Count clicks in every campaign sent to it, or leave that to each edition.
    pub track_clicks: Option<bool>,
    /// `(language, display name)` pairs: set (or replace) that language's name.
    pub display_names: Vec<(String, String)>,
    /// `(language, description)` pairs; a language needs a display name, given here or before.
    pub descriptions: Vec<(String, String)>,
}

/// The longest display name and description accepted: they go into a form's `<select>` and a
/// mail subject.
const MAX_DISPLAY_NAME_CHARS: usize = 120;
const MAX_DESCRIPTION_CHARS: usize = 600;

impl Store {
    /// Applies `change` to the list called `name` in one transaction, with one `list_updated`
    /// event naming what changed. Languages must be valid tags (normalised here); a
    /// description needs a display name in the same language.
    pub async fn update_list(
        &self,
        name: &str,
        change: &ListAppearance,
        source: &str,
    ) -> Result<List, StoreError> {
        let bad = |reason: String| StoreError::BadListText {
            list: name.to_string(),
            reason,
        };
        let tag = |raw: &str| -> Result<String, StoreError> {
            match crate::subscriber_input::validate_language(raw) {
                Ok(Some(tag)) => Ok(tag),
                _ => Err(bad(format!(
                    "`{raw}` is not a language tag; write it like `es`, `fr` or `pt-BR`"
                ))),
            }
        };
        let text = |raw: &str, max: usize, what: &str| -> Result<String, StoreError> {
            let value = raw.trim();
            if value.chars().any(char::is_control) {
                return Err(bad(format!(
                    "the {what} must be one line without control characters"
                )));
            }
            if value.chars().count() > max {
                return Err(bad(format!("the {what} is longer than {max} characters")));
            }
            Ok(value.to_string())
        };
        let mut names = Vec::new();
        for (lang, value) in &change.display_names {
            let value = text(value, MAX_DISPLAY_NAME_CHARS, "display name")?;
            if value.is_empty() {
                return Err(bad(format!("the display name for `{lang}` is empty")));
            }
            names.push((tag(lang)?, value));
        }
        let mut descriptions = Vec::new();
        for (lang, value) in &change.descriptions {
            descriptions.push((
                tag(lang)?,
                text(value, MAX_DESCRIPTION_CHARS, "description")?,
            ));
        }
        let list = self.list_named(name).await?;
        let mut tx = self.write().await?;
        let now = now();
        // The column names are constants of this function, never input.
        for (column, value) in [
            ("public", change.public),
            ("track_clicks", change.track_clicks),
        ] {
            let Some(value) = value else { continue };
            sqlx::query(&format!(
                "UPDATE lists SET {column} = $1, updated_at = $2 WHERE id = $3"
            ))
            .bind(value)
            .bind(&now)
            .bind(list.id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
        }
        for (lang, display) in &names {
            sqlx::query(
                "INSERT INTO list_texts (list_id, language, display_name, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (list_id, language) DO UPDATE SET display_name = excluded.display_name,
                     updated_at = excluded.updated_at",
            )
            .bind(list.id)
            .bind(lang)
            .bind(display)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
        }
        for (lang, description) in &descriptions {
            let updated = sqlx::query(
                "UPDATE list_texts SET description = $1, updated_at = $2 WHERE list_id = $3 AND language = $4",
            )
            .bind(description)
            .bind(&now)
            .bind(list.id)
            .bind(lang)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?
            .rows_affected();
            if updated == 0 {
                return Err(bad(format!(
                    "there is no display name for `{lang}` yet; give one with --display-name {lang}=NAME"
                )));
            }
        }
        Self::event(
            &mut *tx,
            "list_updated",
            None,
            Some(list.id),
            source,
            serde_json::json!({
                "public": change.public,
                "track_clicks": change.track_clicks,
                "display_names": names.iter().map(|(l, _)| l).collect::<Vec<_>>(),
                "descriptions": descriptions.iter().map(|(l, _)| l).collect::<Vec<_>>(),
            }),
        )
        .await
        .map_err(|e| self.classify(e))?;
        tx.commit().await.map_err(|e| self.classify(e))?;
        self.list_named(name).await
    }

    /// Every display name and description of list `only`, or of every list, ordered by list
    /// and language.
    pub async fn list_texts(&self, only: Option<i64>) -> Result<Vec<ListText>, StoreError> {
        sqlx::query_as(
            "SELECT list_id, language, display_name, description FROM list_texts
             WHERE $1 IS NULL OR list_id = $1 ORDER BY list_id, language",
        )
        .bind(only)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.classify(e))
    }
}

#[cfg(test)]
mod tests {
    use super::{ListText, pick_text, valid_list_name};

    fn text(lang: &str, name: &str) -> ListText {
        ListText {
            list_id: 1,
            language: lang.into(),
            display_name: name.into(),
            description: String::new(),
        }
    }

    #[test]
    fn display_names_fall_back_by_language_then_english_then_any() {
        let texts = [
            text("ar", "النشرة"),
            text("en", "News"),
            text("pt-BR", "Notícias"),
        ];
        let pick = |lang| pick_text(&texts, lang).map(|t| t.display_name.as_str());
        assert_eq!(pick("ar"), Some("النشرة"));
        assert_eq!(pick("ar-EG"), Some("النشرة"));
        assert_eq!(pick("pt"), Some("Notícias"));
        assert_eq!(pick("ru"), Some("News"));
        assert_eq!(
            pick_text(&texts[2..], "ru").map(|t| t.language.as_str()),
            Some("pt-BR")
        );
        assert_eq!(pick_text(&[], "en"), None);
    }

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
