//! The design form of a pilot: `/ui/experiments/new` creates a draft and
//! `/ui/experiments/{key}/edit` edits a draft, submitted, approved or denied
//! one, both through the API's service (`service::experiments::create` and
//! `update`). The form's own buttons add and remove variant and guardrail
//! rows and show the consent-aware plan of the design as typed, without
//! JavaScript. A refused form comes back with the values typed and each
//! refusal beside its field.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;
use pilotgate_domain::experiment::{Action, State, transition};
use pilotgate_store::Experiment;

use super::plan_summary;
use crate::service::experiments::{DesignInput, MetricInput, VariantInput};
use crate::service::{self, ServiceError};
use crate::startup::AppState;
use crate::ui::{Session, UiError, html, see_other};

/// The API route that creating mirrors.
const CREATE: &str = "/api/v1/experiments";
/// The API route that editing mirrors.
const UPDATE: &str = "/api/v1/experiments/{key}";

/// The most rows of variants or guardrails a form carries.
const MAX_ROWS: usize = 20;

/// The form fields a refusal can stand beside; any other goes on top.
const FIELDS: &[&str] = &[
    "key",
    "name",
    "hypothesis",
    "owner",
    "purpose",
    "variants",
    "coverage",
    "seed",
    "primary_metric",
    "guardrails",
    "mde",
    "alpha",
    "power",
    "baseline_rate",
    "attribution_window_hours",
    "data_categories",
    "retention_days",
    "daily_visitors",
];

/// What a POST of the form asks for.
#[derive(Debug, PartialEq, Eq)]
enum Op {
    Save,
    Plan,
    AddVariant,
    RemoveVariant(usize),
    AddGuardrail,
    RemoveGuardrail(usize),
}

impl Op {
    fn parse(value: &str) -> Op {
        let index = |prefix: &str| {
            value
                .strip_prefix(prefix)
                .and_then(|n| n.parse::<usize>().ok())
        };
        match value {
            "plan" => Op::Plan,
            "add_variant" => Op::AddVariant,
            "add_guardrail" => Op::AddGuardrail,
            _ => match (index("remove_variant_"), index("remove_guardrail_")) {
                (Some(n), _) => Op::RemoveVariant(n),
                (None, Some(n)) => Op::RemoveGuardrail(n),
                _ => Op::Save,
            },
        }
    }
}

/// A posted form: its fields, CSRF token and button.
struct Posted {
    fields: view::DesignFields,
    csrf: String,
    op: Op,
}

/// Reads the form's pairs; repeated names (`variant_key`, …) make the rows.
fn read(pairs: Vec<(String, String)>) -> Posted {
    let mut fields = view::DesignFields::default();
    let (mut csrf, mut op) = (String::new(), Op::Save);
    let (mut variant_keys, mut variant_weights) = (Vec::new(), Vec::new());
    let (mut guardrail_events, mut guardrail_kinds) = (Vec::new(), Vec::new());
    for (name, value) in pairs {
        let slot = match name.as_str() {
            "csrf" => &mut csrf,
            "op" => {
                op = Op::parse(&value);
                continue;
            }
            "variant_key" => {
                variant_keys.push(value);
                continue;
            }
            "variant_weight" => {
                variant_weights.push(value);
                continue;
            }
            "guardrail_event" => {
                guardrail_events.push(value);
                continue;
            }
            "guardrail_kind" => {
                guardrail_kinds.push(value);
                continue;
            }
            "key" => &mut fields.key,
            "name" => &mut fields.name,
            "hypothesis" => &mut fields.hypothesis,
            "owner" => &mut fields.owner,
            "purpose" => &mut fields.purpose,
            "coverage" => &mut fields.coverage,
            "seed" => &mut fields.seed,
            "primary_event" => &mut fields.primary_event,
            "primary_kind" => &mut fields.primary_kind,
            "mde" => &mut fields.mde,
            "alpha" => &mut fields.alpha,
            "power" => &mut fields.power,
            "baseline_rate" => &mut fields.baseline_rate,
            "attribution_window_hours" => &mut fields.attribution_window_hours,
            "data_categories" => &mut fields.data_categories,
            "retention_days" => &mut fields.retention_days,
            "daily_visitors" => &mut fields.daily_visitors,
            _ => continue,
        };
        *slot = value;
    }
    fields.variants = zip_rows(variant_keys, variant_weights, "1");
    fields.guardrails = zip_rows(guardrail_events, guardrail_kinds, "binary");
    Posted { fields, csrf, op }
}

/// Pairs of two repeated fields, the second defaulting to `missing`, at most
/// [`MAX_ROWS`].
fn zip_rows(first: Vec<String>, second: Vec<String>, missing: &str) -> Vec<(String, String)> {
    let mut second = second.into_iter();
    first
        .into_iter()
        .take(MAX_ROWS)
        .map(|a| (a, second.next().unwrap_or_else(|| missing.to_owned())))
        .collect()
}

/// The fields of a new design: a control and one treatment, full coverage,
/// a binary metric, 5% MDE at α 0.05 and power 0.8, 90 days of retention.
fn blank() -> view::DesignFields {
    view::DesignFields {
        variants: vec![
            ("control".to_owned(), "1".to_owned()),
            ("treatment".to_owned(), "1".to_owned()),
        ],
        coverage: "1".to_owned(),
        primary_kind: "binary".to_owned(),
        mde: "0.05".to_owned(),
        alpha: "0.05".to_owned(),
        power: "0.8".to_owned(),
        retention_days: "90".to_owned(),
        ..view::DesignFields::default()
    }
}

/// The fields of a stored design.
fn fields_of(experiment: &Experiment) -> view::DesignFields {
    let d = &experiment.design;
    let number = |x: f64| x.to_string();
    view::DesignFields {
        key: d.key.to_string(),
        name: d.name.clone(),
        hypothesis: d.hypothesis.clone(),
        owner: d.owner.clone(),
        purpose: d.purpose.to_string(),
        variants: d
            .variants
            .iter()
            .map(|v| (v.key.clone(), number(v.weight)))
            .collect(),
        coverage: number(d.coverage),
        seed: if d.seed == d.key.as_str() {
            String::new()
        } else {
            d.seed.clone()
        },
        primary_event: d.primary_metric.event.clone(),
        primary_kind: d.primary_metric.kind.as_str().to_owned(),
        guardrails: d
            .guardrails
            .iter()
            .map(|g| (g.event.clone(), g.kind.as_str().to_owned()))
            .collect(),
        mde: number(d.mde),
        alpha: number(d.alpha),
        power: number(d.power),
        baseline_rate: d.baseline_rate.map(number).unwrap_or_default(),
        attribution_window_hours: d
            .attribution_window_hours
            .map(|h| h.to_string())
            .unwrap_or_default(),
        data_categories: d.data_categories.join(", "),
        retention_days: d.retention_days.to_string(),
        daily_visitors: String::new(),
    }
}

/// The design input the fields describe, or each field that is not a
/// number where one is needed.
fn input_of(
    fields: &view::DesignFields,
    key: Option<&str>,
) -> Result<DesignInput, BTreeMap<String, String>> {
    let mut errors = BTreeMap::new();
    let mut number = |field: &str, text: &str| -> f64 {
        match text.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => x,
            _ => {
                errors.insert(field.to_owned(), "must be a number".to_owned());
                f64::NAN
            }
        }
    };
    let coverage = number("coverage", &fields.coverage);
    let mde = number("mde", &fields.mde);
    let alpha = number("alpha", &fields.alpha);
    let power = number("power", &fields.power);
    let baseline_rate = (!fields.baseline_rate.trim().is_empty())
        .then(|| number("baseline_rate", &fields.baseline_rate));
    let weights: Vec<f64> = fields
        .variants
        .iter()
        .map(|(_, weight)| number("variants", weight))
        .collect();
    let mut whole = |field: &str, text: &str| -> Option<u32> {
        match text.trim().parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.insert(
                    field.to_owned(),
                    "must be a whole number, 0 or more".to_owned(),
                );
                None
            }
        }
    };
    let retention_days = whole("retention_days", &fields.retention_days);
    let attribution_window_hours = if fields.attribution_window_hours.trim().is_empty() {
        None
    } else {
        whole("attribution_window_hours", &fields.attribution_window_hours)
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let text = |s: &str| s.trim().to_owned();
    Ok(DesignInput {
        key: key.map(str::to_owned).or_else(|| Some(text(&fields.key))),
        name: text(&fields.name),
        hypothesis: fields.hypothesis.trim().to_owned(),
        owner: Some(text(&fields.owner)).filter(|o| !o.is_empty()),
        purpose: text(&fields.purpose),
        variants: fields
            .variants
            .iter()
            .zip(weights)
            .map(|((key, _), weight)| VariantInput {
                key: text(key),
                weight,
            })
            .collect(),
        coverage,
        seed: Some(text(&fields.seed)).filter(|s| !s.is_empty()),
        primary_metric: MetricInput {
            event: text(&fields.primary_event),
            kind: text(&fields.primary_kind),
        },
        guardrails: fields
            .guardrails
            .iter()
            .filter(|(event, _)| !event.trim().is_empty())
            .map(|(event, kind)| MetricInput {
                event: text(event),
                kind: text(kind),
            })
            .collect(),
        mde,
        alpha,
        power,
        baseline_rate,
        attribution_window_hours,
        data_categories: fields
            .data_categories
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect(),
        retention_days: retention_days.unwrap_or_default(),
    })
}

/// A service refusal as form errors: `field: reason` beside its field (a
/// nested field such as `variants[1].key` stands beside `variants`), any
/// other refusal on top of the form.
fn refusal(error: ServiceError) -> Result<(BTreeMap<String, String>, Option<String>), UiError> {
    match error {
        ServiceError::Unprocessable(message) => {
            let placed = message.split_once(": ").and_then(|(field, reason)| {
                let field = field.split(['[', '.']).next().unwrap_or(field).to_owned();
                FIELDS
                    .contains(&field.as_str())
                    .then(|| (field, reason.to_owned()))
            });
            Ok(match placed {
                Some((field, reason)) => (BTreeMap::from([(field, reason)]), None),
                None => (BTreeMap::new(), Some(message)),
            })
        }
        ServiceError::Store(pilotgate_store::StoreError::Conflict(message)) => {
            Ok((BTreeMap::new(), Some(message)))
        }
        other => Err(other.into()),
    }
}

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
        let eligible = service::plan::eligible_share(&state.store, design.purpose.as_str()).await?;
        service::plan::plan_of(&design, needed, eligible, daily_visitors, None)
    }
    .await;
    match made {
        Ok(plan) => Ok(Ok(plan_summary(&plan))),
        Err(e) => Ok(Err(refusal(e).map_err(|e| session.fail(e))?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_fields_make_rows_and_buttons_name_their_row() {
        let pairs = [
            ("csrf", "t"),
            ("variant_key", "control"),
            ("variant_weight", "1"),
            ("variant_key", "b"),
            ("variant_weight", "2"),
            ("guardrail_event", "refund"),
            ("guardrail_kind", "sum"),
            ("op", "remove_variant_1"),
            ("mde", "0.1"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .to_vec();
        let posted = read(pairs);
        assert_eq!(posted.csrf, "t");
        assert_eq!(posted.op, Op::RemoveVariant(1));
        assert_eq!(
            posted.fields.variants,
            vec![
                ("control".to_owned(), "1".to_owned()),
                ("b".to_owned(), "2".to_owned())
            ]
        );
        assert_eq!(
            posted.fields.guardrails,
            vec![("refund".to_owned(), "sum".to_owned())]
        );
        assert_eq!(posted.fields.mde, "0.1");
        assert_eq!(Op::parse("anything else"), Op::Save);
    }

    #[test]
    fn numbers_that_are_not_numbers_are_refused_beside_their_fields() {
        let mut fields = blank();
        fields.mde = "five percent".to_owned();
        fields.retention_days = "-3".to_owned();
        let errors = input_of(&fields, None).unwrap_err();
        assert_eq!(
            errors.keys().collect::<Vec<_>>(),
            vec!["mde", "retention_days"]
        );
    }

    #[test]
    fn a_nested_field_stands_beside_its_parent_and_others_go_on_top() {
        let placed = refusal(ServiceError::invalid("variants[1].key", "must be unique")).unwrap();
        assert_eq!(
            placed.0.get("variants").map(String::as_str),
            Some("must be unique")
        );
        let top = refusal(ServiceError::invalid("design", "odd")).unwrap();
        assert!(top.0.is_empty());
        assert_eq!(top.1.as_deref(), Some("design: odd"));
    }
}
