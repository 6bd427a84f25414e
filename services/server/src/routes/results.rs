//! `GET /api/v1/experiments/{key}/results`: the results of a pilot's metric
//! (`service::results`) as JSON.

use actix_web::{HttpResponse, get, web};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::routes::experiments::find_experiment;
use crate::service::results::{ResultsParams, compute_results};
use crate::startup::AppState;

/// The analysis of a pilot's metric from its stored assignments and events,
/// excluding withdrawn and erased subjects, with the decision and its reasons.
#[utoipa::path(get, path = "/api/v1/experiments/{key}/results", tag = "results", params(("key" = String, Path), ResultsParams), security(("bearer" = [])), responses(
    (status = 200, description = "The `pilotgate analyze` JSON plus `decision`, `guardrails`, `withdrawn`, `planned_sample_size_per_variant`, `cumulative` (by assignment day)", body = Object),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
))]
#[get("/api/v1/experiments/{key}/results")]
pub async fn show(
    _caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    params: web::Query<ResultsParams>,
) -> Result<HttpResponse, ApiError> {
    let experiment = find_experiment(&state, &path).await?;
    let results = compute_results(&state.store, &experiment, &params).await?;
    Ok(HttpResponse::Ok().json(results))
}
