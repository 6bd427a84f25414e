//! Pseudonyms: `hex(HMAC-SHA256(key_v, "subject|" + raw id))`, with the key
//! version kept beside it so that keys can rotate. Raw ids go in, never out.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A secret key of one version. Its bytes never appear in `Debug` output.
#[derive(Clone)]
pub struct PseudonymKey {
    version: u32,
    secret: Vec<u8>,
}

/// The smallest key pilotgate accepts, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// A key that is too short, or a key ring without keys or with a version twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a pseudonym key must have at least {MIN_KEY_BYTES} bytes (64 hex digits)")]
    TooShort,
    #[error("the key ring holds no key")]
    Empty,
    #[error("key version {0} appears twice")]
    DuplicateVersion(u32),
}

impl PseudonymKey {
    /// A key of `version` made of `secret`, which must be at least 32 bytes.
    pub fn new(version: u32, secret: Vec<u8>) -> Result<Self, KeyError> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort);
        }
        Ok(PseudonymKey { version, secret })
    }

    /// The version of this key.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// An HMAC of a fixed label under this key: the database keeps it to
    /// recognise the key again, and it reveals nothing of the key.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.secret)
    }

    /// The pseudonym of `raw_id` under this key.
    pub fn pseudonymize(&self, raw_id: &str) -> Pseudonym {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(b"subject|");
        mac.update(raw_id.as_bytes());
        Pseudonym {
            value: hex::encode(mac.finalize().into_bytes()),
            key_version: self.version,
        }
    }

    /// A key for another use, derived from this one so that no new secret
    /// is kept: `HMAC-SHA256(key, "pilotgate derived key|" + label)`. Labels
    /// tell the uses apart (privacy links, consent receipts).
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(b"pilotgate derived key|");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PseudonymKey")
            .field("version", &self.version)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// Every key version known, newest first; the newest pseudonymizes new records.
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Vec<PseudonymKey>,
}

impl KeyRing {
    /// A ring of `keys`, in any order; versions must be distinct.
    pub fn new(mut keys: Vec<PseudonymKey>) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        keys.sort_by_key(|key| std::cmp::Reverse(key.version));
        if let Some(pair) = keys
            .windows(2)
            .find(|pair| pair[0].version == pair[1].version)
        {
            return Err(KeyError::DuplicateVersion(pair[0].version));
        }
        Ok(KeyRing { keys })
    }

    /// The key new pseudonyms are made with.
    pub fn current(&self) -> &PseudonymKey {
        &self.keys[0]
    }

    /// Every key, newest first.
    pub fn keys(&self) -> &[PseudonymKey] {
        &self.keys
    }

    /// The key of `version`, if the ring holds it.
    pub fn version(&self, version: u32) -> Option<&PseudonymKey> {
        self.keys.iter().find(|key| key.version == version)
    }

    /// The pseudonyms of `raw_id` under every key, current first: lookups try them in this order.
    pub fn candidates(&self, raw_id: &str) -> Vec<Pseudonym> {
        self.keys
            .iter()
            .map(|key| key.pseudonymize(raw_id))
            .collect()
    }
}

/// The fingerprint of a secret key: `hex(HMAC-SHA256(key, "pilotgate key fingerprint v1"))`.
pub(crate) fn fingerprint(secret: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"pilotgate key fingerprint v1");
    hex::encode(mac.finalize().into_bytes())
}

/// A subject's pseudonym: 64 lowercase hex digits and the key version that made it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pseudonym {
    value: String,
    key_version: u32,
}

impl Pseudonym {
    /// The hex text of the pseudonym, as stored and shown.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The version of the key that made it.
    pub fn key_version(&self) -> u32 {
        self.key_version
    }

    /// A pseudonym read back from a signed token or a stored row: 64
    /// lowercase hex digits, or `None`.
    pub fn from_stored(value: &str, key_version: u32) -> Option<Pseudonym> {
        let well_formed = value.len() == 64
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then(|| Pseudonym {
            value: value.to_owned(),
            key_version,
        })
    }
}

impl fmt::Display for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(version: u32, byte: u8) -> PseudonymKey {
        PseudonymKey::new(version, vec![byte; 32]).unwrap()
    }

    #[test]
    fn the_pseudonym_is_the_hmac_of_the_prefixed_id() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"\x01"*32,b"subject|alice@example.com",hashlib.sha256).hexdigest())'
        let pseudonym = key(1, 1).pseudonymize("alice@example.com");
        assert_eq!(
            pseudonym.as_str(),
            "c017cde0dea03675f77c24a7d026109d1f62d488ae4a5ea984a984177ff627d4"
        );
        assert_eq!(pseudonym.key_version(), 1);
    }

    #[test]
    fn keys_shorter_than_32_bytes_are_refused() {
        assert_eq!(
            PseudonymKey::new(1, vec![0; 31]).unwrap_err(),
            KeyError::TooShort
        );
    }

    #[test]
    fn the_newest_key_is_current_and_tried_first() {
        let ring = KeyRing::new(vec![key(1, 1), key(3, 3), key(2, 2)]).unwrap();
        assert_eq!(ring.current().version(), 3);
        let versions: Vec<u32> = ring
            .candidates("bob")
            .iter()
            .map(Pseudonym::key_version)
            .collect();
        assert_eq!(versions, [3, 2, 1]);
        assert_ne!(ring.candidates("bob")[0], ring.candidates("bob")[1]);
    }

    #[test]
    fn a_version_twice_is_refused() {
        assert_eq!(
            KeyRing::new(vec![key(1, 1), key(1, 2)]).unwrap_err(),
            KeyError::DuplicateVersion(1)
        );
        assert_eq!(KeyRing::new(vec![]).unwrap_err(), KeyError::Empty);
    }

    #[test]
    fn a_fingerprint_tells_keys_apart_and_is_not_a_pseudonym() {
        assert_eq!(key(1, 1).fingerprint(), key(2, 1).fingerprint());
        assert_ne!(key(1, 1).fingerprint(), key(1, 2).fingerprint());
        assert_ne!(
            key(1, 1).fingerprint(),
            key(1, 1)
                .pseudonymize("pilotgate key fingerprint v1")
                .as_str()
        );
        assert!(!key(1, 0xab).fingerprint().contains("abababab"));
    }

    #[test]
    fn derived_keys_differ_per_label_and_from_the_key() {
        let k = key(1, 7);
        assert_ne!(k.derive("links"), k.derive("receipts"));
        assert_ne!(k.derive("links").to_vec(), vec![7u8; 32]);
        assert_eq!(k.derive("links"), key(2, 7).derive("links"));
        let p = k.pseudonymize("bob");
        assert_eq!(Pseudonym::from_stored(p.as_str(), 1), Some(p));
        assert_eq!(Pseudonym::from_stored("ABC", 1), None);
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let debug = format!("{:?}", key(1, 0xab));
        assert!(!debug.contains("171"), "{debug}");
        assert!(debug.contains("redacted"));
    }
}
