//! One view model per page. Each derives `askama::Template`; the server fills
//! the public fields from its own types and calls `render()`.
//!
//! View models carry names, counts and statistics only: they have no field
//! for a raw user id, a pseudonym, an API token or a key. The one exception
//! is the subject-rights desk (`subjects`), which shows compliance the
//! pseudonyms of the one person asked about (never the raw id).

mod audit;
mod compliance;
mod confirm;
mod consents;
mod design;
mod error;
mod experiments;
mod inventory;
mod memo;
mod notices;
mod pilot;
mod privacy;
mod purposes;
mod recipients;
mod results;
mod segments;
mod sign_in;
mod subjects;

pub use audit::{AuditFilterFields, AuditPage, AuditRow, ChainStatus};
pub use compliance::ChecklistRow;
pub use compliance::ExportDecision;
pub use compliance::ExportRow;
pub use compliance::{
    ApprovalDecision, ApprovalRecord, AuditTrailEntry, CompliancePage, DesignSummary,
    EligibilityRow, VariantCount, VariantWeight,
};
pub use confirm::ConfirmPage;
pub use consents::{ConsentsPage, PurposeConsents, ReconsentRow};
pub use design::CategoryOption;
pub use design::SegmentOption;
pub use design::{DesignFields, DesignPage, PlanSummary, PurposeOption};
pub use error::ErrorPage;
pub use experiments::{Approval, ExperimentRow, ExperimentsPage};
pub use inventory::{CategoryRow, InventoryPage, SENSITIVITY_CLASSES};
pub use memo::MemoPage;
pub use notices::{
    LanguageFields, NoticeForm, NoticeRow, NoticeVersionRow, NoticesPage, PurposeChoice,
    TemplateLink, language_name,
};
pub use pilot::{DecisionNote, PilotAction, PilotExportRow, PilotExports, PilotPanel};
pub use privacy::{ChoiceLimit, LanguageLink, PrivacyChoice, PrivacyPage, SavedNote, current_text};
pub use purposes::{
    AssessmentRow, BASES, PurposeFields, PurposePage, PurposeSummary, PurposeVersionRow,
    PurposesPage,
};
pub use recipients::{RecipientFields, RecipientRow, RecipientsPage};
pub use results::{
    Attrition, AttritionRow, BalanceCheck, Decision, GuardrailStatus, GuardrailSummary, LeeRow,
    Method, MetricKind, MetricOption, PowerProgress, ResultsPage, Significance, UpliftSeries,
    VariantResult,
};
pub use segments::{SegmentRow, SegmentTable};
pub use sign_in::SignInPage;
pub use subjects::{
    AssignmentRow, ErasureRow, EventCountRow, LedgerRow, PersonView, PseudonymRow, PurposeHistory,
    PurposeStateRow, ReceiptRow, SubjectErasePage, SubjectReceiptPage, SubjectsPage,
};

/// One `<option>` of a `<select>`, ready for the template.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// A labelled progress value, ready for the template: `percent` feeds a
/// `<progress max="100">` and `text` says the same in words.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Progress {
    pub(crate) percent: String,
    pub(crate) text: String,
}

impl Progress {
    /// Progress of `done` towards `planned`, e.g. "12,345 of 20,000 (61.7%)".
    /// Without a plan (zero or unknown) it shows the count alone.
    fn new(done: u64, planned: Option<u64>) -> Option<Self> {
        use crate::format::{percent, thousands};
        let planned = planned.filter(|p| *p > 0)?;
        let share = done as f64 / planned as f64;
        Some(Self {
            percent: format!("{:.1}", (share * 100.0).min(100.0)),
            text: format!(
                "{} of {} ({})",
                thousands(done),
                thousands(planned),
                percent(share)
            ),
        })
    }
}
