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

/// What a request says about the person besides the ledger: signals that
/// hold for that one call and are not stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Signals {
    /// The browser sent `Sec-GPC: 1` (Global Privacy Control), forwarded by
    /// the shop: an objection to processing on legitimate interest.
    pub global_privacy_control: bool,
}

/// [`eligible_under`] without request signals: what the ledger alone decides.
pub fn eligible<R: LedgerFacts>(
    purpose: &Purpose,
    records: &[R],
    erased: bool,
    at: DateTime<Utc>,
) -> Eligibility {
    eligible_under(purpose, records, erased, at, Signals::default())
}

/// Decides whether a subject may be used for `purpose` at `at`, given the
/// request's `signals` (a GPC signal refuses a subject whose basis is
/// legitimate interest, as `objected`; consent is unaffected).
///
/// `records` are every ledger record of the subject for this purpose, in any
/// order; `erased` says whether the subject has a pending or executed erasure.
/// The record in force is the latest by effective time (ties: the later
/// appended) among those effective at `at`.
pub fn eligible_under<R: LedgerFacts>(
    purpose: &Purpose,
    records: &[R],
    erased: bool,
    at: DateTime<Utc>,
    signals: Signals,
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
            if signals.global_privacy_control {
                return Ineligible(Reason::Objected);
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
mod tests;
