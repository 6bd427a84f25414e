//! Client event ids as stored: keyed, never as sent. An event id is the
//! shop's idempotency key and free text, so it could carry an e-mail address
//! or a phone number into the database; what is stored is
//! `hex(HMAC-SHA256(k, id))[..32]` (128 bits) under a key derived from the
//! audit key, kept outside the database. Retries still match; the text does not
//! leave the request.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The key event ids are stored under.
#[derive(Clone)]
pub struct EventIdKey {
    keyed: Hmac<Sha256>,
}

impl EventIdKey {
    /// A key made of `secret` (see `AuditKey::derive`).
    pub fn new(secret: [u8; 32]) -> EventIdKey {
        EventIdKey {
            keyed: <Hmac<Sha256> as Mac>::new_from_slice(&secret)
                .expect("HMAC takes any key length"),
        }
    }

    /// The stored form of the client's event id `raw`.
    pub fn key(&self, raw: &str) -> String {
        let mut mac = self.keyed.clone();
        mac.update(raw.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

impl fmt::Debug for EventIdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventIdKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_id_is_stored_keyed_the_same_way_every_time() {
        let key = EventIdKey::new([1; 32]);
        let stored = key.key("alice@example.com");
        assert_eq!(stored, key.key("alice@example.com"));
        assert_eq!(stored.len(), 32);
        assert!(!stored.contains("alice"));
        assert_ne!(stored, key.key("alice@example.org"));
        assert_ne!(stored, EventIdKey::new([2; 32]).key("alice@example.com"));
    }
}
