//! The purpose registry: which legal bases each purpose allows.

use actix_web::{HttpResponse, get, post, web};
use pilotgate_domain::purpose::{LegalBasis, Purpose, PurposeKey};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::service;
use crate::service::plan::EligibleShare;
use crate::startup::AppState;

/// A purpose as compliance registers it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
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
    pub li_assessment_ref: Option<String>,
    #[serde(default)]
    pub contract_necessary: bool,
    pub retention_days: u32,
}

/// A registered purpose.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PurposeView {
    pub key: String,
    pub description: String,
    pub allowed_bases: Vec<String>,
    pub min_notice_version: u32,
    pub special_category: bool,
    pub li_assessment_ref: Option<String>,
    pub contract_necessary: bool,
    pub retention_days: u32,
}

/// The registry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PurposeList {
    pub purposes: Vec<PurposeView>,
}

impl From<&Purpose> for PurposeView {
    fn from(p: &Purpose) -> Self {
        PurposeView {
            key: p.key.to_string(),
            description: p.description.clone(),
            allowed_bases: p
                .allowed_bases
                .iter()
                .map(|b| b.as_str().to_owned())
                .collect(),
            min_notice_version: p.min_notice_version,
            special_category: p.special_category,
            li_assessment_ref: p.li_assessment_ref.clone(),
            contract_necessary: p.contract_necessary,
            retention_days: p.retention_days,
        }
    }
}

impl PurposeInput {
    fn into_purpose(self) -> Result<Purpose, ApiError> {
        let unprocessable = |field: &str, e: &dyn std::fmt::Display| {
            ApiError::Unprocessable(format!("{field}: {e}"))
        };
        let key = PurposeKey::parse(&self.key).map_err(|e| unprocessable("key", &e))?;
        let allowed_bases = self
            .allowed_bases
            .iter()
            .map(|b| b.parse::<LegalBasis>())
            .collect::<Result<_, _>>()
            .map_err(|e| unprocessable("allowed_bases", &e))?;
        let purpose = Purpose {
            key,
            description: self.description,
            allowed_bases,
            min_notice_version: self.min_notice_version,
            special_category: self.special_category,
            li_assessment_ref: self.li_assessment_ref,
            contract_necessary: self.contract_necessary,
            retention_days: self.retention_days,
        };
        purpose
            .validate()
            .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        Ok(purpose)
    }
}

/// Registers a purpose. Profiling and targeting purposes may allow consent only.
#[utoipa::path(post, path = "/api/v1/purposes", tag = "purposes", request_body = PurposeInput, security(("bearer" = [])), responses(
    (status = 201, body = PurposeView),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 409, description = "The key is registered already", body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[post("/api/v1/purposes")]
pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<PurposeInput>,
) -> Result<HttpResponse, ApiError> {
    let purpose = body.into_inner().into_purpose()?;
    state.store.create_purpose(&purpose, &caller.0).await?;
    Ok(HttpResponse::Created().json(PurposeView::from(&purpose)))
}

/// Lists the registry.
#[utoipa::path(get, path = "/api/v1/purposes", tag = "purposes", security(("bearer" = [])), responses(
    (status = 200, body = PurposeList),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
))]
#[get("/api/v1/purposes")]
pub async fn list(_caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let purposes = state.store.list_purposes().await?;
    Ok(HttpResponse::Ok().json(PurposeList {
        purposes: purposes.iter().map(PurposeView::from).collect(),
    }))
}

/// How the purpose's known subjects (every pseudonym with a ledger record for
/// it) stand now under the eligibility rule: how many are eligible, the
/// share, and the others per reason code. The planner's input.
#[utoipa::path(get, path = "/api/v1/purposes/{key}/eligible-share", tag = "purposes", params(("key" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, body = EligibleShare),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
))]
#[get("/api/v1/purposes/{key}/eligible-share")]
pub async fn eligible_share(
    _caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let share = service::plan::eligible_share(&state.store, &path).await?;
    Ok(HttpResponse::Ok().json(share))
}
