//! Consent receipts in the fields of the Kantara Initiative's Consent
//! Receipt Specification v1.1, signed as a JWS (see `signing.rs`), and the
//! settings of the consent form: the controller the receipt names, the
//! links' lifetime, and who may frame the form. Settings come from
//! environment variables with defaults:
//!
//! - `PILOTGATE_CONTROLLER_NAME`, `_CONTACT`, `_ADDRESS`, `_EMAIL`, `_PHONE`:
//!   the controller (the shop), as the receipt names it;
//! - `PILOTGATE_JURISDICTION` (default `EU`) and `PILOTGATE_POLICY_URL`;
//! - `PILOTGATE_PRIVACY_LINK_MINUTES`: how long a privacy link is valid (30);
//! - `PILOTGATE_PRIVACY_FRAME_ANCESTORS`: the CSP `frame-ancestors` of the
//!   form (default `*`: any shop page may embed it in an iframe; the form
//!   is protected by its own token, not by the framing site).

use std::path::Path;

use chrono::{DateTime, Utc};
use pilotgate_domain::pseudonym::KeyRing;
use serde::Serialize;

use crate::signing::verify_receipt;

/// The Kantara version string of the receipts.
pub const RECEIPT_VERSION: &str = "KI-CR-v1.1.0";

/// The data controller as a receipt names it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Controller {
    pub pii_controller: String,
    pub contact: String,
    pub address: String,
    pub email: String,
    pub phone: String,
}

/// The settings of the consent form and its receipts.
#[derive(Debug, Clone)]
pub struct PrivacySettings {
    pub controller: Controller,
    pub jurisdiction: String,
    pub policy_url: String,
    pub link_minutes: i64,
    pub frame_ancestors: String,
}

impl PrivacySettings {
    /// The settings from the environment, with defaults for what is not set.
    pub fn from_env() -> PrivacySettings {
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty() && !v.chars().any(char::is_control))
                .unwrap_or_else(|| default.to_owned())
        };
        PrivacySettings {
            controller: Controller {
                pii_controller: var("PILOTGATE_CONTROLLER_NAME", "The shop"),
                contact: var("PILOTGATE_CONTROLLER_CONTACT", "Data protection officer"),
                address: var("PILOTGATE_CONTROLLER_ADDRESS", "not given"),
                email: var("PILOTGATE_CONTROLLER_EMAIL", "privacy@example.com"),
                phone: var("PILOTGATE_CONTROLLER_PHONE", "not given"),
            },
            jurisdiction: var("PILOTGATE_JURISDICTION", "EU"),
            policy_url: var("PILOTGATE_POLICY_URL", "https://example.com/privacy"),
            link_minutes: var("PILOTGATE_PRIVACY_LINK_MINUTES", "30")
                .parse::<i64>()
                .ok()
                .filter(|m| (1..=10_080).contains(m))
                .unwrap_or(30),
            frame_ancestors: var("PILOTGATE_PRIVACY_FRAME_ANCESTORS", "*")
                .chars()
                .filter(|c| !matches!(c, ';' | ',' | '\'' | '"'))
                .collect(),
        }
    }
}

/// One purpose of a receipt: what the person chose and the record that keeps it.
#[derive(Debug, Clone)]
pub struct ReceiptPurpose {
    pub purpose: String,
    pub description: String,
    pub status: String,
    pub basis: String,
    pub record_id: i64,
    pub retention_days: u32,
    /// The purpose touches Art. 9 special categories of data.
    pub special_category: bool,
}

/// What a receipt is about.
#[derive(Debug, Clone)]
pub struct ReceiptFacts<'a> {
    pub id: &'a str,
    pub subject: &'a str,
    pub language: &'a str,
    pub notice_id: &'a str,
    pub notice_version: u32,
    pub collected_at: DateTime<Utc>,
    pub method: &'a str,
    pub service: &'a str,
    pub purposes: &'a [ReceiptPurpose],
    /// The reference of the privacy link the choices were made through.
    pub link: &'a str,
}

/// The data categories a receipt names for every purpose: what pilotgate
/// itself processes for a pilot (the pseudonymised identifier and the
/// behavioural events the shop sends), whatever the purpose. A purpose
/// flagged as touching Art. 9 special categories adds that category and makes
/// the receipt `sensitive`.
const PII_CATEGORIES: [&str; 2] = ["pseudonymised identifier", "behavioural data"];
/// The category a special-category purpose adds.
const SPECIAL_CATEGORY: &str = "special category data (Art. 9 GDPR)";

/// The receipt's payload: the Kantara v1.1 fields, then pilotgate's own (the
/// notice, the link, and each ledger record with its status).
/// `services[].purposes` lists only the purposes the person consented to;
/// denials, withdrawals and objections are listed in `refusals`.
pub fn receipt_payload(settings: &PrivacySettings, facts: &ReceiptFacts<'_>) -> serde_json::Value {
    let granted = |p: &&ReceiptPurpose| p.basis == "consent" && p.status == "granted";
    let purposes: Vec<serde_json::Value> = facts
        .purposes
        .iter()
        .filter(granted)
        .map(|p| {
            let mut categories: Vec<&str> = PII_CATEGORIES.to_vec();
            if p.special_category {
                categories.push(SPECIAL_CATEGORY);
            }
            serde_json::json!({
                "purpose": p.description,
                "purposeCategory": [p.purpose],
                "consentType": "EXPLICIT",
                "piiCategory": categories,
                "primaryPurpose": true,
                "termination": format!("when withdrawn on the same form, or {} days after the pilot", p.retention_days),
                "thirdPartyDisclosure": false,
            })
        })
        .collect();
    let refusals: Vec<serde_json::Value> = facts
        .purposes
        .iter()
        .filter(|p| !granted(p))
        .map(|p| {
            serde_json::json!({
                "purpose": p.purpose, "basis": p.basis, "status": p.status, "record_id": p.record_id,
            })
        })
        .collect();
    let sensitive = facts
        .purposes
        .iter()
        .filter(granted)
        .any(|p| p.special_category);
    let spi: Vec<&str> = if sensitive {
        vec![SPECIAL_CATEGORY]
    } else {
        Vec::new()
    };
    serde_json::json!({
        "version": RECEIPT_VERSION,
        "jurisdiction": settings.jurisdiction,
        "consentTimestamp": facts.collected_at.timestamp(),
        "collectionMethod": facts.method,
        "consentReceiptID": facts.id,
        "publicKey": null,
        "language": facts.language,
        "piiPrincipalId": facts.subject,
        "piiControllers": [settings.controller],
        "policyUrl": settings.policy_url,
        "services": [{"service": facts.service, "purposes": purposes}],
        "refusals": refusals,
        "sensitive": sensitive,
        "spiCat": spi,
        "notice": {"id": facts.notice_id, "version": facts.notice_version},
        "privacyLink": facts.link,
        "records": facts.purposes.iter().map(|p| serde_json::json!({
            "id": p.record_id, "purpose": p.purpose, "basis": p.basis, "status": p.status,
        })).collect::<Vec<_>>(),
    })
}

/// A new receipt id: 128 random bits in the layout of a version 4 UUID.
pub fn new_receipt_id() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Whether `id` has the layout of [`new_receipt_id`].
pub fn is_receipt_id(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_digit() || ('a'..='f').contains(&c)
            }
        })
}

/// `pilotgate receipt verify FILE`: the line to print for a valid receipt,
/// or the one-line reason it is not.
pub fn verify_file(path: &Path, keys: &KeyRing) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the receipt: {e}", path.display()))?;
    let (version, payload) = verify_receipt(&text, keys)
        .map_err(|e| format!("{}: invalid receipt: {e}", path.display()))?;
    // The purposes of the receipt: those consented to and those refused.
    let mut purposes = std::collections::BTreeSet::new();
    for service in payload["services"].as_array().into_iter().flatten() {
        for purpose in service["purposes"].as_array().into_iter().flatten() {
            purposes.extend(
                purpose["purposeCategory"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.as_str()),
            );
        }
    }
    for refusal in payload["refusals"].as_array().into_iter().flatten() {
        purposes.extend(refusal["purpose"].as_str());
    }
    let purposes = purposes.len();
    Ok(format!(
        "valid: receipt {}, subject {}, {purposes} purposes, signed with key v{version}",
        payload["consentReceiptID"].as_str().unwrap_or("?"),
        payload["piiPrincipalId"].as_str().unwrap_or("?"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_ids_look_like_uuids() {
        let id = new_receipt_id();
        assert!(is_receipt_id(&id), "{id}");
        assert_ne!(id, new_receipt_id());
        assert!(!is_receipt_id("../etc/passwd"));
    }
}
