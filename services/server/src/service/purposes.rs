//! The purpose registry's actions that the API and the pages share:
//! register, change (as a new version), retire, and record a
//! legitimate-interest assessment; and the purpose with its history.

use pilotgate_domain::Actor;
use pilotgate_domain::assessment::{Assessment, AssessmentOutcome, Balancing};
use pilotgate_domain::purpose::{LegalBasis, Purpose, PurposeKey};
use pilotgate_domain::text::PlainText;
use pilotgate_store::{PurposeRecord, PurposeUpdate, PurposeVersion, RecordedAssessment, Store};
use serde::{Deserialize, Serialize};

use super::ServiceError;

/// A purpose as compliance registers it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurposeInput {
    /// Dotted key, e.g. `personalize.content.profiling`.
    pub key: String,
    pub description: String,
    /// Subset of consent, contract, legal_obligation, vital_interest, public_task, legitimate_interest.
    pub allowed_bases: Vec<String>,
    pub min_notice_version: u32,
    #[serde(default)]
    pub special_category: bool,
    /// No longer taken: legitimate-interest assessments are records
    /// (`POST /api/v1/purposes/{key}/assessments`). Given, it is a 422.
    pub li_assessment_ref: Option<String>,
    #[serde(default)]
    pub contract_necessary: bool,
    pub retention_days: u32,
}

/// A change of a purpose, as a new version: its whole new rule and,
/// optionally, the version it was made from (a conflict when another change
/// came first).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurposeChangeInput {
    pub description: String,
    /// Subset of consent, contract, legal_obligation, vital_interest, public_task, legitimate_interest.
    pub allowed_bases: Vec<String>,
    pub min_notice_version: u32,
    #[serde(default)]
    pub special_category: bool,
    #[serde(default)]
    pub contract_necessary: bool,
    pub retention_days: u32,
    pub version: Option<u32>,
}

/// What a purpose allows, however it was given.
struct PurposeRule {
    description: String,
    allowed_bases: Vec<String>,
    min_notice_version: u32,
    special_category: bool,
    contract_necessary: bool,
    retention_days: u32,
}

/// Why a purpose is retired.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetireInput {
    pub reason: String,
}

/// A legitimate-interest assessment as compliance writes it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssessmentInput {
    /// The purpose test: what is the interest, and is it legitimate?
    pub purpose_test: String,
    /// The necessity test: is the processing needed for it, or would less do?
    pub necessity_test: String,
    /// Balancing: the interests pursued.
    pub interests: String,
    /// Balancing: what the people concerned can reasonably expect.
    pub expectations: String,
    /// Balancing: the safeguards that protect them.
    pub safeguards: String,
    /// `positive` or `negative`.
    pub outcome: String,
    pub reviewer: String,
    /// `YYYY-MM-DD`.
    pub reviewed_on: String,
}

/// A purpose in force, with its version and retirement.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PurposeView {
    pub key: String,
    pub description: String,
    pub allowed_bases: Vec<String>,
    pub min_notice_version: u32,
    pub special_category: bool,
    /// The positive legitimate-interest assessment in force (`LIA vN`), if any.
    pub li_assessment_ref: Option<String>,
    pub contract_necessary: bool,
    pub retention_days: u32,
    pub version: u32,
    /// RFC 3339; absent while the purpose is in use.
    pub retired_at: Option<String>,
}

/// One version of a purpose in its history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PurposeVersionView {
    pub version: u32,
    pub description: String,
    pub allowed_bases: Vec<String>,
    pub min_notice_version: u32,
    pub special_category: bool,
    pub contract_necessary: bool,
    pub retention_days: u32,
    pub retired: bool,
    /// What the version changed and what followed (pilots sent back to draft).
    #[schema(value_type = Object)]
    pub change: serde_json::Value,
    pub changed_by: String,
    pub changed_at: String,
}

/// A recorded legitimate-interest assessment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AssessmentView {
    pub version: u32,
    pub purpose_test: String,
    pub necessity_test: String,
    pub interests: String,
    pub expectations: String,
    pub safeguards: String,
    pub outcome: String,
    pub reviewer: String,
    pub reviewed_on: String,
    pub recorded_by: String,
    pub recorded_at: String,
}

/// A purpose with its history and assessments, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PurposeDetail {
    pub purpose: PurposeView,
    pub history: Vec<PurposeVersionView>,
    pub assessments: Vec<AssessmentView>,
}

/// What a change did: the purpose now, why it narrows who may be used, and
/// the pilots it sent back to draft.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PurposeChanged {
    pub purpose: PurposeView,
    pub narrowing: Vec<String>,
    pub returned_to_draft: Vec<String>,
}

/// The assessments of a purpose, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AssessmentList {
    pub purpose: String,
    pub assessments: Vec<AssessmentView>,
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn bases_text(bases: impl IntoIterator<Item = LegalBasis>) -> Vec<String> {
    bases.into_iter().map(|b| b.as_str().to_owned()).collect()
}

impl From<&PurposeRecord> for PurposeView {
    fn from(record: &PurposeRecord) -> Self {
        let p = &record.purpose;
        PurposeView {
            key: p.key.to_string(),
            description: p.description.clone(),
            allowed_bases: bases_text(p.allowed_bases.iter().copied()),
            min_notice_version: p.min_notice_version,
            special_category: p.special_category,
            li_assessment_ref: p.li_assessment_ref.clone(),
            contract_necessary: p.contract_necessary,
            retention_days: p.retention_days,
            version: record.version,
            retired_at: record.retired_at.map(rfc3339),
        }
    }
}

impl From<&PurposeVersion> for PurposeVersionView {
    fn from(v: &PurposeVersion) -> Self {
        PurposeVersionView {
            version: v.version,
            description: v.description.clone(),
            allowed_bases: bases_text(v.allowed_bases.iter().copied()),
            min_notice_version: v.min_notice_version,
            special_category: v.special_category,
            contract_necessary: v.contract_necessary,
            retention_days: v.retention_days,
            retired: v.retired,
            change: v.change.clone(),
            changed_by: v.changed_by.clone(),
            changed_at: rfc3339(v.changed_at),
        }
    }
}

impl From<&RecordedAssessment> for AssessmentView {
    fn from(a: &RecordedAssessment) -> Self {
        let inner = &a.assessment;
        AssessmentView {
            version: a.version,
            purpose_test: inner.purpose_test.clone(),
            necessity_test: inner.necessity_test.clone(),
            interests: inner.balancing.interests.clone(),
            expectations: inner.balancing.expectations.clone(),
            safeguards: inner.balancing.safeguards.clone(),
            outcome: inner.outcome.as_str().to_owned(),
            reviewer: inner.reviewer.clone(),
            reviewed_on: inner.reviewed_on.clone(),
            recorded_by: a.recorded_by.clone(),
            recorded_at: rfc3339(a.recorded_at),
        }
    }
}

impl From<PurposeUpdate> for PurposeChanged {
    fn from(update: PurposeUpdate) -> Self {
        PurposeChanged {
            purpose: PurposeView::from(&update.record),
            narrowing: update.narrowing,
            returned_to_draft: update.returned_to_draft,
        }
    }
}

impl PurposeRule {
    /// The purpose `key` under this rule, checked.
    fn into_purpose(self, key: PurposeKey) -> Result<Purpose, ServiceError> {
        let allowed_bases = self
            .allowed_bases
            .iter()
            .map(|b| b.parse::<LegalBasis>())
            .collect::<Result<_, _>>()
            .map_err(|e| ServiceError::invalid("allowed_bases", e))?;
        let purpose = Purpose {
            key,
            description: self.description,
            allowed_bases,
            min_notice_version: self.min_notice_version,
            special_category: self.special_category,
            li_assessment_ref: None,
            contract_necessary: self.contract_necessary,
            retention_days: self.retention_days,
        };
        purpose
            .validate()
            .map_err(|e| ServiceError::Unprocessable(e.to_string()))?;
        Ok(purpose)
    }
}

/// The key of a purpose from a path, or the 404 (a malformed key names none).
fn key_of(key: &str) -> Result<PurposeKey, ServiceError> {
    PurposeKey::parse(key).map_err(|_| {
        ServiceError::Store(pilotgate_store::StoreError::NotFound(
            "no purpose has that key (keys are dotted lowercase segments)".to_owned(),
        ))
    })
}

/// The purpose `key` with its version, or the 404.
pub async fn find(store: &Store, key: &str) -> Result<PurposeRecord, ServiceError> {
    let key = key_of(key)?;
    store.purpose_record(key.as_str()).await?.ok_or_else(|| {
        ServiceError::Store(pilotgate_store::StoreError::NotFound(format!(
            "no purpose has the key '{key}'"
        )))
    })
}

/// Registers purpose `input` as its version 1.
pub async fn create(
    store: &Store,
    actor: &Actor,
    input: PurposeInput,
) -> Result<PurposeView, ServiceError> {
    if input.li_assessment_ref.is_some() {
        return Err(ServiceError::invalid(
            "li_assessment_ref",
            "legitimate-interest assessments are records now: register the purpose, then POST /api/v1/purposes/{key}/assessments",
        ));
    }
    let key = PurposeKey::parse(&input.key).map_err(|e| ServiceError::invalid("key", e))?;
    let purpose = PurposeRule {
        description: input.description,
        allowed_bases: input.allowed_bases,
        min_notice_version: input.min_notice_version,
        special_category: input.special_category,
        contract_necessary: input.contract_necessary,
        retention_days: input.retention_days,
    }
    .into_purpose(key)?;
    store.create_purpose(&purpose, actor).await?;
    Ok(PurposeView::from(&find(store, purpose.key.as_str()).await?))
}

/// Changes purpose `key` as a new version (see `Store::update_purpose`).
pub async fn update(
    store: &Store,
    actor: &Actor,
    key: &str,
    input: PurposeChangeInput,
) -> Result<PurposeChanged, ServiceError> {
    let current = find(store, key).await?;
    let purpose = PurposeRule {
        description: input.description,
        allowed_bases: input.allowed_bases,
        min_notice_version: input.min_notice_version,
        special_category: input.special_category,
        contract_necessary: input.contract_necessary,
        retention_days: input.retention_days,
    }
    .into_purpose(current.purpose.key.clone())?;
    Ok(store
        .update_purpose(&purpose, input.version, actor)
        .await?
        .into())
}

/// The longest reason for retiring a purpose, in characters.
pub const MAX_REASON: usize = 500;

/// Retires purpose `key` with `reason`.
pub async fn retire(
    store: &Store,
    actor: &Actor,
    key: &str,
    reason: &str,
) -> Result<PurposeChanged, ServiceError> {
    let current = find(store, key).await?;
    let reason = PlainText::line(reason, MAX_REASON)
        .map_err(|e| ServiceError::invalid("reason", format!("say why: {e}")))?;
    Ok(store
        .retire_purpose(current.purpose.key.as_str(), reason.as_str(), actor)
        .await?
        .into())
}

impl AssessmentInput {
    /// The assessment this input describes, checked; `now` is the store's
    /// clock. A review day is in the future when it has not begun anywhere
    /// yet: the latest calendar day is UTC+14's.
    fn into_assessment(
        self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Assessment, ServiceError> {
        let outcome = self
            .outcome
            .parse::<AssessmentOutcome>()
            .map_err(|e| ServiceError::invalid("outcome", e))?;
        let assessment = Assessment {
            purpose_test: self.purpose_test,
            necessity_test: self.necessity_test,
            balancing: Balancing {
                interests: self.interests,
                expectations: self.expectations,
                safeguards: self.safeguards,
            },
            outcome,
            reviewer: self.reviewer,
            reviewed_on: self.reviewed_on,
        };
        let latest_today = (now + chrono::TimeDelta::hours(14)).date_naive();
        assessment
            .validate(latest_today)
            .map_err(|e| ServiceError::Unprocessable(e.to_string()))?;
        Ok(assessment)
    }
}

/// Records an assessment of purpose `key` as its next version.
pub async fn assess(
    store: &Store,
    actor: &Actor,
    key: &str,
    input: AssessmentInput,
) -> Result<AssessmentView, ServiceError> {
    let current = find(store, key).await?;
    let assessment = input.into_assessment(store.now())?;
    let recorded = store
        .record_assessment(current.purpose.key.as_str(), &assessment, actor)
        .await?;
    Ok(AssessmentView::from(&recorded))
}

/// The assessments of purpose `key`, newest first.
pub async fn assessments(store: &Store, key: &str) -> Result<AssessmentList, ServiceError> {
    let current = find(store, key).await?;
    let key = current.purpose.key.to_string();
    let assessments = store.assessments(&key).await?;
    Ok(AssessmentList {
        purpose: key,
        assessments: assessments.iter().map(AssessmentView::from).collect(),
    })
}

/// Purpose `key` with its history and assessments.
pub async fn detail(store: &Store, key: &str) -> Result<PurposeDetail, ServiceError> {
    let current = find(store, key).await?;
    let key = current.purpose.key.as_str();
    let history = store.purpose_history(key).await?;
    let assessments = store.assessments(key).await?;
    Ok(PurposeDetail {
        purpose: PurposeView::from(&current),
        history: history.iter().map(PurposeVersionView::from).collect(),
        assessments: assessments.iter().map(AssessmentView::from).collect(),
    })
}

/// Every purpose in force or retired, by key.
pub async fn list(store: &Store) -> Result<Vec<PurposeView>, ServiceError> {
    let records = store.list_purpose_records().await?;
    Ok(records.iter().map(PurposeView::from).collect())
}
