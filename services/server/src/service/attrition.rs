//! A pilot's attrition as the results show it: the subjects each variant
//! lost (withdrawn, objected, erased), the balance test over them, the loss
//! day by day, and, when the variants kept different shares of their
//! subjects, the Lee bounds of the effect beside the estimate; and the
//! refused assignment calls per variant they would have had, tested
//! against the split (eligibility is decided before bucketing).

use std::collections::BTreeMap;

use pilotgate_analysis::attrition::{
    AttritionCounts, AttritionPoint, attrition_balance, attrition_series, refusal_independence,
};
use pilotgate_analysis::report::SrmReport;
use pilotgate_analysis::stats::{Arm, TrimGroup, lee_bounds};
use pilotgate_domain::experiment::Metric;
use pilotgate_store::{AttritionDay, Store};
use serde::Serialize;

use super::ServiceError;

/// Below this p-value of the attrition balance test the Lee bounds are computed.
pub const LEE_BOUNDS_P: f64 = 0.05;

/// The attrition of a pilot.
#[derive(Debug, Clone, Serialize)]
pub struct AttritionView {
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
    pub refusals: RefusalCheckView,
}

/// Whether refusals depend on the variant.
#[derive(Debug, Clone, Serialize)]
pub struct RefusalCheckView {
    pub by_variant: BTreeMap<String, u64>,
    /// The counts tested against the split (chi-square); `null` with no refusal.
    pub independence: Option<SrmReport>,
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
    pub window_micros: Option<i64>,
}

/// The attrition of the pilot, with the Lee bounds of `shown` (in the view)
/// and of `primary` (for the decision: per variant, the relative bounds).
pub async fn attrition(
    store: &Store,
    query: &AttritionQuery<'_>,
    shown: &Metric,
    primary: &Metric,
) -> Result<(AttritionView, Vec<(String, Option<[f64; 2]>)>), ServiceError> {
    // A purge keeps the attrition as it was; none can follow (the purged
    // pilot has no assignment left to withdraw or erase).
    let whole = query.purged_counts.is_none() || !query.purged_attrition.is_empty();
    let days = if query.purged_attrition.is_empty() {
        store.attrition_by_day(query.key).await?
    } else {
        query.purged_attrition.to_vec()
    };
    let mut by_variant: BTreeMap<String, AttritionCounts> = query
        .variants
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
    let series = match query.purged_counts {
        _ if whole => attrition_series(query.variants, &daily),
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
    let refusals = RefusalCheckView {
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
        AttritionView {
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
        None => Some(
            store
                .outcome_distribution(query.key, metric, query.window_micros)
                .await?,
        ),
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
