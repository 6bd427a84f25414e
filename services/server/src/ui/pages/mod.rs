//! One handler file per page, as `dashboards/src/pages/`.

pub mod audit;
pub mod audit_summary;
pub mod compliance;
pub mod consents;
pub mod design;
pub mod experiments;
pub mod exports;
pub mod inventory;
pub mod lifecycle;
pub mod memo;
pub mod notices;
pub mod privacy;
pub mod purposes;
pub mod recipients;
pub mod results;
pub mod sign_in;
pub mod subjects;

use pilotgate_dashboards as view;

/// A pilot's state as the pages show it.
pub(super) fn state_of(state: pilotgate_domain::experiment::State) -> view::ExperimentState {
    use pilotgate_domain::experiment::State as S;
    match state {
        S::Draft => view::ExperimentState::Draft,
        S::Submitted => view::ExperimentState::Submitted,
        S::Approved => view::ExperimentState::Approved,
        S::Running => view::ExperimentState::Running,
        S::Stopped => view::ExperimentState::Stopped,
        S::Denied => view::ExperimentState::Denied,
    }
}

/// An instant as the pages show it.
pub(super) fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A pilot's plan as the pages show it.
pub(super) fn plan_summary(plan: &crate::service::plan::PlanView) -> view::PlanSummary {
    use crate::service::plan::TrafficSource;
    use pilotgate_dashboards::format::{percent, thousands};
    let mut ineligible: Vec<(String, view::Count)> = plan
        .eligible
        .ineligible
        .iter()
        .map(|(reason, n)| (reason.clone(), view::Count::released(*n)))
        .collect();
    // Most first; a withheld count (fewer than k) after the shown ones.
    ineligible.sort_by(|a, b| b.1.value().cmp(&a.1.value()).then_with(|| a.0.cmp(&b.0)));
    let traffic = match plan.traffic {
        TrafficSource::ObservedAssignments => {
            "the daily assignments observed since the pilot started".to_owned()
        }
        TrafficSource::ExpectedVisitors => format!(
            "{} expected visitors a day × {} eligible × the coverage",
            thousands(plan.daily_visitors.unwrap_or(0.0).round() as u64),
            percent(plan.eligible.share.unwrap_or(0.0)),
        ),
        TrafficSource::None => "none given: enter the expected visitors a day".to_owned(),
        TrafficSource::ShareWithheld => format!(
            "{} expected visitors a day, but the eligible share is withheld (fewer than {} people would be told apart), so the plan cannot use it",
            thousands(plan.daily_visitors.unwrap_or(0.0).round() as u64),
            plan.eligible.min_cell,
        ),
    };
    view::PlanSummary {
        known: view::Count::released(plan.eligible.known),
        eligible: view::Count::released(plan.eligible.eligible),
        ineligible,
        traffic,
        daily_enrolled: plan.daily_enrolled,
        needed_per_variant: plan.needed_per_variant.and_then(|n| u64::try_from(n).ok()),
        days_needed: plan.days_needed,
        detectable: plan
            .detectable
            .iter()
            .map(|d| (d.days, d.users_per_variant, d.relative_effect))
            .collect(),
    }
}
