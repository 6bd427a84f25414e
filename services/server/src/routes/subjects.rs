//! Subjects, by pseudonym: resolving a raw id, reading the ledger, what is
//! held (Art. 15 access, by pseudonym or by raw id across key versions) and
//! erasure. Each route translates HTTP to one call of `service::subjects`.

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::service::subjects as service;
use crate::startup::AppState;

pub use crate::service::subjects::{
    AccessDocument, AssignmentProof, CurrentState, DeletedView, ErasedVersionView, ErasureStatus,
    ErasureView, KnownPseudonym, PersonAccess, PilotEvents, RecordView, Resolved, SourceView,
    SubjectConsents,
};

/// A raw id to turn into its pseudonym.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveInput {
    pub user_id: String,
}

impl std::fmt::Debug for ResolveInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResolveInput { user_id: [redacted] }")
    }
}

/// A pseudonym from the path: 64 lowercase hex digits.
fn parse_subject(subject: &str) -> Result<String, ApiError> {
    if service::is_pseudonym(subject) {
        Ok(subject.to_owned())
    } else {
        Err(ApiError::BadRequest(
            "the subject in the path must be a pseudonym (64 lowercase hex digits); resolve a raw id with POST /api/v1/subjects/resolve".to_owned(),
        ))
    }
}

/// Turns a raw id into its pseudonym. Lookups try the current key, then older
/// versions: `known_as` lists each pseudonym of this person that holds data
/// (ledger records, assignments, an erasure), and they are linked to the
/// current one, so that an erasure by any of them reaches all. The raw id is
/// not stored or logged; the lookup is audited.
#[utoipa::path(post, path = "/api/v1/subjects/resolve", tag = "subjects", request_body = ResolveInput, security(("bearer" = [])), responses(
    (status = 200, body = Resolved),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[post("/api/v1/subjects/resolve")]
pub async fn resolve(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<ResolveInput>,
) -> Result<HttpResponse, ApiError> {
    let resolved = service::resolve(&state.store, &state.keys, &caller.0, &body.user_id).await?;
    Ok(HttpResponse::Ok().json(resolved))
}

/// The subject's state per purpose now, and every record of the ledger.
#[utoipa::path(get, path = "/api/v1/subjects/{subject}/consents", tag = "subjects", params(("subject" = String, Path, description = "The pseudonym")), security(("bearer" = [])), responses(
    (status = 200, body = SubjectConsents),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
))]
#[get("/api/v1/subjects/{subject}/consents")]
pub async fn consents(
    _caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let subject = parse_subject(&path)?;
    Ok(HttpResponse::Ok().json(service::consents(&state.store, &subject).await?))
}

/// Erases the person (Art. 17) under this pseudonym and every pseudonym linked
/// to it (other key versions): deletes assignments and events, keeps the
/// pseudonymized ledger as proof, blocks future assignment, and returns a
/// receipt per version.
#[utoipa::path(post, path = "/api/v1/subjects/{subject}/erasure", tag = "subjects", params(("subject" = String, Path, description = "The pseudonym")), security(("bearer" = [])), responses(
    (status = 200, body = ErasureView),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 409, description = "The subject was erased already", body = ErrorBody),
))]
#[post("/api/v1/subjects/{subject}/erasure")]
pub async fn erase(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let subject = parse_subject(&path)?;
    let receipt = service::erase(&state.store, &state.keys, &caller.0, &subject).await?;
    Ok(HttpResponse::Ok().json(receipt))
}

/// What is held about the person known by this pseudonym (GDPR Art. 15):
/// under it and every pseudonym linked to it (the same person under other
/// key versions, linked when the raw id was seen), the ledger, the state in
/// force and eligibility per purpose, every assignment with its legal proof,
/// event counts per pilot and the erasure. Audited as `subject.access`.
#[utoipa::path(get, path = "/api/v1/subjects/{subject}/access", tag = "subjects", params(("subject" = String, Path, description = "The pseudonym")), security(("bearer" = [])), responses(
    (status = 200, body = PersonAccess),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
))]
#[get("/api/v1/subjects/{subject}/access")]
pub async fn access(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let subject = parse_subject(&path)?;
    let document = service::access(&state.store, &state.keys, &caller.0, &subject).await?;
    Ok(HttpResponse::Ok().json(document))
}

/// The subject-rights desk's lookup by raw id (in the body, never in a URL):
/// the person's pseudonyms under every key version that hold data (linked
/// from now on, so that an erasure by one reaches all), each with what it
/// holds, and the state in force per purpose over all of them. The raw id is
/// neither stored nor logged; the lookup is audited as `subject.lookup`
/// under the current pseudonym.
#[utoipa::path(post, path = "/api/v1/subjects/lookup", tag = "subjects", request_body = ResolveInput, security(("bearer" = [])), responses(
    (status = 200, body = PersonAccess),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[post("/api/v1/subjects/lookup")]
pub async fn lookup(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<ResolveInput>,
) -> Result<HttpResponse, ApiError> {
    let document = service::lookup(&state.store, &state.keys, &caller.0, &body.user_id).await?;
    Ok(HttpResponse::Ok().json(document))
}
