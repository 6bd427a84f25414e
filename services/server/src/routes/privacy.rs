//! Privacy links and the consent form's API twin. `POST /api/v1/privacy-links`
//! takes a raw id (in the body) and an ingest token; the other two routes
//! are authorized by the link's opaque token alone, like the form page.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::service::privacy::{
    self, Choice, CurrentChoice, FormError, FormState, IssuedLink, Limit, Saved,
};
use crate::startup::AppState;

/// Whom the link is for, and which notice it shows.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrivacyLinkInput {
    /// The raw id as the shop knows it; pseudonymized on arrival, never stored or put in the link.
    pub user_id: String,
    /// The notice id.
    pub notice: String,
}

impl std::fmt::Debug for PrivacyLinkInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivacyLinkInput")
            .field("user_id", &"[redacted]")
            .field("notice", &self.notice)
            .finish()
    }
}

/// The choices made on the form.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChoicesInput {
    /// The notice version the person was shown; it must be the notice's latest
    /// published version (409 otherwise: reload the form).
    pub notice_version: u32,
    pub choices: Vec<Choice>,
    /// The receipt's language (default: the notice's English text).
    pub language: Option<String>,
}

/// The person's current choice for a purpose.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CurrentView {
    /// `allowed`, `not_allowed` or `no_choice`.
    pub choice: &'static str,
    /// RFC 3339, when allowed.
    pub since: Option<String>,
}

/// One purpose of the form.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FormPurposeView {
    pub purpose: String,
    pub description: String,
    /// False for a purpose that cannot be chosen at all (not registered, or
    /// retired with no record of the person): it is shown without choices.
    pub offered: bool,
    /// Whether "yes" may be chosen; false for a retired purpose or one that
    /// needs a newer notice version than this one (only "no" is taken then).
    pub may_allow: bool,
    /// Why "yes" is not offered: `unknown`, `retired` or `notice_too_old`.
    pub limit: Option<&'static str>,
    pub current: CurrentView,
    /// A Global Privacy Control signal (`Sec-GPC: 1`) on the save objects to this purpose.
    pub legitimate_interest: bool,
}

/// The form: the notice's latest version in one language and the person's choices.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FormView {
    pub notice_id: String,
    pub notice_version: u32,
    pub language: String,
    pub languages: Vec<String>,
    pub title: String,
    pub body: String,
    pub purposes: Vec<FormPurposeView>,
    /// RFC 3339: when the link stops working.
    pub expires_at: String,
}

/// `?lang=` of the form.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LanguageQuery {
    pub lang: Option<String>,
}

impl From<FormError> for ApiError {
    fn from(error: FormError) -> Self {
        match error {
            FormError::NotFound(m) => ApiError::NotFound(m),
            FormError::Expired => ApiError::Gone(FormError::Expired.to_string()),
            FormError::Forbidden => ApiError::Forbidden(FormError::Forbidden.to_string()),
            FormError::Conflict(m) => ApiError::Conflict(m),
            FormError::Unprocessable(m) => ApiError::Unprocessable(m),
            FormError::Service(e) => e.into(),
        }
    }
}

/// Whether the request carries the Global Privacy Control signal `Sec-GPC: 1`.
pub fn sends_gpc(req: &HttpRequest) -> bool {
    req.headers()
        .get("sec-gpc")
        .is_some_and(|v| v.as_bytes().trim_ascii() == b"1")
}

/// The `Accept-Language` header, if readable.
pub fn accept_language(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
}

impl From<&FormState> for FormView {
    fn from(form: &FormState) -> Self {
        let text = &form.version.content.languages[&form.language];
        FormView {
            notice_id: form.notice.id.clone(),
            notice_version: form.version.version,
            language: form.language.clone(),
            languages: form.version.content.languages.keys().cloned().collect(),
            title: text.title.clone(),
            body: text.body.clone(),
            purposes: form
                .purposes
                .iter()
                .map(|p| FormPurposeView {
                    purpose: p.key.clone(),
                    description: p.sentence.clone(),
                    offered: p.may_refuse,
                    may_allow: p.may_allow,
                    limit: p.limit.map(Limit::as_str),
                    current: match p.current {
                        CurrentChoice::Allowed { since } => CurrentView {
                            choice: "allowed",
                            since: Some(since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                        },
                        CurrentChoice::NotAllowed => CurrentView {
                            choice: "not_allowed",
                            since: None,
                        },
                        CurrentChoice::NoChoice => CurrentView {
                            choice: "no_choice",
                            since: None,
                        },
                    },
                    legitimate_interest: p.allows_legitimate_interest,
                })
                .collect(),
            expires_at: form
                .claims
                .expires_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// A short-lived link to the person's consent form. Its token is 32 random
/// bytes that name no one (the server keeps the link under the token's hash);
/// it expires (30 minutes by default). Issuing is audited (`privacy_link.issue`).
#[utoipa::path(post, path = "/api/v1/privacy-links", tag = "privacy", request_body = PrivacyLinkInput, security(("bearer" = [])), responses(
    (status = 201, body = IssuedLink),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, description = "No such notice", body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[post("/api/v1/privacy-links")]
pub async fn issue(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<PrivacyLinkInput>,
) -> Result<HttpResponse, ApiError> {
    let link = privacy::issue_link(&state, &caller.0, &body.user_id, &body.notice).await?;
    Ok(HttpResponse::Created().json(link))
}

/// The consent form as JSON: the notice's latest version and the person's
/// current choices. Authorized by the link's token alone.
#[utoipa::path(get, path = "/api/v1/privacy/{token}", tag = "privacy", params(("token" = String, Path, description = "The privacy link's token"), LanguageQuery), responses(
    (status = 200, body = FormView),
    (status = 404, description = "Not a valid link", body = ErrorBody),
    (status = 410, description = "The link expired", body = ErrorBody),
))]
#[get("/api/v1/privacy/{token}")]
pub async fn show_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<LanguageQuery>,
) -> Result<HttpResponse, ApiError> {
    let form = privacy::open(&state, &path, query.lang.as_deref(), accept_language(&req)).await?;
    Ok(HttpResponse::Ok().json(FormView::from(&form)))
}

/// Saves the person's choices: one ledger record per purpose chosen, channel
/// `privacy_center`; with `Sec-GPC: 1`, an objection to each purpose of the
/// notice that allows legitimate interest. Returns the signed receipt.
#[utoipa::path(post, path = "/api/v1/privacy/{token}/choices", tag = "privacy", params(("token" = String, Path, description = "The privacy link's token"), ("Sec-GPC" = Option<String>, Header, description = "1: Global Privacy Control")), request_body = ChoicesInput, responses(
    (status = 201, body = Saved),
    (status = 400, body = ErrorBody),
    (status = 404, description = "Not a valid link", body = ErrorBody),
    (status = 409, description = "The notice version shown is not the latest", body = ErrorBody),
    (status = 410, description = "The link expired", body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[post("/api/v1/privacy/{token}/choices")]
pub async fn choose(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<ChoicesInput>,
) -> Result<HttpResponse, ApiError> {
    let saved: Saved = privacy::save(
        &state,
        &path,
        body.notice_version,
        &body.choices,
        sends_gpc(&req),
        body.language.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Created().json(saved))
}
