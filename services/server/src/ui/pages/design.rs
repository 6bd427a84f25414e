//! The design form of a pilot: `/ui/experiments/new` creates a draft and
//! `/ui/experiments/{key}/edit` edits a draft, submitted, approved or denied
//! one, both through the API's service (`service::experiments::create` and
//! `update`). The form's own buttons add and remove variant and guardrail
//! rows and show the consent-aware plan of the design as typed, without
//! JavaScript. A refused form comes back with the values typed and each
//! refusal beside its field. Reading the form's fields and turning them
//! into the service's input is `design/form.rs`.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;
use pilotgate_domain::experiment::{Action, State, transition};
use pilotgate_store::Experiment;

use super::plan_summary;
use crate::service;
use crate::startup::AppState;
use crate::ui::{Session, UiError, html, see_other};

/// The API route that creating mirrors.
const CREATE: &str = "/api/v1/experiments";
/// The API route that editing mirrors.
const UPDATE: &str = "/api/v1/experiments/{key}";

mod form;

use form::{MAX_ROWS, Op, Posted, blank, fields_of, input_of, read, refusal};

/// What a form is for: a new pilot, or the stored one it edits.
enum Target {
    New,
    Edit(Box<Experiment>),
}

impl Target {
    fn key(&self) -> Option<&str> {
        match self {
            Target::New => None,
            Target::Edit(e) => Some(e.design.key.as_str()),
        }
    }
}

/// The page of `fields` for `target`, with `errors` and an optional plan.
async fn page(
    session: &Session,
    state: &AppState,
    target: &Target,
    fields: view::DesignFields,
    errors: BTreeMap<String, String>,
    general_error: Option<String>,
    plan: Option<view::PlanSummary>,
) -> Result<view::DesignPage, UiError> {
    let purposes = state
        .store
        .list_purposes()
        .await
        .map_err(|e| session.fail(e))?
        .into_iter()
        .map(|p| view::PurposeOption {
            key: p.key.to_string(),
            allowed_bases: p
                .allowed_bases
                .iter()
                .map(|b| b.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            min_notice_version: p.min_notice_version,
        })
        .collect();
    let categories = super::inventory::category_options(&state.store)
        .await
        .map_err(|e| session.fail(e))?;
    let (title, action, cancel, note) = match target {
        Target::New => (
            "Design a pilot".to_owned(),
            urls::NEW_EXPERIMENT.to_owned(),
            urls::EXPERIMENTS.to_owned(),
            None,
        ),
        Target::Edit(e) => {
            let key = e.design.key.as_str();
            let note = match e.state {
                State::Draft => None,
                State::Submitted => Some(
                    "This pilot awaits compliance's decision: saving withdraws it from review and returns it to draft.",
                ),
                State::Approved => Some(
                    "This pilot is approved: saving a change voids the approval and returns it to draft, to be submitted and approved again.",
                ),
                State::Denied => Some(
                    "Compliance denied this design: saving a change returns it to draft, to be submitted again.",
                ),
                State::Running | State::Stopped => None,
            };
            (
                format!("Edit: {}", e.design.name),
                urls::edit(key),
                urls::results(key),
                note.map(str::to_owned),
            )
        }
    };
    Ok(view::DesignPage {
        chrome: session.chrome(&title, urls::EXPERIMENTS),
        action,
        editing: target.key().map(str::to_owned),
        state_note: note,
        fields,
        purposes,
        categories,
        segment_options: super::inventory::segment_options(),
        errors,
        general_error,
        plan,
        cancel_href: cancel,
    })
}

/// Refuses a role that may not call `method api`.
fn may(session: &Session, method: &str, api: &str) -> Result<(), UiError> {
    if session.may(method, api) {
        Ok(())
    } else {
        Err(session.fail(UiError::page(
            StatusCode::FORBIDDEN,
            "Only marketers design pilots.",
        )))
    }
}

/// The stored pilot `key` if it may be edited now, else the page's 404 or 409.
async fn editable(session: &Session, state: &AppState, key: &str) -> Result<Experiment, UiError> {
    let experiment = service::experiments::find(&state.store, key)
        .await
        .map_err(|e| session.fail(e))?;
    if let Err(refused) = transition(experiment.state, Action::Edit) {
        return Err(session.fail(UiError::page(StatusCode::CONFLICT, refused.to_string())));
    }
    Ok(experiment)
}

pub async fn new_form(
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, UiError> {
    may(&session, "POST", CREATE)?;
    let page = page(
        &session,
        &state,
        &Target::New,
        blank(),
        BTreeMap::new(),
        None,
        None,
    )
    .await?;
    Ok(html(StatusCode::OK, &page))
}

pub async fn edit_form(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    may(&session, "PUT", UPDATE)?;
    let experiment = editable(&session, &state, &path).await?;
    let fields = fields_of(&experiment);
    let target = Target::Edit(Box::new(experiment));
    let page = page(
        &session,
        &state,
        &target,
        fields,
        BTreeMap::new(),
        None,
        None,
    )
    .await?;
    Ok(html(StatusCode::OK, &page))
}

pub async fn create(
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, UiError> {
    may(&session, "POST", CREATE)?;
    submit(session, &state, Target::New, form.into_inner()).await
}

pub async fn update(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, UiError> {
    may(&session, "PUT", UPDATE)?;
    let experiment = editable(&session, &state, &path).await?;
    submit(
        session,
        &state,
        Target::Edit(Box::new(experiment)),
        form.into_inner(),
    )
    .await
}

/// One POST of the form: a row added or removed, the plan, or the save.
async fn submit(
    session: Session,
    state: &AppState,
    target: Target,
    pairs: Vec<(String, String)>,
) -> Result<HttpResponse, UiError> {
    let Posted {
        mut fields,
        csrf,
        op,
    } = read(pairs);
    session.check_csrf(&csrf)?;
    let mut errors = BTreeMap::new();
    let mut general = None;
    let mut plan = None;
    match op {
        Op::AddVariant if fields.variants.len() < MAX_ROWS => {
            fields.variants.push((String::new(), "1".to_owned()));
        }
        Op::AddGuardrail if fields.guardrails.len() < MAX_ROWS => {
            fields.guardrails.push((String::new(), "binary".to_owned()));
        }
        Op::AddVariant | Op::AddGuardrail => {
            general = Some(format!(
                "A design has at most {MAX_ROWS} rows of each kind."
            ));
        }
        Op::RemoveVariant(n) if n < fields.variants.len() => {
            fields.variants.remove(n);
        }
        Op::RemoveGuardrail(n) if n < fields.guardrails.len() => {
            fields.guardrails.remove(n);
        }
        Op::RemoveVariant(_) | Op::RemoveGuardrail(_) => {}
        Op::Plan => match planned(state, &session, &fields, target.key()).await? {
            Ok(summary) => plan = Some(summary),
            Err((field_errors, message)) => {
                errors = field_errors;
                general = message;
            }
        },
        Op::Save => {
            let saved = match input_of(&fields, target.key()) {
                Err(field_errors) => Err((field_errors, None)),
                Ok(input) => {
                    let done = match &target {
                        Target::New => {
                            service::experiments::create(&state.store, &session.actor, input).await
                        }
                        Target::Edit(e) => {
                            service::experiments::update(
                                &state.store,
                                &session.actor,
                                e.design.key.as_str(),
                                input,
                            )
                            .await
                        }
                    };
                    match done {
                        Ok(experiment) => Ok(experiment),
                        Err(e) => Err(refusal(e).map_err(|e| session.fail(e))?),
                    }
                }
            };
            match saved {
                Ok(experiment) => {
                    return Ok(see_other(&urls::results(experiment.design.key.as_str())));
                }
                Err((field_errors, message)) => {
                    errors = field_errors;
                    general = message;
                }
            }
        }
    }
    let status = if errors.is_empty() && general.is_none() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = page(&session, state, &target, fields, errors, general, plan).await?;
    Ok(html(status, &page))
}

/// The plan of the design as typed, or why it cannot be made.
#[allow(clippy::type_complexity)]
async fn planned(
    state: &AppState,
    session: &Session,
    fields: &view::DesignFields,
    key: Option<&str>,
) -> Result<Result<view::PlanSummary, (BTreeMap<String, String>, Option<String>)>, UiError> {
    let visitors = fields.daily_visitors.trim();
    let daily_visitors = if visitors.is_empty() {
        None
    } else {
        match visitors.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Some(v),
            _ => {
                let errors = BTreeMap::from([(
                    "daily_visitors".to_owned(),
                    "must be a number of visitors, 0 or more".to_owned(),
                )]);
                return Ok(Err((errors, None)));
            }
        }
    };
    let input = match input_of(fields, key) {
        Ok(input) => input,
        Err(errors) => return Ok(Err((errors, None))),
    };
    let design_key = key
        .map(str::to_owned)
        .or_else(|| input.key.clone())
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "planning".to_owned());
    let made = async {
        let (design, needed) = input
            .into_design(&design_key, &session.actor, &state.store)
            .await?;
        let eligible =
            service::plan::eligible_share(&state.store, design.purpose.as_str(), state.min_cell)
                .await?;
        service::plan::plan_of(&design, needed, eligible, daily_visitors, None)
    }
    .await;
    match made {
        Ok(plan) => Ok(Ok(plan_summary(&plan))),
        Err(e) => Ok(Err(refusal(e).map_err(|e| session.fail(e))?)),
    }
}
