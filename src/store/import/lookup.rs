//! What the database already knows about a batch's addresses: the first step of an import.
//!
//! Each lookup binds one parameter, a JSON array of the batch's keys (or hashes, or ids), and
//! SQLite unpacks it with `json_each`: binding thousands of parameters one by one through the
//! driver cost more than SQLite's own work (measured: 34k rows/s before, see the import
//! benchmark). PostgreSQL has the same shape with `jsonb_array_elements_text … WITH
//! ORDINALITY` and `json_agg`: these are the import's backend-specific queries.

use std::collections::HashMap;

use serde::Serialize;

use crate::store::Backend;

use super::ImportRecord;
use super::conn::{Arg, Conn};
use crate::store::SubscriptionStatus;
use crate::store::subscribers::suppression_hash;

/// A subscriber the database holds already, as the planning step compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Existing {
    /// Row id.
    pub(super) id: i64,
    /// Current name (`""` when not read: without `--update` it is never compared).
    pub(super) name: String,
    /// Current language.
    pub(super) language: Option<String>,
    /// Current attributes, as the JSON text stored.
    pub(super) attributes: String,
}

/// The database's side of a batch, by position in the batch.
#[derive(Debug, Default)]
pub(super) struct Known {
    /// Whether the row's address was erased at the person's request.
    pub(super) erased: Vec<bool>,
    /// The subscriber the row's address belongs to, if any.
    pub(super) existing: Vec<Option<Existing>>,
    /// `(subscriber id, list id)` → status, for every list of every known subscriber.
    pub(super) memberships: HashMap<(i64, i64), SubscriptionStatus>,
}

impl Known {
    /// Nothing known: every address in a batch of `len` rows is new.
    pub(super) fn nothing(len: usize) -> Self {
        Self {
            erased: vec![false; len],
            existing: (0..len).map(|_| None).collect(),
            memberships: HashMap::new(),
        }
    }
}

/// Who of `records` is erased, who is known, and the lists the known ones are on.
///
/// `update` says whether the current name, language and attributes are read: without
/// `--update` they are never compared, so not worth reading.
pub(super) async fn known(
    conn: &mut Conn<'_>,
    records: &[ImportRecord],
    update: bool,
) -> Result<Known, sqlx::Error> {
    let keys: Vec<&str> = records.iter().map(|r| r.key.as_str()).collect();
    let mut known = Known::nothing(records.len());
    mark_erased(conn, &keys, &mut known.erased).await?;
    // Both lookups come back as one JSON array each rather than a row per subscriber: the
    // driver hands rows over one at a time through a channel, which cost more than the
    // lookups themselves when a file is imported again (every row already known).
    let postgres = conn.backend() == Backend::Postgres;
    // Without --update the current fields are never compared: not worth reading.
    let probe = match (postgres, update) {
        (false, true) => {
            "SELECT json_group_array(json_array(j.key, s.id, s.name, s.language, s.attributes))
             FROM json_each($1) j JOIN subscribers s ON s.email_key = j.value"
        }
        (false, false) => {
            "SELECT json_group_array(json_array(j.key, s.id, '', NULL, '{}'))
             FROM json_each($1) j JOIN subscribers s ON s.email_key = j.value"
        }
        (true, true) => {
            "SELECT COALESCE(json_agg(json_build_array(j.ord - 1, s.id, s.name, s.language,
                                                        s.attributes)), '[]')::text
             FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY AS j(value, ord)
             JOIN subscribers s ON s.email_key = j.value"
        }
        (true, false) => {
            "SELECT COALESCE(json_agg(json_build_array(j.ord - 1, s.id, '', NULL, '{}')), '[]')::text
             FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY AS j(value, ord)
             JOIN subscribers s ON s.email_key = j.value"
        }
    };
    let found = conn.text(probe, &[Arg::Text(&json(&keys)?)]).await?;
    let found: Vec<(usize, i64, String, Option<String>, String)> = from_json(&found)?;
    for (idx, id, name, language, attributes) in found {
        if let Some(slot) = known.existing.get_mut(idx) {
            *slot = Some(Existing {
                id,
                name,
                language,
                attributes,
            });
        }
    }
    let ids: Vec<i64> = known.existing.iter().flatten().map(|e| e.id).collect();
    if !ids.is_empty() {
        let memberships = if postgres {
            "SELECT COALESCE(json_agg(json_build_array(subscriber_id, list_id, status)), '[]')::text
             FROM subscriptions
             WHERE subscriber_id IN (SELECT value::bigint FROM jsonb_array_elements_text($1::jsonb))"
        } else {
            "SELECT json_group_array(json_array(subscriber_id, list_id, status)) FROM subscriptions
             WHERE subscriber_id IN (SELECT value FROM json_each($1))"
        };
        let found = conn.text(memberships, &[Arg::Text(&json(&ids)?)]).await?;
        let found: Vec<(i64, i64, String)> = from_json(&found)?;
        for (subscriber_id, list_id, status) in found {
            let status = status
                .parse::<SubscriptionStatus>()
                .map_err(|e| sqlx::Error::Decode(e.into()))?;
            known.memberships.insert((subscriber_id, list_id), status);
        }
    }
    Ok(known)
}

/// Sets `erased[i]` for each of `keys` whose address was erased.
async fn mark_erased(
    conn: &mut Conn<'_>,
    keys: &[&str],
    erased: &mut [bool],
) -> Result<(), sqlx::Error> {
    // Most lists never had anyone erased: skip that lookup when there is nothing to find.
    // (An integer, not a boolean: the one type both drivers read alike.)
    let any_erased = conn
        .int(
            "SELECT CAST(CASE WHEN EXISTS (SELECT 1 FROM suppressions) THEN 1 ELSE 0 END AS BIGINT)",
            &[],
        )
        .await?;
    if any_erased == 0 {
        return Ok(());
    }
    // Arrays of plain strings: json_each hands scalars over without re-encoding them.
    let hashes: Vec<String> = keys.iter().map(|k| suppression_hash(k)).collect();
    let erased_rows = if conn.backend() == Backend::Postgres {
        "SELECT j.ord - 1 AS idx
         FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY AS j(value, ord)
         JOIN suppressions sp ON sp.email_hash = j.value"
    } else {
        "SELECT j.key AS idx FROM json_each($1) j JOIN suppressions sp ON sp.email_hash = j.value"
    };
    let rows = conn
        .ints(erased_rows, &[Arg::Text(&json(&hashes)?)])
        .await?;
    for idx in rows {
        let idx = usize::try_from(idx)
            .map_err(|_| sqlx::Error::Protocol("negative batch index".into()))?;
        if let Some(slot) = erased.get_mut(idx) {
            *slot = true;
        }
    }
    Ok(())
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn json(value: &impl Serialize) -> Result<String, sqlx::Error> {
    serde_json::to_string(value).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}
