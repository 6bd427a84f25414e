//! The experiments list, a page of pilots at a time.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;
use serde::Deserialize;

use super::{state_of, when};
use crate::startup::AppState;
use crate::ui::{Session, UiError, html};

/// The query of the experiments page.
#[derive(Deserialize)]
pub struct ExperimentsQuery {
    /// The page, from 1.
    page: Option<u32>,
}

/// Pilots per page of the experiments list.
const PER_PAGE: u32 = 25;

pub async fn page(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<ExperimentsQuery>,
) -> Result<HttpResponse, UiError> {
    session.may_read("/api/v1/experiments")?;
    let page = query.page.unwrap_or(1).max(1);
    let offset = i64::from(page - 1) * i64::from(PER_PAGE);
    let (experiments, more) = state
        .store
        .experiments_page(offset, i64::from(PER_PAGE))
        .await
        .map_err(|e| session.fail(e))?;
    // The users so far of each pilot on this page, released as the pilot's
    // other views release its counts (so no total tells a suppressed one).
    let mut totals = std::collections::HashMap::new();
    for experiment in &experiments {
        let key = experiment.design.key.as_str();
        let cells = crate::service::disclosure::pilot_cells(&state.store, key, state.min_cell)
            .await
            .map_err(|e| session.fail(e))?;
        totals.insert(key.to_owned(), cells.analysed_total);
    }
    let rows = experiments
        .into_iter()
        .map(|experiment| {
            let key = experiment.design.key.as_str().to_owned();
            let users = view::Count::released(totals.get(&key).copied().flatten());
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
    Ok(html(
        StatusCode::OK,
        &view::ExperimentsPage {
            chrome: session.chrome("Experiments", urls::EXPERIMENTS),
            rows,
            previous_page: (page > 1).then(|| page - 1),
            next_page: more.then_some(page + 1),
            can_open_results: session.may("GET", "/api/v1/experiments/{key}/results"),
            can_open_compliance: session.may("GET", super::compliance::MIRRORS),
            can_create: session.may("POST", "/api/v1/experiments"),
        },
    ))
}
