//! Issuing API tokens: an id and a secret from the operating system's random
//! source. Only the secret's hash is stored (`pilotgate_store::NewToken`);
//! the token itself is shown once, to whoever asked for it.

use pilotgate_domain::token::IssuedToken;
use rand::RngCore;

/// A new token from the operating system's random source.
pub fn issue_token() -> IssuedToken {
    let mut id = [0u8; 6];
    let mut secret = [0u8; 32];
    let mut rng = rand::rng();
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    IssuedToken::from_random(id, secret)
}
