//! Pilots in the store: create, edit, lifecycle, approval record, audit trail.

use pilotgate_domain::experiment::{
    Action, Design, ExperimentKey, Metric, MetricKind, State, Variant,
};
use pilotgate_domain::purpose::{LegalBasis, Purpose, PurposeKey};
use pilotgate_domain::{Actor, Role};
use pilotgate_store::testing::TestDb;
use pilotgate_store::{AuditQuery, StoreError, storage_story};

fn design(key: &str) -> Design {
    Design {
        key: ExperimentKey::parse(key).unwrap(),
        name: "Homepage hero".to_owned(),
        hypothesis: "A personalized hero lifts sign-ups".to_owned(),
        owner: "growth".to_owned(),
        purpose: PurposeKey::parse("personalize.content").unwrap(),
        variants: vec![
            Variant {
                key: "control".to_owned(),
                weight: 1.0,
            },
            Variant {
                key: "v1".to_owned(),
                weight: 2.0,
            },
        ],
        coverage: 0.5,
        seed: key.to_owned(),
        primary_metric: Metric {
            event: "signup".to_owned(),
            kind: MetricKind::Binary,
        },
        guardrails: vec![Metric {
            event: "unsubscribe".to_owned(),
            kind: MetricKind::Binary,
        }],
        mde: 0.1,
        alpha: 0.05,
        power: 0.8,
        baseline_rate: Some(0.1),
        attribution_window_hours: None,
        data_categories: vec!["page views".to_owned()],
        retention_days: 30,
    }
}

async fn setup(db: &TestDb) {
    let purpose = Purpose {
        key: PurposeKey::parse("personalize.content").unwrap(),
        description: "d".to_owned(),
        allowed_bases: [LegalBasis::Consent].into_iter().collect(),
        min_notice_version: 1,
        special_category: false,
        li_assessment_ref: None,
        contract_necessary: false,
        retention_days: 90,
    };
    db.store
        .create_purpose(&purpose, &Actor::operator())
        .await
        .unwrap();
}

storage_story!(a_pilot_is_stored_and_read_back_whole, |db| {
    setup(&db).await;
    let mia = Actor::token("mia", Role::Marketer);
    let created = db
        .store
        .create_experiment(&design("hero"), Some(14748), &mia)
        .await
        .unwrap();
    assert_eq!(created.design, design("hero"));
    assert_eq!(created.state, State::Draft);
    assert_eq!(created.design_version, 1);
    assert_eq!(created.created_by, "mia");
    assert_eq!(created.planned_sample_size, Some(14748));
    assert!(created.approval.is_none());
    let duplicate = db
        .store
        .create_experiment(&design("hero"), None, &mia)
        .await;
    assert!(matches!(duplicate, Err(StoreError::Conflict(_))));
    db.store
        .create_experiment(&design("other"), None, &mia)
        .await
        .unwrap();
    assert_eq!(db.store.list_experiments().await.unwrap().len(), 2);
    assert!(db.store.experiment("nope").await.unwrap().is_none());
});

storage_story!(
    the_lifecycle_records_the_approval_and_an_edit_voids_it,
    |db| {
        setup(&db).await;
        let mia = Actor::token("mia", Role::Marketer);
        let dana = Actor::token("dana", Role::Compliance);
        db.store
            .create_experiment(&design("hero"), None, &mia)
            .await
            .unwrap();
        db.store
            .transition_experiment("hero", Action::Submit, None, &mia)
            .await
            .unwrap();
        let approved = db
            .store
            .transition_experiment("hero", Action::Approve, Some("lawful on consent"), &dana)
            .await
            .unwrap();
        assert_eq!(approved.state, State::Approved);
        let approval = approved.approval.unwrap();
        assert_eq!(
            (
                approval.decision.as_str(),
                approval.comment.as_str(),
                approval.decided_by.as_str(),
                approval.design_version
            ),
            ("approved", "lawful on consent", "dana (compliance)", 1)
        );

        let mut changed = design("hero");
        changed.coverage = 1.0;
        let edited = db
            .store
            .update_experiment(&changed, None, &mia)
            .await
            .unwrap();
        assert_eq!(edited.state, State::Draft);
        assert_eq!(edited.design_version, 2);
        assert!(edited.approval.is_none(), "the edit voided the approval");
        assert_eq!(edited.design.coverage, 1.0);

        let start_unapproved = db
            .store
            .transition_experiment("hero", Action::Start, None, &mia)
            .await;
        match start_unapproved {
            Err(StoreError::Conflict(message)) => {
                assert!(message.contains("it is draft"), "{message}")
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        db.store
            .transition_experiment("hero", Action::Submit, None, &mia)
            .await
            .unwrap();
        db.store
            .transition_experiment("hero", Action::Approve, Some("ok"), &dana)
            .await
            .unwrap();
        let running = db
            .store
            .transition_experiment("hero", Action::Start, None, &mia)
            .await
            .unwrap();
        assert!(running.started_at.is_some());
        let edit_running = db
            .store
            .update_experiment(&design("hero"), None, &mia)
            .await;
        assert!(matches!(edit_running, Err(StoreError::Conflict(_))));
        let stopped = db
            .store
            .transition_experiment("hero", Action::Stop, None, &mia)
            .await
            .unwrap();
        assert_eq!(stopped.state, State::Stopped);
        assert!(stopped.stopped_at.is_some());

        let trail = db
            .store
            .list_audit(&AuditQuery {
                target: Some("experiment:hero".into()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "experiment.create",
                "experiment.submit",
                "experiment.approve",
                "experiment.update",
                "experiment.submit",
                "experiment.approve",
                "experiment.start",
                "experiment.stop"
            ]
        );
        assert!(
            trail[3].details.contains("\"approval_voided\":true"),
            "{}",
            trail[3].details
        );
        assert!(trail[2].details.contains("lawful on consent"));
        assert!(db.store.verify_audit_chain().await.unwrap().ok);
    }
);

storage_story!(two_concurrent_decisions_cannot_both_win, |db| {
    setup(&db).await;
    let mia = Actor::token("mia", Role::Marketer);
    db.store
        .create_experiment(&design("hero"), None, &mia)
        .await
        .unwrap();
    db.store
        .transition_experiment("hero", Action::Submit, None, &mia)
        .await
        .unwrap();
    let (dana, omar) = (
        Actor::token("dana", Role::Compliance),
        Actor::token("omar", Role::Compliance),
    );
    let (a, b) = tokio::join!(
        db.store
            .transition_experiment("hero", Action::Approve, Some("yes"), &dana),
        db.store
            .transition_experiment("hero", Action::Deny, Some("no"), &omar),
    );
    assert!(
        a.is_ok() != b.is_ok(),
        "exactly one decision wins: {a:?} {b:?}"
    );
});
