//! The scale-decision memo: one printable page a marketer hands to
//! management and a DPO signs off. It is made of the same view models as the
//! results page and the compliance view (so its numbers are theirs), plus the
//! audit chain's head when it was printed, to check it against the log later.

use askama::Template;

use crate::format::thousands;
use crate::layout::Chrome;
use crate::pages::{CompliancePage, ResultsPage};

/// The memo of one pilot.
#[derive(Debug, Clone, Template)]
#[template(path = "pages/memo.html")]
pub struct MemoPage {
    pub chrome: Chrome,
    /// The primary metric's results, as the results page shows them.
    pub results: ResultsPage,
    /// Eligibility, refusals, withdrawals, erasures and the approval record,
    /// as the compliance view shows them.
    pub compliance: CompliancePage,
    /// When the memo was made, e.g. `2026-12-03 10:12 UTC`.
    pub printed_at: String,
    /// The audit log's entries when the memo was made.
    pub audit_entries: u64,
    /// The last entry's hash then.
    pub audit_hash: String,
    /// The primary metric per value of each pre-registered segment.
    pub segment_tables: Vec<super::segments::SegmentTable>,
}

impl MemoPage {
    fn audit_entries_text(&self) -> String {
        thousands(self.audit_entries)
    }

    /// Refusals per `stage: reason`, over every day.
    fn refusal_totals(&self) -> Vec<(String, String)> {
        let matrix = &self.compliance.refusals;
        matrix
            .columns
            .iter()
            .cloned()
            .zip(matrix.total_cells())
            .collect()
    }
}
