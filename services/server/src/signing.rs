//! What the service hands out to people outside it: privacy link tokens
//! (the opaque token in `/privacy/{token}`), the consent form's CSRF field,
//! and consent receipts (JWS, HS256).
//!
//! A link token is 32 random bytes (base64url): it carries nothing, the
//! server keeps the link under the token's SHA-256 (`privacy_links`) and
//! looks it up by that hash. The form's CSRF value and the receipts are
//! HMACs under keys derived from a pseudonym key of the ring
//! (`PseudonymKey::derive`, one label each): no new secret is kept, and each
//! receipt names the key version and a fingerprint of the key it used
//! (`kid` = `v<version>-<fingerprint>`), so that a key rotation leaves
//! earlier receipts verifiable and a receipt from another service's key is
//! told apart from an altered one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use pilotgate_domain::pseudonym::{KeyRing, PseudonymKey};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The derivation label of the form tokens' key.
const LINK_LABEL: &str = "privacy link v1";
/// The derivation label of the consent receipts' key.
const RECEIPT_LABEL: &str = "consent receipt v1";
/// What the receipt key's fingerprint is an HMAC of.
const FINGERPRINT_LABEL: &[u8] = b"pilotgate receipt key fingerprint";
/// The length of a link token: 32 bytes in unpadded base64url.
const TOKEN_LEN: usize = 43;

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// A new privacy link token: 32 random bytes, base64url without padding.
pub fn new_link_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Whether `token` has the shape of [`new_link_token`] (checked before any lookup).
pub fn is_link_token(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What the server keeps of a token: its SHA-256, hex.
pub fn link_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A short non-secret reference to a link (the first 12 hex digits of its
/// hash): named in the audit log, the records made through it and receipts.
pub fn link_reference(token: &str) -> String {
    link_hash(token)[..12].to_owned()
}

/// The consent form's CSRF value for a link: an HMAC of the token under the
/// form key of key version `key_version` (the link subject's), so that only
/// someone holding the link can post the form.
pub fn form_token(token: &str, key_version: u32, keys: &KeyRing) -> String {
    let key = keys
        .version(key_version)
        .map(|k| k.derive(LINK_LABEL))
        .unwrap_or_default();
    hex::encode(&mac(&key, &[b"form|", token.as_bytes()])[..16])
}

/// Whether `presented` is the form token of the link (constant time).
pub fn form_token_matches(token: &str, key_version: u32, keys: &KeyRing, presented: &str) -> bool {
    bool::from(
        form_token(token, key_version, keys)
            .as_bytes()
            .ct_eq(presented.as_bytes()),
    )
}

/// The fingerprint of a key's receipt key: 16 hex digits of an HMAC of a
/// fixed label, naming the key without revealing it.
pub fn receipt_key_fingerprint(key: &PseudonymKey) -> String {
    hex::encode(&mac(&key.derive(RECEIPT_LABEL), &[FINGERPRINT_LABEL])[..8])
}

/// The `kid` of receipts signed with `key`: `v<version>-<fingerprint>`.
fn kid_of(key: &PseudonymKey) -> String {
    format!("v{}-{}", key.version(), receipt_key_fingerprint(key))
}

/// A JWS compact serialization of `payload`, HS256 with the receipt key of
/// the ring's current key; the header's `kid` is `v<version>-<fingerprint>`.
pub fn sign_receipt(payload: &serde_json::Value, keys: &KeyRing) -> String {
    let key = keys.current();
    let header = serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": kid_of(key)});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let signature = mac(&key.derive(RECEIPT_LABEL), &[signing_input.as_bytes()]);
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Why a receipt does not verify, in one sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptRefusal {
    #[error("not a JWS compact serialization (three base64url parts separated by dots)")]
    Malformed,
    #[error("the header is not HS256 with a kid of the form v<version>-<fingerprint>")]
    Header,
    #[error("unknown key: signed with a key this service does not hold (kid {0})")]
    UnknownKey(String),
    #[error("the signature does not match: the receipt was altered or not signed by this service")]
    BadSignature,
}

/// The key version and payload of a receipt whose signature holds.
pub fn verify_receipt(
    jws: &str,
    keys: &KeyRing,
) -> Result<(u32, serde_json::Value), ReceiptRefusal> {
    let parts: Vec<&str> = jws.trim().split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        return Err(ReceiptRefusal::Malformed);
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| ReceiptRefusal::Malformed)
    };
    let header: serde_json::Value =
        serde_json::from_slice(&decode(header)?).map_err(|_| ReceiptRefusal::Malformed)?;
    let kid = header["kid"]
        .as_str()
        .filter(|_| header["alg"] == "HS256")
        .ok_or(ReceiptRefusal::Header)?;
    let (version, fingerprint) = kid
        .strip_prefix('v')
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(v, fp)| Some((v.parse::<u32>().ok()?, fp)))
        .filter(|(_, fp)| fp.len() == 16 && fp.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(ReceiptRefusal::Header)?;
    let key = keys
        .version(version)
        .filter(|key| {
            bool::from(
                receipt_key_fingerprint(key)
                    .as_bytes()
                    .ct_eq(fingerprint.as_bytes()),
            )
        })
        .ok_or_else(|| ReceiptRefusal::UnknownKey(kid.chars().take(40).collect()))?;
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    let expected = mac(&key.derive(RECEIPT_LABEL), &[signing_input.as_bytes()]);
    if !bool::from(expected.ct_eq(&decode(signature)?)) {
        return Err(ReceiptRefusal::BadSignature);
    }
    let payload =
        serde_json::from_slice(&decode(payload)?).map_err(|_| ReceiptRefusal::Malformed)?;
    Ok((version, payload))
}

#[cfg(test)]
mod tests {
    use pilotgate_domain::pseudonym::PseudonymKey;

    use super::*;

    fn ring() -> KeyRing {
        ring_of(5)
    }

    fn ring_of(byte: u8) -> KeyRing {
        KeyRing::new(vec![PseudonymKey::new(1, vec![byte; 32]).unwrap()]).unwrap()
    }

    #[test]
    fn a_link_token_is_random_and_opaque() {
        let token = new_link_token();
        assert!(is_link_token(&token), "{token}");
        assert_ne!(token, new_link_token());
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
        assert!(!is_link_token("../../etc/passwd"));
        assert!(!is_link_token(&format!("{token}A")));
        assert_eq!(link_hash(&token).len(), 64);
        assert!(link_hash(&token).starts_with(&link_reference(&token)));
        let csrf = form_token(&token, 1, &ring());
        assert!(form_token_matches(&token, 1, &ring(), &csrf));
        assert!(!form_token_matches(&new_link_token(), 1, &ring(), &csrf));
    }

    #[test]
    fn a_receipt_verifies_and_a_changed_one_does_not() {
        let jws = sign_receipt(&serde_json::json!({"consentReceiptID": "r1"}), &ring());
        let (version, payload) = verify_receipt(&jws, &ring()).unwrap();
        assert_eq!(
            (version, payload["consentReceiptID"].as_str()),
            (1, Some("r1"))
        );
        let parts: Vec<&str> = jws.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(r#"{"consentReceiptID":"r2"}"#),
            parts[2]
        );
        assert_eq!(
            verify_receipt(&forged, &ring()),
            Err(ReceiptRefusal::BadSignature)
        );
        assert_eq!(
            verify_receipt("a.b", &ring()),
            Err(ReceiptRefusal::Malformed)
        );
        let kid = format!("v1-{}", receipt_key_fingerprint(ring().current()));
        assert_eq!(
            verify_receipt(&jws, &ring_of(6)),
            Err(ReceiptRefusal::UnknownKey(kid))
        );
    }
}
