//! The purpose registry, the consent ledger, subjects, erasure and the
//! legal-basis map through the HTTP API, on SQLite and PostgreSQL.

use crate::support::{TestApp, assert_json_error};
use pilotgate_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

fn purpose(key: &str, bases: &[&str]) -> Value {
    json!({
        "key": key, "description": "Personalized content on the home page",
        "allowed_bases": bases, "min_notice_version": 2, "retention_days": 90
    })
}

/// A legitimate-interest assessment with `outcome`, as compliance records it.
pub(crate) fn assessment(outcome: &str) -> Value {
    json!({
        "purpose_test": "Knowing which report layout helps is a legitimate interest.",
        "necessity_test": "Aggregate A/B tests on pseudonyms are the least intrusive way.",
        "interests": "Clearer reports.",
        "expectations": "Customers expect the shop to improve its pages.",
        "safeguards": "Pseudonyms, 90 days, objection honoured at once.",
        "outcome": outcome, "reviewer": "Dana (DPO)", "reviewed_on": "2026-12-01"
    })
}

fn record(user: &str, purpose: &str, status: &str, collected_at: &str) -> Value {
    json!({
        "user_id": user, "purpose": purpose, "basis": "consent", "status": status,
        "notice_id": "privacy-notice", "notice_version": 2,
        "source": {"channel": "banner", "method": "click"},
        "collected_at": collected_at, "proof_ref": "cmp://receipts/1"
    })
}

async fn register_purposes(app: &TestApp) {
    let created = app
        .post(
            "/api/v1/purposes",
            Role::Compliance,
            purpose("personalize.content", &["consent"]),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created = app
        .post(
            "/api/v1/purposes",
            Role::Compliance,
            purpose(
                "analytics.reporting.ab_testing",
                &["consent", "legitimate_interest"],
            ),
        )
        .await;
    assert_eq!(created.status(), 201);
    let assessed = app
        .post(
            "/api/v1/purposes/analytics.reporting.ab_testing/assessments",
            Role::Compliance,
            assessment("positive"),
        )
        .await;
    assert_eq!(assessed.status(), 201);
}

async fn resolve(app: &TestApp, user: &str) -> String {
    let resolved: Value = app
        .post(
            "/api/v1/subjects/resolve",
            Role::Compliance,
            json!({"user_id": user}),
        )
        .await
        .json()
        .await
        .unwrap();
    resolved["subject"].as_str().unwrap().to_owned()
}

api_story!(purposes_are_registered_validated_and_listed, |app| {
    register_purposes(&app).await;
    let duplicate = app
        .post(
            "/api/v1/purposes",
            Role::Compliance,
            purpose("personalize.content", &["consent"]),
        )
        .await;
    assert_json_error(duplicate, 409).await;
    let profiling_on_li = app
        .post(
            "/api/v1/purposes",
            Role::Compliance,
            purpose("personalize.offers", &["consent", "legitimate_interest"]),
        )
        .await;
    let body = assert_json_error(profiling_on_li, 422).await;
    assert!(
        body["message"].as_str().unwrap().contains("consent only"),
        "{body}"
    );
    let bad_key = app
        .post(
            "/api/v1/purposes",
            Role::Compliance,
            purpose("Personalize", &["consent"]),
        )
        .await;
    assert_json_error(bad_key, 422).await;
    let bad_basis = app
        .post(
            "/api/v1/purposes",
            Role::Compliance,
            purpose("a.b", &["opt_in"]),
        )
        .await;
    assert_json_error(bad_basis, 422).await;
    let mut unknown_field = purpose("a.b", &["consent"]);
    unknown_field["colour"] = json!("red");
    assert_json_error(
        app.post("/api/v1/purposes", Role::Compliance, unknown_field)
            .await,
        422,
    )
    .await;
    let malformed = app
        .request(Method::POST, "/api/v1/purposes", Some(Role::Compliance))
        .header("content-type", "application/json")
        .body("{\"key\":")
        .send()
        .await
        .unwrap();
    assert_json_error(malformed, 400).await;

    let listed: Value = app.get_json("/api/v1/purposes", Some(Role::Ingest)).await;
    let keys: Vec<&str> = listed["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["analytics.reporting.ab_testing", "personalize.content"]
    );
});

api_story!(
    a_single_record_is_stored_under_the_pseudonym_and_replays_store_nothing,
    |app| {
        register_purposes(&app).await;
        let one = record(
            "alice@example.com",
            "personalize.content",
            "granted",
            "2026-01-08T20:50:59Z",
        );
        let stored: Value = app
            .post("/api/v1/consents", Role::Ingest, one.clone())
            .await
            .json()
            .await
            .unwrap();
        let subject = resolve(&app, "alice@example.com").await;
        assert!(
            stored["records"][0].get("subject").is_none(),
            "the ingest token gets no pseudonym: {stored}"
        );
        assert_eq!(subject, crate::support::pseudonym("alice@example.com"));
        assert_eq!(stored["records"][0]["duplicate"], false);
        let replay = app.post("/api/v1/consents", Role::Ingest, one).await;
        assert_eq!(replay.status(), 201);
        let replay: Value = replay.json().await.unwrap();
        assert_eq!(replay["records"][0]["duplicate"], true);
        assert_eq!(replay["records"][0]["id"], stored["records"][0]["id"]);
        let text = serde_json::to_string(&replay).unwrap();
        assert!(!text.contains("alice"), "a raw id came back: {text}");
    }
);

api_story!(
    a_batch_stores_the_valid_records_and_names_each_invalid_one,
    |app| {
        register_purposes(&app).await;
        let mut missing_field = record(
            "u3",
            "personalize.content",
            "granted",
            "2026-01-08T20:50:59Z",
        );
        missing_field.as_object_mut().unwrap().remove("notice_id");
        let batch = json!({"records": [
            record("u1", "personalize.content", "granted", "2026-01-08T20:50:59Z"),
            record("u2", "no.such_purpose", "granted", "2026-01-08T20:50:59Z"),
            missing_field,
            record("u4", "personalize.content", "granted", "last tuesday"),
            record("u5", "personalize.content", "maybe", "2026-01-08T20:50:59Z"),
            record("u6", "personalize.content", "withdrawn", "2026-01-09T10:00:00+02:00"),
            json!("not an object"),
        ]});
        let response = app.post("/api/v1/consents", Role::Compliance, batch).await;
        assert_eq!(response.status(), 201);
        let outcome: Value = response.json().await.unwrap();
        let stored: Vec<u64> = outcome["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["index"].as_u64().unwrap())
            .collect();
        assert_eq!(stored, [0, 5]);
        let invalid: Vec<(u64, &str)> = outcome["invalid"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["index"].as_u64().unwrap(), r["field"].as_str().unwrap()))
            .collect();
        assert_eq!(
            invalid,
            [
                (1, "purpose"),
                (2, "record"),
                (3, "collected_at"),
                (4, "status"),
                (6, "record")
            ]
        );
        assert!(
            outcome["invalid"][1]["reason"]
                .as_str()
                .unwrap()
                .contains("notice_id"),
            "{outcome}"
        );

        let all_bad = app
            .post(
                "/api/v1/consents",
                Role::Compliance,
                json!({"records": [record("u7", "x.y", "granted", "2026-01-08T20:50:59Z")]}),
            )
            .await;
        let body = assert_json_error(all_bad, 422).await;
        assert_eq!(body["invalid"][0]["field"], "purpose");

        let too_many: Vec<Value> = (0..1001)
            .map(|i| {
                record(
                    &format!("u{i}"),
                    "personalize.content",
                    "granted",
                    "2026-01-08T20:50:59Z",
                )
            })
            .collect();
        let too_many = app
            .post(
                "/api/v1/consents",
                Role::Ingest,
                json!({"records": too_many}),
            )
            .await;
        // 1001 records are about 330 KB, over this test app's 64 KiB body limit: refused before parsing.
        assert!([413, 422].contains(&too_many.status().as_u16()));
        assert_json_error(
            app.post("/api/v1/consents", Role::Ingest, json!({"records": []}))
                .await,
            422,
        )
        .await;
        assert_json_error(
            app.post("/api/v1/consents", Role::Ingest, json!([1, 2]))
                .await,
            422,
        )
        .await;

        let map: Value = app
            .get_json("/api/v1/legal-basis-map", Some(Role::Analyst))
            .await;
        let granted = map["counts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["status"] == "granted")
            .unwrap();
        assert_eq!(granted["subjects"], 1);
    }
);

api_story!(a_batch_of_1001_records_is_refused_whole, |app| {
    register_purposes(&app).await;
    let records: Vec<Value> = (0..1001)
        .map(|i| json!({"user_id": format!("{i}")}))
        .collect();
    let body = assert_json_error(
        app.post(
            "/api/v1/consents",
            Role::Ingest,
            json!({"records": records}),
        )
        .await,
        422,
    )
    .await;
    assert!(
        body["message"].as_str().unwrap().contains("at most 1000"),
        "{body}"
    );
    let map: Value = app
        .get_json("/api/v1/legal-basis-map", Some(Role::Compliance))
        .await;
    assert_eq!(map["counts"].as_array().unwrap().len(), 0);
});

api_story!(a_withdrawal_takes_effect_for_the_very_next_request, |app| {
    register_purposes(&app).await;
    let now = chrono::Utc::now() - chrono::Duration::seconds(1);
    let subject = resolve(&app, "bob@example.com").await;
    app.post(
        "/api/v1/consents",
        Role::Ingest,
        record(
            "bob@example.com",
            "personalize.content",
            "granted",
            &now.to_rfc3339(),
        ),
    )
    .await;
    let path = format!("/api/v1/subjects/{subject}/consents");
    let state: Value = app.get_json(&path, Some(Role::Compliance)).await;
    assert_eq!(state["current"][0]["eligible"], true, "{state}");

    let withdrawal = record(
        "bob@example.com",
        "personalize.content",
        "withdrawn",
        &chrono::Utc::now().to_rfc3339(),
    );
    assert_eq!(
        app.post("/api/v1/consents", Role::Ingest, withdrawal)
            .await
            .status(),
        201
    );
    let state: Value = app.get_json(&path, Some(Role::Compliance)).await;
    assert_eq!(state["current"][0]["eligible"], false);
    assert_eq!(state["current"][0]["reason"], "withdrawn");
    assert_eq!(state["current"][0]["status"], "withdrawn");
    assert_eq!(state["history"].as_array().unwrap().len(), 2);
});

api_story!(
    erasure_returns_a_receipt_blocks_the_subject_and_is_audited,
    |app| {
        register_purposes(&app).await;
        let now = chrono::Utc::now() - chrono::Duration::seconds(1);
        app.post(
            "/api/v1/consents",
            Role::Ingest,
            record(
                "carol@example.com",
                "personalize.content",
                "granted",
                &now.to_rfc3339(),
            ),
        )
        .await;
        let subject = resolve(&app, "carol@example.com").await;
        let erasure = app
            .post(
                &format!("/api/v1/subjects/{subject}/erasure"),
                Role::Compliance,
                json!({}),
            )
            .await;
        assert_eq!(erasure.status(), 200);
        let receipt: Value = erasure.json().await.unwrap();
        assert_eq!(receipt["subject"], subject.as_str());
        assert_eq!(receipt["deleted"], json!({"assignments": 0, "events": 0}));
        let audit: Value = app
            .get(
                &format!("/api/v1/audit?target=subject:{subject}"),
                Some(Role::Compliance),
            )
            .await
            .json()
            .await
            .unwrap();
        let actions: Vec<&str> = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert!(actions.contains(&"subject.erase"), "{actions:?}");
        assert_eq!(
            audit["entries"].as_array().unwrap().last().unwrap()["id"],
            receipt["audit_id"]
        );

        let state: Value = app
            .get(
                &format!("/api/v1/subjects/{subject}/consents"),
                Some(Role::Compliance),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(state["current"][0]["reason"], "erased");
        assert_eq!(
            state["history"].as_array().unwrap().len(),
            1,
            "the ledger is kept"
        );
        assert_json_error(
            app.post(
                &format!("/api/v1/subjects/{subject}/erasure"),
                Role::Compliance,
                json!({}),
            )
            .await,
            409,
        )
        .await;
        assert_json_error(
            app.post(
                "/api/v1/subjects/not-a-pseudonym/erasure",
                Role::Compliance,
                json!({}),
            )
            .await,
            400,
        )
        .await;
        let verify: Value = app
            .get_json("/api/v1/audit/verify", Some(Role::Compliance))
            .await;
        assert_eq!(verify["ok"], true);
    }
);

/// After a key rotation new records use the new key, and lookups find the
/// person's records under every version.
async fn key_rotation_story(dialect: pilotgate_store::Dialect) {
    use pilotgate_domain::consent::{Channel, ConsentDraft, ConsentStatus};
    use pilotgate_domain::eligibility::{Eligibility, Reason};
    use pilotgate_domain::pseudonym::{KeyRing, PseudonymKey};
    use pilotgate_domain::purpose::{LegalBasis, PurposeKey};

    let old_key = PseudonymKey::new(1, vec![1; 32]).unwrap();
    let new_key = PseudonymKey::new(2, vec![2; 32]).unwrap();
    let ring = KeyRing::new(vec![old_key.clone(), new_key.clone()]).unwrap();
    let Some(app) = TestApp::spawn_with_keys(dialect, ring.clone()).await else {
        return;
    };
    register_purposes(&app).await;
    let old = old_key.pseudonymize("erin@example.com");
    let new = new_key.pseudonymize("erin@example.com");
    let collected = chrono::Utc::now() - chrono::Duration::hours(2);
    let grant = ConsentDraft {
        subject: old.clone(),
        purpose: PurposeKey::parse("personalize.content").unwrap(),
        basis: LegalBasis::Consent,
        status: ConsentStatus::Granted,
        notice_id: "privacy-notice".to_owned(),
        notice_version: 2,
        channel: Channel::Banner,
        method: "click".to_owned(),
        collected_at: collected,
        effective_from: None,
        expires_at: None,
        proof_ref: None,
    }
    .finish(chrono::Utc::now())
    .unwrap();
    app.db
        .store
        .append_consents(&[grant], &pilotgate_domain::Actor::operator())
        .await
        .unwrap();

    let resolved: Value = app
        .post(
            "/api/v1/subjects/resolve",
            Role::Compliance,
            json!({"user_id": "erin@example.com"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resolved["subject"], new.as_str());
    assert_eq!(resolved["key_version"], 2);
    assert_eq!(
        resolved["known_as"],
        json!([{"subject": old.as_str(), "key_version": 1}])
    );

    let withdrawal = record(
        "erin@example.com",
        "personalize.content",
        "withdrawn",
        &(chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339(),
    );
    let stored: Value = app
        .post("/api/v1/consents", Role::Compliance, withdrawal)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        stored["records"][0]["subject"],
        new.as_str(),
        "new records use the current key"
    );

    let purpose = app
        .db
        .store
        .purpose("personalize.content")
        .await
        .unwrap()
        .unwrap();
    let candidates: Vec<String> = ring
        .candidates("erin@example.com")
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect();
    let now = chrono::Utc::now();
    assert_eq!(
        app.db
            .store
            .eligibility(&candidates, &purpose, now)
            .await
            .unwrap(),
        Eligibility::Ineligible(Reason::Withdrawn)
    );
    assert!(
        app.db
            .store
            .eligibility(&[old.as_str().to_owned()], &purpose, now)
            .await
            .unwrap()
            .is_eligible()
    );
    let resolved: Value = app
        .post(
            "/api/v1/subjects/resolve",
            Role::Compliance,
            json!({"user_id": "erin@example.com"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resolved["known_as"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_keeps_every_version_findable_on_sqlite() {
    key_rotation_story(pilotgate_store::Dialect::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_keeps_every_version_findable_on_postgres() {
    key_rotation_story(pilotgate_store::Dialect::Postgres).await;
}

api_story!(
    consent_batches_with_and_without_expiry_are_all_stored,
    |app| {
        // Legitimate-interest records carry no expiry, consents do: batches
        // of the same size mixing both must all be stored (PostgreSQL
        // caches a statement per row count).
        register_purposes(&app).await;
        let record = |user: String, basis: &str| {
            json!({"user_id": user, "purpose": "analytics.reporting.ab_testing", "basis": basis, "status": "granted",
                "notice_id": "privacy-notice", "notice_version": 2,
                "source": {"channel": "banner", "method": "click"}, "collected_at": "2026-01-01T00:00:00Z"})
        };
        for (round, bases) in [
            ["legitimate_interest", "legitimate_interest"],
            ["consent", "consent"],
            ["legitimate_interest", "consent"],
            ["consent", "legitimate_interest"],
        ]
        .into_iter()
        .enumerate()
        {
            let records: Vec<Value> = bases
                .iter()
                .enumerate()
                .map(|(i, basis)| record(format!("exp{round}-{i}@example.com"), basis))
                .collect();
            let stored = app
                .post(
                    "/api/v1/consents",
                    Role::Ingest,
                    json!({"records": records}),
                )
                .await;
            assert_eq!(
                stored.status(),
                201,
                "round {round}: {}",
                stored.text().await.unwrap()
            );
        }
    }
);
