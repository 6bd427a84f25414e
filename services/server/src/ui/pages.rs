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
use crate::auth::{TokenRefusal, check_token};
use crate::routes::results::{CumulativeView, ResultsParams, compute_results};
use crate::startup::AppState;
use pilotgate_domain::session::{ABSOLUTE_LIMIT, SessionId};
use pilotgate_domain::token::PresentedToken;

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
    let client = state
        .network
        .client(req.peer_addr().map(|a| a.ip()), req.headers());
    let refused =
        |error: String, status| sign_in_page(&req, &pre, cookie.clone(), Some(error), status);
    match check_token(&state, client, &form.token).await {
        Ok(_) => {}
        Err(TokenRefusal::Throttled(wait)) => {
            return refused(
                format!(
                    "Too many failed sign-ins with that token from this address; try again in {wait} s."
                ),
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
        Err(TokenRefusal::Unknown) => {
            return refused(
                "That token is unknown or revoked.".to_owned(),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(TokenRefusal::Unavailable(_)) => {
            return refused(
                "The database is not available; try again shortly.".to_owned(),
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
    }
    // Checked just above: the token parses.
    let Ok(presented) = PresentedToken::parse(form.token.trim()) else {
        return refused(
            "That token is unknown or revoked.".to_owned(),
            StatusCode::UNAUTHORIZED,
        );
    };
    let id = SessionId::from_random(rand::random());
    if state
        .store
        .open_session(&id.hash(), presented.token_id(), state.store.now())
        .await
        .is_err()
    {
        return refused(
            "The database is not available; try again shortly.".to_owned(),
            StatusCode::SERVICE_UNAVAILABLE,
        );
    }
    let max_age = ABSOLUTE_LIMIT.num_seconds();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/ui/experiments"))
        .insert_header((
            header::SET_COOKIE,
            set_cookie(SESSION_COOKIE, id.reveal(), secure(&req), Some(max_age)),
        ))
        .finish()
}

/// Ends the session in the database (its cookie stops working everywhere)
/// and clears the cookies.
pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    if let Some(session) = session_of(&req, &state).await {
        if !session.csrf_matches(&form.csrf) {
            return error_page(
                &session,
                403,
                "The form expired; reload the page and try again.",
            );
        }
        if state
            .store
            .end_session(&session.id_hash, state.store.now())
            .await
            .is_err()
        {
            return error_page(
                &session,
                503,
                "The database is not available; you are still signed in. Try again shortly.",
            );
        }
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

/// The query of the experiments page.
#[derive(Deserialize)]
pub struct ExperimentsQuery {
    /// The page, from 1.
    page: Option<u32>,
}

/// Pilots per page of the experiments list.
const EXPERIMENTS_PAGE: u32 = 25;

pub async fn experiments(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ExperimentsQuery>,
) -> HttpResponse {
    let session = match allowed(&req, &state, "/api/v1/experiments").await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let page = query.page.unwrap_or(1).max(1);
    let offset = i64::from(page - 1) * i64::from(EXPERIMENTS_PAGE);
    let Ok((experiments, more)) = state
        .store
        .experiments_page(offset, i64::from(EXPERIMENTS_PAGE))
        .await
    else {
        return error_page(&session, 503, "The database is not available.");
    };
    // One grouped count for the pilots on this page, not one query per pilot.
    let keys: Vec<String> = experiments
        .iter()
        .map(|e| e.design.key.as_str().to_owned())
        .collect();
    let totals = state
        .store
        .assignment_totals(&keys)
        .await
        .unwrap_or_default();
    let rows = experiments
        .into_iter()
        .map(|experiment| {
            let key = experiment.design.key.as_str().to_owned();
            let users = totals.get(&key).map_or(0, |(n, gone)| n - gone);
            let variants = experiment.design.variants.len() as u64;
            view::ExperimentRow {
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
                key,
            }
        })
        .collect();
    html(
        StatusCode::OK,
        &view::ExperimentsPage {
            chrome: session.chrome("Experiments", "/ui/experiments"),
            rows,
            previous_page: (page > 1).then(|| page - 1),
            next_page: more.then_some(page + 1),
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

/// The query of the audit page: entries before an id (older) or after one (newer).
#[derive(Deserialize)]
pub struct AuditPageQuery {
    before: Option<i64>,
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
    // Newest first; `after` pages towards the newest, `before` towards the oldest.
    let (entries, more_newer, more_older) = match query.after {
        Some(after) => {
            let entries = state
                .store
                .list_audit(&AuditQuery {
                    after: Some(after.max(0)),
                    limit: PAGE + 1,
                    target: None,
                })
                .await;
            match entries {
                Ok(mut entries) => {
                    let more = entries.len() as i64 > PAGE;
                    entries.truncate(PAGE as usize);
                    entries.reverse();
                    let older = entries.last().is_some_and(|e| e.id > 1);
                    (Ok(entries), more, older)
                }
                Err(error) => (Err(error), false, false),
            }
        }
        None => match state.store.list_audit_before(query.before, PAGE + 1).await {
            Ok(mut entries) => {
                let more = entries.len() as i64 > PAGE;
                entries.truncate(PAGE as usize);
                (Ok(entries), query.before.is_some(), more)
            }
            Err(error) => (Err(error), false, false),
        },
    };
    let chain = crate::routes::audit::cached_verification(&state).await;
    let (Ok(entries), Ok(chain)) = (entries, chain) else {
        return error_page(&session, 503, "The database is not available.");
    };
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
        older_before: more_older.then(|| rows.last().map(|r| r.id)).flatten(),
        newer_after: more_newer.then(|| rows.first().map(|r| r.id)).flatten(),
        entries: rows,
    };
    html(StatusCode::OK, &page)
}
