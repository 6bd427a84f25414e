//! The notices page: every notice with its versions; for compliance, the
//! forms that create a notice (from scratch or a template) and publish the
//! next version (prefilled from the latest), through the API's service
//! (`service::notices`). The forms are plain fields: purposes to tick and,
//! per language, a title, a body and one sentence per ticked purpose; their
//! own buttons add or remove a language and refresh the sentence fields
//! without JavaScript, and only the save button saves. Reading the fields
//! and turning them into the notice content is `notices/form.rs`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;
use pilotgate_domain::notice::DEFAULT_LANGUAGE;
use pilotgate_store::{PurposeRecord, StoreError};
use serde::Deserialize;

use super::when;
use crate::service::{ServiceError, notices};
use crate::startup::AppState;
use crate::ui::{Session, UiError, html, see_other};

mod form;

use form::{
    Posted, Step, Typed, add_language, blank, content_of, form_view, read, readable, typed_of,
};

/// The API route the page mirrors.
const MIRRORS: &str = "/api/v1/notices";

/// `?template=KEY` prefills the create form.
#[derive(Debug, Deserialize)]
pub struct NoticesQuery {
    template: Option<String>,
}

pub async fn page(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<NoticesQuery>,
) -> Result<HttpResponse, UiError> {
    let page = render(&session, &state, query.template.as_deref(), None).await?;
    Ok(html(StatusCode::OK, &page))
}

/// A posted form shown again: what was typed, and why it was not saved.
struct Posting {
    /// The notice the publish form was for; `None` for the create form.
    notice: Option<String>,
    typed: Typed,
    error: Option<String>,
}

async fn render(
    session: &Session,
    state: &AppState,
    template: Option<&str>,
    posting: Option<Posting>,
) -> Result<view::NoticesPage, UiError> {
    session.may_read(MIRRORS)?;
    let stored = state
        .store
        .list_notices()
        .await
        .map_err(|e| session.fail(e))?;
    let can_edit = session.may("POST", MIRRORS);
    let records: Vec<PurposeRecord> = if can_edit {
        state
            .store
            .list_purpose_records()
            .await
            .map_err(|e| session.fail(e))?
    } else {
        Vec::new()
    };
    let posting = posting.as_ref();
    let posted_for = |notice: Option<&str>| posting.filter(|p| p.notice.as_deref() == notice);
    let chosen = template.and_then(notices::template);
    let notices = stored
        .iter()
        .map(|n| {
            let posted = posted_for(Some(n.id.as_str()));
            let typed = match (posted, n.latest()) {
                (Some(p), _) => p.typed.clone(),
                (None, Some(latest)) => typed_of(&latest.content),
                (None, None) => blank(),
            };
            view::NoticeRow {
                id: n.id.clone(),
                versions: n.versions.iter().rev().map(version_row).collect(),
                form: form_view(
                    &typed,
                    &records,
                    format!("edit-{}", n.id),
                    urls::notice_versions(&n.id),
                    posted.is_some(),
                ),
            }
        })
        .collect();
    let create = match (posted_for(None), &chosen) {
        (Some(p), _) => p.typed.clone(),
        (None, Some(t)) => Typed {
            id: format!("shop-{}", t.key),
            ..typed_of(&t.content)
        },
        (None, None) => blank(),
    };
    Ok(view::NoticesPage {
        chrome: session.chrome("Notices", urls::NOTICES),
        notices,
        can_edit,
        templates: notices::templates()
            .into_iter()
            .map(|t| view::TemplateLink {
                href: urls::notices_from_template(&t.key),
                name: t.name,
            })
            .collect(),
        new_id: create.id.clone(),
        create: form_view(
            &create,
            &records,
            "new".to_owned(),
            urls::NOTICES.to_owned(),
            posted_for(None).is_some(),
        ),
        template_name: chosen.map(|t| t.name),
        error: posting.and_then(|p| p.error.clone()),
    })
}

fn version_row(v: &pilotgate_store::NoticeVersion) -> view::NoticeVersionRow {
    view::NoticeVersionRow {
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
    }
}

/// Saves the typed notice through the API's service, or says why not (a
/// 422 or 409 shown on the form; anything else is the error page).
async fn save(
    state: &AppState,
    session: &Session,
    notice: Option<&str>,
    typed: &Typed,
) -> Result<Result<(), String>, UiError> {
    let content = content_of(typed);
    let outcome = match notice {
        Some(notice) => notices::publish(&state.store, &session.actor, notice, content)
            .await
            .map(|_| ()),
        None => notices::create(&state.store, &session.actor, &typed.id, content)
            .await
            .map(|_| ()),
    };
    match outcome {
        Ok(()) => Ok(Ok(())),
        Err(ServiceError::Unprocessable(message)) => Ok(Err(readable(&message))),
        Err(ServiceError::Store(StoreError::Conflict(message))) => Ok(Err(message)),
        Err(other) => Err(session.fail(other)),
    }
}

/// One POST of a notice form: a step that re-renders it with what was
/// typed, or the save.
async fn submit(
    session: Session,
    state: &AppState,
    notice: Option<String>,
    pairs: Vec<(String, String)>,
) -> Result<HttpResponse, UiError> {
    let Posted {
        mut typed,
        csrf,
        step,
    } = read(pairs);
    session.check_csrf(&csrf)?;
    may_edit(&session)?;
    let error = match step {
        Step::Save => match save(state, &session, notice.as_deref(), &typed).await? {
            Ok(()) => return Ok(see_other(urls::NOTICES)),
            Err(message) => Some(message),
        },
        Step::AddLanguage => add_language(&mut typed).err(),
        Step::Refresh if !typed.new_language.trim().is_empty() => add_language(&mut typed).err(),
        Step::Refresh => None,
        Step::RemoveLanguage(tag) => {
            if tag != DEFAULT_LANGUAGE {
                typed.languages.retain(|t| t.tag != tag);
            }
            None
        }
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let posting = Posting {
        notice,
        typed,
        error,
    };
    let page = render(&session, state, None, Some(posting)).await?;
    Ok(html(status, &page))
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
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, UiError> {
    submit(session, &state, None, form.into_inner()).await
}

pub async fn publish(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, UiError> {
    submit(session, &state, Some(path.into_inner()), form.into_inner()).await
}
