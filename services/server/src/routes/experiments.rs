//! Pilots: design, lifecycle, and the DPO's approval with separation of duties.

use actix_web::{HttpResponse, get, post, put, web};
use pilotgate_domain::experiment::{Action, Metric};
use pilotgate_store::Experiment;
use serde::{Deserialize, Serialize};

pub use crate::service::experiments::{DesignInput, MetricInput, VariantInput};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::service;
use crate::service::plan::PlanView;
use crate::startup::AppState;

/// A compliance decision: the design version reviewed, and the reasoning.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    /// The `design_version` the reviewer read; 409 when the design changed since.
    pub design_version: i64,
    pub comment: String,
}

/// Users needed for the pre-registered MDE.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlannedSampleSize {
    pub per_variant: i64,
    /// Assigned users across all variants, given the weights.
    pub total: i64,
}

/// The decision in force.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApprovalView {
    /// `approved` or `denied`.
    pub decision: String,
    pub comment: String,
    pub decided_by: String,
    pub decided_at: String,
    pub design_version: i64,
}

impl From<&pilotgate_store::ApprovalRecord> for ApprovalView {
    fn from(a: &pilotgate_store::ApprovalRecord) -> Self {
        ApprovalView {
            decision: a.decision.clone(),
            comment: a.comment.clone(),
            decided_by: a.decided_by.clone(),
            decided_at: rfc3339(a.decided_at),
            design_version: a.design_version,
        }
    }
}

/// A pilot with its state, approval and planned sample size.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExperimentView {
    pub key: String,
    pub name: String,
    pub hypothesis: String,
    pub owner: String,
    pub purpose: String,
    pub variants: Vec<VariantInput>,
    pub coverage: f64,
    pub seed: String,
    pub primary_metric: MetricInput,
    pub guardrails: Vec<MetricInput>,
    pub mde: f64,
    pub alpha: f64,
    pub power: f64,
    pub baseline_rate: Option<f64>,
    pub attribution_window_hours: Option<u32>,
    pub data_categories: Vec<String>,
    pub retention_days: u32,
    /// The pre-registered segments (`GET /api/v1/data-categories` lists the vocabulary).
    pub segments: Vec<String>,
    /// holm or benjamini_hochberg: how segment results' p-values are adjusted.
    pub segment_correction: String,
    /// draft, submitted, approved, denied, running or stopped.
    pub state: String,
    pub design_version: i64,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub stopped_at: Option<String>,
    pub approval: Option<ApprovalView>,
    pub planned_sample_size: Option<PlannedSampleSize>,
    /// The consent-aware plan (one pilot's answer only, not the list's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanView>,
}

/// Query of one pilot.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PlanQuery {
    /// Expected daily visitors for the plan (a running pilot uses its observed daily assignments).
    pub daily_visitors: Option<f64>,
}

/// Every pilot.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExperimentList {
    pub experiments: Vec<ExperimentView>,
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn metric_view(metric: &Metric) -> MetricInput {
    MetricInput {
        event: metric.event.clone(),
        kind: metric.kind.as_str().to_owned(),
    }
}

impl From<&Experiment> for ExperimentView {
    fn from(e: &Experiment) -> Self {
        let d = &e.design;
        let planned_sample_size = e.planned_sample_size.map(|per_variant| {
            let total_weight: f64 = d.variants.iter().map(|v| v.weight).sum();
            let smallest = d
                .variants
                .iter()
                .map(|v| v.weight)
                .fold(f64::INFINITY, f64::min);
            PlannedSampleSize {
                per_variant,
                total: (per_variant as f64 * total_weight / smallest).ceil() as i64,
            }
        });
        ExperimentView {
            key: d.key.to_string(),
            name: d.name.clone(),
            hypothesis: d.hypothesis.clone(),
            owner: d.owner.clone(),
            purpose: d.purpose.to_string(),
            variants: d
                .variants
                .iter()
                .map(|v| VariantInput {
                    key: v.key.clone(),
                    weight: v.weight,
                })
                .collect(),
            coverage: d.coverage,
            seed: d.seed.clone(),
            primary_metric: metric_view(&d.primary_metric),
            guardrails: d.guardrails.iter().map(metric_view).collect(),
            mde: d.mde,
            alpha: d.alpha,
            power: d.power,
            baseline_rate: d.baseline_rate,
            attribution_window_hours: d.attribution_window_hours,
            data_categories: d.data_categories.clone(),
            retention_days: d.retention_days,
            segments: d.segments.iter().map(|s| s.as_str().to_owned()).collect(),
            segment_correction: d.segment_correction.as_str().to_owned(),
            state: e.state.as_str().to_owned(),
            design_version: e.design_version,
            created_by: e.created_by.clone(),
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
            started_at: e.started_at.map(rfc3339),
            stopped_at: e.stopped_at.map(rfc3339),
            approval: e.approval.as_ref().map(ApprovalView::from),
            planned_sample_size,
            plan: None,
        }
    }
}

/// The 404 of a pilot key that names no pilot (the key repeated only when well formed).
pub(crate) fn no_such_pilot(key: &str) -> ApiError {
    service::experiments::no_such_pilot(key).into()
}

/// The pilot `key`, or 404.
pub(crate) async fn find_experiment(state: &AppState, key: &str) -> Result<Experiment, ApiError> {
    Ok(service::experiments::find(&state.store, key).await?)
}

/// Creates a pilot in `draft`.
#[utoipa::path(post, path = "/api/v1/experiments", tag = "experiments", request_body = DesignInput, security(("bearer" = [])), responses(
    (status = 201, body = ExperimentView),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 409, description = "The key is in use", body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[post("/api/v1/experiments")]
pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<DesignInput>,
) -> Result<HttpResponse, ApiError> {
    let experiment =
        service::experiments::create(&state.store, &caller.0, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(ExperimentView::from(&experiment)))
}

/// Replaces the design; the pilot returns to `draft` and any approval is void.
/// A running or stopped pilot cannot be edited (409).
#[utoipa::path(put, path = "/api/v1/experiments/{key}", tag = "experiments", request_body = DesignInput, params(("key" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, body = ExperimentView),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[put("/api/v1/experiments/{key}")]
pub async fn update(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<DesignInput>,
) -> Result<HttpResponse, ApiError> {
    let experiment =
        service::experiments::update(&state.store, &caller.0, &path, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ExperimentView::from(&experiment)))
}

/// Every pilot, newest first.
#[utoipa::path(get, path = "/api/v1/experiments", tag = "experiments", security(("bearer" = [])), responses(
    (status = 200, body = ExperimentList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
))]
#[get("/api/v1/experiments")]
pub async fn list(_caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let experiments = state.store.list_experiments().await?;
    Ok(HttpResponse::Ok().json(ExperimentList {
        experiments: experiments.iter().map(ExperimentView::from).collect(),
    }))
}

/// One pilot with its state, approval, planned sample size and consent-aware
/// plan: the eligible share of its purpose's known subjects now, the days
/// needed at `daily_visitors` (or, once running, at the observed daily
/// assignments), and the smallest effect detectable after 7, 14 and 28 days.
#[utoipa::path(get, path = "/api/v1/experiments/{key}", tag = "experiments", params(("key" = String, Path), PlanQuery), security(("bearer" = [])), responses(
    (status = 200, body = ExperimentView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 422, body = ErrorBody),
))]
#[get("/api/v1/experiments/{key}")]
pub async fn show(
    _caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<PlanQuery>,
) -> Result<HttpResponse, ApiError> {
    let experiment = find_experiment(&state, &path).await?;
    let plan = service::plan::plan_for(
        &state.store,
        &experiment,
        query.daily_visitors,
        state.min_cell,
    )
    .await?;
    let mut view = ExperimentView::from(&experiment);
    view.plan = Some(plan);
    Ok(HttpResponse::Ok().json(view))
}

async fn act(
    caller: Caller,
    state: web::Data<AppState>,
    key: &str,
    action: Action,
) -> Result<HttpResponse, ApiError> {
    let experiment =
        service::experiments::transition(&state.store, &caller.0, key, action, None).await?;
    Ok(HttpResponse::Ok().json(ExperimentView::from(&experiment)))
}

async fn decide(
    caller: Caller,
    state: web::Data<AppState>,
    key: &str,
    action: Action,
    body: DecisionInput,
) -> Result<HttpResponse, ApiError> {
    let experiment = service::experiments::decide(
        &state.store,
        &caller.0,
        key,
        action,
        body.design_version,
        &body.comment,
    )
    .await?;
    Ok(HttpResponse::Ok().json(ExperimentView::from(&experiment)))
}

/// `draft -> submitted`: asks compliance for a decision.
#[utoipa::path(post, path = "/api/v1/experiments/{key}/submit", tag = "experiments", params(("key" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, body = ExperimentView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, description = "The pilot is not in draft", body = ErrorBody),
))]
#[post("/api/v1/experiments/{key}/submit")]
pub async fn submit(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    act(caller, state, &path, Action::Submit).await
}

/// `submitted -> approved`, by compliance, for the design version reviewed;
/// never by anyone who created, edited or submitted the design.
#[utoipa::path(post, path = "/api/v1/experiments/{key}/approve", tag = "experiments", request_body = DecisionInput, params(("key" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, body = ExperimentView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 403, description = "Not compliance, or someone who created, edited or submitted the design (the refusal is audited)", body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, description = "The pilot is not submitted, or its design changed since `design_version`", body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[post("/api/v1/experiments/{key}/approve")]
pub async fn approve(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<DecisionInput>,
) -> Result<HttpResponse, ApiError> {
    decide(caller, state, &path, Action::Approve, body.into_inner()).await
}

/// `submitted -> denied`, by compliance, for the design version reviewed;
/// never by anyone who created, edited or submitted the design.
#[utoipa::path(post, path = "/api/v1/experiments/{key}/deny", tag = "experiments", request_body = DecisionInput, params(("key" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, body = ExperimentView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 403, description = "Not compliance, or someone who created, edited or submitted the design (the refusal is audited)", body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, description = "The pilot is not submitted, or its design changed since `design_version`", body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[post("/api/v1/experiments/{key}/deny")]
pub async fn deny(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<DecisionInput>,
) -> Result<HttpResponse, ApiError> {
    decide(caller, state, &path, Action::Deny, body.into_inner()).await
}

/// `approved -> running`: assignment and event collection begin.
#[utoipa::path(post, path = "/api/v1/experiments/{key}/start", tag = "experiments", params(("key" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, body = ExperimentView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, description = "The pilot is not approved", body = ErrorBody),
))]
#[post("/api/v1/experiments/{key}/start")]
pub async fn start(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    act(caller, state, &path, Action::Start).await
}

/// `running -> stopped`: no more assignments or events.
#[utoipa::path(post, path = "/api/v1/experiments/{key}/stop", tag = "experiments", params(("key" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, body = ExperimentView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, description = "The pilot is not running", body = ErrorBody),
))]
#[post("/api/v1/experiments/{key}/stop")]
pub async fn stop(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    act(caller, state, &path, Action::Stop).await
}
