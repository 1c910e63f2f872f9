//! One pass over a bounce mailbox: read each message, classify it, find its delivery, record
//! it and what the policy decided, and mark it handled. A message that cannot be classified,
//! or a bounce that names no delivery of ours, is left where it is and reported.

use serde::Serialize;

use super::{FeedbackError, Item, Kind, Report, Source, classify, quoted_message_ids, verp_tokens};
use crate::store::{Decision, FeedbackTarget, NewFeedback, Store};
use crate::token::Keys;

/// What happened to one message.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Classified and recorded.
    Recorded {
        /// What it says.
        report: Report,
        /// The delivery it was matched to.
        delivery_id: Option<i64>,
        /// How: `verp` or `message-id`.
        matched_by: Option<&'static str>,
        /// What the policy did.
        decision: Decision,
    },
    /// Recorded by an earlier run: skipped.
    AlreadyHandled,
    /// Not understood: left in the mailbox.
    Unclassified {
        /// Why.
        reason: String,
    },
    /// A bounce or complaint that names no delivery of ours: left in the mailbox.
    Unmatched {
        /// What it says.
        report: Report,
    },
}

/// One message and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Processed {
    /// Where it was read.
    pub origin: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A whole pass.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Every message read, in order.
    pub messages: Vec<Processed>,
}

impl Summary {
    /// Messages left in the mailbox for a person.
    pub fn left(&self) -> usize {
        self.messages
            .iter()
            .filter(|p| {
                matches!(
                    p.outcome,
                    Outcome::Unclassified { .. } | Outcome::Unmatched { .. }
                )
            })
            .count()
    }

    /// Messages recorded by this pass.
    pub fn recorded(&self) -> usize {
        self.messages
            .iter()
            .filter(|p| matches!(p.outcome, Outcome::Recorded { .. }))
            .count()
    }
}

/// The settings a pass needs.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    /// The VERP local part (`bounces`).
    pub local_part: &'a str,
    /// Soft bounces in a row that blocklist.
    pub soft_limit: u32,
}

/// Reads `source` once and records what it finds.
pub async fn process(
    store: &Store,
    keys: &Keys,
    source: &Source,
    settings: Settings<'_>,
) -> Result<Summary, FeedbackError> {
    let mut summary = Summary::default();
    let items = source.read().await?;
    let mut handled = Vec::new();
    for item in &items {
        let outcome = one(store, keys, item, settings).await?;
        if matches!(outcome, Outcome::Recorded { .. } | Outcome::AlreadyHandled) {
            handled.push(item);
        }
        summary.messages.push(Processed {
            origin: item.origin.clone(),
            outcome,
        });
    }
    // After recording: a crash in between leaves messages unmarked, and the next pass finds
    // them already recorded and marks them then.
    source.mark_handled(&handled).await?;
    Ok(summary)
}

async fn one(
    store: &Store,
    keys: &Keys,
    item: &Item,
    settings: Settings<'_>,
) -> Result<Outcome, FeedbackError> {
    let key = item.key();
    if store.feedback_recorded(&key).await? {
        return Ok(Outcome::AlreadyHandled);
    }
    let report = match classify(&item.bytes) {
        Ok(r) => r,
        Err(e) => return Ok(Outcome::Unclassified { reason: e.0 }),
    };
    let found = find_target(store, keys, item, &report, settings.local_part).await?;
    let informative = matches!(report.kind, Kind::AutoReply | Kind::Delivered);
    if found.is_none() && !informative {
        return Ok(Outcome::Unmatched { report });
    }
    let (target, matched_by) = match &found {
        Some((t, how)) => (Some(t), Some(*how)),
        None => (None, None),
    };
    let decision = store
        .record_feedback(
            &NewFeedback {
                message_key: &key,
                origin: &item.origin,
                kind: report.kind,
                target,
                action: report.action.as_deref(),
                status: report.status.as_deref(),
                diagnostic: report.diagnostic.as_deref(),
                matched_by: matched_by.unwrap_or("none"),
            },
            settings.soft_limit,
        )
        .await?;
    Ok(Outcome::Recorded {
        delivery_id: target.map(|t| t.delivery_id),
        report,
        matched_by,
        decision,
    })
}

/// The delivery a message is about: by a VERP token with a valid signature, else by a quoted
/// Message-ID of ours whose delivery went to the report's recipient.
async fn find_target(
    store: &Store,
    keys: &Keys,
    item: &Item,
    report: &Report,
    local_part: &str,
) -> Result<Option<(FeedbackTarget, &'static str)>, FeedbackError> {
    for token in verp_tokens(&item.bytes, local_part) {
        if let Ok(id) = keys.verify_bounce(&token)
            && let Some(t) = store.feedback_target(id).await?
        {
            return Ok(Some((t, "verp")));
        }
    }
    let Some(recipient) = report.recipient.as_deref() else {
        return Ok(None);
    };
    for (campaign_id, delivery_id) in quoted_message_ids(&item.bytes) {
        if let Some(t) = store.feedback_target(delivery_id).await?
            && t.campaign_id == campaign_id
            && t.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(recipient))
        {
            return Ok(Some((t, "message-id")));
        }
    }
    Ok(None)
}
