//! A subject leaving a pilot's results: withdrawn (a withdrawal, objection
//! or denial marks the assignment) or erased (the assignment and its events
//! are deleted). Both take its outcomes out of its cell's sums and of the
//! outcome distribution; run before the change, in its transaction.

use std::collections::BTreeMap;

use sqlx::AnyConnection;
use sqlx::Row;

use super::{Cell, DAY_MICROS, Deltas};
use crate::db::{AppendBatch, AppendTable, Dialect, Value};
use crate::error::StoreError;

/// How a subject leaves.
#[derive(Clone, Copy)]
pub(crate) enum Leaving<'a> {
    /// Its assignments in the pilots of `purpose` not withdrawn yet are
    /// marked withdrawn from `at` (microseconds) with `status`.
    Withdrawn {
        purpose: &'a str,
        at: i64,
        status: &'a str,
    },
    /// Its assignments in every pilot are deleted.
    Erased,
}

/// Updates the aggregates for `subjects` (pseudonyms of one person) leaving
/// as `how`, in `conn`'s write transaction, before the assignments change.
pub(crate) async fn leave(
    conn: &mut AnyConnection,
    dialect: Dialect,
    subjects: &[&str],
    how: Leaving<'_>,
) -> Result<(), StoreError> {
    if subjects.is_empty() {
        return Ok(());
    }
    // The queued changes first: the outcomes read below are then whole.
    let mut fold = AppendBatch::default();
    super::fold::push_fold(&mut fold)?;
    fold.run_on(&mut *conn).await?;
    let (filter, first) = match how {
        Leaving::Withdrawn { .. } => (
            "a.experiment_key IN (SELECT key FROM experiments WHERE purpose = $1) AND a.withdrawn_at IS NULL",
            2,
        ),
        Leaving::Erased => ("a.experiment_key IN (SELECT key FROM experiments)", 1),
    };
    let sql = format!(
        "SELECT a.experiment_key AS pilot, a.subject AS subject, a.variant AS variant, a.assigned_at AS assigned_at, \
           a.basis AS basis, a.notice_version AS notice_version, a.segments AS segments, \
           a.withdrawn_at AS withdrawn_at, a.withdrawn_as AS withdrawn_as, o.metric AS metric, o.y AS y \
         FROM assignments a LEFT JOIN subject_outcomes o ON o.experiment_key = a.experiment_key AND o.subject = a.subject \
         WHERE {filter} AND a.subject IN ({})",
        crate::db::numbered(first, subjects.len())
    );
    let mut query = sqlx::query(&sql);
    if let Leaving::Withdrawn { purpose, .. } = how {
        query = query.bind(purpose);
    }
    for subject in subjects {
        query = query.bind(*subject);
    }
    // Per assignment: its cell, its withdrawal, its outcomes.
    type Leaver = (Cell, Option<(i64, bool)>, Vec<(String, f64)>);
    let mut leavers: BTreeMap<(String, String), Leaver> = BTreeMap::new();
    for row in query.fetch_all(&mut *conn).await? {
        let pilot: String = row.try_get("pilot")?;
        let subject: String = row.try_get("subject")?;
        let leaver = match leavers.entry((pilot, subject)) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => {
                let cell = Cell::of(
                    &entry.key().0,
                    &row.try_get::<String, _>("variant")?,
                    row.try_get("assigned_at")?,
                    &row.try_get::<String, _>("basis")?,
                    row.try_get("notice_version")?,
                    row.try_get::<Option<String>, _>("segments")?.as_deref(),
                );
                let withdrawal = match row.try_get::<Option<i64>, _>("withdrawn_at")? {
                    None => None,
                    Some(at) => Some((
                        at / DAY_MICROS,
                        row.try_get::<Option<String>, _>("withdrawn_as")?.as_deref()
                            == Some("objected"),
                    )),
                };
                entry.insert((cell, withdrawal, Vec::new()))
            }
        };
        if let Some(metric) = row.try_get::<Option<String>, _>("metric")? {
            leaver
                .2
                .push((metric, row.try_get::<Option<f64>, _>("y")?.unwrap_or(0.0)));
        }
    }
    let mut deltas = Deltas::default();
    for (cell, withdrawal, outcomes) in leavers.values() {
        if withdrawal.is_none() {
            for (metric, y) in outcomes {
                deltas.outcome_left(cell, metric, *y);
            }
        }
        match how {
            Leaving::Withdrawn { at, status, .. } => {
                deltas.withdrawn(cell, at / DAY_MICROS, status == "objected");
            }
            Leaving::Erased => deltas.erased(cell, *withdrawal),
        }
    }
    let mut batch = AppendBatch::default();
    deltas.push_to(&mut batch, dialect)?;
    if let Leaving::Erased = how {
        for subject in subjects {
            batch.push(
                AppendTable::SubjectOutcomes,
                format!(
                    "DELETE FROM subject_outcomes WHERE experiment_key IN (SELECT key FROM experiments) AND subject = {}",
                    dialect.placeholders(1, 1)
                ),
                vec![Value::Text((*subject).to_owned())],
            )?;
        }
    }
    batch.run_on(conn).await
}
