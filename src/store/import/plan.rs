//! The rules of an import, as a pure function: a batch's rows and what the database knows
//! about them in, a [`Plan`] of inserts, updates, list joins and refusals out.
//!
//! Nothing here reads or writes the database, so every rule is unit-tested below without
//! SQLite: a list the person left is never re-joined, fields change only with `--update`, an
//! address erased at the person's request is not added back, and one address appears once.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::lookup::{Existing, Known};
use super::{ImportOptions, ImportRecord, ImportReport};
use crate::store::SubscriptionStatus;

/// The lists a new subscriber joins, with the status on each. A run of new subscribers with
/// the same memberships has consecutive ids, so their subscriptions and events are written by
/// one `INSERT ... SELECT` over the id range instead of row by row.
pub(super) type Memberships = Vec<(i64, SubscriptionStatus)>;

/// One subscription (and its event) of a subscriber joining a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct JoinRow {
    /// Subscriber id.
    pub(super) id: i64,
    /// List id.
    pub(super) list: i64,
    /// The status the subscription starts in.
    pub(super) status: SubscriptionStatus,
}

/// One `events` row of a batch that is not a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EventRow {
    /// Subscriber id.
    pub(super) id: i64,
    /// List id, if the event concerns one.
    pub(super) list: Option<i64>,
    /// `updated`, or `created` for a new subscriber who joins no list.
    pub(super) kind: &'static str,
    /// The event's JSON detail.
    pub(super) detail: String,
}

/// An existing subscriber whose name, language and attributes are overwritten (`--update`).
#[derive(Debug)]
pub(super) struct Update<'r> {
    /// Subscriber id.
    pub(super) id: i64,
    /// The row with the new values.
    pub(super) record: &'r ImportRecord,
}

/// A subscription of an existing subscriber moved to the status the file gives explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StatusChange {
    /// Subscriber id.
    pub(super) id: i64,
    /// List id.
    pub(super) list: i64,
    /// The new status.
    pub(super) status: SubscriptionStatus,
}

/// What one batch will write, in the order [`super::write`] writes it.
#[derive(Debug, Default)]
pub(super) struct Plan<'r> {
    /// The counts and per-row notes (refusals among them) the batch reports.
    pub(super) report: ImportReport,
    /// New subscribers in file order, by position in the batch, with the lists each joins.
    pub(super) fresh: Vec<(usize, Memberships)>,
    /// Existing subscribers joining lists they were never on.
    pub(super) joins: Vec<JoinRow>,
    /// Existing subscribers whose fields change.
    pub(super) updates: Vec<Update<'r>>,
    /// Existing subscriptions restored to an explicit status.
    pub(super) status_changes: Vec<StatusChange>,
    /// `updated` events of the `updates`.
    pub(super) events: Vec<EventRow>,
}

/// Why a row is left out of the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The address appears on an earlier row of the batch, at line `first`.
    Duplicate {
        /// The line of the row that is imported.
        first: u64,
    },
    /// The address was erased at the person's request: only they can subscribe it again.
    Erased,
}

impl Plan<'_> {
    /// Leaves `record` out, counting it and saying why in the report.
    fn refuse(&mut self, record: &ImportRecord, refusal: Refusal) {
        let address = &record.address;
        let message = match refusal {
            Refusal::Duplicate { first } => {
                self.report.rejected += 1;
                format!(
                    "duplicate of line {first} ({address}); each address may appear once per file"
                )
            }
            Refusal::Erased => {
                self.report.suppressed += 1;
                format!(
                    "{address} was erased at the person's request; not added back (they must subscribe again themselves)"
                )
            }
        };
        self.report.notes.push((record.line, message));
    }
}

/// Decides, row by row, what `records` become, given what the database `known`s about them.
pub(super) fn plan<'r>(
    records: &'r [ImportRecord],
    known: &Known,
    options: &ImportOptions,
) -> Plan<'r> {
    let mut plan = Plan::default();
    // A reader normally refuses repeated addresses before they reach a batch (see
    // `subscriber_csv`); a batch that holds one twice would otherwise insert it twice.
    let mut first_line: HashMap<&str, u64> = HashMap::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        // One hash per row (`entry`, not `get` then `insert`): this runs for every row.
        match first_line.entry(record.key.as_str()) {
            Entry::Occupied(first) => {
                let first = *first.get();
                plan.refuse(record, Refusal::Duplicate { first });
                continue;
            }
            Entry::Vacant(slot) => {
                slot.insert(record.line);
            }
        }
        if known.erased[index] {
            plan.refuse(record, Refusal::Erased);
            continue;
        }
        match &known.existing[index] {
            None => {
                let memberships = record
                    .lists
                    .iter()
                    .map(|(list, status)| {
                        (
                            list.id,
                            status.unwrap_or_else(|| SubscriptionStatus::initial_for(list)),
                        )
                    })
                    .collect();
                plan.fresh.push((index, memberships));
                plan.report.added += 1;
            }
            Some(current) => plan_existing(&mut plan, record, current, known, options),
        }
    }
    plan
}

/// The part of the plan for a row whose address the database knows already.
fn plan_existing<'r>(
    plan: &mut Plan<'r>,
    record: &'r ImportRecord,
    current: &Existing,
    known: &Known,
    options: &ImportOptions,
) {
    let changed_fields = if options.update {
        changed_fields(record, current)
    } else {
        Vec::new()
    };
    let mut joined = false;
    let mut kept = Vec::new();
    for (list, status) in &record.lists {
        match known.memberships.get(&(current.id, list.id)) {
            None => {
                plan.joins.push(JoinRow {
                    id: current.id,
                    list: list.id,
                    status: status.unwrap_or_else(|| SubscriptionStatus::initial_for(list)),
                });
                joined = true;
            }
            Some(SubscriptionStatus::Unsubscribed) => kept.push(list.name.as_str()),
            Some(now_status) => {
                // An explicit status in the file (from an export) is restored.
                if let Some(wanted) = status
                    && wanted != now_status
                {
                    plan.status_changes.push(StatusChange {
                        id: current.id,
                        list: list.id,
                        status: *wanted,
                    });
                    joined = true;
                }
            }
        }
    }
    if !kept.is_empty() {
        plan.report.notes.push((
            record.line,
            format!(
                "{} unsubscribed from {} earlier; left unsubscribed",
                record.address,
                kept.join(", ")
            ),
        ));
    }
    if !changed_fields.is_empty() {
        plan.updates.push(Update {
            id: current.id,
            record,
        });
        plan.events.push(EventRow {
            id: current.id,
            list: None,
            kind: "updated",
            detail: serde_json::json!({ "fields": changed_fields }).to_string(),
        });
    }
    if joined || !changed_fields.is_empty() {
        plan.report.updated += 1;
    } else {
        plan.report.unchanged += 1;
    }
}

/// The fields `--update` would change: a name or language only when the file gives one, the
/// attributes whenever they differ (the file's set replaces the stored one).
fn changed_fields(record: &ImportRecord, current: &Existing) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if record.name.as_ref().is_some_and(|n| *n != current.name) {
        changed.push("name");
    }
    if record.language.is_some() && record.language != current.language {
        changed.push("language");
    }
    let same_attributes = serde_json::from_str::<serde_json::Value>(&current.attributes)
        .map(|v| v == serde_json::Value::Object(record.attributes.clone()))
        .unwrap_or(false);
    if !same_attributes {
        changed.push("attributes");
    }
    changed
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::List;
    use crate::store::import::tests::row;

    fn list(id: i64, name: &str, double_opt_in: bool) -> Arc<List> {
        Arc::new(List {
            id,
            name: name.into(),
            double_opt_in,
            public: true,
            track_clicks: false,
            created_at: "2026-01-01T00:00:00.000Z".into(),
        })
    }

    fn options(update: bool) -> ImportOptions {
        ImportOptions {
            update,
            dry_run: false,
            source: "import:test.csv".into(),
        }
    }

    /// The database holds subscriber `id` (named `name`, no attributes) for the batch's first
    /// row, on `lists` with those statuses.
    fn known_first(len: usize, id: i64, name: &str, lists: &[(i64, SubscriptionStatus)]) -> Known {
        let mut known = Known::nothing(len);
        known.existing[0] = Some(Existing {
            id,
            name: name.into(),
            language: None,
            attributes: "{}".into(),
        });
        for (list, status) in lists {
            known.memberships.insert((id, *list), *status);
        }
        known
    }

    /// Nothing of the plan writes anything.
    fn writes_nothing(plan: &Plan<'_>) -> bool {
        plan.fresh.is_empty()
            && plan.joins.is_empty()
            && plan.updates.is_empty()
            && plan.status_changes.is_empty()
            && plan.events.is_empty()
    }

    #[test]
    fn a_new_subscriber_joins_each_list_in_its_initial_status() {
        let news = list(1, "news", false);
        let digest = list(2, "digest", true);
        let records = [row(2, "ana@example.org", &[&news, &digest])];
        let plan = plan(&records, &Known::nothing(1), &options(false));
        assert_eq!(
            plan.fresh,
            [(
                0,
                vec![
                    (1, SubscriptionStatus::Confirmed),
                    (2, SubscriptionStatus::Unconfirmed)
                ]
            )]
        );
        assert_eq!(plan.report.added, 1);
        assert!(plan.joins.is_empty() && plan.updates.is_empty() && plan.events.is_empty());
        assert!(plan.report.notes.is_empty());
    }

    #[test]
    fn an_unchanged_re_import_writes_nothing() {
        let news = list(1, "news", false);
        let records = [row(2, "ana@example.org", &[&news])];
        let known = known_first(1, 7, "", &[(1, SubscriptionStatus::Confirmed)]);
        for update in [false, true] {
            let plan = plan(&records, &known, &options(update));
            assert!(writes_nothing(&plan), "update: {update}");
            assert_eq!(plan.report.unchanged, 1);
            assert_eq!(plan.report.updated + plan.report.added, 0);
        }
    }

    #[test]
    fn update_changes_a_name_only_when_asked() {
        let news = list(1, "news", false);
        let mut record = row(2, "ana@example.org", &[&news]);
        record.name = Some("Ana Lima".into());
        let records = [record];
        let known = known_first(1, 7, "Ana", &[(1, SubscriptionStatus::Confirmed)]);

        let without = plan(&records, &known, &options(false));
        assert!(writes_nothing(&without));
        assert_eq!(without.report.unchanged, 1);

        let with = plan(&records, &known, &options(true));
        assert_eq!(with.updates.len(), 1);
        assert_eq!(with.updates[0].id, 7);
        assert_eq!(with.updates[0].record.name.as_deref(), Some("Ana Lima"));
        assert_eq!(
            with.events,
            [EventRow {
                id: 7,
                list: None,
                kind: "updated",
                detail: r#"{"fields":["name"]}"#.into(),
            }]
        );
        assert_eq!(with.report.updated, 1);
        assert!(with.joins.is_empty() && with.status_changes.is_empty());
    }

    #[test]
    fn a_list_left_is_never_joined_again() {
        let news = list(1, "news", false);
        let mut record = row(2, "ana@example.org", &[&news]);
        // Even an export's explicit `news:confirmed` does not undo the unsubscribe.
        record.lists[0].1 = Some(SubscriptionStatus::Confirmed);
        let records = [record];
        let known = known_first(1, 7, "", &[(1, SubscriptionStatus::Unsubscribed)]);
        let plan = plan(&records, &known, &options(true));
        assert!(writes_nothing(&plan));
        assert_eq!(plan.report.unchanged, 1);
        assert_eq!(
            plan.report.notes,
            [(
                2,
                "ana@example.org unsubscribed from news earlier; left unsubscribed".to_string()
            )]
        );
    }

    #[test]
    fn a_known_subscriber_joins_a_new_list_and_gets_an_explicit_status_back() {
        let news = list(1, "news", false);
        let digest = list(2, "digest", true);
        let mut record = row(2, "ana@example.org", &[&news, &digest]);
        record.lists[0].1 = Some(SubscriptionStatus::Confirmed);
        let records = [record];
        let known = known_first(1, 7, "", &[(1, SubscriptionStatus::Unconfirmed)]);
        let plan = plan(&records, &known, &options(false));
        assert_eq!(
            plan.status_changes,
            [StatusChange {
                id: 7,
                list: 1,
                status: SubscriptionStatus::Confirmed
            }]
        );
        assert_eq!(
            plan.joins,
            [JoinRow {
                id: 7,
                list: 2,
                status: SubscriptionStatus::Unconfirmed
            }]
        );
        assert_eq!(plan.report.updated, 1);
    }

    #[test]
    fn an_erased_address_is_refused() {
        let news = list(1, "news", false);
        let records = [
            row(2, "gone@example.org", &[&news]),
            row(3, "bo@example.org", &[&news]),
        ];
        let mut known = Known::nothing(2);
        known.erased[0] = true;
        let plan = plan(&records, &known, &options(false));
        assert_eq!(plan.report.suppressed, 1);
        assert_eq!(plan.report.added, 1);
        assert_eq!(plan.fresh.len(), 1);
        assert_eq!(plan.fresh[0].0, 1, "only the second row is new");
        assert_eq!(plan.report.notes.len(), 1);
        assert_eq!(plan.report.notes[0].0, 2);
        assert!(
            plan.report.notes[0]
                .1
                .contains("gone@example.org was erased"),
            "{:?}",
            plan.report.notes
        );
    }

    #[test]
    fn an_address_twice_in_a_batch_is_planned_once() {
        let news = list(1, "news", false);
        let records = [
            row(2, "ana@example.org", &[&news]),
            row(3, "bo@example.org", &[&news]),
            row(4, "ANA@example.org", &[&news]),
        ];
        let plan = plan(&records, &Known::nothing(3), &options(false));
        let planned: Vec<usize> = plan.fresh.iter().map(|(index, _)| *index).collect();
        assert_eq!(planned, [0, 1]);
        assert_eq!((plan.report.added, plan.report.rejected), (2, 1));
        assert_eq!(
            plan.report.notes,
            [(
                4,
                "duplicate of line 2 (ANA@example.org); each address may appear once per file"
                    .to_string()
            )]
        );
    }
}
