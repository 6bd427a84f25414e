//! The data inventory: every category of personal data pilots may name,
//! its sensitivity class, whether pilots may use it, and the measures it
//! requires; the segment dimensions a design may name, each with its
//! values and category; for compliance, an edit form per category and a
//! create form.

use askama::Template;

use super::Choice;
use crate::layout::Chrome;
use crate::urls;
use crate::view::{Badge, Tone};

/// The sensitivity classes, lowest first.
pub const SENSITIVITY_CLASSES: [&str; 4] = ["low", "moderate", "high", "special"];

/// The inventory page.
#[derive(Debug, Clone, Template)]
#[template(path = "pages/inventory.html")]
pub struct InventoryPage {
    /// The frame.
    pub chrome: Chrome,
    /// Every category, by key.
    pub categories: Vec<CategoryRow>,
    /// The segment vocabulary: what a design may name as segments.
    pub segments: Vec<super::design::SegmentOption>,
    /// Whether the signed-in role may add and edit categories (the server decides).
    pub can_edit: bool,
    /// The create form's fields (blank, or as typed when refused).
    pub new_category: CategoryRow,
    /// Why the last form was refused, if it was.
    pub error: Option<String>,
}

/// One category, as shown and as its form holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryRow {
    /// snake_case, e.g. `behavioural`.
    pub key: String,
    pub name: String,
    pub description: String,
    /// `low`, `moderate`, `high` or `special`.
    pub sensitivity: String,
    /// Pilots may not use it.
    pub prohibited: bool,
    pub pseudonymised: bool,
    pub encrypted_at_rest: bool,
    /// As typed; empty means no ceiling.
    pub retention_ceiling_days: String,
    pub dpo_sign_off: bool,
}

impl Default for CategoryRow {
    fn default() -> Self {
        CategoryRow {
            key: String::new(),
            name: String::new(),
            description: String::new(),
            sensitivity: "moderate".to_owned(),
            prohibited: false,
            pseudonymised: true,
            encrypted_at_rest: false,
            retention_ceiling_days: String::new(),
            dpo_sign_off: false,
        }
    }
}

impl CategoryRow {
    /// The measures required, in words; "none" when there are none.
    pub fn measures_text(&self) -> String {
        let mut measures = Vec::new();
        if self.pseudonymised {
            measures.push("pseudonymised".to_owned());
        }
        if self.encrypted_at_rest {
            measures.push("encrypted at rest".to_owned());
        }
        if !self.retention_ceiling_days.trim().is_empty() {
            measures.push(format!(
                "retention ≤ {} days",
                self.retention_ceiling_days.trim()
            ));
        }
        if self.dpo_sign_off {
            measures.push("DPO sign-off".to_owned());
        }
        if measures.is_empty() {
            "none".to_owned()
        } else {
            measures.join(", ")
        }
    }

    fn class_badge(&self) -> Badge {
        let tone = match self.sensitivity.as_str() {
            "low" => Tone::Neutral,
            "moderate" => Tone::Info,
            "high" => Tone::Warning,
            _ => Tone::Negative,
        };
        Badge::new(self.sensitivity.clone(), tone)
    }

    fn prohibited_badge(&self) -> Badge {
        if self.prohibited {
            Badge::new("prohibited", Tone::Negative)
        } else {
            Badge::new("allowed", Tone::Positive)
        }
    }

    fn class_choices(&self) -> Vec<Choice> {
        SENSITIVITY_CLASSES
            .iter()
            .map(|class| Choice {
                value: (*class).to_owned(),
                label: (*class).to_owned(),
                selected: *class == self.sensitivity,
            })
            .collect()
    }

    fn form_id(&self) -> String {
        format!("edit-{}", self.key)
    }

    fn action(&self) -> String {
        urls::inventory_item(&self.key)
    }
}

impl InventoryPage {
    fn create_action(&self) -> &'static str {
        urls::INVENTORY
    }
}
