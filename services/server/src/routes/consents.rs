//! Appending consent and legal-basis records to the ledger, one or up to 1000 at a time.

use actix_web::{HttpResponse, post, web};
use serde::Serialize;

use pilotgate_domain::Role;

use crate::auth::Caller;
use crate::consent_input::{ConsentInput, FieldError, Registry};
use crate::error::extractors::redact_values;
use crate::error::{ApiError, ErrorBody};
use crate::startup::AppState;

/// The most records one request may carry.
pub const MAX_BATCH: usize = 1000;

/// One stored (or already present) record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StoredRecord {
    /// The record's position in the request (0 for a single record).
    pub index: usize,
    pub id: i64,
    /// The subject's pseudonym: shown to compliance and admin only, so that
    /// the ingest token cannot turn raw ids into pseudonyms.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub subject: Option<String>,
    /// The same record was in the ledger already; nothing new was stored.
    pub duplicate: bool,
}

/// One record that was not stored, and why.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvalidRecord {
    pub index: usize,
    pub field: String,
    pub reason: String,
}

/// The outcome of a request: what was stored and what was refused.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsentOutcome {
    pub records: Vec<StoredRecord>,
    pub invalid: Vec<InvalidRecord>,
}

/// The 422 body when no record of the request could be stored: `invalid`
/// names each bad record; it is absent when the body itself has the wrong
/// shape (no records, too many, not an array).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsentsRejected {
    pub error: &'static str,
    pub message: String,
    #[schema(required = false)]
    pub invalid: Vec<InvalidRecord>,
}

/// A single record, or `{"records": [...]}` with up to 1000.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ConsentBody {
    One(Box<ConsentInput>),
    Batch { records: Vec<ConsentInput> },
}

/// Appends records. Each is checked on its own: valid ones are stored (a
/// record already in the ledger is not stored twice), invalid ones are listed
/// with their index, field and reason. 201 when at least one record is in the
/// ledger after the call; 422 when none is.
#[utoipa::path(post, path = "/api/v1/consents", tag = "consents", request_body = ConsentBody, security(("bearer" = [])), responses(
    (status = 201, body = ConsentOutcome),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 413, body = ErrorBody),
    (status = 422, description = "No record could be stored", body = ConsentsRejected),
    (status = 503, body = ErrorBody),
))]
#[post("/api/v1/consents")]
pub async fn append(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let values = match body.into_inner() {
        serde_json::Value::Object(mut object) if object.contains_key("records") => {
            if object.len() != 1 {
                return Err(ApiError::Unprocessable(
                    "a batch body holds only the field `records`".to_owned(),
                ));
            }
            match object.remove("records") {
                Some(serde_json::Value::Array(values)) => values,
                _ => {
                    return Err(ApiError::Unprocessable(
                        "`records` must be an array of consent records".to_owned(),
                    ));
                }
            }
        }
        single @ serde_json::Value::Object(_) => vec![single],
        _ => {
            return Err(ApiError::Unprocessable(
                "the body must be a consent record or {\"records\": [...]}".to_owned(),
            ));
        }
    };
    if values.is_empty() {
        return Err(ApiError::Unprocessable("`records` is empty".to_owned()));
    }
    if values.len() > MAX_BATCH {
        return Err(ApiError::Unprocessable(format!(
            "a batch holds at most {MAX_BATCH} records; this one has {}",
            values.len()
        )));
    }
    let purposes = Registry::new(state.store.list_purpose_records().await?);
    let now = state.store.now();
    let mut valid = Vec::with_capacity(values.len());
    let mut positions = Vec::with_capacity(values.len());
    let mut invalid = Vec::new();
    for (index, value) in values.into_iter().enumerate() {
        let parsed = serde_json::from_value::<ConsentInput>(value)
            .map_err(|e| FieldError::new("record", redact_values(&e.to_string())))
            .and_then(|input| input.into_record(&purposes, &state.keys, now));
        match parsed {
            Ok(record) => {
                valid.push(record);
                positions.push(index);
            }
            Err(error) => invalid.push(InvalidRecord {
                index,
                field: error.field,
                reason: error.reason,
            }),
        }
    }
    if valid.is_empty() {
        let message = match invalid.as_slice() {
            [only] => format!("the record is invalid: {}: {}", only.field, only.reason),
            _ => format!("none of the {} records is valid", invalid.len()),
        };
        return Ok(HttpResponse::UnprocessableEntity().json(ConsentsRejected {
            error: "unprocessable",
            message,
            invalid,
        }));
    }
    let appended = state.store.append_consents(&valid, &caller.0).await?;
    let shows_subjects = matches!(caller.0.role, Some(Role::Compliance | Role::Admin));
    let records = appended
        .into_iter()
        .zip(positions)
        .map(|(a, index)| StoredRecord {
            index,
            id: a.id,
            subject: shows_subjects.then_some(a.subject),
            duplicate: a.duplicate,
        })
        .collect();
    Ok(HttpResponse::Created().json(ConsentOutcome { records, invalid }))
}
