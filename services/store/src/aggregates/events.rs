//! What a group of new events changes in the aggregates: each subject's
//! outcome per metric, and with it the sums of its cell and the outcome
//! distribution of its variant.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use pilotgate_domain::experiment::MetricKind;
use pilotgate_domain::time::to_micros;
use sqlx::Row;

use super::{Cell, Deltas, metric_key};
use crate::db::{Dialect, LOOKUP_CHUNK, Reads};
use crate::error::StoreError;
use crate::events::EventDraft;
use crate::events::rule::Held;

/// One event's part in one metric: the metric, its kind, the event's value.
type Touch = (String, MetricKind, Option<f64>);

/// The changes `events` (each stored now for the first time, under its
/// assignment) make to the aggregates: the events each metric attributes to
/// the assignment move the subject's outcome (binary: 1 once it has one;
/// sum: plus the value), read first from `subject_outcomes` in `conn`'s
/// transaction, which holds the subject write lock.
pub(crate) async fn outcomes_of(
    conn: &mut impl Reads,
    dialect: Dialect,
    events: &[(&Held, &EventDraft)],
) -> Result<Deltas, StoreError> {
    let mut touched: BTreeMap<(&str, &str), Vec<Touch>> = BTreeMap::new();
    for (held, event) in events {
        if held.withdrawn {
            continue;
        }
        let assigned = to_micros(held.assigned_at);
        for metric in
            held.pilot
                .measures
                .attributed(&event.name, to_micros(event.occurred_at), assigned)
        {
            touched
                .entry((held.experiment_key.as_str(), held.subject.as_str()))
                .or_default()
                .push((metric_key(metric), metric.kind, event.value));
        }
    }
    let mut deltas = Deltas::default();
    let pairs: Vec<(&str, &str)> = touched.keys().copied().collect();
    for chunk in pairs.chunks(LOOKUP_CHUNK / 2) {
        for (assigned, subject, mut outcomes) in current(conn, dialect, chunk).await? {
            let Some(touches) = touched.get(&(assigned.pilot.as_str(), subject.as_str())) else {
                continue;
            };
            let before = outcomes.clone();
            for (metric, kind, value) in touches {
                let y = outcomes.entry(metric.clone()).or_insert(0.0);
                *y = match kind {
                    MetricKind::Binary => 1.0,
                    MetricKind::Sum => *y + value.unwrap_or(0.0),
                };
            }
            let metrics: BTreeSet<&String> = touches.iter().map(|(metric, ..)| metric).collect();
            for metric in metrics {
                let new = outcomes[metric];
                if let Some(kept) = &assigned.kept {
                    let old = before.get(metric).copied().unwrap_or(0.0);
                    deltas.outcome_moved(kept, metric, old, new);
                }
                deltas.subject_outcome(&assigned.pilot, &subject, metric, new);
            }
        }
    }
    Ok(deltas)
}

/// A subject's assignment as the aggregates see it: its pilot, and its cell
/// while it is kept (not withdrawn).
struct Assigned {
    pilot: String,
    kept: Option<Cell>,
}

/// The cell, pseudonym and outcomes so far (by metric) of each assignment
/// `(pilot, subject)` of `pairs`.
async fn current(
    conn: &mut impl Reads,
    dialect: Dialect,
    pairs: &[(&str, &str)],
) -> Result<Vec<(Assigned, String, HashMap<String, f64>)>, StoreError> {
    let (sql, conn) = conn.reading(&format!(
        "SELECT a.experiment_key AS pilot, a.subject AS subject, a.variant AS variant, a.assigned_at AS assigned_at, \
           a.basis AS basis, a.notice_version AS notice_version, a.segments AS segments, \
           CASE WHEN a.withdrawn_at IS NULL THEN 0 ELSE 1 END AS withdrawn, o.metric AS metric, o.y AS y \
         FROM (VALUES {}) AS k JOIN assignments a ON a.experiment_key = k.column1 AND a.subject = k.column2 \
         LEFT JOIN subject_outcomes o ON o.experiment_key = a.experiment_key AND o.subject = a.subject",
        dialect.value_rows(pairs.len(), 2)
    ))?;
    let mut query = sqlx::query(&sql);
    for (pilot, subject) in pairs {
        query = query.bind(*pilot).bind(*subject);
    }
    let mut found: BTreeMap<(String, String), (Assigned, HashMap<String, f64>)> = BTreeMap::new();
    for row in query.fetch_all(conn).await? {
        let pilot: String = row.try_get("pilot")?;
        let subject: String = row.try_get("subject")?;
        let entry = match found.entry((pilot.clone(), subject)) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => {
                let kept = (row.try_get::<i64, _>("withdrawn")? == 0)
                    .then(|| {
                        Ok::<_, StoreError>(Cell::of(
                            &pilot,
                            &row.try_get::<String, _>("variant")?,
                            row.try_get("assigned_at")?,
                            &row.try_get::<String, _>("basis")?,
                            row.try_get("notice_version")?,
                            row.try_get::<Option<String>, _>("segments")?.as_deref(),
                        ))
                    })
                    .transpose()?;
                entry.insert((Assigned { pilot, kept }, HashMap::new()))
            }
        };
        if let Some(metric) = row.try_get::<Option<String>, _>("metric")? {
            let y: Option<f64> = row.try_get("y")?;
            entry.1.insert(metric, y.unwrap_or(0.0));
        }
    }
    Ok(found
        .into_iter()
        .map(|((_, subject), (assigned, outcomes))| (assigned, subject, outcomes))
        .collect())
}
