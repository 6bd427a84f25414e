//! A pilot's attrition as the results show it: the subjects each variant
//! lost (withdrawn, objected, erased), the balance test over them, the loss
//! day by day, and, when the variants kept different shares of their
//! subjects, the Lee bounds of the effect beside the estimate; and the
//! refused assignment calls per variant they would have had, tested
//! against the split (eligibility is decided before bucketing).

use std::collections::BTreeMap;

use pilotgate_analysis::attrition::{
    AttritionCounts, AttritionPoint, CumulativeAttrition, attrition_balance, attrition_series,
    refusal_independence,
};
use pilotgate_analysis::disclosure::{After, MinCell, release_cumulative};
use pilotgate_analysis::report::{Report, SrmReport};
use pilotgate_analysis::stats::{Arm, TrimGroup, lee_bounds};
use pilotgate_domain::experiment::Metric;
use pilotgate_store::{AttritionDay, Store, StoreError};
use serde::Serialize;

use super::ServiceError;
use super::disclosure::{PilotCells, release_parts};

/// Below this p-value of the attrition balance test the Lee bounds are computed.
pub const LEE_BOUNDS_P: f64 = 0.05;

/// The attrition of a pilot, from the full data (see [`AttritionView`] for
/// what may be released).
#[derive(Debug, Clone)]
pub struct Attrition {
    /// Per variant: assigned (erased ones included), withdrawn, objected, erased.
    pub by_variant: BTreeMap<String, AttritionCounts>,
    /// Every lost subject per variant tested against the assigned ones;
    /// a mismatch makes the decision `not_decidable` unless the Lee bounds
    /// keep the sign of the effect.
    pub imbalance: Option<SrmReport>,
    /// The loss cumulated per day, oldest first (kept by the purge).
    pub series: Vec<AttritionPoint>,
    /// The Lee bounds of the metric shown, per variant against the control,
    /// when the attrition balance test gives p < 0.05.
    pub lee_bounds: Vec<LeeBoundsView>,
    /// Refused assignment calls per variant the subject would have had.
    pub refusals: RefusalCheck,
}

/// Whether refusals depend on the variant.
#[derive(Debug, Clone)]
pub struct RefusalCheck {
    pub by_variant: BTreeMap<String, u64>,
    /// Whether the eligibility report releases every assignment-stage
    /// refusal total (their sum is these counts' sum, when the whole
    /// traffic is in the pilot).
    pub reason_totals_released: bool,
    /// The counts tested against the split (chi-square); `None` with no refusal.
    pub independence: Option<SrmReport>,
}

/// The attrition of a pilot as it may be released under the minimum cell
/// size: a count of fewer than `k` people, or one that would let such a
/// count be recomputed, is `null`; the balance test, the Lee bounds and the
/// refusal check are released only when every group they weigh is.
#[derive(Debug, Clone, Serialize)]
pub struct AttritionView {
    /// Per variant: assigned (erased ones included), withdrawn, objected, erased.
    pub by_variant: BTreeMap<String, LossCounts>,
    /// Every lost subject per variant tested against the assigned ones;
    /// a mismatch makes the decision `not_decidable` unless the Lee bounds
    /// keep the sign of the effect.
    pub imbalance: Option<SrmReport>,
    /// The loss cumulated per day, oldest first (kept by the purge).
    pub series: Vec<LossPoint>,
    /// The Lee bounds of the metric shown, per variant against the control,
    /// when the attrition balance test gives p < 0.05.
    pub lee_bounds: Vec<LeeBoundsView>,
    /// Refused assignment calls per variant the subject would have had.
    pub refusals: RefusalCheckView,
    /// Something above is withheld.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

/// One variant's lost subjects as released (`null`: suppressed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LossCounts {
    pub assigned: Option<u64>,
    pub withdrawn: Option<u64>,
    pub objected: Option<u64>,
    pub erased: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

/// One day of the attrition series as released: a variant is `null` when
/// its counts that day, or their difference to the next day shown, would
/// describe fewer than `k` people.
#[derive(Debug, Clone, Serialize)]
pub struct LossPoint {
    pub day: String,
    pub variants: BTreeMap<String, Option<CumulativeAttrition>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

/// Whether refusals depend on the variant, as released.
#[derive(Debug, Clone, Serialize)]
pub struct RefusalCheckView {
    pub by_variant: BTreeMap<String, Option<u64>>,
    /// The counts tested against the split (chi-square); `null` with no
    /// refusal, or when a count is withheld.
    pub independence: Option<SrmReport>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

/// The Lee bounds of one variant's effect (unadjusted means of the kept subjects).
#[derive(Debug, Clone, Serialize)]
pub struct LeeBoundsView {
    pub variant: String,
    /// `control` or `variant`: the arm that kept more and was trimmed.
    pub trimmed: &'static str,
    /// The share of that arm's kept subjects trimmed.
    pub trimmed_share: f64,
    /// Bounds of the variant's mean minus the control's.
    pub absolute: Option<[f64; 2]>,
    /// Bounds of the relative lift; `null` when the trimmed control mean can be 0.
    pub relative: Option<[f64; 2]>,
    /// Why no bounds could be computed, when none were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What the attrition computation needs of the pilot.
#[derive(Debug)]
pub struct AttritionQuery<'a> {
    pub key: &'a str,
    /// The design's variants, control first, and their weights.
    pub variants: &'a [String],
    pub weights: &'a [f64],
    /// `(variant, assigned, withdrawn)` kept when the raw data was purged.
    pub purged_counts: Option<&'a [(String, u64, u64)]>,
    /// The attrition per day kept when the raw data was purged (empty when
    /// purged before it was kept).
    pub purged_attrition: &'a [AttritionDay],
    /// The minimum cell size the eligibility report releases under.
    pub k: MinCell,
}

/// The lost subjects of a pilot per variant and per day.
#[derive(Debug, Clone, Default)]
pub struct Losses {
    /// Per variant (every variant asked for has a row).
    pub by_variant: BTreeMap<String, AttritionCounts>,
    /// Cumulated per day, oldest first; empty when the pilot was purged
    /// before the purge kept it.
    pub series: Vec<AttritionPoint>,
}

/// The losses of pilot `key` for `variants`: from the raw assignments, or
/// once purged (`purged_counts`, `(variant, assigned, withdrawn)` kept by
/// the purge) from the attrition kept (`purged_attrition`).
pub async fn losses(
    store: &Store,
    key: &str,
    variants: &[String],
    purged_counts: Option<&[(String, u64, u64)]>,
    purged_attrition: &[AttritionDay],
) -> Result<Losses, StoreError> {
    // A purge keeps the attrition as it was; none can follow (the purged
    // pilot has no assignment left to withdraw or erase).
    let whole = purged_counts.is_none() || !purged_attrition.is_empty();
    let days = if purged_attrition.is_empty() {
        store.attrition_by_day(key).await?
    } else {
        purged_attrition.to_vec()
    };
    let mut by_variant: BTreeMap<String, AttritionCounts> = variants
        .iter()
        .map(|v| (v.clone(), AttritionCounts::default()))
        .collect();
    let daily: Vec<(String, String, AttritionCounts)> = days
        .into_iter()
        .map(|d| {
            let counts = AttritionCounts {
                assigned: d.assigned,
                withdrawn: d.withdrawn,
                objected: d.objected,
                erased: d.erased,
            };
            (d.day, d.variant, counts)
        })
        .collect();
    for (_, variant, counts) in &daily {
        let total = by_variant.entry(variant.clone()).or_default();
        total.assigned += counts.assigned;
        total.erased += counts.erased;
        if whole {
            total.withdrawn += counts.withdrawn;
            total.objected += counts.objected;
        }
    }
    let series = match purged_counts {
        _ if whole => attrition_series(variants, &daily),
        None => Vec::new(),
        Some(kept) => {
            // The raw assignments are gone: the counts kept at the purge
            // (which do not tell objections apart) and the erasures.
            for (variant, assigned, withdrawn) in kept {
                let total = by_variant.entry(variant.clone()).or_default();
                total.assigned += assigned;
                total.withdrawn += withdrawn;
            }
            Vec::new()
        }
    };
    Ok(Losses { by_variant, series })
}

/// The attrition of the pilot, with the Lee bounds of `shown` (in the view)
/// and of `primary` (for the decision: per variant, the relative bounds).
pub async fn attrition(
    store: &Store,
    query: &AttritionQuery<'_>,
    shown: &Metric,
    primary: &Metric,
) -> Result<(Attrition, Vec<(String, Option<[f64; 2]>)>), ServiceError> {
    let Losses { by_variant, series } = losses(
        store,
        query.key,
        query.variants,
        query.purged_counts,
        query.purged_attrition,
    )
    .await?;
    let imbalance = attrition_balance(&by_variant);
    // Attrition "differs" when its balance test gives p < 0.05 (a lenient
    // signal; the decision acts only below 0.001): only then are the
    // outcome distributions read, which costs another pass over the events.
    let shares_differ = imbalance.is_some_and(|check| check.p_value < LEE_BOUNDS_P);
    let (mut shown_bounds, mut primary_bounds) = (Vec::new(), Vec::new());
    if shares_differ {
        shown_bounds = bounds_of(store, query, &by_variant, shown).await?;
        primary_bounds = if shown == primary {
            shown_bounds.clone()
        } else {
            bounds_of(store, query, &by_variant, primary).await?
        };
    }
    let refused = store.refusal_buckets(query.key).await?;
    let refused: Vec<u64> = query
        .variants
        .iter()
        .map(|v| {
            refused
                .iter()
                .find(|(variant, _)| variant == v)
                .map_or(0, |(_, n)| u64::try_from(*n).unwrap_or(0))
        })
        .collect();
    let matrix = super::disclosure::refusal_matrix(store.refusal_counts(query.key).await?, query.k);
    let reason_totals_released = matrix
        .columns
        .iter()
        .enumerate()
        .filter(|(_, column)| column.starts_with("assign: "))
        .all(|(i, _)| matrix.withheld.column_totals.get(i) != Some(&true));
    let refusals = RefusalCheck {
        reason_totals_released,
        independence: (refused.iter().sum::<u64>() > 0)
            .then(|| refusal_independence(&refused, query.weights).ok())
            .flatten(),
        by_variant: query.variants.iter().cloned().zip(refused).collect(),
    };
    let decision_bounds = primary_bounds
        .iter()
        .map(|b| (b.variant.clone(), b.relative))
        .collect();
    Ok((
        Attrition {
            by_variant,
            imbalance,
            series,
            lee_bounds: shown_bounds,
            refusals,
        },
        decision_bounds,
    ))
}

/// The Lee bounds of `metric` for every variant against the control.
async fn bounds_of(
    store: &Store,
    query: &AttritionQuery<'_>,
    totals: &BTreeMap<String, AttritionCounts>,
    metric: &Metric,
) -> Result<Vec<LeeBoundsView>, ServiceError> {
    let distribution = match query.purged_counts {
        Some(_) => None,
        None => Some(store.outcome_distribution(query.key, metric).await?),
    };
    let group = |variant: &str| -> Option<TrimGroup> {
        let outcomes = distribution
            .as_ref()?
            .iter()
            .filter(|(v, _, _)| v == variant)
            .map(|(_, value, n)| (*value, *n))
            .collect();
        Some(TrimGroup {
            assigned: totals.get(variant).map_or(0, |c| c.assigned),
            outcomes,
        })
    };
    let Some((control, others)) = query.variants.split_first() else {
        return Ok(Vec::new());
    };
    Ok(others
        .iter()
        .map(|variant| {
            let computed = match (group(control), group(variant)) {
                (Some(c), Some(v)) => lee_bounds(&c, &v).map_err(|e| e.to_string()),
                _ => Err("the raw data was purged, so the outcomes cannot be trimmed".to_owned()),
            };
            match computed {
                Ok(bounds) => LeeBoundsView {
                    variant: variant.clone(),
                    trimmed: match bounds.trimmed {
                        Arm::Control => "control",
                        Arm::Variant => "variant",
                    },
                    trimmed_share: bounds.trimmed_share,
                    absolute: Some(bounds.absolute),
                    relative: bounds.relative,
                    note: None,
                },
                Err(note) => LeeBoundsView {
                    variant: variant.clone(),
                    trimmed: "variant",
                    trimmed_share: 0.0,
                    absolute: None,
                    relative: None,
                    note: Some(note),
                },
            }
        })
        .collect())
}

impl Attrition {
    /// What may be released of the attrition under `k`, given the pilot's
    /// `cells` (which suppressed its counts together with every other view's):
    /// the counts per variant as the cells say; a day of the series per
    /// variant only when its counts and their differences to the next day
    /// shown (or to the whole) are 0 or at least `k`; the balance test and
    /// the Lee bounds only when every variant's counts are released; the
    /// refusals per variant as parts of a total the eligibility report shows.
    ///
    /// A variant's Lee bounds also go when the released `report` withholds
    /// its outcome or the control's: the bounds and the counts would give
    /// the mean back.
    pub fn release(self, cells: &PilotCells, k: MinCell, report: &Report) -> AttritionView {
        let by_variant: BTreeMap<String, LossCounts> = self
            .by_variant
            .keys()
            .map(|variant| {
                let c = cells.variant(variant);
                let loss = LossCounts {
                    assigned: c.ever_assigned,
                    withdrawn: c.consent_withdrawn,
                    objected: c.objected,
                    erased: c.erased,
                    suppressed: false,
                };
                let suppressed = [loss.assigned, loss.withdrawn, loss.objected, loss.erased]
                    .iter()
                    .any(Option::is_none);
                (variant.clone(), LossCounts { suppressed, ..loss })
            })
            .collect();
        let every_count = by_variant.values().all(|c| !c.suppressed);
        let mut series: Vec<LossPoint> = self
            .series
            .iter()
            .map(|point| LossPoint {
                day: point.day.clone(),
                variants: BTreeMap::new(),
                suppressed: false,
            })
            .collect();
        for (variant, whole) in &self.by_variant {
            let released = by_variant.get(variant).cloned().unwrap_or_default();
            let after: Vec<After> = [
                (whole.assigned, released.assigned),
                (whole.withdrawn, released.withdrawn),
                (whole.objected, released.objected),
                (whole.erased, released.erased),
            ]
            .into_iter()
            .map(|(count, shown)| match shown {
                Some(_) => After::Released(count),
                None => After::Withheld(count),
            })
            .collect();
            let points: Vec<Vec<u64>> = self
                .series
                .iter()
                .map(|point| {
                    let c = point
                        .variants
                        .get(variant)
                        .map(|c| c.counts.clone())
                        .unwrap_or_default();
                    vec![c.assigned, c.withdrawn, c.objected, c.erased]
                })
                .collect();
            let shown = release_cumulative(&points, &after, k);
            for ((out, point), shown) in series.iter_mut().zip(&self.series).zip(shown) {
                let day: Option<CumulativeAttrition> = point.variants.get(variant).cloned();
                out.suppressed |= !shown;
                out.variants.insert(variant.clone(), day.filter(|_| shown));
            }
        }
        let refused: Vec<u64> = self.refusals.by_variant.values().copied().collect();
        // With a reason's total withheld, their sum would give it back.
        let (parts, _) = if self.refusals.reason_totals_released {
            release_parts(&refused, false, k)
        } else {
            (vec![None; refused.len()], None)
        };
        let refusals_shown = parts.iter().all(Option::is_some);
        let refusals = RefusalCheckView {
            by_variant: self
                .refusals
                .by_variant
                .keys()
                .cloned()
                .zip(parts)
                .collect(),
            independence: self.refusals.independence.filter(|_| refusals_shown),
            suppressed: !refusals_shown,
        };
        let suppressed = !every_count || series.iter().any(|p| p.suppressed) || refusals.suppressed;
        AttritionView {
            by_variant,
            imbalance: self.imbalance.filter(|_| every_count),
            series,
            lee_bounds: if every_count {
                let outcome_shown = |variant: &str| {
                    report
                        .variants
                        .iter()
                        .any(|v| v.variant == variant && !v.suppressed)
                };
                self.lee_bounds
                    .into_iter()
                    .filter(|b| outcome_shown(&b.variant) && outcome_shown(&report.control))
                    .collect()
            } else {
                Vec::new()
            },
            refusals,
            suppressed,
        }
    }
}
