//! Submit, start and stop from the pilot's page. Each button leads to a
//! second page that says what the action does; its form does it through the
//! API's service (`service::experiments::transition`, audited by the store)
//! for the design version that page showed.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;
use pilotgate_domain::experiment::{Action, transition};
use serde::Deserialize;

use crate::service;
use crate::startup::AppState;
use crate::ui::{Session, UiError, html, see_other};

/// The confirmation's form.
#[derive(Deserialize)]
pub struct LifecycleForm {
    csrf: String,
    design_version: i64,
}

/// What the confirmation says of `action`: the API route it mirrors, the
/// button, the explanation, and whether it cannot be undone.
fn describe(action: Action) -> (&'static str, &'static str, &'static str, bool) {
    match action {
        Action::Submit => (
            "/api/v1/experiments/{key}/submit",
            "Submit for approval",
            "Compliance will review this design version. Until they decide, nobody can be assigned; editing it afterwards withdraws it from review.",
            false,
        ),
        Action::Start => (
            "/api/v1/experiments/{key}/start",
            "Start the pilot",
            "From now on, eligible subjects asked for through the API are assigned to a variant and their events are collected. The design can no longer be edited.",
            false,
        ),
        _ => (
            "/api/v1/experiments/{key}/stop",
            "Stop the pilot",
            "No one else will be assigned and no more events are collected. A stopped pilot cannot be started again; its results stay readable.",
            true,
        ),
    }
}

fn refuse_role(session: &Session, action: Action) -> Result<&'static str, UiError> {
    let (api, ..) = describe(action);
    if session.may("POST", api) {
        Ok(api)
    } else {
        Err(session.fail(UiError::page(
            StatusCode::FORBIDDEN,
            format!("Only marketers may {} a pilot.", action.as_str()),
        )))
    }
}

async fn confirm(
    session: Session,
    state: web::Data<AppState>,
    key: &str,
    action: Action,
) -> Result<HttpResponse, UiError> {
    refuse_role(&session, action)?;
    let experiment = service::experiments::find(&state.store, key)
        .await
        .map_err(|e| session.fail(e))?;
    if let Err(refused) = transition(experiment.state, action) {
        return Err(session.fail(UiError::page(StatusCode::CONFLICT, refused.to_string())));
    }
    let (_, button, explanation, irreversible) = describe(action);
    let key = experiment.design.key.as_str();
    let page = view::ConfirmPage {
        chrome: session.chrome(&format!("{button}?"), urls::EXPERIMENTS),
        experiment_name: experiment.design.name.clone(),
        explanation: explanation.to_owned(),
        design_version: experiment.design_version,
        action: urls::lifecycle(key, action.as_str()),
        button: button.to_owned(),
        irreversible,
        back_href: urls::results(key),
    };
    Ok(html(StatusCode::OK, &page))
}

async fn act(
    session: Session,
    state: web::Data<AppState>,
    key: &str,
    action: Action,
    form: LifecycleForm,
) -> Result<HttpResponse, UiError> {
    session.check_csrf(&form.csrf)?;
    refuse_role(&session, action)?;
    service::experiments::transition(
        &state.store,
        &session.actor,
        key,
        action,
        Some(form.design_version),
    )
    .await
    .map_err(|e| session.fail(e))?;
    Ok(see_other(&urls::results(key)))
}

pub async fn confirm_submit(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    confirm(session, state, &path, Action::Submit).await
}

pub async fn confirm_start(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    confirm(session, state, &path, Action::Start).await
}

pub async fn confirm_stop(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    confirm(session, state, &path, Action::Stop).await
}

pub async fn submit(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<LifecycleForm>,
) -> Result<HttpResponse, UiError> {
    act(session, state, &path, Action::Submit, form.into_inner()).await
}

pub async fn start(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<LifecycleForm>,
) -> Result<HttpResponse, UiError> {
    act(session, state, &path, Action::Start, form.into_inner()).await
}

pub async fn stop(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<LifecycleForm>,
) -> Result<HttpResponse, UiError> {
    act(session, state, &path, Action::Stop, form.into_inner()).await
}
