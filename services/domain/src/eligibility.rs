//! `eligible(subject, purpose, t)`: the one rule every assignment and event obeys.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::consent::{ConsentRecord, ConsentStatus};
use crate::purpose::{LegalBasis, Purpose};

/// Why a subject may not be used for a purpose at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    NoRecord,
    Denied,
    Withdrawn,
    Objected,
    Expired,
    NotYetEffective,
    StaleNotice,
    BasisNotAllowed,
    NoLiAssessment,
    ContractNotNecessary,
    SpecialCategory,
    Erased,
}

impl Reason {
    pub const ALL: [Reason; 12] = [
        Reason::NoRecord,
        Reason::Denied,
        Reason::Withdrawn,
        Reason::Objected,
        Reason::Expired,
        Reason::NotYetEffective,
        Reason::StaleNotice,
        Reason::BasisNotAllowed,
        Reason::NoLiAssessment,
        Reason::ContractNotNecessary,
        Reason::SpecialCategory,
        Reason::Erased,
    ];

    /// Whether the shop may ask the person for consent (again): nothing was
    /// ever asked, the consent expired, or it was given under a notice older
    /// than the purpose needs. Never after a refusal, withdrawal, objection
    /// or erasure, nor when the purpose itself stands in the way.
    pub fn may_ask_again(self) -> bool {
        matches!(
            self,
            Reason::NoRecord | Reason::Expired | Reason::StaleNotice
        )
    }

    /// The snake_case reason code of the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoRecord => "no_record",
            Reason::Denied => "denied",
            Reason::Withdrawn => "withdrawn",
            Reason::Objected => "objected",
            Reason::Expired => "expired",
            Reason::NotYetEffective => "not_yet_effective",
            Reason::StaleNotice => "stale_notice",
            Reason::BasisNotAllowed => "basis_not_allowed",
            Reason::NoLiAssessment => "no_li_assessment",
            Reason::ContractNotNecessary => "contract_not_necessary",
            Reason::SpecialCategory => "special_category",
            Reason::Erased => "erased",
        }
    }
}

/// The basis a subject may be used on, with the record that proves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proof {
    pub basis: LegalBasis,
    pub record_id: i64,
    pub notice_version: u32,
}

/// The answer of `eligible`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Eligibility {
    Eligible(Proof),
    Ineligible(Reason),
}

impl Eligibility {
    pub fn is_eligible(&self) -> bool {
        matches!(self, Eligibility::Eligible(_))
    }

    /// The reason when ineligible.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Eligibility::Eligible(_) => None,
            Eligibility::Ineligible(reason) => Some(*reason),
        }
    }
}

/// What the rule reads of a ledger record: a whole [`ConsentRecord`], or
/// just these facts when a caller loads no more (event ingestion reads
/// thousands of records per batch).
pub trait LedgerFacts {
    fn id(&self) -> i64;
    fn basis(&self) -> LegalBasis;
    fn status(&self) -> ConsentStatus;
    fn notice_version(&self) -> u32;
    fn effective_from(&self) -> DateTime<Utc>;
    fn expires_at(&self) -> Option<DateTime<Utc>>;
}

/// The facts of one ledger record the rule reads, and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordFacts {
    pub id: i64,
    pub basis: LegalBasis,
    pub status: ConsentStatus,
    pub notice_version: u32,
    pub effective_from: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Both kinds of record name their facts alike: one implementation reads them.
macro_rules! ledger_facts_of_fields {
    ($($record:ty),*) => {$(
        impl LedgerFacts for $record {
            fn id(&self) -> i64 {
                self.id
            }
            fn basis(&self) -> LegalBasis {
                self.basis
            }
            fn status(&self) -> ConsentStatus {
                self.status
            }
            fn notice_version(&self) -> u32 {
                self.notice_version
            }
            fn effective_from(&self) -> DateTime<Utc> {
                self.effective_from
            }
            fn expires_at(&self) -> Option<DateTime<Utc>> {
                self.expires_at
            }
        }
    )*};
}

ledger_facts_of_fields!(ConsentRecord, RecordFacts);

impl From<&ConsentRecord> for RecordFacts {
    fn from(record: &ConsentRecord) -> Self {
        RecordFacts {
            id: record.id,
            basis: record.basis,
            status: record.status,
            notice_version: record.notice_version,
            effective_from: record.effective_from,
            expires_at: record.expires_at,
        }
    }
}

/// Why an event of an assignment marked withdrawn is refused, whatever time
/// the event claims: `objected` when the person's newest withdrawing record
/// for the purpose is an objection, `withdrawn` otherwise. (The assignment is
/// marked when a withdrawal, objection or denial is received; an event
/// received afterwards but dated before it would otherwise slip in.)
pub fn withdrawn_assignment_reason<R: LedgerFacts>(records: &[R]) -> Reason {
    let newest = records
        .iter()
        .filter(|r| r.status() != ConsentStatus::Granted)
        .max_by_key(|r| (r.effective_from(), r.id()));
    match newest.map(LedgerFacts::status) {
        Some(ConsentStatus::Objected) => Reason::Objected,
        _ => Reason::Withdrawn,
    }
}

/// Decides whether a subject may be used for `purpose` at `at`.
///
/// `records` are every ledger record of the subject for this purpose, in any
/// order; `erased` says whether the subject has a pending or executed erasure.
/// The record in force is the latest by effective time (ties: the later
/// appended) among those effective at `at`.
pub fn eligible<R: LedgerFacts>(
    purpose: &Purpose,
    records: &[R],
    erased: bool,
    at: DateTime<Utc>,
) -> Eligibility {
    use Eligibility::Ineligible;
    if erased {
        return Ineligible(Reason::Erased);
    }
    if purpose.special_category {
        return Ineligible(Reason::SpecialCategory);
    }
    let in_force = records
        .iter()
        .filter(|r| r.effective_from() <= at)
        .max_by_key(|r| (r.effective_from(), r.id()));
    let Some(record) = in_force else {
        return Ineligible(if records.is_empty() {
            Reason::NoRecord
        } else {
            Reason::NotYetEffective
        });
    };
    if !purpose.allowed_bases.contains(&record.basis()) {
        return Ineligible(Reason::BasisNotAllowed);
    }
    match record.status() {
        ConsentStatus::Granted => {}
        ConsentStatus::Denied => return Ineligible(Reason::Denied),
        ConsentStatus::Withdrawn => return Ineligible(Reason::Withdrawn),
        ConsentStatus::Objected => return Ineligible(Reason::Objected),
    }
    if record.expires_at().is_some_and(|expires| at >= expires) {
        return Ineligible(Reason::Expired);
    }
    match record.basis() {
        LegalBasis::Consent if record.notice_version() < purpose.min_notice_version => {
            return Ineligible(Reason::StaleNotice);
        }
        LegalBasis::LegitimateInterest => {
            if purpose.li_assessment_ref.is_none() {
                return Ineligible(Reason::NoLiAssessment);
            }
            // An objection (Art. 21) or withdrawal stands even if a later record re-asserts the interest.
            let objection = records
                .iter()
                .filter(|r| r.effective_from() <= at && r.basis() == LegalBasis::LegitimateInterest)
                .find(|r| {
                    matches!(
                        r.status(),
                        ConsentStatus::Objected | ConsentStatus::Withdrawn
                    )
                });
            if let Some(objection) = objection {
                return Ineligible(if objection.status() == ConsentStatus::Objected {
                    Reason::Objected
                } else {
                    Reason::Withdrawn
                });
            }
        }
        LegalBasis::Contract if !purpose.contract_necessary => {
            return Ineligible(Reason::ContractNotNecessary);
        }
        _ => {}
    }
    Eligibility::Eligible(Proof {
        basis: record.basis(),
        record_id: record.id(),
        notice_version: record.notice_version(),
    })
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::purpose::PurposeKey;
    use ConsentStatus::*;
    use LegalBasis::*;

    fn t(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, hour, 0, 0).unwrap()
    }

    fn purpose(bases: &[LegalBasis]) -> Purpose {
        Purpose {
            key: PurposeKey::parse("analytics.reporting.ab_testing").unwrap(),
            description: "A/B tests".to_owned(),
            allowed_bases: bases.iter().copied().collect(),
            min_notice_version: 2,
            special_category: false,
            li_assessment_ref: Some("LIA-7".to_owned()),
            contract_necessary: true,
            retention_days: 90,
        }
    }

    fn record(
        id: i64,
        basis: LegalBasis,
        status: ConsentStatus,
        from: u32,
        expires: Option<u32>,
        notice: u32,
    ) -> ConsentRecord {
        ConsentRecord {
            id,
            subject: "s".to_owned(),
            key_version: 1,
            purpose: "analytics.reporting.ab_testing".to_owned(),
            basis,
            status,
            notice_id: "n".to_owned(),
            notice_version: notice,
            source_channel: "banner".to_owned(),
            source_method: "click".to_owned(),
            collected_at: t(from),
            effective_from: t(from),
            expires_at: expires.map(t),
            proof_ref: None,
            recorded_by: "test".to_owned(),
            recorded_at: t(from),
        }
    }

    fn all_bases() -> Purpose {
        purpose(&LegalBasis::ALL)
    }

    #[test]
    fn events_of_a_withdrawn_assignment_name_the_newest_withdrawing_record() {
        let granted = record(1, Consent, Granted, 1, None, 2);
        let withdrawn = record(2, Consent, Withdrawn, 3, None, 2);
        let objected = record(3, LegitimateInterest, Objected, 5, None, 2);
        let regranted = record(4, Consent, Granted, 7, None, 2);
        assert_eq!(
            withdrawn_assignment_reason(&[granted.clone(), withdrawn.clone()]),
            Reason::Withdrawn
        );
        assert_eq!(
            withdrawn_assignment_reason(&[granted, withdrawn, objected, regranted]),
            Reason::Objected
        );
        assert_eq!(
            withdrawn_assignment_reason::<ConsentRecord>(&[]),
            Reason::Withdrawn
        );
        assert!(Reason::NoRecord.may_ask_again() && Reason::Expired.may_ask_again());
        assert!(!Reason::Withdrawn.may_ask_again() && !Reason::Erased.may_ask_again());
    }

    #[test]
    fn every_reason_and_every_basis() {
        let mut no_lia = all_bases();
        no_lia.li_assessment_ref = None;
        let mut not_necessary = all_bases();
        not_necessary.contract_necessary = false;
        let mut special = all_bases();
        special.special_category = true;
        let consent_only = purpose(&[Consent]);
        let every = all_bases();
        let ok = |id| {
            Eligibility::Eligible(Proof {
                basis: Consent,
                record_id: id,
                notice_version: 2,
            })
        };
        let ok_basis = |basis, id, notice| {
            Eligibility::Eligible(Proof {
                basis,
                record_id: id,
                notice_version: notice,
            })
        };
        let no = Eligibility::Ineligible;

        /// (case, purpose, records, erased, at, expected)
        type Case<'a> = (
            &'a str,
            &'a Purpose,
            Vec<ConsentRecord>,
            bool,
            DateTime<Utc>,
            Eligibility,
        );
        let cases: Vec<Case> = vec![
            (
                "no record",
                &consent_only,
                vec![],
                false,
                t(5),
                no(Reason::NoRecord),
            ),
            (
                "granted consent",
                &consent_only,
                vec![record(1, Consent, Granted, 1, Some(9), 2)],
                false,
                t(5),
                ok(1),
            ),
            (
                "exactly at effective_from",
                &consent_only,
                vec![record(1, Consent, Granted, 5, Some(9), 2)],
                false,
                t(5),
                ok(1),
            ),
            (
                "just before effective_from",
                &consent_only,
                vec![record(1, Consent, Granted, 5, Some(9), 2)],
                false,
                t(5) - Duration::microseconds(1),
                no(Reason::NotYetEffective),
            ),
            (
                "just before expires_at",
                &consent_only,
                vec![record(1, Consent, Granted, 1, Some(9), 2)],
                false,
                t(9) - Duration::microseconds(1),
                ok(1),
            ),
            (
                "exactly at expires_at",
                &consent_only,
                vec![record(1, Consent, Granted, 1, Some(9), 2)],
                false,
                t(9),
                no(Reason::Expired),
            ),
            (
                "denied",
                &consent_only,
                vec![record(1, Consent, Denied, 1, None, 2)],
                false,
                t(5),
                no(Reason::Denied),
            ),
            (
                "withdrawn after grant",
                &consent_only,
                vec![
                    record(1, Consent, Granted, 1, Some(9), 2),
                    record(2, Consent, Withdrawn, 3, None, 2),
                ],
                false,
                t(5),
                no(Reason::Withdrawn),
            ),
            (
                "granted before the withdrawal took effect",
                &consent_only,
                vec![
                    record(1, Consent, Granted, 1, Some(9), 2),
                    record(2, Consent, Withdrawn, 3, None, 2),
                ],
                false,
                t(2),
                ok(1),
            ),
            (
                "withdrawal then re-grant",
                &consent_only,
                vec![
                    record(1, Consent, Granted, 1, Some(9), 2),
                    record(2, Consent, Withdrawn, 2, None, 2),
                    record(3, Consent, Granted, 3, Some(9), 2),
                ],
                false,
                t(5),
                ok(3),
            ),
            (
                "notice version at the minimum",
                &consent_only,
                vec![record(1, Consent, Granted, 1, Some(9), 2)],
                false,
                t(5),
                ok(1),
            ),
            (
                "notice version below the minimum",
                &consent_only,
                vec![record(1, Consent, Granted, 1, Some(9), 1)],
                false,
                t(5),
                no(Reason::StaleNotice),
            ),
            (
                "basis not allowed",
                &consent_only,
                vec![record(1, LegitimateInterest, Granted, 1, None, 0)],
                false,
                t(5),
                no(Reason::BasisNotAllowed),
            ),
            (
                "legitimate interest with an assessment",
                &every,
                vec![record(1, LegitimateInterest, Granted, 1, None, 0)],
                false,
                t(5),
                ok_basis(LegitimateInterest, 1, 0),
            ),
            (
                "legitimate interest without an assessment",
                &no_lia,
                vec![record(1, LegitimateInterest, Granted, 1, None, 0)],
                false,
                t(5),
                no(Reason::NoLiAssessment),
            ),
            (
                "objection to legitimate interest",
                &every,
                vec![
                    record(1, LegitimateInterest, Granted, 1, None, 0),
                    record(2, LegitimateInterest, Objected, 2, None, 0),
                ],
                false,
                t(5),
                no(Reason::Objected),
            ),
            (
                "an objection outlives a later assertion",
                &every,
                vec![
                    record(1, LegitimateInterest, Objected, 1, None, 0),
                    record(2, LegitimateInterest, Granted, 2, None, 0),
                ],
                false,
                t(5),
                no(Reason::Objected),
            ),
            (
                "withdrawal of legitimate interest",
                &every,
                vec![
                    record(1, LegitimateInterest, Withdrawn, 1, None, 0),
                    record(2, LegitimateInterest, Granted, 2, None, 0),
                ],
                false,
                t(5),
                no(Reason::Withdrawn),
            ),
            (
                "contract, necessary",
                &every,
                vec![record(1, Contract, Granted, 1, None, 0)],
                false,
                t(5),
                ok_basis(Contract, 1, 0),
            ),
            (
                "contract, not necessary",
                &not_necessary,
                vec![record(1, Contract, Granted, 1, None, 0)],
                false,
                t(5),
                no(Reason::ContractNotNecessary),
            ),
            (
                "legal obligation",
                &every,
                vec![record(1, LegalObligation, Granted, 1, None, 0)],
                false,
                t(5),
                ok_basis(LegalObligation, 1, 0),
            ),
            (
                "vital interest",
                &every,
                vec![record(1, VitalInterest, Granted, 1, None, 0)],
                false,
                t(5),
                ok_basis(VitalInterest, 1, 0),
            ),
            (
                "public task",
                &every,
                vec![record(1, PublicTask, Granted, 1, None, 0)],
                false,
                t(5),
                ok_basis(PublicTask, 1, 0),
            ),
            (
                "special category",
                &special,
                vec![record(1, Consent, Granted, 1, Some(9), 2)],
                false,
                t(5),
                no(Reason::SpecialCategory),
            ),
            (
                "erased",
                &consent_only,
                vec![record(1, Consent, Granted, 1, Some(9), 2)],
                true,
                t(5),
                no(Reason::Erased),
            ),
            (
                "erased without records",
                &consent_only,
                vec![],
                true,
                t(5),
                no(Reason::Erased),
            ),
            (
                "a later-effective grant waits its turn",
                &consent_only,
                vec![
                    record(1, Consent, Withdrawn, 1, None, 2),
                    record(2, Consent, Granted, 7, Some(9), 2),
                ],
                false,
                t(5),
                no(Reason::Withdrawn),
            ),
            (
                "ties on effective time go to the later record",
                &consent_only,
                vec![
                    record(2, Consent, Withdrawn, 1, None, 2),
                    record(1, Consent, Granted, 1, Some(9), 2),
                ],
                false,
                t(5),
                no(Reason::Withdrawn),
            ),
        ];
        let mut reasons_seen = std::collections::BTreeSet::new();
        let mut bases_seen = std::collections::BTreeSet::new();
        for (case, purpose, records, erased, at, expected) in cases {
            let got = eligible(purpose, &records, erased, at);
            assert_eq!(got, expected, "{case}");
            // The facts alone (what event ingestion loads) decide the same.
            let facts: Vec<RecordFacts> = records.iter().map(RecordFacts::from).collect();
            assert_eq!(
                eligible(purpose, &facts, erased, at),
                expected,
                "{case} (facts)"
            );
            match got {
                Eligibility::Eligible(proof) => {
                    bases_seen.insert(proof.basis);
                }
                Eligibility::Ineligible(reason) => {
                    reasons_seen.insert(reason);
                }
            }
        }
        assert_eq!(
            reasons_seen.len(),
            Reason::ALL.len(),
            "every reason code is covered"
        );
        assert_eq!(
            bases_seen.len(),
            LegalBasis::ALL.len(),
            "every basis is covered"
        );
    }
}
