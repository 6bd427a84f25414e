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
        segments: Vec::new(),
        segment_correction: Default::default(),
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
            .transition_experiment("hero", Action::Submit, &mia)
            .await
            .unwrap();
        let approved = db
            .store
            .decide_experiment("hero", Action::Approve, 1, "lawful on consent", &dana)
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
            .transition_experiment("hero", Action::Start, &mia)
            .await;
        match start_unapproved {
            Err(StoreError::Conflict(message)) => {
                assert!(message.contains("it is draft"), "{message}")
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        // A page that showed version 1 submits nothing: the design is at 2.
        let stale = db
            .store
            .transition_experiment_at("hero", Action::Submit, Some(1), &mia)
            .await;
        assert!(
            matches!(&stale, Err(StoreError::Conflict(m)) if m.contains("version 2 is current")),
            "{stale:?}"
        );
        db.store
            .transition_experiment_at("hero", Action::Submit, Some(2), &mia)
            .await
            .unwrap();
        db.store
            .decide_experiment("hero", Action::Approve, 2, "ok", &dana)
            .await
            .unwrap();
        let running = db
            .store
            .transition_experiment("hero", Action::Start, &mia)
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
            .transition_experiment("hero", Action::Stop, &mia)
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
        assert!(db.store.verify_audit_chain(None).await.unwrap().ok);
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
        .transition_experiment("hero", Action::Submit, &mia)
        .await
        .unwrap();
    let (dana, omar) = (
        Actor::token("dana", Role::Compliance),
        Actor::token("omar", Role::Compliance),
    );
    let (a, b) = tokio::join!(
        db.store
            .decide_experiment("hero", Action::Approve, 1, "yes", &dana),
        db.store
            .decide_experiment("hero", Action::Deny, 1, "no", &omar),
    );
    assert!(
        a.is_ok() != b.is_ok(),
        "exactly one decision wins: {a:?} {b:?}"
    );
});

storage_story!(
    nobody_who_created_edited_or_submitted_a_design_may_decide_on_it_under_any_role,
    |db| {
        setup(&db).await;
        let mia = Actor::token("mia", Role::Marketer);
        // Max holds a marketer and a compliance token under one name.
        let max_marketer = Actor::token("max", Role::Marketer);
        let max_compliance = Actor::token("max", Role::Compliance);
        db.store
            .create_experiment(&design("hero"), None, &mia)
            .await
            .unwrap();
        let mut rewritten = design("hero");
        rewritten.coverage = 1.0;
        db.store
            .update_experiment(&rewritten, None, &max_marketer)
            .await
            .unwrap();
        db.store
            .transition_experiment("hero", Action::Submit, &max_marketer)
            .await
            .unwrap();
        for action in [Action::Approve, Action::Deny] {
            match db
                .store
                .decide_experiment("hero", action, 2, "fine by me", &max_compliance)
                .await
            {
                Err(StoreError::Forbidden(message)) => {
                    assert!(message.contains("separation of duties"), "{message}")
                }
                other => panic!("max may not decide on his own edit: {other:?}"),
            }
        }
        // A submitter who did not edit is refused as well.
        let mut again = rewritten.clone();
        again.coverage = 0.8;
        db.store
            .update_experiment(&again, None, &mia)
            .await
            .unwrap();
        let sam = Actor::token("sam", Role::Marketer);
        db.store
            .transition_experiment("hero", Action::Submit, &sam)
            .await
            .unwrap();
        assert!(matches!(
            db.store
                .decide_experiment(
                    "hero",
                    Action::Approve,
                    3,
                    "ok",
                    &Actor::token("sam", Role::Compliance)
                )
                .await,
            Err(StoreError::Forbidden(_))
        ));
        let refusals = db
            .store
            .list_audit(&AuditQuery {
                target: Some("experiment:hero".into()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "experiment.decision_refused")
            .collect::<Vec<_>>();
        assert_eq!(refusals.len(), 3, "every refusal is audited");
        assert_eq!(refusals[0].actor, "max (compliance)");
        assert!(refusals[0].details.contains("separation of duties"));
        let dana = Actor::token("dana", Role::Compliance);
        let approved = db
            .store
            .decide_experiment("hero", Action::Approve, 3, "lawful", &dana)
            .await
            .unwrap();
        assert_eq!(approved.state, State::Approved);
        assert_eq!(
            db.store.design_contributors("hero").await.unwrap(),
            ["max", "mia", "sam"]
        );
        assert!(db.store.verify_audit_chain(None).await.unwrap().ok);
    }
);

storage_story!(
    a_decision_on_a_design_that_changed_since_it_was_read_is_refused,
    |db| {
        setup(&db).await;
        let mia = Actor::token("mia", Role::Marketer);
        let dana = Actor::token("dana", Role::Compliance);
        db.store
            .create_experiment(&design("hero"), None, &mia)
            .await
            .unwrap();
        db.store
            .transition_experiment("hero", Action::Submit, &mia)
            .await
            .unwrap();
        // Dana reads version 1 (coverage 0.5); meanwhile Mia swaps the design and resubmits.
        let mut swapped = design("hero");
        swapped.coverage = 1.0;
        db.store
            .update_experiment(&swapped, None, &mia)
            .await
            .unwrap();
        db.store
            .transition_experiment("hero", Action::Submit, &mia)
            .await
            .unwrap();
        match db
            .store
            .decide_experiment("hero", Action::Approve, 1, "10% coverage is fine", &dana)
            .await
        {
            Err(StoreError::Conflict(message)) => assert!(
                message.contains("changed since version 1") && message.contains("version 2"),
                "{message}"
            ),
            other => panic!("the approval of version 1 must be refused: {other:?}"),
        }
        let pilot = db.store.experiment("hero").await.unwrap().unwrap();
        assert_eq!(pilot.state, State::Submitted);
        assert!(pilot.approval.is_none());
        let approved = db
            .store
            .decide_experiment("hero", Action::Approve, 2, "full coverage is fine", &dana)
            .await
            .unwrap();
        assert_eq!(approved.approval.unwrap().design_version, 2);
    }
);
