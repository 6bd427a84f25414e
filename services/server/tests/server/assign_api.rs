//! Consent-gated assignment and event collection through the API.

use crate::support::{Design, TestApp, assert_json_error};
use pilotgate_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

async fn send(app: &TestApp, path: &str, role: Role, body: Value) -> reqwest::Response {
    app.request(Method::POST, path, Some(role))
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn ago(seconds: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(seconds)).to_rfc3339()
}

async fn consent(app: &TestApp, user: &str, status: &str, collected_at: &str) {
    let record = json!({"user_id": user, "purpose": "personalize.content", "basis": "consent", "status": status,
        "notice_id": "pn", "notice_version": 1, "source": {"channel": "app", "method": "tap"}, "collected_at": collected_at});
    assert_eq!(
        send(app, "/api/v1/consents", Role::Ingest, record)
            .await
            .status(),
        201
    );
}

/// A running pilot `hero` on a consent-only purpose, measuring `purchase` with guardrail `refund`.
async fn running_pilot(app: &TestApp) {
    let design = Design::new("hero")
        .variants(&["control", "personalized"])
        .purchase("sum")
        .guardrails(&[("refund", "binary")]);
    app.start_pilot(design.json()).await;
}

/// Stops the pilot `hero` as its marketer.
async fn stop_hero(app: &TestApp) {
    send(
        app,
        "/api/v1/experiments/hero/stop",
        Role::Marketer,
        json!({}),
    )
    .await;
}

async fn assign(app: &TestApp, user: &str) -> Value {
    let response = send(
        app,
        "/api/v1/assign",
        Role::Ingest,
        json!({"experiment": "hero", "user_id": user}),
    )
    .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn events(app: &TestApp, events: Value) -> Value {
    let response = send(
        app,
        "/api/v1/events",
        Role::Ingest,
        json!({"events": events}),
    )
    .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

api_story!(
    only_eligible_subjects_of_a_running_pilot_are_assigned_and_stickily,
    |app| {
        running_pilot(&app).await;
        let refused = assign(&app, "nobody@example.com").await;
        assert_eq!(
            (
                refused["eligible"].clone(),
                refused["variant"].clone(),
                refused["reason"].clone(),
                refused["ask_again"].clone()
            ),
            (
                json!(false),
                Value::Null,
                json!("not_eligible"),
                json!(true)
            )
        );
        assert!(
            app.db
                .store
                .assignments_of("hero")
                .await
                .unwrap()
                .is_empty(),
            "an ineligible call stores no assignment"
        );
        let counts = app.db.store.refusal_counts("hero").await.unwrap();
        assert_eq!(
            counts
                .iter()
                .map(|c| (c.0.as_str(), c.1.as_str(), c.3))
                .collect::<Vec<_>>(),
            [("assign", "no_record", 1)]
        );

        consent(&app, "alice@example.com", "granted", &ago(60)).await;
        let first = assign(&app, "alice@example.com").await;
        assert_eq!(first["eligible"], true);
        assert_eq!(first["reason"], Value::Null);
        assert!(["control", "personalized"].contains(&first["variant"].as_str().unwrap()));
        for _ in 0..3 {
            assert_eq!(
                assign(&app, "alice@example.com").await,
                first,
                "the assignment is sticky"
            );
        }
        let stored = app.db.store.assignments_of("hero").await.unwrap();
        assert_eq!(stored.len(), 1);
        assert!(first.get("subject").is_none(), "no pseudonym for ingest");
        assert_eq!(
            stored[0].subject,
            crate::support::pseudonym("alice@example.com")
        );
        assert_eq!(stored[0].basis.as_str(), "consent");
        assert!(
            stored[0].consent_record_id.is_some(),
            "the proof names the consent record"
        );
        assert_eq!(stored[0].notice_version, Some(1));
        assert!(!serde_json::to_string(&first).unwrap().contains("alice"));

        assert_json_error(
            send(
                &app,
                "/api/v1/assign",
                Role::Ingest,
                json!({"experiment": "nope", "user_id": "a"}),
            )
            .await,
            404,
        )
        .await;
        assert_json_error(
            send(
                &app,
                "/api/v1/assign",
                Role::Ingest,
                json!({"experiment": "hero", "user_id": ""}),
            )
            .await,
            422,
        )
        .await;
        assert_json_error(
            send(
                &app,
                "/api/v1/assign",
                Role::Ingest,
                json!({"experiment": "hero"}),
            )
            .await,
            422,
        )
        .await;

        stop_hero(&app).await;
        let stopped = assign(&app, "alice@example.com").await;
        assert_eq!(
            (stopped["eligible"].clone(), stopped["reason"].clone()),
            (json!(false), json!("not_running"))
        );
    }
);

api_story!(
    a_withdrawal_makes_the_subject_ineligible_at_once_everywhere,
    |app| {
        running_pilot(&app).await;
        consent(&app, "bob@example.com", "granted", &ago(60)).await;
        let assigned = assign(&app, "bob@example.com").await;
        assert_eq!(assigned["eligible"], true);
        let first = json!([{"event_id": "e1", "user_id": "bob@example.com", "name": "purchase", "value": 20.0, "occurred_at": ago(0)}]);
        let before = events(&app, first.clone()).await;
        assert_eq!(before["accepted"], 1);

        consent(&app, "bob@example.com", "withdrawn", &ago(0)).await;
        let after = assign(&app, "bob@example.com").await;
        assert_eq!(
            (
                after["eligible"].clone(),
                after["variant"].clone(),
                after["reason"].clone(),
                after["ask_again"].clone()
            ),
            (
                json!(false),
                Value::Null,
                json!("not_eligible"),
                json!(false)
            )
        );
        let refused = events(&app, json!([{"event_id": "e2", "user_id": "bob@example.com", "name": "purchase", "value": 5.0, "occurred_at": chrono::Utc::now().to_rfc3339()}])).await;
        assert_eq!(refused["accepted"], 0);
        assert_eq!(
            refused["refused"],
            json!([{"index": 0, "event_id": "e2", "reason": "withdrawn", "message": null}])
        );
        let retried = events(&app, first.clone()).await;
        assert_eq!(
            (retried["duplicates"].clone(), retried["refused"].clone()),
            (json!(1), json!([])),
            "the retry of an event stored before the withdrawal is a duplicate, not a refusal"
        );
        stop_hero(&app).await;
        let after_stop = events(&app, first).await;
        assert_eq!(
            (
                after_stop["duplicates"].clone(),
                after_stop["refused"].clone()
            ),
            (json!(1), json!([])),
            "the retry of an event stored before its pilot stopped is a duplicate"
        );
        let stored = app.db.store.assignments_of("hero").await.unwrap();
        assert!(
            stored[0].withdrawn_at.is_some(),
            "the assignment is marked withdrawn"
        );
        assert_eq!(
            app.db.store.events_of("hero").await.unwrap().len(),
            1,
            "the refused event stored nothing"
        );
    }
);

api_story!(
    events_are_stored_once_and_refused_with_a_reason_otherwise,
    |app| {
        running_pilot(&app).await;
        consent(&app, "carol@example.com", "granted", &ago(3600)).await;
        assign(&app, "carol@example.com").await;
        let now = chrono::Utc::now().to_rfc3339();
        let batch = json!([
            {"event_id": "p1", "user_id": "carol@example.com", "name": "purchase", "value": 12.5, "occurred_at": now},
            {"event_id": "r1", "user_id": "carol@example.com", "name": "refund", "occurred_at": now},
            {"event_id": "x1", "user_id": "carol@example.com", "name": "page_view", "occurred_at": now},
            {"event_id": "o1", "user_id": "nobody@example.com", "name": "purchase", "value": 1.0, "occurred_at": now},
            {"event_id": "b1", "user_id": "carol@example.com", "name": "purchase", "value": 1.0, "occurred_at": ago(7200)},
            {"event_id": "t1", "user_id": "carol@example.com", "name": "purchase", "occurred_at": "yesterday"},
            {"event_id": "f1", "user_id": "carol@example.com", "name": "purchase", "occurred_at": "2999-01-01T00:00:00Z"},
            {"event_id": "v1", "user_id": "carol@example.com", "name": "purchase", "value": "12", "occurred_at": now},
            {"event_id": "p1", "user_id": "carol@example.com", "name": "purchase", "value": 12.5, "occurred_at": now},
            {"user_id": "carol@example.com", "name": "purchase", "occurred_at": now},
        ]);
        let outcome = events(&app, batch.clone()).await;
        assert_eq!(outcome["accepted"], 2);
        assert_eq!(
            outcome["duplicates"], 1,
            "the same id twice in a batch is stored once"
        );
        let reasons: Vec<(u64, &str)> = outcome["refused"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["index"].as_u64().unwrap(), r["reason"].as_str().unwrap()))
            .collect();
        assert_eq!(
            reasons,
            [
                (2, "not_a_metric"),
                (3, "no_assignment"),
                (4, "before_assignment"),
                (5, "invalid"),
                (6, "invalid"),
                (7, "invalid"),
                (9, "invalid")
            ]
        );
        assert!(
            outcome["refused"][3]["message"]
                .as_str()
                .unwrap()
                .starts_with("occurred_at"),
            "{outcome}"
        );
        assert!(!serde_json::to_string(&outcome).unwrap().contains("carol"));

        let replay = events(&app, batch).await;
        assert_eq!(
            (replay["accepted"].clone(), replay["duplicates"].clone()),
            (json!(0), json!(3))
        );
        consent(&app, "erin@example.com", "granted", &ago(3600)).await;
        assign(&app, "erin@example.com").await;
        let other = events(&app, json!([{"event_id": "p1", "user_id": "erin@example.com", "name": "purchase", "value": 3.0, "occurred_at": chrono::Utc::now().to_rfc3339()}])).await;
        assert_eq!(
            other["accepted"], 1,
            "an event id is unique per user: another user's p1 is another event"
        );
        let stored: Vec<_> = app
            .db
            .store
            .events_of("hero")
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.value != Some(3.0))
            .collect();
        assert_eq!(stored.len(), 2);
        assert_eq!(
            stored
                .iter()
                .filter(|e| e.name == "purchase")
                .map(|e| e.value)
                .collect::<Vec<_>>(),
            [Some(12.5)]
        );

        let too_many: Vec<Value> = (0..1001)
            .map(|i| json!({"event_id": format!("m{i}")}))
            .collect();
        assert_json_error(
            send(
                &app,
                "/api/v1/events",
                Role::Ingest,
                json!({"events": too_many}),
            )
            .await,
            422,
        )
        .await;
        assert_json_error(
            send(&app, "/api/v1/events", Role::Ingest, json!({"events": []})).await,
            422,
        )
        .await;
        assert_json_error(
            send(&app, "/api/v1/events", Role::Ingest, json!([1])).await,
            422,
        )
        .await;
    }
);

api_story!(
    erasure_removes_assignments_and_events_and_blocks_the_subject,
    |app| {
        running_pilot(&app).await;
        consent(&app, "dave@example.com", "granted", &ago(60)).await;
        let assigned = assign(&app, "dave@example.com").await;
        events(&app, json!([{"event_id": "d1", "user_id": "dave@example.com", "name": "purchase", "value": 3.0, "occurred_at": ago(0)}])).await;
        assert_eq!(assigned["eligible"], true);
        let subject = crate::support::pseudonym("dave@example.com");
        let receipt: Value = send(
            &app,
            &format!("/api/v1/subjects/{subject}/erasure"),
            Role::Compliance,
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(receipt["deleted"], json!({"assignments": 1, "events": 1}));
        let after = assign(&app, "dave@example.com").await;
        assert_eq!(
            (after["eligible"].clone(), after["ask_again"].clone()),
            (json!(false), json!(false))
        );
        let counts = app.db.store.refusal_counts("hero").await.unwrap();
        assert!(counts.iter().any(|c| c.1 == "erased"), "{counts:?}");
        assert!(
            app.db
                .store
                .assignments_of("hero")
                .await
                .unwrap()
                .is_empty()
        );
    }
);

api_story!(
    changes_made_through_another_instance_are_honoured_at_once,
    |app| {
        running_pilot(&app).await;
        consent(&app, "erin@example.com", "granted", &ago(60)).await;
        // Twice: the second answer comes from what the first one read.
        let first = assign(&app, "erin@example.com").await;
        assert_eq!(assign(&app, "erin@example.com").await, first);

        let other = app.second_instance().await;
        let withdrawal = json!({"user_id": "erin@example.com", "purpose": "personalize.content", "basis": "consent",
            "status": "withdrawn", "notice_id": "pn", "notice_version": 1,
            "source": {"channel": "app", "method": "tap"}, "collected_at": ago(1)});
        let response = app
            .client
            .post(format!("{other}/api/v1/consents"))
            .bearer_auth(&app.tokens[&Role::Ingest])
            .json(&withdrawal)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        // SQLite: the first server learns of the other connection's commit by
        // polling every 2 ms; PostgreSQL: it caches nothing.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            let after = assign(&app, "erin@example.com").await;
            if after["eligible"] == false {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "still {after}");
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }

        // A token revoked by another process stops working here too.
        let revoker = app.db.reopen(&app.keys).await;
        revoker
            .revoke_token(
                "ingest-token",
                Some(Role::Ingest),
                &pilotgate_domain::Actor::operator(),
            )
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            let response = send(
                &app,
                "/api/v1/assign",
                Role::Ingest,
                json!({"experiment": "hero", "user_id": "erin@example.com"}),
            )
            .await;
            if response.status() == 401 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "token still accepted");
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
);

api_story!(
    event_batches_with_and_without_values_are_all_stored,
    |app| {
        // PostgreSQL caches a statement per row count; a batch whose values
        // are all missing must not make a later batch with values fail.
        app.start_pilot(crate::support::Design::new("mixed").json())
            .await;
        let users: Vec<String> = (0..6).map(|i| format!("mixed{i}@example.com")).collect();
        let records: Vec<Value> = users
            .iter()
            .map(|u| json!({"user_id": u, "purpose": "personalize.content", "basis": "consent", "status": "granted",
                "notice_id": "pn", "notice_version": 1, "source": {"channel": "app", "method": "tap"},
                "collected_at": "2026-01-01T00:00:00Z"}))
            .collect();
        app.post_ok(
            "/api/v1/consents",
            Role::Ingest,
            json!({"records": records}),
        )
        .await;
        for user in &users {
            app.assign("mixed", user).await;
        }
        let now = chrono::Utc::now().to_rfc3339();
        let batch = |round: usize, with_value: [bool; 2]| {
            let events: Vec<Value> = (0..2)
                .map(|i| {
                    let mut event = json!({"event_id": format!("m{round}-{i}"), "user_id": users[round * 2 + i],
                        "name": "purchase", "occurred_at": now});
                    if with_value[i] {
                        event["value"] = json!(2.5);
                    }
                    event
                })
                .collect();
            json!({"events": events})
        };
        for (round, with_value) in [[false, false], [true, true], [false, true]]
            .into_iter()
            .enumerate()
        {
            let stored = app
                .post("/api/v1/events", Role::Ingest, batch(round, with_value))
                .await;
            assert_eq!(
                stored.status(),
                200,
                "round {round}: {}",
                stored.text().await.unwrap()
            );
        }
    }
);
