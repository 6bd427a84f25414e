//! What the service signs for people outside it: privacy links (the signed
//! token in `/privacy/{token}`), the consent form's CSRF field, and consent
//! receipts (JWS, HS256). No new secret is kept for any of them: each key is
//! derived from a pseudonym key of the ring (`PseudonymKey::derive`) with a
//! label of its own, and each signature names the key version it used, so
//! that a key rotation leaves earlier links and receipts verifiable.
//!
//! A link token is `base64url(payload) "." base64url(HMAC-SHA256(link key,
//! payload))`, the payload being JSON with the subject's pseudonym and key
//! version (never the raw id), the notice id, the expiry and a random nonce.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use pilotgate_domain::pseudonym::{KeyRing, Pseudonym};
use pilotgate_domain::time::{from_micros, to_micros};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The derivation label of the privacy links' key.
const LINK_LABEL: &str = "privacy link v1";
/// The derivation label of the consent receipts' key.
const RECEIPT_LABEL: &str = "consent receipt v1";
/// The longest link token read (a pseudonym, a notice id and a nonce fit well below).
const MAX_TOKEN: usize = 600;

/// What a privacy link says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    pub subject: Pseudonym,
    pub notice: String,
    pub expires_at: DateTime<Utc>,
    pub nonce: String,
}

/// Why a link token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    /// Not a token, tampered with, or signed with a key the ring lacks.
    Invalid,
    /// Genuine, but past its expiry.
    Expired,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkPayload {
    s: String,
    v: u32,
    n: String,
    e: i64,
    r: String,
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Signs `claims` with the link key of the subject's key version (the
/// current key when the link is made); `None` when the ring lacks that version.
pub fn seal_link(claims: &LinkClaims, keys: &KeyRing) -> Option<String> {
    let key = keys
        .version(claims.subject.key_version())?
        .derive(LINK_LABEL);
    let payload = serde_json::to_vec(&LinkPayload {
        s: claims.subject.as_str().to_owned(),
        v: claims.subject.key_version(),
        n: claims.notice.clone(),
        e: to_micros(claims.expires_at),
        r: claims.nonce.clone(),
    })
    .ok()?;
    let body = URL_SAFE_NO_PAD.encode(&payload);
    let signature = URL_SAFE_NO_PAD.encode(mac(&key, &[body.as_bytes()]));
    Some(format!("{body}.{signature}"))
}

/// The claims of `token` if it is genuine and not expired at `now`.
pub fn open_link(
    token: &str,
    keys: &KeyRing,
    now: DateTime<Utc>,
) -> Result<LinkClaims, LinkRefusal> {
    if token.len() > MAX_TOKEN {
        return Err(LinkRefusal::Invalid);
    }
    let (body, signature) = token.split_once('.').ok_or(LinkRefusal::Invalid)?;
    let payload = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| LinkRefusal::Invalid)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| LinkRefusal::Invalid)?;
    let payload: LinkPayload =
        serde_json::from_slice(&payload).map_err(|_| LinkRefusal::Invalid)?;
    let key = keys
        .version(payload.v)
        .ok_or(LinkRefusal::Invalid)?
        .derive(LINK_LABEL);
    let expected = mac(&key, &[body.as_bytes()]);
    if !bool::from(expected.ct_eq(&signature)) {
        return Err(LinkRefusal::Invalid);
    }
    let subject = Pseudonym::from_stored(&payload.s, payload.v).ok_or(LinkRefusal::Invalid)?;
    let expires_at = from_micros(payload.e);
    if now >= expires_at {
        return Err(LinkRefusal::Expired);
    }
    Ok(LinkClaims {
        subject,
        notice: payload.n,
        expires_at,
        nonce: payload.r,
    })
}

/// The consent form's CSRF value for a link: an HMAC of the token under the
/// link key, so that only someone holding the link can post the form.
pub fn form_token(token: &str, claims: &LinkClaims, keys: &KeyRing) -> String {
    let key = keys
        .version(claims.subject.key_version())
        .map(|k| k.derive(LINK_LABEL))
        .unwrap_or_default();
    hex::encode(&mac(&key, &[b"form|", token.as_bytes()])[..16])
}

/// Whether `presented` is the form token of the link (constant time).
pub fn form_token_matches(
    token: &str,
    claims: &LinkClaims,
    keys: &KeyRing,
    presented: &str,
) -> bool {
    bool::from(
        form_token(token, claims, keys)
            .as_bytes()
            .ct_eq(presented.as_bytes()),
    )
}

/// A JWS compact serialization of `payload`, HS256 with the receipt key of
/// the ring's current key; the header's `kid` is `v<version>`.
pub fn sign_receipt(payload: &serde_json::Value, keys: &KeyRing) -> String {
    let key = keys.current();
    let header =
        serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": format!("v{}", key.version())});
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
    #[error("the header is not HS256 with a kid of the form v<version>")]
    Header,
    #[error("signed with key version {0}, which the key ring does not hold")]
    UnknownKey(u32),
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
    let version = header["kid"]
        .as_str()
        .and_then(|kid| kid.strip_prefix('v'))
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|_| header["alg"] == "HS256")
        .ok_or(ReceiptRefusal::Header)?;
    let key = keys
        .version(version)
        .ok_or(ReceiptRefusal::UnknownKey(version))?;
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
        KeyRing::new(vec![PseudonymKey::new(1, vec![5; 32]).unwrap()]).unwrap()
    }

    fn claims(now: DateTime<Utc>) -> LinkClaims {
        LinkClaims {
            subject: ring().current().pseudonymize("alice@example.com"),
            notice: "shop-testing".to_owned(),
            expires_at: now + chrono::Duration::minutes(30),
            nonce: "n1".to_owned(),
        }
    }

    #[test]
    fn a_link_opens_until_it_expires_and_not_after_a_change() {
        let now = from_micros(to_micros(Utc::now()));
        let token = seal_link(&claims(now), &ring()).unwrap();
        assert_eq!(open_link(&token, &ring(), now), Ok(claims(now)));
        assert!(!token.contains("alice"));
        let later = now + chrono::Duration::minutes(31);
        assert_eq!(open_link(&token, &ring(), later), Err(LinkRefusal::Expired));
        let mut bytes = token.into_bytes();
        bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(
            open_link(&tampered, &ring(), now),
            Err(LinkRefusal::Invalid)
        );
        assert_eq!(
            open_link("nonsense", &ring(), now),
            Err(LinkRefusal::Invalid)
        );
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
    }
}
