//! An experiment's results page: the results the API answers
//! (`service::results`), as tables and charts.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use pilotgate_analysis::decision::{Verdict, guardrail_harmed};
use pilotgate_analysis::disclosure::MinCell;
use pilotgate_analysis::pipeline::Outcome;
use pilotgate_analysis::report::{EffectReport, MethodName, Report, SrmReport};
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;
use pilotgate_domain::experiment::{Action, State, transition};
use pilotgate_store::{Experiment, Store};
use serde::Deserialize;

use super::{plan_summary, state_of, when};
use crate::service::results::{
    CumulativeView, DownloadFormat, DownloadParams, ResultsParams, SegmentResults, compute_results,
};
use crate::service::{self, ServiceError};
use crate::startup::AppState;
use crate::ui::{Session, UiError, html};

/// The query of the results page.
#[derive(Deserialize)]
pub struct ResultsQuery {
    metric: Option<String>,
    method: Option<String>,
    alpha: Option<f64>,
    /// A checked checkbox sends `on`.
    cuped: Option<String>,
    lookback_days: Option<u32>,
    /// A pre-registered segment; empty means none.
    segment: Option<String>,
    /// The plan's expected visitors a day.
    daily_visitors: Option<f64>,
}

impl ResultsQuery {
    /// The segment asked for, if any (the selector's "none" sends it empty).
    fn segment(&self) -> Option<String> {
        self.segment.clone().filter(|s| !s.is_empty())
    }
}

/// The α values the page offers besides the pre-registered one.
const ALPHAS: [f64; 3] = [0.01, 0.05, 0.1];

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
                users: view::Count::released(v.users),
                conversions: (report.kind == Outcome::Binary)
                    .then(|| view::Count::released(v.sum.map(|sum| sum.round() as u64))),
                mean: (!v.suppressed).then(|| v.mean.unwrap_or(0.0)),
                absolute_uplift: estimate(&absolute),
                relative_uplift: estimate(&relative),
                significance: significance(&relative),
            }
        })
        .collect()
}

pub async fn page(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, UiError> {
    session.may_read("/api/v1/experiments/{key}/results")?;
    let experiment = service::experiments::find(&state.store, &path)
        .await
        .map_err(|e| session.fail(e))?;
    let k = state.min_cell;
    let panel = pilot_panel(&session, &state, &experiment, query.daily_visitors).await?;
    let design = &experiment.design;
    let mut alpha_options: Vec<f64> = ALPHAS.to_vec();
    for extra in [Some(design.alpha), query.alpha].into_iter().flatten() {
        if !alpha_options.iter().any(|a| (a - extra).abs() < 1e-12) {
            alpha_options.push(extra);
        }
    }
    alpha_options.sort_by(f64::total_cmp);
    if panel.empty.is_some() {
        return Ok(html(
            StatusCode::OK,
            &empty_page(&session, &experiment, panel, alpha_options, k),
        ));
    }
    let mut params = ResultsParams {
        metric: query.metric.clone(),
        method: query.method.clone(),
        alpha: query.alpha,
        cuped: query.cuped.is_some(),
        lookback_days: query.lookback_days,
        segment: query.segment(),
    };
    let chrome = session.chrome(&design.name, urls::EXPERIMENTS);
    let page = match results_model(
        &state.store,
        &experiment,
        &params,
        k,
        chrome.clone(),
        panel.clone(),
        alpha_options.clone(),
    )
    .await
    {
        // No pre-period data: the results without CUPED, saying why.
        Err(ServiceError::Unprocessable(why)) if params.cuped && why.starts_with("cuped:") => {
            params.cuped = false;
            let mut page = results_model(
                &state.store,
                &experiment,
                &params,
                k,
                chrome,
                panel,
                alpha_options,
            )
            .await
            .map_err(|e| session.fail(e))?;
            page.cuped_note = Some(format!(
                "CUPED is not available: {}",
                why.trim_start_matches("cuped: ")
            ));
            page
        }
        other => other.map_err(|e| session.fail(e))?,
    };
    Ok(html(StatusCode::OK, &page))
}

/// The results page of `experiment` for `params` in `chrome`, below `panel`
/// (the memo shows it too).
pub(crate) async fn results_model(
    store: &Store,
    experiment: &Experiment,
    params: &ResultsParams,
    k: MinCell,
    chrome: view::Chrome,
    pilot: view::PilotPanel,
    alpha_options: Vec<f64>,
) -> Result<view::ResultsPage, ServiceError> {
    let design = &experiment.design;
    let results = compute_results(store, experiment, params, k).await?;
    let report = &results.report;
    let method = match report.method {
        MethodName::Bayesian => view::Method::Bayesian,
        MethodName::Sequential => view::Method::Sequential,
        MethodName::Frequentist => view::Method::Frequentist,
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
                    // The decision's own rule.
                    status: match &c.relative {
                        Some(r) if guardrail_harmed(r) => view::GuardrailStatus::Harmed,
                        Some(_) => view::GuardrailStatus::Ok,
                        None => view::GuardrailStatus::Inconclusive,
                    },
                    relative_uplift: relative,
                    significance: significance(&c.relative),
                }
            })
        })
        .collect();
    let suppressed = report.suppressed
        || results.withdrawn.as_ref().is_some_and(|w| w.suppressed)
        || results.attrition.as_ref().is_some_and(|a| a.suppressed)
        || results.cumulative.iter().any(|day| day.suppressed)
        || results.guardrails.iter().any(|g| g.suppressed);
    Ok(view::ResultsPage {
        chrome,
        experiment_key: design.key.as_str().to_owned(),
        experiment_name: design.name.clone(),
        state: state_of(experiment.state),
        metric: report.metric.clone(),
        metric_kind: match report.kind {
            Outcome::Binary => view::MetricKind::Binary,
            Outcome::Sum => view::MetricKind::Sum,
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
            Verdict::NotDecidable => view::Decision::NotDecidable,
        },
        decision_reasons: results.decision.reasons.clone(),
        srm: balance_check(
            report.srm.as_ref(),
            report.variants.iter().any(|v| v.users.is_none()),
        ),
        sequential_srm: results.sequential_srm.as_ref().map(|s| view::BalanceCheck {
            p_value: s.p_value,
            flagged: s.mismatch,
        }),
        withdrawal_balance: balance_check(
            results
                .attrition
                .as_ref()
                .and_then(|a| a.imbalance.as_ref()),
            results
                .attrition
                .as_ref()
                .is_none_or(|a| a.by_variant.values().any(|c| c.suppressed)),
        ),
        attrition: attrition_of(&results),
        withdrawn_excluded: view::Count::released(results.withdrawn.as_ref().and_then(|w| w.total)),
        min_cell: results.min_cell,
        suppressed,
        power: report
            .variants
            .iter()
            .map(|v| view::PowerProgress {
                variant: v.variant.clone(),
                users: view::Count::released(v.users),
                planned: planned.unwrap_or(0),
            })
            .collect(),
        variants: variant_rows(report),
        cumulative_uplift: uplift_series(&results.cumulative),
        guardrails,
        pilot,
        alpha_options,
        cuped: params.cuped,
        lookback_days: params
            .lookback_days
            .unwrap_or(service::results::DEFAULT_LOOKBACK_DAYS),
        cuped_note: results.cuped.as_ref().map(|c| {
            format!(
                "CUPED with a {}-day pre-period removed {} of the metric's variance.",
                c.lookback_days,
                pilotgate_dashboards::format::percent(c.variance_reduction)
            )
        }),
        raw_data_purged_on: results.raw_data_purged_on.clone(),
        segment_options: segment_options(design),
        segment: results.segments.as_ref().map(|s| s.segment.clone()),
        segment_table: results
            .segments
            .as_ref()
            .map(|s| segment_table(s, report.kind == Outcome::Binary)),
    })
}

/// A balance check as the page shows it: `None` when withheld, a passing
/// check when there was nothing to test.
fn balance_check(check: Option<&SrmReport>, withheld: bool) -> Option<view::BalanceCheck> {
    match check {
        Some(check) => Some(view::BalanceCheck {
            p_value: check.p_value,
            flagged: check.mismatch,
        }),
        None if withheld => None,
        None => Some(view::BalanceCheck {
            p_value: 1.0,
            flagged: false,
        }),
    }
}

fn segment_options(design: &pilotgate_domain::experiment::Design) -> Vec<String> {
    design
        .segments
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect()
}

/// The segment results as the page's table: per value, a row per variant,
/// or one row saying why the value has no results.
pub(crate) fn segment_table(segments: &SegmentResults, binary: bool) -> view::SegmentTable {
    let mut rows = Vec::new();
    for value in &segments.values {
        let Some(results) = &value.results else {
            rows.push(view::SegmentRow {
                value: value.value.clone(),
                variant: String::new(),
                users: value.assigned,
                mean: None,
                relative_uplift: None,
                p_value: None,
                adjusted_p_value: None,
                note: value.unavailable.clone(),
            });
            continue;
        };
        for variant in &results.report.variants {
            let comparison = results
                .report
                .comparisons
                .iter()
                .find(|c| c.variant == variant.variant);
            let adjusted = value.p_values.iter().find(|p| p.variant == variant.variant);
            rows.push(view::SegmentRow {
                value: value.value.clone(),
                variant: variant.variant.clone(),
                users: variant.users,
                mean: variant.mean,
                relative_uplift: comparison.and_then(|c| estimate(&c.relative)),
                p_value: adjusted.and_then(|p| p.p_value),
                adjusted_p_value: adjusted.and_then(|p| p.adjusted_p_value),
                note: None,
            });
        }
    }
    view::SegmentTable {
        segment: segments.segment.clone(),
        correction: segments.correction.clone(),
        adjusted: segments.adjusted,
        family_size: segments.family_size,
        binary,
        rows,
    }
}

/// The top of the pilot's page: the design in brief, compliance's decision,
/// the lifecycle buttons this person may use now, the plan (from the
/// observed assignments once running), the compliance link when this role
/// may open it, and why there are no results yet.
async fn pilot_panel(
    session: &Session,
    state: &AppState,
    experiment: &Experiment,
    daily_visitors: Option<f64>,
) -> Result<view::PilotPanel, UiError> {
    let design = &experiment.design;
    let key = design.key.as_str();
    let mut actions = Vec::new();
    let mut offer = |action: Action, api: &str, label: &str, href: String| {
        if transition(experiment.state, action).is_ok() && session.may("POST", api) {
            actions.push(view::PilotAction {
                label: label.to_owned(),
                href,
            });
        }
    };
    offer(
        Action::Submit,
        "/api/v1/experiments/{key}/submit",
        "Submit for approval",
        urls::lifecycle(key, "submit"),
    );
    offer(
        Action::Start,
        "/api/v1/experiments/{key}/start",
        "Start",
        urls::lifecycle(key, "start"),
    );
    offer(
        Action::Stop,
        "/api/v1/experiments/{key}/stop",
        "Stop",
        urls::lifecycle(key, "stop"),
    );
    if transition(experiment.state, Action::Edit).is_ok()
        && session.may("PUT", "/api/v1/experiments/{key}")
    {
        actions.push(view::PilotAction {
            label: "Edit the design".to_owned(),
            href: urls::edit(key),
        });
    }
    // A plan that cannot be made (say, a purpose retired since) leaves the
    // page without one rather than without the page.
    let assigned = service::plan::assigned_total(&state.store, key)
        .await
        .map_err(|e| session.fail(e))?;
    let plan = match service::plan::plan_with(
        &state.store,
        experiment,
        daily_visitors,
        assigned,
        state.min_cell,
    )
    .await
    {
        Ok(plan) => Some(plan_summary(&plan)),
        Err(ServiceError::Store(e)) => return Err(session.fail(e)),
        Err(_) => None,
    };
    let empty = (assigned == 0).then(|| {
        match experiment.state {
            State::Draft => "Nobody is assigned before the pilot runs. Submit it for approval; once compliance approves it, start it.",
            State::Submitted => "Nobody is assigned before the pilot runs. It awaits compliance's decision; once approved, it can be started.",
            State::Denied => "Compliance denied this design (see the comment above). Edit it and submit it again.",
            State::Approved => "The pilot is approved but not started: nobody is assigned until it starts.",
            State::Running => "The pilot runs, but no eligible visitor has been assigned yet: assignments arrive when your site asks pilotgate for a variant.",
            State::Stopped => "The pilot stopped before anyone was assigned.",
        }
        .to_owned()
    });
    let exports = super::exports::panel(session, state, experiment).await?;
    Ok(view::PilotPanel {
        exports,
        owner: design.owner.clone(),
        hypothesis: design.hypothesis.clone(),
        purpose: design.purpose.to_string(),
        design_version: experiment.design_version,
        actions,
        decision: experiment.approval.as_ref().map(|a| view::DecisionNote {
            approved: a.decision == "approved",
            by: a.decided_by.clone(),
            at: when(a.decided_at),
            comment: a.comment.clone(),
            design_version: a.design_version,
        }),
        returned: experiment
            .returned
            .as_ref()
            .map(|r| format!("On {}, {}.", when(r.at), r.reason)),
        plan,
        plan_form: experiment.started_at.is_none(),
        daily_visitors: daily_visitors.map(|v| v.to_string()).unwrap_or_default(),
        compliance_href: session
            .may("GET", super::compliance::MIRRORS)
            .then(|| urls::compliance(key)),
        empty,
    })
}

/// The attrition section: the counts per variant (design order), the share
/// lost per day, and each variant's relative estimate beside its Lee bounds.
fn attrition_of(results: &service::results::ResultsView) -> view::Attrition {
    let Some(attrition) = &results.attrition else {
        return view::Attrition::default();
    };
    let order: Vec<&String> = attrition.by_variant.keys().collect();
    view::Attrition {
        variants: attrition
            .by_variant
            .iter()
            .map(|(variant, c)| view::AttritionRow {
                variant: variant.clone(),
                assigned: view::Count::released(c.assigned),
                withdrawn: view::Count::released(c.withdrawn),
                objected: view::Count::released(c.objected),
                erased: view::Count::released(c.erased),
            })
            .collect(),
        days: attrition
            .series
            .iter()
            .map(|point| {
                let shares = order
                    .iter()
                    .map(|v| match point.variants.get(*v) {
                        Some(Some(c)) => Some(c.lost_share),
                        Some(None) => None,
                        None => Some(0.0),
                    })
                    .collect();
                (point.day.clone(), shares)
            })
            .collect(),
        lee_bounds: attrition
            .lee_bounds
            .iter()
            .map(|b| view::LeeRow {
                variant: b.variant.clone(),
                estimate: results
                    .report
                    .comparisons
                    .iter()
                    .find(|c| c.variant == b.variant)
                    .and_then(|c| c.relative.as_ref())
                    .map(|r| r.estimate),
                bounds: match (b.relative, &b.note) {
                    (Some(bounds), _) => Ok(bounds),
                    (None, Some(note)) => Err(note.clone()),
                    (None, None) => {
                        Err("the trimmed control mean can be 0, so no relative bound".to_owned())
                    }
                },
                trimmed: format!(
                    "{} of the {}'s kept subjects",
                    pilotgate_dashboards::format::percent(b.trimmed_share),
                    b.trimmed
                ),
            })
            .collect(),
        refusal_check: attrition
            .refusals
            .independence
            .as_ref()
            .map(|check| view::BalanceCheck {
                p_value: check.p_value,
                flagged: check.mismatch,
            }),
    }
}

/// The pilot's page without results: the panel says why.
fn empty_page(
    session: &Session,
    experiment: &Experiment,
    pilot: view::PilotPanel,
    alpha_options: Vec<f64>,
    state_k: MinCell,
) -> view::ResultsPage {
    let design = &experiment.design;
    let no_check = view::BalanceCheck {
        p_value: 1.0,
        flagged: false,
    };
    view::ResultsPage {
        chrome: session.chrome(&design.name, urls::EXPERIMENTS),
        experiment_key: design.key.as_str().to_owned(),
        experiment_name: design.name.clone(),
        state: state_of(experiment.state),
        metric: design.primary_metric.event.clone(),
        metric_kind: view::MetricKind::Binary,
        metric_options: Vec::new(),
        method: view::Method::Frequentist,
        alpha: design.alpha,
        mde: design.mde,
        decision: view::Decision::KeepRunning,
        decision_reasons: Vec::new(),
        srm: Some(no_check),
        sequential_srm: Some(no_check),
        withdrawal_balance: Some(no_check),
        attrition: view::Attrition::default(),
        withdrawn_excluded: view::Count::Shown(0),
        min_cell: state_k.get(),
        suppressed: false,
        power: Vec::new(),
        variants: Vec::new(),
        cumulative_uplift: Vec::new(),
        guardrails: Vec::new(),
        pilot,
        alpha_options,
        cuped: false,
        lookback_days: service::results::DEFAULT_LOOKBACK_DAYS,
        cuped_note: None,
        raw_data_purged_on: None,
        segment_options: segment_options(design),
        segment: None,
        segment_table: None,
    }
}

pub async fn csv(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, UiError> {
    download(
        session,
        state,
        &path,
        query.into_inner(),
        DownloadFormat::Csv,
    )
    .await
}

pub async fn json(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, UiError> {
    download(
        session,
        state,
        &path,
        query.into_inner(),
        DownloadFormat::Json,
    )
    .await
}

/// The results shown as a file, through the API's service (audited first).
async fn download(
    session: Session,
    state: web::Data<AppState>,
    key: &str,
    query: ResultsQuery,
    format: DownloadFormat,
) -> Result<HttpResponse, UiError> {
    session.may_read("/api/v1/experiments/{key}/results/download")?;
    let fail = |e| session.fail(e);
    let experiment = service::experiments::find(&state.store, key)
        .await
        .map_err(fail)?;
    let params = DownloadParams {
        format,
        segment: query.segment(),
        metric: query.metric,
        method: query.method,
        alpha: query.alpha,
        cuped: query.cuped.is_some(),
        lookback_days: query.lookback_days,
    };
    let file = service::results::download(
        &state.store,
        &session.actor,
        &experiment,
        &params,
        state.min_cell,
    )
    .await
    .map_err(fail)?;
    Ok(crate::routes::results::attachment(file))
}
