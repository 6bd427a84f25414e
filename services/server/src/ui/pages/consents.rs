//! The consent overview: per purpose, who may be used on which basis, and
//! who must be asked again (the legal-basis map).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;

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
    Ok(html(
        StatusCode::OK,
        &view::ConsentsPage {
            chrome: session.chrome("Consents", urls::CONSENTS),
            purposes,
        },
    ))
}
