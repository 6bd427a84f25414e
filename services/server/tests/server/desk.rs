//! The subject-rights desk (issue 22), on SQLite and PostgreSQL: the Art. 15
//! access document by pseudonym, the lookup by raw id across a key rotation,
//! the desk page over HTTP (lookup, download, erasure with its confirmation
//! and receipt), and that the raw id reaches no page and no audit entry.

use crate::support::{Design, TestApp, pseudonym, web};
use pilotgate_domain::Role;
use pilotgate_domain::pseudonym::{KeyRing, PseudonymKey};
use serde_json::{Value, json};

fn ago(seconds: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(seconds)).to_rfc3339()
}

/// Records `status` for `user` on `purpose` through the server at `base`; the record's id.
async fn consent_at(
    app: &TestApp,
    base: &str,
    user: &str,
    purpose: &str,
    status: &str,
    seconds_ago: i64,
) -> i64 {
    let record = json!({"user_id": user, "purpose": purpose, "basis": "consent", "status": status,
        "notice_id": "pn", "notice_version": 2, "source": {"channel": "app", "method": "tap"},
        "collected_at": ago(seconds_ago)});
    let response = app
        .post_at(base, "/api/v1/consents", Role::Ingest, record)
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["records"][0]["id"].as_i64().expect("a record id")
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

/// `n` purchases of `user` in `hero`, all accepted.
async fn purchases_at(app: &TestApp, base: &str, user: &str, prefix: &str, n: usize) {
    let events: Vec<Value> = (0..n)
        .map(|i| json!({"event_id": format!("{prefix}{i}"), "user_id": user, "name": "purchase", "value": 2.0, "occurred_at": ago(0)}))
        .collect();
    let response = app
        .post_at(
            base,
            "/api/v1/events",
            Role::Ingest,
            json!({"events": events}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], n, "{body}");
}

/// The running pilot `hero` on `personalize.content`, and a second purpose.
async fn pilot_and_two_purposes(app: &TestApp) {
    app.start_pilot(Design::new("hero").json()).await;
    let purpose = json!({"key": "analytics.reporting", "description": "reports", "allowed_bases": ["consent"],
        "min_notice_version": 1, "retention_days": 90});
    app.post_ok("/api/v1/purposes", Role::Compliance, purpose)
        .await;
}

fn rotated_ring() -> KeyRing {
    KeyRing::new(vec![
        pilotgate_store::testing::test_key(),
        PseudonymKey::new(2, vec![0x42; 32]).unwrap(),
    ])
    .unwrap()
}

/// Every audit entry, as the API lists them, as text.
async fn audit_text(app: &TestApp) -> String {
    app.get_json("/api/v1/audit?limit=1000", Some(Role::Compliance))
        .await
        .to_string()
}

api_story!(
    the_access_document_holds_the_ledger_every_assignment_with_its_proof_and_event_counts,
    |app| {
        let base = app.address.clone();
        pilot_and_two_purposes(&app).await;
        let user = "ana@example.com";
        let granted = consent_at(&app, &base, user, "personalize.content", "granted", 60).await;
        consent_at(&app, &base, user, "analytics.reporting", "denied", 30).await;
        let assigned = assign_at(&app, &base, user).await;
        assert_eq!(assigned["eligible"], true);
        purchases_at(&app, &base, user, "a", 3).await;

        let subject = pseudonym(user);
        let document = app
            .get_json(
                &format!("/api/v1/subjects/{subject}/access"),
                Some(Role::Compliance),
            )
            .await;
        assert_eq!(document["subject"], subject.as_str());
        assert_eq!(document["erased"], false);
        assert_eq!(document["known_as"][0]["key_version"], 1);
        let version = &document["versions"][0];
        assert_eq!(version["ledger"].as_array().unwrap().len(), 2, "{document}");
        let current = document["current"].as_array().unwrap();
        let state = |purpose: &str| {
            current
                .iter()
                .find(|c| c["purpose"] == purpose)
                .cloned()
                .unwrap_or_else(|| panic!("{purpose} in {document}"))
        };
        assert_eq!(state("personalize.content")["eligible"], true);
        assert_eq!(state("personalize.content")["status"], "granted");
        assert_eq!(state("analytics.reporting")["eligible"], false);
        assert_eq!(state("analytics.reporting")["reason"], "denied");
        let proof = &version["assignments"][0];
        assert_eq!(proof["experiment"], "hero");
        assert_eq!(proof["variant"], assigned["variant"]);
        assert_eq!(proof["basis"], "consent");
        assert_eq!(proof["consent_record_id"], granted);
        assert_eq!(proof["notice_version"], 2);
        assert_eq!(proof["withdrawn"], false);
        assert!(
            proof["decided_at"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
        assert_eq!(
            version["events"],
            json!([{"experiment": "hero", "events": 3}])
        );
        assert!(version["erasure"].is_null());

        // A withdrawal shows on the proof; the lookup is audited, without the raw id.
        consent_at(&app, &base, user, "personalize.content", "withdrawn", 0).await;
        let document = app
            .get_json(
                &format!("/api/v1/subjects/{subject}/access"),
                Some(Role::Compliance),
            )
            .await;
        assert_eq!(document["versions"][0]["assignments"][0]["withdrawn"], true);
        let audit = audit_text(&app).await;
        assert!(audit.contains("subject.access"));
        assert!(audit.contains(&format!("subject:{subject}")));
        assert!(!audit.contains(user));

        // Only compliance (and admin); a raw id in the path is refused.
        let marketer = app
            .get(
                &format!("/api/v1/subjects/{subject}/access"),
                Some(Role::Marketer),
            )
            .await;
        assert_eq!(marketer.status(), 403);
        let raw = app
            .get(
                "/api/v1/subjects/ana@example.com/access",
                Some(Role::Compliance),
            )
            .await;
        assert_eq!(raw.status(), 400);
        let body = raw.text().await.unwrap();
        assert!(!body.contains("ana@example.com"), "{body}");
    }
);

api_story!(
    a_lookup_by_raw_id_covers_every_key_version_and_is_audited,
    |app| {
        let base = app.address.clone();
        pilot_and_two_purposes(&app).await;
        let user = "gus@example.com";
        let old_record = consent_at(&app, &base, user, "personalize.content", "granted", 60).await;
        assert_eq!(assign_at(&app, &base, user).await["eligible"], true);
        purchases_at(&app, &base, user, "g", 2).await;
        // The key rotates; a record arrives under the new key.
        let rotated = app.instance_with_keys(rotated_ring()).await;
        consent_at(&app, &rotated, user, "analytics.reporting", "granted", 5).await;

        let response = app
            .post_at(
                &rotated,
                "/api/v1/subjects/lookup",
                Role::Compliance,
                json!({"user_id": user}),
            )
            .await;
        assert_eq!(response.status(), 200);
        let person: Value = response.json().await.unwrap();
        let old = pseudonym(user);
        let known: Vec<(String, u64)> = person["known_as"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["subject"].as_str().unwrap().to_owned(),
                    k["key_version"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(known.len(), 2, "{person}");
        assert_eq!(known[0].1, 2, "the current key first");
        assert_eq!(known[1], (old.clone(), 1));
        assert_eq!(person["subject"], known[0].0.as_str());
        let versions = person["versions"].as_array().unwrap();
        assert_eq!(versions[0]["ledger"][0]["purpose"], "analytics.reporting");
        assert_eq!(versions[1]["ledger"][0]["id"], old_record);
        assert_eq!(
            versions[1]["assignments"][0]["consent_record_id"],
            old_record
        );
        assert_eq!(
            versions[1]["events"],
            json!([{"experiment": "hero", "events": 2}])
        );
        // Eligibility over both versions: both purposes granted.
        assert!(
            person["current"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["eligible"] == true),
            "{person}"
        );

        // Audited under the current pseudonym; the raw id nowhere.
        let page = app
            .get_json(
                &format!(
                    "/api/v1/audit?action=subject.lookup&target=subject:{}",
                    known[0].0
                ),
                Some(Role::Compliance),
            )
            .await;
        assert_eq!(page["entries"].as_array().unwrap().len(), 1, "{page}");
        assert!(!audit_text(&app).await.contains(user));

        // The raw id is checked like any other: too long is 422, without an echo.
        let long = "x".repeat(300);
        let refused = app
            .post_at(
                &rotated,
                "/api/v1/subjects/lookup",
                Role::Compliance,
                json!({"user_id": long}),
            )
            .await;
        assert_eq!(refused.status(), 422);
        assert!(!refused.text().await.unwrap().contains(&long));
        let marketer = app
            .post_at(
                &rotated,
                "/api/v1/subjects/lookup",
                Role::Marketer,
                json!({"user_id": user}),
            )
            .await;
        assert_eq!(marketer.status(), 403);
    }
);

api_story!(
    the_desk_page_shows_a_person_across_key_versions_and_erases_them_all,
    |app| {
        let base = app.address.clone();
        pilot_and_two_purposes(&app).await;
        let user = "hana.raw-id-7731@example.com";
        let record = consent_at(&app, &base, user, "personalize.content", "granted", 60).await;
        assert_eq!(assign_at(&app, &base, user).await["eligible"], true);
        purchases_at(&app, &base, user, "h", 4).await;
        let rotated = app.instance_with_keys(rotated_ring()).await;
        consent_at(&app, &rotated, user, "analytics.reporting", "granted", 5).await;

        let cookie = web::sign_in(&rotated, &app.tokens[&Role::Compliance])
            .await
            .pair;
        let (status, form) = web::page(&rotated, &cookie, "/ui/subjects").await;
        assert_eq!(status, 200);
        assert!(
            form.contains("href=\"/ui/subjects\""),
            "a nav link for compliance"
        );
        assert!(form.contains("autocomplete=\"off\""));
        let csrf = web::csrf_of(&form);

        // Without the CSRF token, nothing is looked up.
        let forged = web::submit(
            &rotated,
            &cookie,
            "/ui/subjects",
            &[("user_id", user), ("csrf", "x")],
        )
        .await;
        assert_eq!(forged.status(), 403);

        let response = web::submit(
            &rotated,
            &cookie,
            "/ui/subjects",
            &[("user_id", user), ("csrf", csrf.as_str())],
        )
        .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
        let page = response.text().await.unwrap();
        let old = pseudonym(user);
        assert!(page.contains(&old), "the old key's pseudonym");
        assert!(page.contains("v2") && page.contains("v1"));
        assert!(page.contains("analytics.reporting") && page.contains("personalize.content"));
        assert!(
            page.contains("href=\"/ui/experiments/hero\""),
            "the assignment's pilot"
        );
        assert!(
            page.contains(&format!("<td class=\"num\">{record}</td>")),
            "its consent record"
        );
        assert!(page.contains("Download what is held (JSON)"));
        assert!(
            !page.contains(user) && !page.contains("raw-id-7731"),
            "the raw id is never on the page"
        );
        let current = {
            let at = page.find("name=\"subject\" value=\"").unwrap() + 22;
            page[at..at + 64].to_owned()
        };
        assert_ne!(current, old);

        // The download: the access document as an attachment.
        let download = web::submit(
            &rotated,
            &cookie,
            "/ui/subjects/download",
            &[("subject", current.as_str()), ("csrf", csrf.as_str())],
        )
        .await;
        assert_eq!(download.status(), 200);
        assert!(
            download
                .headers()
                .get("content-disposition")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        let held: Value = download.json().await.unwrap();
        assert_eq!(held["known_as"].as_array().unwrap().len(), 2, "{held}");
        assert_eq!(held["versions"][1]["events"][0]["events"], 4);

        // Erase: a confirmation first, then the receipt.
        let confirm = web::submit(
            &rotated,
            &cookie,
            "/ui/subjects/erase",
            &[("subject", current.as_str()), ("csrf", csrf.as_str())],
        )
        .await;
        assert_eq!(confirm.status(), 200);
        let confirm = confirm.text().await.unwrap();
        assert!(confirm.contains("Erase the person now"));
        assert!(confirm.contains("1 assignment and 4 events"), "{confirm}");
        assert_eq!(
            app.db.store.assignments_of("hero").await.unwrap().len(),
            1,
            "not yet"
        );
        let receipt = web::submit(
            &rotated,
            &cookie,
            "/ui/subjects/erasure",
            &[("subject", current.as_str()), ("csrf", csrf.as_str())],
        )
        .await;
        assert_eq!(receipt.status(), 200);
        let receipt = receipt.text().await.unwrap();
        assert!(
            receipt.contains(&old) && receipt.contains(&current),
            "both versions"
        );
        assert!(
            receipt.contains("1 assignment and 4 events deleted"),
            "{receipt}"
        );
        assert!(
            app.db
                .store
                .assignments_of("hero")
                .await
                .unwrap()
                .is_empty()
        );
        assert!(app.db.store.events_of("hero").await.unwrap().is_empty());
        assert_eq!(app.db.store.erasure_count().await.unwrap(), 2);
        // Again: erased already (409), and the person is refused under either key.
        let again = web::submit(
            &rotated,
            &cookie,
            "/ui/subjects/erasure",
            &[("subject", current.as_str()), ("csrf", csrf.as_str())],
        )
        .await;
        assert_eq!(again.status(), 409);
        for server in [&base, &rotated] {
            assert_eq!(assign_at(&app, server, user).await["eligible"], false);
        }

        // Every desk action is audited, and no entry holds the raw id.
        let audit = audit_text(&app).await;
        for action in ["subject.lookup", "subject.access", "subject.erase"] {
            assert!(audit.contains(action), "{action}");
        }
        assert!(!audit.contains("raw-id-7731"));

        // The marketer has no desk: no link, and 403 on the page and its forms.
        let marketer = web::sign_in(&rotated, &app.tokens[&Role::Marketer])
            .await
            .pair;
        let (status, experiments) = web::page(&rotated, &marketer, "/ui/experiments").await;
        assert_eq!(status, 200);
        assert!(!experiments.contains("/ui/subjects"));
        let (status, _) = web::page(&rotated, &marketer, "/ui/subjects").await;
        assert_eq!(status, 403);
        let marketer_csrf = web::csrf_of(&experiments);
        let refused = web::submit(
            &rotated,
            &marketer,
            "/ui/subjects",
            &[("user_id", user), ("csrf", marketer_csrf.as_str())],
        )
        .await;
        assert_eq!(refused.status(), 403);
        assert!(!refused.text().await.unwrap().contains("raw-id-7731"));
    }
);
