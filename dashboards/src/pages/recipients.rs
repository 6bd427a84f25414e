//! The recipient registry (data contracts): the systems a pilot's data may
//! be exported to, each with its owner, the purposes it may receive, the
//! formats it accepts and the end of its contract; for compliance, the form
//! that registers one.

use askama::Template;

use crate::layout::Chrome;
use crate::urls;
use crate::view::{Badge, Tone};

/// The registry page.
#[derive(Debug, Clone, Template)]
#[template(path = "pages/recipients.html")]
pub struct RecipientsPage {
    /// The frame.
    pub chrome: Chrome,
    /// Every registered recipient, by name.
    pub recipients: Vec<RecipientRow>,
    /// Whether the signed-in role may register recipients (the server decides).
    pub can_register: bool,
    /// The purposes a contract may name (keys, not retired).
    pub purposes: Vec<String>,
    /// The formats a contract may name.
    pub formats: Vec<String>,
    /// The form as typed when it was refused, or blank.
    pub typed: RecipientFields,
    /// Why the last form was refused, if it was.
    pub error: Option<String>,
}

/// One recipient as the table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientRow {
    pub name: String,
    pub owner: String,
    pub purposes: Vec<String>,
    pub formats: Vec<String>,
    /// The end of its contract, as a date and time.
    pub expires: String,
    pub expired: bool,
    pub registered_by: String,
}

impl RecipientRow {
    /// "in force" or "expired".
    pub fn contract_badge(&self) -> Badge {
        if self.expired {
            Badge::new("expired", Tone::Negative)
        } else {
            Badge::new("in force", Tone::Positive)
        }
    }
}

/// The register form's fields, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientFields {
    pub name: String,
    pub owner: String,
    pub purposes: Vec<String>,
    pub formats: Vec<String>,
    /// `YYYY-MM-DD`.
    pub expires_on: String,
}

impl RecipientsPage {
    fn register_action(&self) -> &'static str {
        urls::RECIPIENTS
    }

    fn purpose_checked(&self, purpose: &str) -> bool {
        self.typed.purposes.iter().any(|p| p == purpose)
    }

    fn format_checked(&self, format: &str) -> bool {
        self.typed.formats.iter().any(|f| f == format)
    }
}
