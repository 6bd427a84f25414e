//! Governed exports (`service::exports`): the recipients registry, export
//! requests, their approval or denial, and the requester's download.

use actix_web::{HttpResponse, get, post, web};
use serde::Serialize;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::service::exports::{
    self, DecisionInput, ExportInput, ExportView, RecipientInput, RecipientView,
};
use crate::startup::AppState;

/// The recipients registry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecipientList {
    pub recipients: Vec<RecipientView>,
}

/// A pilot's export requests.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExportList {
    pub exports: Vec<ExportView>,
}

/// Registers a recipient system (a data contract): its owner, the purposes
/// whose pilots it may receive, the formats it accepts, its expiry. Audited
/// as `recipient.register`.
#[utoipa::path(post, path = "/api/v1/recipients", tag = "exports", request_body = RecipientInput, security(("bearer" = [])), responses(
    (status = 201, body = RecipientView),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 409, description = "The name is registered already", body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[post("/api/v1/recipients")]
pub async fn register(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<RecipientInput>,
) -> Result<HttpResponse, ApiError> {
    let view = exports::register_recipient(&state.store, &caller.0, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(view))
}

/// Lists the recipients registry.
#[utoipa::path(get, path = "/api/v1/recipients", tag = "exports", security(("bearer" = [])), responses(
    (status = 200, body = RecipientList),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
))]
#[get("/api/v1/recipients")]
pub async fn list_recipients(
    _caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let recipients = exports::recipients(&state.store).await?;
    Ok(HttpResponse::Ok().json(RecipientList { recipients }))
}

/// Asks to export a pilot to a registered recipient (pending until
/// compliance decides). 422 when the recipient may not receive the pilot's
/// purpose or the format, or its contract expired. Audited as `export.request`.
#[utoipa::path(post, path = "/api/v1/experiments/{key}/exports", tag = "exports", params(("key" = String, Path)), request_body = ExportInput, security(("bearer" = [])), responses(
    (status = 201, body = ExportView),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[post("/api/v1/experiments/{key}/exports")]
pub async fn request(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<ExportInput>,
) -> Result<HttpResponse, ApiError> {
    let view = exports::request(&state.store, &caller.0, &path, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(view))
}

/// The export requests of a pilot, newest first.
#[utoipa::path(get, path = "/api/v1/experiments/{key}/exports", tag = "exports", params(("key" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, body = ExportList),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
))]
#[get("/api/v1/experiments/{key}/exports")]
pub async fn list(
    _caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let exports = exports::list_of(&state.store, &path).await?;
    Ok(HttpResponse::Ok().json(ExportList { exports }))
}

/// Approves a pending export request: its requester may then download it
/// 3 times within 7 days. Never by the requester (403). Audited as `export.approve`.
#[utoipa::path(post, path = "/api/v1/exports/{id}/approve", tag = "exports", params(("id" = String, Path)), request_body = DecisionInput, security(("bearer" = [])), responses(
    (status = 200, body = ExportView),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, description = "Decided already", body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[post("/api/v1/exports/{id}/approve")]
pub async fn approve(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<DecisionInput>,
) -> Result<HttpResponse, ApiError> {
    let view = exports::decide(&state.store, &caller.0, &path, true, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Denies a pending export request (never by the requester). Audited as `export.deny`.
#[utoipa::path(post, path = "/api/v1/exports/{id}/deny", tag = "exports", params(("id" = String, Path)), request_body = DecisionInput, security(("bearer" = [])), responses(
    (status = 200, body = ExportView),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, description = "Decided already", body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[post("/api/v1/exports/{id}/deny")]
pub async fn deny(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<DecisionInput>,
) -> Result<HttpResponse, ApiError> {
    let view = exports::decide(&state.store, &caller.0, &path, false, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The approved export as a CSV or Parquet file (the format requested), for its requester only, at most 3
/// times before its expiry (then 409). Audited as `export.download` with
/// the manifest (pilot, purpose, recipient, basis counts, rows, SHA-256,
/// expiry) before the file is sent; the subject ids are derived for the recipient.
#[utoipa::path(get, path = "/api/v1/exports/{id}/download", tag = "exports", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, description = "The file, with Content-Disposition: attachment", content((String = "text/csv"), (Vec<u8> = "application/vnd.apache.parquet"))),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, description = "Pending, denied, expired or downloaded its allowed number of times", body = ErrorBody),
))]
#[get("/api/v1/exports/{id}/download")]
pub async fn download(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let file =
        exports::download(&state.store, &state.keys, &caller.0, &path, state.min_cell).await?;
    Ok(attachment(file))
}

/// An export file as an HTTP response that browsers save under its name.
pub fn attachment(file: exports::ExportFile) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(file.content_type)
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", file.filename),
        ))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Audit-Entry", file.audit_id.to_string()))
        .body(file.body)
}
