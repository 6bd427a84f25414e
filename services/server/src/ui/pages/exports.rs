//! The governed exports' page forms: an analyst's request on the pilot's
//! page, compliance's approve and deny forms on the compliance view, and the
//! requester's download link. Each goes through the API's service
//! (`service::exports`) and needs the session's CSRF token (the download is
//! a link, like the API's GET, audited before any byte leaves).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;
use pilotgate_store::Experiment;
use serde::Deserialize;

use crate::service::exports::{self, DecisionInput, ExportInput};
use crate::startup::AppState;
use crate::ui::{Session, UiError, see_other};

const LIST: &str = "/api/v1/experiments/{key}/exports";
const DOWNLOAD: &str = "/api/v1/exports/{id}/download";
const APPROVE: &str = "/api/v1/exports/{id}/approve";
const DENY: &str = "/api/v1/exports/{id}/deny";

/// The request form: recipient, format, reason.
#[derive(Deserialize)]
pub struct RequestForm {
    recipient: String,
    format: String,
    reason: String,
    csrf: String,
}

/// The approve and deny forms of an export request.
#[derive(Deserialize)]
pub struct ExportDecisionForm {
    comment: String,
    csrf: String,
}

/// The pilot page's exports section, when this role may list the requests.
pub(super) async fn panel(
    session: &Session,
    state: &AppState,
    experiment: &Experiment,
) -> Result<Option<view::PilotExports>, UiError> {
    if !session.may("GET", LIST) {
        return Ok(None);
    }
    let key = experiment.design.key.as_str();
    let fail = |e| session.fail(e);
    let now = state.store.now();
    let rows = exports::list_of(&state.store, key)
        .await
        .map_err(fail)?
        .into_iter()
        .map(|r| {
            let downloadable = r.requested_by == session.actor.name
                && r.state == "approved"
                && r.expires_at.is_some_and(|at| at > now)
                && r.downloads < r.max_downloads
                && session.may("GET", DOWNLOAD);
            view::PilotExportRow {
                download_href: downloadable.then(|| urls::export_download(&r.id)),
                downloads: format!("{} of {}", r.downloads, r.max_downloads),
                recipient: r.recipient,
                format: r.format,
                requested_by: r.requested_by,
                reason: r.reason,
                state: r.state,
            }
        })
        .collect();
    let mut panel = view::PilotExports {
        rows,
        ..view::PilotExports::default()
    };
    if session.may("POST", LIST) {
        let purpose = experiment.design.purpose.as_str();
        panel.request_action = Some(urls::pilot_exports(key));
        panel.recipients = exports::recipients(&state.store)
            .await
            .map_err(fail)?
            .into_iter()
            .filter(|r| !r.expired && r.purposes.iter().any(|p| p == purpose))
            .map(|r| r.name)
            .collect();
        panel.formats = exports::FORMATS.iter().map(|f| (*f).to_owned()).collect();
    }
    Ok(Some(panel))
}

/// The approve and deny forms' targets of a pending request, for a role
/// that may decide on it (the service still refuses the requester).
pub(super) fn decision_of(
    session: &Session,
    id: &str,
    state: &str,
) -> Option<view::ExportDecision> {
    (state == "pending" && session.may("POST", APPROVE) && session.may("POST", DENY)).then(|| {
        view::ExportDecision {
            approve_action: urls::export_approve(id),
            deny_action: urls::export_deny(id),
        }
    })
}

/// An analyst asks to export pilot `key` (`service::exports::request`).
pub async fn request(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<RequestForm>,
) -> Result<HttpResponse, UiError> {
    session.check_csrf(&form.csrf)?;
    if !session.may("POST", LIST) {
        return Err(session.fail(UiError::page(
            StatusCode::FORBIDDEN,
            "Only an analyst may request an export.",
        )));
    }
    let form = form.into_inner();
    let input = ExportInput {
        recipient: form.recipient,
        format: form.format,
        reason: form.reason,
    };
    exports::request(&state.store, &session.actor, &path, input)
        .await
        .map_err(|e| session.fail(e))?;
    Ok(see_other(&urls::results(&path)))
}

/// The requester downloads an approved export (`service::exports::download`:
/// audited with its manifest before any byte leaves, a bounded number of times).
pub async fn download(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    session.may_read(DOWNLOAD)?;
    let file = exports::download(
        &state.store,
        &state.keys,
        &session.actor,
        &path,
        state.min_cell,
    )
    .await
    .map_err(|e| session.fail(e))?;
    Ok(crate::routes::exports::attachment(file))
}

pub async fn approve(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ExportDecisionForm>,
) -> Result<HttpResponse, UiError> {
    decide(session, state, &path, true, form.into_inner()).await
}

pub async fn deny(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ExportDecisionForm>,
) -> Result<HttpResponse, UiError> {
    decide(session, state, &path, false, form.into_inner()).await
}

/// Compliance approves or denies through the API's service
/// (`service::exports::decide`), never the requester; back to the compliance view.
async fn decide(
    session: Session,
    state: web::Data<AppState>,
    id: &str,
    approve: bool,
    form: ExportDecisionForm,
) -> Result<HttpResponse, UiError> {
    session.check_csrf(&form.csrf)?;
    if !session.may("POST", if approve { APPROVE } else { DENY }) {
        return Err(session.fail(UiError::page(
            StatusCode::FORBIDDEN,
            "Only compliance may decide on an export.",
        )));
    }
    let input = DecisionInput {
        comment: form.comment,
    };
    let view = exports::decide(&state.store, &session.actor, id, approve, input)
        .await
        .map_err(|e| session.fail(e))?;
    Ok(see_other(&urls::compliance(&view.experiment)))
}
