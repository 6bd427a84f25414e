//! The database goes away mid-load and comes back: on SQLite another process
//! holds the file's write lock for longer than the busy timeout; on
//! PostgreSQL the database refuses connections and its open ones are
//! terminated. A client streams event batches and retries every 503. The
//! server answers 503 (never 500) while the database is away, resumes by
//! itself, and every acknowledged event is stored exactly once.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::support::Design;
use pilotgate_domain::Role;
use reqwest::Method;
use serde_json::json;

const USERS: usize = 100;
const BATCH: usize = 50;

api_story!(
    a_database_outage_mid_load_answers_503_loses_nothing_and_heals_by_itself,
    |app| {
        app.start_pilot(Design::new("faults").json()).await;
        let records: Vec<_> = (0..USERS)
            .map(|i| json!({"user_id": format!("u{i}"), "purpose": "personalize.content", "basis": "consent",
                "status": "granted", "notice_id": "n", "notice_version": 1,
                "source": {"channel": "api", "method": "click"}, "collected_at": "2026-01-01T00:00:00Z"}))
            .collect();
        let stored = app
            .request(Method::POST, "/api/v1/consents", Some(Role::Ingest))
            .json(&json!({"records": records}))
            .send()
            .await
            .unwrap();
        assert_eq!(stored.status(), 201);
        for i in 0..USERS {
            assert!(app.assign("faults", &format!("u{i}")).await["variant"].is_string());
        }

        let app = Arc::new(app);
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let unavailable = Arc::new(AtomicU64::new(0));
        let client = {
            let (app, stop, acked, unavailable) = (
                app.clone(),
                stop.clone(),
                acked.clone(),
                unavailable.clone(),
            );
            tokio::spawn(async move {
                let mut ids = Vec::new();
                let mut batch = 0;
                while !stop.load(Ordering::Acquire) {
                    let events: Vec<_> = (0..BATCH)
                        .map(|i| json!({"event_id": format!("b{batch}-{i}"), "user_id": format!("u{}", (batch * 7 + i) % USERS),
                            "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339()}))
                        .collect();
                    loop {
                        let response = app
                            .request(Method::POST, "/api/v1/events", Some(Role::Ingest))
                            .json(&json!({"events": events}))
                            .timeout(Duration::from_secs(30))
                            .send()
                            .await
                            .unwrap();
                        match response.status().as_u16() {
                            200 => {
                                let answer: serde_json::Value = response.json().await.unwrap();
                                assert_eq!(
                                    answer["accepted"].as_u64().unwrap()
                                        + answer["duplicates"].as_u64().unwrap(),
                                    BATCH as u64,
                                    "{answer}"
                                );
                                break;
                            }
                            503 => {
                                assert!(response.headers().contains_key("retry-after"));
                                unavailable.fetch_add(1, Ordering::AcqRel);
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                            status => panic!("the server answered {status} during the outage"),
                        }
                    }
                    ids.extend((0..BATCH).map(|i| format!("b{batch}-{i}")));
                    acked.fetch_add(1, Ordering::AcqRel);
                    batch += 1;
                }
                ids
            })
        };
        let wait_for = async |batches: u64| {
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while acked.load(Ordering::Acquire) < batches {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the stream stalled at {} batches",
                    acked.load(Ordering::Acquire)
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };

        wait_for(10).await;
        let outage = app.db.outage().await;
        // Longer than SQLite's busy timeout (5 s), so that waiting writes give up.
        tokio::time::sleep(Duration::from_secs(7)).await;
        let during = app.get("/readyz", None).await.status().as_u16();
        outage.end().await;
        let after_outage = acked.load(Ordering::Acquire);
        wait_for(after_outage + 10).await;
        stop.store(true, Ordering::Release);
        let ids = client.await.unwrap();

        assert!(
            unavailable.load(Ordering::Acquire) > 0,
            "no request met the outage"
        );
        if app.db.sqlite_file().is_none() {
            assert_eq!(during, 503, "readiness during the outage");
        }
        assert_eq!(app.get("/readyz", None).await.status().as_u16(), 200);
        let stored = app.db.store.events_of("faults").await.unwrap();
        let stored_ids: HashSet<&str> = stored.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(stored.len(), stored_ids.len(), "an event is stored twice");
        // Event ids are stored keyed (see `pilotgate_domain::event_id`).
        let acked: Vec<String> = ids
            .iter()
            .map(|id| crate::support::stored_event_id(&app.db.store, id))
            .collect();
        let acked_ids: HashSet<&str> = acked.iter().map(String::as_str).collect();
        assert_eq!(
            stored_ids, acked_ids,
            "stored events differ from acknowledged ones"
        );
    }
);
