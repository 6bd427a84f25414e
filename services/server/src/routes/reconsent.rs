//! Re-consent remediation: `POST /api/v1/eligibility/check` for the shop and
//! `GET /api/v1/legal-basis-map/reconsent` for compliance (see
//! `service::reconsent`).

use actix_web::http::header;
use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::service::reconsent::{self, CheckAnswer, DEFAULT_DAYS, ReconsentReport};
use crate::service::results::DownloadFormat;
use crate::startup::AppState;

/// Which notice a privacy link should show, if the person may be asked again.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// The notice id.
    pub notice: String,
}

/// Whom to check, for which purpose; the raw id is pseudonymized on arrival.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckInput {
    pub user_id: String,
    /// A registered purpose key.
    pub purpose: String,
    /// Ask for a privacy link to this notice when the answer is `ask_again`.
    pub link: Option<LinkRequest>,
}

impl std::fmt::Debug for CheckInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckInput")
            .field("user_id", &"[redacted]")
            .field("purpose", &self.purpose)
            .field("link", &self.link)
            .finish()
    }
}

/// Whether the person may be used for the purpose, and whether the shop may
/// ask them for consent again (their consent expired or predates the
/// notice the purpose needs); with `link`, a privacy link to show them then.
/// Nothing else about the person is answered: a refusal, a withdrawal, an
/// objection, an erasure and no record at all all read
/// `{eligible: false, ask_again: false}`.
#[utoipa::path(post, path = "/api/v1/eligibility/check", tag = "consents", request_body = CheckInput, security(("bearer" = [])), responses(
    (status = 200, body = CheckAnswer),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, description = "No such purpose or notice", body = ErrorBody), (status = 413, body = ErrorBody),
    (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
))]
#[post("/api/v1/eligibility/check")]
pub async fn check(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<CheckInput>,
) -> Result<HttpResponse, ApiError> {
    let answer = reconsent::check(
        &state,
        &caller.0,
        &body.user_id,
        &body.purpose,
        body.link.as_ref().map(|l| l.notice.as_str()),
    )
    .await?;
    Ok(HttpResponse::Ok().json(answer))
}

/// `?format=json|csv&days=N` of the re-consent report.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// json (default) or csv.
    pub format: Option<DownloadFormat>,
    /// The days covered, today included: 1 to 90, default 14.
    pub days: Option<u32>,
}

/// Per purpose and day: the people needing re-consent (expired, stale
/// notice), the asks, the links issued, and the consents that came back.
/// Counts only.
#[utoipa::path(get, path = "/api/v1/legal-basis-map/reconsent", tag = "consents", params(ReportParams), security(("bearer" = [])), responses(
    (status = 200, description = "JSON, or text/csv with format=csv", content((ReconsentReport = "application/json"), (String = "text/csv"))),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
))]
#[get("/api/v1/legal-basis-map/reconsent")]
pub async fn reconsent_report(
    _caller: Caller,
    state: web::Data<AppState>,
    params: web::Query<ReportParams>,
) -> Result<HttpResponse, ApiError> {
    let days = reconsent::report(&state, params.days.unwrap_or(DEFAULT_DAYS)).await?;
    Ok(match params.format.unwrap_or(DownloadFormat::Json) {
        DownloadFormat::Json => HttpResponse::Ok().json(days),
        DownloadFormat::Csv => csv_response(&days),
    })
}

/// The report as a CSV download.
pub fn csv_response(days: &ReconsentReport) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"reconsent.csv\"",
        ))
        .body(reconsent::csv(days))
}
