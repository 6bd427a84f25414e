//! The top of a pilot's page: its design in brief, the decision of
//! compliance with its comment, the lifecycle buttons the signed-in person
//! may use now, the consent-aware plan, and why there are no results yet.

use crate::pages::design::PlanSummary;

/// What the pilot's page shows above its results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PilotPanel {
    pub owner: String,
    pub hypothesis: String,
    pub purpose: String,
    pub design_version: i64,
    /// The actions this person may take in the pilot's state, as links to
    /// their confirmation pages (or to the edit form).
    pub actions: Vec<PilotAction>,
    /// The decision of compliance in force, when there is one.
    pub decision: Option<DecisionNote>,
    /// Why a change of the pilot's purpose sent it back to draft, with the
    /// day; shown until it is submitted again.
    pub returned: Option<String>,
    /// The plan, when it could be made.
    pub plan: Option<PlanSummary>,
    /// Whether the page offers the expected-visitors field of the plan (a
    /// pilot that has not run yet), and its value.
    pub plan_form: bool,
    pub daily_visitors: String,
    /// The compliance view, when this role may open it.
    pub compliance_href: Option<String>,
    /// Why there are no results to show yet, in a sentence; `None` when the
    /// results below are shown.
    pub empty: Option<String>,
    /// The pilot's governed exports, when this role may list them.
    pub exports: Option<PilotExports>,
}

/// The export requests of a pilot and, for a role that may ask for one,
/// the request form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PilotExports {
    /// The request form's target; `None` when this role may not ask.
    pub request_action: Option<String>,
    /// The recipients that may receive the pilot's purpose (contract in force).
    pub recipients: Vec<String>,
    /// The formats one may ask for.
    pub formats: Vec<String>,
    /// The requests, newest first.
    pub rows: Vec<PilotExportRow>,
}

/// One export request as the pilot's page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PilotExportRow {
    pub recipient: String,
    pub format: String,
    pub requested_by: String,
    pub reason: String,
    /// pending, approved or denied.
    pub state: String,
    /// e.g. `1 of 3`.
    pub downloads: String,
    /// The download link, for the requester of an approved, unexpired
    /// export with downloads left.
    pub download_href: Option<String>,
}

/// One lifecycle button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PilotAction {
    pub label: String,
    pub href: String,
}

/// Compliance's decision on a design version, as the marketer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionNote {
    pub approved: bool,
    pub by: String,
    pub at: String,
    pub comment: String,
    pub design_version: i64,
}

impl DecisionNote {
    pub(crate) fn heading(&self) -> String {
        format!(
            "{} by {} on {} (design version {})",
            if self.approved { "Approved" } else { "Denied" },
            self.by,
            self.at,
            self.design_version
        )
    }

    pub(crate) fn tone(&self) -> &'static str {
        if self.approved {
            "tone-positive"
        } else {
            "tone-negative"
        }
    }
}
