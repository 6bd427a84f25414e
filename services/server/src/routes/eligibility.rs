//! `GET /api/v1/experiments/{key}/eligibility`: what the data-protection
//! officer confirms about a pilot: who was assigned, per variant, legal basis
//! and notice version; the refusals per reason; withdrawals; erasures; and
//! the approval in force; the risk checklist of its data categories.
//! Counts only, never a subject; a count of fewer than `k` people, or one
//! from which such a count could be recomputed, is `null` with
//! `"suppressed": true` (the compliance page withholds the same).

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, web};
use serde::Serialize;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::routes::experiments::{ApprovalView, find_experiment};
use crate::service;
use crate::service::disclosure;
use crate::service::inventory::ChecklistLine;
use crate::startup::AppState;

/// Subjects assigned under one variant, basis and notice version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EligibleCohort {
    pub variant: String,
    /// The legal basis the assignment's proof names.
    pub basis: String,
    /// The notice version of the consent it rests on (none for other bases).
    pub notice_version: Option<i64>,
    /// `null` when suppressed.
    pub subjects: Option<u64>,
    /// Whether a count here is withheld (`null`) by small-cell suppression.
    pub suppressed: bool,
}

/// Calls or events refused for one reason, summed over the days.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefusalCount {
    /// `assignment` or `event`.
    pub stage: String,
    /// The reason code, e.g. `withdrawn`, `no_record`, `not_in_traffic`.
    pub reason: String,
    /// `null` when suppressed.
    pub count: Option<u64>,
    /// Whether a count here is withheld (`null`) by small-cell suppression.
    pub suppressed: bool,
}

/// A variant's assignments and how many of them were withdrawn.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VariantAssignments {
    /// `null` when suppressed.
    pub assigned: Option<u64>,
    /// `null` when suppressed.
    pub withdrawn: Option<u64>,
    /// Whether a count here is withheld (`null`) by small-cell suppression.
    pub suppressed: bool,
}

/// The eligibility report of a pilot.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EligibilityReport {
    pub experiment: String,
    pub purpose: String,
    /// draft, submitted, approved, denied, running or stopped.
    pub state: String,
    pub cohorts: Vec<EligibleCohort>,
    pub refusals: Vec<RefusalCount>,
    pub assignments: BTreeMap<String, VariantAssignments>,
    /// Subjects erased so far (in the whole service: erasure removes a
    /// subject's assignments, so it is not counted per pilot); `null` when
    /// suppressed.
    pub erasures: Option<u64>,
    pub approval: Option<ApprovalView>,
    /// The risk checklist: per data category of the design, each measure
    /// the inventory requires of it, met or not, with the evidence.
    pub checklist: Vec<ChecklistLine>,
    /// The minimum cell size `k` the counts were released under.
    pub min_cell: u64,
    /// Whether any count of the report is withheld (`null`) by small-cell suppression.
    pub suppressed: bool,
}

#[utoipa::path(get, path = "/api/v1/experiments/{key}/eligibility", tag = "compliance", params(("key" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, body = EligibilityReport),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody),
))]
#[get("/api/v1/experiments/{key}/eligibility")]
pub async fn show(
    _caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let experiment = find_experiment(&state, &path).await?;
    let key = experiment.design.key.as_str();
    let k = state.min_cell;
    let cells = disclosure::pilot_cells(&state.store, key, k).await?;
    let cohorts: Vec<EligibleCohort> = cells
        .cohorts
        .iter()
        .map(
            |(variant, basis, notice_version, subjects)| EligibleCohort {
                variant: variant.clone(),
                basis: basis.clone(),
                notice_version: *notice_version,
                subjects: *subjects,
                suppressed: subjects.is_none(),
            },
        )
        .collect();
    // The per-reason totals are the compliance page's column totals, withheld alike.
    let counters = state.store.refusal_counts(key).await?;
    let reasons: Vec<(String, String)> = counters
        .iter()
        .map(|(stage, reason, ..)| (stage.clone(), reason.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let matrix = disclosure::refusal_matrix(counters, k);
    let totals = matrix.released_column_totals();
    let refusals: Vec<RefusalCount> = reasons
        .into_iter()
        .map(|(stage, reason)| {
            let column = disclosure::refusal_column(&stage, &reason);
            let index = matrix.columns.iter().position(|c| *c == column);
            let withheld =
                index.is_none_or(|i| matrix.withheld.column_totals.get(i) == Some(&true));
            RefusalCount {
                stage,
                reason,
                count: index.filter(|_| !withheld).map(|i| totals[i]),
                suppressed: withheld,
            }
        })
        .collect();
    let assignments: BTreeMap<String, VariantAssignments> = cells
        .variants
        .iter()
        .map(|(variant, c)| {
            (
                variant.clone(),
                VariantAssignments {
                    assigned: c.assigned,
                    withdrawn: c.withdrawn,
                    suppressed: c.assigned.is_none() || c.withdrawn.is_none(),
                },
            )
        })
        .collect();
    let erasures = disclosure::standalone(state.store.erasure_count().await?, k);
    let suppressed =
        cells.suppressed || erasures.is_none() || refusals.iter().any(|r| r.suppressed);
    let deployment =
        service::inventory::deployment(&state.keys, state.encrypted_at_rest.as_deref());
    let checklist =
        service::inventory::pilot_checklist(&state.store, &deployment, &experiment).await?;
    Ok(HttpResponse::Ok().json(EligibilityReport {
        experiment: key.to_owned(),
        purpose: experiment.design.purpose.to_string(),
        state: experiment.state.to_string(),
        cohorts,
        refusals,
        assignments,
        erasures,
        approval: experiment.approval.as_ref().map(ApprovalView::from),
        checklist: checklist.iter().map(ChecklistLine::from).collect(),
        min_cell: k.get(),
        suppressed,
    }))
}
