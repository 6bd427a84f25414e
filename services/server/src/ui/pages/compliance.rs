//! The compliance view of one experiment: its design and approval, who was
//! eligible (per variant, basis and notice version), refusals, withdrawals,
//! erasures and its audit trail; the eligibility report as CSV; and the
//! approve and deny forms of the compliance role.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use pilotgate_analysis::disclosure::MinCell;
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;
use pilotgate_domain::Role;
use pilotgate_domain::experiment::{Action, State, check_reviewer};
use pilotgate_store::{AuditQuery, Experiment, Store, StoreError};
use serde::Deserialize;

use super::{state_of, when};
use crate::service;
use crate::service::disclosure::{self, PilotCells};
use crate::service::purposes::AssessmentView;
use crate::startup::AppState;
use crate::ui::{Session, UiError, html, see_other};

/// The compliance view reads what the audit route reads: compliance only.
pub(super) const MIRRORS: &str = "/api/v1/audit";

/// The approve and deny forms: the design version shown, the reasoning.
#[derive(Deserialize)]
pub struct DecisionForm {
    design_version: i64,
    comment: String,
    csrf: String,
}

fn eligibility_rows(cells: &PilotCells) -> Vec<view::EligibilityRow> {
    cells
        .cohorts
        .iter()
        .map(|(variant, basis, notice, subjects)| view::EligibilityRow {
            variant: variant.clone(),
            basis: basis.clone(),
            notice_version: notice.and_then(|n| u32::try_from(n).ok()),
            subjects: view::Count::released(*subjects),
        })
        .collect()
}

fn can_decide(session: &Session, state: State, contributors: &[String]) -> bool {
    session.role == Role::Compliance
        && state == State::Submitted
        && check_reviewer(&session.actor, contributors).is_ok()
}

pub async fn page(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    session.may_read(MIRRORS)?;
    let experiment = service::experiments::find(&state.store, &path)
        .await
        .map_err(|e| session.fail(e))?;
    let key = experiment.design.key.as_str();
    let fail = |e| session.fail(e);
    let contributors = state.store.design_contributors(key).await.map_err(fail)?;
    let chrome = session.chrome(
        &format!("Compliance: {}", experiment.design.name),
        urls::EXPERIMENTS,
    );
    let can_decide = can_decide(&session, experiment.state, &contributors);
    let mut page = compliance_model(
        &state.store,
        &experiment,
        chrome,
        can_decide,
        state.min_cell,
    )
    .await
    .map_err(fail)?;
    for row in &mut page.exports {
        row.decide = super::exports::decision_of(&session, &row.id, &row.state);
    }
    let deployment =
        service::inventory::deployment(&state.keys, state.encrypted_at_rest.as_deref());
    page.checklist = service::inventory::pilot_checklist(&state.store, &deployment, &experiment)
        .await
        .map_err(|e| session.fail(e))?
        .into_iter()
        .map(|item| view::ChecklistRow {
            category: item.category,
            measure: item.measure.as_str().to_owned(),
            met: item.met,
            evidence: item.evidence,
        })
        .collect();
    Ok(html(StatusCode::OK, &page))
}

/// The compliance view of `experiment` in `chrome` (the memo shows it too).
pub(crate) async fn compliance_model(
    store: &Store,
    experiment: &Experiment,
    chrome: view::Chrome,
    can_decide: bool,
    k: MinCell,
) -> Result<view::CompliancePage, StoreError> {
    let key = experiment.design.key.as_str().to_owned();
    let cells = disclosure::pilot_cells(store, &key, k).await?;
    let eligibility = eligibility_rows(&cells);
    let refusals = store.refusal_counts(&key).await?;
    let erasures = disclosure::standalone(store.erasure_count().await?, k);
    let (next_purge, purged_so_far) = purge_texts(store, experiment, cells.assigned_total).await?;
    let trail = store
        .list_audit(&AuditQuery {
            after: None,
            limit: 500,
            target: Some(format!("experiment:{key}")),
        })
        .await?;
    let exports = store.export_requests_of(&key).await?;
    let design = &experiment.design;
    let purpose = store
        .purpose_record(design.purpose.as_str())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no purpose '{}'", design.purpose)))?;
    let allows_legitimate_interest = purpose
        .purpose
        .allowed_bases
        .contains(&pilotgate_domain::purpose::LegalBasis::LegitimateInterest);
    let li_assessment = if allows_legitimate_interest {
        store
            .assessments(design.purpose.as_str())
            .await?
            .first()
            .map(|a| super::purposes::assessment_row(&AssessmentView::from(a)))
    } else {
        None
    };
    Ok(view::CompliancePage {
        chrome,
        experiment_key: key.clone(),
        experiment_name: design.name.clone(),
        state: state_of(experiment.state),
        design_version: experiment.design_version,
        design: view::DesignSummary {
            purpose: design.purpose.to_string(),
            hypothesis: design.hypothesis.clone(),
            primary_metric: design.primary_metric.event.clone(),
            guardrails: design.guardrails.iter().map(|g| g.event.clone()).collect(),
            data_categories: design.data_categories.clone(),
            retention_days: design.retention_days,
            variants: design
                .variants
                .iter()
                .map(|v| view::VariantWeight {
                    key: v.key.clone(),
                    weight: v.weight,
                })
                .collect(),
            coverage: design.coverage,
            mde: design.mde,
            alpha: design.alpha,
            power: design.power,
            planned_users: experiment
                .planned_sample_size
                .and_then(|n| u64::try_from(n).ok())
                .map(|n| n * design.variants.len() as u64),
            purpose_version: purpose.version,
            allowed_bases: purpose
                .purpose
                .allowed_bases
                .iter()
                .map(|b| b.as_str().to_owned())
                .collect(),
            li_assessment,
            allows_legitimate_interest,
        },
        approvals: experiment
            .approval
            .iter()
            .map(|a| view::ApprovalRecord {
                by: a.decided_by.clone(),
                at: when(a.decided_at),
                decision: if a.decision == "approved" {
                    view::ApprovalDecision::Approved
                } else {
                    view::ApprovalDecision::Denied
                },
                comment: a.comment.clone(),
            })
            .collect(),
        eligibility,
        assigned_total: view::Count::released(cells.assigned_total),
        refusals: disclosure::refusal_matrix(refusals, k),
        withdrawals: cells
            .variants
            .iter()
            .map(|(variant, cells)| view::VariantCount {
                variant: variant.clone(),
                count: view::Count::released(cells.withdrawn),
            })
            .collect(),
        erasures: view::Count::released(erasures),
        break_glass: trail
            .iter()
            .rev()
            .filter(|e| e.action == "export.break_glass")
            .map(|e| view::AuditTrailEntry {
                at: when(pilotgate_domain::time::from_micros(e.at)),
                actor: e.actor.clone(),
                action: e.action.clone(),
                summary: e.details.chars().take(200).collect(),
            })
            .collect(),
        exports: exports
            .into_iter()
            .map(|r| view::ExportRow {
                downloads: format!("{} of {}", r.downloads, r.max_downloads),
                recipient: r.recipient,
                format: r.format,
                requested_by: r.requested_by,
                reason: r.reason,
                state: r.state,
                id: r.id,
                decide: None,
            })
            .collect(),
        audit_trail: trail
            .iter()
            .rev()
            .map(|e| view::AuditTrailEntry {
                at: when(pilotgate_domain::time::from_micros(e.at)),
                actor: e.actor.clone(),
                action: e.action.clone(),
                summary: e.details.chars().take(200).collect(),
            })
            .collect(),
        can_decide,
        // The page handler adds the risk checklist (the memo shows none).
        checklist: Vec::new(),
        next_purge,
        purged_so_far,
    })
}

pub async fn csv(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    session.may_read(MIRRORS)?;
    let cells = disclosure::pilot_cells(&state.store, &path, state.min_cell)
        .await
        .map_err(|e| session.fail(e))?;
    let rows = eligibility_rows(&cells);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"eligibility.csv\"",
        ))
        .body(view::eligibility_csv(&rows)))
}

pub async fn approve(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> Result<HttpResponse, UiError> {
    decide(session, state, &path, Action::Approve, form.into_inner()).await
}

pub async fn deny(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> Result<HttpResponse, UiError> {
    decide(session, state, &path, Action::Deny, form.into_inner()).await
}

/// Approves or denies through the API's service (`service::experiments::decide`):
/// compliance only (not admin), never anyone who created, edited or
/// submitted the design, for the design version the page showed, with a
/// comment that is plain text, and only with the session's CSRF token.
async fn decide(
    session: Session,
    state: web::Data<AppState>,
    key: &str,
    action: Action,
    form: DecisionForm,
) -> Result<HttpResponse, UiError> {
    session.check_csrf(&form.csrf)?;
    let api = match action {
        Action::Approve => "/api/v1/experiments/{key}/approve",
        _ => "/api/v1/experiments/{key}/deny",
    };
    if !session.may("POST", api) {
        return Err(session.fail(UiError::page(
            StatusCode::FORBIDDEN,
            "Only compliance may decide on a pilot.",
        )));
    }
    service::experiments::decide(
        &state.store,
        &session.actor,
        key,
        action,
        form.design_version,
        &form.comment,
    )
    .await
    .map_err(|e| session.fail(e))?;
    Ok(see_other(&urls::compliance(key)))
}

/// The compliance view's retention lines: when the pilot's raw data goes
/// (stopped_at + retention_days) and what the purge deleted so far.
/// `assigned_total` is the pilot's assigned subjects as its views release
/// them (the count deleted is the same figure).
async fn purge_texts(
    store: &Store,
    experiment: &pilotgate_store::Experiment,
    assigned_total: Option<u64>,
) -> Result<(String, String), StoreError> {
    let days = experiment.design.retention_days;
    let kept =
        crate::service::purge::kept_aggregates(store, experiment.design.key.as_str()).await?;
    Ok(match kept {
        Some((at, kept)) => (
            "none: done".to_owned(),
            format!(
                "raw data purged on {}: {} and {} events deleted; the results come from the aggregates kept",
                at.format("%Y-%m-%d"),
                match assigned_total.filter(|n| *n == kept.deleted.assignments) {
                    Some(n) => format!("{n} assignments"),
                    None => format!("the assignments ({})", pilotgate_dashboards::SUPPRESSED),
                },
                kept.deleted.events
            ),
        ),
        None => (
            match experiment.stopped_at {
                Some(stopped) => format!(
                    "{} ({days} days after the stop)",
                    (stopped + chrono::Duration::days(i64::from(days))).format("%Y-%m-%d")
                ),
                None => format!("{days} days after the pilot stops"),
            },
            "nothing yet".to_owned(),
        ),
    })
}
