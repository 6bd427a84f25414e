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
    /// The filters in force; the paging links keep them.
    pub filter: AuditFilterFields,
}

/// The audit page's filters, as entered (empty: no filter). Actors are
/// token names, actions codes and targets `experiment:key` or
/// `subject:<pseudonym>`: none is personal data, so they may sit in a URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilterFields {
    /// A token's name, or the actor as recorded.
    pub actor: String,
    /// An action, e.g. `experiment.approve`.
    pub action: String,
    /// A target, e.g. `experiment:checkout-cta`.
    pub target: String,
}

impl AuditFilterFields {
    /// Whether any filter is set.
    pub fn any(&self) -> bool {
        !(self.actor.is_empty() && self.action.is_empty() && self.target.is_empty())
    }

    /// `&actor=…&action=…&target=…` for the filters set, percent-encoded.
    fn query(&self) -> String {
        [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
        ]
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("&{name}={}", urls::encode_component(value)))
        .collect()
    }
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
    /// What happened, in a sentence, e.g. "approved pilot checkout-v2 (design version 3): 'ok'".
    pub summary: String,
    /// The entry's details as recorded (JSON, indented), behind the summary.
    pub details: String,
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
            .map(|id| format!("{}?before={id}{}", urls::AUDIT, self.filter.query()))
    }

    fn newer_href(&self) -> Option<String> {
        self.newer_after
            .map(|id| format!("{}?after={id}{}", urls::AUDIT, self.filter.query()))
    }

    fn audit_href(&self) -> &'static str {
        urls::AUDIT
    }
}
