//! `GET /api/v1/experiments/{key}/results`: the results of a pilot's metric
//! (`service::results`) as JSON, and the same as a file to download.

use actix_web::{HttpResponse, get, web};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::routes::experiments::find_experiment;
use crate::service::results::{self, DownloadParams, ResultsParams, compute_results};
use crate::startup::AppState;

/// The analysis of a pilot's metric from its stored assignments and events,
/// excluding withdrawn and erased subjects, with the decision and its
/// reasons; with `segment`, per value of a pre-registered segment too.
#[utoipa::path(get, path = "/api/v1/experiments/{key}/results", tag = "results", params(("key" = String, Path), ResultsParams), security(("bearer" = [])), responses(
    (status = 200, description = "The `pilotgate analyze` JSON plus `decision`, `guardrails`, `withdrawn`, `planned_sample_size_per_variant`, `cumulative` (by assignment day), `cuped` (`lookback_days`, `variance_reduction`) when CUPED-adjusted (every method), `sequential_srm` (`bayes_factor`, anytime-valid `p_value`, `mismatch`: the Dirichlet-multinomial test beside the chi-square `srm`), `attrition` (`by_variant` assigned/withdrawn/objected/erased, `imbalance`, the daily `series`, and `lee_bounds` per variant when the variants kept different shares; the decision is `not_decidable` when attrition is imbalanced and the bounds include 0), `raw_data_purged_on` (YYYY-MM-DD) once the retention purge replaced the raw data by its aggregates, and with `segment`, `segments`: per value of the pre-registered segment, the results built like the whole pilot's and each treatment's p-value with its adjusted value (Holm or Benjamini–Hochberg across segment values × variants; a guardrail's are not adjusted), and `min_cell` (k): a figure describing fewer than k people, or one from which such a figure could be recomputed, is `null` with `\"suppressed\": true` on the object holding it (variant, comparison, cumulative day, withdrawn); statistics over a suppressed group (comparisons, SRM, the withdrawal balance, the decision) are withheld", body = Object),
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
    let results = compute_results(&state.store, &experiment, &params, state.min_cell).await?;
    Ok(HttpResponse::Ok().json(results))
}

/// The results of a pilot's metric as a file to hand on: `format=csv` (one
/// row per variant with its comparison against the control) or `json` (the
/// results endpoint's answer). Audited as `results.downloaded`, with the
/// file's SHA-256, before the file is sent.
#[utoipa::path(get, path = "/api/v1/experiments/{key}/results/download", tag = "results", params(("key" = String, Path), DownloadParams), security(("bearer" = [])), responses(
    (status = 200, description = "The file, with Content-Disposition: attachment", content((String = "text/csv"), (Object = "application/json"))),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
))]
#[get("/api/v1/experiments/{key}/results/download")]
pub async fn download(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    params: web::Query<DownloadParams>,
) -> Result<HttpResponse, ApiError> {
    let experiment = find_experiment(&state, &path).await?;
    let file = results::download(
        &state.store,
        &caller.0,
        &experiment,
        &params,
        state.min_cell,
    )
    .await?;
    Ok(attachment(file))
}

/// A download as an HTTP response that browsers save under its file name.
pub fn attachment(file: results::Download) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(file.content_type)
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", file.filename),
        ))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(file.body)
}
