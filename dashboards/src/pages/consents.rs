//! The consent overview: per purpose, the allowed bases, the records per
//! basis and status, and how many subjects need to consent again.

use askama::Template;

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

    fn caption(&self) -> String {
        format!("Subjects per basis and status for {}", self.purpose)
    }
}
