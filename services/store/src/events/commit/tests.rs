//! Tests of `commit`.

use chrono::Utc;
use pilotgate_domain::Actor;
use pilotgate_domain::consent::ConsentStatus;

use pilotgate_domain::eligibility::Reason;

use super::*;
use crate::testing::{
    TestDb, buy_design, consent_purpose, consent_record as record, pseudonym, start_pilot,
};
use crate::{Dialect, Store};

fn events_context(store: &Store) -> EventsContext {
    store.ingest.context(&store.core)
}

/// A running pilot that measures `buy`, and `user` granted and assigned in it.
async fn assigned(store: &Store, user: &str) -> EventDraft {
    let operator = Actor::operator();
    let purpose = consent_purpose("personalize.content", 1);
    store.create_purpose(&purpose, &operator).await.unwrap();
    start_pilot(store, &buy_design("ahead", "personalize.content", 1.0)).await;
    store
        .append_consents(&[record(user, ConsentStatus::Granted)], &operator)
        .await
        .unwrap();
    let subject = pseudonym(user);
    let target = store.assignment_target("ahead").await.unwrap().unwrap();
    store
        .assign(&target, std::slice::from_ref(&subject), Utc::now())
        .await
        .unwrap();
    EventDraft {
        event_id: "e1".to_owned(),
        subjects: vec![subject.as_str().to_owned()],
        name: "buy".to_owned(),
        value: None,
        occurred_at: Utc::now(),
    }
}

#[tokio::test]
async fn a_decision_read_ahead_is_made_again_if_the_ledger_moved_before_the_commit() {
    let db = TestDb::new(Dialect::Sqlite).await.unwrap();
    let store = &db.store;
    let event = assigned(store, "u1").await;
    let foresight = events_context(store)
        .foresee(&[&event])
        .await
        .expect("read ahead on SQLite");
    assert!(matches!(&foresight.decided[..], [Decided::Verdicts(v)] if v[0].refusal.is_none()));
    // The subject objects after the read ahead and before the commit.
    store
        .append_consents(&[record("u1", ConsentStatus::Objected)], &Actor::operator())
        .await
        .unwrap();
    let fates = events_context(store)
        .record_events_now(&[&event], Some(foresight))
        .await
        .unwrap();
    assert!(
        matches!(&fates[..], [EventFate::Refused(_)]),
        "decided on the ledger at the commit, not on the read ahead: {fates:?}"
    );
    assert!(store.events_of("ahead").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_decision_read_ahead_holds_across_appends() {
    let db = TestDb::new(Dialect::Sqlite).await.unwrap();
    let store = &db.store;
    let event = assigned(store, "u1").await;
    let mut foresight = events_context(store)
        .foresee(&[&event])
        .await
        .expect("read ahead on SQLite");
    // An append (another subject's first-time assignment) moves no epoch.
    store
        .append_consents(&[record("u2", ConsentStatus::Granted)], &Actor::operator())
        .await
        .unwrap();
    foresight = events_context(store)
        .foresee(&[&event])
        .await
        .unwrap_or(foresight);
    let target = store.assignment_target("ahead").await.unwrap().unwrap();
    store
        .assign(&target, &[pseudonym("u2")], Utc::now())
        .await
        .unwrap();
    // Were the read ahead not trusted, the commit would read the ledger
    // again and accept the event: a refusal planted in the read ahead
    // shows which one decided.
    if let Decided::Verdicts(verdicts) = &mut foresight.decided[0] {
        verdicts[0].refusal = Some(Refusal::Invalid);
    }
    let fates = events_context(store)
        .record_events_now(&[&event], Some(foresight))
        .await
        .unwrap();
    assert_eq!(fates, vec![EventFate::Refused(Refusal::Invalid)]);
}

/// The verdicts a read ahead gives the event: whether each holding may store it.
async fn foreseen(store: &Store, event: &EventDraft) -> Vec<Option<Refusal>> {
    let foresight = events_context(store)
        .foresee(&[event])
        .await
        .expect("read ahead on SQLite");
    match &foresight.decided[..] {
        [Decided::Verdicts(verdicts)] => verdicts.iter().map(|v| v.refusal).collect(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn a_subject_read_ahead_is_recalled_only_until_the_ledger_moves() {
    let db = TestDb::new(Dialect::Sqlite).await.unwrap();
    let store = &db.store;
    let event = assigned(store, "u1").await;
    assert_eq!(foreseen(store, &event).await, vec![None]);
    assert!(store.ingest.memo.knows(&event.subjects[0]), "learned");
    assert_eq!(foreseen(store, &event).await, vec![None], "recalled");
    // An objection moves the epoch: the memo is not trusted any more.
    store
        .append_consents(&[record("u1", ConsentStatus::Objected)], &Actor::operator())
        .await
        .unwrap();
    assert_eq!(
        foreseen(store, &event).await,
        vec![Some(Refusal::Ineligible(Reason::Objected))]
    );
}

#[tokio::test]
async fn a_subject_without_an_assignment_in_every_running_pilot_is_read_again() {
    let db = TestDb::new(Dialect::Sqlite).await.unwrap();
    let store = &db.store;
    let mut event = assigned(store, "u1").await;
    start_pilot(store, &buy_design("second", "personalize.content", 1.0)).await;
    assert_eq!(foreseen(store, &event).await, vec![None]);
    assert!(!store.ingest.memo.knows(&event.subjects[0]));
    // A first-time assignment is an append: it moves no epoch.
    let target = store.assignment_target("second").await.unwrap().unwrap();
    store
        .assign(&target, &[pseudonym("u1")], Utc::now())
        .await
        .unwrap();
    // The event occurs after both assignments.
    event.occurred_at = Utc::now();
    assert_eq!(
        foreseen(store, &event).await,
        vec![None, None],
        "both pilots"
    );
    assert_eq!(foreseen(store, &event).await, vec![None, None], "recalled");
}
