//! The data inventory as the API and the pages share it: listing, adding and
//! editing categories (compliance), and a pilot's risk checklist, judged
//! with what this deployment does (the pseudonym key in use, the operator's
//! word on encryption at rest).

use pilotgate_domain::Actor;
use pilotgate_domain::inventory::segments::{Dimension, Source};
use pilotgate_domain::inventory::{
    CategoryKey, ChecklistItem, DataCategory, DeploymentFacts, Measures, PilotFacts, Sensitivity,
    SignOff, checklist,
};
use pilotgate_store::{Experiment, Store};
use serde::{Deserialize, Serialize};

use super::ServiceError;

/// The measures a category requires.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasuresView {
    /// Subjects known only by keyed pseudonyms.
    #[serde(default)]
    pub pseudonymised: bool,
    /// The database encrypted at rest (declared by the operator).
    #[serde(default)]
    pub encrypted_at_rest: bool,
    /// The longest retention a pilot may declare, in days; none means no ceiling.
    #[serde(default)]
    pub retention_ceiling_days: Option<u32>,
    /// The DPO approved the design version in force.
    #[serde(default)]
    pub dpo_sign_off: bool,
}

/// A category as compliance writes it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryInput {
    /// snake_case; required on create, and on edit it may be omitted or must
    /// equal the key in the path.
    pub key: Option<String>,
    pub name: String,
    pub description: String,
    /// `low`, `moderate`, `high` or `special` (special categories, Art. 9).
    pub sensitivity: String,
    /// Pilots may not use it; a `special` category always is.
    #[serde(default)]
    pub prohibited: bool,
    #[serde(default)]
    pub measures: MeasuresView,
}

/// A category of the inventory.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CategoryView {
    pub key: String,
    pub name: String,
    pub description: String,
    /// `low`, `moderate`, `high` or `special`.
    pub sensitivity: String,
    pub prohibited: bool,
    pub measures: MeasuresView,
    /// The names of the measures required, in checklist order:
    /// `pseudonymised`, `encrypted_at_rest`, `retention_ceiling`, `dpo_sign_off`.
    pub required_measures: Vec<String>,
}

/// A segment dimension of the inventory's vocabulary: what a design may
/// name in `segments`, and what assignment accepts as an attribute.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SegmentDimensionView {
    /// `device_type`, `country`, `new_vs_returning` or `legal_basis`.
    pub key: String,
    pub description: String,
    /// The values it admits, or their shape, in words.
    pub values: String,
    /// The data category a design must declare to name it; none for the
    /// legal basis.
    pub category: Option<String>,
    /// `attribute` (sent with `POST /api/v1/assign`) or `assignment_basis`
    /// (the assignment's own legal basis; never sent).
    pub source: String,
}

/// The inventory: its categories and its segment vocabulary.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CategoryList {
    pub categories: Vec<CategoryView>,
    pub segment_dimensions: Vec<SegmentDimensionView>,
}

/// The segment vocabulary, in its order.
pub fn segment_dimensions() -> Vec<SegmentDimensionView> {
    Dimension::ALL
        .into_iter()
        .map(|d| SegmentDimensionView {
            key: d.as_str().to_owned(),
            description: d.description().to_owned(),
            values: d.values().describe(),
            category: d.category().map(str::to_owned),
            source: match d.source() {
                Source::Attribute => "attribute",
                Source::AssignmentBasis => "assignment_basis",
            }
            .to_owned(),
        })
        .collect()
}

/// One line of a pilot's risk checklist.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChecklistLine {
    /// The data category the pilot names.
    pub category: String,
    /// `pseudonymised`, `encrypted_at_rest`, `retention_ceiling`,
    /// `dpo_sign_off`, or `permitted` (the category itself may not be used).
    pub measure: String,
    pub met: bool,
    /// Why, e.g. "retention 90 days ≤ ceiling 180".
    pub evidence: String,
}

impl From<&DataCategory> for CategoryView {
    fn from(c: &DataCategory) -> Self {
        let m = c.measures;
        CategoryView {
            key: c.key.to_string(),
            name: c.name.clone(),
            description: c.description.clone(),
            sensitivity: c.sensitivity.as_str().to_owned(),
            prohibited: c.prohibited,
            measures: MeasuresView {
                pseudonymised: m.pseudonymised,
                encrypted_at_rest: m.encrypted_at_rest,
                retention_ceiling_days: m.retention_ceiling_days,
                dpo_sign_off: m.dpo_sign_off,
            },
            required_measures: m
                .required()
                .into_iter()
                .map(|r| r.as_str().to_owned())
                .collect(),
        }
    }
}

impl From<&ChecklistItem> for ChecklistLine {
    fn from(item: &ChecklistItem) -> Self {
        ChecklistLine {
            category: item.category.clone(),
            measure: item.measure.as_str().to_owned(),
            met: item.met,
            evidence: item.evidence.clone(),
        }
    }
}

impl CategoryInput {
    /// The category this input describes under `key`, checked.
    fn into_category(self, key: &str) -> Result<DataCategory, ServiceError> {
        let invalid = |e: pilotgate_domain::inventory::InventoryError| {
            ServiceError::Unprocessable(e.to_string())
        };
        let category = DataCategory {
            key: CategoryKey::parse(key).map_err(invalid)?,
            name: self.name.trim().to_owned(),
            description: self.description.trim().to_owned(),
            sensitivity: self.sensitivity.parse::<Sensitivity>().map_err(invalid)?,
            prohibited: self.prohibited,
            measures: Measures {
                pseudonymised: self.measures.pseudonymised,
                encrypted_at_rest: self.measures.encrypted_at_rest,
                retention_ceiling_days: self.measures.retention_ceiling_days,
                dpo_sign_off: self.measures.dpo_sign_off,
            },
        };
        category.validate().map_err(invalid)?;
        Ok(category)
    }
}

/// Every category of the inventory.
pub async fn list(store: &Store) -> Result<Vec<DataCategory>, ServiceError> {
    Ok(store.list_data_categories().await?)
}

/// Adds category `input` to the inventory, by `actor` (audited).
pub async fn create(
    store: &Store,
    actor: &Actor,
    input: CategoryInput,
) -> Result<DataCategory, ServiceError> {
    let key = input
        .key
        .clone()
        .ok_or_else(|| ServiceError::invalid("key", "is required"))?;
    let category = input.into_category(&key)?;
    store.create_data_category(&category, actor).await?;
    Ok(category)
}

/// Replaces category `key` with `input`, by `actor` (audited).
pub async fn update(
    store: &Store,
    actor: &Actor,
    key: &str,
    input: CategoryInput,
) -> Result<DataCategory, ServiceError> {
    if input.key.as_deref().is_some_and(|k| k != key) {
        return Err(ServiceError::invalid(
            "key",
            "a category's key cannot change",
        ));
    }
    if store.data_category(key).await?.is_none() {
        return Err(ServiceError::Store(pilotgate_store::StoreError::NotFound(
            match CategoryKey::parse(key) {
                Ok(key) => format!("the data inventory has no category '{key}'"),
                Err(_) => "the data inventory has no category with that key".to_owned(),
            },
        )));
    }
    let category = input.into_category(key)?;
    store.update_data_category(&category, actor).await?;
    Ok(category)
}

/// The risk checklist of `experiment` under `deployment`.
pub async fn pilot_checklist(
    store: &Store,
    deployment: &DeploymentFacts,
    experiment: &Experiment,
) -> Result<Vec<ChecklistItem>, ServiceError> {
    let vocabulary = store.list_data_categories().await?;
    let sign_off = experiment
        .approval
        .as_ref()
        .filter(|a| a.decision == "approved")
        .map(|a| SignOff {
            by: a.decided_by.clone(),
            on: a.decided_at.date_naive(),
            design_version: a.design_version,
        });
    let pilot = PilotFacts {
        data_categories: &experiment.design.data_categories,
        retention_days: experiment.design.retention_days,
        design_version: experiment.design_version,
        sign_off,
    };
    Ok(checklist(&pilot, &vocabulary, deployment))
}

/// What this deployment does: new records are pseudonymised with the ring's
/// current key; encryption at rest is what the operator declared
/// (`PILOTGATE_ENCRYPTED_AT_REST`), if anything.
pub fn deployment(
    keys: &pilotgate_domain::pseudonym::KeyRing,
    encrypted_at_rest: Option<&str>,
) -> DeploymentFacts {
    DeploymentFacts {
        pseudonym_key_version: keys.current().version(),
        encrypted_at_rest: encrypted_at_rest.map(str::to_owned),
    }
}
