//! The sign-in form, signing in with a token, and signing out.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;
use pilotgate_domain::session::{ABSOLUTE_LIMIT, SessionId};
use pilotgate_domain::token::PresentedToken;
use serde::Deserialize;

use crate::auth::{TokenRefusal, check_token};
use crate::startup::AppState;
use crate::ui::session::{
    PRE_SESSION_COOKIE, SESSION_COOKIE, pre_session, secure, session_of, set_cookie,
};
use crate::ui::{UiError, html, see_other};

/// The form of the sign-in page.
#[derive(Deserialize)]
pub struct SignInForm {
    token: String,
    csrf: String,
}

/// A form that carries only its CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// The service's root sends people to the dashboards.
pub async fn root() -> HttpResponse {
    see_other(urls::HOME)
}

/// The dashboards' home: the experiments when signed in, else the sign-in form.
pub async fn home(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, UiError> {
    Ok(match session_of(&req, &state).await? {
        Some(_) => see_other(urls::EXPERIMENTS),
        None => see_other(urls::SIGN_IN),
    })
}

pub async fn form(req: HttpRequest) -> HttpResponse {
    let (value, cookie) = pre_session(&req);
    sign_in_page(&req, &value, cookie, None, StatusCode::OK)
}

fn sign_in_page(
    req: &HttpRequest,
    pre: &str,
    cookie: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let state = req.app_data::<web::Data<AppState>>();
    let csrf = state.map(|s| s.sessions.csrf_for(pre)).unwrap_or_default();
    let page = view::SignInPage {
        chrome: view::Chrome::anonymous("Sign in", csrf),
        error,
    };
    let mut response = html(status, &page);
    if let Some(cookie) = cookie
        && let Ok(value) = header::HeaderValue::from_str(&cookie)
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Checks the token as the API does (the same throttle), opens a session
/// (the database keeps the hash of its random id) and sets its cookie.
pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<SignInForm>,
) -> HttpResponse {
    let (pre, cookie) = pre_session(&req);
    let refused = |error: &str, status| {
        sign_in_page(&req, &pre, cookie.clone(), Some(error.to_owned()), status)
    };
    if !state.sessions.csrf_matches(&pre, &form.csrf) {
        return refused(
            "The form expired; please sign in again.",
            StatusCode::FORBIDDEN,
        );
    }
    let client = state
        .network
        .client(req.peer_addr().map(|a| a.ip()), req.headers());
    let unavailable = "The database is not available; try again shortly.";
    match check_token(&state, client, &form.token).await {
        Ok(_) => {}
        Err(TokenRefusal::Throttled(wait)) => {
            return refused(
                &format!(
                    "Too many failed sign-ins with that token from this address; try again in {wait} s."
                ),
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
        Err(TokenRefusal::Unknown) => {
            return refused(
                "That token is unknown or revoked.",
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(TokenRefusal::Unavailable(_)) => {
            return refused(unavailable, StatusCode::SERVICE_UNAVAILABLE);
        }
    }
    // Checked just above: the token parses.
    let Ok(presented) = PresentedToken::parse(form.token.trim()) else {
        return refused(
            "That token is unknown or revoked.",
            StatusCode::UNAUTHORIZED,
        );
    };
    let id = SessionId::from_random(rand::random());
    if state
        .store
        .open_session(&id.hash(), presented.token_id(), state.store.now())
        .await
        .is_err()
    {
        return refused(unavailable, StatusCode::SERVICE_UNAVAILABLE);
    }
    let max_age = ABSOLUTE_LIMIT.num_seconds();
    let mut response = see_other(urls::EXPERIMENTS);
    if let Ok(value) = header::HeaderValue::from_str(&set_cookie(
        SESSION_COOKIE,
        id.reveal(),
        secure(&req),
        Some(max_age),
    )) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Ends the session in the database (its cookie stops working everywhere)
/// and clears the cookies.
pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, UiError> {
    if let Some(session) = session_of(&req, &state).await? {
        session.check_csrf(&form.csrf)?;
        state
            .store
            .end_session(&session.id_hash, state.store.now())
            .await
            .map_err(|e| session.fail(e))?;
    }
    let mut response = see_other(urls::SIGN_IN);
    for name in [SESSION_COOKIE, PRE_SESSION_COOKIE] {
        if let Ok(value) =
            header::HeaderValue::from_str(&set_cookie(name, "", secure(&req), Some(0)))
        {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}
