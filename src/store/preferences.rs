//! The queries behind the preference centre (`/p/{token}` of `bulletin serve`): what one
//! subscriber sees there, and the changes they make.
//!
//! A subscriber sees every public list and any list they receive (a private list they were put
//! on by the operator stays visible to them, so they can leave it). Joining from here confirms
//! at once, double opt-in or not: the signed link, mailed to the address, is the proof that a
//! confirmation mail would ask for. Blocklisted subscribers may leave but never join.
//!
//! Like every other change, each one writes an `events` row in the same transaction, with the
//! source the caller names (`preferences`), and nothing at all is written when the form is
//! saved unchanged. Events name fields, never their values: a name is personal data, and the
//! audit log must hold none once a subscriber is erased.

use super::subscribers::{insert_subscription, set_subscription_status};
use super::{Flag, ListText, Store, StoreError, SubscriberStatus, SubscriptionStatus, now};

/// What the preference centre shows one subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreferenceView {
    /// Mixed into the link's MAC; read before trusting the link.
    pub nonce: String,
    /// The name the subscriber gave (may be empty).
    pub name: String,
    /// Their preferred language, when known.
    pub language: Option<String>,
    /// Blocklisted subscribers can only leave.
    pub blocklisted: bool,
    /// The lists to show, by internal name (the page shows their display names).
    pub lists: Vec<PreferenceList>,
}

/// One list in the preference centre.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreferenceList {
    /// Row id: the form names lists by id.
    pub id: i64,
    /// Offered to everybody (a private list shows only to its members).
    pub public: bool,
    /// Where the subscriber stands with it; `None` when they never joined.
    pub status: Option<SubscriptionStatus>,
    /// Display names and descriptions per language.
    pub texts: Vec<ListText>,
}

impl PreferenceList {
    /// Whether the next send of this list reaches the subscriber: what the box shows.
    pub fn receiving(&self) -> bool {
        self.status == Some(SubscriptionStatus::Confirmed)
    }
}

/// What the subscriber asked for when saving the form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreferenceChange {
    /// The lists the form showed: only these may change, so that a list made public after
    /// the page was loaded is not left or joined by a box the person never saw.
    pub shown: Vec<i64>,
    /// Of those, the ones ticked.
    pub wanted: Vec<i64>,
    /// A new preferred language (a normalised tag), or `None` to keep it.
    pub language: Option<String>,
    /// A new name (already validated), or `None` to keep it.
    pub name: Option<String>,
}

/// What saving the preference form did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreferenceOutcome {
    /// Lists joined (confirmed).
    pub joined: Vec<i64>,
    /// Lists left.
    pub left: Vec<i64>,
    /// Fields of the subscriber changed: `language`, `name`.
    pub fields: Vec<&'static str>,
}

impl PreferenceOutcome {
    /// Nothing changed (and nothing was written).
    pub fn is_empty(&self) -> bool {
        self.joined.is_empty() && self.left.is_empty() && self.fields.is_empty()
    }
}

/// id, public, status of one list for one subscriber.
type ListRow = (i64, Flag, Option<SubscriptionStatus>);

/// The lists a subscriber may see: public ones and those they are on (confirmed or waiting).
const VISIBLE_LISTS: &str =
    "SELECT l.id, CASE WHEN l.public THEN 1 ELSE 0 END, x.status FROM lists l
     LEFT JOIN subscriptions x ON x.list_id = l.id AND x.subscriber_id = $1
     WHERE l.public OR x.status = 'confirmed' OR x.status = 'unconfirmed'
     ORDER BY l.name";

impl Store {
    /// What the preference centre shows subscriber `subscriber_id`, or `None` when they do not
    /// exist (any more).
    pub async fn preference_view(
        &self,
        subscriber_id: i64,
    ) -> Result<Option<PreferenceView>, StoreError> {
        let row: Option<(String, String, Option<String>, SubscriberStatus)> = sqlx::query_as(
            "SELECT token_nonce, name, language, status FROM subscribers WHERE id = $1",
        )
        .bind(subscriber_id)
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.classify(e))?;
        let Some((nonce, name, language, status)) = row else {
            return Ok(None);
        };
        let rows: Vec<ListRow> = sqlx::query_as(VISIBLE_LISTS)
            .bind(subscriber_id)
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.classify(e))?;
        let texts = self.list_texts(None).await?;
        let lists = rows
            .into_iter()
            .map(|(id, public, status)| PreferenceList {
                id,
                public: public.into(),
                status,
                texts: texts.iter().filter(|t| t.list_id == id).cloned().collect(),
            })
            .collect();
        Ok(Some(PreferenceView {
            nonce,
            name,
            language,
            blocklisted: status == SubscriberStatus::Blocklisted,
            lists,
        }))
    }

    /// Applies a saved preference form in one transaction; `None` when the subscriber no
    /// longer exists. A ticked list is joined (confirmed at once: the link proves the
    /// address) unless the subscriber is blocklisted; an unticked list they receive is left;
    /// a list they may not see (private, not theirs) is never touched whatever the form says.
    pub async fn apply_preferences(
        &self,
        subscriber_id: i64,
        change: &PreferenceChange,
        source: &str,
    ) -> Result<Option<PreferenceOutcome>, StoreError> {
        let mut tx = self.write().await?;
        let subscriber: Option<(String, Option<String>, SubscriberStatus)> =
            sqlx::query_as("SELECT name, language, status FROM subscribers WHERE id = $1")
                .bind(subscriber_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.classify(e))?;
        let Some((name, language, status)) = subscriber else {
            return Ok(None);
        };
        let visible: Vec<ListRow> = sqlx::query_as(VISIBLE_LISTS)
            .bind(subscriber_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
        let now = now();
        let mut outcome = PreferenceOutcome::default();
        for (list_id, _, current) in visible {
            if !change.shown.contains(&list_id) {
                continue;
            }
            let wanted = change.wanted.contains(&list_id);
            let to = match (wanted, current) {
                (true, Some(SubscriptionStatus::Confirmed)) | (false, None) => continue,
                (true, _) if status == SubscriberStatus::Blocklisted => continue,
                (true, _) => SubscriptionStatus::Confirmed,
                (false, Some(SubscriptionStatus::Confirmed)) => SubscriptionStatus::Unsubscribed,
                // An unconfirmed subscription shows unticked (nothing is sent to it yet);
                // leaving it unticked is no change.
                (false, Some(_)) => continue,
            };
            let conn = &mut *tx;
            let done = match current {
                None => insert_subscription(conn, subscriber_id, list_id, to, source, &now).await,
                Some(_) => {
                    set_subscription_status(conn, subscriber_id, list_id, to, source, &now).await
                }
            };
            done.map_err(|e| self.classify(e))?;
            if to == SubscriptionStatus::Confirmed {
                outcome.joined.push(list_id);
            } else {
                outcome.left.push(list_id);
            }
        }
        if let Some(new) = &change.language
            && language.as_deref() != Some(new.as_str())
        {
            outcome.fields.push("language");
        }
        if let Some(new) = &change.name
            && *new != name
        {
            outcome.fields.push("name");
        }
        if !outcome.fields.is_empty() {
            sqlx::query(
                "UPDATE subscribers SET language = COALESCE($1, language), name = COALESCE($2, name),
                     updated_at = $3 WHERE id = $4",
            )
            .bind(&change.language)
            .bind(&change.name)
            .bind(&now)
            .bind(subscriber_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.classify(e))?;
            Self::event(
                &mut *tx,
                "updated",
                Some(subscriber_id),
                None,
                source,
                // The language is not personal; the name is, so only the field is named.
                serde_json::json!({ "fields": outcome.fields, "language": change.language }),
            )
            .await
            .map_err(|e| self.classify(e))?;
        }
        tx.commit().await.map_err(|e| self.classify(e))?;
        Ok(Some(outcome))
    }
}
