//! `POST /api/v1/assign`: a variant for an eligible subject of a running pilot.

use actix_web::{HttpResponse, post, web};
use pilotgate_store::AssignOutcome;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::consent_input::check_user_id;
use crate::error::{ApiError, ErrorBody};
use crate::routes::experiments::no_such_pilot;
use crate::startup::AppState;

/// Which pilot, and the raw id as the client knows it (pseudonymized on arrival).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignInput {
    pub experiment: String,
    pub user_id: String,
}

impl std::fmt::Debug for AssignInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssignInput")
            .field("experiment", &self.experiment)
            .field("user_id", &"[redacted]")
            .finish()
    }
}

/// The decision. `variant` is null when the subject is not eligible or not in the traffic.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AssignView {
    pub experiment: String,
    /// The subject's pseudonym.
    pub subject: String,
    pub eligible: bool,
    pub variant: Option<String>,
    /// Why there is no variant: not_running, not_in_traffic, or an eligibility reason code.
    pub reason: Option<String>,
}

/// Assigns the subject to a variant when the pilot is running and the subject
/// has a valid legal basis for its purpose now; sticky once assigned. An
/// ineligible call stores nothing about the subject.
#[utoipa::path(post, path = "/api/v1/assign", tag = "assignment", request_body = AssignInput, security(("bearer" = [])), responses(
    (status = 200, body = AssignView),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, description = "No such pilot", body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
    (status = 503, body = ErrorBody),
))]
#[post("/api/v1/assign")]
pub async fn assign(
    _caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<AssignInput>,
) -> Result<HttpResponse, ApiError> {
    check_user_id(&body.user_id).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let target = state
        .store
        .assignment_target(&body.experiment)
        .await?
        .ok_or_else(|| no_such_pilot(&body.experiment))?;
    let candidates = state.keys.candidates(&body.user_id);
    let outcome = state
        .store
        .assign(&target, &candidates, state.store.now())
        .await?;
    let current = candidates[0].to_string();
    let view = match outcome {
        AssignOutcome::NotRunning => AssignView {
            experiment: target.key,
            subject: current,
            eligible: false,
            variant: None,
            reason: Some("not_running".to_owned()),
        },
        AssignOutcome::Ineligible(reason) => AssignView {
            experiment: target.key,
            subject: current,
            eligible: false,
            variant: None,
            reason: Some(reason.as_str().to_owned()),
        },
        AssignOutcome::NotInTraffic => AssignView {
            experiment: target.key,
            subject: current,
            eligible: true,
            variant: None,
            reason: Some("not_in_traffic".to_owned()),
        },
        AssignOutcome::Assigned { assignment, .. } => AssignView {
            experiment: target.key,
            subject: assignment.subject,
            eligible: true,
            variant: Some(assignment.variant),
            reason: None,
        },
    };
    Ok(HttpResponse::Ok().json(view))
}
