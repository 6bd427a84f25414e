//! The data inventory page (`/ui/inventory`): every role that may read
//! `GET /api/v1/data-categories` sees the categories; compliance adds and
//! edits them through the API's service (`service::inventory::create` and
//! `update`), with the session's CSRF token. A refused form comes back with
//! the refusal on top (and the create form as typed).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;
use pilotgate_domain::inventory::DataCategory;
use pilotgate_store::{Store, StoreError};

use crate::service::inventory::{CategoryInput, MeasuresView};
use crate::service::{self, ServiceError};
use crate::startup::AppState;
use crate::ui::{Session, UiError, html, see_other};

/// The API route the page mirrors.
const LIST: &str = "/api/v1/data-categories";
/// The API route the create form mirrors.
const CREATE: &str = "/api/v1/data-categories";
/// The API route the edit forms mirror.
const UPDATE: &str = "/api/v1/data-categories/{key}";

/// The categories pilots may use, as the design form offers them.
pub(super) async fn category_options(
    store: &Store,
) -> Result<Vec<view::CategoryOption>, StoreError> {
    Ok(store
        .list_data_categories()
        .await?
        .into_iter()
        .filter(|c| c.permitted_for_pilots())
        .map(|c| view::CategoryOption {
            key: c.key.to_string(),
            name: c.name,
            sensitivity: c.sensitivity.as_str().to_owned(),
        })
        .collect())
}

/// The inventory's segment vocabulary, as the design form and the
/// inventory page show it.
pub(super) fn segment_options() -> Vec<view::SegmentOption> {
    crate::service::inventory::segment_dimensions()
        .into_iter()
        .map(|d| view::SegmentOption {
            key: d.key,
            description: d.description,
            values: d.values,
            category: d.category,
        })
        .collect()
}

fn row_of(c: &DataCategory) -> view::CategoryRow {
    view::CategoryRow {
        key: c.key.to_string(),
        name: c.name.clone(),
        description: c.description.clone(),
        sensitivity: c.sensitivity.as_str().to_owned(),
        prohibited: c.prohibited,
        pseudonymised: c.measures.pseudonymised,
        encrypted_at_rest: c.measures.encrypted_at_rest,
        retention_ceiling_days: c
            .measures
            .retention_ceiling_days
            .map(|d| d.to_string())
            .unwrap_or_default(),
        dpo_sign_off: c.measures.dpo_sign_off,
    }
}

/// The page, with the create form holding `typed` and `error` on top.
async fn render(
    session: &Session,
    state: &AppState,
    status: StatusCode,
    typed: Option<view::CategoryRow>,
    error: Option<String>,
) -> Result<HttpResponse, UiError> {
    let categories = service::inventory::list(&state.store)
        .await
        .map_err(|e| session.fail(e))?;
    let page = view::InventoryPage {
        chrome: session.chrome("Data inventory", urls::INVENTORY),
        categories: categories.iter().map(row_of).collect(),
        segments: segment_options(),
        can_edit: session.may("POST", CREATE) && session.may("PUT", UPDATE),
        new_category: typed.unwrap_or_default(),
        error,
    };
    Ok(html(status, &page))
}

pub async fn page(session: Session, state: web::Data<AppState>) -> Result<HttpResponse, UiError> {
    session.may_read(LIST)?;
    render(&session, &state, StatusCode::OK, None, None).await
}

/// A posted category form: its fields as typed, and its CSRF token.
fn read(pairs: Vec<(String, String)>) -> (view::CategoryRow, String) {
    let mut row = view::CategoryRow {
        pseudonymised: false,
        ..view::CategoryRow::default()
    };
    let mut csrf = String::new();
    for (name, value) in pairs {
        match name.as_str() {
            "csrf" => csrf = value,
            "key" => row.key = value,
            "name" => row.name = value,
            "description" => row.description = value,
            "sensitivity" => row.sensitivity = value,
            "retention_ceiling_days" => row.retention_ceiling_days = value,
            "prohibited" => row.prohibited = true,
            "pseudonymised" => row.pseudonymised = true,
            "encrypted_at_rest" => row.encrypted_at_rest = true,
            "dpo_sign_off" => row.dpo_sign_off = true,
            _ => {}
        }
    }
    (row, csrf)
}

/// The service's input from a form's fields; a ceiling that is not a whole
/// number is refused here, as the API's JSON parser would.
fn input_of(row: &view::CategoryRow, key: Option<&str>) -> Result<CategoryInput, ServiceError> {
    let ceiling = row.retention_ceiling_days.trim();
    let retention_ceiling_days = if ceiling.is_empty() {
        None
    } else {
        Some(ceiling.parse::<u32>().map_err(|_| {
            ServiceError::invalid(
                "retention_ceiling_days",
                "must be a whole number of days, or empty for no ceiling",
            )
        })?)
    };
    Ok(CategoryInput {
        key: key.map(str::to_owned),
        name: row.name.clone(),
        description: row.description.clone(),
        sensitivity: row.sensitivity.clone(),
        prohibited: row.prohibited,
        measures: MeasuresView {
            pseudonymised: row.pseudonymised,
            encrypted_at_rest: row.encrypted_at_rest,
            retention_ceiling_days,
            dpo_sign_off: row.dpo_sign_off,
        },
    })
}

/// Refuses a role that may not call `method api`.
fn may(session: &Session, method: &str, api: &str) -> Result<(), UiError> {
    if session.may(method, api) {
        Ok(())
    } else {
        Err(session.fail(UiError::page(
            StatusCode::FORBIDDEN,
            "Only compliance edits the data inventory.",
        )))
    }
}

/// The page again after a refusal that the person can mend (422, 409);
/// any other failure is the error page.
async fn refused(
    session: &Session,
    state: &AppState,
    typed: Option<view::CategoryRow>,
    error: ServiceError,
) -> Result<HttpResponse, UiError> {
    let (status, message) = match error {
        ServiceError::Unprocessable(message) => (StatusCode::UNPROCESSABLE_ENTITY, message),
        ServiceError::Store(StoreError::Conflict(message)) => (StatusCode::CONFLICT, message),
        other => return Err(session.fail(other)),
    };
    render(session, state, status, typed, Some(message)).await
}

pub async fn create(
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, UiError> {
    may(&session, "POST", CREATE)?;
    let (row, csrf) = read(form.into_inner());
    session.check_csrf(&csrf)?;
    let key = row.key.trim().to_owned();
    let done = match input_of(&row, Some(&key)) {
        Ok(input) => service::inventory::create(&state.store, &session.actor, input).await,
        Err(e) => Err(e),
    };
    match done {
        Ok(_) => Ok(see_other(urls::INVENTORY)),
        Err(e) => refused(&session, &state, Some(row), e).await,
    }
}

pub async fn update(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, UiError> {
    may(&session, "PUT", UPDATE)?;
    let (row, csrf) = read(form.into_inner());
    session.check_csrf(&csrf)?;
    let done = match input_of(&row, None) {
        Ok(input) => service::inventory::update(&state.store, &session.actor, &path, input).await,
        Err(e) => Err(e),
    };
    match done {
        Ok(_) => Ok(see_other(urls::INVENTORY)),
        Err(e) => refused(&session, &state, None, e).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unticked_boxes_are_false_and_an_empty_ceiling_is_none() {
        let pairs = [
            ("csrf", "t"),
            ("key", "loyalty"),
            ("name", "Loyalty"),
            ("description", "Points"),
            ("sensitivity", "low"),
            ("dpo_sign_off", "on"),
            ("retention_ceiling_days", " "),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .to_vec();
        let (row, csrf) = read(pairs);
        assert_eq!(csrf, "t");
        let input = input_of(&row, Some("loyalty")).unwrap();
        assert!(!input.prohibited && !input.measures.pseudonymised);
        assert!(input.measures.dpo_sign_off);
        assert_eq!(input.measures.retention_ceiling_days, None);
        let mut row = row;
        row.retention_ceiling_days = "ninety".to_owned();
        let refused = input_of(&row, None).unwrap_err().to_string();
        assert!(refused.starts_with("retention_ceiling_days:"), "{refused}");
    }
}
