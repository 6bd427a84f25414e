//! The purpose registry: which legal bases each purpose allows.

use actix_web::{HttpResponse, get, post, put, web};
use serde::Serialize;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::service;
use crate::service::plan::EligibleShare;
use crate::service::purposes::{
    AssessmentInput, AssessmentList, AssessmentView, PurposeChangeInput, PurposeChanged,
    PurposeDetail, PurposeInput, PurposeView, RetireInput,
};
use crate::startup::AppState;

/// The registry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PurposeList {
    pub purposes: Vec<PurposeView>,
}

/// Registers a purpose as its version 1. Profiling and targeting purposes
/// may allow consent only; a legitimate-interest assessment is a record of
/// its own (`POST /api/v1/purposes/{key}/assessments`).
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
    let view = service::purposes::create(&state.store, &caller.0, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(view))
}

/// Lists the registry.
#[utoipa::path(get, path = "/api/v1/purposes", tag = "purposes", security(("bearer" = [])), responses(
    (status = 200, body = PurposeList),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
))]
#[get("/api/v1/purposes")]
pub async fn list(_caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let purposes = service::purposes::list(&state.store).await?;
    Ok(HttpResponse::Ok().json(PurposeList { purposes }))
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
    let share = service::plan::eligible_share(&state.store, &path, state.min_cell).await?;
    Ok(HttpResponse::Ok().json(share))
}

/// A purpose with its history (every version, newest first) and its
/// legitimate-interest assessments.
#[utoipa::path(get, path = "/api/v1/purposes/{key}", tag = "purposes", params(("key" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, body = PurposeDetail),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
))]
#[get("/api/v1/purposes/{key}")]
pub async fn one(
    _caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::purposes::detail(&state.store, &path).await?))
}

/// Changes a purpose as a new version (the history keeps the old ones).
/// Raising the minimum notice version, removing an allowed basis, marking it
/// special-category or withdrawing contract necessity sends its submitted and
/// approved pilots back to draft (audited; the marketer sees why on the
/// pilot's page); running pilots go on, and people the new rule makes
/// ineligible are refused from now on. `version`, when given, must be the
/// version in force (409 otherwise).
#[utoipa::path(put, path = "/api/v1/purposes/{key}", tag = "purposes", params(("key" = String, Path)), request_body = PurposeChangeInput, security(("bearer" = [])), responses(
    (status = 200, body = PurposeChanged),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody),
    (status = 409, description = "Retired, or changed since the version given", body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[put("/api/v1/purposes/{key}")]
pub async fn update(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<PurposeChangeInput>,
) -> Result<HttpResponse, ApiError> {
    let changed =
        service::purposes::update(&state.store, &caller.0, &path, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(changed))
}

/// Retires a purpose (a new version): no new assignment and no new consent
/// for it; pilots not running go back to draft; running pilots keep the
/// people they hold.
#[utoipa::path(post, path = "/api/v1/purposes/{key}/retire", tag = "purposes", params(("key" = String, Path)), request_body = RetireInput, security(("bearer" = [])), responses(
    (status = 200, body = PurposeChanged),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody),
    (status = 409, description = "Retired already", body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[post("/api/v1/purposes/{key}/retire")]
pub async fn retire(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<RetireInput>,
) -> Result<HttpResponse, ApiError> {
    let changed = service::purposes::retire(&state.store, &caller.0, &path, &body.reason).await?;
    Ok(HttpResponse::Ok().json(changed))
}

/// The purpose's legitimate-interest assessments, newest first.
#[utoipa::path(get, path = "/api/v1/purposes/{key}/assessments", tag = "purposes", params(("key" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, body = AssessmentList),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
))]
#[get("/api/v1/purposes/{key}/assessments")]
pub async fn assessments(
    _caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::purposes::assessments(&state.store, &path).await?))
}

/// Records a legitimate-interest assessment as the purpose's next version.
/// The purpose may rely on `legitimate_interest` while its newest assessment
/// is positive; a negative one sends its submitted and approved pilots back
/// to draft when the purpose allows that basis.
#[utoipa::path(post, path = "/api/v1/purposes/{key}/assessments", tag = "purposes", params(("key" = String, Path)), request_body = AssessmentInput, security(("bearer" = [])), responses(
    (status = 201, body = AssessmentView),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody),
    (status = 409, description = "The purpose is retired", body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[post("/api/v1/purposes/{key}/assessments")]
pub async fn assess(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<AssessmentInput>,
) -> Result<HttpResponse, ApiError> {
    let view = service::purposes::assess(&state.store, &caller.0, &path, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(view))
}
