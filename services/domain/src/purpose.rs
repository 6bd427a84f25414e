//! Purposes and the legal bases they allow: the registry behind every decision.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A GDPR Art. 6(1) legal basis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    Consent,
    Contract,
    LegalObligation,
    VitalInterest,
    PublicTask,
    LegitimateInterest,
}

impl LegalBasis {
    pub const ALL: [LegalBasis; 6] = [
        LegalBasis::Consent,
        LegalBasis::Contract,
        LegalBasis::LegalObligation,
        LegalBasis::VitalInterest,
        LegalBasis::PublicTask,
        LegalBasis::LegitimateInterest,
    ];

    /// The snake_case name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            LegalBasis::Consent => "consent",
            LegalBasis::Contract => "contract",
            LegalBasis::LegalObligation => "legal_obligation",
            LegalBasis::VitalInterest => "vital_interest",
            LegalBasis::PublicTask => "public_task",
            LegalBasis::LegitimateInterest => "legitimate_interest",
        }
    }
}

impl fmt::Display for LegalBasis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LegalBasis {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LegalBasis::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| "must be one of consent, contract, legal_obligation, vital_interest, public_task, legitimate_interest".to_owned())
    }
}

/// A dotted purpose key in the style of fideslang data uses, e.g.
/// `personalize.content.profiling`: two to six segments of `a-z`, `0-9`, `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PurposeKey(String);

impl PurposeKey {
    /// Parses a key, refusing anything that is not dotted lowercase segments.
    pub fn parse(value: &str) -> Result<PurposeKey, PurposeError> {
        let segments: Vec<&str> = value.split('.').collect();
        let segment_ok = |s: &&str| {
            !s.is_empty()
                && s.len() <= 40
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if !(2..=6).contains(&segments.len()) || !segments.iter().all(segment_ok) {
            return Err(PurposeError::Key);
        }
        Ok(PurposeKey(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Profiling and targeted personalization purposes: these accept `consent` only.
    pub fn is_profiling(&self) -> bool {
        self.0.starts_with("personalize.")
            || self.0.starts_with("marketing.advertising.")
            || self.0.split('.').any(|segment| segment == "profiling")
    }
}

impl fmt::Display for PurposeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A registered purpose: what processing it covers and on which bases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Purpose {
    pub key: PurposeKey,
    pub description: String,
    pub allowed_bases: BTreeSet<LegalBasis>,
    /// The lowest notice version a consent must have been given under.
    pub min_notice_version: u32,
    /// Touches Art. 9 special categories: refused for pilots.
    pub special_category: bool,
    /// The legitimate-interest assessment, needed for the `legitimate_interest` basis.
    pub li_assessment_ref: Option<String>,
    /// Set by compliance: the processing is necessary for a contract with the subject.
    pub contract_necessary: bool,
    pub retention_days: u32,
}

/// Why a purpose cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurposeError {
    #[error(
        "key must be two to six dot-separated segments of a-z, 0-9 and _ (e.g. personalize.content.profiling)"
    )]
    Key,
    #[error("description must be 1 to 500 characters, without control characters")]
    Description,
    #[error("allowed_bases must name at least one legal basis")]
    NoBasis,
    #[error("'{0}' is a profiling or targeting purpose: it may rely on consent only")]
    ProfilingNeedsConsent(String),
    #[error(
        "li_assessment_ref must be 1 to 500 characters, without control characters, when given"
    )]
    AssessmentRef,
    #[error("retention_days must be between 1 and 3650")]
    Retention,
}

impl Purpose {
    /// Checks a purpose as compliance described it.
    pub fn validate(&self) -> Result<(), PurposeError> {
        let plain = |text: &str| crate::text::PlainText::line(text, 500).is_ok();
        if !plain(&self.description) {
            return Err(PurposeError::Description);
        }
        if self.allowed_bases.is_empty() {
            return Err(PurposeError::NoBasis);
        }
        if self.key.is_profiling() && self.allowed_bases.iter().any(|b| *b != LegalBasis::Consent) {
            return Err(PurposeError::ProfilingNeedsConsent(self.key.to_string()));
        }
        if let Some(reference) = &self.li_assessment_ref
            && !plain(reference)
        {
            return Err(PurposeError::AssessmentRef);
        }
        if !(1..=3650).contains(&self.retention_days) {
            return Err(PurposeError::Retention);
        }
        Ok(())
    }
}

/// What a new version of a purpose takes away from the people a pilot may
/// use, or from how long a pilot may keep their data: each change that can
/// make an eligible subject ineligible, and a shorter retention (a design
/// may keep data no longer than its purpose allows). A pilot
/// that was submitted or approved under the old version goes back to draft
/// when this is not empty; a running pilot continues under the new rule.
pub fn narrowing(before: &Purpose, after: &Purpose) -> Vec<String> {
    let mut reasons = Vec::new();
    if after.min_notice_version > before.min_notice_version {
        reasons.push(format!(
            "the minimum notice version rose from {} to {}",
            before.min_notice_version, after.min_notice_version
        ));
    }
    let removed: Vec<&str> = before
        .allowed_bases
        .difference(&after.allowed_bases)
        .map(|b| b.as_str())
        .collect();
    if !removed.is_empty() {
        reasons.push(format!("no longer allowed: {}", removed.join(", ")));
    }
    if after.special_category && !before.special_category {
        reasons.push("it now touches special-category data".to_owned());
    }
    if before.contract_necessary && !after.contract_necessary {
        reasons.push("it is no longer necessary for a contract".to_owned());
    }
    if after.retention_days < before.retention_days {
        reasons.push(format!(
            "the retention fell from {} to {} days",
            before.retention_days, after.retention_days
        ));
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn purpose(key: &str, bases: &[LegalBasis]) -> Purpose {
        Purpose {
            key: PurposeKey::parse(key).unwrap(),
            description: "test".to_owned(),
            allowed_bases: bases.iter().copied().collect(),
            min_notice_version: 1,
            special_category: false,
            li_assessment_ref: None,
            contract_necessary: false,
            retention_days: 90,
        }
    }

    #[test]
    fn keys_are_dotted_lowercase_segments() {
        for good in [
            "personalize.content.profiling",
            "analytics.reporting.ab_testing",
            "a.b",
        ] {
            assert!(PurposeKey::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "single",
            "Upper.case",
            "a..b",
            "a.b.",
            "a.b c",
            "a.b.c.d.e.f.g",
        ] {
            assert_eq!(PurposeKey::parse(bad), Err(PurposeError::Key), "{bad}");
        }
    }

    #[test]
    fn profiling_purposes_accept_consent_only() {
        use LegalBasis::*;
        for key in [
            "personalize.content",
            "marketing.advertising.retargeting",
            "analytics.profiling.scores",
        ] {
            assert!(purpose(key, &[Consent]).validate().is_ok());
            assert!(
                matches!(
                    purpose(key, &[Consent, LegitimateInterest]).validate(),
                    Err(PurposeError::ProfilingNeedsConsent(_))
                ),
                "{key}"
            );
        }
        assert!(
            purpose(
                "analytics.reporting.ab_testing",
                &[Consent, LegitimateInterest]
            )
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn a_purpose_needs_a_basis_a_description_and_a_sane_retention() {
        assert_eq!(purpose("a.b", &[]).validate(), Err(PurposeError::NoBasis));
        let mut p = purpose("a.b", &[LegalBasis::Consent]);
        p.description = " ".to_owned();
        assert_eq!(p.validate(), Err(PurposeError::Description));
        let mut p = purpose("a.b", &[LegalBasis::Consent]);
        p.retention_days = 0;
        assert_eq!(p.validate(), Err(PurposeError::Retention));
    }

    #[test]
    fn every_basis_parses_back_from_its_name() {
        for basis in LegalBasis::ALL {
            assert_eq!(basis.as_str().parse::<LegalBasis>(), Ok(basis));
        }
        assert!("opt_in".parse::<LegalBasis>().is_err());
    }

    #[test]
    fn a_change_narrows_when_it_raises_the_notice_or_removes_a_basis() {
        use LegalBasis::*;
        let before = purpose("analytics.shop.ab", &[Consent, LegitimateInterest]);
        let mut after = before.clone();
        after.description = "new words".to_owned();
        after.retention_days = 120;
        after.allowed_bases.insert(Contract);
        assert!(narrowing(&before, &after).is_empty());
        after.min_notice_version = 3;
        after.allowed_bases.remove(&LegitimateInterest);
        assert_eq!(
            narrowing(&before, &after),
            vec![
                "the minimum notice version rose from 1 to 3".to_owned(),
                "no longer allowed: legitimate_interest".to_owned()
            ]
        );
        let mut lowered = before.clone();
        lowered.min_notice_version = 0;
        assert!(narrowing(&before, &lowered).is_empty());
    }

    #[test]
    fn a_shorter_retention_narrows_and_a_longer_one_does_not() {
        let before = purpose("analytics.shop.ab", &[LegalBasis::Consent]);
        let mut shorter = before.clone();
        shorter.retention_days = 30;
        assert_eq!(
            narrowing(&before, &shorter),
            vec!["the retention fell from 90 to 30 days".to_owned()]
        );
        let mut longer = before.clone();
        longer.retention_days = 365;
        assert!(narrowing(&before, &longer).is_empty());
        assert!(narrowing(&before, &before.clone()).is_empty());
    }
}
