//! The audit log: the hash chain's status and a page of entries.

use askama::Template;

use crate::format::thousands;
use crate::layout::Chrome;
use crate::urls;
use crate::view::{Badge, Tone};

/// One page of the audit log.
#[derive(Debug, Clone, Template)]
#[template(path = "pages/audit.html")]
pub struct AuditPage {
    /// The frame.
    pub chrome: Chrome,
    /// The result of verifying the whole chain.
    pub chain: ChainStatus,
    /// The entries on this page, newest first.
    pub entries: Vec<AuditRow>,
    /// When older entries exist: the id to page before (`?before=ID`).
    pub older_before: Option<u64>,
    /// When newer entries exist: the id to page after (`?after=ID`).
    pub newer_after: Option<u64>,
}

/// What verifying the hash chain found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainStatus {
    /// Every entry's hash matches.
    Valid {
        /// How many entries were checked.
        entries: u64,
    },
    /// An entry was edited, inserted or removed.
    Broken {
        /// The first entry whose hash does not match.
        first_bad_id: u64,
    },
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// The entry's id.
    pub id: u64,
    /// When, already formatted for people.
    pub at: String,
    /// The actor's display name.
    pub actor: String,
    /// The action, e.g. `consent.record`.
    pub action: String,
    /// The target as recorded, e.g. `experiment:checkout-cta`.
    pub target: String,
    /// The entry's SHA-256 hash in hex.
    pub hash: String,
}

impl AuditRow {
    /// The first twelve characters of the hash.
    fn short_hash(&self) -> &str {
        self.hash.get(..12).unwrap_or(&self.hash)
    }
}

impl AuditPage {
    fn chain_badge(&self) -> Badge {
        match self.chain {
            ChainStatus::Valid { .. } => Badge::new("chain valid", Tone::Active),
            ChainStatus::Broken { .. } => Badge::new("chain broken", Tone::Negative),
        }
    }

    fn chain_text(&self) -> String {
        match self.chain {
            ChainStatus::Valid { entries: 1 } => "The hash chain is valid with 1 entry.".to_owned(),
            ChainStatus::Valid { entries } => {
                format!(
                    "The hash chain is valid with {} entries.",
                    thousands(entries)
                )
            }
            ChainStatus::Broken { first_bad_id } => format!(
                "The hash chain is broken at entry {first_bad_id}: it or an entry before it was edited, inserted or removed."
            ),
        }
    }

    fn chain_tone(&self) -> Tone {
        self.chain_badge().tone
    }

    fn older_href(&self) -> Option<String> {
        self.older_before
            .map(|id| format!("{}?before={id}", urls::AUDIT))
    }

    fn newer_href(&self) -> Option<String> {
        self.newer_after
            .map(|id| format!("{}?after={id}", urls::AUDIT))
    }
}
