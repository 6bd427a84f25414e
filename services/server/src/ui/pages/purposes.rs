//! The purpose registry's pages: the list with the registration form, and a
//! purpose's page with its history, assessments, and the forms that change,
//! assess and retire it. Every form goes through `service::purposes`, as the
//! API's routes do, and carries the session's CSRF token.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;
use serde::Deserialize;

use crate::service;
use crate::service::purposes::{
    AssessmentInput, AssessmentView, PurposeChangeInput, PurposeInput, PurposeVersionView,
    PurposeView,
};
use crate::startup::AppState;
use crate::ui::{Session, UiError, html, see_other};

/// The fields of the registration and change forms: one checkbox per basis.
#[derive(Deserialize)]
pub struct PurposeForm {
    csrf: String,
    key: Option<String>,
    description: String,
    basis_consent: Option<String>,
    basis_contract: Option<String>,
    basis_legal_obligation: Option<String>,
    basis_vital_interest: Option<String>,
    basis_public_task: Option<String>,
    basis_legitimate_interest: Option<String>,
    min_notice_version: u32,
    retention_days: u32,
    special_category: Option<String>,
    contract_necessary: Option<String>,
    version: Option<u32>,
}

impl PurposeForm {
    fn bases(&self) -> Vec<String> {
        let ticked = [
            &self.basis_consent,
            &self.basis_contract,
            &self.basis_legal_obligation,
            &self.basis_vital_interest,
            &self.basis_public_task,
            &self.basis_legitimate_interest,
        ];
        view::BASES
            .iter()
            .zip(ticked)
            .filter(|(_, on)| on.is_some())
            .map(|(basis, _)| (*basis).to_owned())
            .collect()
    }
}

/// The assessment form.
#[derive(Deserialize)]
pub struct AssessmentForm {
    csrf: String,
    purpose_test: String,
    necessity_test: String,
    interests: String,
    expectations: String,
    safeguards: String,
    outcome: String,
    reviewer: String,
    reviewed_on: String,
}

/// The retirement form.
#[derive(Deserialize)]
pub struct RetireForm {
    csrf: String,
    reason: String,
}

/// Browsers send a textarea's line breaks as CRLF; the rules take `\n`.
fn unix_lines(text: String) -> String {
    text.replace("\r\n", "\n")
}

fn summary(p: &PurposeView) -> view::PurposeSummary {
    view::PurposeSummary {
        key: p.key.clone(),
        href: urls::purpose(&p.key),
        description: p.description.clone(),
        allowed_bases: p.allowed_bases.clone(),
        min_notice_version: p.min_notice_version,
        retention_days: p.retention_days,
        version: p.version,
        li_assessment: p.li_assessment_ref.clone(),
        retired_on: p.retired_at.as_ref().map(|at| at[..10].to_owned()),
        special_category: p.special_category,
        contract_necessary: p.contract_necessary,
    }
}

/// The words of a version's change record.
fn change_text(v: &PurposeVersionView) -> String {
    let list = |field: &str| -> Vec<String> {
        v.change[field]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    if v.change["created"].as_bool() == Some(true) {
        return "registered".to_owned();
    }
    let mut parts = Vec::new();
    if let Some(reason) = v.change["retired"].as_str() {
        parts.push(format!("retired: {reason}"));
    }
    let narrowing = list("narrowing");
    if !narrowing.is_empty() {
        parts.push(format!("narrowed: {}", narrowing.join("; ")));
    }
    let returned = list("returned_to_draft");
    if !returned.is_empty() {
        parts.push(format!(
            "pilots sent back to draft: {}",
            returned.join(", ")
        ));
    }
    if parts.is_empty() {
        "changed without narrowing who may be used".to_owned()
    } else {
        parts.join("; ")
    }
}

fn version_row(v: &PurposeVersionView) -> view::PurposeVersionRow {
    view::PurposeVersionRow {
        version: v.version,
        changed_on: v.changed_at[..10].to_owned(),
        changed_by: v.changed_by.clone(),
        rule: format!(
            "{}; notice v{}; {} days{}{}",
            v.allowed_bases.join(", "),
            v.min_notice_version,
            v.retention_days,
            if v.contract_necessary {
                "; contract-necessary"
            } else {
                ""
            },
            if v.special_category {
                "; special category"
            } else {
                ""
            },
        ),
        change: change_text(v),
    }
}

pub(super) fn assessment_row(a: &AssessmentView) -> view::AssessmentRow {
    view::AssessmentRow {
        version: a.version,
        outcome: a.outcome.clone(),
        reviewer: a.reviewer.clone(),
        reviewed_on: a.reviewed_on.clone(),
        purpose_test: a.purpose_test.clone(),
        necessity_test: a.necessity_test.clone(),
        interests: a.interests.clone(),
        expectations: a.expectations.clone(),
        safeguards: a.safeguards.clone(),
        recorded_by: a.recorded_by.clone(),
    }
}

pub async fn list(session: Session, state: web::Data<AppState>) -> Result<HttpResponse, UiError> {
    session.may_read("/api/v1/purposes")?;
    let purposes = service::purposes::list(&state.store)
        .await
        .map_err(|e| session.fail(e))?;
    Ok(html(
        StatusCode::OK,
        &view::PurposesPage {
            chrome: session.chrome("Purposes", urls::PURPOSES),
            purposes: purposes.iter().map(summary).collect(),
            can_create: session.may("POST", "/api/v1/purposes"),
            form: view::PurposeFields {
                allowed_bases: vec!["consent".to_owned()],
                min_notice_version: 1,
                retention_days: 90,
                ..Default::default()
            },
            create_action: urls::PURPOSES.to_owned(),
        },
    ))
}

pub async fn page(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    session.may_read("/api/v1/purposes/{key}")?;
    let detail = service::purposes::detail(&state.store, &path)
        .await
        .map_err(|e| session.fail(e))?;
    let p = &detail.purpose;
    let assessments = session
        .may("GET", "/api/v1/purposes/{key}/assessments")
        .then(|| detail.assessments.iter().map(assessment_row).collect());
    Ok(html(
        StatusCode::OK,
        &view::PurposePage {
            chrome: session.chrome(&format!("Purpose {}", p.key), urls::PURPOSES),
            purpose: summary(p),
            history: detail.history.iter().map(version_row).collect(),
            assessments,
            can_edit: p.retired_at.is_none() && session.may("PUT", "/api/v1/purposes/{key}"),
            form: view::PurposeFields {
                key: p.key.clone(),
                description: p.description.clone(),
                allowed_bases: p.allowed_bases.clone(),
                min_notice_version: p.min_notice_version,
                special_category: p.special_category,
                contract_necessary: p.contract_necessary,
                retention_days: p.retention_days,
                version: p.version,
            },
            edit_action: urls::purpose(&p.key),
            assess_action: urls::purpose_assessments(&p.key),
            retire_action: urls::purpose_retire(&p.key),
            today: state.store.now().format("%Y-%m-%d").to_string(),
            list_href: urls::PURPOSES.to_owned(),
        },
    ))
}

/// The 403 page of a form the role may not send.
fn refuse_unless(session: &Session, method: &str, api: &str) -> Result<(), UiError> {
    if session.may(method, api) {
        Ok(())
    } else {
        Err(session.fail(UiError::page(
            StatusCode::FORBIDDEN,
            "Only compliance may change the purpose registry.",
        )))
    }
}

pub async fn create(
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<PurposeForm>,
) -> Result<HttpResponse, UiError> {
    session.check_csrf(&form.csrf)?;
    refuse_unless(&session, "POST", "/api/v1/purposes")?;
    let form = form.into_inner();
    let input = PurposeInput {
        key: form.key.clone().unwrap_or_default(),
        allowed_bases: form.bases(),
        description: form.description,
        min_notice_version: form.min_notice_version,
        special_category: form.special_category.is_some(),
        li_assessment_ref: None,
        contract_necessary: form.contract_necessary.is_some(),
        retention_days: form.retention_days,
    };
    let created = service::purposes::create(&state.store, &session.actor, input)
        .await
        .map_err(|e| session.fail(e))?;
    Ok(see_other(&urls::purpose(&created.key)))
}

pub async fn update(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<PurposeForm>,
) -> Result<HttpResponse, UiError> {
    session.check_csrf(&form.csrf)?;
    refuse_unless(&session, "PUT", "/api/v1/purposes/{key}")?;
    let form = form.into_inner();
    let input = PurposeChangeInput {
        allowed_bases: form.bases(),
        description: form.description,
        min_notice_version: form.min_notice_version,
        special_category: form.special_category.is_some(),
        contract_necessary: form.contract_necessary.is_some(),
        retention_days: form.retention_days,
        version: form.version,
    };
    let changed = service::purposes::update(&state.store, &session.actor, &path, input)
        .await
        .map_err(|e| session.fail(e))?;
    Ok(see_other(&urls::purpose(&changed.purpose.key)))
}

pub async fn assess(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<AssessmentForm>,
) -> Result<HttpResponse, UiError> {
    session.check_csrf(&form.csrf)?;
    refuse_unless(&session, "POST", "/api/v1/purposes/{key}/assessments")?;
    let form = form.into_inner();
    let input = AssessmentInput {
        purpose_test: unix_lines(form.purpose_test),
        necessity_test: unix_lines(form.necessity_test),
        interests: unix_lines(form.interests),
        expectations: unix_lines(form.expectations),
        safeguards: unix_lines(form.safeguards),
        outcome: form.outcome,
        reviewer: form.reviewer,
        reviewed_on: form.reviewed_on,
    };
    service::purposes::assess(&state.store, &session.actor, &path, input)
        .await
        .map_err(|e| session.fail(e))?;
    Ok(see_other(&format!("{}#assessments", urls::purpose(&path))))
}

pub async fn retire(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<RetireForm>,
) -> Result<HttpResponse, UiError> {
    session.check_csrf(&form.csrf)?;
    refuse_unless(&session, "POST", "/api/v1/purposes/{key}/retire")?;
    let changed = service::purposes::retire(&state.store, &session.actor, &path, &form.reason)
        .await
        .map_err(|e| session.fail(e))?;
    Ok(see_other(&urls::purpose(&changed.purpose.key)))
}
