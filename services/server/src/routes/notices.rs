//! Notices: versioned texts per language and the purposes they ask for;
//! the templates a shop can start from.

use actix_web::{HttpResponse, get, post, web};
use pilotgate_domain::notice::NoticeContent;
use pilotgate_store::{NoticeVersion, StoredNotice};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::service::notices::{self, NoticeTemplate};
use crate::startup::AppState;

/// A new notice and its first version.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticeInput {
    /// A slug, e.g. `shop-testing`.
    pub id: String,
    /// Registered purpose keys the notice asks for.
    pub purposes: Vec<String>,
    /// Per language tag (`en` required): `{title, body, purposes: {key: sentence}}`.
    #[schema(value_type = Object)]
    pub languages: std::collections::BTreeMap<String, pilotgate_domain::notice::NoticeText>,
}

/// A new version of a notice.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticeVersionInput {
    pub purposes: Vec<String>,
    #[schema(value_type = Object)]
    pub languages: std::collections::BTreeMap<String, pilotgate_domain::notice::NoticeText>,
}

/// One published version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NoticeVersionView {
    pub version: u32,
    pub purposes: Vec<String>,
    #[schema(value_type = Object)]
    pub languages: std::collections::BTreeMap<String, pilotgate_domain::notice::NoticeText>,
    pub published_by: String,
    /// RFC 3339.
    pub published_at: String,
}

/// A notice with every version, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NoticeView {
    pub id: String,
    pub latest_version: u32,
    pub versions: Vec<NoticeVersionView>,
}

/// Every notice.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NoticeList {
    pub notices: Vec<NoticeView>,
}

/// The templates.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateList {
    pub templates: Vec<NoticeTemplate>,
}

impl From<&NoticeVersion> for NoticeVersionView {
    fn from(v: &NoticeVersion) -> Self {
        NoticeVersionView {
            version: v.version,
            purposes: v.content.purposes.clone(),
            languages: v.content.languages.clone(),
            published_by: v.published_by.clone(),
            published_at: v
                .published_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

impl From<&StoredNotice> for NoticeView {
    fn from(n: &StoredNotice) -> Self {
        NoticeView {
            id: n.id.clone(),
            latest_version: n.latest().map_or(0, |v| v.version),
            versions: n.versions.iter().map(NoticeVersionView::from).collect(),
        }
    }
}

/// Creates a notice with its first version (version 1). Every purpose must be registered.
#[utoipa::path(post, path = "/api/v1/notices", tag = "notices", request_body = NoticeInput, security(("bearer" = [])), responses(
    (status = 201, body = NoticeView),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 409, description = "The id is taken", body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[post("/api/v1/notices")]
pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<NoticeInput>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let content = NoticeContent {
        purposes: body.purposes,
        languages: body.languages,
    };
    notices::create(&state.store, &caller.0, &body.id, content).await?;
    let stored = state
        .store
        .notice(&body.id)
        .await?
        .ok_or(ApiError::Internal)?;
    Ok(HttpResponse::Created().json(NoticeView::from(&stored)))
}

/// Publishes the next version of a notice; the server numbers it (the highest plus one).
/// Records collected with the form from now on carry this version.
#[utoipa::path(post, path = "/api/v1/notices/{id}/versions", tag = "notices", params(("id" = String, Path)), request_body = NoticeVersionInput, security(("bearer" = [])), responses(
    (status = 201, body = NoticeVersionView),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
))]
#[post("/api/v1/notices/{id}/versions")]
pub async fn publish(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<NoticeVersionInput>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let content = NoticeContent {
        purposes: body.purposes,
        languages: body.languages,
    };
    let version = notices::publish(&state.store, &caller.0, &path, content).await?;
    Ok(HttpResponse::Created().json(NoticeVersionView::from(&version)))
}

/// Lists every notice with its versions.
#[utoipa::path(get, path = "/api/v1/notices", tag = "notices", security(("bearer" = [])), responses(
    (status = 200, body = NoticeList),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
))]
#[get("/api/v1/notices")]
pub async fn list(_caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let notices = state.store.list_notices().await?;
    Ok(HttpResponse::Ok().json(NoticeList {
        notices: notices.iter().map(NoticeView::from).collect(),
    }))
}

/// The templates a shop can start a notice from (English and German).
#[utoipa::path(get, path = "/api/v1/notices/templates", tag = "notices", security(("bearer" = [])), responses(
    (status = 200, body = TemplateList),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
))]
#[get("/api/v1/notices/templates")]
pub async fn templates(_caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(TemplateList {
        templates: notices::templates(),
    })
}

/// One notice with every version.
#[utoipa::path(get, path = "/api/v1/notices/{id}", tag = "notices", params(("id" = String, Path)), security(("bearer" = [])), responses(
    (status = 200, body = NoticeView),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
))]
#[get("/api/v1/notices/{id}")]
pub async fn show(
    _caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let notice = state.store.notice(&path).await?.ok_or_else(|| {
        ApiError::NotFound(format!("no notice is called '{}'", notices::clip(&path)))
    })?;
    Ok(HttpResponse::Ok().json(NoticeView::from(&notice)))
}
