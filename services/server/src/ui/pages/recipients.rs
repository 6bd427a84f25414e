//! The recipient registry page (`/ui/recipients`): analysts and compliance
//! read the data contracts; compliance registers a recipient through the
//! API's service (`service::exports::register_recipient`) with the session's
//! CSRF token. A refused form comes back with the refusal on top, as typed.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{NaiveDate, NaiveTime};
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;
use pilotgate_store::StoreError;

use crate::service::ServiceError;
use crate::service::exports::{self, RecipientInput};
use crate::startup::AppState;
use crate::ui::{Session, UiError, html, see_other};

/// The API route the page mirrors (list and register).
const MIRRORS: &str = "/api/v1/recipients";

async fn render(
    session: &Session,
    state: &AppState,
    status: StatusCode,
    typed: view::RecipientFields,
    error: Option<String>,
) -> Result<HttpResponse, UiError> {
    let recipients = exports::recipients(&state.store)
        .await
        .map_err(|e| session.fail(e))?
        .into_iter()
        .map(|r| view::RecipientRow {
            expires: super::when(r.expires_at),
            name: r.name,
            owner: r.owner,
            purposes: r.purposes,
            formats: r.formats,
            expired: r.expired,
            registered_by: r.created_by,
        })
        .collect();
    let can_register = session.may("POST", MIRRORS);
    let purposes = if can_register {
        state
            .store
            .list_purpose_records()
            .await
            .map_err(|e| session.fail(e))?
            .into_iter()
            .filter(|p| p.retired_at.is_none())
            .map(|p| p.purpose.key.as_str().to_owned())
            .collect()
    } else {
        Vec::new()
    };
    let page = view::RecipientsPage {
        chrome: session.chrome("Recipients", urls::RECIPIENTS),
        recipients,
        can_register,
        purposes,
        formats: exports::FORMATS.iter().map(|f| (*f).to_owned()).collect(),
        typed,
        error,
    };
    Ok(html(status, &page))
}

pub async fn page(session: Session, state: web::Data<AppState>) -> Result<HttpResponse, UiError> {
    session.may_read(MIRRORS)?;
    render(
        &session,
        &state,
        StatusCode::OK,
        view::RecipientFields::default(),
        None,
    )
    .await
}

/// A posted register form: its fields as typed, and its CSRF token.
fn read(pairs: Vec<(String, String)>) -> (view::RecipientFields, String) {
    let mut typed = view::RecipientFields::default();
    let mut csrf = String::new();
    for (name, value) in pairs {
        match name.as_str() {
            "csrf" => csrf = value,
            "name" => typed.name = value,
            "owner" => typed.owner = value,
            "purposes" => typed.purposes.push(value),
            "formats" => typed.formats.push(value),
            "expires_on" => typed.expires_on = value,
            _ => {}
        }
    }
    (typed, csrf)
}

/// The service's input from the form; the contract ends at the end of the
/// day typed (UTC). A day that is not a date is refused here, as the API's
/// JSON parser would refuse a time that is not one.
fn input_of(typed: &view::RecipientFields) -> Result<RecipientInput, ServiceError> {
    let day = NaiveDate::parse_from_str(typed.expires_on.trim(), "%Y-%m-%d")
        .map_err(|_| ServiceError::invalid("expires_on", "must be a date, YYYY-MM-DD"))?;
    let end = NaiveTime::from_hms_opt(23, 59, 59).expect("a valid time of day");
    Ok(RecipientInput {
        name: typed.name.trim().to_owned(),
        owner: typed.owner.clone(),
        purposes: typed.purposes.clone(),
        formats: typed.formats.clone(),
        expires_at: day.and_time(end).and_utc(),
    })
}

pub async fn register(
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, UiError> {
    if !session.may("POST", MIRRORS) {
        return Err(session.fail(UiError::page(
            StatusCode::FORBIDDEN,
            "Only compliance registers recipients.",
        )));
    }
    let (typed, csrf) = read(form.into_inner());
    session.check_csrf(&csrf)?;
    let done = match input_of(&typed) {
        Ok(input) => exports::register_recipient(&state.store, &session.actor, input).await,
        Err(e) => Err(e),
    };
    let (status, message) = match done {
        Ok(_) => return Ok(see_other(urls::RECIPIENTS)),
        Err(ServiceError::Unprocessable(message)) => (StatusCode::UNPROCESSABLE_ENTITY, message),
        Err(ServiceError::Store(StoreError::Conflict(message))) => (StatusCode::CONFLICT, message),
        Err(other) => return Err(session.fail(other)),
    };
    render(&session, &state, status, typed, Some(message)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contract_ends_at_the_end_of_the_day_typed() {
        let pairs = [
            ("csrf", "t"),
            ("name", " warehouse "),
            ("owner", "Data team"),
            ("purposes", "personalize.content"),
            ("formats", "csv"),
            ("formats", "parquet"),
            ("expires_on", "2027-03-31"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .to_vec();
        let (typed, csrf) = read(pairs);
        assert_eq!(csrf, "t");
        let input = input_of(&typed).unwrap();
        assert_eq!(input.name, "warehouse");
        assert_eq!(input.formats, ["csv", "parquet"]);
        assert_eq!(input.expires_at.to_rfc3339(), "2027-03-31T23:59:59+00:00");
        let mut typed = typed;
        typed.expires_on = "end of March".to_owned();
        let refused = input_of(&typed).unwrap_err().to_string();
        assert!(refused.starts_with("expires_on:"), "{refused}");
    }
}
