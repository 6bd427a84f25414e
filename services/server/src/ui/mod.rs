//! The dashboards: server-rendered pages under `/ui`, for people with an API
//! token. A page shows what its role may read through the API: each page names
//! the API route whose data it shows, and the permission table decides.

mod compliance;
mod pages;
pub mod session;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use pilotgate_dashboards::{Chrome, ErrorPage, NavLink, SignedInUser, Template};
use pilotgate_domain::session::{SessionId, SessionState};
use pilotgate_domain::{Actor, Role};

use crate::auth::{Access, permission};
use crate::startup::AppState;
use session::{PRE_SESSION_COOKIE, SESSION_COOKIE};

/// Every page route; each is `Public` in the permission table (no bearer
/// token) and checks its session here.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/ui", web::get().to(pages::home))
        .route("/ui/sign-in", web::get().to(pages::sign_in_form))
        .route("/ui/sign-in", web::post().to(pages::sign_in))
        .route("/ui/sign-out", web::post().to(pages::sign_out))
        .route("/ui/experiments", web::get().to(pages::experiments))
        .route("/ui/experiments/{key}", web::get().to(pages::results))
        .route(
            "/ui/experiments/{key}/compliance",
            web::get().to(compliance::page),
        )
        .route(
            "/ui/experiments/{key}/compliance.csv",
            web::get().to(compliance::csv),
        )
        .route(
            "/ui/experiments/{key}/approve",
            web::post().to(compliance::approve),
        )
        .route(
            "/ui/experiments/{key}/deny",
            web::post().to(compliance::deny),
        )
        .route("/ui/consents", web::get().to(pages::consents))
        .route("/ui/audit", web::get().to(pages::audit));
}

/// The pages of the navigation bar and the API route each one shows.
const NAV: &[(&str, &str, &str)] = &[
    ("/ui/experiments", "Experiments", "/api/v1/experiments"),
    ("/ui/consents", "Consents", "/api/v1/legal-basis-map"),
    ("/ui/audit", "Audit log", "/api/v1/audit"),
];

/// A signed-in person: the token's name and role, the session's CSRF token,
/// and the hash of its id (to end it).
pub struct Session {
    pub actor: Actor,
    pub role: Role,
    pub csrf: String,
    pub id_hash: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("actor", &self.actor)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }

    /// Whether this session's role may call `method path` of the API.
    pub fn may(&self, method: &str, path: &str) -> bool {
        permission(method, path).is_some_and(|p| match p.access {
            Access::Public => true,
            Access::Roles(roles) => self.role == Role::Admin || roles.contains(&self.role),
            Access::Only(roles) => roles.contains(&self.role),
        })
    }

    /// The frame of a page titled `title`, `current` being its link.
    pub fn chrome(&self, title: &str, current: &str) -> Chrome {
        Chrome {
            title: title.to_owned(),
            user: Some(SignedInUser {
                name: self.actor.name.clone(),
                role: self.role.as_str().to_owned(),
            }),
            nav: NAV
                .iter()
                .filter(|(_, _, api)| self.may("GET", api))
                .map(|(href, label, _)| NavLink {
                    href: (*href).to_owned(),
                    label: (*label).to_owned(),
                    current: *href == current,
                })
                .collect(),
            csrf_token: self.csrf.clone(),
        }
    }
}

/// The session of the request: its cookie names a stored session that is
/// neither signed out, idle too long nor too old, and whose token is still valid.
pub async fn session_of(req: &HttpRequest, state: &AppState) -> Option<Session> {
    let id = SessionId::parse(&session::cookie(req, SESSION_COOKIE)?)?;
    let id_hash = id.hash();
    let stored = state.store.session(&id_hash).await.ok().flatten()?;
    let now = state.store.now();
    if stored.times.state(now) != SessionState::Active {
        return None;
    }
    let credential = state
        .store
        .credential(&stored.token_id)
        .await
        .ok()
        .flatten()
        .filter(|c| !c.revoked)?;
    if stored.times.needs_touch(now) {
        // A failed touch only shortens the session's idle time.
        let _ = state.store.touch_session(&id_hash, now).await;
    }
    Some(Session {
        actor: Actor::token(credential.name, credential.role),
        role: credential.role,
        csrf: state.sessions.csrf_for(id.reveal()),
        id_hash,
    })
}

/// An HTML response with `status`.
pub fn html(status: actix_web::http::StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header(("x-frame-options", "DENY"))
            .insert_header((
                "content-security-policy",
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
            ))
            .body(body),
        Err(error) => {
            tracing::error!(%error, "a page failed to render");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("the page could not be rendered")
        }
    }
}

/// A redirect to the sign-in page (for requests without a valid session).
pub fn to_sign_in() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/ui/sign-in"))
        .finish()
}

/// The error page with `status` and `message`.
pub fn error_page(session: &Session, status: u16, message: &str) -> HttpResponse {
    let page = ErrorPage {
        chrome: session.chrome("Error", ""),
        status,
        message: message.to_owned(),
    };
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    html(status, &page)
}

/// Whether cookies should be `Secure`: people reach the server over HTTPS,
/// as the configuration (or a trusted proxy) says; never a client's own header.
fn secure(req: &HttpRequest) -> bool {
    req.app_data::<web::Data<AppState>>().is_some_and(|state| {
        state
            .network
            .https(req.peer_addr().map(|a| a.ip()), req.headers())
    })
}

/// The pre-session CSRF value of a visitor, and the cookie to set if new.
fn pre_session(req: &HttpRequest) -> (String, Option<String>) {
    match session::cookie(req, PRE_SESSION_COOKIE) {
        Some(value) if value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (value, None)
        }
        _ => {
            let value = hex::encode(rand::random::<[u8; 16]>());
            let cookie = session::set_cookie(PRE_SESSION_COOKIE, &value, secure(req), None);
            (value, Some(cookie))
        }
    }
}
