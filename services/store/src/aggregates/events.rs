//! What a group of new events changes in the aggregates, appended to
//! `outcome_queue` in the events' own commit: per pilot, subject and metric
//! the group attributes events to, the sum of their values. The queue is
//! folded into the subjects' outcomes and the cells' sums later, in batches
//! (`fold.rs`), and before any read of them.
//!
//! Measured (`bench/results/load_aggregates.md`): writing each subject's
//! outcome in the events' commit dirtied a page per event (the subjects of
//! a group are spread over the table; 2,338 bytes written per event instead
//! of 371) and cut ingestion to 0.4×; the queue is appended in commit order,
//! as the events are.

use std::collections::BTreeMap;

use pilotgate_domain::experiment::MetricKind;
use pilotgate_domain::time::to_micros;

use super::metric_key;
use crate::db::{AppendBatch, AppendTable, Dialect, INSERT_CHUNK, Value};
use crate::error::StoreError;
use crate::events::EventDraft;
use crate::events::rule::Held;

/// Adds to `batch` the queue rows of `events` (each stored now for the
/// first time, under its assignment): the events each metric attributes to
/// the assignment (at or after it, inside the window).
pub(crate) fn push_outcomes(
    batch: &mut AppendBatch,
    dialect: Dialect,
    events: &[(&Held, &EventDraft)],
) -> Result<(), StoreError> {
    let mut changes: BTreeMap<(&str, &str, String), f64> = BTreeMap::new();
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
            let d = changes
                .entry((
                    held.experiment_key.as_str(),
                    held.subject.as_str(),
                    metric_key(metric),
                ))
                .or_default();
            if metric.kind == MetricKind::Sum {
                *d += event.value.unwrap_or(0.0);
            }
        }
    }
    let changes: Vec<_> = changes.into_iter().collect();
    for chunk in changes.chunks(INSERT_CHUNK) {
        batch.push(
            AppendTable::OutcomeQueue,
            format!(
                "INSERT INTO outcome_queue (experiment_key, subject, metric, d) VALUES {}",
                dialect.value_rows(chunk.len(), 4)
            ),
            chunk
                .iter()
                .flat_map(|((pilot, subject, metric), d)| {
                    [
                        Value::Text((*pilot).to_owned()),
                        Value::Text((*subject).to_owned()),
                        Value::Text(metric.clone()),
                        Value::Real(*d),
                    ]
                })
                .collect::<Vec<_>>(),
        )?;
    }
    Ok(())
}
