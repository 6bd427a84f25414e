//! The consent-aware plan of a pilot, as the API answers it and the design
//! form and the pilot's page show it: the share of the purpose's known
//! subjects who are eligible now (and why the others are not), the users the
//! pilot enrols per day, the days needed to reach the planned sample size per
//! variant, and the smallest effect detectable after 7, 14 and 28 days.

use std::collections::BTreeMap;

use pilotgate_analysis::disclosure::{Figures, MinCell};
use pilotgate_analysis::plan::{PlanInput, plan};
use pilotgate_domain::experiment::Design;
use pilotgate_store::{Experiment, Store};
use serde::Serialize;

use super::ServiceError;

/// The purpose's known subjects at one instant under the eligibility rule.
/// A count is `null` when small-cell suppression withholds it (fewer than
/// `min_cell` people, or one such count could be recomputed from it), and
/// so is the share when either of its counts is.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EligibleShare {
    pub purpose: String,
    /// RFC 3339 instant the rule was applied at.
    pub at: String,
    /// Subjects with a ledger record for the purpose.
    pub known: Option<u64>,
    /// Of those, the ones eligible now.
    pub eligible: Option<u64>,
    /// `eligible / known`; null while no subject is known, or when withheld.
    pub share: Option<f64>,
    /// The others, per reason code.
    pub ineligible: BTreeMap<String, Option<u64>>,
    /// The minimum cell size `k`.
    pub min_cell: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

/// The smallest detectable effect after some days.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DetectableView {
    pub days: u32,
    /// Users of the smallest variant by then.
    pub users_per_variant: f64,
    /// Relative lift (0.05 = 5%); null without a baseline rate, or when none is detectable.
    pub relative_effect: Option<f64>,
}

/// Where the plan's daily traffic comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrafficSource {
    /// The expected daily visitors given, times the eligible share and the coverage.
    ExpectedVisitors,
    /// The daily assignments observed since the pilot started.
    ObservedAssignments,
    /// Neither: give the expected daily visitors.
    None,
    /// The expected daily visitors were given, but the eligible share is
    /// withheld (small-cell suppression), so they cannot be used.
    ShareWithheld,
}

/// A pilot's plan.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlanView {
    pub eligible: EligibleShare,
    pub traffic: TrafficSource,
    /// The expected daily visitors, when given.
    pub daily_visitors: Option<f64>,
    /// Users entering the pilot per day, all variants together.
    pub daily_enrolled: f64,
    /// Users per variant the design needs, when it can be computed.
    pub needed_per_variant: Option<i64>,
    /// Days until every variant has its planned users (unrounded).
    pub days_needed: Option<f64>,
    pub detectable: Vec<DetectableView>,
}

/// How the known subjects of `purpose` stand now, released under `k`: the
/// eligible, each reason's and all the ineligible subjects (a group too)
/// add up to the known ones.
pub async fn eligible_share(
    store: &Store,
    purpose: &str,
    k: MinCell,
) -> Result<EligibleShare, ServiceError> {
    let found = store.purpose(purpose).await?.ok_or_else(|| {
        ServiceError::Store(pilotgate_store::StoreError::NotFound(
            match pilotgate_domain::purpose::PurposeKey::parse(purpose) {
                Ok(key) => format!("no purpose has the key '{key}'"),
                Err(_) => "no purpose has that key".to_owned(),
            },
        ))
    })?;
    let at = store.now();
    let tally = store.purpose_eligibility(&found, at).await?;
    let mut figures = Figures::new();
    let eligible = figures.figure(tally.eligible);
    let reasons: Vec<usize> = tally
        .ineligible
        .values()
        .map(|n| figures.figure(*n))
        .collect();
    let ineligible = figures.total(&reasons);
    let known = figures.total(&[eligible, ineligible]);
    let suppressed = figures.suppress(k);
    let shown = |figure: usize| (!suppressed[figure]).then(|| figures.values()[figure]);
    let (known, eligible) = (shown(known), shown(eligible));
    Ok(EligibleShare {
        purpose: found.key.to_string(),
        at: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        known,
        eligible,
        share: match (eligible, known) {
            (Some(eligible), Some(known)) if known > 0 => Some(eligible as f64 / known as f64),
            _ => None,
        },
        ineligible: tally
            .ineligible
            .keys()
            .cloned()
            .zip(reasons.iter().map(|r| shown(*r)))
            .collect(),
        min_cell: k.get(),
        suppressed: suppressed.iter().any(|s| *s),
    })
}

/// The plan of `design` (needing `needed_per_variant` users per variant)
/// with `eligible` subjects, from `daily_visitors` or, when given,
/// `observed_daily` assignments.
pub fn plan_of(
    design: &Design,
    needed_per_variant: Option<i64>,
    eligible: EligibleShare,
    daily_visitors: Option<f64>,
    observed_daily: Option<f64>,
) -> Result<PlanView, ServiceError> {
    if let Some(visitors) = daily_visitors
        && !(visitors.is_finite() && visitors >= 0.0)
    {
        return Err(ServiceError::invalid(
            "daily_visitors",
            "must be a number of visitors, 0 or more",
        ));
    }
    let (traffic, daily_enrolled) = match (observed_daily, daily_visitors) {
        (Some(observed), _) => (TrafficSource::ObservedAssignments, observed),
        // Visitors times a withheld share would tell the share.
        (None, Some(_)) if eligible.known.is_some_and(|k| k > 0) && eligible.share.is_none() => {
            (TrafficSource::ShareWithheld, 0.0)
        }
        (None, Some(visitors)) => (
            TrafficSource::ExpectedVisitors,
            visitors * eligible.share.unwrap_or(0.0) * design.coverage,
        ),
        (None, None) => (TrafficSource::None, 0.0),
    };
    let total_weight: f64 = design.variants.iter().map(|v| v.weight).sum();
    let smallest = design
        .variants
        .iter()
        .map(|v| v.weight)
        .fold(f64::INFINITY, f64::min);
    let planned = plan(&PlanInput {
        needed_per_variant: needed_per_variant.map(|n| n as f64),
        daily_enrolled,
        smallest_share: if total_weight > 0.0 {
            smallest / total_weight
        } else {
            0.0
        },
        baseline: design.baseline_rate,
        alpha: design.alpha,
        power: design.power,
    })
    .map_err(|e| ServiceError::invalid("baseline_rate", e))?;
    Ok(PlanView {
        eligible,
        traffic,
        daily_visitors,
        daily_enrolled,
        needed_per_variant,
        days_needed: planned.days_needed,
        detectable: planned
            .detectable
            .into_iter()
            .map(|d| DetectableView {
                days: d.days,
                users_per_variant: d.users_per_variant,
                relative_effect: d.relative_effect,
            })
            .collect(),
    })
}

/// The plan of a stored pilot: from its observed daily assignments once it
/// has run for an hour with someone assigned (and small-cell suppression
/// releases its assigned total), else from `daily_visitors`.
pub async fn plan_for(
    store: &Store,
    experiment: &Experiment,
    daily_visitors: Option<f64>,
    k: MinCell,
) -> Result<PlanView, ServiceError> {
    let assigned = assigned_total(store, experiment.design.key.as_str()).await?;
    plan_with(store, experiment, daily_visitors, assigned, k).await
}

/// [`plan_for`] of a pilot that has `assigned` subjects so far (for a
/// caller that counted them already).
pub async fn plan_with(
    store: &Store,
    experiment: &Experiment,
    daily_visitors: Option<f64>,
    assigned: u64,
    k: MinCell,
) -> Result<PlanView, ServiceError> {
    let eligible = eligible_share(store, experiment.design.purpose.as_str(), k).await?;
    // The observed rate times the hours gives the assigned subjects back:
    // it is used only when the pilot's views release their total.
    let key = experiment.design.key.as_str();
    let total_released = super::disclosure::pilot_cells(store, key, k)
        .await?
        .assigned_total
        .is_some();
    let observed = experiment
        .started_at
        .filter(|_| total_released)
        .and_then(|started| {
            let until = experiment.stopped_at.unwrap_or_else(|| store.now());
            let hours = (until - started).num_seconds() as f64 / 3600.0;
            (hours >= 1.0 && assigned > 0).then(|| assigned as f64 / (hours / 24.0).max(1.0))
        });
    plan_of(
        &experiment.design,
        experiment.planned_sample_size,
        eligible,
        daily_visitors,
        observed,
    )
}

/// Subjects ever assigned to pilot `key`, withdrawn ones included.
pub async fn assigned_total(store: &Store, key: &str) -> Result<u64, ServiceError> {
    Ok(super::purge::assignment_counts(store, key)
        .await?
        .iter()
        .map(|(_, total, _)| *total)
        .sum())
}
