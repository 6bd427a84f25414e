//! `GET /api/v1/experiments/{key}/eligibility`: what the data-protection
//! officer confirms about a pilot: who was assigned, per variant, legal basis
//! and notice version; the refusals per reason; withdrawals; erasures; and
//! the approval in force; the risk checklist of its data categories.
//! Counts only, never a subject.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, web};
use serde::Serialize;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::routes::experiments::{ApprovalView, find_experiment};
use crate::service;
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
    pub subjects: i64,
}

/// Calls or events refused for one reason, summed over the days.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefusalCount {
    /// `assignment` or `event`.
    pub stage: String,
    /// The reason code, e.g. `withdrawn`, `no_record`, `not_in_traffic`.
    pub reason: String,
    pub count: i64,
}

/// A variant's assignments and how many of them were withdrawn.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VariantAssignments {
    pub assigned: u64,
    pub withdrawn: u64,
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
    /// subject's assignments, so it is not counted per pilot).
    pub erasures: u64,
    pub approval: Option<ApprovalView>,
    /// The risk checklist: per data category of the design, each measure
    /// the inventory requires of it, met or not, with the evidence.
    pub checklist: Vec<ChecklistLine>,
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
    let cohorts = crate::service::purge::eligibility_breakdown(&state.store, key)
        .await?
        .into_iter()
        .map(
            |(variant, basis, notice_version, subjects)| EligibleCohort {
                variant,
                basis,
                notice_version,
                subjects,
            },
        )
        .collect();
    let mut refusals: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (stage, reason, _day, count) in state.store.refusal_counts(key).await? {
        *refusals.entry((stage, reason)).or_default() += count;
    }
    let assignments = crate::service::purge::assignment_counts(&state.store, key)
        .await?
        .into_iter()
        .map(|(variant, assigned, withdrawn)| {
            (
                variant,
                VariantAssignments {
                    assigned,
                    withdrawn,
                },
            )
        })
        .collect();
    let deployment =
        service::inventory::deployment(&state.keys, state.encrypted_at_rest.as_deref());
    let checklist =
        service::inventory::pilot_checklist(&state.store, &deployment, &experiment).await?;
    Ok(HttpResponse::Ok().json(EligibilityReport {
        experiment: key.to_owned(),
        purpose: experiment.design.purpose.to_string(),
        state: experiment.state.to_string(),
        cohorts,
        refusals: refusals
            .into_iter()
            .map(|((stage, reason), count)| RefusalCount {
                stage,
                reason,
                count,
            })
            .collect(),
        assignments,
        erasures: state.store.erasure_count().await?,
        approval: experiment.approval.as_ref().map(ApprovalView::from),
        checklist: checklist.iter().map(ChecklistLine::from).collect(),
    }))
}
