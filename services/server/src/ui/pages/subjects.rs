//! The subject-rights desk (compliance): look a person up by the raw id in a
//! POST body (never in a URL, never echoed back), see what is held under
//! every key version, download it as JSON, and erase the person after a
//! confirmation step, with the receipt shown. Each action goes through the
//! service the API uses (`service::subjects`), so each is audited the same way.

use std::collections::BTreeMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;
use serde::Deserialize;

use super::when;
use crate::service::subjects::{self as service, PersonAccess, is_pseudonym};
use crate::startup::AppState;
use crate::ui::{Session, UiError, html};

/// The API route each desk action mirrors: the role must be allowed it.
const ACCESS: &str = "/api/v1/subjects/{subject}/access";
const LOOKUP: &str = "/api/v1/subjects/lookup";
const ERASURE: &str = "/api/v1/subjects/{subject}/erasure";

/// The lookup form: the raw id, only ever in this body.
#[derive(Deserialize)]
pub struct LookupForm {
    user_id: String,
    csrf: String,
}

/// The download and erase forms: the person's pseudonym under the current key.
#[derive(Deserialize)]
pub struct SubjectForm {
    subject: String,
    csrf: String,
}

/// Refuses the desk action unless the role may `method api`.
fn may(session: &Session, method: &str, api: &str) -> Result<(), UiError> {
    if session.may(method, api) {
        Ok(())
    } else {
        Err(session.fail(UiError::page(
            StatusCode::FORBIDDEN,
            format!(
                "The role '{}' may not use the subject desk.",
                session.role.as_str()
            ),
        )))
    }
}

/// The pseudonym a desk form sent back.
fn pseudonym_of(session: &Session, form: &SubjectForm) -> Result<String, UiError> {
    session.check_csrf(&form.csrf)?;
    if is_pseudonym(&form.subject) {
        Ok(form.subject.clone())
    } else {
        Err(session.fail(UiError::page(
            StatusCode::BAD_REQUEST,
            "The form did not name a pseudonym; look the person up again.",
        )))
    }
}

/// An RFC 3339 instant of the service as the pages show it.
fn shown(at: &str) -> String {
    DateTime::parse_from_rfc3339(at)
        .map(|t| when(t.with_timezone(&Utc)))
        .unwrap_or_else(|_| at.to_owned())
}

fn page(session: &Session, person: Option<view::PersonView>) -> HttpResponse {
    html(
        StatusCode::OK,
        &view::SubjectsPage {
            chrome: session.chrome("Subjects", urls::SUBJECTS),
            person,
        },
    )
}

/// The desk's empty form.
pub async fn form(session: Session) -> Result<HttpResponse, UiError> {
    session.may_read(ACCESS)?;
    Ok(page(&session, None))
}

/// The person behind the raw id in the body (audited as `subject.lookup`).
pub async fn lookup(
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<LookupForm>,
) -> Result<HttpResponse, UiError> {
    session.check_csrf(&form.csrf)?;
    may(&session, "POST", LOOKUP)?;
    let person = service::lookup(&state.store, &state.keys, &session.actor, &form.user_id)
        .await
        .map_err(|e| session.fail(e))?;
    Ok(page(&session, Some(person_view(&person))))
}

/// What is held about the person, as the JSON of `GET /api/v1/subjects/{subject}/access`,
/// as a file (audited as `subject.access`).
pub async fn download(
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<SubjectForm>,
) -> Result<HttpResponse, UiError> {
    let subject = pseudonym_of(&session, &form)?;
    may(&session, "GET", ACCESS)?;
    let document = service::access(&state.store, &state.keys, &session.actor, &subject)
        .await
        .map_err(|e| session.fail(e))?;
    let body = serde_json::to_vec_pretty(&document).map_err(|_| {
        session.fail(UiError::page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The document could not be written.",
        ))
    })?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"subject-{}.json\"", &subject[..12]),
        ))
        .body(body))
}

/// The confirmation step: what the erasure will delete, under which pseudonyms.
pub async fn confirm_erasure(
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<SubjectForm>,
) -> Result<HttpResponse, UiError> {
    let subject = pseudonym_of(&session, &form)?;
    may(&session, "POST", ERASURE)?;
    let person = service::access(&state.store, &state.keys, &session.actor, &subject)
        .await
        .map_err(|e| session.fail(e))?;
    let assignments = person
        .versions
        .iter()
        .map(|v| v.assignments.len() as u64)
        .sum();
    let events = person
        .versions
        .iter()
        .flat_map(|v| &v.events)
        .map(|e| e.events)
        .sum();
    Ok(html(
        StatusCode::OK,
        &view::SubjectErasePage {
            chrome: session.chrome("Erase this person?", urls::SUBJECTS),
            subject,
            pseudonyms: pseudonyms(&person),
            assignments,
            events,
        },
    ))
}

/// The erasure, through the API's service, and its receipt.
pub async fn erase(
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<SubjectForm>,
) -> Result<HttpResponse, UiError> {
    let subject = pseudonym_of(&session, &form)?;
    may(&session, "POST", ERASURE)?;
    let receipt = service::erase(&state.store, &state.keys, &session.actor, &subject)
        .await
        .map_err(|e| session.fail(e))?;
    Ok(html(
        StatusCode::OK,
        &view::SubjectReceiptPage {
            chrome: session.chrome("Erasure receipt", urls::SUBJECTS),
            subject: receipt.subject,
            erased_at: shown(&receipt.erased_at),
            assignments: receipt.deleted.assignments,
            events: receipt.deleted.events,
            versions: receipt
                .versions
                .into_iter()
                .map(|v| view::ReceiptRow {
                    subject: v.subject,
                    key_version: v.key_version,
                    assignments: v.deleted.assignments,
                    events: v.deleted.events,
                })
                .collect(),
            audit_id: receipt.audit_id,
        },
    ))
}

fn pseudonyms(person: &PersonAccess) -> Vec<view::PseudonymRow> {
    person
        .known_as
        .iter()
        .map(|p| view::PseudonymRow {
            subject: p.subject.clone(),
            key_version: p.key_version,
        })
        .collect()
}

/// The desk's view of the access document.
fn person_view(person: &PersonAccess) -> view::PersonView {
    let mut ledger: BTreeMap<&str, Vec<view::LedgerRow>> = BTreeMap::new();
    let mut assignments = Vec::new();
    let mut events = Vec::new();
    let mut erasures = Vec::new();
    for version in &person.versions {
        for r in &version.ledger {
            ledger
                .entry(r.purpose.as_str())
                .or_default()
                .push(view::LedgerRow {
                    id: r.id,
                    key_version: r.key_version,
                    basis: r.basis.clone(),
                    status: r.status.clone(),
                    notice: format!("{} v{}", r.notice_id, r.notice_version),
                    source: format!("{} ({})", r.source.channel, r.source.method),
                    collected_at: shown(&r.collected_at),
                    effective_from: shown(&r.effective_from),
                    expires_at: r.expires_at.as_deref().map(shown).unwrap_or_default(),
                    recorded_by: r.recorded_by.clone(),
                });
        }
        for a in &version.assignments {
            assignments.push(view::AssignmentRow {
                experiment: a.experiment.clone(),
                variant: a.variant.clone(),
                key_version: a.key_version,
                basis: a.basis.clone(),
                consent_record: a
                    .consent_record_id
                    .map_or_else(|| "—".to_owned(), |id| id.to_string()),
                notice_version: a
                    .notice_version
                    .map_or_else(|| "—".to_owned(), |v| format!("v{v}")),
                decided_at: shown(&a.decided_at),
                withdrawn_at: a.withdrawn_at.as_deref().map(shown).unwrap_or_default(),
                segments: a
                    .segment_attributes
                    .clone()
                    .unwrap_or_else(|| "—".to_owned()),
            });
        }
        for e in &version.events {
            events.push(view::EventCountRow {
                experiment: e.experiment.clone(),
                key_version: version.key_version,
                events: e.events,
            });
        }
        if let Some(erasure) = &version.erasure {
            erasures.push(view::ErasureRow {
                key_version: version.key_version,
                erased_at: shown(&erasure.erased_at),
                assignments: erasure.deleted.assignments,
                events: erasure.deleted.events,
                audit_id: erasure.audit_id,
            });
        }
    }
    for records in ledger.values_mut() {
        records.sort_by_key(|r| r.id);
    }
    view::PersonView {
        subject: person.subject.clone(),
        key_version: person.key_version,
        looked_up_at: shown(&person.generated_at),
        pseudonyms: pseudonyms(person),
        erased: person.erased,
        current: person
            .current
            .iter()
            .map(|c| view::PurposeStateRow {
                purpose: c.purpose.clone(),
                in_force: match (&c.basis, &c.status) {
                    (Some(basis), Some(status)) => format!("{basis}: {status}"),
                    _ => "no record in force".to_owned(),
                },
                eligible: c.eligible,
                reason: c.reason.clone().unwrap_or_default(),
            })
            .collect(),
        ledger: ledger
            .into_iter()
            .map(|(purpose, records)| view::PurposeHistory {
                purpose: purpose.to_owned(),
                records,
            })
            .collect(),
        assignments,
        events,
        erasures,
    }
}
