//! The lazy Polars pipeline of `pilotgate analyze`: assignments and events
//! (and an optional pre-period covariate) to per-user outcomes, to per-variant
//! sufficient statistics. Attribution follows ANALYZE.md: only events named
//! by the metric, of assigned subjects, at or after the assignment (and
//! before the end of the window) count.

use std::path::Path;

use polars::prelude::*;

use crate::export::FileFormat;
use crate::input::{InputError, InputFile, ROW};

/// How a metric turns a subject's events into one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// 1 when the subject has at least one event, else 0.
    Binary,
    /// The sum of the events' values (0 when none).
    Sum,
}

impl Outcome {
    /// `binary` or `sum`, as reports name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Binary => "binary",
            Outcome::Sum => "sum",
        }
    }
}

/// What to aggregate.
#[derive(Debug, Clone)]
pub struct PipelineSpec<'a> {
    pub assignments: &'a Path,
    pub events: &'a Path,
    pub covariate: Option<&'a Path>,
    pub metric: &'a str,
    pub outcome: Outcome,
    /// Attribution window in hours after the assignment; none means no end.
    pub window_hours: Option<f64>,
}

/// Sufficient statistics of one variant: outcome `y`, covariate `x`.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantSums {
    pub variant: String,
    pub users: u64,
    pub sum: f64,
    pub sum_squares: f64,
    pub x_sum: f64,
    pub x_sum_squares: f64,
    pub xy_sum: f64,
}

impl VariantSums {
    /// A variant without users yet.
    pub fn empty(variant: &str) -> VariantSums {
        VariantSums::plain(variant, 0, 0.0, 0.0)
    }

    /// Sums of an outcome without a covariate.
    pub fn plain(variant: &str, users: u64, sum: f64, sum_squares: f64) -> VariantSums {
        VariantSums {
            variant: variant.to_owned(),
            users,
            sum,
            sum_squares,
            x_sum: 0.0,
            x_sum_squares: 0.0,
            xy_sum: 0.0,
        }
    }
}

/// The per-variant statistics and what was left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregates {
    pub variants: Vec<VariantSums>,
    /// Events of the metric whose subject is not in the assignments.
    pub unknown_subject_events: u64,
    /// Subjects assigned to more than one variant, left out.
    pub multiple_variant_subjects: u64,
}

/// Runs the pipeline. Errors name the file, row and column of bad input.
/// CSV files go through the byte-level reader ([`crate::csv_scan`]); files
/// it does not judge, and other formats, through Polars' streaming engine
/// batch by batch ([`crate::batches`]); files both give up on (bad input
/// among them) through the Polars pipeline, which names what is wrong.
pub fn aggregate(spec: &PipelineSpec<'_>) -> Result<Aggregates, InputError> {
    let files = InputFiles::open(spec)?;
    let read = files
        .all_csv()
        .then(|| crate::csv_scan::aggregate_csv(spec))
        .flatten()
        .or_else(|| {
            crate::batches::aggregate_in_batches(
                spec,
                &files.assignments,
                &files.events,
                files.covariate.as_ref(),
            )
        });
    match read {
        Some(aggregates) => Ok(aggregates),
        None => files.aggregate_with_polars(spec),
    }
}

/// Runs the Polars pipeline whatever the files' format: the reference that
/// the byte-level CSV reader is checked against.
pub fn aggregate_with_polars(spec: &PipelineSpec<'_>) -> Result<Aggregates, InputError> {
    InputFiles::open(spec)?.aggregate_with_polars(spec)
}

/// The input files of one analysis, each there and readable as its extension says.
struct InputFiles {
    assignments: InputFile,
    events: InputFile,
    covariate: Option<InputFile>,
}

impl InputFiles {
    fn open(spec: &PipelineSpec<'_>) -> Result<InputFiles, InputError> {
        Ok(InputFiles {
            assignments: InputFile::open(spec.assignments)?,
            events: InputFile::open(spec.events)?,
            covariate: spec.covariate.map(InputFile::open).transpose()?,
        })
    }

    fn all_csv(&self) -> bool {
        [
            Some(&self.assignments),
            Some(&self.events),
            self.covariate.as_ref(),
        ]
        .into_iter()
        .flatten()
        .all(|file| file.format == FileFormat::Csv)
    }

    fn aggregate_with_polars(&self, spec: &PipelineSpec<'_>) -> Result<Aggregates, InputError> {
        let assignments = load_assignments(&self.assignments)?;
        let events = load_events(&self.events, spec.metric)?;
        let covariate = self.covariate.as_ref().map(load_covariate).transpose()?;
        aggregate_frames(
            assignments,
            events,
            covariate,
            spec.outcome,
            spec.window_hours,
        )
        .map_err(|e| InputError::File {
            file: self.assignments.path.display().to_string(),
            message: format!(
                "the analysis failed: {}",
                e.to_string().lines().next().unwrap_or_default()
            ),
        })
    }
}

/// Frames already loaded: assignments `subject, variant, assigned_at`, the
/// metric's events `subject, value, occurred_at` (times as UTC datetimes) and
/// an optional covariate `subject, x`.
pub fn aggregate_frames(
    assignments: DataFrame,
    events: DataFrame,
    covariate: Option<DataFrame>,
    outcome: Outcome,
    window_hours: Option<f64>,
) -> PolarsResult<Aggregates> {
    // One row per subject; a subject seen with two variants is left out and counted.
    let per_subject = assignments
        .clone()
        .lazy()
        .group_by([col("subject")])
        // Two variants differ in their smallest and largest name: cheaper
        // than counting distinct names per subject.
        .agg([
            col("variant").min().alias("variant"),
            col("variant").max().alias("last_variant"),
            col("assigned_at").min(),
        ])
        .with_column(col("variant").neq(col("last_variant")).alias("several"))
        .collect_streaming()?;
    let multiple_variant_subjects = per_subject
        .column("several")?
        .as_materialized_series()
        .sum::<u64>()
        .unwrap_or(0);
    let known_subjects = per_subject
        .clone()
        .lazy()
        .select([col("subject").alias("known"), lit(true).alias("is_known")]);
    let valid = per_subject.lazy().filter(col("several").not()).select([
        col("subject"),
        col("variant"),
        col("assigned_at"),
    ]);

    let unknown_subject_events = events
        .clone()
        .lazy()
        .join(
            known_subjects,
            [col("subject")],
            [col("known")],
            JoinArgs::new(JoinType::Left),
        )
        .filter(col("is_known").is_null())
        .select([len().alias("n")])
        .collect_streaming()?
        .column("n")?
        .get(0)
        .ok()
        .and_then(|v| v.extract::<u64>())
        .unwrap_or(0);

    let mut attributed = events
        .lazy()
        .inner_join(valid.clone(), col("subject"), col("subject"))
        .filter(col("occurred_at").gt_eq(col("assigned_at")));
    if let Some(hours) = window_hours {
        let window_micros = (hours * 3_600_000_000.0).round() as i64;
        attributed = attributed.filter(
            col("occurred_at")
                .cast(DataType::Int64)
                .lt(col("assigned_at").cast(DataType::Int64) + lit(window_micros)),
        );
    }
    let per_user = attributed.group_by([col("subject")]).agg([
        len().alias("events"),
        col("value").fill_null(lit(0.0)).sum().alias("total"),
    ]);
    let y = match outcome {
        Outcome::Binary => when(col("events").is_not_null())
            .then(lit(1.0))
            .otherwise(lit(0.0)),
        Outcome::Sum => col("total").fill_null(lit(0.0)),
    };
    let mut outcomes = valid
        .left_join(per_user, col("subject"), col("subject"))
        .with_column(y.alias("y"));
    outcomes = match covariate {
        Some(covariate) => outcomes
            .left_join(covariate.lazy(), col("subject"), col("subject"))
            .with_column(col("x").fill_null(lit(0.0))),
        None => outcomes.with_column(lit(0.0).alias("x")),
    };
    let sums = outcomes
        .group_by([col("variant")])
        .agg([
            len().alias("users"),
            col("y").sum().alias("sum"),
            (col("y") * col("y")).sum().alias("sum_squares"),
            col("x").sum().alias("x_sum"),
            (col("x") * col("x")).sum().alias("x_sum_squares"),
            (col("x") * col("y")).sum().alias("xy_sum"),
        ])
        .sort(["variant"], SortMultipleOptions::default())
        .collect_streaming()?;
    let variants = variant_sums(&sums);
    Ok(Aggregates {
        variants,
        unknown_subject_events,
        multiple_variant_subjects,
    })
}

/// Per-variant sums of each assignment day (days since the epoch), as a
/// database aggregates them, *cumulated by day*: for each day on which
/// someone was assigned, oldest first, the sums over every user assigned on
/// or before it (GrowthBook's cumulative date results). Every variant seen
/// anywhere is present on every day, with 0 users before its first.
pub fn cumulate_by_day(mut daily: Vec<(i64, VariantSums)>) -> Vec<(i64, Vec<VariantSums>)> {
    daily.sort_by(|(a, x), (b, y)| (a, &x.variant).cmp(&(b, &y.variant)));
    let mut running: Vec<VariantSums> = Vec::new();
    for (_, sums) in &daily {
        if !running.iter().any(|r| r.variant == sums.variant) {
            running.push(VariantSums::empty(&sums.variant));
        }
    }
    running.sort_by(|a, b| a.variant.cmp(&b.variant));
    let mut out: Vec<(i64, Vec<VariantSums>)> = Vec::new();
    for (day, sums) in daily {
        if let Some(total) = running.iter_mut().find(|r| r.variant == sums.variant) {
            total.users += sums.users;
            total.sum += sums.sum;
            total.sum_squares += sums.sum_squares;
            total.x_sum += sums.x_sum;
            total.x_sum_squares += sums.x_sum_squares;
            total.xy_sum += sums.xy_sum;
        }
        match out.last_mut() {
            Some((last, totals)) if *last == day => totals.clone_from(&running),
            _ => out.push((day, running.clone())),
        }
    }
    out
}

/// Reads the per-variant sums frame; covariate columns that are absent count as 0.
fn variant_sums(sums: &DataFrame) -> Vec<VariantSums> {
    (0..sums.height())
        .map(|i| {
            let cell = |name: &str| sums.column(name).ok().and_then(|c| c.get(i).ok());
            let number = |name: &str| cell(name).and_then(|v| v.extract::<f64>()).unwrap_or(0.0);
            VariantSums {
                variant: cell("variant")
                    .map(|v| v.str_value().to_string())
                    .unwrap_or_default(),
                users: number("users") as u64,
                sum: number("sum"),
                sum_squares: number("sum_squares"),
                x_sum: number("x_sum"),
                x_sum_squares: number("x_sum_squares"),
                xy_sum: number("xy_sum"),
            }
        })
        .collect()
}

/// Collecting with Polars' streaming engine: it reads the files in morsels,
/// so filters apply while reading and memory stays small.
trait CollectStreaming {
    fn collect_streaming(self) -> PolarsResult<DataFrame>;
}

impl CollectStreaming for LazyFrame {
    fn collect_streaming(self) -> PolarsResult<DataFrame> {
        // A plain query has one sink, so the result is a single frame.
        self.collect_with_engine(Engine::Streaming)
            .map(|result| result.unwrap_single())
    }
}

fn collect_checked(file: &InputFile, frame: LazyFrame) -> Result<DataFrame, InputError> {
    frame.collect_streaming().map_err(|e| InputError::File {
        file: file.path.display().to_string(),
        message: format!(
            "cannot read the file: {}",
            e.to_string().lines().next().unwrap_or_default()
        ),
    })
}

const TIME_HINT: &str = "not an RFC 3339 time such as 2026-01-08T20:50:59Z";

/// Collects `plan(false)`, checks it with `check`, and when the check fails
/// collects `plan(true)` (with a row index, which stops filters from reaching
/// the reader) only to name the row.
fn load_checked(
    file: &InputFile,
    plan: impl Fn(bool) -> LazyFrame,
    check: impl Fn(&DataFrame) -> Result<(), InputError>,
) -> Result<DataFrame, InputError> {
    let frame = collect_checked(file, plan(false))?;
    if check(&frame).is_ok() {
        return Ok(frame);
    }
    let located = collect_checked(file, plan(true))?;
    check(&located)?;
    Ok(frame)
}

fn indexed(frame: LazyFrame, with_row: bool) -> LazyFrame {
    if with_row {
        frame.with_row_index(ROW, None)
    } else {
        frame.with_column(lit(0u32).alias(ROW))
    }
}

fn load_assignments(file: &InputFile) -> Result<DataFrame, InputError> {
    let mut scan = file.scan_columns(&["subject", "variant", "assigned_at"])?;
    let schema = scan.collect_schema().map_err(|e| InputError::File {
        file: file.path.display().to_string(),
        message: e.to_string(),
    })?;
    let plan = |with_row: bool| {
        indexed(scan.clone(), with_row).select([
            col(ROW),
            col("subject").cast(DataType::String),
            col("variant").cast(DataType::String),
            col("assigned_at").alias("assigned_at_raw"),
            file.time_expr(&schema, "assigned_at").alias("assigned_at"),
        ])
    };
    let frame = load_checked(file, plan, |frame| {
        file.check_present(frame, "subject")?;
        file.check_present(frame, "variant")?;
        file.check_present(frame, "assigned_at_raw")
            .map_err(|e| rename_column(e, "assigned_at"))?;
        file.check_parsed(frame, "assigned_at_raw", "assigned_at", TIME_HINT)
            .map_err(|e| rename_column(e, "assigned_at"))
    })?;
    Ok(frame
        .select(["subject", "variant", "assigned_at"])
        .expect("selected columns exist"))
}

fn load_events(file: &InputFile, metric: &str) -> Result<DataFrame, InputError> {
    let required = ["subject", "event", "value", "occurred_at"];
    let (mut scan, numbered) = file.scan_rows_where(&required, "event", metric)?;
    let schema = scan.collect_schema().map_err(|e| InputError::File {
        file: file.path.display().to_string(),
        message: e.to_string(),
    })?;
    let plan = |with_row: bool| {
        let rows = if numbered {
            scan.clone()
        } else {
            indexed(scan.clone(), with_row)
        };
        rows.filter(col("event").cast(DataType::String).eq(lit(metric)))
            .select([
                col(ROW),
                col("subject").cast(DataType::String),
                col("value").alias("value_raw"),
                file.number_expr(&schema, "value").alias("value"),
                col("occurred_at").alias("occurred_at_raw"),
                file.time_expr(&schema, "occurred_at").alias("occurred_at"),
            ])
    };
    let frame = load_checked(file, plan, |frame| {
        file.check_present(frame, "subject")?;
        file.check_parsed(frame, "value_raw", "value", "not a number")
            .map_err(|e| rename_column(e, "value"))?;
        file.check_present(frame, "occurred_at_raw")
            .map_err(|e| rename_column(e, "occurred_at"))?;
        file.check_parsed(frame, "occurred_at_raw", "occurred_at", TIME_HINT)
            .map_err(|e| rename_column(e, "occurred_at"))
    })?;
    Ok(frame
        .select(["subject", "value", "occurred_at"])
        .expect("selected columns exist"))
}

fn load_covariate(file: &InputFile) -> Result<DataFrame, InputError> {
    let mut scan = file.scan_columns(&["subject", "value"])?;
    let schema = scan.collect_schema().map_err(|e| InputError::File {
        file: file.path.display().to_string(),
        message: e.to_string(),
    })?;
    let plan = |with_row: bool| {
        indexed(scan.clone(), with_row).select([
            col(ROW),
            col("subject").cast(DataType::String),
            col("value").alias("value_raw"),
            file.number_expr(&schema, "value").alias("x"),
        ])
    };
    let frame = load_checked(file, plan, |frame| {
        file.check_present(frame, "subject")?;
        file.check_parsed(frame, "value_raw", "x", "not a number")
            .map_err(|e| rename_column(e, "value"))
    })?;
    let summed = frame
        .lazy()
        .group_by([col("subject")])
        .agg([col("x").fill_null(lit(0.0)).sum()])
        .collect_streaming()
        .map_err(|e| InputError::File {
            file: file.path.display().to_string(),
            message: e.to_string(),
        })?;
    Ok(summed)
}

fn rename_column(error: InputError, column: &str) -> InputError {
    match error {
        InputError::Value {
            file, row, message, ..
        } => InputError::Value {
            file,
            row,
            column: column.to_owned(),
            message,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn case(name: &str) -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/cases")).join(name)
    }

    fn expected(name: &str) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(case(name).join("expected.json")).unwrap())
            .unwrap()
    }

    fn run(name: &str, outcome: Outcome) -> Aggregates {
        let dir = case(name);
        aggregate(&PipelineSpec {
            assignments: &dir.join("assignments.csv"),
            events: &dir.join("events.csv"),
            covariate: Some(&dir.join("covariate.csv")),
            metric: "purchase",
            outcome,
            window_hours: None,
        })
        .unwrap()
    }

    #[test]
    fn per_variant_users_and_means_match_every_reference_case() {
        for name in ["two-arms", "three-arms", "srm"] {
            let expected = expected(name);
            for (kind, outcome) in [("binary", Outcome::Binary), ("sum", Outcome::Sum)] {
                let got = run(name, outcome);
                let variants = &expected[format!("{kind}/frequentist")]["variants"];
                assert_eq!(
                    got.variants.len(),
                    variants.as_object().unwrap().len(),
                    "{name}"
                );
                for v in &got.variants {
                    let e = &variants[&v.variant];
                    assert_eq!(
                        v.users,
                        e["users"].as_u64().unwrap(),
                        "{name} {kind} {}",
                        v.variant
                    );
                    let mean = v.sum / v.users as f64;
                    let want = e["mean"].as_f64().unwrap();
                    assert!(
                        ((mean - want) / want).abs() < 1e-9,
                        "{name} {kind} {}: {mean} vs {want}",
                        v.variant
                    );
                }
                assert!(
                    got.unknown_subject_events > 0,
                    "the cases hold events of unknown subjects"
                );
                assert_eq!(got.multiple_variant_subjects, 0);
            }
        }
    }

    #[test]
    fn a_subject_in_two_variants_is_left_out_and_counted_and_a_repeat_row_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let assignments = dir.path().join("assignments.csv");
        let events = dir.path().join("events.csv");
        std::fs::write(
            &assignments,
            "subject,variant,assigned_at\n\
             s1,control,2026-01-01T00:00:00Z\n\
             s2,control,2026-01-01T00:00:00Z\n\
             s2,v1,2026-01-02T00:00:00Z\n\
             s3,v1,2026-01-03T00:00:00Z\n\
             s3,v1,2026-01-01T00:00:00Z\n\
             s4,v1,2026-01-01T00:00:00Z\n",
        )
        .unwrap();
        // s3's event counts from its earliest assignment; s2's is not counted.
        std::fs::write(
            &events,
            "subject,event,value,occurred_at\n\
             s2,purchase,1,2026-01-05T00:00:00Z\n\
             s3,purchase,1,2026-01-02T00:00:00Z\n",
        )
        .unwrap();
        let got = aggregate(&PipelineSpec {
            assignments: &assignments,
            events: &events,
            covariate: None,
            metric: "purchase",
            outcome: Outcome::Binary,
            window_hours: None,
        })
        .unwrap();
        assert_eq!(got.multiple_variant_subjects, 1);
        let users: Vec<(&str, u64, f64)> = got
            .variants
            .iter()
            .map(|v| (v.variant.as_str(), v.users, v.sum))
            .collect();
        assert_eq!(users, [("control", 1, 0.0), ("v1", 2, 1.0)]);
    }
}
