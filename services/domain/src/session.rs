//! Dashboard sessions: an opaque random id in the browser's cookie, only its
//! SHA-256 in the database, and the rule of when a session ends.
//!
//! A session lasts until it is signed out, its token is revoked, it has been
//! idle for [`IDLE_LIMIT`], or it is [`ABSOLUTE_LIMIT`] old, whichever comes
//! first. The cookie never holds the token.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

/// A session ends after this long without a request.
pub const IDLE_LIMIT: Duration = Duration::hours(1);
/// A session ends this long after sign-in, however busy.
pub const ABSOLUTE_LIMIT: Duration = Duration::hours(8);
/// The last-seen time is written at most this often (each page view would otherwise write).
pub const TOUCH_EVERY: Duration = Duration::minutes(1);

const ID_BYTES: usize = 32;

/// The secret id of a session, as the cookie carries it (64 hex digits).
/// `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(String);

impl SessionId {
    /// A new id from caller-supplied random bytes (the caller owns the RNG).
    pub fn from_random(bytes: [u8; ID_BYTES]) -> SessionId {
        SessionId(hex::encode(bytes))
    }

    /// The id a cookie holds, if it is shaped like one.
    pub fn parse(value: &str) -> Option<SessionId> {
        (value.len() == 2 * ID_BYTES
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| SessionId(value.to_owned()))
    }

    /// The value to put in the cookie.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// What the database keeps: the SHA-256 of the id, lowercase hex.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId([redacted])")
    }
}

/// The times of a stored session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimes {
    pub issued_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// When it was signed out or its token revoked.
    pub ended_at: Option<DateTime<Utc>>,
}

/// Whether a session may be used at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Active,
    /// Signed out, or its token revoked.
    Ended,
    IdleTooLong,
    TooOld,
}

impl SessionTimes {
    /// The state of the session at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> SessionState {
        if self.ended_at.is_some_and(|ended| ended <= now) {
            SessionState::Ended
        } else if now >= self.issued_at + ABSOLUTE_LIMIT {
            SessionState::TooOld
        } else if now >= self.last_seen_at + IDLE_LIMIT {
            SessionState::IdleTooLong
        } else {
            SessionState::Active
        }
    }

    /// Whether a request at `now` should move the last-seen time.
    pub fn needs_touch(&self, now: DateTime<Utc>) -> bool {
        now >= self.last_seen_at + TOUCH_EVERY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::minutes(minutes)
    }

    #[test]
    fn a_session_ends_when_idle_too_old_or_signed_out() {
        let times = SessionTimes {
            issued_at: at(0),
            last_seen_at: at(0),
            ended_at: None,
        };
        assert_eq!(times.state(at(59)), SessionState::Active);
        assert_eq!(times.state(at(60)), SessionState::IdleTooLong);
        let busy = SessionTimes {
            last_seen_at: at(8 * 60 - 1),
            ..times
        };
        assert_eq!(busy.state(at(8 * 60 - 1)), SessionState::Active);
        assert_eq!(busy.state(at(8 * 60)), SessionState::TooOld);
        let signed_out = SessionTimes {
            ended_at: Some(at(5)),
            ..times
        };
        assert_eq!(signed_out.state(at(4)), SessionState::Active);
        assert_eq!(signed_out.state(at(5)), SessionState::Ended);
    }

    #[test]
    fn ids_are_stored_hashed_and_never_shown() {
        let id = SessionId::from_random([7; 32]);
        assert_eq!(SessionId::parse(id.reveal()), Some(id.clone()));
        assert_ne!(id.hash(), id.reveal());
        assert_eq!(id.hash().len(), 64);
        assert!(!format!("{id:?}").contains("0707"));
        assert_eq!(SessionId::parse("pgt_abc"), None);
        assert_eq!(SessionId::parse(&"A".repeat(64)), None);
    }

    #[test]
    fn the_last_seen_time_is_written_once_a_minute() {
        let times = SessionTimes {
            issued_at: at(0),
            last_seen_at: at(0),
            ended_at: None,
        };
        assert!(!times.needs_touch(at(0)));
        assert!(times.needs_touch(at(1)));
    }
}
