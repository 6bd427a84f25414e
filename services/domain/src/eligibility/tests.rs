//! Tests of `eligibility`.

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

#[test]
fn a_gpc_signal_refuses_legitimate_interest_as_objected_and_leaves_consent_alone() {
    let gpc = Signals {
        global_privacy_control: true,
    };
    let interest = [record(1, LegitimateInterest, Granted, 1, None, 2)];
    let consent = [record(2, Consent, Granted, 1, None, 2)];
    assert!(eligible(&all_bases(), &interest, false, t(2)).is_eligible());
    assert_eq!(
        eligible_under(&all_bases(), &interest, false, t(2), gpc),
        Eligibility::Ineligible(Reason::Objected)
    );
    assert_eq!(
        eligible_under(&all_bases(), &consent, false, t(2), gpc),
        eligible(&all_bases(), &consent, false, t(2))
    );
    assert!(eligible_under(&all_bases(), &consent, false, t(2), gpc).is_eligible());
}
