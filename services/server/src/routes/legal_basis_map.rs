//! The legal-basis map: subjects per purpose, basis and status, and who must be asked again.

use actix_web::{HttpResponse, get, web};
use std::collections::BTreeMap;

use pilotgate_dashboards::CountMatrix;
use pilotgate_store::ReconsentNeed;
use serde::Serialize;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::service::disclosure;
use crate::startup::AppState;

/// Subjects whose record in force has this purpose, basis and status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CountView {
    pub purpose: String,
    pub basis: String,
    pub status: String,
    /// `null` when fewer than `k` people, or when it would let such a
    /// count be recomputed from the consents page's totals.
    pub subjects: Option<u64>,
    /// Whether a count here is withheld (`null`) by small-cell suppression.
    pub suppressed: bool,
}

/// Granted consents of a purpose that no longer hold (`null`: fewer than
/// `k` people, withheld).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReconsentView {
    pub purpose: String,
    /// The consent's expiry has passed.
    pub expired: Option<u64>,
    /// Given under a notice older than the purpose's minimum version.
    pub stale_notice: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

/// The map as of `at`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LegalBasisMapView {
    pub at: String,
    pub counts: Vec<CountView>,
    pub reconsent: Vec<ReconsentView>,
    /// The minimum cell size `k` the counts were released under.
    pub min_cell: u64,
}

/// Per purpose x basis x status counts of the records in force now, and re-consent needs.
#[utoipa::path(get, path = "/api/v1/legal-basis-map", tag = "consents", security(("bearer" = [])), responses(
    (status = 200, body = LegalBasisMapView),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
))]
#[get("/api/v1/legal-basis-map")]
pub async fn show(_caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let at = state.store.now();
    let map = state.store.legal_basis_map(at).await?;
    let mut matrices: BTreeMap<&str, CountMatrix> = BTreeMap::new();
    let mut counts = Vec::with_capacity(map.counts.len());
    for c in &map.counts {
        let matrix = matrices
            .entry(c.purpose.as_str())
            .or_insert_with(|| disclosure::basis_matrix(&map.counts, &c.purpose, state.min_cell));
        let subjects = disclosure::released_cell(matrix, &c.basis, &c.status);
        counts.push(CountView {
            purpose: c.purpose.clone(),
            basis: c.basis.clone(),
            status: c.status.clone(),
            subjects,
            suppressed: subjects.is_none(),
        });
    }
    Ok(HttpResponse::Ok().json(LegalBasisMapView {
        at: at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        counts,
        min_cell: state.min_cell.get(),
        reconsent: map
            .reconsent
            .into_iter()
            .map(|r: ReconsentNeed| {
                let release =
                    |n: i64| disclosure::standalone(u64::try_from(n).unwrap_or(0), state.min_cell);
                let (expired, stale_notice) = (release(r.expired), release(r.stale_notice));
                ReconsentView {
                    purpose: r.purpose,
                    expired,
                    stale_notice,
                    suppressed: expired.is_none() || stale_notice.is_none(),
                }
            })
            .collect(),
    }))
}
