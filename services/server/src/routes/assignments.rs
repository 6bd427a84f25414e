//! `POST /api/v1/assign`: a variant for an eligible subject of a running pilot.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, post, web};
use pilotgate_domain::eligibility::Signals;
use pilotgate_domain::inventory::segments::Attributes;
use pilotgate_domain::refusal::Refusal;
use pilotgate_store::AssignOutcome;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::consent_input::check_user_id;
use crate::error::{ApiError, ErrorBody};
use crate::routes::experiments::no_such_pilot;
use crate::startup::AppState;

/// Which pilot, the raw id as the client knows it (pseudonymized on
/// arrival), and the person's values of the pilot's pre-registered segments.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignInput {
    pub experiment: String,
    pub user_id: String,
    /// Segment values, by segment name: only the segments the pilot's
    /// design declared (`device_type`, `country`, `new_vs_returning`), each
    /// with a value the inventory admits (`GET /api/v1/data-categories`,
    /// `segment_dimensions`). Anything else is refused (422) and nothing is
    /// stored. Kept with a first assignment; a repeat keeps the first's.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl std::fmt::Debug for AssignInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssignInput")
            .field("experiment", &self.experiment)
            .field("user_id", &"[redacted]")
            .field("attributes", &self.attributes.len())
            .finish()
    }
}

/// The decision, with only what a shop needs to act on it: whether the person
/// may be shown a variant, which one, and whether asking for consent again
/// is allowed. No pseudonym and no ledger state (withdrawn, objected, erased)
/// is returned: the ingest token is not an oracle for either.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AssignView {
    pub experiment: String,
    pub eligible: bool,
    /// The variant to show; null when not eligible or not in the traffic.
    pub variant: Option<String>,
    /// Why there is no variant: `not_running`, `not_in_traffic` or `not_eligible`.
    pub reason: Option<String>,
    /// Not eligible, and the shop may ask the person for consent: none was
    /// given yet, it expired, or it was given under an older notice.
    pub ask_again: bool,
}

/// Assigns the subject to a variant when the pilot is running and the subject
/// has a valid legal basis for its purpose now; sticky once assigned. An
/// ineligible call stores nothing about the subject (the reason is counted
/// for the pilot's compliance report). With `Sec-GPC: 1` (the browser's
/// Global Privacy Control signal, forwarded by the shop) a subject whose
/// basis is legitimate interest is refused as objected for this call.
/// `attributes` names only the pilot's pre-registered segments (422 otherwise).
#[utoipa::path(post, path = "/api/v1/assign", tag = "assignment", request_body = AssignInput, params(("Sec-GPC" = Option<String>, Header, description = "1: the browser's Global Privacy Control signal")), security(("bearer" = [])), responses(
    (status = 200, body = AssignView),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, description = "No such pilot", body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
    (status = 503, body = ErrorBody),
))]
#[post("/api/v1/assign")]
pub async fn assign(
    _caller: Caller,
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<AssignInput>,
) -> Result<HttpResponse, ApiError> {
    // Read once: the shop forwards the browser's Global Privacy Control signal.
    let signals = Signals {
        global_privacy_control: crate::routes::privacy::sends_gpc(&req),
    };
    check_user_id(&body.user_id).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let target = state
        .store
        .assignment_target(&body.experiment)
        .await?
        .ok_or_else(|| no_such_pilot(&body.experiment))?;
    // Checked before anything is decided: an attribute the pilot did not
    // declare is refused whole, whatever the person's eligibility.
    let attributes = Attributes::parse(&target.segments, &body.attributes)
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let candidates = state.keys.candidates(&body.user_id);
    let outcome = state
        .store
        .assign_with_attributes(
            &target,
            &candidates,
            state.store.now(),
            signals,
            &attributes,
        )
        .await?;
    let refused = |refusal: Refusal, ask_again: bool| AssignView {
        experiment: target.key.clone(),
        eligible: false,
        variant: None,
        reason: Some(refusal.assign_answer().to_owned()),
        ask_again,
    };
    let view = match outcome {
        AssignOutcome::NotRunning => refused(Refusal::NotRunning, false),
        AssignOutcome::PurposeRetired => refused(Refusal::PurposeRetired, false),
        AssignOutcome::Ineligible(reason) => {
            refused(Refusal::Ineligible(reason), reason.may_ask_again())
        }
        AssignOutcome::NotInTraffic => AssignView {
            eligible: true,
            ..refused(Refusal::NotInTraffic, false)
        },
        AssignOutcome::Assigned { assignment, .. } => AssignView {
            experiment: target.key.clone(),
            eligible: true,
            variant: Some(assignment.variant),
            reason: None,
            ask_again: false,
        },
    };
    Ok(HttpResponse::Ok().json(view))
}
