//! Who may call what: the one permission table of the API, and the middleware
//! that enforces it on every request before any handler runs.
//!
//! The table is keyed by method and route pattern. A request to a known route
//! with a method the table does not list is refused (405) before routing, so a
//! handler that someone forgets to list can never be reached without a check.

use std::future::{Ready, ready};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use pilotgate_domain::token::PresentedToken;
use pilotgate_domain::{Actor, Role};

use pilotgate_dashboards::urls::patterns as pages;

use crate::error::ApiError;
use crate::startup::AppState;
use crate::throttle::Presented;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token (health, metrics, the API document).
    Public,
    /// A token with one of these roles; `admin` may always call.
    Roles(&'static [Role]),
    /// A token with one of these roles and no other, not even `admin`
    /// (decisions that belong to one function, like a DPO's approval).
    Only(&'static [Role]),
}

/// One row of the permission table.
#[derive(Debug, Clone, Copy)]
pub struct RoutePermission {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

const fn route(method: &'static str, path: &'static str, access: Access) -> RoutePermission {
    RoutePermission {
        method,
        path,
        access,
    }
}

use Access::{Only, Public, Roles};
use Role::{Analyst, Compliance, Ingest, Marketer};

/// Every role: routes any token may call.
const ANY_ROLE: &[Role] = &[Marketer, Analyst, Compliance, Ingest];

/// Every route of the service and who may call it. README's table is this one.
pub const PERMISSIONS: &[RoutePermission] = &[
    route("GET", "/healthz", Public),
    route("GET", "/readyz", Public),
    route("GET", "/metrics", Public),
    route("GET", "/api/v1/openapi.json", Public),
    route("POST", "/api/v1/purposes", Roles(&[Compliance])),
    route("GET", "/api/v1/purposes", Roles(ANY_ROLE)),
    route(
        "GET",
        "/api/v1/purposes/{key}/eligible-share",
        Roles(&[Marketer, Analyst, Compliance]),
    ),
    route("GET", "/api/v1/purposes/{key}", Roles(ANY_ROLE)),
    route("PUT", "/api/v1/purposes/{key}", Roles(&[Compliance])),
    route(
        "POST",
        "/api/v1/purposes/{key}/retire",
        Roles(&[Compliance]),
    ),
    route(
        "GET",
        "/api/v1/purposes/{key}/assessments",
        Roles(&[Compliance]),
    ),
    route(
        "POST",
        "/api/v1/purposes/{key}/assessments",
        Roles(&[Compliance]),
    ),
    route("POST", "/api/v1/consents", Roles(&[Ingest, Compliance])),
    route("POST", "/api/v1/subjects/resolve", Roles(&[Compliance])),
    route(
        "GET",
        "/api/v1/subjects/{subject}/consents",
        Roles(&[Compliance]),
    ),
    route(
        "POST",
        "/api/v1/subjects/{subject}/erasure",
        Roles(&[Compliance]),
    ),
    route(
        "GET",
        "/api/v1/legal-basis-map",
        Roles(&[Compliance, Analyst]),
    ),
    route("POST", "/api/v1/experiments", Roles(&[Marketer])),
    route("GET", "/api/v1/experiments", Roles(ANY_ROLE)),
    route("GET", "/api/v1/experiments/{key}", Roles(ANY_ROLE)),
    route("PUT", "/api/v1/experiments/{key}", Roles(&[Marketer])),
    route(
        "POST",
        "/api/v1/experiments/{key}/submit",
        Roles(&[Marketer]),
    ),
    route(
        "POST",
        "/api/v1/experiments/{key}/approve",
        Only(&[Compliance]),
    ),
    route(
        "POST",
        "/api/v1/experiments/{key}/deny",
        Only(&[Compliance]),
    ),
    route(
        "POST",
        "/api/v1/experiments/{key}/start",
        Roles(&[Marketer]),
    ),
    route("POST", "/api/v1/experiments/{key}/stop", Roles(&[Marketer])),
    route(
        "GET",
        "/api/v1/experiments/{key}/results",
        Roles(&[Marketer, Analyst, Compliance]),
    ),
    route(
        "GET",
        "/api/v1/experiments/{key}/results/download",
        Roles(&[Marketer, Analyst, Compliance]),
    ),
    route(
        "GET",
        "/api/v1/experiments/{key}/eligibility",
        Roles(&[Compliance]),
    ),
    route("POST", "/api/v1/assign", Roles(&[Ingest])),
    route("POST", "/api/v1/events", Roles(&[Ingest])),
    route("GET", "/api/v1/audit", Roles(&[Compliance])),
    route("GET", "/api/v1/audit/verify", Roles(&[Compliance])),
    route(
        "GET",
        "/api/v1/subjects/{subject}/access",
        Roles(&[Compliance]),
    ),
    route("POST", "/api/v1/subjects/lookup", Roles(&[Compliance])),
    route("GET", "/api/v1/data-categories", Roles(ANY_ROLE)),
    route("POST", "/api/v1/data-categories", Roles(&[Compliance])),
    route("PUT", "/api/v1/data-categories/{key}", Roles(&[Compliance])),
    route("GET", "/api/v1/notices", Roles(ANY_ROLE)),
    route("POST", "/api/v1/notices", Roles(&[Compliance])),
    route("GET", "/api/v1/notices/templates", Roles(ANY_ROLE)),
    route("GET", "/api/v1/notices/{id}", Roles(ANY_ROLE)),
    route(
        "POST",
        "/api/v1/notices/{id}/versions",
        Roles(&[Compliance]),
    ),
    route("POST", "/api/v1/privacy-links", Roles(&[Ingest])),
    // Authorized by the link's signed token alone (see `service::privacy`).
    route("GET", "/api/v1/privacy/{token}", Public),
    route("POST", "/api/v1/privacy/{token}/choices", Public),
    route("POST", "/api/v1/eligibility/check", Roles(&[Ingest])),
    route(
        "GET",
        "/api/v1/legal-basis-map/reconsent",
        Roles(&[Compliance, Analyst]),
    ),
    route("GET", "/api/v1/recipients", Roles(&[Compliance, Analyst])),
    route("POST", "/api/v1/recipients", Roles(&[Compliance])),
    route(
        "POST",
        "/api/v1/experiments/{key}/exports",
        Roles(&[Analyst]),
    ),
    route(
        "GET",
        "/api/v1/experiments/{key}/exports",
        Roles(&[Analyst, Compliance]),
    ),
    route("POST", "/api/v1/exports/{id}/approve", Only(&[Compliance])),
    route("POST", "/api/v1/exports/{id}/deny", Only(&[Compliance])),
    route("GET", "/api/v1/exports/{id}/download", Roles(&[Analyst])),
];

/// The route pattern a request's path belongs to, found once per request.
///
/// Every route is in [`PERMISSIONS`], so the table is matched first, segment by
/// segment (a `{name}` segment takes any non-empty segment; an exact path wins
/// over a pattern). Only a path the table does not match, such as one with
/// percent-encoded letters, goes to actix's router (`match_pattern`, a regex
/// walk over every resource that would otherwise cost a quarter of a small
/// request's time, twice).
pub fn route_pattern(req: &ServiceRequest) -> Option<String> {
    #[derive(Clone)]
    struct Matched(Option<String>);
    if let Some(Matched(found)) = req.extensions().get::<Matched>() {
        return found.clone();
    }
    let found = pattern_of(req.path())
        .map(str::to_owned)
        .or_else(|| req.match_pattern());
    req.extensions_mut().insert(Matched(found.clone()));
    found
}

/// The pattern of [`PERMISSIONS`] that `path` matches, if any.
pub fn pattern_of(path: &str) -> Option<&'static str> {
    if let Some(exact) = all_routes().find(|p| p.path == path) {
        return Some(exact.path);
    }
    all_routes()
        .find(|p| p.path.contains('{') && matches_pattern(p.path, path))
        .map(|p| p.path)
}

fn matches_pattern(pattern: &str, path: &str) -> bool {
    let (mut wanted, mut given) = (pattern.split('/'), path.split('/'));
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) => {
                let fits = if w.starts_with('{') && w.ends_with('}') {
                    !g.is_empty()
                } else {
                    w == g
                };
                if !fits {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// The dashboard pages. They take no bearer token: each checks its session
/// cookie and lets a role see only what [`PERMISSIONS`] lets it read through
/// the API (see `ui/`).
pub const PAGES: &[RoutePermission] = &[
    route("GET", pages::ROOT, Public),
    route("GET", pages::HOME, Public),
    route("GET", pages::SIGN_IN, Public),
    route("POST", pages::SIGN_IN, Public),
    route("POST", pages::SIGN_OUT, Public),
    route("GET", pages::EXPERIMENTS, Public),
    route("GET", pages::NEW_EXPERIMENT, Public),
    route("POST", pages::NEW_EXPERIMENT, Public),
    route("GET", pages::RESULTS, Public),
    route("GET", pages::RESULTS_CSV, Public),
    route("GET", pages::RESULTS_JSON, Public),
    route("GET", pages::MEMO, Public),
    route("GET", pages::EDIT, Public),
    route("POST", pages::EDIT, Public),
    route("GET", pages::SUBMIT, Public),
    route("POST", pages::SUBMIT, Public),
    route("GET", pages::START, Public),
    route("POST", pages::START, Public),
    route("GET", pages::STOP, Public),
    route("POST", pages::STOP, Public),
    route("GET", pages::COMPLIANCE, Public),
    route("GET", pages::COMPLIANCE_CSV, Public),
    route("POST", pages::APPROVE, Public),
    route("POST", pages::DENY, Public),
    route("GET", pages::CONSENTS, Public),
    route("GET", pages::AUDIT, Public),
    route("GET", pages::PURPOSES, Public),
    route("POST", pages::PURPOSES, Public),
    route("GET", pages::PURPOSE, Public),
    route("POST", pages::PURPOSE, Public),
    route("POST", pages::PURPOSE_ASSESSMENTS, Public),
    route("POST", pages::PURPOSE_RETIRE, Public),
    route("GET", pages::SUBJECTS, Public),
    route("POST", pages::SUBJECTS, Public),
    route("POST", pages::SUBJECT_DOWNLOAD, Public),
    route("POST", pages::SUBJECT_ERASE, Public),
    route("POST", pages::SUBJECT_ERASURE, Public),
    route("GET", pages::INVENTORY, Public),
    route("POST", pages::INVENTORY, Public),
    route("POST", pages::INVENTORY_ITEM, Public),
    route("GET", pages::RECIPIENTS, Public),
    route("POST", pages::RECIPIENTS, Public),
    route("GET", pages::NOTICES, Public),
    route("POST", pages::NOTICES, Public),
    route("POST", pages::NOTICE_VERSIONS, Public),
    // The customer's consent form: authorized by the link's token, no session.
    route("GET", pages::PRIVACY, Public),
    route("POST", pages::PRIVACY, Public),
    route("GET", pages::PRIVACY_RECEIPT, Public),
    route("GET", pages::CONSENTS_RECONSENT_CSV, Public),
    route("POST", pages::PILOT_EXPORTS, Public),
    route("GET", pages::EXPORT_DOWNLOAD, Public),
    route("POST", pages::EXPORT_APPROVE, Public),
    route("POST", pages::EXPORT_DENY, Public),
];

/// Every route of both tables.
fn all_routes() -> impl Iterator<Item = &'static RoutePermission> {
    PERMISSIONS.iter().chain(PAGES)
}

/// The permission of `method` on the route `pattern`, if a table lists it.
pub fn permission(method: &str, pattern: &str) -> Option<&'static RoutePermission> {
    all_routes().find(|p| p.method == method && p.path == pattern)
}

/// The authenticated caller of a request, put in the request by the middleware.
#[derive(Debug, Clone)]
pub struct Caller(pub Actor);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        // Only reachable on routes the middleware authenticated; anything else is a wiring bug.
        ready(
            req.extensions()
                .get::<Caller>()
                .cloned()
                .ok_or(ApiError::Unauthorized(
                    "this route needs a bearer token".to_owned(),
                )),
        )
    }
}

/// The middleware: finds the route's permission, checks the bearer token and the role.
pub async fn authorize(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(pattern) = route_pattern(&req) else {
        // No such route: the router answers 404.
        return next.call(req).await;
    };
    let Some(permission) = permission(req.method().as_str(), &pattern) else {
        return Err(ApiError::MethodNotAllowed.into());
    };
    if let Access::Roles(roles) | Access::Only(roles) = permission.access {
        let admin_allowed = matches!(permission.access, Access::Roles(_));
        let state = req
            .app_data::<web::Data<AppState>>()
            .cloned()
            .ok_or(ApiError::Internal)?;
        let value = bearer_value(&req)?;
        let client = state
            .network
            .client(req.peer_addr().map(|a| a.ip()), req.headers());
        let actor = check_token(&state, client, value)
            .await
            .map_err(|refusal| match refusal {
                TokenRefusal::Unknown => {
                    ApiError::Unauthorized("the token is unknown or revoked".to_owned())
                }
                TokenRefusal::Throttled(wait) => ApiError::TooManyRequests(wait),
                TokenRefusal::Unavailable(error) => error,
            })?;
        let allowed = (admin_allowed && actor.role == Some(Role::Admin))
            || roles.iter().any(|role| actor.role == Some(*role));
        if !allowed {
            return Err(ApiError::Forbidden(format!(
                "the role '{}' may not call {} {}; allowed: {}",
                actor.role.map_or("none", Role::as_str),
                permission.method,
                permission.path,
                allowed_roles(roles, admin_allowed)
            ))
            .into());
        }
        req.extensions_mut().insert(Caller(actor));
    }
    next.call(req).await
}

fn allowed_roles(roles: &[Role], admin_allowed: bool) -> String {
    let mut names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    if admin_allowed {
        names.push("admin");
    }
    names.join(", ")
}

/// The value after `Bearer ` in the request's Authorization header; 401 without one.
fn bearer_value(req: &ServiceRequest) -> Result<&str, ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "this route needs a bearer token in the Authorization header".to_owned(),
            )
        })?;
    header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must read 'Bearer <token>'".to_owned())
        })
}

/// Why a presented token was not accepted.
#[derive(Debug)]
pub enum TokenRefusal {
    /// Unknown, revoked or malformed: 401.
    Unknown,
    /// A failing token from a client that failed too often with it: 429 for this many seconds.
    Throttled(u64),
    /// The database did not answer.
    Unavailable(ApiError),
}

/// The actor of the token `value` presented by `client`. A valid token is
/// always accepted; a failing one counts against `(client, token id)` (or the
/// client alone for a malformed value) and is answered 429 once that key is
/// over the limit (see [`crate::throttle`]). Used by the API and the sign-in form.
pub async fn check_token(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    value: &str,
) -> Result<Actor, TokenRefusal> {
    let (presented, credential) = match PresentedToken::parse(value.trim()) {
        Ok(presented) => {
            let credential = state
                .store
                .credential(presented.token_id())
                .await
                .map_err(|e| TokenRefusal::Unavailable(e.into()))?;
            (
                Presented::token(presented.token_id()),
                credential.filter(|c| !c.revoked && presented.matches(&c.secret_hash)),
            )
        }
        Err(_) => (Presented::Malformed, None),
    };
    if let Some(credential) = credential {
        return Ok(Actor::token(credential.name, credential.role));
    }
    let throttled = client.and_then(|ip| {
        state
            .auth_failures
            .fail(ip, presented, std::time::Instant::now())
    });
    Err(throttled.map_or(TokenRefusal::Unknown, TokenRefusal::Throttled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_of_a_route_finds_its_own_pattern() {
        for permission in all_routes() {
            let path = permission
                .path
                .split('/')
                .map(|s| if s.starts_with('{') { "k-1" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            assert_eq!(pattern_of(&path), Some(permission.path), "{path}");
        }
        assert_eq!(pattern_of("/api/v1/assign/"), None);
        assert_eq!(pattern_of("/api/v1/experiments//results"), None);
        assert_eq!(pattern_of("/api/v1/experiments/a/b/results"), None);
        assert_eq!(pattern_of("/nowhere"), None);
    }
}
