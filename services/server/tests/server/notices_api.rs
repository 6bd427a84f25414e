//! Notices through the HTTP API, on SQLite and PostgreSQL: creating (from
//! scratch or a template), publishing versions numbered by the server, the
//! 422s that name the field, roles. The `/ui/notices` page is
//! `notices_page.rs`.

use crate::support::{TestApp, assert_json_error};
use pilotgate_domain::Role;
use serde_json::{Value, json};

/// Registers the purposes the templates name: A/B testing (consent or
/// legitimate interest) and two profiling purposes (consent only).
pub async fn register_template_purposes(app: &TestApp) {
    let purposes = [
        (
            "analytics.storefront.ab_testing",
            json!(["consent", "legitimate_interest"]),
        ),
        ("personalize.content.profiling", json!(["consent"])),
        ("personalize.offers.profiling", json!(["consent"])),
    ];
    for (key, bases) in purposes {
        app.post_ok(
            "/api/v1/purposes",
            Role::Compliance,
            json!({"key": key, "description": "d", "allowed_bases": bases, "min_notice_version": 1,
                   "retention_days": 90}),
        )
        .await;
    }
    app.post_ok(
        "/api/v1/purposes/analytics.storefront.ab_testing/assessments",
        Role::Compliance,
        crate::consents_api::assessment("positive"),
    )
    .await;
}

/// The template `key`'s content, as the API lists it.
pub async fn template(app: &TestApp, key: &str) -> Value {
    let templates = app
        .get_json("/api/v1/notices/templates", Some(Role::Marketer))
        .await;
    templates["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == key)
        .unwrap_or_else(|| panic!("template {key}"))["content"]
        .clone()
}

/// A notice body for `id` from the template `key`.
pub async fn notice_from_template(app: &TestApp, id: &str, key: &str) -> Value {
    let mut body = template(app, key).await;
    body["id"] = json!(id);
    body
}

api_story!(
    notices_are_created_published_with_server_numbers_and_listed,
    |app| {
        register_template_purposes(&app).await;
        let body = notice_from_template(&app, "shop-testing", "ab-testing").await;
        let forbidden = app
            .post("/api/v1/notices", Role::Marketer, body.clone())
            .await;
        assert_json_error(forbidden, 403).await;
        let created = app
            .post_ok("/api/v1/notices", Role::Compliance, body.clone())
            .await;
        assert_eq!(created["id"], "shop-testing");
        assert_eq!(created["latest_version"], 1);
        assert_eq!(
            created["versions"][0]["languages"]["de"]["title"],
            "Helfen Sie uns, unseren Shop zu verbessern"
        );
        let again = app
            .post("/api/v1/notices", Role::Compliance, body.clone())
            .await;
        assert_json_error(again, 409).await;

        let mut next = template(&app, "ab-testing").await;
        next["languages"]["en"]["title"] = json!("Help us improve our shop (2)");
        let published = app
            .post_ok(
                "/api/v1/notices/shop-testing/versions",
                Role::Compliance,
                next.clone(),
            )
            .await;
        assert_eq!(published["version"], 2);
        let third = app
            .post_ok(
                "/api/v1/notices/shop-testing/versions",
                Role::Compliance,
                next.clone(),
            )
            .await;
        assert_eq!(third["version"], 3);
        let unknown = app
            .post(
                "/api/v1/notices/nothing-here/versions",
                Role::Compliance,
                next,
            )
            .await;
        assert_json_error(unknown, 404).await;

        let one = app
            .get_json("/api/v1/notices/shop-testing", Some(Role::Ingest))
            .await;
        let versions: Vec<i64> = one["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect();
        assert_eq!(versions, [1, 2, 3]);
        assert_eq!(
            one["versions"][1]["languages"]["en"]["title"],
            "Help us improve our shop (2)"
        );
        let list = app.get_json("/api/v1/notices", Some(Role::Analyst)).await;
        assert_eq!(list["notices"].as_array().unwrap().len(), 1);
        assert_json_error(
            app.get("/api/v1/notices/absent", Some(Role::Analyst)).await,
            404,
        )
        .await;
        assert_json_error(app.get("/api/v1/notices", None).await, 401).await;

        let audit = app
            .get_json("/api/v1/audit?limit=100", Some(Role::Compliance))
            .await;
        let actions: Vec<&str> = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        assert!(actions.contains(&"notice.create"), "{actions:?}");
        assert_eq!(
            actions.iter().filter(|a| **a == "notice.publish").count(),
            2
        );
    }
);

api_story!(
    invalid_notices_are_refused_with_a_422_naming_the_field,
    |app| {
        let body = notice_from_template(&app, "shop-personal", "personalisation").await;
        // No purpose registered yet: the template's first purpose is named.
        let error = assert_json_error(
            app.post("/api/v1/notices", Role::Compliance, body.clone())
                .await,
            422,
        )
        .await;
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("personalize.content.profiling"),
            "{error}"
        );
        register_template_purposes(&app).await;
        type Change = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|b| b["id"] = json!("Shop Testing")), "id:"),
            (
                Box::new(|b| {
                    b["languages"].as_object_mut().unwrap().remove("en");
                }),
                "languages:",
            ),
            (
                Box::new(|b| b["languages"]["en"]["title"] = json!("   ")),
                "languages.en.title",
            ),
            (
                Box::new(|b| b["languages"]["de"]["body"] = json!("a\u{1b}[31m")),
                "languages.de.body",
            ),
            (Box::new(|b| b["purposes"] = json!([])), "purposes:"),
            (
                Box::new(|b| b["purposes"] = json!(["personalize.content.profiling"])),
                "languages.de.purposes",
            ),
            (
                Box::new(|b| b["languages"]["xx-!"] = b["languages"]["en"].clone()),
                "languages: 'xx-!'",
            ),
        ];
        for (change, field) in cases {
            let mut bad = body.clone();
            change(&mut bad);
            let error = assert_json_error(
                app.post("/api/v1/notices", Role::Compliance, bad).await,
                422,
            )
            .await;
            assert!(
                error["message"].as_str().unwrap().starts_with(field),
                "{field}: {error}"
            );
        }
        let unknown_field = json!({"id": "x", "purposes": [], "languages": {}, "extra": 1});
        assert!(
            app.post("/api/v1/notices", Role::Compliance, unknown_field)
                .await
                .status()
                .is_client_error()
        );
        assert_eq!(
            app.get_json("/api/v1/notices", Some(Role::Compliance))
                .await["notices"],
            json!([])
        );
    }
);
