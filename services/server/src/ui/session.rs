//! Dashboard sessions: an API token kept in a signed, HttpOnly,
//! SameSite=Strict cookie, and the CSRF token every state-changing form
//! carries. Signing keys are random per process: a restart signs everyone out.

use actix_web::HttpRequest;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The cookie that holds the signed-in token.
pub const SESSION_COOKIE: &str = "pilotgate_session";
/// The cookie that holds the CSRF token of a visitor not yet signed in.
pub const PRE_SESSION_COOKIE: &str = "pilotgate_csrf";

/// The process's signing key for session cookies and CSRF tokens.
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

    /// The cookie value for `token`: the token and its signature.
    pub fn seal(&self, token: &str) -> String {
        format!("{token}.{}", self.mac("session", token))
    }

    /// The token of a cookie value, if the signature holds.
    pub fn open<'a>(&self, sealed: &'a str) -> Option<&'a str> {
        let (token, signature) = sealed.rsplit_once('.')?;
        let expected = self.mac("session", token);
        bool::from(expected.as_bytes().ct_eq(signature.as_bytes())).then_some(token)
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
/// unless the server is reached over plain loopback HTTP.
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
    fn a_sealed_token_opens_and_a_forged_one_does_not() {
        let keys = SessionKeys::default();
        let sealed = keys.seal("pgt_abc_secret");
        assert_eq!(keys.open(&sealed), Some("pgt_abc_secret"));
        assert_eq!(keys.open("pgt_abc_secret.00"), None);
        assert_eq!(keys.open(&sealed.replace("abc", "abd")), None);
        assert_eq!(SessionKeys::default().open(&sealed), None);
    }

    #[test]
    fn csrf_tokens_are_bound_to_their_session() {
        let keys = SessionKeys::default();
        let token = keys.csrf_for("one");
        assert!(keys.csrf_matches("one", &token));
        assert!(!keys.csrf_matches("two", &token));
        assert!(!keys.csrf_matches("one", ""));
    }
}
