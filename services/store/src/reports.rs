//! The aggregation queries that feed the analysis and the reports: a
//! pilot's per-variant, per-day sufficient statistics, its assignment counts
//! and its eligibility breakdown. A few dozen rows leave the database, never
//! one per user.

use pilotgate_domain::experiment::{Metric, MetricKind};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::aggregates::metric_key;
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
    /// assignment day, as GrowthBook aggregates them in the warehouse: the
    /// kept (not withdrawn) subjects and the sums of their per-user outcomes
    /// under the attribution rules of `pilotgate analyze` (events at or
    /// after the assignment, and before its end when the design has a
    /// window; a user without events counts as 0). Read from the maintained
    /// aggregates (`aggregates.rs`): a few rows per variant and day, however
    /// many events the pilot has.
    pub async fn daily_outcome_sums(
        &self,
        experiment_key: &str,
        metrics: &[Metric],
    ) -> Result<Vec<DailySums>, StoreError> {
        let rows = self.outcome_sums(experiment_key, metrics, false).await?;
        Ok(rows.into_iter().map(|(_, sums)| sums).collect())
    }

    /// [`Core::daily_outcome_sums`] split further by what segments are made
    /// of: the assignment's legal basis and its stored attributes. A few
    /// rows per variant, day and combination of segment values.
    pub async fn segment_outcome_sums(
        &self,
        experiment_key: &str,
        metrics: &[Metric],
    ) -> Result<Vec<(SegmentOf, DailySums)>, StoreError> {
        let rows = self.outcome_sums(experiment_key, metrics, true).await?;
        rows.into_iter()
            .map(|(of, sums)| Ok((of.ok_or_else(|| corrupt("assignment_cells.basis"))?, sums)))
            .collect()
    }

    /// The read of both: the kept subjects per variant and day (and segment
    /// make-up when `by_segment`) from `assignment_cells`, and their sums per
    /// metric from `outcome_cells`; ordered by day, then variant.
    async fn outcome_sums(
        &self,
        experiment_key: &str,
        metrics: &[Metric],
        by_segment: bool,
    ) -> Result<Vec<(Option<SegmentOf>, DailySums)>, StoreError> {
        self.fold_outcomes().await?;
        let segment_columns = if by_segment { ", basis, segments" } else { "" };
        type Key = (i64, String, Option<SegmentOf>);
        let key_of = |row: &AnyRow| -> Result<Key, StoreError> {
            Ok((
                row.try_get("day")?,
                row.try_get("variant")?,
                if by_segment {
                    Some(segment_of(row)?)
                } else {
                    None
                },
            ))
        };
        let users = sqlx::query(&format!(
            "SELECT variant, day{segment_columns}, CAST(SUM(assigned - withdrawn) AS BIGINT) AS users \
             FROM assignment_cells WHERE experiment_key = $1 GROUP BY variant, day{segment_columns}"
        ))
        .bind(experiment_key)
        .fetch_all(&self.analytics)
        .await?;
        let mut groups: std::collections::BTreeMap<Key, DailySums> =
            std::collections::BTreeMap::new();
        for row in &users {
            let users: i64 = row.try_get("users")?;
            if users <= 0 {
                continue;
            }
            let (day, variant, of) = key_of(row)?;
            groups.insert(
                (day, variant.clone(), of),
                DailySums {
                    variant,
                    day,
                    users,
                    per_metric: vec![(0.0, 0.0); metrics.len()],
                },
            );
        }
        let names: Vec<String> = metrics.iter().map(metric_key).collect();
        let sums = sqlx::query(&format!(
            "SELECT metric, variant, day{segment_columns}, SUM(total) AS s, SUM(total_squares) AS q \
             FROM outcome_cells WHERE experiment_key = $1 GROUP BY metric, variant, day{segment_columns}"
        ))
        .bind(experiment_key)
        .fetch_all(&self.analytics)
        .await?;
        for row in &sums {
            let Some(group) = groups.get_mut(&key_of(row)?) else {
                continue;
            };
            let metric: String = row.try_get("metric")?;
            for (i, name) in names.iter().enumerate() {
                if *name == metric {
                    group.per_metric[i] = (row.try_get("s")?, row.try_get("q")?);
                }
            }
        }
        Ok(groups
            .into_iter()
            .map(|((_, _, of), sums)| (of, sums))
            .collect())
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
    /// Per variant: `(variant, assigned, withdrawn)` (from the maintained
    /// `assignment_cells`).
    pub async fn assignment_counts(
        &self,
        experiment_key: &str,
    ) -> Result<Vec<(String, u64, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT variant, CAST(SUM(assigned) AS BIGINT) AS assigned, CAST(SUM(withdrawn) AS BIGINT) AS withdrawn \
             FROM assignment_cells WHERE experiment_key = $1 GROUP BY variant HAVING SUM(assigned) > 0 ORDER BY variant",
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
            "SELECT basis, segments, variant, CAST(SUM(assigned) AS BIGINT) AS assigned, \
             CAST(SUM(withdrawn) AS BIGINT) AS withdrawn FROM assignment_cells \
             WHERE experiment_key = $1 GROUP BY basis, segments, variant HAVING SUM(assigned) > 0 ORDER BY variant",
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
                "SELECT experiment_key, CAST(SUM(assigned) AS BIGINT), CAST(SUM(withdrawn) AS BIGINT) \
                 FROM assignment_cells WHERE experiment_key IN ({}) GROUP BY experiment_key HAVING SUM(assigned) > 0",
                numbered(1, chunk.len())
            );
            let mut query = sqlx::query_as::<_, (String, i64, i64)>(&sql);
            for key in chunk {
                query = query.bind(key);
            }
            for (key, assigned, withdrawn) in query.fetch_all(&self.reader).await? {
                totals.insert(key, (count_of(assigned), count_of(withdrawn)));
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
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT variant, basis, notice_version, CAST(SUM(assigned) AS BIGINT) FROM assignment_cells \
             WHERE experiment_key = $1 GROUP BY variant, basis, notice_version HAVING SUM(assigned) > 0 \
             ORDER BY variant, basis, notice_version",
        )
        .bind(experiment_key)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(variant, basis, notice, subjects)| {
                (variant, basis, (notice != 0).then_some(notice), subjects)
            })
            .collect())
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
        let assigned: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT variant, day, CAST(SUM(assigned) AS BIGINT) FROM assignment_cells \
             WHERE experiment_key = $1 GROUP BY variant, day",
        )
        .bind(experiment_key)
        .fetch_all(&self.reader)
        .await?;
        for (variant, day, n) in assigned.into_iter().filter(|row| row.2 > 0) {
            at(&mut days, day_text(day), variant).assigned += count_of(n);
        }
        let lost: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT variant, day, withdrawn, objected FROM withdrawal_cells WHERE experiment_key = $1",
        )
        .bind(experiment_key)
        .fetch_all(&self.reader)
        .await?;
        for (variant, day, withdrawn, objected) in
            lost.into_iter().filter(|row| row.2 > 0 || row.3 > 0)
        {
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
    /// distinct value (two for a binary metric), ordered by variant and
    /// value, for the Lee bounds. A binary metric's comes from the
    /// aggregates (its sum is its converted subjects); a sum metric's counts
    /// the subjects' outcomes (one row per kept subject with events, never
    /// one per event), read only when attrition differs between variants.
    pub async fn outcome_distribution(
        &self,
        experiment_key: &str,
        metric: &Metric,
    ) -> Result<Vec<(String, f64, u64)>, StoreError> {
        self.fold_outcomes().await?;
        let nonzero: Vec<(String, f64, i64)> = match metric.kind {
            MetricKind::Binary => sqlx::query_as(
                "SELECT variant, CAST(1.0 AS DOUBLE PRECISION), CAST(ROUND(SUM(total)) AS BIGINT) FROM outcome_cells \
                 WHERE experiment_key = $1 AND metric = $2 GROUP BY variant",
            ),
            MetricKind::Sum => sqlx::query_as(
                "SELECT a.variant, o.y, COUNT(*) FROM subject_outcomes o JOIN assignments a \
                 ON a.experiment_key = o.experiment_key AND a.subject = o.subject \
                 WHERE o.experiment_key = $1 AND o.metric = $2 AND a.withdrawn_at IS NULL AND o.y <> 0 \
                 GROUP BY a.variant, o.y",
            ),
        }
        .bind(experiment_key)
        .bind(metric_key(metric))
        .fetch_all(&self.analytics)
        .await?;
        let mut zeros: std::collections::BTreeMap<String, i64> = self
            .assignment_counts(experiment_key)
            .await?
            .into_iter()
            .map(|(variant, assigned, withdrawn)| {
                (
                    variant,
                    i64::try_from(assigned.saturating_sub(withdrawn)).unwrap_or(i64::MAX),
                )
            })
            .collect();
        for (variant, _, n) in &nonzero {
            if let Some(zero) = zeros.get_mut(variant) {
                *zero -= n;
            }
        }
        let mut rows: Vec<(String, f64, u64)> = nonzero
            .into_iter()
            .filter(|(_, _, n)| *n > 0)
            .map(|(variant, y, n)| (variant, y, count_of(n)))
            .chain(
                zeros
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(variant, n)| (variant, 0.0, count_of(n))),
            )
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        Ok(rows)
    }
}
