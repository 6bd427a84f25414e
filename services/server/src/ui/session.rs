//! Dashboard sessions: an opaque random session id in an HttpOnly,
//! SameSite=Strict cookie (the token never leaves the sign-in form; the
//! database keeps only the id's hash, see `pilotgate_domain::session`), the
//! CSRF token every state-changing form carries (a MAC of the session id
//! under a key that is random per process: a restart asks open forms to
//! reload), and `Session`, the extractor every page takes: a handler that
//! asks for one is reached only with a live session.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, web};
use hmac::{Hmac, Mac};
use pilotgate_dashboards::urls;
use pilotgate_dashboards::{Chrome, NavLink, SignedInUser};
use pilotgate_domain::session::{SessionId, SessionState};
use pilotgate_domain::{Actor, Role};
use pilotgate_store::StoreError;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::UiError;
use crate::auth::{Access, permission};
use crate::startup::AppState;

/// The cookie that holds the session id.
pub const SESSION_COOKIE: &str = "pilotgate_session";
/// The cookie that holds the CSRF token of a visitor not yet signed in.
pub const PRE_SESSION_COOKIE: &str = "pilotgate_csrf";

/// The process's key for CSRF tokens.
pub struct SessionKeys {
    key: [u8; 32],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys([redacted])")
    }
}

impl Default for SessionKeys {
    fn default() -> Self {
        SessionKeys {
            key: rand::random(),
        }
    }
}

impl SessionKeys {
    fn mac(&self, purpose: &str, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The CSRF token bound to a session (or pre-session) value.
    pub fn csrf_for(&self, session: &str) -> String {
        self.mac("csrf", session)[..32].to_owned()
    }

    /// Whether `presented` is the CSRF token of `session`.
    pub fn csrf_matches(&self, session: &str, presented: &str) -> bool {
        bool::from(
            self.csrf_for(session)
                .as_bytes()
                .ct_eq(presented.as_bytes()),
        )
    }
}

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
        bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, presented: &str) -> Result<(), UiError> {
        if self.csrf_matches(presented) {
            Ok(())
        } else {
            Err(self.fail(UiError::page(
                StatusCode::FORBIDDEN,
                "The form expired; reload the page and try again.",
            )))
        }
    }

    /// Whether this session's role may call `method path` of the API.
    pub fn may(&self, method: &str, path: &str) -> bool {
        permission(method, path).is_some_and(|p| match p.access {
            Access::Public => true,
            Access::Roles(roles) => self.role == Role::Admin || roles.contains(&self.role),
            Access::Only(roles) => roles.contains(&self.role),
        })
    }

    /// Refuses a page whose data this role may not read through `api` (the
    /// API route the page mirrors).
    pub fn may_read(&self, api: &str) -> Result<(), UiError> {
        if self.may("GET", api) {
            Ok(())
        } else {
            Err(self.fail(UiError::page(
                StatusCode::FORBIDDEN,
                format!("The role '{}' may not see this page.", self.role.as_str()),
            )))
        }
    }

    /// `error` shown in this session's frame.
    pub fn fail(&self, error: impl Into<UiError>) -> UiError {
        error.into().in_frame(self.chrome("Error", ""))
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

/// The pages of the navigation bar and the API route each one shows.
const NAV: &[(&str, &str, &str)] = &[
    (urls::EXPERIMENTS, "Experiments", "/api/v1/experiments"),
    (urls::CONSENTS, "Consents", "/api/v1/legal-basis-map"),
    (urls::PURPOSES, "Purposes", "/api/v1/purposes"),
    (urls::AUDIT, "Audit log", "/api/v1/audit"),
    (
        urls::SUBJECTS,
        "Subjects",
        "/api/v1/subjects/{subject}/access",
    ),
    (urls::INVENTORY, "Data inventory", "/api/v1/data-categories"),
    (urls::NOTICES, "Notices", "/api/v1/notices"),
    (urls::RECIPIENTS, "Recipients", "/api/v1/recipients"),
];

impl FromRequest for Session {
    type Error = UiError;
    type Future = Pin<Box<dyn Future<Output = Result<Session, UiError>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| UiError::page(StatusCode::INTERNAL_SERVER_ERROR, "No state."))?;
            session_of(&req, &state).await?.ok_or(UiError::SignIn)
        })
    }
}

/// The session of the request: its cookie names a stored session that is
/// neither signed out, idle too long nor too old, and whose token is still
/// valid. `None` without one; an error when the database does not answer.
pub async fn session_of(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<Session>, StoreError> {
    let Some(id) = cookie(req, SESSION_COOKIE).and_then(|v| SessionId::parse(&v)) else {
        return Ok(None);
    };
    let id_hash = id.hash();
    let Some(stored) = state.store.session(&id_hash).await? else {
        return Ok(None);
    };
    let now = state.store.now();
    if stored.times.state(now) != SessionState::Active {
        return Ok(None);
    }
    let Some(credential) = state
        .store
        .credential(&stored.token_id)
        .await?
        .filter(|c| !c.revoked)
    else {
        return Ok(None);
    };
    if stored.times.needs_touch(now) {
        // A failed touch only shortens the session's idle time.
        let _ = state.store.touch_session(&id_hash, now).await;
    }
    Ok(Some(Session {
        actor: Actor::token(credential.name, credential.role),
        role: credential.role,
        csrf: state.sessions.csrf_for(id.reveal()),
        id_hash,
    }))
}

/// Whether cookies should be `Secure`: people reach the server over HTTPS,
/// as the configuration (or a trusted proxy) says; never a client's own header.
pub fn secure(req: &HttpRequest) -> bool {
    req.app_data::<web::Data<AppState>>().is_some_and(|state| {
        state
            .network
            .https(req.peer_addr().map(|a| a.ip()), req.headers())
    })
}

/// The pre-session CSRF value of a visitor, and the cookie to set if new.
pub fn pre_session(req: &HttpRequest) -> (String, Option<String>) {
    match cookie(req, PRE_SESSION_COOKIE) {
        Some(value) if value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (value, None)
        }
        _ => {
            let value = hex::encode(rand::random::<[u8; 16]>());
            let cookie = set_cookie(PRE_SESSION_COOKIE, &value, secure(req), None);
            (value, Some(cookie))
        }
    }
}

/// The value of cookie `name` in the request, if any.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, path `/ui`, and Secure
/// when people reach the server over HTTPS (see `crate::network`).
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<i64>) -> String {
    let mut cookie = format!(
        "{name}={value}; Path={}; HttpOnly; SameSite=Strict",
        urls::HOME
    );
    if secure {
        cookie.push_str("; Secure");
    }
    if let Some(seconds) = max_age {
        cookie.push_str(&format!("; Max-Age={seconds}"));
    }
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_are_bound_to_their_session() {
        let keys = SessionKeys::default();
        let token = keys.csrf_for("one");
        assert!(keys.csrf_matches("one", &token));
        assert!(!keys.csrf_matches("two", &token));
        assert!(!keys.csrf_matches("one", ""));
    }
}
