//! The consent and legal-basis ledger: append-only records of what a subject
//! agreed to, refused or objected to, for which purpose, under which notice.

use crate::text::PlainText;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Months, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::pseudonym::Pseudonym;
use crate::purpose::{LegalBasis, PurposeKey};

/// What a record says about the basis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    Granted,
    Denied,
    Withdrawn,
    Objected,
}

impl ConsentStatus {
    pub const ALL: [ConsentStatus; 4] = [
        ConsentStatus::Granted,
        ConsentStatus::Denied,
        ConsentStatus::Withdrawn,
        ConsentStatus::Objected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConsentStatus::Granted => "granted",
            ConsentStatus::Denied => "denied",
            ConsentStatus::Withdrawn => "withdrawn",
            ConsentStatus::Objected => "objected",
        }
    }
}

impl fmt::Display for ConsentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConsentStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConsentStatus::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| "must be one of granted, denied, withdrawn, objected".to_owned())
    }
}

/// Where a record was collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Banner,
    App,
    Api,
    Import,
    PrivacyCenter,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::Banner,
        Channel::App,
        Channel::Api,
        Channel::Import,
        Channel::PrivacyCenter,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Banner => "banner",
            Channel::App => "app",
            Channel::Api => "api",
            Channel::Import => "import",
            Channel::PrivacyCenter => "privacy_center",
        }
    }
}

impl FromStr for Channel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| "must be one of banner, app, api, import, privacy_center".to_owned())
    }
}

/// How long a consent lasts when the record does not say: 13 months after collection.
pub const DEFAULT_CONSENT_MONTHS: u32 = 13;

/// How far in the future a collection time may lie (clock skew between systems).
pub const MAX_CLOCK_SKEW_MINUTES: i64 = 5;

/// A record as the client describes it, with the subject already pseudonymized.
#[derive(Debug, Clone)]
pub struct ConsentDraft {
    pub subject: Pseudonym,
    pub purpose: PurposeKey,
    pub basis: LegalBasis,
    pub status: ConsentStatus,
    pub notice_id: String,
    pub notice_version: u32,
    pub channel: Channel,
    pub method: String,
    pub collected_at: DateTime<Utc>,
    pub effective_from: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub proof_ref: Option<String>,
}

/// A record ready to be appended: validated, defaults filled, content hash computed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewConsent {
    pub subject: String,
    pub key_version: u32,
    pub purpose: PurposeKey,
    pub basis: LegalBasis,
    pub status: ConsentStatus,
    pub notice_id: String,
    pub notice_version: u32,
    pub channel: Channel,
    pub method: String,
    pub collected_at: DateTime<Utc>,
    pub effective_from: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub proof_ref: Option<String>,
    /// SHA-256 of the record's content: the same record twice is stored once.
    pub content_hash: String,
    /// The same person's pseudonyms under the older key versions (not stored
    /// with the record): a withdrawal or objection acts on them too, and those
    /// that hold data are linked to `subject` for erasure.
    pub aliases: Vec<crate::pseudonym::Pseudonym>,
}

/// A stored record of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsentRecord {
    pub id: i64,
    pub subject: String,
    pub key_version: u32,
    pub purpose: String,
    pub basis: LegalBasis,
    pub status: ConsentStatus,
    pub notice_id: String,
    pub notice_version: u32,
    pub source_channel: String,
    pub source_method: String,
    pub collected_at: DateTime<Utc>,
    pub effective_from: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub proof_ref: Option<String>,
    pub recorded_by: String,
    /// When the ledger learned of the record (server time).
    pub recorded_at: DateTime<Utc>,
}

/// What kind of contact data `text` looks like, if any: an e-mail address
/// anywhere in it (`local@domain.tld`), or a phone number as the whole value
/// (an optional `+`, then 7 to 15 digits with spaces, `-`, `.`, `/` or
/// parentheses between them, and not a date). Free texts that may be stored or exported
/// (`proof_ref`) are refused when they do.
pub fn contact_data(text: &str) -> Option<&'static str> {
    let looks_like_email = text
        .split(|c: char| c.is_whitespace() || "<>,;\"'".contains(c))
        .any(|word| {
            let Some((local, domain)) = word.rsplit_once('@') else {
                return false;
            };
            let local = local.rsplit(['/', ':']).next().unwrap_or_default();
            let labels: Vec<&str> = domain.split('.').collect();
            !local.is_empty()
                && labels.len() >= 2
                && labels.iter().all(|l| !l.is_empty())
                && labels.last().is_some_and(|tld| {
                    tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic())
                })
        });
    if looks_like_email {
        return Some("an e-mail address");
    }
    let trimmed = text.trim();
    let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let digits = body.chars().filter(char::is_ascii_digit).count();
    let phone_shaped = !body.is_empty()
        && body.starts_with(|c: char| c.is_ascii_digit() || c == '(')
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || " -./()".contains(c));
    let is_date = ["%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%d.%m.%Y"]
        .iter()
        .any(|format| chrono::NaiveDate::parse_from_str(trimmed, format).is_ok());
    (phone_shaped && !is_date && (7..=15).contains(&digits)).then_some("a phone number")
}

/// Why a record cannot be appended; `field()` names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    #[error("notice_id must be 1 to 200 characters")]
    NoticeId,
    #[error("source.method must be 1 to 100 characters")]
    Method,
    #[error("proof_ref must be 1 to 500 characters without control characters")]
    ProofRef,
    #[error(
        "proof_ref looks like {0}; give a reference to the proof (a receipt id or URI), never contact data"
    )]
    ProofRefContactData(&'static str),
    #[error("collected_at lies in the future")]
    CollectedInFuture,
    #[error("collected_at must be after 2000-01-01")]
    CollectedTooEarly,
    #[error("a consent cannot take effect before it was collected")]
    EffectiveBeforeCollection,
    #[error("expires_at must be after effective_from")]
    ExpiresBeforeEffective,
}

impl ConsentError {
    /// The input field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            ConsentError::NoticeId => "notice_id",
            ConsentError::Method => "source.method",
            ConsentError::ProofRef | ConsentError::ProofRefContactData(_) => "proof_ref",
            ConsentError::CollectedInFuture | ConsentError::CollectedTooEarly => "collected_at",
            ConsentError::EffectiveBeforeCollection => "effective_from",
            ConsentError::ExpiresBeforeEffective => "expires_at",
        }
    }
}

impl ConsentDraft {
    /// Validates the draft as of `now` and fills the defaults: `effective_from`
    /// is `collected_at`, and a consent expires 13 months after collection.
    pub fn finish(self, now: DateTime<Utc>) -> Result<NewConsent, ConsentError> {
        let text_ok = |s: &str, max: usize| PlainText::line(s, max).is_ok();
        if !text_ok(&self.notice_id, 200) {
            return Err(ConsentError::NoticeId);
        }
        if !text_ok(&self.method, 100) {
            return Err(ConsentError::Method);
        }
        if self.proof_ref.as_deref().is_some_and(|p| !text_ok(p, 500)) {
            return Err(ConsentError::ProofRef);
        }
        if let Some(kind) = self.proof_ref.as_deref().and_then(contact_data) {
            return Err(ConsentError::ProofRefContactData(kind));
        }
        if self.collected_at > now + Duration::minutes(MAX_CLOCK_SKEW_MINUTES) {
            return Err(ConsentError::CollectedInFuture);
        }
        if self.collected_at.timestamp() < 946_684_800 {
            return Err(ConsentError::CollectedTooEarly);
        }
        let effective_from = self.effective_from.unwrap_or(self.collected_at);
        let is_grant_of_consent =
            self.basis == LegalBasis::Consent && self.status == ConsentStatus::Granted;
        if is_grant_of_consent && effective_from < self.collected_at {
            return Err(ConsentError::EffectiveBeforeCollection);
        }
        let expires_at = match self.expires_at {
            Some(at) => Some(at),
            None if self.basis == LegalBasis::Consent => self
                .collected_at
                .checked_add_months(Months::new(DEFAULT_CONSENT_MONTHS)),
            None => None,
        };
        if expires_at.is_some_and(|at| at <= effective_from) {
            return Err(ConsentError::ExpiresBeforeEffective);
        }
        let mut record = NewConsent {
            subject: self.subject.as_str().to_owned(),
            key_version: self.subject.key_version(),
            purpose: self.purpose,
            basis: self.basis,
            status: self.status,
            notice_id: self.notice_id,
            notice_version: self.notice_version,
            channel: self.channel,
            method: self.method,
            collected_at: self.collected_at,
            effective_from,
            expires_at,
            proof_ref: self.proof_ref,
            content_hash: String::new(),
            aliases: Vec::new(),
        };
        record.content_hash = record.compute_content_hash();
        Ok(record)
    }
}

impl NewConsent {
    fn compute_content_hash(&self) -> String {
        let micros = |at: DateTime<Utc>| at.timestamp_micros();
        let canonical = serde_json::json!({
            "basis": self.basis,
            "channel": self.channel,
            "collected_at": micros(self.collected_at),
            "effective_from": micros(self.effective_from),
            "expires_at": self.expires_at.map(micros),
            "method": self.method,
            "notice_id": self.notice_id,
            "notice_version": self.notice_version,
            "proof_ref": self.proof_ref,
            "purpose": self.purpose,
            "status": self.status,
            "subject": self.subject,
        });
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::pseudonym::PseudonymKey;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0).unwrap()
    }

    fn draft() -> ConsentDraft {
        ConsentDraft {
            subject: PseudonymKey::new(1, vec![1; 32])
                .unwrap()
                .pseudonymize("alice@example.com"),
            purpose: PurposeKey::parse("personalize.content").unwrap(),
            basis: LegalBasis::Consent,
            status: ConsentStatus::Granted,
            notice_id: "privacy-notice".to_owned(),
            notice_version: 3,
            channel: Channel::Banner,
            method: "click".to_owned(),
            collected_at: at(1),
            effective_from: None,
            expires_at: None,
            proof_ref: None,
        }
    }

    #[test]
    fn a_consent_takes_effect_at_collection_and_expires_13_months_later() {
        let record = draft().finish(at(2)).unwrap();
        assert_eq!(record.effective_from, at(1));
        assert_eq!(
            record.expires_at,
            Some(Utc.with_ymd_and_hms(2027, 4, 1, 12, 0, 0).unwrap())
        );
        assert_eq!(record.content_hash.len(), 64);
    }

    #[test]
    fn other_bases_do_not_expire_by_default() {
        let mut d = draft();
        d.basis = LegalBasis::LegitimateInterest;
        assert_eq!(d.finish(at(2)).unwrap().expires_at, None);
    }

    #[test]
    fn the_same_content_has_the_same_hash_and_any_change_another() {
        let a = draft().finish(at(2)).unwrap();
        let b = draft().finish(at(3)).unwrap();
        assert_eq!(a.content_hash, b.content_hash);
        let mut d = draft();
        d.notice_version = 4;
        assert_ne!(d.finish(at(2)).unwrap().content_hash, a.content_hash);
    }

    #[test]
    fn contact_data_is_recognised_and_references_are_not() {
        for email in [
            "a@b.co",
            "mailto:jane.doe@example.com",
            "x <bob@mail.example.org>",
        ] {
            assert_eq!(contact_data(email), Some("an e-mail address"), "{email}");
        }
        for phone in [
            "+491511234567",
            "(030) 1234-5678",
            "0151 123 45 67",
            "555.123.4567",
        ] {
            assert_eq!(contact_data(phone), Some("a phone number"), "{phone}");
        }
        for fine in [
            "https://cmp.example.com/receipts/8f2c",
            "banner-v2/2026-05-01/abc123",
            "receipt 42",
            "cmp@v2",
            "123456",
            "2026-05-01",
        ] {
            assert_eq!(contact_data(fine), None, "{fine}");
        }
    }

    #[test]
    fn invalid_drafts_name_their_field() {
        type Change = Box<dyn Fn(&mut ConsentDraft)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|d| d.notice_id = String::new()), "notice_id"),
            (
                Box::new(|d| d.method = "a\u{0}b".to_owned()),
                "source.method",
            ),
            (
                Box::new(|d| d.proof_ref = Some("x".repeat(501))),
                "proof_ref",
            ),
            (
                Box::new(|d| d.proof_ref = Some("form of jane.doe@example.com".to_owned())),
                "proof_ref",
            ),
            (
                Box::new(|d| d.proof_ref = Some("+49 151 1234 5678".to_owned())),
                "proof_ref",
            ),
            (Box::new(|d| d.collected_at = at(20)), "collected_at"),
            (
                Box::new(|d| d.collected_at = Utc.with_ymd_and_hms(1999, 1, 1, 0, 0, 0).unwrap()),
                "collected_at",
            ),
            (
                Box::new(|d| {
                    d.effective_from = Some(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap())
                }),
                "effective_from",
            ),
            (Box::new(|d| d.expires_at = Some(at(1))), "expires_at"),
        ];
        for (change, field) in cases {
            let mut d = draft();
            change(&mut d);
            assert_eq!(d.finish(at(2)).unwrap_err().field(), field);
        }
    }
}
