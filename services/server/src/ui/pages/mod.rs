//! One handler file per page, as `dashboards/src/pages/`.

pub mod audit;
pub mod compliance;
pub mod consents;
pub mod experiments;
pub mod results;
pub mod sign_in;

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
