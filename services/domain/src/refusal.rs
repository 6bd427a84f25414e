//! Why an assignment call or an event was refused: the codes of the API's
//! answers and of the per-pilot refusal counters, in one enum.

use std::fmt;

use crate::eligibility::Reason;

/// Where a refusal happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// `POST /api/v1/assign`.
    Assign,
    /// `POST /api/v1/events`.
    Event,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Assign => "assign",
            Stage::Event => "event",
        }
    }
}

/// One refusal reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Refusal {
    /// The subject may not be used for the pilot's purpose (the rule's
    /// reason; events of a withdrawn assignment carry `withdrawn` or
    /// `objected`, see `eligibility::withdrawn_assignment_reason`).
    Ineligible(Reason),
    /// The pilot is not running.
    NotRunning,
    /// Eligible, but outside the pilot's coverage.
    NotInTraffic,
    /// The event's subject holds no assignment in a running pilot.
    NoAssignment,
    /// No running pilot of the subject measures the event's name.
    NotAMetric,
    /// The event happened before the subject's assignment.
    BeforeAssignment,
    /// The event itself is malformed.
    Invalid,
    /// The pilot's purpose is retired: it takes nobody new.
    PurposeRetired,
}

impl Refusal {
    /// The snake_case code of the API and the counters.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Ineligible(reason) => reason.as_str(),
            Refusal::NotRunning => "not_running",
            Refusal::NotInTraffic => "not_in_traffic",
            Refusal::NoAssignment => "no_assignment",
            Refusal::NotAMetric => "not_a_metric",
            Refusal::BeforeAssignment => "before_assignment",
            Refusal::Invalid => "invalid",
            Refusal::PurposeRetired => "purpose_retired",
        }
    }

    /// The code an assignment answer gives its caller: `not_eligible` for
    /// any ineligible subject (which rule refused stays with the counters
    /// and the compliance view, not the client), else `as_str`.
    pub fn assign_answer(self) -> &'static str {
        match self {
            Refusal::Ineligible(_) => "not_eligible",
            other => other.as_str(),
        }
    }

    /// The refusal of `code`, if it is one.
    pub fn parse(code: &str) -> Option<Refusal> {
        const OTHERS: [Refusal; 7] = [
            Refusal::NotRunning,
            Refusal::NotInTraffic,
            Refusal::NoAssignment,
            Refusal::NotAMetric,
            Refusal::BeforeAssignment,
            Refusal::Invalid,
            Refusal::PurposeRetired,
        ];
        Reason::ALL
            .into_iter()
            .map(Refusal::Ineligible)
            .chain(OTHERS)
            .find(|r| r.as_str() == code)
    }
}

impl serde::Serialize for Refusal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_as_its_refusal() {
        let all: Vec<Refusal> = Reason::ALL
            .into_iter()
            .map(Refusal::Ineligible)
            .chain([
                Refusal::NotRunning,
                Refusal::NotInTraffic,
                Refusal::NoAssignment,
                Refusal::NotAMetric,
                Refusal::BeforeAssignment,
                Refusal::Invalid,
                Refusal::PurposeRetired,
            ])
            .collect();
        let codes: std::collections::HashSet<&str> = all.iter().map(|r| r.as_str()).collect();
        assert_eq!(codes.len(), all.len(), "codes are distinct");
        for refusal in all {
            assert_eq!(Refusal::parse(refusal.as_str()), Some(refusal));
        }
        assert_eq!(Refusal::parse("nonsense"), None);
        assert_eq!(Stage::Event.as_str(), "event");
    }

    #[test]
    fn an_assignment_answer_never_says_which_rule_refused() {
        for reason in Reason::ALL {
            assert_eq!(Refusal::Ineligible(reason).assign_answer(), "not_eligible");
        }
        assert_eq!(Refusal::NotInTraffic.assign_answer(), "not_in_traffic");
        assert_eq!(Refusal::NotRunning.assign_answer(), "not_running");
    }
}
