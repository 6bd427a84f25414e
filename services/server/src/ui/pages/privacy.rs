//! The customer's consent form, `/privacy/{token}`: public (no session), its
//! only authority the link's opaque token. Shows, saves (the CSRF field is an HMAC of
//! the token) and hands out receipts through `service::privacy`, as the API
//! twin `/api/v1/privacy/{token}` does. The one page that may be framed
//! (CSP `frame-ancestors`, `PILOTGATE_PRIVACY_FRAME_ANCESTORS`, default `*`).

use std::collections::HashMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use pilotgate_dashboards as view;
use pilotgate_dashboards::{Template, urls};

use crate::routes::privacy::{LanguageQuery, accept_language, sends_gpc};
use crate::service::ServiceError;
use crate::service::privacy::{self, Choice, CurrentChoice, FormError, FormState, Limit, Saved};
use crate::signing::{form_token, form_token_matches};
use crate::startup::AppState;
use pilotgate_store::StoreError;

/// The page, framable by the configured ancestors, never cached.
fn framable(state: &AppState, status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header(("referrer-policy", "no-referrer"))
            .insert_header((
                "content-security-policy",
                format!(
                    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors {}",
                    state.privacy.frame_ancestors
                ),
            ))
            .body(body),
        Err(error) => {
            tracing::error!(%error, "the consent form failed to render");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("the page could not be rendered")
        }
    }
}

/// The status of a form error, and a sentence for the person.
fn status_of(error: &FormError) -> (StatusCode, String) {
    match error {
        FormError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
        FormError::Expired => (StatusCode::GONE, error.to_string()),
        FormError::Forbidden => (StatusCode::FORBIDDEN, error.to_string()),
        FormError::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
        FormError::Unprocessable(m) => (StatusCode::UNPROCESSABLE_ENTITY, m.clone()),
        FormError::Service(ServiceError::Unprocessable(m)) => {
            (StatusCode::UNPROCESSABLE_ENTITY, m.clone())
        }
        FormError::Service(ServiceError::Store(StoreError::NotFound(m))) => {
            (StatusCode::NOT_FOUND, m.clone())
        }
        FormError::Service(ServiceError::Store(StoreError::Conflict(m))) => {
            (StatusCode::CONFLICT, m.clone())
        }
        FormError::Service(ServiceError::Store(StoreError::Unavailable(_))) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is not available; try again shortly.".to_owned(),
        ),
        FormError::Service(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong; it has been logged.".to_owned(),
        ),
    }
}

/// A page with only the error (the link cannot be used).
fn error_page(state: &AppState, error: &FormError) -> HttpResponse {
    let (status, message) = status_of(error);
    let page = view::PrivacyPage {
        language: "en".to_owned(),
        title: "This privacy link cannot be used".to_owned(),
        paragraphs: Vec::new(),
        languages: Vec::new(),
        action: String::new(),
        form_token: String::new(),
        notice_version: 0,
        purposes: Vec::new(),
        saved: None,
        error: Some(message),
    };
    framable(state, status, &page)
}

fn model(state: &AppState, token: &str, form: &FormState) -> view::PrivacyPage {
    let text = &form.version.content.languages[&form.language];
    view::PrivacyPage {
        language: form.language.clone(),
        title: text.title.clone(),
        paragraphs: text
            .body
            .split('\n')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        languages: form
            .version
            .content
            .languages
            .keys()
            .filter(|tag| **tag != form.language)
            .map(|tag| view::LanguageLink {
                tag: tag.clone(),
                href: urls::privacy_in(token, tag),
            })
            .collect(),
        action: urls::privacy(token),
        form_token: form_token(token, form.claims.subject.key_version(), &state.keys),
        notice_version: form.version.version,
        purposes: form
            .purposes
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let since = match p.current {
                    CurrentChoice::Allowed { since } => Some(since.format("%Y-%m-%d").to_string()),
                    _ => None,
                };
                view::PrivacyChoice {
                    field: format!("c{i}"),
                    sentence: p.sentence.clone(),
                    offered: p.may_refuse,
                    may_allow: p.may_allow,
                    limit: match p.limit {
                        None => None,
                        Some(Limit::NoticeTooOld { .. }) => Some(view::ChoiceLimit::NoticeTooOld),
                        Some(Limit::Retired | Limit::Unknown) => {
                            Some(view::ChoiceLimit::NotOffered)
                        }
                    },
                    current: view::current_text(
                        &form.language,
                        since.as_deref(),
                        p.current == CurrentChoice::NotAllowed,
                    ),
                }
            })
            .collect(),
        saved: None,
        error: None,
    }
}

pub async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<LanguageQuery>,
) -> HttpResponse {
    match privacy::open(&state, &path, query.lang.as_deref(), accept_language(&req)).await {
        Ok(form) => framable(&state, StatusCode::OK, &model(&state, &path, &form)),
        Err(error) => error_page(&state, &error),
    }
}

/// The choices of a posted form: `all=allow` allows every purpose that may
/// be allowed, `all=refuse` refuses every purpose on the form (retired ones
/// the person had a record for included); otherwise each `cN` field that is
/// `allow` or `refuse` (a "yes" that is not offered is refused by the save).
fn choices_of(form: &FormState, fields: &HashMap<String, String>) -> Vec<Choice> {
    let all = fields.get("all").map(String::as_str).unwrap_or_default();
    form.purposes
        .iter()
        .enumerate()
        .filter(|(_, p)| p.may_refuse)
        .filter_map(|(i, p)| {
            let value = match all {
                "allow" if p.may_allow => all,
                "allow" => return None,
                "refuse" => all,
                _ => fields.get(&format!("c{i}")).map(String::as_str)?,
            };
            let allow = match value {
                "allow" => true,
                "refuse" => false,
                _ => return None,
            };
            Some(Choice {
                purpose: p.key.clone(),
                allow,
            })
        })
        .collect()
}

pub async fn save(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    fields: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let token = path.as_str();
    let lang = fields.get("lang").map(String::as_str);
    let form = match privacy::open(&state, token, lang, None).await {
        Ok(form) => form,
        Err(error) => return error_page(&state, &error),
    };
    let presented = fields.get("csrf").map(String::as_str).unwrap_or_default();
    if !form_token_matches(
        token,
        form.claims.subject.key_version(),
        &state.keys,
        presented,
    ) {
        return error_page(&state, &FormError::Forbidden);
    }
    let shown = fields
        .get("notice_version")
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    let choices = choices_of(&form, &fields);
    let outcome = privacy::save(&state, token, shown, &choices, sends_gpc(&req), lang).await;
    // The form again, with the choices as they are now.
    let form = privacy::open(&state, token, lang, None)
        .await
        .unwrap_or(form);
    let mut page = model(&state, token, &form);
    match outcome {
        Ok(saved) => {
            page.saved = Some(saved_note(token, &form, &saved));
            framable(&state, StatusCode::OK, &page)
        }
        Err(error) => {
            let (status, message) = status_of(&error);
            page.error = Some(message);
            framable(&state, status, &page)
        }
    }
}

fn saved_note(token: &str, form: &FormState, saved: &Saved) -> view::SavedNote {
    let sentence = |key: &str| {
        form.purposes
            .iter()
            .find(|p| p.key == key)
            .map_or_else(|| key.to_owned(), |p| p.sentence.clone())
    };
    view::SavedNote {
        lines: saved
            .records
            .iter()
            .filter(|r| r.basis == "consent")
            .map(|r| format!("{} — {}", sentence(&r.purpose), r.status))
            .collect(),
        gpc: saved.gpc_objections.iter().map(|k| sentence(k)).collect(),
        receipt_id: saved.receipt_id.clone(),
        receipt_href: urls::privacy_receipt(token, &saved.receipt_id),
    }
}

pub async fn receipt(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (token, receipt_id) = path.into_inner();
    match privacy::receipt(&state, &token, &receipt_id).await {
        Ok(jws) => HttpResponse::Ok()
            .content_type("application/jose; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"consent-receipt-{receipt_id}.jws\""),
            ))
            .body(jws),
        Err(error) => error_page(&state, &error),
    }
}
