//! Dashboard sessions: an opaque random session id in an HttpOnly,
//! SameSite=Strict cookie (the token never leaves the sign-in form; the
//! database keeps only the id's hash, see `pilotgate_domain::session`), and
//! the CSRF token every state-changing form carries, a MAC of the session id
//! under a key that is random per process (a restart asks open forms to reload).

use actix_web::HttpRequest;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

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
    let mut cookie = format!("{name}={value}; Path=/ui; HttpOnly; SameSite=Strict");
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
