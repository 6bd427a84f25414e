//! The aggregation queries that feed the analysis and the reports: a
//! pilot's per-variant, per-day sufficient statistics, its assignment counts
//! and its eligibility breakdown. A few dozen rows leave the database, never
//! one per user.

use pilotgate_domain::experiment::{Metric, MetricKind};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::core::Core;
use crate::db::numbered;
use crate::error::{StoreError, corrupt};

/// What one assignment day of a pilot adds up to in one variant: the kept
/// (not withdrawn) subjects assigned that day and, per metric asked for, the
/// sum and the sum of squares of their per-user outcomes (converted 0/1 for
/// a binary metric, the summed event values for a sum metric).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DailySums {
    pub variant: String,
    /// The UTC day of the assignments, counted from the epoch.
    pub day: i64,
    pub users: i64,
    /// `(sum, sum of squares)` per metric, in the order the metrics were asked for.
    pub per_metric: Vec<(f64, f64)>,
}

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;

impl Core {
    /// The sufficient statistics of a pilot's metrics per variant and
    /// assignment day, aggregated in the database (as GrowthBook aggregates
    /// in the warehouse): per-user outcomes under the attribution rules of
    /// `pilotgate analyze` (events at or after the assignment, and before its
    /// end when a window is given), then their sums per variant and day.
    /// Withdrawn subjects are left out; a user without events counts as 0.
    /// The events are stored in time order, so the per-user outcomes come
    /// from one pass over the pilot's events, each looked up in the
    /// assignments by its key, grouped by subject; then every kept assignment
    /// joins its outcome. No stored event can belong to an unknown subject:
    /// events are stored only for assigned subjects, and erasure removes both.
    pub async fn daily_outcome_sums(
        &self,
        experiment_key: &str,
        metrics: &[Metric],
        window_micros: Option<i64>,
    ) -> Result<Vec<DailySums>, StoreError> {
        let rows = self
            .outcome_sums(experiment_key, metrics, window_micros, false)
            .await?;
        Ok(rows.into_iter().map(|(_, sums)| sums).collect())
    }

    /// [`Core::daily_outcome_sums`] split further by what segments are made
    /// of: the assignment's legal basis and its stored attributes. A few
    /// rows per variant, day and combination of segment values.
    pub async fn segment_outcome_sums(
        &self,
        experiment_key: &str,
        metrics: &[Metric],
        window_micros: Option<i64>,
    ) -> Result<Vec<(SegmentOf, DailySums)>, StoreError> {
        let rows = self
            .outcome_sums(experiment_key, metrics, window_micros, true)
            .await?;
        rows.into_iter()
            .map(|(of, sums)| Ok((of.ok_or_else(|| corrupt("assignments.basis"))?, sums)))
            .collect()
    }

    /// The query of both: grouped by variant and day, and by the segment
    /// columns when `by_segment`.
    async fn outcome_sums(
        &self,
        experiment_key: &str,
        metrics: &[Metric],
        window_micros: Option<i64>,
        by_segment: bool,
    ) -> Result<Vec<(Option<SegmentOf>, DailySums)>, StoreError> {
        let (segment_columns, segment_groups) = if by_segment {
            (
                ", a.basis AS basis, COALESCE(a.segments, '') AS segments",
                ", a.basis, a.segments",
            )
        } else {
            ("", "")
        };
        let per_user = metrics
            .iter()
            .enumerate()
            .map(|(i, metric)| {
                let p = i + 3;
                match metric.kind {
                    MetricKind::Binary => format!(
                        "CAST(CASE WHEN COUNT(CASE WHEN e.name = ${p} THEN 1 END) > 0 THEN 1 ELSE 0 END AS DOUBLE PRECISION) AS y{i}"
                    ),
                    MetricKind::Sum => format!(
                        "COALESCE(SUM(CASE WHEN e.name = ${p} THEN COALESCE(e.value, 0.0) ELSE 0.0 END), 0.0) AS y{i}"
                    ),
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sums = (0..metrics.len())
            .map(|i| {
                format!(
                    "SUM(COALESCE(o.y{i}, 0.0)) AS s{i}, SUM(COALESCE(o.y{i}, 0.0) * COALESCE(o.y{i}, 0.0)) AS q{i}"
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let names = numbered(3, metrics.len());
        let sql = format!(
            "SELECT a.variant AS variant, a.assigned_at / {DAY_MICROS} AS day, COUNT(*) AS users, {sums}{segment_columns} \
             FROM assignments a LEFT JOIN (\
               SELECT e.subject AS subject, {per_user} FROM events e \
               JOIN assignments b ON b.experiment_key = e.experiment_key AND b.subject = e.subject \
               WHERE e.experiment_key = $1 AND e.name IN ({names}) \
                 AND e.occurred_at >= b.assigned_at AND ($2 < 0 OR e.occurred_at < b.assigned_at + $2) \
               GROUP BY e.subject\
             ) o ON o.subject = a.subject \
             WHERE a.experiment_key = $1 AND a.withdrawn_at IS NULL \
             GROUP BY a.variant, a.assigned_at / {DAY_MICROS}{segment_groups} ORDER BY day, variant"
        );
        let mut query = sqlx::query(&sql)
            .bind(experiment_key)
            .bind(window_micros.unwrap_or(-1));
        for metric in metrics {
            query = query.bind(&metric.event);
        }
        let rows = query.fetch_all(&self.analytics).await?;
        rows.iter()
            .map(|row| {
                let per_metric = (0..metrics.len())
                    .map(|i| {
                        Ok((
                            row.try_get::<f64, _>(format!("s{i}").as_str())?,
                            row.try_get::<f64, _>(format!("q{i}").as_str())?,
                        ))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                let of = if by_segment {
                    Some(segment_of(row)?)
                } else {
                    None
                };
                let sums = DailySums {
                    variant: row.try_get("variant")?,
                    day: row.try_get("day")?,
                    users: row.try_get("users")?,
                    per_metric,
                };
                Ok((of, sums))
            })
            .collect()
    }
}

/// The `basis` and `segments` columns of a row grouped by them.
fn segment_of(row: &AnyRow) -> Result<SegmentOf, StoreError> {
    Ok(SegmentOf {
        basis: row.try_get("basis")?,
        attributes: Some(row.try_get::<String, _>("segments")?).filter(|text| !text.is_empty()),
    })
}

/// The `assigned` and `withdrawn` counts of a row.
fn assigned_and_withdrawn(row: &AnyRow) -> Result<(u64, u64), StoreError> {
    let count = |column: &str| -> Result<u64, StoreError> {
        Ok(u64::try_from(row.try_get::<i64, _>(column)?).unwrap_or(0))
    };
    Ok((count("assigned")?, count("withdrawn")?))
}

/// What a group of assignments' segment values are made of: the legal
/// basis of their proof and the attributes stored with them (see
/// `inventory::segments::Attributes::from_stored`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SegmentOf {
    pub basis: String,
    pub attributes: Option<String>,
}

/// One assignment day of one variant with a pre-period covariate: the sums
/// of the per-user outcome `y` and covariate `x` that CUPED needs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CovariateSums {
    pub variant: String,
    /// The UTC day of the assignments, counted from the epoch.
    pub day: i64,
    pub users: i64,
    pub sum: f64,
    pub sum_squares: f64,
    pub x_sum: f64,
    pub x_sum_squares: f64,
    pub xy_sum: f64,
}

impl Core {
    /// [`Core::daily_outcome_sums`] of one metric, with a CUPED covariate per
    /// subject: the same metric over the subject's events in the `lookback`
    /// before its assignment, taken from the events of the other pilots of
    /// the same `purpose` (a pilot stores no event before its own
    /// assignment, and data kept for one purpose stays with it). A subject
    /// without such events has the covariate 0, as `pilotgate analyze
    /// --covariate` counts a subject missing from the covariate file.
    pub async fn daily_covariate_sums(
        &self,
        experiment_key: &str,
        purpose: &str,
        metric: &Metric,
        window_micros: Option<i64>,
        lookback_micros: i64,
    ) -> Result<Vec<CovariateSums>, StoreError> {
        let per_user = per_user_outcome(metric.kind);
        let outcome = outcome_sql(per_user);
        let pre_period = pre_period_sql(per_user, ["$1", "$3", "$4", "$5"]);
        let sql = format!(
            "SELECT a.variant AS variant, a.assigned_at / {DAY_MICROS} AS day, COUNT(*) AS users, \
               SUM(COALESCE(o.y, 0.0)) AS s, SUM(COALESCE(o.y, 0.0) * COALESCE(o.y, 0.0)) AS q, \
               SUM(COALESCE(p.x, 0.0)) AS xs, SUM(COALESCE(p.x, 0.0) * COALESCE(p.x, 0.0)) AS xq, \
               SUM(COALESCE(o.y, 0.0) * COALESCE(p.x, 0.0)) AS xy \
             FROM assignments a LEFT JOIN ({outcome}) o ON o.subject = a.subject LEFT JOIN ({pre_period}) p ON p.subject = a.subject \
             WHERE a.experiment_key = $1 AND a.withdrawn_at IS NULL \
             GROUP BY a.variant, a.assigned_at / {DAY_MICROS} ORDER BY day, variant"
        );
        let rows = sqlx::query(&sql)
            .bind(experiment_key)
            .bind(window_micros.unwrap_or(-1))
            .bind(&metric.event)
            .bind(purpose)
            .bind(lookback_micros)
            .fetch_all(&self.analytics)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(CovariateSums {
                    variant: row.try_get("variant")?,
                    day: row.try_get("day")?,
                    users: row.try_get("users")?,
                    sum: row.try_get("s")?,
                    sum_squares: row.try_get("q")?,
                    x_sum: row.try_get("xs")?,
                    x_sum_squares: row.try_get("xq")?,
                    xy_sum: row.try_get("xy")?,
                })
            })
            .collect()
    }
}

/// The per-user outcome of a metric over the events `e` of one subject:
/// converted (0/1) for a binary metric, the summed values for a sum metric.
fn per_user_outcome(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Binary => "CAST(CASE WHEN COUNT(*) > 0 THEN 1 ELSE 0 END AS DOUBLE PRECISION)",
        MetricKind::Sum => "COALESCE(SUM(COALESCE(e.value, 0.0)), 0.0)",
    }
}

/// The outcome `y` per subject of pilot `$1` with events of metric `$3`
/// under the attribution rules (at or after the assignment, and before its
/// end when the window `$2` is not negative).
fn outcome_sql(per_user: &str) -> String {
    format!(
        "SELECT e.subject AS subject, {per_user} AS y FROM events e \
         JOIN assignments b ON b.experiment_key = e.experiment_key AND b.subject = e.subject \
         WHERE e.experiment_key = $1 AND e.name = $3 \
           AND e.occurred_at >= b.assigned_at AND ($2 < 0 OR e.occurred_at < b.assigned_at + $2) \
         GROUP BY e.subject"
    )
}

/// The CUPED covariate `x` per subject of a pilot that has any: the metric
/// over its events in the other pilots of the purpose in the lookback before
/// its assignment. `[pilot, event, purpose, lookback]` are the placeholders
/// of those parameters. The service's CUPED and the export's covariate file
/// both use this one definition.
fn pre_period_sql(per_user: &str, [key, event, purpose, lookback]: [&str; 4]) -> String {
    format!(
        "SELECT b.subject AS subject, {per_user} AS x FROM assignments b \
         JOIN experiments x ON x.purpose = {purpose} AND x.key <> {key} \
         JOIN events e ON e.experiment_key = x.key AND e.subject = b.subject \
         WHERE b.experiment_key = {key} AND e.name = {event} \
           AND e.occurred_at < b.assigned_at AND e.occurred_at >= b.assigned_at - {lookback} \
         GROUP BY b.subject"
    )
}

impl Core {
    /// The CUPED covariate of every kept subject of a pilot that has a
    /// nonzero one (the others have 0), `(subject, x)`, for the export's
    /// covariate file: the same definition as [`Core::daily_covariate_sums`].
    pub async fn subject_covariates(
        &self,
        experiment_key: &str,
        purpose: &str,
        metric: &Metric,
        lookback_micros: i64,
    ) -> Result<Vec<(String, f64)>, StoreError> {
        let sql = format!(
            "SELECT p.subject, p.x FROM ({}) p JOIN assignments a \
             ON a.experiment_key = $1 AND a.subject = p.subject \
             WHERE a.withdrawn_at IS NULL ORDER BY p.subject",
            pre_period_sql(per_user_outcome(metric.kind), ["$1", "$2", "$3", "$4"])
        );
        Ok(sqlx::query_as(&sql)
            .bind(experiment_key)
            .bind(&metric.event)
            .bind(purpose)
            .bind(lookback_micros)
            .fetch_all(&self.analytics)
            .await?)
    }
}

impl Core {
    /// Per variant: `(variant, assigned, withdrawn)`.
    pub async fn assignment_counts(
        &self,
        experiment_key: &str,
    ) -> Result<Vec<(String, u64, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT variant, COUNT(*) AS assigned, COUNT(withdrawn_at) AS withdrawn FROM assignments \
             WHERE experiment_key = $1 GROUP BY variant ORDER BY variant",
        )
        .bind(experiment_key)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let (assigned, withdrawn) = assigned_and_withdrawn(row)?;
                Ok((row.try_get("variant")?, assigned, withdrawn))
            })
            .collect()
    }

    /// [`Core::assignment_counts`] per segment make-up: `(of, variant,
    /// assigned, withdrawn)`.
    pub async fn segment_assignment_counts(
        &self,
        experiment_key: &str,
    ) -> Result<Vec<(SegmentOf, String, u64, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT basis, COALESCE(segments, '') AS segments, variant, COUNT(*) AS assigned, \
             COUNT(withdrawn_at) AS withdrawn FROM assignments \
             WHERE experiment_key = $1 GROUP BY basis, segments, variant ORDER BY variant",
        )
        .bind(experiment_key)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let (assigned, withdrawn) = assigned_and_withdrawn(row)?;
                Ok((
                    segment_of(row)?,
                    row.try_get("variant")?,
                    assigned,
                    withdrawn,
                ))
            })
            .collect()
    }

    /// Per pilot of `keys`: how many subjects it assigned, and how many of those withdrew.
    pub async fn assignment_totals(
        &self,
        keys: &[String],
    ) -> Result<std::collections::HashMap<String, (u64, u64)>, StoreError> {
        let mut totals = std::collections::HashMap::new();
        for chunk in keys.chunks(100) {
            let sql = format!(
                "SELECT experiment_key, COUNT(*) AS assigned, COUNT(withdrawn_at) AS withdrawn FROM assignments \
                 WHERE experiment_key IN ({}) GROUP BY experiment_key",
                numbered(1, chunk.len())
            );
            let mut query = sqlx::query_as::<_, (String, i64, i64)>(&sql);
            for key in chunk {
                query = query.bind(key);
            }
            for (key, assigned, withdrawn) in query.fetch_all(&self.reader).await? {
                totals.insert(
                    key,
                    (
                        u64::try_from(assigned).unwrap_or(0),
                        u64::try_from(withdrawn).unwrap_or(0),
                    ),
                );
            }
        }
        Ok(totals)
    }

    /// The eligibility report of a pilot: per variant, legal basis and notice
    /// version, how many subjects hold an assignment.
    pub async fn eligibility_breakdown(
        &self,
        experiment_key: &str,
    ) -> Result<Vec<(String, String, Option<i64>, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT variant, basis, notice_version, COUNT(*) AS subjects FROM assignments \
             WHERE experiment_key = $1 GROUP BY variant, basis, notice_version \
             ORDER BY variant, basis, notice_version",
        )
        .bind(experiment_key)
        .fetch_all(&self.reader)
        .await?)
    }
}

/// One day of one variant's attrition: the subjects assigned that day (with
/// the erased ones counted on the day of their erasure, their assignment
/// being gone) and those lost that day, by cause.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttritionDay {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub variant: String,
    pub assigned: u64,
    pub withdrawn: u64,
    pub objected: u64,
    pub erased: u64,
}

fn count_of(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn day_text(day: i64) -> String {
    pilotgate_domain::time::from_micros(day * DAY_MICROS)
        .format("%Y-%m-%d")
        .to_string()
}

impl Core {
    /// A pilot's attrition per day and variant: assignments on their day,
    /// withdrawals (and denials) and objections on the day they took
    /// effect, erasures on the day they were executed.
    pub async fn attrition_by_day(
        &self,
        experiment_key: &str,
    ) -> Result<Vec<AttritionDay>, StoreError> {
        let mut days: std::collections::BTreeMap<(String, String), AttritionDay> =
            std::collections::BTreeMap::new();
        fn at(
            days: &mut std::collections::BTreeMap<(String, String), AttritionDay>,
            day: String,
            variant: String,
        ) -> &mut AttritionDay {
            days.entry((day.clone(), variant.clone()))
                .or_insert_with(|| AttritionDay {
                    day,
                    variant,
                    ..AttritionDay::default()
                })
        }
        let assigned: Vec<(String, i64, i64)> = sqlx::query_as(&format!(
            "SELECT variant, assigned_at / {DAY_MICROS} AS day, COUNT(*) FROM assignments \
             WHERE experiment_key = $1 GROUP BY variant, assigned_at / {DAY_MICROS}"
        ))
        .bind(experiment_key)
        .fetch_all(&self.reader)
        .await?;
        for (variant, day, n) in assigned {
            at(&mut days, day_text(day), variant).assigned += count_of(n);
        }
        let lost: Vec<(String, i64, i64, i64)> = sqlx::query_as(&format!(
            "SELECT variant, withdrawn_at / {DAY_MICROS} AS day, \
               COUNT(CASE WHEN withdrawn_as = 'objected' THEN NULL ELSE 1 END), \
               COUNT(CASE WHEN withdrawn_as = 'objected' THEN 1 END) \
             FROM assignments WHERE experiment_key = $1 AND withdrawn_at IS NOT NULL \
             GROUP BY variant, withdrawn_at / {DAY_MICROS}"
        ))
        .bind(experiment_key)
        .fetch_all(&self.reader)
        .await?;
        for (variant, day, withdrawn, objected) in lost {
            let entry = at(&mut days, day_text(day), variant);
            entry.withdrawn += count_of(withdrawn);
            entry.objected += count_of(objected);
        }
        let erased: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT variant, day, erased FROM erasure_counters WHERE experiment_key = $1",
        )
        .bind(experiment_key)
        .fetch_all(&self.reader)
        .await?;
        for (variant, day, n) in erased {
            let entry = at(&mut days, day, variant);
            entry.erased += count_of(n);
            entry.assigned += count_of(n);
        }
        Ok(days.into_values().collect())
    }

    /// The distribution of one metric's per-user outcome over the kept
    /// subjects of each variant: `(variant, value, subjects)`, one row per
    /// distinct value (two for a binary metric), for the Lee bounds.
    pub async fn outcome_distribution(
        &self,
        experiment_key: &str,
        metric: &Metric,
        window_micros: Option<i64>,
    ) -> Result<Vec<(String, f64, u64)>, StoreError> {
        let outcome = outcome_sql(per_user_outcome(metric.kind));
        let sql = format!(
            "SELECT a.variant AS variant, COALESCE(o.y, 0.0) AS y, COUNT(*) AS subjects \
             FROM assignments a LEFT JOIN ({outcome}) o ON o.subject = a.subject \
             WHERE a.experiment_key = $1 AND a.withdrawn_at IS NULL \
             GROUP BY a.variant, COALESCE(o.y, 0.0) ORDER BY variant, y"
        );
        let rows: Vec<(String, f64, i64)> = sqlx::query_as(&sql)
            .bind(experiment_key)
            .bind(window_micros.unwrap_or(-1))
            .bind(&metric.event)
            .fetch_all(&self.analytics)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(variant, y, n)| (variant, y, count_of(n)))
            .collect())
    }
}
