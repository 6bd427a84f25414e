//! The data inventory: the vocabulary of data categories a pilot may name,
//! each with a sensitivity class and the measures it requires, the rule
//! that a design names only categories of the inventory that pilots may
//! use, and the risk checklist: each required measure of a pilot's
//! categories, met or not, with its evidence.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::Serialize;

use crate::experiment::DesignError;
use crate::text::PlainText;

pub mod segments;

/// The longest name of a category, in characters.
pub const MAX_NAME: usize = 100;
/// The longest description of a category, in characters.
pub const MAX_DESCRIPTION: usize = 1000;
/// The longest retention ceiling, in days (ten years).
pub const MAX_CEILING_DAYS: u32 = 3650;
/// The category of special-category data (Art. 9): always prohibited for
/// pilots and always of the `special` class, whatever its row says.
pub const SPECIAL_CATEGORY: &str = "special_category";
/// The category of children's data (Art. 8): always prohibited for pilots,
/// whatever its row says.
pub const CHILDREN: &str = "children";

/// Whether `key` is one of the categories pilots may never use, whatever
/// the inventory says of it ([`SPECIAL_CATEGORY`], [`CHILDREN`]).
pub fn is_pinned_prohibited(key: &str) -> bool {
    key == SPECIAL_CATEGORY || key == CHILDREN
}

/// A category key: 1 to 64 of `a-z`, `0-9` and `_`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CategoryKey(String);

impl CategoryKey {
    pub fn parse(value: &str) -> Result<CategoryKey, InventoryError> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(CategoryKey(value.to_owned()))
        } else {
            Err(InventoryError::new(
                "key",
                "must be 1 to 64 of a-z, 0-9 and '_' (snake_case), starting with a letter",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CategoryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How much harm the category's data can do to a person if misused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    Low,
    Moderate,
    High,
    /// Special categories under Art. 9 GDPR (health, religion, …).
    Special,
}

impl Sensitivity {
    pub const ALL: [Sensitivity; 4] = [
        Sensitivity::Low,
        Sensitivity::Moderate,
        Sensitivity::High,
        Sensitivity::Special,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Sensitivity::Low => "low",
            Sensitivity::Moderate => "moderate",
            Sensitivity::High => "high",
            Sensitivity::Special => "special",
        }
    }
}

impl FromStr for Sensitivity {
    type Err = InventoryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sensitivity::ALL
            .into_iter()
            .find(|class| class.as_str() == s)
            .ok_or_else(|| {
                InventoryError::new("sensitivity", "must be low, moderate, high or special")
            })
    }
}

impl fmt::Display for Sensitivity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a category requires of a pilot that uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Measures {
    /// Subjects are known only by keyed pseudonyms.
    pub pseudonymised: bool,
    /// The database is encrypted at rest (declared by the operator).
    pub encrypted_at_rest: bool,
    /// The pilot's retention may not exceed this many days.
    pub retention_ceiling_days: Option<u32>,
    /// The data-protection officer approved the design version in force.
    pub dpo_sign_off: bool,
}

/// One measure of the checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Not a measure of the category: the category itself may not be used
    /// (it is not in the inventory, or prohibited). Only ever unmet.
    Permitted,
    Pseudonymised,
    EncryptedAtRest,
    RetentionCeiling,
    DpoSignOff,
}

impl Measure {
    pub fn as_str(self) -> &'static str {
        match self {
            Measure::Permitted => "permitted",
            Measure::Pseudonymised => "pseudonymised",
            Measure::EncryptedAtRest => "encrypted_at_rest",
            Measure::RetentionCeiling => "retention_ceiling",
            Measure::DpoSignOff => "dpo_sign_off",
        }
    }
}

impl Measures {
    /// The measures required, in checklist order.
    pub fn required(&self) -> Vec<Measure> {
        let mut measures = Vec::new();
        if self.pseudonymised {
            measures.push(Measure::Pseudonymised);
        }
        if self.encrypted_at_rest {
            measures.push(Measure::EncryptedAtRest);
        }
        if self.retention_ceiling_days.is_some() {
            measures.push(Measure::RetentionCeiling);
        }
        if self.dpo_sign_off {
            measures.push(Measure::DpoSignOff);
        }
        measures
    }
}

/// A category of personal data in the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataCategory {
    pub key: CategoryKey,
    pub name: String,
    pub description: String,
    pub sensitivity: Sensitivity,
    /// Pilots may not use it (special categories under Art. 9, children's data).
    pub prohibited: bool,
    pub measures: Measures,
}

/// A rule of the inventory that does not hold: the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InventoryError {
    pub field: String,
    pub reason: String,
}

impl InventoryError {
    pub fn new(field: &str, reason: &str) -> Self {
        InventoryError {
            field: field.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

impl DataCategory {
    /// Checks every rule of a category: plain-text name and description,
    /// a retention ceiling of 1 to [`MAX_CEILING_DAYS`] days, a
    /// special-class category is prohibited for pilots (Art. 9), and the
    /// built-in special-category and children's categories stay prohibited
    /// (special-category data stays of the `special` class).
    pub fn validate(&self) -> Result<(), InventoryError> {
        if let Err(e) = PlainText::line(&self.name, MAX_NAME) {
            return Err(InventoryError::new("name", &e.to_string()));
        }
        if let Err(e) = PlainText::lines(&self.description, MAX_DESCRIPTION) {
            return Err(InventoryError::new("description", &e.to_string()));
        }
        if self
            .measures
            .retention_ceiling_days
            .is_some_and(|days| days == 0 || days > MAX_CEILING_DAYS)
        {
            return Err(InventoryError::new(
                "retention_ceiling_days",
                &format!("must be 1 to {MAX_CEILING_DAYS} days, or absent for no ceiling"),
            ));
        }
        if self.key.as_str() == SPECIAL_CATEGORY && self.sensitivity != Sensitivity::Special {
            return Err(InventoryError::new(
                "sensitivity",
                "special-category data (Art. 9) is always of the special class",
            ));
        }
        if self.key.as_str() == CHILDREN && !self.prohibited {
            return Err(InventoryError::new(
                "prohibited",
                "children's data (Art. 8) is always prohibited for pilots",
            ));
        }
        if self.sensitivity == Sensitivity::Special && !self.prohibited {
            return Err(InventoryError::new(
                "prohibited",
                "a special-category class (Art. 9) is always prohibited for pilots",
            ));
        }
        Ok(())
    }

    /// Whether pilots may use the category: it is not prohibited, and not
    /// one of the categories pinned as prohibited whatever its row says.
    pub fn permitted_for_pilots(&self) -> bool {
        !self.prohibited && !is_pinned_prohibited(self.key.as_str())
    }

    /// Why pilots may not use the category, ending "…: refused for pilots".
    fn refusal(&self) -> String {
        if self.sensitivity == Sensitivity::Special || self.key.as_str() == SPECIAL_CATEGORY {
            "is special-category data (Art. 9): refused for pilots".to_owned()
        } else {
            format!(
                "is prohibited for pilots ({}): refused for pilots",
                self.name
            )
        }
    }
}

/// The category `key` of `vocabulary`, if any.
fn find<'a>(vocabulary: &'a [DataCategory], key: &str) -> Option<&'a DataCategory> {
    vocabulary.iter().find(|c| c.key.as_str() == key)
}

/// Every category a design names must be in the inventory and not
/// prohibited for pilots; the first that is not is the refusal. The
/// special-category and children's categories are refused whatever their
/// rows say.
pub fn check_design_categories(
    categories: &[String],
    vocabulary: &[DataCategory],
) -> Result<(), DesignError> {
    for category in categories {
        match find(vocabulary, category) {
            None if category == SPECIAL_CATEGORY => {
                return Err(DesignError::new(
                    "data_categories",
                    &format!("'{category}' is special-category data (Art. 9): refused for pilots"),
                ));
            }
            None if category == CHILDREN => {
                return Err(DesignError::new(
                    "data_categories",
                    &format!("'{category}' is children's data (Art. 8): refused for pilots"),
                ));
            }
            None => {
                return Err(DesignError::new(
                    "data_categories",
                    &format!("'{category}' is not in the data inventory"),
                ));
            }
            Some(known) if !known.permitted_for_pilots() => {
                return Err(DesignError::new(
                    "data_categories",
                    &format!("'{category}' {}", known.refusal()),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The DPO's approval of a design version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOff {
    pub by: String,
    pub on: NaiveDate,
    pub design_version: i64,
}

/// What the checklist judges about one pilot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PilotFacts<'a> {
    pub data_categories: &'a [String],
    pub retention_days: u32,
    /// The design version in force.
    pub design_version: i64,
    /// The approval in force, when the pilot has one.
    pub sign_off: Option<SignOff>,
}

/// What the deployment does, whatever the pilot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentFacts {
    /// The version of the pseudonym key new records are pseudonymised with.
    pub pseudonym_key_version: u32,
    /// How the operator says the database is encrypted at rest, if they say.
    pub encrypted_at_rest: Option<String>,
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChecklistItem {
    pub category: String,
    pub measure: Measure,
    pub met: bool,
    /// Why, in one sentence beginning with the measure.
    pub evidence: String,
}

/// Each measure that the pilot's categories require, met or not, with its
/// evidence, category by category in the design's order. A category that is
/// not in the inventory, or prohibited, is one unmet `permitted` line (a
/// design stored before the inventory existed may name one).
pub fn checklist(
    pilot: &PilotFacts<'_>,
    vocabulary: &[DataCategory],
    deployment: &DeploymentFacts,
) -> Vec<ChecklistItem> {
    let mut items = Vec::new();
    for name in pilot.data_categories {
        let item = |measure, met, evidence: String| ChecklistItem {
            category: name.clone(),
            measure,
            met,
            evidence,
        };
        let Some(category) = find(vocabulary, name) else {
            items.push(item(
                Measure::Permitted,
                false,
                "not in the data inventory: edit the design to pick a category from it".to_owned(),
            ));
            continue;
        };
        if !category.permitted_for_pilots() {
            items.push(item(Measure::Permitted, false, category.refusal()));
            continue;
        }
        for measure in category.measures.required() {
            let (met, evidence) = judge(measure, category, pilot, deployment);
            items.push(item(measure, met, evidence));
        }
    }
    items
}

fn judge(
    measure: Measure,
    category: &DataCategory,
    pilot: &PilotFacts<'_>,
    deployment: &DeploymentFacts,
) -> (bool, String) {
    match measure {
        Measure::Permitted => (true, "in the data inventory".to_owned()),
        Measure::Pseudonymised => (
            true,
            format!(
                "pseudonymised: HMAC-SHA256 key v{}",
                deployment.pseudonym_key_version
            ),
        ),
        Measure::EncryptedAtRest => match &deployment.encrypted_at_rest {
            Some(how) => (
                true,
                format!("encrypted at rest: {how} (declared by the operator)"),
            ),
            None => (
                false,
                "encrypted at rest: not declared (set PILOTGATE_ENCRYPTED_AT_REST to describe it)"
                    .to_owned(),
            ),
        },
        Measure::RetentionCeiling => {
            let ceiling = category.measures.retention_ceiling_days.unwrap_or(u32::MAX);
            let days = pilot.retention_days;
            if days <= ceiling {
                (true, format!("retention {days} days ≤ ceiling {ceiling}"))
            } else {
                (false, format!("retention {days} days > ceiling {ceiling}"))
            }
        }
        Measure::DpoSignOff => match &pilot.sign_off {
            Some(s) if s.design_version == pilot.design_version => (
                true,
                format!(
                    "DPO sign-off: approved by {} on {} (design version {})",
                    s.by,
                    s.on.format("%Y-%m-%d"),
                    s.design_version
                ),
            ),
            _ => (
                false,
                format!(
                    "DPO sign-off: design version {} is not approved yet",
                    pilot.design_version
                ),
            ),
        },
    }
}

#[cfg(test)]
mod tests;
