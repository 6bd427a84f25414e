//! The page handlers: each builds its view model from the store (or the
//! analysis) and renders it; no SQL and no statistics here.

use std::collections::BTreeMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use pilotgate_analysis::decision::Verdict;
use pilotgate_analysis::report::{EffectReport, Report};
use pilotgate_dashboards as view;
use pilotgate_store::AuditQuery;
use serde::Deserialize;

use super::session::{PRE_SESSION_COOKIE, SESSION_COOKIE, set_cookie};
use super::{Session, error_page, html, pre_session, secure, session_of, to_sign_in};
use crate::routes::results::{CumulativeView, ResultsParams, compute_results};
use crate::startup::AppState;

/// The form of the sign-in page.
#[derive(Deserialize)]
pub struct SignInForm {
    token: String,
    csrf: String,
}

/// A form that carries only its CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn home() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/ui/experiments"))
        .finish()
}

pub async fn sign_in_form(req: HttpRequest) -> HttpResponse {
    let (value, cookie) = pre_session(&req);
    sign_in_page(&req, &value, cookie, None, StatusCode::OK)
}

fn sign_in_page(
    req: &HttpRequest,
    pre: &str,
    cookie: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let state = req.app_data::<web::Data<AppState>>();
    let csrf = state.map(|s| s.sessions.csrf_for(pre)).unwrap_or_default();
    let page = view::SignInPage {
        chrome: view::Chrome::anonymous("Sign in", csrf),
        error,
    };
    let mut response = html(status, &page);
    if let Some(cookie) = cookie
        && let Ok(value) = header::HeaderValue::from_str(&cookie)
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<SignInForm>,
) -> HttpResponse {
    let (pre, cookie) = pre_session(&req);
    if !state.sessions.csrf_matches(&pre, &form.csrf) {
        let error = "The form expired; please sign in again.".to_owned();
        return sign_in_page(&req, &pre, cookie, Some(error), StatusCode::FORBIDDEN);
    }
    let client = req.peer_addr().map(|a| a.ip());
    let now = std::time::Instant::now();
    if let Some(wait) = client.and_then(|ip| state.auth_failures.blocked(ip, now)) {
        let error = format!("Too many failed sign-ins from this address; try again in {wait} s.");
        return sign_in_page(
            &req,
            &pre,
            cookie,
            Some(error),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    if super::authenticate(&state, &form.token).await.is_none() {
        if let Some(ip) = client {
            state.auth_failures.failed(ip, now);
        }
        let error = "That token is unknown or revoked.".to_owned();
        return sign_in_page(&req, &pre, cookie, Some(error), StatusCode::UNAUTHORIZED);
    }
    let sealed = state.sessions.seal(form.token.trim());
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/ui/experiments"))
        .insert_header((
            header::SET_COOKIE,
            set_cookie(SESSION_COOKIE, &sealed, secure(&req), Some(8 * 3600)),
        ))
        .finish()
}

pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    if let Some(session) = session_of(&req, &state).await
        && !session.csrf_matches(&form.csrf)
    {
        return error_page(
            &session,
            403,
            "The form expired; reload the page and try again.",
        );
    }
    let mut response = to_sign_in();
    for name in [SESSION_COOKIE, PRE_SESSION_COOKIE] {
        if let Ok(value) =
            header::HeaderValue::from_str(&set_cookie(name, "", secure(&req), Some(0)))
        {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The session of `req` if it may read `api`; otherwise the response to send.
pub(super) async fn allowed(
    req: &HttpRequest,
    state: &AppState,
    api: &str,
) -> Result<Session, HttpResponse> {
    let Some(session) = session_of(req, state).await else {
        return Err(to_sign_in());
    };
    if !session.may("GET", api) {
        let message = format!(
            "The role '{}' may not see this page.",
            session.role.as_str()
        );
        return Err(error_page(&session, 403, &message));
    }
    Ok(session)
}

pub(super) fn state_of(state: pilotgate_domain::experiment::State) -> view::ExperimentState {
    use pilotgate_domain::experiment::State as S;
    match state {
        S::Draft => view::ExperimentState::Draft,
        S::Submitted => view::ExperimentState::Submitted,
        S::Approved => view::ExperimentState::Approved,
        S::Running => view::ExperimentState::Running,
        S::Stopped => view::ExperimentState::Stopped,
        S::Denied => view::ExperimentState::Denied,
    }
}

pub(super) fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub async fn experiments(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let session = match allowed(&req, &state, "/api/v1/experiments").await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Ok(experiments) = state.store.list_experiments().await else {
        return error_page(&session, 503, "The database is not available.");
    };
    let mut rows = Vec::with_capacity(experiments.len());
    for experiment in experiments {
        let key = experiment.design.key.as_str().to_owned();
        let counts = state
            .store
            .assignment_counts(&key)
            .await
            .unwrap_or_default();
        let users: u64 = counts.iter().map(|(_, n, gone)| n - gone).sum();
        let variants = experiment.design.variants.len() as u64;
        rows.push(view::ExperimentRow {
            key,
            name: experiment.design.name.clone(),
            state: state_of(experiment.state),
            purpose: experiment.design.purpose.to_string(),
            owner: experiment.created_by.clone(),
            approval: experiment.approval.as_ref().map(|a| view::Approval {
                by: a.decided_by.clone(),
                at: when(a.decided_at),
            }),
            users_so_far: users,
            users_planned: experiment
                .planned_sample_size
                .and_then(|n| u64::try_from(n).ok())
                .map(|n| n * variants),
        });
    }
    html(
        StatusCode::OK,
        &view::ExperimentsPage {
            chrome: session.chrome("Experiments", "/ui/experiments"),
            rows,
        },
    )
}

/// The query of the results page.
#[derive(Deserialize)]
pub struct ResultsQuery {
    metric: Option<String>,
    method: Option<String>,
}

fn estimate(effect: &Option<EffectReport>) -> Option<view::Estimate> {
    effect.as_ref().map(|e| view::Estimate {
        value: e.estimate,
        lower: e.ci[0],
        upper: e.ci[1],
    })
}

fn significance(effect: &Option<EffectReport>) -> Option<view::Significance> {
    let effect = effect.as_ref()?;
    match (effect.chance_to_win, effect.p_value) {
        (Some(chance), _) => Some(view::Significance::ChanceToWin(chance)),
        (None, Some(p)) => Some(view::Significance::PValue(p)),
        (None, None) => None,
    }
}

/// One series per treatment variant of the cumulative analysis; a day where
/// a variant's uplift cannot be computed yet adds no point.
fn uplift_series(cumulative: &[CumulativeView]) -> Vec<view::UpliftSeries> {
    let mut series: Vec<view::UpliftSeries> = Vec::new();
    for day in cumulative {
        for comparison in &day.comparisons {
            let Some(relative) = &comparison.relative else {
                continue;
            };
            let point = view::charts::BandPoint {
                label: day.day.clone(),
                estimate: relative.estimate,
                lower: relative.ci[0],
                upper: relative.ci[1],
            };
            match series.iter_mut().find(|s| s.variant == comparison.variant) {
                Some(existing) => existing.points.push(point),
                None => series.push(view::UpliftSeries {
                    variant: comparison.variant.clone(),
                    points: vec![point],
                }),
            }
        }
    }
    series
}

fn variant_rows(report: &Report) -> Vec<view::VariantResult> {
    report
        .variants
        .iter()
        .map(|v| {
            let comparison = report.comparisons.iter().find(|c| c.variant == v.variant);
            let relative = comparison.and_then(|c| c.relative.clone());
            let absolute = comparison.and_then(|c| c.absolute.clone());
            view::VariantResult {
                variant: v.variant.clone(),
                users: v.users,
                conversions: (report.kind == "binary").then(|| v.sum.round() as u64),
                mean: v.mean.unwrap_or(0.0),
                absolute_uplift: estimate(&absolute),
                relative_uplift: estimate(&relative),
                significance: significance(&relative),
            }
        })
        .collect()
}

pub async fn results(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ResultsQuery>,
) -> HttpResponse {
    let session = match allowed(&req, &state, "/api/v1/experiments/{key}/results").await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Ok(Some(experiment)) = state.store.experiment(&path).await else {
        return error_page(&session, 404, "No such experiment.");
    };
    let params = ResultsParams {
        metric: query.metric.clone(),
        method: query.method.clone(),
        alpha: None,
    };
    let results = match compute_results(&state, &experiment, &params).await {
        Ok(results) => results,
        Err(error) => return error_page(&session, 422, &error.to_string()),
    };
    let design = &experiment.design;
    let report = &results.report;
    let method = match report.method {
        "bayesian" => view::Method::Bayesian,
        "sequential" => view::Method::Sequential,
        _ => view::Method::Frequentist,
    };
    let planned = experiment
        .planned_sample_size
        .and_then(|n| u64::try_from(n).ok());
    let metric_options = std::iter::once((&design.primary_metric, " (primary)"))
        .chain(design.guardrails.iter().map(|g| (g, " (guardrail)")))
        .map(|(m, what)| view::MetricOption {
            value: m.event.clone(),
            label: format!("{}{what}", m.event),
        })
        .collect();
    let guardrails = results
        .guardrails
        .iter()
        .flat_map(|g| {
            g.comparisons.iter().map(move |c| {
                let relative = estimate(&c.relative);
                view::GuardrailSummary {
                    metric: g.metric.clone(),
                    variant: c.variant.clone(),
                    // The decision's rule: a guardrail event that rises
                    // significantly (refunds, complaints) is harmed.
                    status: match relative {
                        Some(e) if e.lower > 0.0 => view::GuardrailStatus::Harmed,
                        Some(_) => view::GuardrailStatus::Ok,
                        None => view::GuardrailStatus::Inconclusive,
                    },
                    relative_uplift: relative,
                    significance: significance(&c.relative),
                }
            })
        })
        .collect();
    let withdrawn: BTreeMap<&String, &u64> = results.withdrawn.by_variant.iter().collect();
    let page = view::ResultsPage {
        chrome: session.chrome(&design.name, "/ui/experiments"),
        experiment_key: design.key.as_str().to_owned(),
        experiment_name: design.name.clone(),
        state: state_of(experiment.state),
        metric: report.metric.clone(),
        metric_kind: if report.kind == "binary" {
            view::MetricKind::Binary
        } else {
            view::MetricKind::Sum
        },
        metric_options,
        method,
        alpha: report.alpha,
        mde: design.mde,
        decision: match results.decision.outcome {
            Verdict::Scale => view::Decision::Scale,
            Verdict::DoNotScale => view::Decision::DoNotScale,
            Verdict::KeepRunning => view::Decision::KeepRunning,
            Verdict::Invalid => view::Decision::Invalid,
        },
        decision_reasons: results.decision.reasons.clone(),
        srm: view::BalanceCheck {
            p_value: report.srm.as_ref().map_or(1.0, |s| s.p_value),
            flagged: report.srm.as_ref().is_some_and(|s| s.mismatch),
        },
        withdrawal_balance: view::BalanceCheck {
            p_value: results
                .withdrawn
                .imbalance
                .as_ref()
                .map_or(1.0, |s| s.p_value),
            flagged: results
                .withdrawn
                .imbalance
                .as_ref()
                .is_some_and(|s| s.mismatch),
        },
        withdrawn_excluded: withdrawn.values().copied().sum(),
        power: report
            .variants
            .iter()
            .map(|v| view::PowerProgress {
                variant: v.variant.clone(),
                users: v.users,
                planned: planned.unwrap_or(0),
            })
            .collect(),
        variants: variant_rows(report),
        cumulative_uplift: uplift_series(&results.cumulative),
        guardrails,
    };
    html(StatusCode::OK, &page)
}

pub async fn consents(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let session = match allowed(&req, &state, "/api/v1/legal-basis-map").await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let (Ok(map), Ok(purposes)) = (
        state.store.legal_basis_map(state.store.now()).await,
        state.store.list_purposes().await,
    ) else {
        return error_page(&session, 503, "The database is not available.");
    };
    let purposes = purposes
        .iter()
        .map(|p| {
            let key = p.key.to_string();
            let need = map.reconsent.iter().find(|r| r.purpose == key);
            view::PurposeConsents {
                allowed_bases: p
                    .allowed_bases
                    .iter()
                    .map(|b| b.as_str().to_owned())
                    .collect(),
                min_notice_version: p.min_notice_version,
                counts: view::CountMatrix::from_cells(
                    map.counts.iter().filter(|c| c.purpose == key).map(|c| {
                        (
                            c.basis.clone(),
                            c.status.clone(),
                            u64::try_from(c.subjects).unwrap_or(0),
                        )
                    }),
                ),
                stale_notice: need.map_or(0, |n| u64::try_from(n.stale_notice).unwrap_or(0)),
                expired: need.map_or(0, |n| u64::try_from(n.expired).unwrap_or(0)),
                purpose: key,
            }
        })
        .collect();
    html(
        StatusCode::OK,
        &view::ConsentsPage {
            chrome: session.chrome("Consents", "/ui/consents"),
            purposes,
        },
    )
}

/// The query of the audit page.
#[derive(Deserialize)]
pub struct AuditPageQuery {
    after: Option<i64>,
}

pub async fn audit(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<AuditPageQuery>,
) -> HttpResponse {
    let session = match allowed(&req, &state, "/api/v1/audit").await {
        Ok(session) => session,
        Err(response) => return response,
    };
    const PAGE: i64 = 100;
    let after = query.after.unwrap_or(0).max(0);
    let entries = state
        .store
        .list_audit(&AuditQuery {
            after: Some(after),
            limit: PAGE + 1,
            target: None,
        })
        .await;
    let (Ok(mut entries), Ok(chain)) = (entries, state.store.verify_audit_chain().await) else {
        return error_page(&session, 503, "The database is not available.");
    };
    let more = entries.len() as i64 > PAGE;
    entries.truncate(PAGE as usize);
    let rows = entries
        .iter()
        .map(|e| view::AuditRow {
            id: u64::try_from(e.id).unwrap_or(0),
            at: when(pilotgate_domain::time::from_micros(e.at)),
            actor: e.actor.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            hash: e.hash.chars().take(12).collect(),
        })
        .collect::<Vec<_>>();
    let page = view::AuditPage {
        chrome: session.chrome("Audit log", "/ui/audit"),
        chain: match chain.first_bad_id {
            Some(id) => view::ChainStatus::Broken {
                first_bad_id: u64::try_from(id).unwrap_or(0),
            },
            None => view::ChainStatus::Valid {
                entries: chain.entries,
            },
        },
        older_before: (after > 0).then(|| u64::try_from(after).unwrap_or(0)),
        newer_after: more.then(|| rows.last().map(|r| r.id)).flatten(),
        entries: rows,
    };
    html(StatusCode::OK, &page)
}
