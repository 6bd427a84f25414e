//! The compliance view of one experiment: design, approvals, eligibility,
//! refusals, withdrawals, erasures and the audit trail, plus the approve and
//! deny forms for those who may decide.

use askama::Template;

use crate::charts::{Bar, StackedColumn, Svg, bar_chart, stacked_columns};
use crate::format::{percent, thousands, trimmed};
use crate::layout::Chrome;
use crate::urls;
use crate::view::{Badge, Count, CountMatrix, ExperimentState, Tone};

/// What the DPO needs to judge one experiment.
#[derive(Debug, Clone, Template)]
#[template(path = "pages/compliance.html")]
pub struct CompliancePage {
    /// The frame.
    pub chrome: Chrome,
    /// The experiment's key, used for links and form targets.
    pub experiment_key: String,
    /// The experiment's human name.
    pub experiment_name: String,
    /// Its lifecycle state.
    pub state: ExperimentState,
    /// The design version shown; the approve and deny forms name it.
    pub design_version: i64,
    /// The pre-registered design.
    pub design: DesignSummary,
    /// Approval decisions, newest first; empty when none was taken.
    pub approvals: Vec<ApprovalRecord>,
    /// Assigned subjects per variant, basis and notice version.
    pub eligibility: Vec<EligibilityRow>,
    /// Assigned subjects over every variant.
    pub assigned_total: Count,
    /// Refused assignments: one row per day, one column per reason code.
    pub refusals: CountMatrix,
    /// Withdrawn or objecting subjects per variant.
    pub withdrawals: Vec<VariantCount>,
    /// Subjects erased on request.
    pub erasures: Count,
    /// The experiment's audit entries, newest first.
    pub audit_trail: Vec<AuditTrailEntry>,
    /// Exports taken on the host without an approved request (break-glass), newest first.
    pub break_glass: Vec<AuditTrailEntry>,
    /// The experiment's export requests, newest first.
    pub exports: Vec<ExportRow>,
    /// Whether the signed-in user may approve or deny (compliance role, none
    /// of the design's creator, editors or submitters, experiment submitted).
    /// The server decides.
    pub can_decide: bool,
    /// The risk checklist: each measure the data inventory requires of the
    /// design's categories, met or not, with the evidence.
    pub checklist: Vec<ChecklistRow>,
    /// The retention purge: when the pilot's raw data goes (or went).
    pub next_purge: String,
    /// What the retention purge deleted of this pilot so far.
    pub purged_so_far: String,
}

/// One required measure of one data category, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecklistRow {
    /// The category's key, e.g. `behavioural`.
    pub category: String,
    /// The measure, e.g. `retention_ceiling`.
    pub measure: String,
    pub met: bool,
    /// Why, e.g. "retention 90 days ≤ ceiling 180".
    pub evidence: String,
}

impl ChecklistRow {
    pub(crate) fn badge(&self) -> Badge {
        if self.met {
            Badge::new("met", Tone::Positive)
        } else {
            Badge::new("not met", Tone::Negative)
        }
    }

    /// The measure in words.
    pub(crate) fn measure_text(&self) -> String {
        self.measure.replace('_', " ")
    }
}

/// The design of an experiment as registered.
#[derive(Debug, Clone, PartialEq)]
pub struct DesignSummary {
    /// The purpose, e.g. `personalize.content.profiling`.
    pub purpose: String,
    /// The hypothesis in the owner's words.
    pub hypothesis: String,
    /// The primary metric's event name.
    pub primary_metric: String,
    /// The guardrail metrics' event names.
    pub guardrails: Vec<String>,
    /// Categories of personal data used, e.g. `browsing_history`.
    pub data_categories: Vec<String>,
    /// How long raw events are kept after the experiment stops.
    pub retention_days: u32,
    /// The variants and their weights, the control first.
    pub variants: Vec<VariantWeight>,
    /// The share of eligible traffic in the experiment, in (0, 1].
    pub coverage: f64,
    /// The relative minimum detectable effect.
    pub mde: f64,
    /// The significance level.
    pub alpha: f64,
    /// The power.
    pub power: f64,
    /// The planned sample size over all variants, when computed.
    pub planned_users: Option<u64>,
    /// The purpose's version in force and the bases it allows.
    pub purpose_version: u32,
    pub allowed_bases: Vec<String>,
    /// The newest legitimate-interest assessment of the purpose, when it
    /// allows that basis (`None` then means none was recorded).
    pub li_assessment: Option<crate::pages::AssessmentRow>,
    /// Whether the purpose allows `legitimate_interest`.
    pub allows_legitimate_interest: bool,
}

/// A variant and its weight (weights need not add up to one).
#[derive(Debug, Clone, PartialEq)]
pub struct VariantWeight {
    /// The variant's key.
    pub key: String,
    /// Its weight.
    pub weight: f64,
}

/// Approved or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalDecision {
    /// The experiment may start.
    Approved,
    /// The experiment may not start.
    Denied,
}

impl ApprovalDecision {
    /// The decision as a badge.
    pub(crate) fn badge(self) -> Badge {
        match self {
            ApprovalDecision::Approved => Badge::new("approved", Tone::Positive),
            ApprovalDecision::Denied => Badge::new("denied", Tone::Negative),
        }
    }
}

/// One approval decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRecord {
    /// The decider's display name.
    pub by: String,
    /// When, already formatted for people.
    pub at: String,
    /// What was decided.
    pub decision: ApprovalDecision,
    /// The decider's comment.
    pub comment: String,
}

/// Assigned subjects of one variant under one basis and notice version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EligibilityRow {
    /// The variant's key.
    pub variant: String,
    /// The legal basis, e.g. `consent`.
    pub basis: String,
    /// The notice version consent was given under; `None` for bases
    /// without a notice (contract, legitimate interest).
    pub notice_version: Option<u32>,
    /// How many subjects.
    pub subjects: Count,
}

impl EligibilityRow {
    /// The notice version for people, a dash when there is none.
    pub(crate) fn notice_text(&self) -> String {
        self.notice_version
            .map(|version| format!("v{version}"))
            .unwrap_or_else(|| "\u{2014}".to_owned())
    }

    pub(crate) fn subjects_text(&self) -> String {
        self.subjects.text()
    }
}

/// A count for one variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantCount {
    /// The variant's key.
    pub variant: String,
    /// The count.
    pub count: Count,
}

impl VariantCount {
    pub(crate) fn count_text(&self) -> String {
        self.count.text()
    }
}

/// One audit entry about this experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditTrailEntry {
    /// When, already formatted for people.
    pub at: String,
    /// The actor's display name.
    pub actor: String,
    /// The action, e.g. `experiment.approve`.
    pub action: String,
    /// A one-line summary of the details.
    pub summary: String,
}

/// A variant with its share of traffic, ready for the template.
#[derive(Debug)]
struct ShareView {
    key: String,
    share: String,
}

/// One export request of the experiment, as the compliance view lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    /// The request's id (for its forms' targets).
    pub id: String,
    pub recipient: String,
    pub format: String,
    pub requested_by: String,
    pub reason: String,
    /// pending, approved or denied.
    pub state: String,
    /// e.g. `1 of 3`.
    pub downloads: String,
    /// The approve and deny forms' targets, for a pending request and a
    /// role that may decide on it.
    pub decide: Option<ExportDecision>,
}

/// The targets of the approve and deny forms of one export request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportDecision {
    pub approve_action: String,
    pub deny_action: String,
}

impl CompliancePage {
    /// The checklist's unmet lines.
    pub(crate) fn unmet(&self) -> Vec<&ChecklistRow> {
        self.checklist.iter().filter(|row| !row.met).collect()
    }

    fn all_met_badge(&self) -> Badge {
        Badge::new("all met", Tone::Positive)
    }

    fn csv_href(&self) -> String {
        urls::compliance_csv(&self.experiment_key)
    }

    fn results_href(&self) -> String {
        urls::results(&self.experiment_key)
    }

    fn approve_action(&self) -> String {
        urls::approve(&self.experiment_key)
    }

    fn deny_action(&self) -> String {
        urls::deny(&self.experiment_key)
    }

    fn variant_shares(&self) -> Vec<ShareView> {
        let total: f64 = self
            .design
            .variants
            .iter()
            .map(|variant| variant.weight)
            .filter(|weight| weight.is_finite() && *weight > 0.0)
            .sum();
        self.design
            .variants
            .iter()
            .map(|variant| ShareView {
                key: variant.key.clone(),
                share: if total > 0.0 {
                    percent(variant.weight / total)
                } else {
                    "n/a".to_owned()
                },
            })
            .collect()
    }

    fn coverage_text(&self) -> String {
        percent(self.design.coverage)
    }

    fn mde_text(&self) -> String {
        percent(self.design.mde)
    }

    fn alpha_text(&self) -> String {
        trimmed(self.design.alpha, 4)
    }

    fn power_text(&self) -> String {
        percent(self.design.power)
    }

    fn planned_text(&self) -> String {
        self.design
            .planned_users
            .map(thousands)
            .unwrap_or_else(|| "not computed".to_owned())
    }

    fn list_or_none(items: &[String]) -> String {
        if items.is_empty() {
            "none".to_owned()
        } else {
            items.join(", ")
        }
    }

    fn guardrails_text(&self) -> String {
        Self::list_or_none(&self.design.guardrails)
    }

    fn categories_text(&self) -> String {
        Self::list_or_none(&self.design.data_categories)
    }

    pub(crate) fn eligible_total(&self) -> String {
        self.assigned_total.text()
    }

    pub(crate) fn erasures_text(&self) -> String {
        self.erasures.text()
    }

    fn refusals_svg(&self) -> Svg {
        let bars: Vec<Bar> = self
            .refusals
            .columns
            .iter()
            .zip(self.refusals.released_column_totals())
            .map(|(reason, value)| Bar {
                label: reason.clone(),
                value,
            })
            .collect();
        bar_chart(&bars, "Refused assignments per reason, all days")
    }

    fn refusals_over_time_svg(&self) -> Svg {
        let columns: Vec<StackedColumn> = self
            .refusals
            .rows
            .iter()
            .enumerate()
            .map(|(index, row)| StackedColumn {
                label: row.label.clone(),
                values: (0..self.refusals.columns.len())
                    .map(|column| self.refusals.released_count(index, column))
                    .collect(),
            })
            .collect();
        stacked_columns(
            &self.refusals.columns,
            &columns,
            "Refused assignments per day, stacked by reason",
        )
    }
}
