//! The results of a pilot's metric, as the results endpoint answers them and
//! the results page shows them: the `pilotgate analyze` report from the
//! database's per-variant, per-day sums, its guardrails, the decision, the
//! withdrawn subjects left out, the attrition (with Lee bounds when it
//! differs between variants) and the anytime-valid SRM check beside the
//! chi-square one. The statistics run off the async runtime.

use std::collections::BTreeMap;

use pilotgate_analysis::decision::{Decision, DecisionInput, Verdict, decide};
use pilotgate_analysis::disclosure::{self, After, MinCell};
use pilotgate_analysis::pipeline::{Outcome, VariantSums};
use pilotgate_analysis::report::{
    AnalyzeOptions, ComparisonReport, DayReport, Report, SrmReport, analyze_daily_sums,
    analyze_daily_sums_with,
};
use pilotgate_analysis::stats::{Method, Prior, SRM_P_THRESHOLD, check_srm, sequential_srm};
use pilotgate_domain::experiment::{Metric, MetricKind};
use pilotgate_store::{CovariateSums, DailySums, Experiment, Store};
use serde::{Deserialize, Serialize};

use super::ServiceError;
use super::attrition::{Attrition, AttritionQuery, AttritionView, attrition};
use super::disclosure::PilotCells;
pub use super::segments::SegmentResults;

/// Query of the results.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ResultsParams {
    /// The metric's event name: the primary metric (default) or a guardrail.
    pub metric: Option<String>,
    /// frequentist (default), sequential or bayesian.
    pub method: Option<String>,
    /// Defaults to the pilot's pre-registered alpha.
    pub alpha: Option<f64>,
    /// CUPED: adjust the metric by the same metric over each subject's events
    /// in the `lookback_days` before its assignment (from the other pilots of
    /// the purpose). 422 when no subject has such events.
    #[serde(default)]
    pub cuped: bool,
    /// The CUPED pre-period, in days (default 28, at most 365).
    pub lookback_days: Option<u32>,
    /// A segment the design pre-registered: the results add `segments`, the
    /// metric per segment value with p-values adjusted across segment
    /// values and variants (Holm or Benjamini–Hochberg, as designed; a
    /// guardrail's are not adjusted). 422 for any other segment.
    pub segment: Option<String>,
}

/// The CUPED pre-period's default length, in days.
pub const DEFAULT_LOOKBACK_DAYS: u32 = 28;

/// The variance reduction CUPED achieved.
#[derive(Debug, Clone, Serialize)]
pub struct CupedView {
    pub lookback_days: u32,
    /// The share of the metric's variance the covariate removed (ρ², 0 to 1).
    pub variance_reduction: f64,
}

/// Withdrawn subjects, left out of the analysis.
#[derive(Debug, Serialize)]
pub struct WithdrawnView {
    /// `null` where small-cell suppression withholds the count.
    pub by_variant: BTreeMap<String, Option<u64>>,
    /// Over every variant; `null` when withheld.
    pub total: Option<u64>,
    /// Withdrawals per variant tested against the split, like an SRM check
    /// (withheld unless every variant's withdrawals are released).
    pub imbalance: Option<SrmReport>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

/// The analyze report of the metric, plus the rest.
#[derive(Debug, Serialize)]
pub struct ResultsView {
    #[serde(flatten)]
    pub report: Report,
    pub decision: Decision,
    pub guardrails: Vec<Report>,
    /// The withdrawn subjects left out; absent from a segment value's view
    /// (withdrawals are counted over the whole pilot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<WithdrawnView>,
    /// Every subject lost per variant (withdrawn, objected, erased), its
    /// balance test, the daily series and the Lee bounds; absent from a
    /// segment value's view (attrition is checked over the whole pilot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attrition: Option<AttritionView>,
    /// The anytime-valid SRM check over the daily looks, beside `srm`
    /// (`null` when a variant's users are withheld).
    pub sequential_srm: Option<SequentialSrmView>,
    pub planned_sample_size_per_variant: Option<i64>,
    /// The metric's analysis cumulated by assignment day, oldest first.
    pub cumulative: Vec<CumulativeView>,
    /// Present when the metric was CUPED-adjusted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cuped: Option<CupedView>,
    /// `YYYY-MM-DD` when the pilot's raw assignments and events were purged
    /// (its retention ran out): the results come from the aggregates kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_data_purged_on: Option<String>,
    /// The minimum cell size `k`: a figure of fewer people is `null` with
    /// `"suppressed": true` beside it.
    pub min_cell: u64,
    /// Present when a segment was asked for: the results per segment value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<SegmentResults>,
    /// The assigned subjects over every variant, as the pilot's other views
    /// release it (not part of the answer: the segment values must not
    /// betray it when it is withheld).
    #[serde(skip)]
    pub assigned_total: Option<u64>,
}

/// The anytime-valid sample ratio check (Lindon & Malek's
/// Dirichlet-multinomial test) over the users per variant at the end of
/// each assignment day: safe to read every day.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SequentialSrmView {
    /// The Bayes factor against the expected split at the last day.
    pub bayes_factor: f64,
    /// The smallest `1 / BF` over the days so far, capped at 1.
    pub p_value: f64,
    /// True when `p_value` is below the chi-square badge's threshold (0.001).
    pub mismatch: bool,
}

/// The analysis over the users assigned on or before one UTC day, with every
/// outcome attributed to them so far.
#[derive(Debug, Serialize)]
pub struct CumulativeView {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// `null` where small-cell suppression withholds the day.
    pub users: BTreeMap<String, Option<u64>>,
    pub comparisons: Vec<ComparisonReport>,
    /// The day is withheld: it would describe fewer than `k` people, or
    /// its difference to the next day shown would.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

const DAY_MICROS: i64 = 86_400_000_000;

fn outcome_of(kind: MetricKind) -> Outcome {
    match kind {
        MetricKind::Binary => Outcome::Binary,
        MetricKind::Sum => Outcome::Sum,
    }
}

/// The results of `experiment` as the endpoint answers them (the dashboards show the same).
pub async fn compute_results(
    store: &Store,
    experiment: &Experiment,
    params: &ResultsParams,
    k: MinCell,
) -> Result<ResultsView, ServiceError> {
    let design = experiment.design.clone();
    let planned_sample_size = experiment.planned_sample_size;
    let metric: Metric = match &params.metric {
        None => design.primary_metric.clone(),
        Some(name) => std::iter::once(&design.primary_metric)
            .chain(&design.guardrails)
            .find(|m| &m.event == name)
            .cloned()
            .ok_or_else(|| {
                ServiceError::invalid(
                    "metric",
                    "must be the pilot's primary metric or one of its guardrails",
                )
            })?,
    };
    let method = match params.method.as_deref() {
        None | Some("frequentist") => Method::Frequentist,
        Some("sequential") => Method::SEQUENTIAL_DEFAULT,
        Some("bayesian") => Method::Bayesian { prior: Prior::Flat },
        Some(_) => {
            return Err(ServiceError::invalid(
                "method",
                "must be frequentist, sequential or bayesian",
            ));
        }
    };
    let alpha = params.alpha.unwrap_or(design.alpha);
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(ServiceError::invalid(
            "alpha",
            "must be strictly between 0 and 1",
        ));
    }

    // Per-variant sums per assignment day come from the database (one
    // query for every metric); the statistics run on those.
    let metrics: Vec<Metric> = std::iter::once(design.primary_metric.clone())
        .chain(design.guardrails.iter().cloned())
        .collect();
    let window = design
        .attribution_window_hours
        .map(|h| i64::from(h) * 3_600_000_000);
    let kept = super::purge::kept_aggregates(store, design.key.as_str()).await?;
    let daily = match &kept {
        Some((_, kept)) => {
            if kept.metrics != metrics.iter().map(|m| m.event.clone()).collect::<Vec<_>>() {
                return Err(ServiceError::internal(
                    "the kept aggregates name other metrics than the design",
                ));
            }
            kept.daily.clone()
        }
        None => {
            store
                .daily_outcome_sums(design.key.as_str(), &metrics)
                .await?
        }
    };
    let segment_source = match &params.segment {
        None => None,
        Some(name) => {
            let dimension = super::segments::declared(&design, name)?;
            if params.cuped {
                return Err(ServiceError::invalid(
                    "cuped",
                    "segment results are not CUPED-adjusted; ask for one or the other",
                ));
            }
            if kept.is_some() {
                return Err(ServiceError::invalid(
                    "segment",
                    "the pilot's raw data was purged; segment results were not kept",
                ));
            }
            let daily = store
                .segment_outcome_sums(design.key.as_str(), &metrics)
                .await?;
            let counts = store.segment_assignment_counts(design.key.as_str()).await?;
            Some((dimension, design.segment_correction, daily, counts))
        }
    };
    let lookback_days = params.lookback_days.unwrap_or(DEFAULT_LOOKBACK_DAYS);
    if !(1..=365).contains(&lookback_days) {
        return Err(ServiceError::invalid(
            "lookback_days",
            "must be 1 to 365 days",
        ));
    }
    let covariate = if params.cuped {
        let sums = match &kept {
            Some((_, kept)) => kept
                .covariate
                .iter()
                .find(|(event, _)| kept.lookback_days == lookback_days && *event == metric.event)
                .map(|(_, sums)| sums.clone())
                .ok_or_else(|| {
                    ServiceError::invalid(
                        "cuped",
                        format!(
                            "the pilot's raw data was purged; only the {}-day pre-period was kept",
                            kept.lookback_days
                        ),
                    )
                })?,
            None => {
                store
                    .daily_covariate_sums(
                        design.key.as_str(),
                        design.purpose.as_str(),
                        &metric,
                        window,
                        i64::from(lookback_days) * DAY_MICROS,
                    )
                    .await?
            }
        };
        let reduction = variance_reduction(&sums).ok_or_else(|| {
            ServiceError::invalid(
                "cuped",
                format!(
                    "no subject of this pilot has '{}' events in the {lookback_days} days before its assignment (in the other pilots of its purpose), so there is no covariate to adjust by",
                    metric.event
                ),
            )
        })?;
        Some((sums, reduction))
    } else {
        None
    };
    let (counts, raw_data_purged_on) = match &kept {
        Some((purged_at, kept)) => (
            kept.counts.clone(),
            Some(purged_at.format("%Y-%m-%d").to_string()),
        ),
        None => (store.assignment_counts(design.key.as_str()).await?, None),
    };
    let cohorts = super::purge::eligibility_breakdown(store, design.key.as_str()).await?;
    let control = design.variants[0].key.clone();
    let weights: Vec<(String, f64)> = design
        .variants
        .iter()
        .map(|v| (v.key.clone(), v.weight))
        .collect();

    let variant_keys: Vec<String> = design.variants.iter().map(|v| v.key.clone()).collect();
    let variant_weights: Vec<f64> = design.variants.iter().map(|v| v.weight).collect();
    let (attrition, lee_for_decision) = attrition(
        store,
        &AttritionQuery {
            key: design.key.as_str(),
            variants: &variant_keys,
            weights: &variant_weights,
            purged_counts: kept.as_ref().map(|(_, kept)| kept.counts.as_slice()),
            purged_attrition: kept
                .as_ref()
                .map_or(&[], |(_, kept)| kept.attrition.as_slice()),
            k,
        },
        &metric,
        &design.primary_metric,
    )
    .await?;

    let input = ViewInput {
        metrics,
        metric,
        method,
        control,
        alpha,
        weights,
        mde: design.mde,
        planned_sample_size,
        daily,
        counts,
        covariate,
        lookback_days,
        raw_data_purged_on,
        attrition,
        lee_for_decision,
        cohorts,
        k,
    };
    let segment_input = segment_source.map(|source| (source, input.clone()));
    let mut results = tokio::task::spawn_blocking(move || build_view(input))
        .await
        .map_err(ServiceError::internal)??;
    if let Some(((dimension, correction, daily, counts), input)) = segment_input {
        let pilot = super::segments::PilotReleased {
            reports: std::iter::once(results.report.clone())
                .chain(
                    results
                        .guardrails
                        .iter()
                        .filter(|g| g.metric != results.report.metric)
                        .cloned(),
                )
                .collect(),
            assigned_total: results.assigned_total,
            withdrawn_total: results.withdrawn.as_ref().and_then(|w| w.total),
        };
        results.segments = Some(
            tokio::task::spawn_blocking(move || {
                super::segments::segment_results(
                    dimension, correction, daily, counts, &input, &pilot,
                )
            })
            .await
            .map_err(ServiceError::internal)??,
        );
    }
    Ok(results)
}

/// What one results view is computed from: the design's figures and the
/// database's sums (of the whole pilot, or of one segment value).
#[derive(Debug, Clone)]
pub(super) struct ViewInput {
    pub(super) metrics: Vec<Metric>,
    /// The metric asked for (the primary metric or a guardrail).
    pub(super) metric: Metric,
    pub(super) method: Method,
    pub(super) control: String,
    pub(super) alpha: f64,
    pub(super) weights: Vec<(String, f64)>,
    pub(super) mde: f64,
    pub(super) planned_sample_size: Option<i64>,
    pub(super) daily: Vec<DailySums>,
    /// Per variant: `(variant, assigned, withdrawn)`.
    pub(super) counts: Vec<(String, u64, u64)>,
    pub(super) covariate: Option<(Vec<CovariateSums>, f64)>,
    pub(super) lookback_days: u32,
    pub(super) raw_data_purged_on: Option<String>,
    /// The whole pilot's attrition (a segment value's view shows it too:
    /// attrition is checked over the pilot), and the Lee bounds the
    /// decision reads.
    pub(super) attrition: Attrition,
    pub(super) lee_for_decision: Vec<(String, Option<[f64; 2]>)>,
    /// The eligibility cohorts, whose sum the released counts must not betray.
    pub(super) cohorts: Vec<(String, String, Option<i64>, i64)>,
    pub(super) k: MinCell,
}

/// The results view of `input`: the one builder of the whole pilot's view
/// and of each segment value's (run off the async runtime).
pub(super) fn build_view(input: ViewInput) -> Result<ResultsView, ServiceError> {
    let ViewInput {
        metrics,
        metric,
        method,
        control,
        alpha,
        weights,
        mde,
        planned_sample_size,
        daily,
        counts,
        covariate,
        lookback_days,
        raw_data_purged_on,
        attrition,
        lee_for_decision,
        cohorts,
        k,
    } = input;
    let mut withdrawn: BTreeMap<String, u64> =
        weights.iter().map(|(v, _)| (v.clone(), 0)).collect();
    let mut assigned: BTreeMap<String, u64> = withdrawn.clone();
    for (variant, total, gone) in &counts {
        *assigned.entry(variant.clone()).or_default() += total;
        *withdrawn.entry(variant.clone()).or_default() += gone;
    }
    let options = AnalyzeOptions {
        method,
        control,
        alpha,
        weights: weights.clone(),
    };
    let analyze = |index: usize| {
        let m = &metrics[index];
        let sums = daily
            .iter()
            .map(|d| {
                let (sum, sum_squares) = d.per_metric[index];
                let users = u64::try_from(d.users).unwrap_or(0);
                let sums = VariantSums::plain(&d.variant, users, sum, sum_squares);
                (d.day, sums)
            })
            .collect();
        analyze_daily_sums(sums, &m.event, outcome_of(m.kind), &options)
            .map_err(|e| ServiceError::Unprocessable(e.to_string()))
    };
    let requested = metrics.iter().position(|m| *m == metric).unwrap_or(0);
    let (mut primary, primary_days) = analyze(0)?;
    // The people behind each day of every metric's series: a day is shown
    // only when no metric's series would tell a small group by it.
    let mut day_counts: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
    let mut count_days = |days: &[DayReport]| {
        for d in days {
            day_counts
                .entry(d.day)
                .or_default()
                .extend(disclosure::variant_counts(&d.report).concat());
        }
    };
    count_days(&primary_days);
    let (report, days) = match &covariate {
        Some((sums, _)) => {
            let daily = sums
                .iter()
                .map(|d| {
                    let sums = VariantSums {
                        variant: d.variant.clone(),
                        users: u64::try_from(d.users).unwrap_or(0),
                        sum: d.sum,
                        sum_squares: d.sum_squares,
                        x_sum: d.x_sum,
                        x_sum_squares: d.x_sum_squares,
                        xy_sum: d.xy_sum,
                    };
                    (d.day, sums)
                })
                .collect();
            let adjusted = analyze_daily_sums_with(
                daily,
                &metric.event,
                outcome_of(metric.kind),
                &options,
                true,
            )
            .map_err(|e| ServiceError::Unprocessable(e.to_string()))?;
            if requested == 0 {
                // The decision reads the analysis shown.
                primary = adjusted.0.clone();
            }
            adjusted
        }
        None if requested == 0 => (primary.clone(), primary_days),
        None => analyze(requested)?,
    };
    let looks: Vec<Vec<u64>> = days
        .iter()
        .map(|point| {
            weights
                .iter()
                .map(|(variant, _)| {
                    point
                        .report
                        .variants
                        .iter()
                        .find(|v| &v.variant == variant)
                        .and_then(|v| v.users)
                        .unwrap_or(0)
                })
                .collect()
        })
        .collect();
    let split: Vec<f64> = weights.iter().map(|(_, w)| *w).collect();
    let sequential = sequential_srm(&looks, &split, SRM_P_THRESHOLD)
        .ok()
        .map(|c| SequentialSrmView {
            bayes_factor: c.bayes_factor,
            p_value: c.p_value,
            mismatch: c.mismatch,
        });
    let mut guardrails = Vec::with_capacity(metrics.len().saturating_sub(1));
    for index in 1..metrics.len() {
        let (whole, days) = analyze(index)?;
        count_days(&days);
        guardrails.push(whole);
    }
    let total_withdrawn: u64 = withdrawn.values().sum();
    let imbalance = (total_withdrawn > 0)
        .then(|| {
            let counts: Vec<u64> = withdrawn.values().copied().collect();
            let expected: Vec<f64> = assigned.values().map(|n| *n as f64).collect();
            check_srm(&counts, &expected).ok()
        })
        .flatten()
        .map(|c| SrmReport {
            chi2: c.chi2,
            p_value: c.p_value,
            mismatch: c.mismatch,
        });
    let decision = decide(&DecisionInput {
        primary: &primary,
        guardrails: &guardrails,
        mde,
        planned_per_variant: planned_sample_size.map(|n| n as u64),
        withdrawal_imbalance: attrition.imbalance,
        lee_bounds: &lee_for_decision,
    });
    // Everything above used the full data; what follows withholds what
    // describes fewer than k people before anything leaves.
    let cells = PilotCells::new(&counts, &cohorts, &attrition.by_variant, k);
    let released = release(
        Computed {
            report,
            days,
            day_counts,
            primary,
            guardrails,
            decision,
            withdrawn,
            imbalance,
        },
        &cells,
        k,
    );
    let attrition_view = attrition.release(&cells, k, &released.report);
    // The anytime-valid check weighs the same groups as the chi-square one.
    let sequential =
        sequential.filter(|_| released.report.variants.iter().all(|v| v.users.is_some()));
    Ok(ResultsView {
        report: released.report,
        decision: released.decision,
        guardrails: released.guardrails,
        withdrawn: Some(released.withdrawn),
        attrition: Some(attrition_view),
        sequential_srm: sequential,
        planned_sample_size_per_variant: planned_sample_size,
        cumulative: released.cumulative,
        cuped: covariate.map(|(_, reduction)| CupedView {
            lookback_days,
            variance_reduction: reduction,
        }),
        raw_data_purged_on,
        min_cell: k.get(),
        segments: None,
        assigned_total: cells.assigned_total,
    })
}

/// The results as computed from the full data, before suppression.
struct Computed {
    report: Report,
    days: Vec<DayReport>,
    /// Per day: the counts of people behind every metric's series (the
    /// primary's, then each guardrail's).
    day_counts: BTreeMap<i64, Vec<u64>>,
    primary: Report,
    guardrails: Vec<Report>,
    decision: Decision,
    withdrawn: BTreeMap<String, u64>,
    imbalance: Option<SrmReport>,
}

/// The results as they may be released.
struct Released {
    report: Report,
    cumulative: Vec<CumulativeView>,
    guardrails: Vec<Report>,
    decision: Decision,
    withdrawn: WithdrawnView,
}

/// Withholds from `computed` every figure describing fewer than `k` people
/// and every figure that would let one be recomputed: per variant (users
/// withheld where the pilot's cells say so, to hide few withdrawals), per
/// day of the cumulative series (a day goes when it, or its difference to
/// the next day shown or to the whole, describes fewer than `k` people),
/// guardrails, withdrawals and their balance test. The decision, computed
/// from the full data, is released only when every group it weighs is.
fn release(computed: Computed, cells: &PilotCells, k: MinCell) -> Released {
    let users_released = |report: &Report| -> Vec<bool> {
        report
            .variants
            .iter()
            .map(|v| {
                cells
                    .variants
                    .get(&v.variant)
                    .is_none_or(|c| c.analysed.is_some())
            })
            .collect()
    };
    let Computed {
        mut report,
        mut days,
        day_counts,
        mut primary,
        mut guardrails,
        decision,
        withdrawn,
        imbalance,
    } = computed;
    let shown = users_released(&report);
    disclosure::release_report(&mut report, &shown, k);
    // The whole of every metric, as released, ends the series.
    let whole_counts: Vec<Vec<Vec<u64>>> = std::iter::once(&primary)
        .chain(&guardrails)
        .map(disclosure::variant_counts)
        .collect();
    let shown = users_released(&primary);
    disclosure::release_report(&mut primary, &shown, k);
    for guardrail in &mut guardrails {
        let shown = users_released(guardrail);
        disclosure::release_report(guardrail, &shown, k);
    }
    let after: Vec<After> = std::iter::once(&primary)
        .chain(&guardrails)
        .zip(&whole_counts)
        .flat_map(|(released, counts)| {
            released
                .variants
                .iter()
                .zip(counts)
                .flat_map(|(variant, counts)| {
                    counts.iter().enumerate().map(|(c, count)| {
                        let shown = if c == 0 {
                            variant.users.is_some()
                        } else {
                            !variant.suppressed
                        };
                        if shown {
                            After::Released(*count)
                        } else {
                            After::Withheld(*count)
                        }
                    })
                })
        })
        .collect();
    let width = after.len();
    let points: Vec<Vec<u64>> = days
        .iter()
        .map(|d| {
            let mut counts = day_counts.get(&d.day).cloned().unwrap_or_default();
            counts.resize(width, 0);
            counts
        })
        .collect();
    let shown_days = disclosure::release_cumulative(&points, &after, k);
    let cumulative = days
        .iter_mut()
        .zip(shown_days)
        .map(|(point, shown)| {
            if !shown {
                disclosure::withhold_report(&mut point.report);
            }
            CumulativeView {
                day: day_label(point.day),
                users: point
                    .report
                    .variants
                    .iter()
                    .map(|v| (v.variant.clone(), v.users))
                    .collect(),
                comparisons: std::mem::take(&mut point.report.comparisons),
                suppressed: !shown,
            }
        })
        .collect();
    let decision = if primary.suppressed || guardrails.iter().any(|g| g.suppressed) {
        withheld_decision(k)
    } else {
        decision
    };
    let by_variant: BTreeMap<String, Option<u64>> = withdrawn
        .keys()
        .map(|variant| {
            let count = match cells.variants.get(variant) {
                Some(c) => c.withdrawn,
                None => Some(0),
            };
            (variant.clone(), count)
        })
        .collect();
    let withdrawals_shown = by_variant.values().all(Option::is_some);
    Released {
        report,
        cumulative,
        guardrails,
        decision,
        withdrawn: WithdrawnView {
            by_variant,
            total: cells.withdrawn_total,
            imbalance: imbalance.filter(|_| withdrawals_shown),
            suppressed: !withdrawals_shown || cells.withdrawn_total.is_none(),
        },
    }
}

/// The decision shown while a figure it weighs describes fewer than `k` people.
pub(super) fn withheld_decision(k: MinCell) -> Decision {
    Decision {
        outcome: Verdict::KeepRunning,
        variant: None,
        reasons: vec![format!(
            "A variant has fewer than {} people in a figure the decision weighs, so the decision is withheld until each has at least {}.",
            k.get(),
            k.get()
        )],
    }
}

/// The share of the outcome's within-variant variance the covariate
/// explains (ρ², what CUPED removes), pooled over variants and days; `None`
/// when the covariate does not vary (nobody has pre-period events).
fn variance_reduction(sums: &[pilotgate_store::CovariateSums]) -> Option<f64> {
    let mut totals: BTreeMap<&str, [f64; 6]> = BTreeMap::new();
    for d in sums {
        let t = totals.entry(d.variant.as_str()).or_default();
        for (slot, value) in t.iter_mut().zip([
            d.users as f64,
            d.sum,
            d.sum_squares,
            d.x_sum,
            d.x_sum_squares,
            d.xy_sum,
        ]) {
            *slot += value;
        }
    }
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    for [n, y, yy, x, xx, xy] in totals.into_values() {
        if n > 0.0 {
            sxx += xx - x * x / n;
            syy += yy - y * y / n;
            sxy += xy - x * y / n;
        }
    }
    (sxx > 1e-12 && syy > 1e-12).then(|| (sxy * sxy / (sxx * syy)).clamp(0.0, 1.0))
}

/// `YYYY-MM-DD` of a day counted from the epoch.
fn day_label(day: i64) -> String {
    pilotgate_domain::time::from_micros(day * DAY_MICROS)
        .format("%Y-%m-%d")
        .to_string()
}

/// The format of a results download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DownloadFormat {
    /// The per-variant table with each comparison (`Report::csv`).
    Csv,
    /// The results as the results endpoint answers them.
    Json,
}

/// Query of a results download: the results' own parameters and the format.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DownloadParams {
    /// csv or json.
    pub format: DownloadFormat,
    /// The metric's event name: the primary metric (default) or a guardrail.
    pub metric: Option<String>,
    /// frequentist (default), sequential or bayesian.
    pub method: Option<String>,
    /// Defaults to the pilot's pre-registered alpha.
    pub alpha: Option<f64>,
    /// CUPED-adjusted, as in the results.
    #[serde(default)]
    pub cuped: bool,
    /// The CUPED pre-period in days.
    pub lookback_days: Option<u32>,
    /// A pre-registered segment: the CSV then has one row per segment value
    /// and variant, with the adjusted p-value; the JSON adds `segments`.
    pub segment: Option<String>,
}

/// A file to hand out.
#[derive(Debug)]
pub struct Download {
    pub body: String,
    pub content_type: &'static str,
    pub filename: String,
}

/// The results of `experiment` as a file, audited (`results.downloaded`, with
/// the format, metric, method, α, rows and the file's SHA-256) before any
/// byte is handed out: no audit entry, no file.
pub async fn download(
    store: &Store,
    actor: &pilotgate_domain::Actor,
    experiment: &Experiment,
    params: &DownloadParams,
    k: MinCell,
) -> Result<Download, ServiceError> {
    use sha2::Digest;
    let results = compute_results(
        store,
        experiment,
        &ResultsParams {
            metric: params.metric.clone(),
            method: params.method.clone(),
            alpha: params.alpha,
            cuped: params.cuped,
            lookback_days: params.lookback_days,
            segment: params.segment.clone(),
        },
        k,
    )
    .await?;
    let key = experiment.design.key.as_str();
    let csv = match &results.segments {
        Some(segments) => segments.csv(),
        None => results.report.csv(),
    };
    let (body, content_type, extension) = match params.format {
        DownloadFormat::Csv => (csv, "text/csv; charset=utf-8", "csv"),
        DownloadFormat::Json => (
            serde_json::to_string_pretty(&results).map_err(ServiceError::internal)?,
            "application/json",
            "json",
        ),
    };
    let sha256 = hex::encode(sha2::Sha256::digest(body.as_bytes()));
    store
        .record_audit(
            actor,
            "results.downloaded",
            format!("experiment:{key}"),
            serde_json::json!({
                "format": extension,
                "metric": results.report.metric,
                "method": results.report.method.as_str(),
                "alpha": results.report.alpha,
                "variants": results.report.variants.len(),
                "segment": results.segments.as_ref().map(|s| s.segment.as_str()),
                "sha256": sha256,
            }),
        )
        .await?;
    Ok(Download {
        body,
        content_type,
        filename: format!("{key}-results.{extension}"),
    })
}
