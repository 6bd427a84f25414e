//! An experiment's results page: the results the API answers
//! (`service::results`), as tables and charts.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use pilotgate_analysis::decision::{Verdict, guardrail_harmed};
use pilotgate_analysis::pipeline::Outcome;
use pilotgate_analysis::report::{EffectReport, MethodName, Report};
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;
use serde::Deserialize;

use super::state_of;
use crate::service::results::{CumulativeView, ResultsParams, compute_results};
use crate::startup::AppState;
use crate::ui::{Session, UiError, html};

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
                conversions: (report.kind == Outcome::Binary).then(|| v.sum.round() as u64),
                mean: v.mean.unwrap_or(0.0),
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
    let experiment = state
        .store
        .experiment(&path)
        .await
        .map_err(|e| session.fail(e))?
        .ok_or_else(|| session.fail(UiError::page(StatusCode::NOT_FOUND, "No such experiment.")))?;
    let params = ResultsParams {
        metric: query.metric.clone(),
        method: query.method.clone(),
        alpha: None,
    };
    let results = compute_results(&state.store, &experiment, &params)
        .await
        .map_err(|e| session.fail(e))?;
    let design = &experiment.design;
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
    let withdrawn: BTreeMap<&String, &u64> = results.withdrawn.by_variant.iter().collect();
    let page = view::ResultsPage {
        chrome: session.chrome(&design.name, urls::EXPERIMENTS),
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
    Ok(html(StatusCode::OK, &page))
}
