//! The consent overview: per purpose, who may be used on which basis, and
//! who must be asked again (the legal-basis map), with the re-consent
//! report over the last days as charts and a CSV download.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;

use crate::service::disclosure;
use crate::service::reconsent::{self, DEFAULT_DAYS};
use crate::startup::AppState;
use crate::ui::{Session, UiError, html};

pub async fn page(session: Session, state: web::Data<AppState>) -> Result<HttpResponse, UiError> {
    session.may_read("/api/v1/legal-basis-map")?;
    let map = state
        .store
        .legal_basis_map(state.store.now())
        .await
        .map_err(|e| session.fail(e))?;
    let purposes = state
        .store
        .list_purposes()
        .await
        .map_err(|e| session.fail(e))?;
    let report = reconsent::report(&state, DEFAULT_DAYS)
        .await
        .map_err(|e| session.fail(e))?;
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
                counts: disclosure::basis_matrix(&map.counts, &key, state.min_cell),
                stale_notice: need_count(need.map(|n| n.stale_notice), state.min_cell),
                expired: need_count(need.map(|n| n.expired), state.min_cell),
                reconsent: report
                    .days
                    .iter()
                    .filter(|d| d.purpose == key)
                    .map(|d| view::ReconsentRow {
                        purpose: d.purpose.clone(),
                        day: d.day.clone(),
                        expired: reconsent::released(d.expired),
                        stale_notice: reconsent::released(d.stale_notice),
                        asked: reconsent::released(d.asked),
                        links_issued: reconsent::released(d.links_issued),
                        came_back: reconsent::released(d.came_back),
                    })
                    .collect(),
                purpose: key,
            }
        })
        .collect();
    Ok(html(
        StatusCode::OK,
        &view::ConsentsPage {
            chrome: session.chrome("Consents", urls::CONSENTS),
            purposes,
            reconsent_days: DEFAULT_DAYS,
            reconsent_csv: urls::CONSENTS_RECONSENT_CSV.to_owned(),
        },
    ))
}

/// People needing re-consent now, released on their own under `k` (as
/// the legal-basis map releases them).
fn need_count(value: Option<i64>, k: pilotgate_analysis::disclosure::MinCell) -> view::Count {
    let count = value.map_or(0, |n| u64::try_from(n).unwrap_or(0));
    view::Count::released(disclosure::standalone(count, k))
}

/// The re-consent report as CSV: the page's twin of
/// `GET /api/v1/legal-basis-map/reconsent?format=csv`.
pub async fn reconsent_csv(
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, UiError> {
    session.may_read("/api/v1/legal-basis-map/reconsent")?;
    let report = reconsent::report(&state, DEFAULT_DAYS)
        .await
        .map_err(|e| session.fail(e))?;
    Ok(crate::routes::reconsent::csv_response(&report))
}
