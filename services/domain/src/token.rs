//! API tokens: how they are made, shown once, hashed for storage and checked.
//!
//! A token reads `pgt_<id>_<secret>`. The id (12 hex digits) is public and
//! finds the stored row; the secret (64 hex digits) is never stored, only its
//! SHA-256, and a presented secret is compared with that hash in constant time.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "pgt_";
const ID_HEX_LEN: usize = 12;
const SECRET_HEX_LEN: usize = 64;

/// A newly issued token: the plaintext to show once, and what the store keeps.
pub struct IssuedToken {
    /// The public lookup id.
    pub token_id: String,
    /// The SHA-256 of the secret, lowercase hex.
    pub secret_hash: String,
    plaintext: String,
}

impl IssuedToken {
    /// Builds a token from caller-supplied random bytes (the caller owns the RNG).
    pub fn from_random(
        id_bytes: [u8; ID_HEX_LEN / 2],
        secret_bytes: [u8; SECRET_HEX_LEN / 2],
    ) -> Self {
        let token_id = hex::encode(id_bytes);
        let secret = hex::encode(secret_bytes);
        IssuedToken {
            secret_hash: hash_secret(&secret),
            plaintext: format!("{PREFIX}{token_id}_{secret}"),
            token_id,
        }
    }

    /// The token in clear, to be shown exactly once to the person who asked for it.
    pub fn reveal(&self) -> &str {
        &self.plaintext
    }
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token_id", &self.token_id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// A token presented with a request, split into its id and secret.
pub struct PresentedToken {
    token_id: String,
    secret: String,
}

/// A bearer value that is not shaped like a pilotgate token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token is malformed")]
pub struct MalformedToken;

impl PresentedToken {
    /// Splits `pgt_<id>_<secret>`; anything else is malformed.
    pub fn parse(value: &str) -> Result<Self, MalformedToken> {
        let rest = value.strip_prefix(PREFIX).ok_or(MalformedToken)?;
        let (token_id, secret) = rest.split_once('_').ok_or(MalformedToken)?;
        let is_hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
        if token_id.len() != ID_HEX_LEN
            || secret.len() != SECRET_HEX_LEN
            || !is_hex(token_id)
            || !is_hex(secret)
        {
            return Err(MalformedToken);
        }
        Ok(PresentedToken {
            token_id: token_id.to_ascii_lowercase(),
            secret: secret.to_ascii_lowercase(),
        })
    }

    /// The public id, used to find the stored hash.
    pub fn token_id(&self) -> &str {
        &self.token_id
    }

    /// True when this token's secret hashes to `stored_hash`, compared in constant time.
    pub fn matches(&self, stored_hash: &str) -> bool {
        let presented = hash_secret(&self.secret);
        presented.as_bytes().ct_eq(stored_hash.as_bytes()).into()
    }
}

impl fmt::Debug for PresentedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresentedToken")
            .field("token_id", &self.token_id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued() -> IssuedToken {
        IssuedToken::from_random([1, 2, 3, 4, 5, 6], [7; 32])
    }

    #[test]
    fn an_issued_token_parses_and_matches_its_own_hash() {
        let token = issued();
        let presented = PresentedToken::parse(token.reveal()).unwrap();
        assert_eq!(presented.token_id(), token.token_id);
        assert!(presented.matches(&token.secret_hash));
    }

    #[test]
    fn a_token_with_another_secret_does_not_match() {
        let token = issued();
        let other = IssuedToken::from_random([1, 2, 3, 4, 5, 6], [8; 32]);
        let presented = PresentedToken::parse(other.reveal()).unwrap();
        assert!(!presented.matches(&token.secret_hash));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for value in [
            "",
            "pgt_",
            "pgt_010203040506",
            "abc_010203040506_07",
            "pgt_0102030405zz_0707070707070707070707070707070707070707070707070707070707070707",
        ] {
            assert!(PresentedToken::parse(value).is_err(), "{value}");
        }
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let token = issued();
        let secret = &token.reveal()[4 + 12 + 1..];
        assert!(!format!("{token:?}").contains(secret));
        let presented = PresentedToken::parse(token.reveal()).unwrap();
        assert!(!format!("{presented:?}").contains(secret));
        assert!(!token.secret_hash.contains(secret));
    }
}
