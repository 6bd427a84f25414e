//! The design form of a pilot (new, or an edit of a draft or denied one),
//! and the consent-aware plan it and the pilot's page show.

use std::collections::BTreeMap;

use askama::Template;

use crate::format::{percent, thousands};
use crate::layout::Chrome;
use crate::view::{Count, SUPPRESSED};

/// Every field of a pilot's design as typed, kept as text so a refused form
/// comes back with the values given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DesignFields {
    pub key: String,
    pub name: String,
    pub hypothesis: String,
    pub owner: String,
    pub purpose: String,
    /// `(key, weight)` per variant, the control first.
    pub variants: Vec<(String, String)>,
    pub coverage: String,
    /// The hashing seed; empty means the key.
    pub seed: String,
    pub primary_event: String,
    /// `binary` or `sum`.
    pub primary_kind: String,
    /// `(event, kind)` per guardrail.
    pub guardrails: Vec<(String, String)>,
    pub mde: String,
    pub alpha: String,
    pub power: String,
    pub baseline_rate: String,
    pub attribution_window_hours: String,
    /// Keys of the data inventory, comma-separated (the form's checkboxes
    /// post one value each; the server joins them).
    pub data_categories: String,
    pub retention_days: String,
    /// Segment names of the inventory's vocabulary, comma-separated (one
    /// checkbox each, joined by the server like the categories).
    pub segments: String,
    /// `holm` or `benjamini_hochberg`; empty means Holm.
    pub segment_correction: String,
    /// The planner's input, not part of the design.
    pub daily_visitors: String,
}

/// A registered purpose, as the form offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposeOption {
    pub key: String,
    /// Its allowed legal bases, e.g. `consent, legitimate_interest`.
    pub allowed_bases: String,
    pub min_notice_version: u32,
}

/// A category of the data inventory that pilots may use, as the form offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryOption {
    pub key: String,
    pub name: String,
    /// `low`, `moderate` or `high`.
    pub sensitivity: String,
}

/// A segment of the inventory's vocabulary, as the form offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentOption {
    pub key: String,
    pub description: String,
    /// Its values, or their shape, in words.
    pub values: String,
    /// The data category the design must declare with it, if any.
    pub category: Option<String>,
}

/// The design form.
#[derive(Debug, Clone, Template)]
#[template(path = "pages/design.html")]
pub struct DesignPage {
    pub chrome: Chrome,
    /// Where the form posts (`urls::new_experiment` or `urls::edit`).
    pub action: String,
    /// The pilot's key when editing (the key field is then fixed).
    pub editing: Option<String>,
    /// What saving does to an edited pilot's state, when it matters, e.g.
    /// "Saving sends this approved pilot back to draft".
    pub state_note: Option<String>,
    pub fields: DesignFields,
    pub purposes: Vec<PurposeOption>,
    /// The data inventory's categories that pilots may use.
    pub categories: Vec<CategoryOption>,
    /// The inventory's segment vocabulary.
    pub segment_options: Vec<SegmentOption>,
    /// Refusals per form field (`key`, `variants`, `mde`, …).
    pub errors: BTreeMap<String, String>,
    /// A refusal that concerns no one field.
    pub general_error: Option<String>,
    /// The plan of the design as typed, when asked for and computable.
    pub plan: Option<PlanSummary>,
    /// Where "Cancel" goes.
    pub cancel_href: String,
}

/// One variant row of the form, numbered for its field ids.
#[derive(Debug)]
struct Row<'a> {
    index: usize,
    first: &'a str,
    second: &'a str,
}

impl DesignPage {
    /// The refusal for `field`, or empty.
    fn error(&self, field: &str) -> &str {
        self.errors.get(field).map_or("", String::as_str)
    }

    fn has_error(&self, field: &str) -> bool {
        self.errors.contains_key(field)
    }

    /// The data categories as typed or ticked.
    fn chosen_categories(&self) -> Vec<&str> {
        self.fields
            .data_categories
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect()
    }

    fn chosen(&self, key: &str) -> bool {
        self.chosen_categories().contains(&key)
    }

    fn segment_chosen(&self, key: &str) -> bool {
        self.fields.segments.split(',').any(|s| s.trim() == key)
    }

    fn correction_is(&self, value: &str) -> bool {
        let chosen = self.fields.segment_correction.trim();
        chosen == value || (chosen.is_empty() && value == "holm")
    }

    /// Categories the design names that the form does not offer (a design
    /// made before the inventory, or a prohibited category): shown ticked,
    /// so the refusal beside them can be mended by unticking.
    fn unoffered_categories(&self) -> Vec<&str> {
        self.chosen_categories()
            .into_iter()
            .filter(|c| !self.categories.iter().any(|o| o.key == *c))
            .collect()
    }

    fn variant_rows(&self) -> Vec<Row<'_>> {
        rows(&self.fields.variants)
    }

    fn guardrail_rows(&self) -> Vec<Row<'_>> {
        rows(&self.fields.guardrails)
    }
}

fn rows(pairs: &[(String, String)]) -> Vec<Row<'_>> {
    pairs
        .iter()
        .enumerate()
        .map(|(index, (first, second))| Row {
            index,
            first,
            second,
        })
        .collect()
}

/// The consent-aware plan of a pilot, ready for the pages.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanSummary {
    /// The purpose's known subjects, and of those the eligible ones.
    pub known: Count,
    pub eligible: Count,
    /// The others per reason code, most first.
    pub ineligible: Vec<(String, Count)>,
    /// Where the daily figure comes from, in words, e.g. "1,000 expected
    /// visitors a day × 62.0% eligible × 50% coverage".
    pub traffic: String,
    /// Users entering the pilot per day, all variants together.
    pub daily_enrolled: f64,
    /// Users per variant the design needs, when it can be computed.
    pub needed_per_variant: Option<u64>,
    /// Days to reach them (unrounded), when there is traffic.
    pub days_needed: Option<f64>,
    /// `(days, users per variant, smallest detectable relative lift)`.
    pub detectable: Vec<(u32, f64, Option<f64>)>,
}

impl PlanSummary {
    /// "62.0% (620 of 1,000)" or a note that nobody is known yet.
    pub fn share_text(&self) -> String {
        match (self.eligible.value(), self.known.value()) {
            (_, Some(0)) => "no subject has a ledger record for this purpose yet".to_owned(),
            (Some(eligible), Some(known)) => format!(
                "{} ({} of {})",
                percent(eligible as f64 / known as f64),
                thousands(eligible),
                thousands(known)
            ),
            _ => format!(
                "{} of {} known subjects ({SUPPRESSED}: a group of fewer than k people could be told apart)",
                self.eligible.text(),
                self.known.text()
            ),
        }
    }

    pub fn daily_text(&self) -> String {
        format!("{:.1}", self.daily_enrolled)
    }

    /// "23 days" (rounded up), or why there is no figure.
    pub fn days_text(&self) -> String {
        match (self.needed_per_variant, self.days_needed) {
            (None, _) => {
                "no planned sample size (give a binary primary metric and a baseline rate)"
                    .to_owned()
            }
            (Some(_), None) => {
                "no traffic to plan with (give the expected daily visitors)".to_owned()
            }
            (Some(_), Some(days)) => {
                let whole = days.ceil().max(0.0) as u64;
                if whole == 1 {
                    "1 day".to_owned()
                } else {
                    format!("{} days", thousands(whole))
                }
            }
        }
    }

    pub fn needed_text(&self) -> String {
        self.needed_per_variant.map_or("—".to_owned(), thousands)
    }

    /// `(days, users per variant, effect)` as text.
    pub(crate) fn detectable_rows(&self) -> Vec<(u32, String, String)> {
        self.detectable
            .iter()
            .map(|(days, users, effect)| {
                (
                    *days,
                    thousands(users.floor().max(0.0) as u64),
                    effect.map_or("—".to_owned(), percent),
                )
            })
            .collect()
    }
}
