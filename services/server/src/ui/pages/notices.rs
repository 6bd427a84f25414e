//! The notices page: every notice with its versions; for compliance, the
//! forms that create a notice (from scratch or a template) and publish the
//! next version, through the API's service (`service::notices`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;
use pilotgate_domain::notice::{DEFAULT_LANGUAGE, NoticeContent};
use serde::Deserialize;

use super::when;
use crate::service::{ServiceError, notices};
use crate::startup::AppState;
use crate::ui::{Session, UiError, html, see_other};

/// The API route the page mirrors.
const MIRRORS: &str = "/api/v1/notices";

/// `?template=KEY` prefills the create form.
#[derive(Debug, Deserialize)]
pub struct NoticesQuery {
    template: Option<String>,
}

/// The create form.
#[derive(Debug, Deserialize)]
pub struct CreateForm {
    id: String,
    content: String,
    csrf: String,
}

/// The publish form.
#[derive(Debug, Deserialize)]
pub struct PublishForm {
    content: String,
    csrf: String,
}

fn pretty(content: &NoticeContent) -> String {
    serde_json::to_string_pretty(content).unwrap_or_default()
}

pub async fn page(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<NoticesQuery>,
) -> Result<HttpResponse, UiError> {
    render(&session, &state, query.template.as_deref(), None).await
}

/// What a refused form typed, shown again with the reason.
struct Refused<'a> {
    /// The notice the publish form was for; `None` for the create form.
    notice: Option<&'a str>,
    id: &'a str,
    content: &'a str,
    message: String,
}

async fn render(
    session: &Session,
    state: &AppState,
    template: Option<&str>,
    refused: Option<Refused<'_>>,
) -> Result<HttpResponse, UiError> {
    session.may_read(MIRRORS)?;
    let stored = state
        .store
        .list_notices()
        .await
        .map_err(|e| session.fail(e))?;
    let chosen = template.and_then(notices::template);
    let empty = NoticeContent {
        purposes: vec!["analytics.storefront.ab_testing".to_owned()],
        languages: [(DEFAULT_LANGUAGE.to_owned(), Default::default())].into(),
    };
    let mut page = view::NoticesPage {
        chrome: session.chrome("Notices", urls::NOTICES),
        notices: stored
            .iter()
            .map(|n| view::NoticeRow {
                id: n.id.clone(),
                versions: n
                    .versions
                    .iter()
                    .rev()
                    .map(|v| view::NoticeVersionRow {
                        version: v.version,
                        title: v
                            .content
                            .languages
                            .get(DEFAULT_LANGUAGE)
                            .map(|t| t.title.clone())
                            .unwrap_or_default(),
                        purposes: v.content.purposes.join(", "),
                        languages: v
                            .content
                            .languages
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", "),
                        published_by: v.published_by.clone(),
                        published_at: when(v.published_at),
                    })
                    .collect(),
                publish_action: urls::notice_versions(&n.id),
                latest_content: n.latest().map(|v| pretty(&v.content)).unwrap_or_default(),
            })
            .collect(),
        can_edit: session.may("POST", MIRRORS),
        templates: notices::templates()
            .into_iter()
            .map(|t| view::TemplateLink {
                href: urls::notices_from_template(&t.key),
                name: t.name,
            })
            .collect(),
        new_id: chosen
            .as_ref()
            .map(|t| format!("shop-{}", t.key))
            .unwrap_or_default(),
        new_content: pretty(chosen.as_ref().map_or(&empty, |t| &t.content)),
        template_name: chosen.map(|t| t.name),
        error: None,
    };
    let Some(refused) = refused else {
        return Ok(html(StatusCode::OK, &page));
    };
    match refused.notice {
        Some(id) => {
            if let Some(row) = page.notices.iter_mut().find(|n| n.id == id) {
                row.latest_content = refused.content.to_owned();
            }
        }
        None => {
            page.new_id = refused.id.to_owned();
            page.new_content = refused.content.to_owned();
        }
    }
    page.error = Some(refused.message);
    Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

/// The notice the form describes, or why it is not valid (a 422 shown on the page).
async fn create_or_publish(
    state: &AppState,
    session: &Session,
    notice: Option<&str>,
    id: &str,
    content: &str,
) -> Result<(), Result<String, UiError>> {
    let parsed: NoticeContent = serde_json::from_str(content).map_err(|e| {
        Ok(format!(
            "the texts are not JSON of a notice (line {}, column {}): {}",
            e.line(),
            e.column(),
            match e.classify() {
                serde_json::error::Category::Data =>
                    "a field is missing, unknown or of the wrong type",
                _ => "the JSON is malformed",
            }
        ))
    })?;
    let outcome = match notice {
        Some(notice) => notices::publish(&state.store, &session.actor, notice, parsed)
            .await
            .map(|_| ()),
        None => notices::create(&state.store, &session.actor, id, parsed)
            .await
            .map(|_| ()),
    };
    match outcome {
        Ok(()) => Ok(()),
        Err(ServiceError::Unprocessable(message)) => Err(Ok(message)),
        Err(other) => Err(Err(session.fail(other))),
    }
}

/// Saves the form, or shows the page again with what was typed and why not.
async fn save(
    session: Session,
    state: &AppState,
    notice: Option<&str>,
    id: &str,
    content: &str,
) -> Result<HttpResponse, UiError> {
    match create_or_publish(state, &session, notice, id, content).await {
        Ok(()) => Ok(see_other(urls::NOTICES)),
        Err(Ok(message)) => {
            let refused = Refused {
                notice,
                id,
                content,
                message,
            };
            render(&session, state, None, Some(refused)).await
        }
        Err(Err(error)) => Err(error),
    }
}

fn may_edit(session: &Session) -> Result<(), UiError> {
    if session.may("POST", MIRRORS) {
        Ok(())
    } else {
        Err(session.fail(UiError::page(
            StatusCode::FORBIDDEN,
            "Only compliance may create or publish notices.",
        )))
    }
}

pub async fn create(
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, UiError> {
    session.check_csrf(&form.csrf)?;
    may_edit(&session)?;
    save(session, &state, None, form.id.trim(), &form.content).await
}

pub async fn publish(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<PublishForm>,
) -> Result<HttpResponse, UiError> {
    session.check_csrf(&form.csrf)?;
    may_edit(&session)?;
    save(session, &state, Some(&path), "", &form.content).await
}
