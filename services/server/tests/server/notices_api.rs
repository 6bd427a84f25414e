//! Notices through the HTTP API and the `/ui/notices` page, on SQLite and
//! PostgreSQL: creating (from scratch or a template), publishing versions
//! numbered by the server, the 422s that name the field, roles.

use crate::support::{TestApp, assert_json_error, web};
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

api_story!(
    the_notices_page_creates_from_a_template_and_publishes_for_compliance_only,
    |app| {
        register_template_purposes(&app).await;
        let compliance = app.sign_in(&app.tokens[&Role::Compliance]).await;
        let (status, html) = app
            .page(&compliance, "/ui/notices?template=personalisation")
            .await;
        assert_eq!(status, 200);
        assert!(
            html.contains("Personalised content and offers")
                && html.contains("href=\"/ui/notices\""),
            "{html}"
        );
        assert!(
            html.contains("Content and offers chosen for you"),
            "the form is prefilled"
        );
        let csrf = web::csrf_of(&html);
        let content = serde_json::to_string(&template(&app, "personalisation").await).unwrap();
        let refused = web::submit(
            &app.address,
            &compliance,
            "/ui/notices",
            &[
                ("id", "shop-personal"),
                ("content", &content),
                ("csrf", "wrong"),
            ],
        )
        .await;
        assert_eq!(refused.status(), 403);
        let created = web::submit(
            &app.address,
            &compliance,
            "/ui/notices",
            &[
                ("id", "shop-personal"),
                ("content", &content),
                ("csrf", &csrf),
            ],
        )
        .await;
        assert_eq!(created.status(), 303);
        let published = web::submit(
            &app.address,
            &compliance,
            "/ui/notices/shop-personal/versions",
            &[("content", &content), ("csrf", &csrf)],
        )
        .await;
        assert_eq!(published.status(), 303);
        let bad = web::submit(
            &app.address,
            &compliance,
            "/ui/notices/shop-personal/versions",
            &[("content", "{not json"), ("csrf", &csrf)],
        )
        .await;
        assert_eq!(bad.status(), 422);
        let page = bad.text().await.unwrap();
        assert!(
            page.contains("Not saved: the texts are not JSON") && page.contains("{not json"),
            "the input is kept: {page}"
        );
        let unregistered = content.replace(
            "personalize.offers.profiling",
            "personalize.unknown.profiling",
        );
        let fields = [
            ("id", "shop-other"),
            ("content", unregistered.as_str()),
            ("csrf", csrf.as_str()),
        ];
        let bad = web::submit(&app.address, &compliance, "/ui/notices", &fields).await;
        assert_eq!(bad.status(), 422);
        let page = bad.text().await.unwrap();
        assert!(
            page.contains("personalize.unknown.profiling&#39; is not a registered purpose")
                || page.contains("personalize.unknown.profiling&#x27; is not a registered purpose"),
            "{page}"
        );
        assert!(page.contains("value=\"shop-other\""), "the id is kept");
        let (_, html) = app.page(&compliance, "/ui/notices").await;
        assert!(
            html.contains("v2") && html.contains("v1") && html.contains("Publish version 3"),
            "{html}"
        );
        assert!(!html.contains("<script"));

        // A notice with long texts in two languages is more than the default form limit (16 KiB).
        let text = json!({"title": "Long", "body": "word ".repeat(1800), "purposes": {"analytics.storefront.ab_testing": "Compare pages."}});
        let long = json!({"purposes": ["analytics.storefront.ab_testing"], "languages": {"en": text, "de": text}}).to_string();
        assert!(long.len() > 16 * 1024);
        let created = web::submit(
            &app.address,
            &compliance,
            "/ui/notices",
            &[("id", "shop-long"), ("content", &long), ("csrf", &csrf)],
        )
        .await;
        assert_eq!(created.status(), 303);

        let marketer = app.sign_in(&app.tokens[&Role::Marketer]).await;
        let (status, html) = app.page(&marketer, "/ui/notices").await;
        assert_eq!(status, 200);
        assert!(
            html.contains("shop-personal")
                && !html.contains("<form method=\"post\" action=\"/ui/notices"),
            "{html}"
        );
        let csrf = web::csrf_of(&html);
        let refused = web::submit(
            &app.address,
            &marketer,
            "/ui/notices/shop-personal/versions",
            &[("content", &content), ("csrf", &csrf)],
        )
        .await;
        assert_eq!(refused.status(), 403);
        let versions = app
            .get_json("/api/v1/notices/shop-personal", Some(Role::Compliance))
            .await;
        assert_eq!(versions["latest_version"], 2);
    }
);
