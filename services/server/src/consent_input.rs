//! Consent records as clients send them (JSON through the API, CSV rows through
//! the importer), parsed at the edge into ledger records. The raw user id is
//! pseudonymized here and goes no further.

use pilotgate_domain::text::PlainText;
use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use pilotgate_domain::consent::{Channel, ConsentDraft, ConsentStatus, NewConsent};
use pilotgate_domain::pseudonym::KeyRing;
use pilotgate_domain::purpose::{LegalBasis, Purpose};
use pilotgate_store::PurposeRecord;
use serde::Deserialize;

/// The purpose registry as records are checked against it at the edge: each
/// purpose by key, and whether it is retired.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    purposes: HashMap<String, (Purpose, bool)>,
}

impl Registry {
    /// The registry of `records` (`Store::list_purpose_records`).
    pub fn new(records: Vec<PurposeRecord>) -> Registry {
        Registry {
            purposes: records
                .into_iter()
                .map(|r| {
                    let retired = r.retired_at.is_some();
                    (r.purpose.key.to_string(), (r.purpose, retired))
                })
                .collect(),
        }
    }
}

/// One consent or legal-basis record, as a client describes it.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    /// The raw id as the client knows it; pseudonymized on arrival, never stored.
    pub user_id: String,
    /// A registered purpose key.
    pub purpose: String,
    /// consent, contract, legal_obligation, vital_interest, public_task or legitimate_interest.
    pub basis: String,
    /// granted, denied, withdrawn or objected.
    pub status: String,
    pub notice_id: String,
    pub notice_version: u32,
    pub source: SourceInput,
    /// RFC 3339.
    pub collected_at: String,
    /// RFC 3339; defaults to `collected_at`.
    pub effective_from: Option<String>,
    /// RFC 3339; a consent defaults to 13 months after collection.
    pub expires_at: Option<String>,
    /// Where the proof of collection is kept (free text or URI).
    pub proof_ref: Option<String>,
}

/// Where and how a record was collected.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceInput {
    /// banner, app, api, import or privacy_center.
    pub channel: String,
    /// How, e.g. `click`, `double_opt_in`, `form`.
    pub method: String,
}

impl fmt::Debug for ConsentInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsentInput")
            .field("user_id", &"[redacted]")
            .field("purpose", &self.purpose)
            .field("basis", &self.basis)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// What is wrong with one record: the field and a sentence that never repeats the value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: &str, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Checks a raw user id: plain text of 1 to 256 characters.
pub fn check_user_id(user_id: &str) -> Result<(), FieldError> {
    PlainText::line(user_id, 256)
        .map(|_| ())
        .map_err(|e| FieldError::new("user_id", e.to_string()))
}

/// Parses an RFC 3339 instant.
pub fn parse_time(field: &str, value: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            FieldError::new(
                field,
                "must be an RFC 3339 time such as 2026-01-08T20:50:59Z",
            )
        })
}

impl ConsentInput {
    /// Turns the input into a ledger record: known purpose, valid enums and
    /// times, no grant for a retired purpose (a denial, withdrawal or
    /// objection is recorded: a person can always say no), the raw id
    /// replaced by its pseudonym under the current key.
    pub fn into_record(
        self,
        registry: &Registry,
        keys: &KeyRing,
        now: DateTime<Utc>,
    ) -> Result<NewConsent, FieldError> {
        check_user_id(&self.user_id)?;
        let (purpose, retired) = registry
            .purposes
            .get(&self.purpose)
            .ok_or_else(|| FieldError::new("purpose", "is not a registered purpose"))?;
        let basis = self
            .basis
            .parse::<LegalBasis>()
            .map_err(|e| FieldError::new("basis", e))?;
        let status = self
            .status
            .parse::<ConsentStatus>()
            .map_err(|e| FieldError::new("status", e))?;
        if *retired && status == ConsentStatus::Granted {
            return Err(FieldError::new(
                "purpose",
                "is retired: it takes no new consent",
            ));
        }
        let channel = self
            .source
            .channel
            .parse::<Channel>()
            .map_err(|e| FieldError::new("source.channel", e))?;
        let collected_at = parse_time("collected_at", &self.collected_at)?;
        let effective_from = self
            .effective_from
            .as_deref()
            .map(|v| parse_time("effective_from", v))
            .transpose()?;
        let expires_at = self
            .expires_at
            .as_deref()
            .map(|v| parse_time("expires_at", v))
            .transpose()?;
        let mut candidates = keys.candidates(&self.user_id).into_iter();
        let draft = ConsentDraft {
            subject: candidates
                .next()
                .expect("a key ring holds at least one key"),
            purpose: purpose.key.clone(),
            basis,
            status,
            notice_id: self.notice_id,
            notice_version: self.notice_version,
            channel,
            method: self.source.method,
            collected_at,
            effective_from,
            expires_at,
            proof_ref: self.proof_ref.filter(|p| !p.is_empty()),
        };
        let mut record = draft
            .finish(now)
            .map_err(|e| FieldError::new(e.field(), e.to_string()))?;
        record.aliases = candidates.collect();
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use pilotgate_domain::pseudonym::PseudonymKey;
    use pilotgate_domain::purpose::PurposeKey;

    use super::*;

    fn purposes() -> Registry {
        registry(false)
    }

    fn registry(retired: bool) -> Registry {
        let purpose = Purpose {
            key: PurposeKey::parse("personalize.content").unwrap(),
            description: "d".to_owned(),
            allowed_bases: [LegalBasis::Consent].into_iter().collect(),
            min_notice_version: 1,
            special_category: false,
            li_assessment_ref: None,
            contract_necessary: false,
            retention_days: 30,
        };
        Registry {
            purposes: HashMap::from([(purpose.key.to_string(), (purpose, retired))]),
        }
    }

    fn input() -> ConsentInput {
        serde_json::from_value(serde_json::json!({
            "user_id": "alice@example.com", "purpose": "personalize.content", "basis": "consent",
            "status": "granted", "notice_id": "pn", "notice_version": 2,
            "source": {"channel": "banner", "method": "click"}, "collected_at": "2026-01-08T20:50:59+01:00"
        }))
        .unwrap()
    }

    #[test]
    fn a_valid_input_becomes_a_pseudonymized_record() {
        let keys = KeyRing::new(vec![PseudonymKey::new(1, vec![3; 32]).unwrap()]).unwrap();
        let record = input().into_record(&purposes(), &keys, Utc::now()).unwrap();
        assert_eq!(
            record.subject,
            keys.current().pseudonymize("alice@example.com").as_str()
        );
        assert_eq!(
            record.collected_at.to_rfc3339(),
            "2026-01-08T19:50:59+00:00"
        );
    }

    #[test]
    fn each_bad_field_is_named_and_no_value_is_echoed() {
        let keys = KeyRing::new(vec![PseudonymKey::new(1, vec![3; 32]).unwrap()]).unwrap();
        type Change = Box<dyn Fn(&mut ConsentInput)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|i| i.user_id = String::new()), "user_id"),
            (Box::new(|i| i.user_id = "alice\u{7}".to_owned()), "user_id"),
            (
                Box::new(|i| i.purpose = "alice@example.com".to_owned()),
                "purpose",
            ),
            (
                Box::new(|i| i.basis = "alice@example.com".to_owned()),
                "basis",
            ),
            (Box::new(|i| i.status = "maybe".to_owned()), "status"),
            (
                Box::new(|i| i.source.channel = "fax".to_owned()),
                "source.channel",
            ),
            (
                Box::new(|i| i.collected_at = "yesterday".to_owned()),
                "collected_at",
            ),
            (
                Box::new(|i| i.expires_at = Some("2026-01-01T00:00:00Z".to_owned())),
                "expires_at",
            ),
        ];
        for (change, field) in cases {
            let mut bad = input();
            change(&mut bad);
            let error = bad.into_record(&purposes(), &keys, Utc::now()).unwrap_err();
            assert_eq!(error.field, field);
            assert!(!error.reason.contains("alice"), "{error}");
        }
    }

    #[test]
    fn a_grant_for_a_retired_purpose_is_refused_and_a_no_is_kept() {
        let keys = KeyRing::new(vec![PseudonymKey::new(1, vec![3; 32]).unwrap()]).unwrap();
        let error = input()
            .into_record(&registry(true), &keys, Utc::now())
            .unwrap_err();
        assert_eq!(
            error,
            FieldError::new("purpose", "is retired: it takes no new consent")
        );
        for status in ["denied", "withdrawn"] {
            let mut no = input();
            no.status = status.to_owned();
            assert!(no.into_record(&registry(true), &keys, Utc::now()).is_ok());
        }
        assert!(
            input()
                .into_record(&registry(false), &keys, Utc::now())
                .is_ok()
        );
    }

    #[test]
    fn debug_output_hides_the_user_id() {
        assert!(!format!("{:?}", input()).contains("alice"));
    }
}
