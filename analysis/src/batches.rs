//! Input files that are not all CSV (Parquet above all) in bounded memory:
//! Polars' streaming engine reads each file and hands its rows batch by
//! batch to the per-subject tally ([`crate::tally`]), so that no frame of
//! every assignment or event is ever built. One hundred million events and
//! ten million subjects fit in well under 2 GiB.
//!
//! Like the byte-level CSV reader it never reports bad input: a batch with a
//! missing or unreadable value stops it, and the Polars pipeline reads the
//! files again to name the file, row and column.

use std::sync::{Arc, Mutex, PoisonError};

use polars::prelude::*;

use crate::input::InputFile;
use crate::pipeline::{Aggregates, PipelineSpec};
use crate::tally::{self, AssignmentTable, Attribution, CovariateTally, EventTally};

/// The analysis of `spec`, read from the opened files batch by batch;
/// `None` when a value is missing or unreadable (or Polars fails).
pub fn aggregate_in_batches(
    spec: &PipelineSpec<'_>,
    assignments: &InputFile,
    events: &InputFile,
    covariate: Option<&InputFile>,
) -> Option<Aggregates> {
    let table = Arc::new(read_assignments(assignments)?);
    let counted = count_events(events, spec, &table)?;
    let covariate = match covariate {
        Some(file) => Some(read_covariate(file, &table)?),
        None => None,
    };
    Some(tally::aggregates(&table, &counted, covariate.as_ref()))
}

fn read_assignments(file: &InputFile) -> Option<AssignmentTable> {
    let mut scan = file
        .scan_columns(&["subject", "variant", "assigned_at"])
        .ok()?;
    let schema = scan.collect_schema().ok()?;
    // Room for every row (Parquet keeps the count in its footer), so that
    // the table is not grown and copied; names taken as 16 bytes at most.
    let count = scan
        .clone()
        .select([len().alias("rows")])
        .collect()
        .ok()?
        .column("rows")
        .ok()?
        .get(0)
        .ok()?
        .extract::<usize>()?;
    let rows = scan.select([
        col("subject").cast(DataType::String),
        col("variant").cast(DataType::String),
        file.time_expr(&schema, "assigned_at"),
    ]);
    let table = AssignmentTable::with_capacity(count, count * 16);
    for_each_batch(rows, table, |table, batch| {
        let subjects = batch.column("subject").ok()?.str().ok()?;
        let variants = batch.column("variant").ok()?.str().ok()?;
        let times = batch
            .column("assigned_at")
            .ok()?
            .datetime()
            .ok()?
            .physical();
        if subjects.has_nulls() || variants.has_nulls() || times.has_nulls() {
            return None;
        }
        let rows = subjects.no_null_iter().zip(variants.no_null_iter());
        let rows: Vec<(&[u8], &str, i64)> = rows
            .zip(times.no_null_iter())
            .map(|((subject, variant), time)| (subject.as_bytes(), variant, time))
            .collect();
        table.add_all(&rows);
        Some(())
    })
}

fn count_events(
    file: &InputFile,
    spec: &PipelineSpec<'_>,
    table: &Arc<AssignmentTable>,
) -> Option<EventTally> {
    let mut scan = file
        .scan_columns(&["subject", "event", "value", "occurred_at"])
        .ok()?;
    let schema = scan.collect_schema().ok()?;
    let rows = scan
        .filter(col("event").cast(DataType::String).eq(lit(spec.metric)))
        .select([
            col("subject").cast(DataType::String),
            col("value").is_null().alias("no_value"),
            file.number_expr(&schema, "value"),
            file.time_expr(&schema, "occurred_at"),
        ]);
    let rule = Attribution::new(spec.window_hours);
    let state = (Arc::clone(table), EventTally::new(table, spec.outcome));
    let (_, counted) = for_each_batch(rows, state, move |(table, counted), batch| {
        let subjects = batch.column("subject").ok()?.str().ok()?;
        let values = readable_numbers(batch, "no_value", "value")?;
        let times = batch
            .column("occurred_at")
            .ok()?
            .datetime()
            .ok()?
            .physical();
        if subjects.has_nulls() || times.has_nulls() {
            return None;
        }
        let rows = subjects.no_null_iter().zip(values.iter());
        let events = rows
            .zip(times.no_null_iter())
            .map(|((subject, value), time)| (subject.as_bytes(), value.unwrap_or(0.0), time));
        counted.add_all(table, rule, events);
        Some(())
    })?;
    Some(counted)
}

fn read_covariate(file: &InputFile, table: &Arc<AssignmentTable>) -> Option<CovariateTally> {
    let mut scan = file.scan_columns(&["subject", "value"]).ok()?;
    let schema = scan.collect_schema().ok()?;
    let rows = scan.select([
        col("subject").cast(DataType::String),
        col("value").is_null().alias("no_value"),
        file.number_expr(&schema, "value"),
    ]);
    let state = (Arc::clone(table), CovariateTally::new(table));
    let (_, covariate) = for_each_batch(rows, state, |(table, covariate), batch| {
        let subjects = batch.column("subject").ok()?.str().ok()?;
        let values = readable_numbers(batch, "no_value", "value")?;
        if subjects.has_nulls() {
            return None;
        }
        for (subject, value) in subjects.no_null_iter().zip(values.iter()) {
            covariate.add(table, subject.as_bytes(), value.unwrap_or(0.0));
        }
        Some(())
    })?;
    Some(covariate)
}

/// Column `parsed` of `batch`, when it is missing only where the stored
/// value (flagged missing in column `missing`) was.
fn readable_numbers<'a>(
    batch: &'a DataFrame,
    missing: &str,
    parsed: &str,
) -> Option<&'a Float64Chunked> {
    let values = batch.column(parsed).ok()?.f64().ok()?;
    let missing = batch.column(missing).ok()?.bool().ok()?;
    (values.null_count() == missing.num_trues()).then_some(values)
}

/// Runs `rows` on the streaming engine and folds its batches into `state`
/// with `each`; `None` when `each` gives up on a batch or Polars fails.
fn for_each_batch<S: Send + 'static>(
    rows: LazyFrame,
    state: S,
    each: impl Fn(&mut S, &DataFrame) -> Option<()> + Send + Sync + 'static,
) -> Option<S> {
    // `None` once a batch was given up on.
    let shared = Arc::new(Mutex::new(Some(state)));
    let inner = Arc::clone(&shared);
    let sink = rows
        .sink_batches(
            PlanCallback::new(move |batch: DataFrame| {
                let mut state = inner.lock().unwrap_or_else(PoisonError::into_inner);
                let kept = state.as_mut().and_then(|s| each(s, &batch)).is_some();
                if !kept {
                    *state = None;
                }
                // `true` stops the query.
                Ok(!kept)
            }),
            false,
            None,
        )
        .ok()?;
    sink.collect_with_engine(Engine::Streaming).ok()?;
    shared.lock().unwrap_or_else(PoisonError::into_inner).take()
}
