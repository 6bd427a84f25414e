//! The aggregates results read (migration 0018), so that a results read
//! touches a few dozen rows whatever the number of events: per assignment
//! cell (pilot, variant, UTC day, basis, notice version, segment
//! attributes) the subjects assigned and withdrawn, per metric and cell the
//! sum and sum of squares of the kept subjects' outcomes, the withdrawals
//! per day of effect, and each subject's outcome per metric, which an event
//! changes (and which the Lee bounds of a sum metric count, when attrition
//! differs between variants).
//!
//! They are maintained in the transaction that writes what they sum up:
//! - `assignments/commit.rs` adds each new assignment to its cell;
//! - `events/commit.rs` queues what its new events change in each subject's
//!   outcome ([`events::push_outcomes`], appended in commit order), and
//!   [`fold`] folds the queue into the outcomes and their cells' sums in
//!   batches: every [`fold::FOLD_INTERVAL`] inside `pilotgate serve`, and
//!   before any read of them;
//! - a withdrawal, objection or denial (`consents.rs`) and an erasure
//!   (`erasure.rs`) take the subject's outcomes out ([`leaving::leave`]);
//! - a purge (`purge.rs`) deletes the pilot's rows with its raw data.
//!
//! [`rebuild`] recomputes them from the raw rows with one SQL definition:
//! the build of the rows stored before migration 0018 (at the first start
//! after it), `pilotgate aggregates rebuild`, and the check that what is
//! maintained equals a recomputation (`Store::aggregate_drift`, the
//! property test `tests/aggregates.rs`).
//!
//! Sums of values are floating point: maintained in commit order, a
//! recomputation adds them in the database's order, so the two agree to
//! rounding (exactly for binary metrics and for values that are multiples
//! of a power of two).

pub(crate) mod events;
pub(crate) mod fold;
pub(crate) mod leaving;
pub(crate) mod rebuild;

use std::collections::HashMap;

use pilotgate_domain::experiment::{Metric, MetricKind};
use sqlx::Row;

use crate::db::{AppendBatch, AppendTable, Dialect, INSERT_CHUNK, Reads, Value};
use crate::error::{StoreError, corrupt};

/// Microseconds in a day.
pub(crate) const DAY_MICROS: i64 = 86_400_000_000;

/// A metric's name in the aggregate tables: its kind and event
/// (`binary:purchase`, `sum:purchase`), so that one event measured both ways
/// is two metrics.
pub(crate) fn metric_key(metric: &Metric) -> String {
    format!("{}:{}", metric.kind.as_str(), metric.event)
}

/// What the aggregates need of a pilot: its metrics (primary first, each
/// kind and event once) and its attribution window.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Measures {
    pub(crate) metrics: Vec<Metric>,
    pub(crate) window_micros: Option<i64>,
}

impl Measures {
    pub(crate) fn new(primary: Metric, guardrails: Vec<Metric>, window_hours: Option<i64>) -> Self {
        let mut metrics: Vec<Metric> = Vec::with_capacity(guardrails.len() + 1);
        for metric in std::iter::once(primary).chain(guardrails) {
            if !metrics.contains(&metric) {
                metrics.push(metric);
            }
        }
        Measures {
            metrics,
            window_micros: window_hours.map(|h| h * 3_600_000_000),
        }
    }

    /// The metrics an event named `name` that occurred at `occurred` adds
    /// to, for an assignment made at `assigned` (microseconds): events at or
    /// after the assignment and, with a window, before its end (the rule of
    /// `pilotgate analyze`).
    pub(crate) fn attributed<'a>(
        &'a self,
        name: &'a str,
        occurred: i64,
        assigned: i64,
    ) -> impl Iterator<Item = &'a Metric> + 'a {
        let inside = occurred >= assigned
            && self
                .window_micros
                .is_none_or(|window| occurred < assigned.saturating_add(window));
        self.metrics
            .iter()
            .filter(move |metric| inside && metric.event == name)
    }
}

/// The measures of every pilot (or of those in `keys`), read from the
/// experiments table.
pub(crate) async fn measures_of(
    conn: &mut impl Reads,
    keys: Option<&[String]>,
) -> Result<HashMap<String, Measures>, StoreError> {
    let (sql, conn) = conn.reading(
        "SELECT key, primary_event, primary_kind, guardrails, attribution_window_hours FROM experiments",
    )?;
    let mut measures = HashMap::new();
    for row in sqlx::query(&sql).fetch_all(conn).await? {
        let key: String = row.try_get("key")?;
        if keys.is_some_and(|keys| !keys.contains(&key)) {
            continue;
        }
        measures.insert(key, measures_in(&row)?);
    }
    Ok(measures)
}

/// The [`Measures`] of an experiments row with the columns `primary_event`,
/// `primary_kind`, `guardrails` and `attribution_window_hours`.
pub(crate) fn measures_in(row: &sqlx::any::AnyRow) -> Result<Measures, StoreError> {
    let guardrails: Vec<Metric> = serde_json::from_str(&row.try_get::<String, _>("guardrails")?)
        .map_err(|_| corrupt("experiments.guardrails"))?;
    let kind: MetricKind = row
        .try_get::<String, _>("primary_kind")?
        .parse()
        .map_err(|_| corrupt("experiments.primary_kind"))?;
    let primary = Metric {
        event: row.try_get("primary_event")?,
        kind,
    };
    Ok(Measures::new(
        primary,
        guardrails,
        row.try_get::<Option<i64>, _>("attribution_window_hours")?,
    ))
}

/// An assignment's cell: where it is counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Cell {
    pub(crate) pilot: String,
    pub(crate) variant: String,
    /// The UTC day of the assignment, counted from the epoch.
    pub(crate) day: i64,
    pub(crate) basis: String,
    /// 0 when the basis names no notice.
    pub(crate) notice_version: i64,
    /// '' when none were stored.
    pub(crate) segments: String,
}

impl Cell {
    /// The cell of an assignment made at `assigned_at` (microseconds).
    pub(crate) fn of(
        pilot: &str,
        variant: &str,
        assigned_at: i64,
        basis: &str,
        notice_version: Option<i64>,
        segments: Option<&str>,
    ) -> Cell {
        Cell {
            pilot: pilot.to_owned(),
            variant: variant.to_owned(),
            day: assigned_at / DAY_MICROS,
            basis: basis.to_owned(),
            notice_version: notice_version.unwrap_or(0),
            segments: segments.unwrap_or_default().to_owned(),
        }
    }

    /// The outcome cell of `metric`: the cell without the notice version.
    fn outcome(&self, metric: &str) -> OutcomeCell {
        OutcomeCell {
            pilot: self.pilot.clone(),
            metric: metric.to_owned(),
            variant: self.variant.clone(),
            day: self.day,
            basis: self.basis.clone(),
            segments: self.segments.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct OutcomeCell {
    pilot: String,
    metric: String,
    variant: String,
    day: i64,
    basis: String,
    segments: String,
}

/// Changes to the aggregates, summed per row, then written as upserts (one
/// multi-row statement per table and chunk).
#[derive(Debug, Default)]
pub(crate) struct Deltas {
    /// `[assigned, withdrawn]` per cell.
    assignments: HashMap<Cell, [i64; 2]>,
    /// `[withdrawn, objected]` per (pilot, variant, day of effect).
    withdrawals: HashMap<(String, String, i64), [i64; 2]>,
    /// `[sum, sum of squares]` per metric and cell.
    outcomes: HashMap<OutcomeCell, [f64; 2]>,
}

impl Deltas {
    /// A new assignment in `cell`.
    pub(crate) fn assigned(&mut self, cell: Cell) {
        self.assignments.entry(cell).or_default()[0] += 1;
    }

    /// A subject of `cell` with outcome `y` of `metric` no longer kept.
    pub(crate) fn outcome_left(&mut self, cell: &Cell, metric: &str, y: f64) {
        let sums = self.outcomes.entry(cell.outcome(metric)).or_default();
        sums[0] -= y;
        sums[1] -= y * y;
    }

    /// A subject of `cell` withdrawn on `day` (an objection when `objected`).
    pub(crate) fn withdrawn(&mut self, cell: &Cell, day: i64, objected: bool) {
        self.assignments.entry(cell.clone()).or_default()[1] += 1;
        self.withdrawal(cell, day, objected, 1);
    }

    /// A subject of `cell` erased: its assignment is gone, and with it its
    /// withdrawal when it had one (`Some((day, objected))`).
    pub(crate) fn erased(&mut self, cell: &Cell, withdrawal: Option<(i64, bool)>) {
        let counts = self.assignments.entry(cell.clone()).or_default();
        counts[0] -= 1;
        if let Some((day, objected)) = withdrawal {
            counts[1] -= 1;
            self.withdrawal(cell, day, objected, -1);
        }
    }

    fn withdrawal(&mut self, cell: &Cell, day: i64, objected: bool, by: i64) {
        let counts = self
            .withdrawals
            .entry((cell.pilot.clone(), cell.variant.clone(), day))
            .or_default();
        counts[usize::from(objected)] += by;
    }

    /// The upserts of these changes, in key order, added to `batch`.
    pub(crate) fn push_to(
        self,
        batch: &mut AppendBatch,
        dialect: Dialect,
    ) -> Result<(), StoreError> {
        let mut assignments: Vec<_> = self.assignments.into_iter().collect();
        assignments.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        upsert(
            batch,
            dialect,
            ASSIGNMENT_CELLS,
            assignments
                .into_iter()
                .map(|(cell, [assigned, withdrawn])| {
                    vec![
                        Value::Text(cell.pilot),
                        Value::Text(cell.variant),
                        Value::Integer(Some(cell.day)),
                        Value::Text(cell.basis),
                        Value::Integer(Some(cell.notice_version)),
                        Value::Text(cell.segments),
                        Value::Integer(Some(assigned)),
                        Value::Integer(Some(withdrawn)),
                    ]
                })
                .collect(),
        )?;
        let mut withdrawals: Vec<_> = self.withdrawals.into_iter().collect();
        withdrawals.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        upsert(
            batch,
            dialect,
            WITHDRAWAL_CELLS,
            withdrawals
                .into_iter()
                .map(|((pilot, variant, day), [withdrawn, objected])| {
                    vec![
                        Value::Text(pilot),
                        Value::Text(variant),
                        Value::Integer(Some(day)),
                        Value::Integer(Some(withdrawn)),
                        Value::Integer(Some(objected)),
                    ]
                })
                .collect(),
        )?;
        let mut outcomes: Vec<_> = self.outcomes.into_iter().collect();
        outcomes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        upsert(
            batch,
            dialect,
            OUTCOME_CELLS,
            outcomes
                .into_iter()
                .map(|(cell, [sum, squares])| {
                    vec![
                        Value::Text(cell.pilot),
                        Value::Text(cell.metric),
                        Value::Text(cell.variant),
                        Value::Integer(Some(cell.day)),
                        Value::Text(cell.basis),
                        Value::Text(cell.segments),
                        Value::Real(sum),
                        Value::Real(squares),
                    ]
                })
                .collect(),
        )?;
        Ok(())
    }
}

/// An aggregate table: its key columns, then the columns an upsert adds to.
struct Table {
    table: AppendTable,
    name: &'static str,
    keys: &'static [&'static str],
    values: &'static [&'static str],
}

impl Table {
    /// The keys, then the values, as a column list.
    fn columns(&self) -> String {
        self.keys
            .iter()
            .chain(self.values)
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    }
}

const ASSIGNMENT_CELLS: Table = Table {
    table: AppendTable::AssignmentCells,
    name: "assignment_cells",
    keys: &[
        "experiment_key",
        "variant",
        "day",
        "basis",
        "notice_version",
        "segments",
    ],
    values: &["assigned", "withdrawn"],
};

const WITHDRAWAL_CELLS: Table = Table {
    table: AppendTable::WithdrawalCells,
    name: "withdrawal_cells",
    keys: &["experiment_key", "variant", "day"],
    values: &["withdrawn", "objected"],
};

const OUTCOME_CELLS: Table = Table {
    table: AppendTable::OutcomeCells,
    name: "outcome_cells",
    keys: &[
        "experiment_key",
        "metric",
        "variant",
        "day",
        "basis",
        "segments",
    ],
    values: &["total", "total_squares"],
};

const SUBJECT_OUTCOMES: Table = Table {
    table: AppendTable::SubjectOutcomes,
    name: "subject_outcomes",
    keys: &["experiment_key", "subject", "metric"],
    values: &["y"],
};

/// The four tables, for deletes and comparisons.
const TABLES: [&Table; 4] = [
    &ASSIGNMENT_CELLS,
    &WITHDRAWAL_CELLS,
    &OUTCOME_CELLS,
    &SUBJECT_OUTCOMES,
];

/// Adds the multi-row upserts of `rows` (each the table's keys, then its
/// values) to `batch`.
fn upsert(
    batch: &mut AppendBatch,
    dialect: Dialect,
    table: Table,
    rows: Vec<Vec<Value>>,
) -> Result<(), StoreError> {
    let width = table.keys.len() + table.values.len();
    let columns = table.columns();
    let set = table
        .values
        .iter()
        .map(|v| format!("{v} = {}.{v} + excluded.{v}", table.name))
        .collect::<Vec<_>>()
        .join(", ");
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Value>> = rows.by_ref().take(INSERT_CHUNK).collect();
        let sql = format!(
            "INSERT INTO {} ({columns}) VALUES {} ON CONFLICT ({}) DO UPDATE SET {set}",
            table.name,
            dialect.value_rows(chunk.len(), width),
            table.keys.join(", ")
        );
        batch.push(table.table, sql, chunk.into_iter().flatten().collect())?;
    }
    Ok(())
}

/// Deletes every aggregate row of the pilot `key` (its purge).
pub(crate) fn push_forget_pilot(
    batch: &mut AppendBatch,
    dialect: Dialect,
    key: &str,
) -> Result<(), StoreError> {
    for (table, name) in TABLES
        .iter()
        .map(|t| (t.table, t.name))
        .chain([(AppendTable::OutcomeQueue, "outcome_queue")])
    {
        batch.push(
            table,
            format!(
                "DELETE FROM {name} WHERE experiment_key = {}",
                dialect.placeholders(1, 1)
            ),
            vec![Value::Text(key.to_owned())],
        )?;
    }
    Ok(())
}
