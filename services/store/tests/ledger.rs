//! The consent ledger, purposes, eligibility lookups, erasure and the
//! legal-basis map, on SQLite and (when configured) PostgreSQL.

use chrono::{DateTime, Duration, TimeZone, Utc};
use pilotgate_domain::Actor;
use pilotgate_domain::consent::{Channel, ConsentDraft, ConsentStatus, NewConsent};
use pilotgate_domain::eligibility::{Eligibility, Reason};
use pilotgate_domain::pseudonym::PseudonymKey;
use pilotgate_domain::purpose::{LegalBasis, Purpose, PurposeKey};
use pilotgate_store::testing::TestDb;
use pilotgate_store::{AuditQuery, StoreError, storage_story};

fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, d, 9, 0, 0).unwrap()
}

fn purpose(key: &str, bases: &[LegalBasis], min_notice: u32) -> Purpose {
    Purpose {
        key: PurposeKey::parse(key).unwrap(),
        description: "test purpose".to_owned(),
        allowed_bases: bases.iter().copied().collect(),
        min_notice_version: min_notice,
        special_category: false,
        li_assessment_ref: Some("LIA-2026-01".to_owned()),
        contract_necessary: false,
        retention_days: 90,
    }
}

fn consent(
    user: &str,
    purpose: &str,
    basis: LegalBasis,
    status: ConsentStatus,
    at: DateTime<Utc>,
    notice: u32,
) -> NewConsent {
    ConsentDraft {
        subject: PseudonymKey::new(1, vec![9; 32])
            .unwrap()
            .pseudonymize(user),
        purpose: PurposeKey::parse(purpose).unwrap(),
        basis,
        status,
        notice_id: "privacy-notice".to_owned(),
        notice_version: notice,
        channel: Channel::Banner,
        method: "click".to_owned(),
        collected_at: at,
        effective_from: None,
        expires_at: None,
        proof_ref: Some("s3://proofs/1".to_owned()),
    }
    .finish(at + Duration::hours(1))
    .unwrap()
}

async fn register(db: &TestDb) {
    let actor = Actor::operator();
    db.store
        .create_purpose(
            &purpose("personalize.content", &[LegalBasis::Consent], 2),
            &actor,
        )
        .await
        .unwrap();
    db.store
        .create_purpose(
            &purpose(
                "analytics.reporting.ab_testing",
                &[LegalBasis::Consent, LegalBasis::LegitimateInterest],
                1,
            ),
            &actor,
        )
        .await
        .unwrap();
}

storage_story!(purposes_are_registered_once_and_read_back, |db| {
    register(&db).await;
    let listed = db.store.list_purposes().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[1],
        purpose("personalize.content", &[LegalBasis::Consent], 2)
    );
    let again = db
        .store
        .create_purpose(&listed[0], &Actor::operator())
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert!(db.store.purpose("nope.nope").await.unwrap().is_none());
    let trail = db
        .store
        .list_audit(&AuditQuery {
            target: Some("purpose:personalize.content".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].action, "purpose.create");
});

storage_story!(the_same_record_twice_is_stored_once, |db| {
    register(&db).await;
    let record = consent(
        "alice@example.com",
        "personalize.content",
        LegalBasis::Consent,
        ConsentStatus::Granted,
        day(1),
        2,
    );
    let other = consent(
        "bob@example.com",
        "personalize.content",
        LegalBasis::Consent,
        ConsentStatus::Granted,
        day(1),
        2,
    );
    let first = db
        .store
        .append_consents(
            &[record.clone(), other.clone(), record.clone()],
            &Actor::operator(),
        )
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|a| a.duplicate).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert_eq!(first[0].id, first[2].id);
    let second = db
        .store
        .append_consents(std::slice::from_ref(&record), &Actor::operator())
        .await
        .unwrap();
    assert!(second[0].duplicate);
    assert_eq!(second[0].id, first[0].id);
    let history = db
        .store
        .consent_history(std::slice::from_ref(&record.subject))
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].recorded_by, "operator (cli)");
    assert_eq!(
        history[0].expires_at,
        Some(Utc.with_ymd_and_hms(2027, 7, 1, 9, 0, 0).unwrap())
    );
});

storage_story!(eligibility_follows_the_ledger_at_once, |db| {
    register(&db).await;
    let personalize = db
        .store
        .purpose("personalize.content")
        .await
        .unwrap()
        .unwrap();
    let grant = consent(
        "carol",
        "personalize.content",
        LegalBasis::Consent,
        ConsentStatus::Granted,
        day(1),
        2,
    );
    let subjects = vec![grant.subject.clone()];
    assert_eq!(
        db.store
            .eligibility(&subjects, &personalize, day(2))
            .await
            .unwrap(),
        Eligibility::Ineligible(Reason::NoRecord)
    );
    let stored = db
        .store
        .append_consents(&[grant], &Actor::operator())
        .await
        .unwrap();
    let outcome = db
        .store
        .eligibility(&subjects, &personalize, day(2))
        .await
        .unwrap();
    match outcome {
        Eligibility::Eligible(proof) => assert_eq!(proof.record_id, stored[0].id),
        other => panic!("expected eligible, got {other:?}"),
    }
    let withdrawal = consent(
        "carol",
        "personalize.content",
        LegalBasis::Consent,
        ConsentStatus::Withdrawn,
        day(3),
        2,
    );
    db.store
        .append_consents(&[withdrawal], &Actor::operator())
        .await
        .unwrap();
    assert_eq!(
        db.store
            .eligibility(&subjects, &personalize, day(4))
            .await
            .unwrap(),
        Eligibility::Ineligible(Reason::Withdrawn)
    );
    // The past stays as it was: before the withdrawal took effect the subject was eligible.
    assert!(
        db.store
            .eligibility(&subjects, &personalize, day(2))
            .await
            .unwrap()
            .is_eligible()
    );
});

storage_story!(
    erasure_deletes_assignments_and_events_keeps_the_ledger_and_blocks_the_subject,
    |db| {
        register(&db).await;
        let grant = consent(
            "dave",
            "personalize.content",
            LegalBasis::Consent,
            ConsentStatus::Granted,
            day(1),
            2,
        );
        let subject = grant.subject.clone();
        db.store
            .append_consents(&[grant], &Actor::operator())
            .await
            .unwrap();
        db.execute_raw(
        "INSERT INTO experiments (key, name, hypothesis, owner, purpose, state, coverage, seed, primary_event, primary_kind, \
         guardrails, mde, alpha, power, data_categories, retention_days, design_version, created_by, created_at, updated_at) \
         VALUES ('e1', 'E', 'h', 'o', 'personalize.content', 'running', 1.0, 's', 'buy', 'binary', '[]', 0.1, 0.05, 0.8, '[]', 30, 1, 'm', 0, 0)",
    )
    .await
    .unwrap();
        db.execute_raw(&format!(
        "INSERT INTO assignments (experiment_key, subject, key_version, variant, assigned_at, basis) VALUES ('e1', '{subject}', 1, 'control', 1, 'consent')"
    ))
    .await
    .unwrap();
        for i in 0..3 {
            db.execute_raw(&format!(
            "INSERT INTO events (experiment_key, event_id, subject, name, occurred_at, received_at) VALUES ('e1', 'ev{i}', '{subject}', 'buy', 2, 2)"
        ))
        .await
        .unwrap();
        }
        let receipt = db
            .store
            .erase_subject(&subject, 1, &Actor::operator())
            .await
            .unwrap();
        assert_eq!(
            (receipt.deleted.assignments, receipt.deleted.events),
            (1, 3)
        );
        assert_eq!(
            db.store
                .consent_history(std::slice::from_ref(&subject))
                .await
                .unwrap()
                .len(),
            1,
            "the ledger is kept as proof"
        );
        let personalize = db
            .store
            .purpose("personalize.content")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            db.store
                .eligibility(std::slice::from_ref(&subject), &personalize, day(2))
                .await
                .unwrap(),
            Eligibility::Ineligible(Reason::Erased)
        );
        let entry = &db
            .store
            .list_audit(&AuditQuery {
                after: Some(receipt.audit_id - 1),
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap()[0];
        assert_eq!(entry.action, "subject.erase");
        assert!(entry.details.contains("\"events\":3"), "{}", entry.details);
        let again = db
            .store
            .erase_subject(&subject, 1, &Actor::operator())
            .await;
        assert!(matches!(again, Err(StoreError::Conflict(_))));
        assert!(db.store.verify_audit_chain(None).await.unwrap().ok);
    }
);

storage_story!(
    the_legal_basis_map_counts_current_states_and_reconsent_needs,
    |db| {
        register(&db).await;
        use ConsentStatus::*;
        use LegalBasis::*;
        let records = vec![
            consent("u1", "personalize.content", Consent, Granted, day(1), 2),
            consent("u2", "personalize.content", Consent, Granted, day(1), 1), // stale notice
            consent("u3", "personalize.content", Consent, Granted, day(1), 2),
            consent("u3", "personalize.content", Consent, Withdrawn, day(2), 2),
            consent("u4", "personalize.content", Consent, Denied, day(1), 2),
            consent(
                "u5",
                "analytics.reporting.ab_testing",
                LegitimateInterest,
                Granted,
                day(1),
                0,
            ),
            consent(
                "u6",
                "analytics.reporting.ab_testing",
                LegitimateInterest,
                Objected,
                day(1),
                0,
            ),
        ];
        db.store
            .append_consents(&records, &Actor::operator())
            .await
            .unwrap();
        let map = db.store.legal_basis_map(day(5)).await.unwrap();
        let count = |purpose: &str, basis: &str, status: &str| {
            map.counts
                .iter()
                .find(|c| c.purpose == purpose && c.basis == basis && c.status == status)
                .map_or(0, |c| c.subjects)
        };
        assert_eq!(count("personalize.content", "consent", "granted"), 2);
        assert_eq!(count("personalize.content", "consent", "withdrawn"), 1);
        assert_eq!(count("personalize.content", "consent", "denied"), 1);
        assert_eq!(
            count(
                "analytics.reporting.ab_testing",
                "legitimate_interest",
                "granted"
            ),
            1
        );
        assert_eq!(
            count(
                "analytics.reporting.ab_testing",
                "legitimate_interest",
                "objected"
            ),
            1
        );
        let personalize = map
            .reconsent
            .iter()
            .find(|r| r.purpose == "personalize.content")
            .unwrap();
        assert_eq!((personalize.expired, personalize.stale_notice), (0, 1));
        // Fourteen months later every consent has expired.
        let later = db
            .store
            .legal_basis_map(day(1) + Duration::days(430))
            .await
            .unwrap();
        let personalize = later
            .reconsent
            .iter()
            .find(|r| r.purpose == "personalize.content")
            .unwrap();
        assert_eq!(personalize.expired, 2);
    }
);

storage_story!(
    what_is_held_about_a_person_is_read_per_pseudonym_with_proof_and_counts,
    |db| {
        register(&db).await;
        let grant = consent(
            "erin",
            "personalize.content",
            LegalBasis::Consent,
            ConsentStatus::Granted,
            day(1),
            2,
        );
        let subject = grant.subject.clone();
        let other = "b".repeat(64);
        let record = db
            .store
            .append_consents(&[grant], &Actor::operator())
            .await
            .unwrap()[0]
            .id;
        for key in ["e1", "e2"] {
            db.execute_raw(&format!(
                "INSERT INTO experiments (key, name, hypothesis, owner, purpose, state, coverage, seed, primary_event, primary_kind, \
                 guardrails, mde, alpha, power, data_categories, retention_days, design_version, created_by, created_at, updated_at) \
                 VALUES ('{key}', 'E', 'h', 'o', 'personalize.content', 'running', 1.0, 's', 'buy', 'binary', '[]', 0.1, 0.05, 0.8, '[]', 30, 1, 'm', 0, 0)"
            ))
            .await
            .unwrap();
            for who in [&subject, &other] {
                db.execute_raw(&format!(
                    "INSERT INTO assignments (experiment_key, subject, key_version, variant, assigned_at, basis, consent_record_id, notice_version) \
                     VALUES ('{key}', '{who}', 1, 'control', 1, 'consent', {record}, 2)"
                ))
                .await
                .unwrap();
            }
        }
        // Three events of erin's in e1, none in e2; one of someone else's in e1.
        for (i, who) in [&subject, &subject, &subject, &other].iter().enumerate() {
            db.execute_raw(&format!(
                "INSERT INTO events (experiment_key, event_id, subject, name, occurred_at, received_at) VALUES ('e1', 'ev{i}', '{who}', 'buy', 2, 2)"
            ))
            .await
            .unwrap();
        }
        let subjects = std::slice::from_ref(&subject);
        let assignments = db.store.assignments_of_subjects(subjects).await.unwrap();
        assert_eq!(assignments.len(), 2);
        assert!(assignments.iter().all(|a| a.subject == subject
            && a.consent_record_id == Some(record)
            && a.notice_version == Some(2)
            && a.basis == LegalBasis::Consent));
        let counts = db.store.event_counts_of_subjects(subjects).await.unwrap();
        assert_eq!(counts.len(), 1, "{counts:?}");
        assert_eq!(
            (counts[0].experiment_key.as_str(), counts[0].events),
            ("e1", 3)
        );
        assert!(
            db.store
                .erasures_of_subjects(subjects)
                .await
                .unwrap()
                .is_empty()
        );
        let receipt = db
            .store
            .erase_subject(&subject, 1, &Actor::operator())
            .await
            .unwrap();
        let erasures = db.store.erasures_of_subjects(subjects).await.unwrap();
        assert_eq!(erasures.len(), 1);
        assert_eq!(
            (
                erasures[0].deleted_assignments,
                erasures[0].deleted_events,
                erasures[0].audit_id
            ),
            (2, 3, Some(receipt.audit_id))
        );
        assert!(
            db.store
                .assignments_of_subjects(subjects)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            db.store.person_of(&subject, 1).await.unwrap(),
            [(subject.clone(), 1)],
            "no other pseudonym is linked"
        );
        assert_eq!(
            db.store
                .event_counts_of_subjects(std::slice::from_ref(&other))
                .await
                .unwrap()[0]
                .events,
            1,
            "someone else's events stay"
        );
    }
);
