//! The consent overview: per purpose, the allowed bases, the records per
//! basis and status, and how many subjects need to consent again.

use askama::Template;

use crate::charts::{StackedColumn, Svg, stacked_columns};
use crate::layout::Chrome;
use crate::view::{Badge, Count, CountMatrix, SUPPRESSED, Tone};

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
    pub expired: Count,
    /// People whose consent in force was given under a notice below the minimum.
    pub stale_notice: Count,
    /// Eligibility checks that answered "ask again".
    pub asked: Count,
    /// Privacy links those checks issued.
    pub links_issued: Count,
    /// Consents granted again after a lapsed one, by any channel.
    pub came_back: Count,
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
    pub stale_notice: Count,
    /// Subjects whose consent has expired.
    pub expired: Count,
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
        // A withheld count is of some people, fewer than k.
        [self.stale_notice, self.expired]
            .iter()
            .any(|c| c.value() != Some(0))
    }

    fn reconsent_badge(&self) -> Badge {
        Badge::new("action needed", Tone::Warning)
    }

    fn stale_text(&self) -> String {
        self.stale_notice.text()
    }

    fn expired_text(&self) -> String {
        self.expired.text()
    }

    /// The sum over the days, withheld when a day's count is (it would
    /// give that day's count away).
    fn total(&self, of: impl Fn(&ReconsentRow) -> Count) -> String {
        let days: Option<Vec<u64>> = self.reconsent.iter().map(|r| of(r).value()).collect();
        Count::released(days.map(|d| d.iter().sum())).text()
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

    /// One column per day; a withheld count is drawn as nothing and the
    /// day's label says so.
    fn columns(&self, of: impl Fn(&ReconsentRow) -> Vec<Count>) -> Vec<StackedColumn> {
        self.reconsent
            .iter()
            .map(|row| {
                let counts = of(row);
                let withheld = counts.iter().any(|c| c.value().is_none());
                StackedColumn {
                    label: if withheld {
                        format!("{} ({SUPPRESSED})", row.day)
                    } else {
                        row.day.clone()
                    },
                    values: counts.iter().map(|c| c.value().unwrap_or(0)).collect(),
                }
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
