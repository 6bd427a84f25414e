//! The consent overview: per purpose, the allowed bases, the records per
//! basis and status, and how many subjects need to consent again.

use askama::Template;

use crate::charts::{StackedColumn, Svg, stacked_columns};
use crate::format::thousands;
use crate::layout::Chrome;
use crate::view::{Badge, CountMatrix, Tone};

/// The legal-basis map for every purpose.
#[derive(Debug, Clone, Template)]
#[template(path = "pages/consents.html")]
pub struct ConsentsPage {
    /// The frame.
    pub chrome: Chrome,
    /// One section per purpose.
    pub purposes: Vec<PurposeConsents>,
    /// The days the re-consent charts cover.
    pub reconsent_days: u32,
    /// The re-consent report as CSV.
    pub reconsent_csv: String,
}

/// One purpose on one day of the re-consent report: counts only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconsentRow {
    /// The purpose key.
    pub purpose: String,
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// People whose consent in force had expired at the end of the day.
    pub expired: u64,
    /// People whose consent in force was given under a notice below the minimum.
    pub stale_notice: u64,
    /// Eligibility checks that answered "ask again".
    pub asked: u64,
    /// Privacy links those checks issued.
    pub links_issued: u64,
    /// Consents granted again after a lapsed one, by any channel.
    pub came_back: u64,
}

/// The consent picture of one purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposeConsents {
    /// The purpose key, e.g. `personalize.content.profiling`.
    pub purpose: String,
    /// The legal bases the purpose allows.
    pub allowed_bases: Vec<String>,
    /// The minimum notice version a consent must have been given under.
    pub min_notice_version: u32,
    /// Subjects by current record: one row per basis, one column per status
    /// (granted, withdrawn, objected, expired, ...).
    pub counts: CountMatrix,
    /// Subjects whose consent was given under a notice below the minimum.
    pub stale_notice: u64,
    /// Subjects whose consent has expired.
    pub expired: u64,
    /// The re-consent report of this purpose, one row per day, oldest first.
    pub reconsent: Vec<ReconsentRow>,
}

impl PurposeConsents {
    fn bases_text(&self) -> String {
        if self.allowed_bases.is_empty() {
            "none".to_owned()
        } else {
            self.allowed_bases.join(", ")
        }
    }

    fn needs_reconsent(&self) -> bool {
        self.stale_notice > 0 || self.expired > 0
    }

    fn reconsent_badge(&self) -> Badge {
        Badge::new("action needed", Tone::Warning)
    }

    fn stale_text(&self) -> String {
        thousands(self.stale_notice)
    }

    fn expired_text(&self) -> String {
        thousands(self.expired)
    }

    fn total(&self, of: impl Fn(&ReconsentRow) -> u64) -> String {
        thousands(self.reconsent.iter().map(of).sum())
    }

    fn asked_text(&self) -> String {
        self.total(|r| r.asked)
    }

    fn links_text(&self) -> String {
        self.total(|r| r.links_issued)
    }

    fn came_back_text(&self) -> String {
        self.total(|r| r.came_back)
    }

    fn columns(&self, of: impl Fn(&ReconsentRow) -> Vec<u64>) -> Vec<StackedColumn> {
        self.reconsent
            .iter()
            .map(|row| StackedColumn {
                label: row.day.clone(),
                values: of(row),
            })
            .collect()
    }

    /// People needing re-consent per day, stacked: expired, stale notice.
    fn need_svg(&self) -> Svg {
        stacked_columns(
            &["expired".to_owned(), "stale notice".to_owned()],
            &self.columns(|r| vec![r.expired, r.stale_notice]),
            &format!("People needing re-consent per day for {}", self.purpose),
        )
    }

    /// Asks and consents that came back per day, stacked.
    fn asks_svg(&self) -> Svg {
        stacked_columns(
            &["asked".to_owned(), "came back".to_owned()],
            &self.columns(|r| vec![r.asked, r.came_back]),
            &format!(
                "Asks and consents that came back per day for {} (stacked)",
                self.purpose
            ),
        )
    }

    fn caption(&self) -> String {
        format!("Subjects per basis and status for {}", self.purpose)
    }
}
