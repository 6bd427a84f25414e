//! The scale-decision memo of a pilot (`/ui/experiments/{key}/memo`, and
//! `pilotgate memo`): the results page's and the compliance view's own view
//! models on one printable page, with the audit chain's head at the time it
//! was made. Whoever may read the results may read the memo: it shows counts
//! and statistics only.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;
use pilotgate_store::{Experiment, Store};

use super::compliance::compliance_model;
use super::results::{results_model, segment_table};
use super::when;
use crate::service::results::{ResultsParams, compute_results};
use crate::service::{self, ServiceError};
use crate::startup::AppState;
use crate::ui::{Session, UiError, html};
use pilotgate_analysis::disclosure::MinCell;
use pilotgate_domain::experiment::MetricKind;

pub async fn page(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    session.may_read("/api/v1/experiments/{key}/results")?;
    let fail = |e| session.fail(e);
    let experiment = service::experiments::find(&state.store, &path)
        .await
        .map_err(fail)?;
    let chrome = session.chrome(
        &format!("Memo: {}", experiment.design.name),
        urls::EXPERIMENTS,
    );
    let memo = memo_model(&state.store, &experiment, chrome, state.min_cell)
        .await
        .map_err(fail)?;
    Ok(html(StatusCode::OK, &memo))
}

/// The memo of `experiment` in `chrome`: the primary metric under the
/// pre-registered method and α, as the results endpoint answers it.
pub async fn memo_model(
    store: &Store,
    experiment: &Experiment,
    chrome: view::Chrome,
    k: MinCell,
) -> Result<view::MemoPage, ServiceError> {
    let design = &experiment.design;
    let pilot = view::PilotPanel {
        owner: design.owner.clone(),
        hypothesis: design.hypothesis.clone(),
        purpose: design.purpose.to_string(),
        design_version: experiment.design_version,
        ..view::PilotPanel::default()
    };
    let params = ResultsParams {
        metric: None,
        method: None,
        alpha: None,
        cuped: false,
        lookback_days: None,
        segment: None,
    };
    // Each pre-registered segment, for the primary metric under the
    // pre-registered method and α.
    let mut segment_tables = Vec::with_capacity(design.segments.len());
    for segment in &design.segments {
        let per_segment = ResultsParams {
            segment: Some(segment.as_str().to_owned()),
            ..params.clone()
        };
        let computed = compute_results(store, experiment, &per_segment, k).await?;
        if let Some(segments) = &computed.segments {
            let binary = design.primary_metric.kind == MetricKind::Binary;
            segment_tables.push(segment_table(segments, binary));
        }
    }
    let results = results_model(
        store,
        experiment,
        &params,
        k,
        chrome.clone(),
        pilot,
        vec![design.alpha],
    )
    .await?;
    let compliance = compliance_model(store, experiment, chrome.clone(), false, k).await?;
    // Read last, so every entry the figures above rest on is counted.
    let head = store.audit_head().await?;
    Ok(view::MemoPage {
        chrome,
        results,
        compliance,
        printed_at: when(store.now()),
        audit_entries: head.entries,
        audit_hash: head.hash,
        segment_tables,
    })
}
