//! The results' aggregates, maintained as assignments, events,
//! withdrawals, objections, erasures and purges are written, equal a full
//! recomputation from the raw rows after any random sequence of them, from
//! one worker and from several at once. Runs on SQLite and PostgreSQL.

use chrono::{Duration, Utc};
use pilotgate_domain::Actor;
use pilotgate_domain::Role;
use pilotgate_domain::consent::{Channel, ConsentDraft, ConsentStatus};
use pilotgate_domain::experiment::{Action, Design, Metric, MetricKind};
use pilotgate_domain::pseudonym::{Pseudonym, PseudonymKey};
use pilotgate_domain::purpose::{LegalBasis, PurposeKey};
use pilotgate_store::testing::{
    POSTGRES_URL_VAR, TestDb, buy_design, consent_purpose, start_pilot,
};
use pilotgate_store::{Dialect, EventDraft, Store, StoreError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SUBJECTS: usize = 40;
/// Only these first subjects are ever erased.
const ERASABLE: usize = 6;

/// The pilot under test: a binary primary metric, the same event summed,
/// a second event summed, and a one-hour attribution window.
fn measured_design() -> Design {
    let mut design = buy_design("agg", "personalize.content", 0.9);
    design.guardrails = vec![
        Metric {
            event: "spend".to_owned(),
            kind: MetricKind::Sum,
        },
        Metric {
            event: "buy".to_owned(),
            kind: MetricKind::Sum,
        },
    ];
    design.attribution_window_hours = Some(1);
    design
}

async fn pilots(store: &Store) {
    store
        .create_purpose(
            &consent_purpose("personalize.content", 1),
            &Actor::operator(),
        )
        .await
        .unwrap();
    start_pilot(store, &measured_design()).await;
    start_pilot(store, &buy_design("old", "personalize.content", 1.0)).await;
}

async fn assert_no_drift(store: &Store, when: &str) {
    for key in ["agg", "old"] {
        let drift = store.aggregate_drift(key).await.unwrap();
        assert!(
            drift.is_empty(),
            "{when}: the aggregates of {key} differ from a recomputation:\n{}",
            drift.join("\n")
        );
    }
}

/// The Lee bounds' outcome distribution of each metric of `agg` equals the
/// one counted here from its raw assignments and events.
async fn assert_distributions_match_the_raw_rows(store: &Store) {
    let design = measured_design();
    let window = chrono::Duration::hours(1);
    let assignments = store.assignments_of("agg").await.unwrap();
    let events = store.events_of("agg").await.unwrap();
    for metric in std::iter::once(&design.primary_metric).chain(&design.guardrails) {
        let mut expected: std::collections::BTreeMap<(String, u64), u64> = Default::default();
        for a in assignments.iter().filter(|a| a.withdrawn_at.is_none()) {
            let mine = events.iter().filter(|e| {
                e.subject == a.subject
                    && e.name == metric.event
                    && e.occurred_at >= a.assigned_at
                    && e.occurred_at < a.assigned_at + window
            });
            let y = match metric.kind {
                MetricKind::Binary => f64::from(u8::from(mine.count() > 0)),
                MetricKind::Sum => mine.map(|e| e.value.unwrap_or(0.0)).sum(),
            };
            *expected
                .entry((a.variant.clone(), (y + 0.0).to_bits()))
                .or_default() += 1;
        }
        let found: std::collections::BTreeMap<(String, u64), u64> = store
            .outcome_distribution("agg", metric)
            .await
            .unwrap()
            .into_iter()
            .map(|(variant, y, n)| ((variant, (y + 0.0).to_bits()), n))
            .collect();
        assert_eq!(found, expected, "the distribution of {metric:?}");
    }
}

/// One random operation on subject `user{index}`.
async fn operate(
    store: &Store,
    rng: &mut StdRng,
    key: &PseudonymKey,
    tag: &str,
) -> Result<(), StoreError> {
    let index = rng.random_range(0..SUBJECTS);
    let subject: Pseudonym = key.pseudonymize(&format!("user{index}"));
    let now = Utc::now();
    let roll = rng.random_range(0..100);
    match roll {
        0..=24 => {
            let status = match roll {
                0..=15 => ConsentStatus::Granted,
                16..=20 => ConsentStatus::Withdrawn,
                _ => ConsentStatus::Objected,
            };
            let record = ConsentDraft {
                subject,
                purpose: PurposeKey::parse("personalize.content").unwrap(),
                basis: LegalBasis::Consent,
                status,
                notice_id: "pn".to_owned(),
                notice_version: 1,
                channel: Channel::Api,
                method: format!("op-{tag}"),
                collected_at: now,
                effective_from: None,
                expires_at: None,
                proof_ref: None,
            }
            .finish(now)
            .unwrap();
            store
                .append_consents(&[record], &Actor::operator())
                .await
                .map(|_| ())
        }
        25..=26 if index < ERASABLE => {
            match store
                .erase_subject(subject.as_str(), 1, &Actor::operator())
                .await
            {
                Err(StoreError::Conflict(_)) => Ok(()),
                other => other.map(|_| ()),
            }
        }
        27..=49 => {
            let pilot = if rng.random_bool(0.7) { "agg" } else { "old" };
            let Some(target) = store.assignment_target(pilot).await? else {
                return Ok(());
            };
            // Some assignments two hours back, so that events now fall
            // outside the one-hour window.
            let at = if rng.random_bool(0.3) {
                now - Duration::hours(2)
            } else {
                now
            };
            store
                .assign(&target, std::slice::from_ref(&subject), at)
                .await
                .map(|_| ())
        }
        _ => {
            // A batch of one to four events of the subject, some before its
            // assignment, some repeated (a retry, in the batch or later).
            let count = rng.random_range(1..=4);
            let mut events = Vec::with_capacity(count);
            for n in 0..count {
                let name = ["buy", "spend", "view"][rng.random_range(0..3)];
                let value = rng
                    .random_bool(0.8)
                    .then(|| f64::from(rng.random_range(-4..20)) * 0.5);
                let occurred_at = if rng.random_bool(0.15) {
                    now - Duration::hours(3)
                } else {
                    now - Duration::seconds(rng.random_range(0..5))
                };
                let event_id = if rng.random_bool(0.1) {
                    format!("retry-{index}-{}", rng.random_range(0..3))
                } else {
                    format!("{tag}-{n}")
                };
                events.push(EventDraft {
                    event_id,
                    subjects: vec![subject.as_str().to_owned()],
                    name: name.to_owned(),
                    value,
                    occurred_at,
                });
            }
            if rng.random_bool(0.1) {
                events.push(events[0].clone());
            }
            store.record_events(events).await.map(|_| ())
        }
    }
}

async fn worker(store: Store, seed: u64, operations: usize) {
    let key = PseudonymKey::new(1, vec![4; 32]).unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..operations {
        operate(&store, &mut rng, &key, &format!("{seed}-{i}"))
            .await
            .expect("every operation succeeds");
    }
}

/// The story: random operations from one worker and from several, a
/// purge, a rebuild; the aggregates checked against a recomputation between.
async fn story(db: TestDb) {
    let store = &db.store;
    pilots(store).await;
    // One worker, checked every 100 operations.
    let key = PseudonymKey::new(1, vec![4; 32]).unwrap();
    let mut rng = StdRng::seed_from_u64(25);
    for i in 0..600 {
        operate(store, &mut rng, &key, &format!("solo-{i}"))
            .await
            .expect("every operation succeeds");
        if i % 100 == 99 {
            assert_no_drift(store, &format!("after {} operations", i + 1)).await;
        }
    }
    let results = store
        .daily_outcome_sums("agg", &measured_design().guardrails)
        .await
        .unwrap();
    assert!(
        results
            .iter()
            .any(|day| day.per_metric.iter().any(|(sum, _)| *sum != 0.0)),
        "the sequence attributed some events: {results:?}"
    );
    assert_distributions_match_the_raw_rows(store).await;
    // Several workers at once.
    let workers: Vec<_> = (0..3)
        .map(|w| tokio::spawn(worker(store.clone(), 100 + w, 150)))
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    assert_no_drift(store, "after the concurrent workers").await;
    assert_distributions_match_the_raw_rows(store).await;
    // A purge takes the pilot's aggregates with its raw rows; the other
    // pilot keeps going.
    store
        .transition_experiment("old", Action::Stop, &Actor::token("mia", Role::Marketer))
        .await
        .unwrap();
    store
        .purge_pilot("old", "{}", &Actor::operator(), serde_json::json!({}))
        .await
        .unwrap();
    worker(store.clone(), 7, 200).await;
    assert_no_drift(store, "after the purge").await;
    assert!(store.assignment_counts("old").await.unwrap().is_empty());
    // A rebuild changes nothing.
    store.rebuild_aggregates().await.unwrap();
    assert_no_drift(store, "after a rebuild").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintained_aggregates_equal_a_recomputation_on_sqlite() {
    story(TestDb::new(Dialect::Sqlite).await.expect("sqlite")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintained_aggregates_equal_a_recomputation_on_postgres() {
    match TestDb::new(Dialect::Postgres).await {
        Some(db) => story(db).await,
        None => eprintln!("skipped: set {POSTGRES_URL_VAR} to run on PostgreSQL"),
    }
}

/// The same story on a PostgreSQL database whose events and assignments
/// were partitioned by pilot (`migrations/partitioning/postgres_by_pilot.sql`)
/// after the pilots and some of their rows were stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintained_aggregates_equal_a_recomputation_on_postgres_partitioned_by_pilot() {
    let Some(db) = TestDb::new(Dialect::Postgres).await else {
        eprintln!("skipped: set {POSTGRES_URL_VAR} to run on PostgreSQL");
        return;
    };
    let script = include_str!("../../../migrations/partitioning/postgres_by_pilot.sql");
    db.execute_script(script)
        .await
        .expect("the partitioning script runs on a migrated database");
    let partitioned = db
        .count_raw("SELECT COUNT(*) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid WHERE c.relname IN ('events', 'assignments')")
        .await
        .unwrap();
    assert_eq!(partitioned, 2, "events and assignments are partitioned");
    story(db).await;
}

/// A database upgraded to migration 0018 holds rows without aggregates: the
/// first start after it builds them, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_after_the_upgrade_builds_the_aggregates_of_older_rows() {
    for dialect in [Dialect::Sqlite, Dialect::Postgres] {
        let Some(db) = TestDb::new(dialect).await else {
            eprintln!("skipped: set {POSTGRES_URL_VAR} to run on PostgreSQL");
            continue;
        };
        let store = &db.store;
        pilots(store).await;
        worker(store.clone(), 3, 300).await;
        let before = store.assignment_counts("agg").await.unwrap();
        assert!(!before.is_empty());
        // As migration 0018 finds a database: rows, no aggregates.
        for table in [
            "assignment_cells",
            "withdrawal_cells",
            "outcome_cells",
            "subject_outcomes",
        ] {
            db.execute_raw(&format!("DELETE FROM {table}"))
                .await
                .unwrap();
        }
        db.execute_raw("UPDATE aggregates_state SET rebuild_pending = 1")
            .await
            .unwrap();
        assert!(store.assignment_counts("agg").await.unwrap().is_empty());
        store.migrate().await.unwrap();
        assert_eq!(store.assignment_counts("agg").await.unwrap(), before);
        assert_no_drift(store, "after the first start").await;
        let pending = db
            .count_raw("SELECT rebuild_pending FROM aggregates_state")
            .await
            .unwrap();
        assert_eq!(pending, 0, "built once");
    }
}
