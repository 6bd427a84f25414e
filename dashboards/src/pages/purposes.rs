//! The purpose registry as compliance keeps it: the list with a form to
//! register a purpose, and one purpose's page with its rule, its history of
//! versions, its legitimate-interest assessments, and the forms that change,
//! assess and retire it. Other roles see the rule and the history only.

use askama::Template;

use crate::layout::Chrome;

/// The six legal bases of Art. 6(1), in the order the forms list them.
pub const BASES: [&str; 6] = [
    "consent",
    "contract",
    "legal_obligation",
    "vital_interest",
    "public_task",
    "legitimate_interest",
];

/// A purpose as a row of the list and the head of its page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposeSummary {
    pub key: String,
    pub href: String,
    pub description: String,
    pub allowed_bases: Vec<String>,
    pub min_notice_version: u32,
    pub retention_days: u32,
    pub version: u32,
    /// `LIA vN` while a positive assessment is in force.
    pub li_assessment: Option<String>,
    /// The day it was retired, if it was.
    pub retired_on: Option<String>,
    pub special_category: bool,
    pub contract_necessary: bool,
}

impl PurposeSummary {
    fn bases_text(&self) -> String {
        self.allowed_bases.join(", ")
    }

    /// The assessment's state when the purpose allows legitimate interest.
    fn assessment_text(&self) -> Option<String> {
        if !self
            .allowed_bases
            .iter()
            .any(|b| b == "legitimate_interest")
        {
            return None;
        }
        Some(match &self.li_assessment {
            Some(reference) => format!("{reference} (positive)"),
            None => "none positive: legitimate interest cannot be relied on".to_owned(),
        })
    }
}

/// The fields of the form that registers or changes a purpose.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PurposeFields {
    pub key: String,
    pub description: String,
    /// The bases ticked (by name).
    pub allowed_bases: Vec<String>,
    pub min_notice_version: u32,
    pub special_category: bool,
    pub contract_necessary: bool,
    pub retention_days: u32,
    /// The version the form was made from (a change made meanwhile is a 409).
    pub version: u32,
}

impl PurposeFields {
    fn allows(&self, basis: &str) -> bool {
        self.allowed_bases.iter().any(|b| b == basis)
    }

    fn bases(&self) -> [&'static str; 6] {
        BASES
    }
}

/// `/ui/purposes`: every purpose, and the form that registers one.
#[derive(Debug, Clone, Template)]
#[template(path = "pages/purposes.html")]
pub struct PurposesPage {
    pub chrome: Chrome,
    pub purposes: Vec<PurposeSummary>,
    /// Compliance: the registration form shows, prefilled with `form`.
    pub can_create: bool,
    pub form: PurposeFields,
    /// Where the registration form posts.
    pub create_action: String,
}

/// One version in a purpose's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposeVersionRow {
    pub version: u32,
    pub changed_on: String,
    pub changed_by: String,
    /// The rule of that version, in one line.
    pub rule: String,
    /// What the version changed and what followed, in one sentence.
    pub change: String,
}

/// One legitimate-interest assessment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssessmentRow {
    pub version: u32,
    pub outcome: String,
    pub reviewer: String,
    pub reviewed_on: String,
    pub purpose_test: String,
    pub necessity_test: String,
    pub interests: String,
    pub expectations: String,
    pub safeguards: String,
    pub recorded_by: String,
}

impl AssessmentRow {
    fn positive(&self) -> bool {
        self.outcome == "positive"
    }
}

/// `/ui/purposes/{key}`: one purpose, its history, assessments and forms.
#[derive(Debug, Clone, Template)]
#[template(path = "pages/purpose.html")]
pub struct PurposePage {
    pub chrome: Chrome,
    pub purpose: PurposeSummary,
    pub history: Vec<PurposeVersionRow>,
    /// `None` when the role may not read assessments.
    pub assessments: Option<Vec<AssessmentRow>>,
    /// Compliance, and the purpose is not retired: the forms show.
    pub can_edit: bool,
    pub form: PurposeFields,
    pub edit_action: String,
    pub assess_action: String,
    pub retire_action: String,
    /// Today, for the assessment form's date.
    pub today: String,
    pub list_href: String,
}
