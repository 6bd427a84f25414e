//! Random interleavings of grant, withdraw, object, erase, assign and event,
//! from concurrent workers, never leave an assignment or event whose subject
//! was ineligible when it was decided. Runs on SQLite and PostgreSQL.

use std::collections::HashMap;

use chrono::Utc;
use pilotgate_domain::Actor;
use pilotgate_domain::consent::{Channel, ConsentDraft, ConsentRecord, ConsentStatus};
use pilotgate_domain::eligibility::{Eligibility, eligible};
use pilotgate_domain::pseudonym::{Pseudonym, PseudonymKey};
use pilotgate_domain::purpose::{LegalBasis, Purpose, PurposeKey};
use pilotgate_store::testing::{buy_design, consent_purpose, start_pilot};
use pilotgate_store::{EventDraft, Store, StoreError, storage_story};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const WORKERS: u64 = 4;
const OPERATIONS_PER_WORKER: usize = 400;
const SUBJECTS: usize = 30;
/// Only these first subjects are ever erased, so the rest keep producing assignments and events.
const ERASABLE: usize = 4;

fn purpose() -> Purpose {
    consent_purpose("personalize.content", 2)
}

async fn running_pilot(store: &Store) {
    store
        .create_purpose(&purpose(), &Actor::operator())
        .await
        .unwrap();
    start_pilot(store, &buy_design("prop", "personalize.content", 0.9)).await;
}

async fn worker(store: Store, seed: u64, key: PseudonymKey) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let target = store.assignment_target("prop").await.unwrap().unwrap();
    let mut operations = 0;
    for i in 0..OPERATIONS_PER_WORKER {
        let index = rng.random_range(0..SUBJECTS);
        let user = format!("user{index}");
        let subject: Pseudonym = key.pseudonymize(&user);
        let roll = rng.random_range(0..100);
        let result: Result<(), StoreError> = async {
            match roll {
                0..=39 => {
                    let status = match roll {
                        0..=24 => ConsentStatus::Granted,
                        25..=34 => ConsentStatus::Withdrawn,
                        _ => ConsentStatus::Objected,
                    };
                    // Some grants under a notice older than the purpose requires.
                    let notice_version = if rng.random_bool(0.2) { 1 } else { 2 };
                    let record = ConsentDraft {
                        subject: subject.clone(),
                        purpose: PurposeKey::parse("personalize.content").unwrap(),
                        basis: LegalBasis::Consent,
                        status,
                        notice_id: "pn".to_owned(),
                        notice_version,
                        channel: Channel::Api,
                        method: format!("op-{seed}-{i}"),
                        collected_at: Utc::now(),
                        effective_from: None,
                        expires_at: None,
                        proof_ref: None,
                    }
                    .finish(Utc::now())
                    .unwrap();
                    store
                        .append_consents(&[record], &Actor::operator())
                        .await
                        .map(|_| ())
                }
                40..=41 if index < ERASABLE => match store
                    .erase_subject(subject.as_str(), 1, &Actor::operator())
                    .await
                {
                    Err(StoreError::Conflict(_)) => Ok(()),
                    other => other.map(|_| ()),
                },
                42..=74 => store
                    .assign(&target, std::slice::from_ref(&subject), Utc::now())
                    .await
                    .map(|_| ()),
                _ => {
                    let event = EventDraft {
                        event_id: format!("{seed}-{i}"),
                        subjects: vec![subject.as_str().to_owned()],
                        name: "buy".to_owned(),
                        value: None,
                        occurred_at: Utc::now(),
                    };
                    store.record_events(vec![event]).await.map(|_| ())
                }
            }
        }
        .await;
        result.expect("every operation succeeds");
        operations += 1;
    }
    operations
}

/// What the server knew at `decided_at`: the records stored before it, and whether an erasure happened before it.
fn decide_again(
    records: &[ConsentRecord],
    erasures: &HashMap<String, chrono::DateTime<Utc>>,
    subject: &str,
    decided_at: chrono::DateTime<Utc>,
    at: chrono::DateTime<Utc>,
) -> Eligibility {
    let known: Vec<ConsentRecord> = records
        .iter()
        .filter(|r| r.subject == subject && r.recorded_at <= decided_at)
        .cloned()
        .collect();
    let erased = erasures.get(subject).is_some_and(|t| *t <= decided_at);
    eligible(&purpose(), &known, erased, at)
}

storage_story!(
    random_interleavings_never_store_an_ineligible_assignment_or_event,
    |db| {
        running_pilot(&db.store).await;
        let key = PseudonymKey::new(1, vec![4; 32]).unwrap();
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| tokio::spawn(worker(db.store.clone(), 1000 + w, key.clone())))
            .collect();
        let mut operations = 0;
        for worker in workers {
            operations += worker.await.unwrap();
        }
        assert_eq!(operations, WORKERS as usize * OPERATIONS_PER_WORKER);

        let subjects: Vec<String> = (0..SUBJECTS)
            .map(|i| key.pseudonymize(&format!("user{i}")).as_str().to_owned())
            .collect();
        let records = db.store.consent_history(&subjects).await.unwrap();
        let erasures: HashMap<String, _> = db.store.erasures().await.unwrap().into_iter().collect();
        let assignments = db.store.assignments_of("prop").await.unwrap();
        let events = db.store.events_of("prop").await.unwrap();
        assert!(
            !assignments.is_empty() && !events.is_empty(),
            "the mix exercised both paths"
        );
        for assignment in &assignments {
            match decide_again(
                &records,
                &erasures,
                &assignment.subject,
                assignment.assigned_at,
                assignment.assigned_at,
            ) {
                Eligibility::Eligible(proof) => assert_eq!(
                    Some(proof.record_id),
                    assignment.consent_record_id,
                    "the proof names the record in force"
                ),
                Eligibility::Ineligible(reason) => {
                    panic!("an assignment was stored for an ineligible subject ({reason:?})")
                }
            }
            assert!(
                !erasures.contains_key(&assignment.subject),
                "an erased subject kept an assignment"
            );
        }
        for event in &events {
            let decision = decide_again(
                &records,
                &erasures,
                &event.subject,
                event.received_at,
                event.occurred_at,
            );
            assert!(
                decision.is_eligible(),
                "an event was stored for an ineligible subject: {decision:?}"
            );
            assert!(
                !erasures.contains_key(&event.subject),
                "an erased subject kept an event"
            );
        }
        // Every withdrawal or objection marked the assignments it touched.
        for assignment in &assignments {
            let later_refusal = records.iter().any(|r| {
                r.subject == assignment.subject
                    && r.status != ConsentStatus::Granted
                    && r.recorded_at > assignment.assigned_at
            });
            if later_refusal {
                assert!(
                    assignment.withdrawn_at.is_some(),
                    "a withdrawal after the assignment did not mark it"
                );
            }
        }
    }
);
