//! The subject-rights desk (compliance): a form that takes a person's raw id
//! in a POST body, the person's page (pseudonyms per key version, ledger
//! history per purpose, the state in force and eligibility per purpose,
//! every assignment with its legal proof, event counts per pilot), the
//! confirmation before an erasure and its receipt.
//!
//! Unlike the other pages, these show pseudonyms: the desk exists to answer
//! for one person. They never hold the raw id: no field of these view
//! models can, and the lookup form's input is never filled in.

use askama::Template;

use crate::format::thousands;
use crate::layout::Chrome;
use crate::urls;
use crate::view::{Badge, Tone};

/// The desk: the lookup form, and the person found by the last lookup.
#[derive(Debug, Clone, Template)]
#[template(path = "pages/subjects.html")]
pub struct SubjectsPage {
    pub chrome: Chrome,
    /// The person the form's POST looked up; `None` on the empty form.
    pub person: Option<PersonView>,
}

/// Everything held about one person, across key versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonView {
    /// The person's pseudonym under the current key: what the download and
    /// erase forms send back (the raw id is never put in the page).
    pub subject: String,
    pub key_version: u32,
    /// When the lookup was made, formatted for people.
    pub looked_up_at: String,
    /// Every pseudonym of the person covered, the current one first.
    pub pseudonyms: Vec<PseudonymRow>,
    /// Whether any pseudonym of the person was erased.
    pub erased: bool,
    /// Per purpose: the record in force and whether the person may be used.
    pub current: Vec<PurposeStateRow>,
    /// Per purpose: every ledger record, oldest first.
    pub ledger: Vec<PurposeHistory>,
    /// Every assignment with its proof, across key versions.
    pub assignments: Vec<AssignmentRow>,
    /// Events per pilot and key version (counts only).
    pub events: Vec<EventCountRow>,
    /// The erasures of the person's pseudonyms.
    pub erasures: Vec<ErasureRow>,
}

/// A pseudonym and the key version that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PseudonymRow {
    pub subject: String,
    pub key_version: u32,
}

/// The state in force for one purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposeStateRow {
    pub purpose: String,
    /// `consent: granted`, or "no record in force".
    pub in_force: String,
    pub eligible: bool,
    /// The reason code when not eligible, e.g. `withdrawn`.
    pub reason: String,
}

impl PurposeStateRow {
    fn badge(&self) -> Badge {
        if self.eligible {
            Badge::new("eligible", Tone::Active)
        } else {
            Badge::new("not eligible", Tone::Negative)
        }
    }
}

/// The ledger of one purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposeHistory {
    pub purpose: String,
    pub records: Vec<LedgerRow>,
}

/// One ledger record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    pub id: i64,
    pub key_version: u32,
    pub basis: String,
    pub status: String,
    /// `notice-id v3`.
    pub notice: String,
    /// `app (tap)`.
    pub source: String,
    pub collected_at: String,
    pub effective_from: String,
    /// Empty when it does not expire.
    pub expires_at: String,
    pub recorded_by: String,
}

/// One assignment and its legal proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentRow {
    pub experiment: String,
    pub variant: String,
    pub key_version: u32,
    pub basis: String,
    /// The ledger record's id, or "—" for a basis without one.
    pub consent_record: String,
    /// `v3`, or "—".
    pub notice_version: String,
    pub decided_at: String,
    /// When a withdrawal or objection ended it; empty while it stands.
    pub withdrawn_at: String,
    /// The segment attributes stored with it (`device_type=mobile;…`), or "—".
    pub segments: String,
}

impl AssignmentRow {
    fn results_href(&self) -> String {
        urls::results(&self.experiment)
    }
}

/// How many events one pilot holds under one pseudonym.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCountRow {
    pub experiment: String,
    pub key_version: u32,
    pub events: u64,
}

impl EventCountRow {
    fn events_text(&self) -> String {
        thousands(self.events)
    }
}

/// An executed erasure of one pseudonym.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureRow {
    pub key_version: u32,
    pub erased_at: String,
    pub assignments: u64,
    pub events: u64,
    /// The audit entry that records it, when known.
    pub audit_id: Option<i64>,
}

impl PersonView {
    fn erased_badge(&self) -> Badge {
        Badge::new("erased", Tone::Muted)
    }

    fn total_events(&self) -> String {
        thousands(self.events.iter().map(|e| e.events).sum())
    }
}

impl SubjectsPage {
    fn lookup_action(&self) -> &'static str {
        urls::SUBJECTS
    }

    fn download_action(&self) -> &'static str {
        urls::SUBJECT_DOWNLOAD
    }

    fn erase_action(&self) -> &'static str {
        urls::SUBJECT_ERASE
    }
}

/// "Erase this person?": what will go, and the one form that does it.
#[derive(Debug, Clone, Template)]
#[template(path = "pages/subject_erase.html")]
pub struct SubjectErasePage {
    pub chrome: Chrome,
    /// The person's pseudonym under the current key (sent back by the form).
    pub subject: String,
    /// Every pseudonym of the person the erasure reaches.
    pub pseudonyms: Vec<PseudonymRow>,
    /// What will be deleted, over all pseudonyms.
    pub assignments: u64,
    pub events: u64,
}

impl SubjectErasePage {
    fn action(&self) -> &'static str {
        urls::SUBJECT_ERASURE
    }

    fn back_href(&self) -> &'static str {
        urls::SUBJECTS
    }

    fn what_goes(&self) -> String {
        format!(
            "{} and {} will be deleted under {}. The consent ledger stays, pseudonymised, as proof of lawful past processing, and the person is refused from every pilot from now on. This cannot be undone.",
            count(self.assignments, "assignment", "assignments"),
            count(self.events, "event", "events"),
            count(self.pseudonyms.len() as u64, "pseudonym", "pseudonyms"),
        )
    }
}

/// The receipt of an erasure.
#[derive(Debug, Clone, Template)]
#[template(path = "pages/subject_receipt.html")]
pub struct SubjectReceiptPage {
    pub chrome: Chrome,
    /// The pseudonym the erasure was asked for.
    pub subject: String,
    pub erased_at: String,
    /// Totals over every pseudonym.
    pub assignments: u64,
    pub events: u64,
    /// Per pseudonym (per key version).
    pub versions: Vec<ReceiptRow>,
    /// The audit entry that records the erasure.
    pub audit_id: i64,
}

/// What one pseudonym lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRow {
    pub subject: String,
    pub key_version: u32,
    pub assignments: u64,
    pub events: u64,
}

impl SubjectReceiptPage {
    fn deleted_text(&self) -> String {
        format!(
            "{} and {}",
            count(self.assignments, "assignment", "assignments"),
            count(self.events, "event", "events")
        )
    }

    fn back_href(&self) -> &'static str {
        urls::SUBJECTS
    }

    fn audit_href(&self) -> String {
        format!(
            "{}?action=subject.erase&target={}",
            urls::AUDIT,
            urls::encode_component(&format!("subject:{}", self.subject))
        )
    }
}

/// `n` with its noun: "1 event", "1,000 events".
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}
