//! Ledger reduction: the consent records of a subject with no purpose left,
//! once the proof-keeping period has passed since its last record, keep only
//! what proves the consent history (id, pseudonym, purpose, basis, status,
//! notice id and version, effective_from, collected_at) and lose their free
//! text (`proof_ref`, and `source_method`, which becomes [`REDUCED_METHOD`]).

use chrono::{DateTime, Duration, Utc};

use crate::consent::ConsentStatus;

/// The proof-keeping period's default, in days (three years).
pub const DEFAULT_PROOF_KEEPING_DAYS: u32 = 1095;

/// What a reduced record's `source_method` says.
pub const REDUCED_METHOD: &str = "reduced";

/// The latest record (by `effective_from`, then id) of a subject for one purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestRecord {
    pub status: ConsentStatus,
    pub expires_at: Option<DateTime<Utc>>,
}

impl LatestRecord {
    /// A purpose is left to the subject while its latest record for it is a
    /// grant that has not expired at `as_of`; a denial, a withdrawal, an
    /// objection or an expired grant leaves none.
    pub fn purpose_left(&self, as_of: DateTime<Utc>) -> bool {
        self.status == ConsentStatus::Granted && self.expires_at.is_none_or(|end| end > as_of)
    }
}

/// True when a subject's records are reduced at `as_of`: no purpose is left
/// (every purpose's latest record leaves none), and its last record was
/// recorded longer ago than `proof_keeping_days`.
pub fn reducible(
    latest: &[LatestRecord],
    last_recorded: DateTime<Utc>,
    as_of: DateTime<Utc>,
    proof_keeping_days: u32,
) -> bool {
    !latest.is_empty()
        && latest.iter().all(|r| !r.purpose_left(as_of))
        && last_recorded < as_of - Duration::days(i64::from(proof_keeping_days))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::days(day)
    }

    fn record(status: ConsentStatus, expires: Option<i64>) -> LatestRecord {
        LatestRecord {
            status,
            expires_at: expires.map(at),
        }
    }

    #[test]
    fn only_subjects_with_no_purpose_left_past_the_proof_period_are_reduced() {
        let now = at(5_000);
        let old = at(5_000 - 1_096);
        let withdrawn = record(ConsentStatus::Withdrawn, None);
        let expired = record(ConsentStatus::Granted, Some(4_000));
        let granted = record(ConsentStatus::Granted, None);
        let later = record(ConsentStatus::Granted, Some(6_000));
        assert!(reducible(
            &[withdrawn.clone(), expired.clone()],
            old,
            now,
            1095
        ));
        assert!(reducible(
            &[record(ConsentStatus::Denied, None)],
            old,
            now,
            1095
        ));
        assert!(reducible(
            &[record(ConsentStatus::Objected, None)],
            old,
            now,
            1095
        ));
        assert!(!reducible(&[withdrawn.clone(), granted], old, now, 1095));
        assert!(!reducible(&[withdrawn.clone(), later], old, now, 1095));
        assert!(!reducible(
            std::slice::from_ref(&withdrawn),
            at(5_000 - 1_094),
            now,
            1095
        ));
        assert!(!reducible(&[], old, now, 1095));
    }
}
