//! Subjects, by pseudonym: resolving a raw id, reading the ledger and erasure.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, post, web};
use chrono::Utc;
use pilotgate_domain::consent::ConsentRecord;
use pilotgate_domain::eligibility::eligible;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::consent_input::check_user_id;
use crate::error::{ApiError, ErrorBody};
use crate::startup::AppState;

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

/// A subject's pseudonym under the current key, and every pseudonym of the
/// same person (current key first, then older versions) that the ledger holds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Resolved {
    pub subject: String,
    pub key_version: u32,
    pub known_as: Vec<KnownPseudonym>,
}

/// A pseudonym under one key version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KnownPseudonym {
    pub subject: String,
    pub key_version: u32,
}

/// The state in force for one purpose.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CurrentState {
    pub purpose: String,
    /// Basis and status of the record in force now; null when none is in force yet.
    pub basis: Option<String>,
    pub status: Option<String>,
    pub eligible: bool,
    /// The reason code when not eligible.
    pub reason: Option<String>,
}

/// One record of the ledger as shown to compliance.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordView {
    pub id: i64,
    pub purpose: String,
    pub basis: String,
    pub status: String,
    pub notice_id: String,
    pub notice_version: u32,
    pub source: SourceView,
    pub collected_at: String,
    pub effective_from: String,
    pub expires_at: Option<String>,
    pub proof_ref: Option<String>,
    pub recorded_by: String,
    pub key_version: u32,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SourceView {
    pub channel: String,
    pub method: String,
}

/// A subject's current states and full history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubjectConsents {
    pub subject: String,
    pub current: Vec<CurrentState>,
    pub history: Vec<RecordView>,
}

/// What an erasure deleted, in total and per pseudonym of the person.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErasureView {
    pub subject: String,
    pub erased_at: String,
    pub deleted: DeletedView,
    /// One entry per pseudonym of the person (per key version) that was erased now.
    pub versions: Vec<ErasedVersionView>,
    pub audit_id: i64,
}

/// What one pseudonym of the person lost.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErasedVersionView {
    pub subject: String,
    pub key_version: u32,
    pub deleted: DeletedView,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeletedView {
    pub assignments: u64,
    pub events: u64,
}

/// A pseudonym from the path: 64 lowercase hex digits.
fn parse_subject(subject: &str) -> Result<String, ApiError> {
    if subject.len() == 64
        && subject
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(subject.to_owned())
    } else {
        Err(ApiError::BadRequest(
            "the subject in the path must be a pseudonym (64 lowercase hex digits); resolve a raw id with POST /api/v1/subjects/resolve".to_owned(),
        ))
    }
}

fn rfc3339(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl From<ConsentRecord> for RecordView {
    fn from(r: ConsentRecord) -> Self {
        RecordView {
            id: r.id,
            purpose: r.purpose,
            basis: r.basis.as_str().to_owned(),
            status: r.status.as_str().to_owned(),
            notice_id: r.notice_id,
            notice_version: r.notice_version,
            source: SourceView {
                channel: r.source_channel,
                method: r.source_method,
            },
            collected_at: rfc3339(r.collected_at),
            effective_from: rfc3339(r.effective_from),
            expires_at: r.expires_at.map(rfc3339),
            proof_ref: r.proof_ref,
            recorded_by: r.recorded_by,
            key_version: r.key_version,
        }
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
    check_user_id(&body.user_id).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let candidates = state.keys.candidates(&body.user_id);
    let pseudonym = candidates[0].clone();
    let texts: Vec<String> = candidates.iter().map(|p| p.as_str().to_owned()).collect();
    let known = state.store.subjects_holding_data(&texts).await?;
    // Seen together now: an erasure by any of them reaches the others.
    state
        .store
        .link_pseudonyms(&pseudonym, &candidates[1..])
        .await?;
    let known_as = candidates
        .iter()
        .filter(|p| known.iter().any(|k| k == p.as_str()))
        .map(|p| KnownPseudonym {
            subject: p.to_string(),
            key_version: p.key_version(),
        })
        .collect();
    state
        .store
        .record_audit(
            &caller.0,
            "subject.resolve",
            format!("subject:{pseudonym}"),
            serde_json::json!({}),
        )
        .await?;
    Ok(HttpResponse::Ok().json(Resolved {
        subject: pseudonym.to_string(),
        key_version: pseudonym.key_version(),
        known_as,
    }))
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
    let subjects = [subject.clone()];
    let history = state.store.consent_history(&subjects).await?;
    let erased = state.store.is_erased(&subjects).await?;
    let purposes = state.store.list_purposes().await?;
    let now = state.store.now();
    let mut by_purpose: BTreeMap<&str, Vec<ConsentRecord>> = BTreeMap::new();
    for record in &history {
        by_purpose
            .entry(record.purpose.as_str())
            .or_default()
            .push(record.clone());
    }
    let current = by_purpose
        .into_iter()
        .filter_map(|(key, records)| {
            let purpose = purposes.iter().find(|p| p.key.as_str() == key)?;
            let in_force = records
                .iter()
                .filter(|r| r.effective_from <= now)
                .max_by_key(|r| (r.effective_from, r.id));
            let decision = eligible(purpose, &records, erased, now);
            Some(CurrentState {
                purpose: key.to_owned(),
                basis: in_force.map(|r| r.basis.as_str().to_owned()),
                status: in_force.map(|r| r.status.as_str().to_owned()),
                eligible: decision.is_eligible(),
                reason: decision.reason().map(|r| r.as_str().to_owned()),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(SubjectConsents {
        subject,
        current,
        history: history.into_iter().map(RecordView::from).collect(),
    }))
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
    let history = state
        .store
        .consent_history(std::slice::from_ref(&subject))
        .await?;
    let key_version = history
        .first()
        .map_or(state.keys.current().version(), |r| r.key_version);
    let receipt = state
        .store
        .erase_subject(&subject, key_version, &caller.0)
        .await?;
    Ok(HttpResponse::Ok().json(ErasureView {
        subject: receipt.subject,
        erased_at: rfc3339(receipt.erased_at),
        deleted: DeletedView {
            assignments: receipt.deleted.assignments,
            events: receipt.deleted.events,
        },
        versions: receipt
            .versions
            .into_iter()
            .map(|v| ErasedVersionView {
                subject: v.subject,
                key_version: v.key_version,
                deleted: DeletedView {
                    assignments: v.deleted.assignments,
                    events: v.deleted.events,
                },
            })
            .collect(),
        audit_id: receipt.audit_id,
    }))
}
