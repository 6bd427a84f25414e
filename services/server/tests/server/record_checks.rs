//! Records checked one by one against the registry in force (issue 22,
//! attack review), on SQLite and PostgreSQL: a grant for a retired purpose
//! is that record's error in a consent batch and an import, the others are
//! stored; a notice may not ask for a retired purpose nor give one language
//! twice; an assessment is not dated in the future; and the audit filter
//! finds what a customer did through a privacy link.

use crate::consents_api::assessment;
use crate::notices_api::{notice_from_template, register_template_purposes, template};
use crate::support::{TestApp, assert_json_error, process};
use pilotgate_domain::{Actor, Role};
use serde_json::{Value, json};

const RETIRED: &str = "analytics.shop.retired";
const ACTIVE: &str = "personalize.content";

/// A record for `user` on `purpose` with `status`.
fn record(user: &str, purpose: &str, status: &str) -> Value {
    json!({"user_id": user, "purpose": purpose, "basis": "consent", "status": status,
        "notice_id": "pn", "notice_version": 1,
        "source": {"channel": "app", "method": "tap"}, "collected_at": "2026-01-01T00:00:00Z"})
}

/// Registers [`ACTIVE`] and [`RETIRED`], and retires the latter.
async fn registry_with_a_retired_purpose(app: &TestApp) {
    app.register_purpose().await;
    app.post_ok(
        "/api/v1/purposes",
        Role::Compliance,
        json!({"key": RETIRED, "description": "d", "allowed_bases": ["consent"],
            "min_notice_version": 1, "retention_days": 90}),
    )
    .await;
    app.post_ok(
        &format!("/api/v1/purposes/{RETIRED}/retire"),
        Role::Compliance,
        json!({"reason": "the shop closed"}),
    )
    .await;
}

api_story!(
    a_grant_for_a_retired_purpose_is_one_records_error_in_a_batch,
    |app| {
        registry_with_a_retired_purpose(&app).await;
        let response = app
            .post(
                "/api/v1/consents",
                Role::Ingest,
                json!({"records": [
                    record("a@example.com", RETIRED, "granted"),
                    record("a@example.com", RETIRED, "withdrawn"),
                    record("b@example.com", ACTIVE, "granted"),
                ]}),
            )
            .await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        let stored: Vec<i64> = body["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["index"].as_i64().unwrap())
            .collect();
        assert_eq!(stored, [1, 2]);
        assert_eq!(
            body["invalid"],
            json!([{"index": 0, "field": "purpose", "reason": "is retired: it takes no new consent"}])
        );
        assert!(!body.to_string().contains("example.com"));
        // Alone, it is the request's 422, like an unknown purpose.
        let alone = app
            .post(
                "/api/v1/consents",
                Role::Ingest,
                record("c@example.com", RETIRED, "granted"),
            )
            .await;
        let error = assert_json_error(alone, 422).await;
        assert_eq!(
            error["message"],
            "the record is invalid: purpose: is retired: it takes no new consent"
        );
    }
);

api_story!(
    an_import_skips_a_grant_for_a_retired_purpose_and_stores_the_rest,
    |app| {
        registry_with_a_retired_purpose(&app).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ledger.csv");
        let rows = [
            format!("a@example.com,{ACTIVE},consent,granted,pn,1,2026-01-08T20:50:59Z"),
            format!("b@example.com,{RETIRED},consent,granted,pn,1,2026-01-08T20:50:59Z"),
            format!("b@example.com,{RETIRED},consent,denied,pn,1,2026-01-08T20:50:59Z"),
            format!("c@example.com,{ACTIVE},consent,granted,pn,1,2026-01-08T20:50:59Z"),
        ];
        let csv = format!(
            "user_id,purpose,basis,status,notice_id,notice_version,collected_at\n{}\n",
            rows.join("\n")
        );
        std::fs::write(&file, csv).unwrap();
        let output = process::run(
            process::pilotgate(dir.path(), Some(&app.db.url))
                .args(["consents", "import"])
                .arg(&file),
        );
        let report = process::text(&output.stderr);
        assert!(output.status.success(), "{report}");
        assert!(
            report.contains("4 rows, 3 stored, 0 already present, 1 invalid"),
            "{report}"
        );
        let line = format!(
            "{}:3: column 'purpose': is retired: it takes no new consent",
            file.display()
        );
        assert!(report.contains(&line), "{report}");
        assert!(!report.contains("example.com"), "{report}");
        let map = app
            .db
            .store
            .legal_basis_map(chrono::Utc::now())
            .await
            .unwrap();
        let mut counts: Vec<(&str, &str, i64)> = map
            .counts
            .iter()
            .map(|c| (c.purpose.as_str(), c.status.as_str(), c.subjects))
            .collect();
        counts.sort();
        // a and c with their grants, b with the denial.
        assert_eq!(counts, [(RETIRED, "denied", 1), (ACTIVE, "granted", 2)]);
    }
);

api_story!(
    a_notice_may_not_ask_for_a_retired_purpose_nor_give_a_language_twice,
    |app| {
        register_template_purposes(&app).await;
        let body = notice_from_template(&app, "shop-testing", "ab-testing").await;
        app.post_ok("/api/v1/notices", Role::Compliance, body.clone())
            .await;
        let mut twice = notice_from_template(&app, "shop-twice", "ab-testing").await;
        twice["languages"]["En"] = twice["languages"]["en"].clone();
        let error = assert_json_error(
            app.post("/api/v1/notices", Role::Compliance, twice).await,
            422,
        )
        .await;
        assert_eq!(
            error["message"],
            "languages: 'en' is given twice (language tags are compared without regard to case)"
        );
        let mut twice = template(&app, "ab-testing").await;
        twice["languages"]["DE"] = twice["languages"]["de"].clone();
        let response = app
            .post(
                "/api/v1/notices/shop-testing/versions",
                Role::Compliance,
                twice,
            )
            .await;
        assert_json_error(response, 422).await;

        app.post_ok(
            "/api/v1/purposes/analytics.storefront.ab_testing/retire",
            Role::Compliance,
            json!({"reason": "no more tests"}),
        )
        .await;
        let retired =
            "purposes: 'analytics.storefront.ab_testing' is retired: a notice may not ask for it";
        let fresh = notice_from_template(&app, "shop-later", "ab-testing").await;
        let error = assert_json_error(
            app.post("/api/v1/notices", Role::Compliance, fresh).await,
            422,
        )
        .await;
        assert_eq!(error["message"], retired);
        let next = template(&app, "ab-testing").await;
        let response = app
            .post(
                "/api/v1/notices/shop-testing/versions",
                Role::Compliance,
                next,
            )
            .await;
        assert_eq!(assert_json_error(response, 422).await["message"], retired);
        // A notice for purposes in force is still published.
        let offers = notice_from_template(&app, "shop-offers", "personalisation").await;
        app.post_ok("/api/v1/notices", Role::Compliance, offers)
            .await;
    }
);

api_story!(an_assessment_is_not_dated_in_the_future, |app| {
    app.post_ok(
        "/api/v1/purposes",
        Role::Compliance,
        json!({"key": "analytics.shop.ab_testing", "description": "d", "allowed_bases": ["consent"],
            "min_notice_version": 1, "retention_days": 90}),
    )
    .await;
    let path = "/api/v1/purposes/analytics.shop.ab_testing/assessments";
    let in_two_days = (chrono::Utc::now() + chrono::TimeDelta::days(2))
        .format("%Y-%m-%d")
        .to_string();
    for day in ["9999-12-31", in_two_days.as_str()] {
        let mut future = assessment("positive");
        future["reviewed_on"] = json!(day);
        let error = assert_json_error(app.post(path, Role::Compliance, future).await, 422).await;
        assert_eq!(
            error["message"],
            "reviewed_on may not be in the future: give the day the review was made"
        );
    }
    let mut today = assessment("positive");
    today["reviewed_on"] = json!(chrono::Utc::now().format("%Y-%m-%d").to_string());
    app.post_ok(path, Role::Compliance, today).await;
});

api_story!(
    the_audit_filter_finds_the_customer_of_a_privacy_link,
    |app| {
        app.db
            .store
            .record_audit(
                &Actor::customer(),
                "privacy.save",
                "notice:shop-testing".to_owned(),
                json!({"records": 1}),
            )
            .await
            .unwrap();
        for actor in ["customer", "customer%20(privacy%20link)"] {
            let found = app
                .get_json(
                    &format!("/api/v1/audit?actor={actor}&limit=100"),
                    Some(Role::Compliance),
                )
                .await;
            let entries = found["entries"].as_array().unwrap();
            assert_eq!(entries.len(), 1, "{actor}: {found}");
            assert_eq!(entries[0]["actor"], "customer (privacy link)");
        }
        let cookie = app.sign_in(&app.tokens[&Role::Compliance]).await;
        let (status, page) = app.page(&cookie, "/ui/audit?actor=customer").await;
        assert_eq!(status, 200);
        assert!(page.contains("customer (privacy link)"), "{page}");
    }
);
