//! The trust holes of the attack review (issue 19), one story each, through
//! the HTTP API and the dashboards, on SQLite and PostgreSQL. Each failed on
//! the build the review tried (b258967).

use crate::support::{Design, TestApp, assert_json_error, web};
use pilotgate_domain::Role;
use pilotgate_domain::pseudonym::{KeyRing, PseudonymKey};
use reqwest::Method;
use serde_json::{Value, json};

fn ago(seconds: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(seconds)).to_rfc3339()
}

fn consent_record(user: &str, status: &str, collected_at: &str) -> Value {
    json!({"user_id": user, "purpose": "personalize.content", "basis": "consent", "status": status,
        "notice_id": "pn", "notice_version": 1, "source": {"channel": "app", "method": "tap"},
        "collected_at": collected_at})
}

async fn consent_at(
    app: &TestApp,
    base: &str,
    user: &str,
    status: &str,
    collected_at: &str,
) -> Value {
    let response = app
        .post_at(
            base,
            "/api/v1/consents",
            Role::Ingest,
            consent_record(user, status, collected_at),
        )
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

fn design(key: &str, coverage: f64) -> Value {
    Design::new(key)
        .variants(&["control", "personalized"])
        .purchase("sum")
        .with("coverage", json!(coverage))
        .json()
}

async fn running_pilot(app: &TestApp) {
    app.start_pilot(design("hero", 1.0)).await;
}

async fn assign_at(app: &TestApp, base: &str, user: &str) -> Value {
    let response = app
        .post_at(
            base,
            "/api/v1/assign",
            Role::Ingest,
            json!({"experiment": "hero", "user_id": user}),
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn events_at(app: &TestApp, base: &str, events: Value) -> Value {
    let response = app
        .post_at(
            base,
            "/api/v1/events",
            Role::Ingest,
            json!({"events": events}),
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn audit_actions(app: &TestApp) -> Vec<(String, String, String)> {
    let page: Value = app
        .get_json("/api/v1/audit?limit=1000", Some(Role::Compliance))
        .await;
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
                e["details"].to_string(),
            )
        })
        .collect()
}

// 1. Unbounded metrics labels.
api_story!(made_up_methods_never_become_metrics_labels, |app| {
    for n in 0..300 {
        let method = Method::from_bytes(format!("M{n}{}", "X".repeat(2_000)).as_bytes()).unwrap();
        let _ = app
            .client
            .request(method, format!("{}/healthz", app.address))
            .send()
            .await;
    }
    let text = app.get("/metrics", None).await.text().await.unwrap();
    assert!(!text.contains("XXXX"), "no client text in a label");
    assert!(text.contains("method=\"OTHER\""), "{text}");
    assert!(
        text.len() < 50_000,
        "the exposition stays small: {} bytes",
        text.len()
    );
});

// 2. The guess throttle never refuses a valid token.
api_story!(
    guesses_from_one_address_never_lock_out_a_valid_token,
    |app| {
        running_pilot(&app).await;
        let ingest = app.tokens[&Role::Ingest].clone();
        // A malformed value, and wrong secrets for the real token's id.
        let token_id = ingest.split('_').nth(1).unwrap().to_owned();
        let wrong = format!("pgt_{token_id}_{}", "0".repeat(64));
        for bearer in ["x", wrong.as_str()] {
            let mut last = 0;
            for _ in 0..25 {
                last = app
                    .client
                    .post(format!("{}/api/v1/events", app.address))
                    .bearer_auth(bearer)
                    .json(&json!({"events": []}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
            }
            assert_eq!(last, 429, "the guesser is throttled");
        }
        let valid = app
            .client
            .post(format!("{}/api/v1/events", app.address))
            .bearer_auth(&ingest)
            .json(&json!({"events": [{"event_id": "e1", "user_id": "u", "name": "purchase", "occurred_at": ago(1)}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(valid.status(), 200, "the real token is still served");
        assert_eq!(
            app.get("/api/v1/experiments", Some(Role::Marketer))
                .await
                .status(),
            200
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_is_throttled_on_its_own() {
    let app = TestApp::spawn_with(
        pilotgate_store::Dialect::Sqlite,
        pilotgate_store::testing::test_key_ring(),
        |config| {
            config.trusted_proxies =
                pilotgate_server::network::Network::parse_proxies("127.0.0.1").unwrap()
        },
    )
    .await
    .unwrap();
    let guess = |forwarded: &'static str| {
        app.client
            .get(format!("{}/api/v1/experiments", app.address))
            .bearer_auth("x")
            .header("x-forwarded-for", forwarded)
            .send()
    };
    for _ in 0..21 {
        guess("203.0.113.7").await.unwrap();
    }
    assert_eq!(guess("203.0.113.7").await.unwrap().status(), 429);
    assert_eq!(
        guess("198.51.100.9").await.unwrap().status(),
        401,
        "another client behind the proxy is not throttled"
    );
}

api_story!(
    forwarding_headers_from_an_untrusted_peer_are_ignored,
    |app| {
        // No trusted proxy is configured: X-Forwarded-For does not move the
        // client, so changing it does not escape the throttle.
        for n in 0..21 {
            let _ = app
                .client
                .get(format!("{}/api/v1/experiments", app.address))
                .bearer_auth("x")
                .header("x-forwarded-for", format!("203.0.113.{n}"))
                .send()
                .await
                .unwrap();
        }
        let response = app
            .client
            .get(format!("{}/api/v1/experiments", app.address))
            .bearer_auth("x")
            .header("x-forwarded-for", "198.51.100.1")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 429);
    }
);

// 3. Separation of duties per person, across every design change.
api_story!(
    a_person_with_a_marketer_and_a_compliance_token_cannot_approve_a_design_they_rewrote,
    |app| {
        let base = app.address.clone();
        // Mia (the marketer token) creates the pilot.
        app.start_pilot(design("other", 1.0)).await;
        let created = app
            .post_at(
                &base,
                "/api/v1/experiments",
                Role::Marketer,
                design("hero", 0.1),
            )
            .await;
        assert_eq!(created.status(), 201);
        let max_marketer = app.add_token("max", Role::Marketer).await;
        let max_compliance = app.add_token("max", Role::Compliance).await;
        let as_max = |token: &str, method: Method, path: &str, body: Value| {
            app.client
                .request(method, format!("{base}{path}"))
                .bearer_auth(token)
                .json(&body)
                .send()
        };
        let rewritten = as_max(
            &max_marketer,
            Method::PUT,
            "/api/v1/experiments/hero",
            design("hero", 1.0),
        )
        .await
        .unwrap();
        assert_eq!(rewritten.status(), 200);
        let submitted = as_max(
            &max_marketer,
            Method::POST,
            "/api/v1/experiments/hero/submit",
            json!({}),
        )
        .await
        .unwrap();
        assert_eq!(submitted.status(), 200);
        let approval = as_max(
            &max_compliance,
            Method::POST,
            "/api/v1/experiments/hero/approve",
            json!({"design_version": 2, "comment": "fine"}),
        )
        .await
        .unwrap();
        let refused = assert_json_error(approval, 403).await;
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .contains("separation of duties"),
            "{refused}"
        );
        let audited = audit_actions(&app).await;
        assert!(
            audited
                .iter()
                .any(|(action, actor, _)| action == "experiment.decision_refused"
                    && actor == "max (compliance)"),
            "the refusal is audited: {audited:?}"
        );
        let pilot: Value = app
            .get_json("/api/v1/experiments/hero", Some(Role::Compliance))
            .await;
        assert_eq!(pilot["state"], "submitted");
    }
);

// 6. Approval bound to the design version reviewed.
api_story!(
    an_approval_of_a_design_swapped_after_it_was_read_is_a_409,
    |app| {
        let base = app.address.clone();
        app.start_pilot(design("other", 1.0)).await;
        app.submit_pilot(design("hero", 0.1)).await;
        // The DPO reads version 1 (10% coverage); the marketer swaps in 100% and resubmits.
        let swapped = app
            .request(
                Method::PUT,
                "/api/v1/experiments/hero",
                Some(Role::Marketer),
            )
            .json(&design("hero", 1.0))
            .send()
            .await
            .unwrap();
        assert_eq!(swapped.status(), 200);
        app.post_at(
            &base,
            "/api/v1/experiments/hero/submit",
            Role::Marketer,
            json!({}),
        )
        .await;
        let stale = app
            .post_at(
                &base,
                "/api/v1/experiments/hero/approve",
                Role::Compliance,
                json!({"design_version": 1, "comment": "10% coverage is fine"}),
            )
            .await;
        let conflict = assert_json_error(stale, 409).await;
        assert!(
            conflict["message"]
                .as_str()
                .unwrap()
                .contains("design changed"),
            "{conflict}"
        );
        let missing_version = app
            .post_at(
                &base,
                "/api/v1/experiments/hero/approve",
                Role::Compliance,
                json!({"comment": "no version"}),
            )
            .await;
        assert!(missing_version.status().is_client_error());
        let current = app
            .post_at(
                &base,
                "/api/v1/experiments/hero/approve",
                Role::Compliance,
                json!({"design_version": 2, "comment": "100% coverage is fine"}),
            )
            .await;
        assert_eq!(current.status(), 200);
        let approved: Value = current.json().await.unwrap();
        assert_eq!(approved["approval"]["design_version"], 2);
    }
);

// 7. Withdrawal, objection and erasure after a key rotation.
fn rotated_ring() -> KeyRing {
    KeyRing::new(vec![
        pilotgate_store::testing::test_key(),
        PseudonymKey::new(2, vec![0x42; 32]).unwrap(),
    ])
    .unwrap()
}

api_story!(
    a_withdrawal_after_a_key_rotation_reaches_the_assignment_made_under_the_old_key,
    |app| {
        let base = app.address.clone();
        running_pilot(&app).await;
        consent_at(&app, &base, "erin@example.com", "granted", &ago(60)).await;
        consent_at(&app, &base, "finn@example.com", "granted", &ago(60)).await;
        assert_eq!(
            assign_at(&app, &base, "erin@example.com").await["eligible"],
            true
        );
        assert_eq!(
            assign_at(&app, &base, "finn@example.com").await["eligible"],
            true
        );
        let old_erin = pilotgate_store::testing::test_key().pseudonymize("erin@example.com");

        // The key rotates: a server with versions 1 and 2 takes over.
        let rotated = app.instance_with_keys(rotated_ring()).await;
        consent_at(&app, &rotated, "erin@example.com", "withdrawn", &ago(5)).await;
        consent_at(&app, &rotated, "finn@example.com", "objected", &ago(5)).await;
        let assignments = app.db.store.assignments_of("hero").await.unwrap();
        assert_eq!(assignments.len(), 2);
        assert!(
            assignments.iter().all(|a| a.withdrawn_at.is_some()),
            "both old-key assignments are withdrawn: {assignments:?}"
        );
        assert!(assignments.iter().any(|a| a.subject == old_erin.as_str()));
        let results: Value = app
            .get(
                "/api/v1/experiments/hero/results?metric=purchase",
                Some(Role::Analyst),
            )
            .await
            .json()
            .await
            .unwrap();
        let users: u64 = results["variants"]
            .as_array()
            .map(|v| v.iter().map(|v| v["users"].as_u64().unwrap_or(0)).sum())
            .unwrap_or(0);
        assert_eq!(users, 0, "withdrawn people leave the results: {results}");
    }
);

api_story!(
    an_erasure_after_a_key_rotation_erases_every_version_and_says_so,
    |app| {
        let base = app.address.clone();
        running_pilot(&app).await;
        consent_at(&app, &base, "gus@example.com", "granted", &ago(60)).await;
        assert_eq!(
            assign_at(&app, &base, "gus@example.com").await["eligible"],
            true
        );
        events_at(
            &app,
            &base,
            json!([{"event_id": "g1", "user_id": "gus@example.com", "name": "purchase", "value": 3.0, "occurred_at": ago(0)}]),
        )
        .await;
        let rotated = app.instance_with_keys(rotated_ring()).await;
        // A new record under the new key, then compliance looks the person up and erases.
        consent_at(&app, &rotated, "gus@example.com", "granted", &ago(2)).await;
        let resolved: Value = app
            .post_at(
                &rotated,
                "/api/v1/subjects/resolve",
                Role::Compliance,
                json!({"user_id": "gus@example.com"}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(resolved["key_version"], 2);
        let current = resolved["subject"].as_str().unwrap().to_owned();
        let receipt: Value = app
            .post_at(
                &rotated,
                &format!("/api/v1/subjects/{current}/erasure"),
                Role::Compliance,
                json!({}),
            )
            .await
            .json()
            .await
            .unwrap();
        let versions = receipt["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 2, "{receipt}");
        assert_eq!(receipt["deleted"]["assignments"], 1, "{receipt}");
        assert_eq!(receipt["deleted"]["events"], 1, "{receipt}");
        let old = versions.iter().find(|v| v["key_version"] == 1).unwrap();
        assert_eq!(old["deleted"]["assignments"], 1);
        assert!(
            app.db
                .store
                .assignments_of("hero")
                .await
                .unwrap()
                .is_empty()
        );
        // The shop sends the person again: refused, under either server.
        for server in [&base, &rotated] {
            let again = assign_at(&app, server, "gus@example.com").await;
            assert_eq!(again["eligible"], false);
            assert_eq!(again["ask_again"], false);
        }
    }
);

// 8. Events received after a withdrawal, dated before it.
api_story!(
    an_event_sent_after_a_withdrawal_is_refused_whatever_time_it_claims,
    |app| {
        let base = app.address.clone();
        running_pilot(&app).await;
        consent_at(&app, &base, "hal@example.com", "granted", &ago(900)).await;
        consent_at(&app, &base, "ida@example.com", "granted", &ago(900)).await;
        // Assigned ten minutes ago (the server's clock moved back for it).
        app.db
            .store
            .simulate_time(Some(chrono::Utc::now() - chrono::Duration::minutes(10)));
        assert_eq!(
            assign_at(&app, &base, "hal@example.com").await["eligible"],
            true
        );
        assert_eq!(
            assign_at(&app, &base, "ida@example.com").await["eligible"],
            true
        );
        app.db.store.simulate_time(None);
        consent_at(&app, &base, "hal@example.com", "withdrawn", &ago(60)).await;
        let objection = json!({"user_id": "ida@example.com", "purpose": "personalize.content", "basis": "consent",
            "status": "objected", "notice_id": "pn", "notice_version": 1,
            "source": {"channel": "app", "method": "tap"}, "collected_at": ago(60)});
        assert_eq!(
            app.post_at(&base, "/api/v1/consents", Role::Ingest, objection)
                .await
                .status(),
            201
        );
        // Both claim to have bought two minutes ago, before they said no.
        let outcome = events_at(
            &app,
            &base,
            json!([
                {"event_id": "late-1", "user_id": "hal@example.com", "name": "purchase", "value": 9.0, "occurred_at": ago(120)},
                {"event_id": "late-2", "user_id": "ida@example.com", "name": "purchase", "value": 9.0, "occurred_at": ago(120)}
            ]),
        )
        .await;
        assert_eq!(outcome["accepted"], 0, "{outcome}");
        let reasons: Vec<&str> = outcome["refused"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["reason"].as_str().unwrap())
            .collect();
        assert_eq!(reasons, ["withdrawn", "objected"]);
        assert!(app.db.store.events_of("hero").await.unwrap().is_empty());
    }
);

// 9. A keyed chain, anchored outside the database.
api_story!(
    cutting_the_newest_audit_entries_is_found_against_the_anchor,
    |app| {
        running_pilot(&app).await;
        let anchors = pilotgate_server::anchor::AnchorFile::new(app.anchor_file());
        let anchor = anchors
            .anchor_now(&app.db.store)
            .await
            .unwrap()
            .expect("an anchor is written");
        let ok: Value = app
            .get_json("/api/v1/audit/verify", Some(Role::Compliance))
            .await;
        assert_eq!(ok["ok"], true, "{ok}");
        assert_eq!(ok["anchor"]["entries"], anchor.entries);
        app.db
            .execute_raw(&format!(
                "DELETE FROM audit_log WHERE id > {}",
                anchor.entries - 2
            ))
            .await
            .unwrap();
        let cut: Value = app
            .get_json("/api/v1/audit/verify", Some(Role::Compliance))
            .await;
        assert_eq!(cut["ok"], false, "{cut}");
        assert_eq!(cut["first_bad_id"], anchor.entries - 1);
        assert!(
            cut["problem"]
                .as_str()
                .unwrap()
                .contains("removed from the end")
        );
        // The server refuses to anchor the cut chain.
        assert!(anchors.anchor_now(&app.db.store).await.is_err());
        // Emptying the table is found too.
        app.db.execute_raw("DELETE FROM audit_log").await.unwrap();
        let emptied: Value = app
            .get_json("/api/v1/audit/verify", Some(Role::Compliance))
            .await;
        assert_eq!(emptied["ok"], false);
        assert_eq!(emptied["first_bad_id"], 1);
    }
);

api_story!(
    an_entry_edited_and_the_chain_recomputed_without_the_key_is_found,
    |app| {
        running_pilot(&app).await;
        // Recompute every hash after entry 2 with the unkeyed SHA-256 the chain used to have.
        let entries = app
            .db
            .store
            .list_audit(&pilotgate_store::AuditQuery {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut prev = entries[0].hash.clone();
        for entry in &entries[1..] {
            let mut forged = entry.clone();
            if forged.id == 2 {
                forged.details = "{}".to_owned();
            }
            let hash = forged.content().legacy_chained_hash(&prev);
            app.db
                .execute_raw(&format!(
                    "UPDATE audit_log SET details = '{}', prev_hash = '{prev}', hash = '{hash}' WHERE id = {}",
                    forged.details.replace('\'', "''"),
                    forged.id
                ))
                .await
                .unwrap();
            prev = hash;
        }
        let report: Value = app
            .get_json("/api/v1/audit/verify", Some(Role::Compliance))
            .await;
        assert_eq!(report["ok"], false);
        assert_eq!(report["first_bad_id"], 2, "{report}");
    }
);

// 5. Opaque server-side sessions.
api_story!(
    a_session_cookie_holds_no_token_and_dies_with_sign_out_revocation_and_time,
    |app| {
        let token = app.tokens[&Role::Compliance].clone();
        let session = web::sign_in(&app.address, &token).await;
        let (full, cookie) = (session.full, session.pair);
        let value = cookie.split_once('=').unwrap().1.to_owned();
        assert!(!full.contains(&token) && !value.contains("pgt_"), "{full}");
        assert!(
            !full.contains("Secure"),
            "plain HTTP without a public https URL"
        );
        assert_eq!(web::page(&app.address, &cookie, "/ui/audit").await.0, 200);

        // Sign-out ends the session in the database: the old cookie is dead.
        let (_, html) = web::page(&app.address, &cookie, "/ui/audit").await;
        let csrf = web::csrf_of(&html);
        let out = web::client()
            .post(format!("{}/ui/sign-out", app.address))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(out.status(), 303);
        assert_eq!(web::page(&app.address, &cookie, "/ui/audit").await.0, 303);

        // Idle for over an hour: ended.
        let idle = web::sign_in(&app.address, &token).await.pair;
        app.db
            .store
            .simulate_time(Some(chrono::Utc::now() + chrono::Duration::minutes(61)));
        assert_eq!(web::page(&app.address, &idle, "/ui/audit").await.0, 303);
        app.db.store.simulate_time(None);

        // Busy, but over eight hours old: ended.
        let old = web::sign_in(&app.address, &token).await.pair;
        // A request every 50 minutes keeps it from idling out.
        for minutes in (50..=470).step_by(50) {
            app.db.store.simulate_time(Some(
                chrono::Utc::now() + chrono::Duration::minutes(minutes),
            ));
            assert_eq!(
                web::page(&app.address, &old, "/ui/audit").await.0,
                200,
                "after {minutes} minutes"
            );
        }
        app.db
            .store
            .simulate_time(Some(chrono::Utc::now() + chrono::Duration::hours(8)));
        assert_eq!(web::page(&app.address, &old, "/ui/audit").await.0, 303);
        app.db.store.simulate_time(None);

        // Revoking the token ends its sessions.
        let live = web::sign_in(&app.address, &token).await.pair;
        assert_eq!(web::page(&app.address, &live, "/ui/audit").await.0, 200);
        app.db
            .store
            .revoke_token(
                "compliance-token",
                Some(Role::Compliance),
                &pilotgate_domain::Actor::operator(),
            )
            .await
            .unwrap();
        assert_eq!(web::page(&app.address, &live, "/ui/audit").await.0, 303);
    }
);

// 11. Secure cookies follow the configuration, never a client's header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_when_the_configuration_says_https_and_not_when_a_client_does() {
    let plain = TestApp::spawn(pilotgate_store::Dialect::Sqlite)
        .await
        .unwrap();
    let spoofed = web::client()
        .get(format!("{}/ui/sign-in", plain.address))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(
        !web::set_cookie(&spoofed, "pilotgate_csrf")
            .unwrap()
            .full
            .contains("Secure")
    );

    let public = TestApp::spawn_with(
        pilotgate_store::Dialect::Sqlite,
        pilotgate_store::testing::test_key_ring(),
        |config| config.public_url = Some("https://pilotgate.example.com".to_owned()),
    )
    .await
    .unwrap();
    let session = web::sign_in(&public.address, &public.tokens[&Role::Analyst])
        .await
        .full;
    assert!(session.contains("; Secure"), "{session}");

    let proxied = TestApp::spawn_with(
        pilotgate_store::Dialect::Sqlite,
        pilotgate_store::testing::test_key_ring(),
        |config| {
            config.trusted_proxies =
                pilotgate_server::network::Network::parse_proxies("127.0.0.1").unwrap()
        },
    )
    .await
    .unwrap();
    let through_proxy = web::client()
        .get(format!("{}/ui/sign-in", proxied.address))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(
        web::set_cookie(&through_proxy, "pilotgate_csrf")
            .unwrap()
            .full
            .contains("Secure")
    );
}

// 14. The ingest token is no oracle, and no contact data rides in free text.
api_story!(
    the_ingest_token_learns_only_whether_to_show_a_variant_or_ask_again,
    |app| {
        let base = app.address.clone();
        running_pilot(&app).await;
        let stored = consent_at(&app, &base, "jo@example.com", "granted", &ago(600)).await;
        assert!(
            stored["records"][0].get("subject").is_none(),
            "no pseudonym for ingest: {stored}"
        );
        let as_compliance: Value = app
            .post_at(
                &base,
                "/api/v1/consents",
                Role::Compliance,
                consent_record("kim@example.com", "granted", &ago(600)),
            )
            .await
            .json()
            .await
            .unwrap();
        assert!(as_compliance["records"][0]["subject"].is_string());

        consent_at(&app, &base, "obi@example.com", "objected", &ago(600)).await;
        consent_at(&app, &base, "era@example.com", "granted", &ago(600)).await;
        let resolved: Value = app
            .post_at(
                &base,
                "/api/v1/subjects/resolve",
                Role::Compliance,
                json!({"user_id": "era@example.com"}),
            )
            .await
            .json()
            .await
            .unwrap();
        app.post_at(
            &base,
            &format!(
                "/api/v1/subjects/{}/erasure",
                resolved["subject"].as_str().unwrap()
            ),
            Role::Compliance,
            json!({}),
        )
        .await;
        let answers = [
            ("jo@example.com", true, false),
            ("nobody@example.com", false, true),
            ("obi@example.com", false, false),
            ("era@example.com", false, false),
        ];
        for (user, eligible, ask_again) in answers {
            let answer = assign_at(&app, &base, user).await;
            assert!(answer.get("subject").is_none(), "{answer}");
            assert_eq!(answer["eligible"], eligible, "{user}: {answer}");
            assert_eq!(answer["ask_again"], ask_again, "{user}: {answer}");
            if !eligible {
                assert_eq!(answer["reason"], "not_eligible", "{user}: {answer}");
            }
        }

        // A contact detail as proof_ref is refused; as event_id it is stored keyed.
        let mut with_email = consent_record("lu@example.com", "granted", &ago(600));
        with_email["proof_ref"] = json!("confirmation sent to lu@example.com");
        let refused = app
            .post_at(&base, "/api/v1/consents", Role::Ingest, with_email)
            .await;
        assert_eq!(refused.status(), 422);
        let body = refused.text().await.unwrap();
        assert!(
            body.contains("proof_ref") && !body.contains("lu@example.com"),
            "{body}"
        );
        let outcome = events_at(
            &app,
            &base,
            json!([{"event_id": "jo@example.com/+491511234567", "user_id": "jo@example.com", "name": "purchase", "value": 1.0, "occurred_at": ago(0)}]),
        )
        .await;
        assert_eq!(outcome["accepted"], 1, "{outcome}");
        let stored = app.db.store.events_of("hero").await.unwrap();
        assert_eq!(stored.len(), 1);
        assert!(!stored[0].event_id.contains('@') && !stored[0].event_id.contains("4915"));
        // A retry is still told apart.
        let again = events_at(
            &app,
            &base,
            json!([{"event_id": "jo@example.com/+491511234567", "user_id": "jo@example.com", "name": "purchase", "value": 1.0, "occurred_at": stored[0].occurred_at.to_rfc3339()}]),
        )
        .await;
        assert_eq!(again["duplicates"], 1, "{again}");
    }
);

// 10. A revoked token's name can be given again.
api_story!(a_revoked_tokens_name_can_be_reused, |app| {
    let operator = pilotgate_domain::Actor::operator();
    let first = app.add_token("crm", Role::Ingest).await;
    app.db
        .store
        .revoke_token("crm", Some(Role::Ingest), &operator)
        .await
        .unwrap();
    let second = app.add_token("crm", Role::Ingest).await;
    assert_ne!(first, second);
    let as_second = app
        .client
        .get(format!("{}/api/v1/experiments", app.address))
        .bearer_auth(&second)
        .send()
        .await
        .unwrap();
    assert_eq!(as_second.status(), 200);
    // Still one active token per name and role, and revoking finds the active one.
    let token = pilotgate_server::service::tokens::issue_token();
    let duplicate = app
        .db
        .store
        .create_token(
            &pilotgate_store::NewToken {
                name: "crm",
                role: Role::Ingest,
                token_id: &token.token_id,
                secret_hash: &token.secret_hash,
            },
            &operator,
        )
        .await;
    assert!(matches!(
        duplicate,
        Err(pilotgate_store::StoreError::Conflict(_))
    ));
    app.db
        .store
        .revoke_token("crm", None, &operator)
        .await
        .unwrap();
});

// 15. The audit page re-verifies only what is new; the experiments list pages.
api_story!(
    the_experiments_list_is_paged_and_counts_each_page_at_once,
    |app| {
        running_pilot(&app).await;
        for n in 0..26 {
            let response = app
                .post_at(
                    &app.address,
                    "/api/v1/experiments",
                    Role::Marketer,
                    design(&format!("draft-{n:02}"), 1.0),
                )
                .await;
            assert_eq!(response.status(), 201);
        }
        let token = app.tokens[&Role::Marketer].clone();
        let cookie = web::sign_in(&app.address, &token).await.pair;
        let (status, first) = web::page(&app.address, &cookie, "/ui/experiments").await;
        assert_eq!(status, 200);
        assert!(first.contains("/ui/experiments?page=2"), "a link to page 2");
        assert!(first.contains("draft-25") && !first.contains("draft-00"));
        let (status, second) = web::page(&app.address, &cookie, "/ui/experiments?page=2").await;
        assert_eq!(status, 200);
        assert!(second.contains("draft-00") && second.contains("Hero"));
        assert!(second.contains("/ui/experiments?page=1"));
    }
);

api_story!(
    the_audit_page_pages_both_ways_and_follows_new_entries,
    |app| {
        for n in 0..130 {
            app.add_token(&format!("t{n}"), Role::Analyst).await;
        }
        let cookie = web::sign_in(&app.address, &app.tokens[&Role::Compliance])
            .await
            .pair;
        let (status, newest) = web::page(&app.address, &cookie, "/ui/audit").await;
        assert_eq!(status, 200);
        assert!(newest.contains("token:t129"));
        let older_link = newest.find("?before=").expect("a link to older entries");
        let before: String = newest[older_link + 8..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let (_, older) =
            web::page(&app.address, &cookie, &format!("/ui/audit?before={before}")).await;
        assert!(
            older.contains("token:t0<") || older.contains("token:t0\""),
            "the oldest page"
        );
        assert!(!older.contains("token:t129"));
        // A new entry edited behind the page's back is found on the next view.
        app.add_token("late", Role::Analyst).await;
        let head = app.db.store.audit_head().await.unwrap();
        app.db
            .execute_raw(&format!(
                "UPDATE audit_log SET target = 'token:other' WHERE id = {}",
                head.entries
            ))
            .await
            .unwrap();
        let (_, tampered) = web::page(&app.address, &cookie, "/ui/audit").await;
        assert!(
            tampered.contains(&format!("{}", head.entries))
                && tampered.to_lowercase().contains("broken"),
            "the chain badge says broken"
        );
    }
);

// 12. The database, its WAL and exports are private to their owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_its_wal_and_exports_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let app = TestApp::spawn(pilotgate_store::Dialect::Sqlite)
        .await
        .unwrap();
    running_pilot(&app).await;
    let file = app.db.sqlite_file().unwrap();
    assert_eq!(mode(&file), 0o600, "{}", file.display());
    let wal = std::path::PathBuf::from(format!("{}-wal", file.display()));
    assert!(wal.exists());
    assert_eq!(mode(&wal), 0o600);
    let out = app.files.path().join("exports").join("hero");
    pilotgate_server::export::export_experiment(
        &app.db.store,
        &app.keys,
        "hero",
        &out,
        pilotgate_analysis::export::FileFormat::Csv,
        &pilotgate_server::export::ExportAuthority::BreakGlass("file modes".to_owned()),
        pilotgate_analysis::disclosure::MinCell::DEFAULT,
    )
    .await
    .unwrap();
    assert_eq!(mode(&out), 0o700);
    assert_eq!(mode(&app.files.path().join("exports")), 0o700);
    for name in ["assignments.csv", "events.csv"] {
        assert_eq!(mode(&out.join(name)), 0o600, "{name}");
    }
}

// 13. An export is audited before any byte is written.
api_story!(an_export_is_audited_before_its_files_are_written, |app| {
    running_pilot(&app).await;
    // The folder cannot be made: a file sits where it should go.
    let blocker = app.files.path().join("blocker");
    std::fs::write(&blocker, "").unwrap();
    let error = pilotgate_server::export::export_experiment(
        &app.db.store,
        &app.keys,
        "hero",
        &blocker.join("out"),
        pilotgate_analysis::export::FileFormat::Csv,
        &pilotgate_server::export::ExportAuthority::BreakGlass("audit order".to_owned()),
        pilotgate_analysis::disclosure::MinCell::DEFAULT,
    )
    .await
    .unwrap_err();
    assert!(error.contains("audited as entry"), "{error}");
    let audited = audit_actions(&app).await;
    assert!(
        audited
            .iter()
            .any(|(action, _, _)| action == "experiment.export"),
        "{audited:?}"
    );
});

api_story!(
    a_decision_from_a_page_showing_an_older_design_is_refused,
    |app| {
        let base = app.address.clone();
        app.start_pilot(design("other", 1.0)).await;
        app.submit_pilot(design("hero", 0.1)).await;
        let cookie = web::sign_in(&base, &app.tokens[&Role::Compliance])
            .await
            .pair;
        let (status, page) = web::page(&base, &cookie, "/ui/experiments/hero/compliance").await;
        assert_eq!(status, 200);
        assert!(
            page.contains("name=\"design_version\" value=\"1\""),
            "the form names the version shown"
        );
        let csrf = web::csrf_of(&page);
        // The design changes while the page is open.
        app.request(
            Method::PUT,
            "/api/v1/experiments/hero",
            Some(Role::Marketer),
        )
        .json(&design("hero", 1.0))
        .send()
        .await
        .unwrap();
        app.post_at(
            &base,
            "/api/v1/experiments/hero/submit",
            Role::Marketer,
            json!({}),
        )
        .await;
        let stale = web::client()
            .post(format!("{base}/ui/experiments/hero/approve"))
            .header("cookie", &cookie)
            .form(&[
                ("design_version", "1"),
                ("comment", "10% coverage is fine"),
                ("csrf", csrf.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), 409);
        assert!(stale.text().await.unwrap().contains("design changed"));
        let pilot: Value = app
            .get_json("/api/v1/experiments/hero", Some(Role::Compliance))
            .await;
        assert_eq!(pilot["state"], "submitted");
    }
);
