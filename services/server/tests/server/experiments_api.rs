//! Pilot design and lifecycle through the API: validation, every transition,
//! DPO approval with separation of duties, and the audit trail of a pilot.

use crate::support::{TestApp, assert_json_error};
use pilotgate_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    role: Role,
    body: Option<Value>,
) -> reqwest::Response {
    let request = app.request(method, path, Some(role));
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.unwrap()
}

async fn setup(app: &TestApp) {
    for (key, special) in [("personalize.content", false), ("personalize.health", true)] {
        let purpose = json!({"key": key, "description": "d", "allowed_bases": ["consent"], "min_notice_version": 1,
            "special_category": special, "retention_days": 365});
        assert_eq!(
            send(
                app,
                Method::POST,
                "/api/v1/purposes",
                Role::Compliance,
                Some(purpose)
            )
            .await
            .status(),
            201
        );
    }
}

fn design(key: &str) -> Value {
    json!({
        "key": key, "name": "Homepage hero", "hypothesis": "A personalized hero lifts sign-ups by 10%",
        "purpose": "personalize.content",
        "variants": [{"key": "control", "weight": 1}, {"key": "personalized", "weight": 1}],
        "coverage": 0.8, "primary_metric": {"event": "signup", "kind": "binary"},
        "guardrails": [{"event": "unsubscribe", "kind": "binary"}],
        "mde": 0.1, "alpha": 0.05, "power": 0.8, "baseline_rate": 0.1,
        "attribution_window_hours": 72, "data_categories": ["page_views", "identifier"], "retention_days": 90
    })
}

async fn create(app: &TestApp, key: &str) -> Value {
    let response = send(
        app,
        Method::POST,
        "/api/v1/experiments",
        Role::Marketer,
        Some(design(key)),
    )
    .await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// `POST …/{action}` as `role`; a decision names the design version the pilot has now.
async fn act(app: &TestApp, key: &str, action: &str, role: Role) -> reqwest::Response {
    let body = if matches!(action, "approve" | "deny") {
        let pilot: Value = app
            .get(
                &format!("/api/v1/experiments/{key}"),
                Some(Role::Compliance),
            )
            .await
            .json()
            .await
            .unwrap();
        Some(
            json!({"design_version": pilot["design_version"], "comment": "Consent-only purpose, notice v1 or later: lawful."}),
        )
    } else {
        None
    };
    send(
        app,
        Method::POST,
        &format!("/api/v1/experiments/{key}/{action}"),
        role,
        body,
    )
    .await
}

api_story!(
    a_pilot_is_created_in_draft_with_its_planned_sample_size,
    |app| {
        setup(&app).await;
        let created = create(&app, "hero").await;
        assert_eq!(created["state"], "draft");
        assert_eq!(created["seed"], "hero");
        assert_eq!(created["owner"], "marketer-token");
        assert_eq!(created["created_by"], "marketer-token");
        // 14748.045 per arm for baseline 0.1, MDE 10%, alpha 0.05, power 0.8 (analysis/tests/data/stats-vectors.json).
        assert_eq!(
            created["planned_sample_size"],
            json!({"per_variant": 15468, "total": 30936})
        );
        let mut read: Value = app
            .get_json("/api/v1/experiments/hero", Some(Role::Analyst))
            .await;
        // One pilot's answer adds its consent-aware plan (no visitors given: no traffic yet).
        let plan = read.as_object_mut().unwrap().remove("plan").unwrap();
        assert_eq!(plan["traffic"], "none");
        assert_eq!(plan["needed_per_variant"], 15468);
        assert_eq!(read, created);
        let listed: Value = app
            .get_json("/api/v1/experiments", Some(Role::Ingest))
            .await;
        assert_eq!(listed["experiments"].as_array().unwrap().len(), 1);
        assert_json_error(
            app.get("/api/v1/experiments/nope", Some(Role::Analyst))
                .await,
            404,
        )
        .await;
        assert_json_error(
            send(
                &app,
                Method::POST,
                "/api/v1/experiments",
                Role::Marketer,
                Some(design("hero")),
            )
            .await,
            409,
        )
        .await;
    }
);

api_story!(
    invalid_designs_are_refused_with_a_422_naming_the_field,
    |app| {
        setup(&app).await;
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "one variant",
                json!([{"key": "control", "weight": 1}]),
                "variants",
            ),
            (
                "negative weight",
                json!([{"key": "control", "weight": 1}, {"key": "b", "weight": -1}]),
                "variants",
            ),
            (
                "duplicate variant keys",
                json!([{"key": "a", "weight": 1}, {"key": "a", "weight": 1}]),
                "variants",
            ),
        ];
        for (case, variants, field) in cases {
            let mut body = design("x");
            body["variants"] = variants;
            let error = assert_json_error(
                send(
                    &app,
                    Method::POST,
                    "/api/v1/experiments",
                    Role::Marketer,
                    Some(body),
                )
                .await,
                422,
            )
            .await;
            assert!(
                error["message"].as_str().unwrap().starts_with(field),
                "{case}: {error}"
            );
        }
        let changes: Vec<(&str, Value, &str)> = vec![
            ("coverage", json!(0), "coverage"),
            ("coverage", json!(1.01), "coverage"),
            ("alpha", json!(0.5), "alpha"),
            ("power", json!(1.2), "power"),
            ("mde", json!(0), "mde"),
            ("mde", json!(9.5), "mde"),
            ("data_categories", json!([]), "data_categories"),
            ("purpose", json!("no.such_purpose"), "purpose"),
            ("purpose", json!("personalize.health"), "purpose"),
            ("retention_days", json!(400), "retention_days"),
            (
                "primary_metric",
                json!({"event": "signup", "kind": "mean"}),
                "primary_metric",
            ),
        ];
        for (field, value, named) in changes {
            let mut body = design("x");
            body[field] = value.clone();
            let error = assert_json_error(
                send(
                    &app,
                    Method::POST,
                    "/api/v1/experiments",
                    Role::Marketer,
                    Some(body),
                )
                .await,
                422,
            )
            .await;
            assert!(
                error["message"].as_str().unwrap().starts_with(named),
                "{field}={value}: {error}"
            );
        }
        let mut no_key = design("x");
        no_key.as_object_mut().unwrap().remove("key");
        assert_json_error(
            send(
                &app,
                Method::POST,
                "/api/v1/experiments",
                Role::Marketer,
                Some(no_key),
            )
            .await,
            422,
        )
        .await;
        let listed: Value = app
            .get_json("/api/v1/experiments", Some(Role::Marketer))
            .await;
        assert_eq!(
            listed["experiments"].as_array().unwrap().len(),
            0,
            "nothing partial was stored"
        );
    }
);

api_story!(every_lifecycle_transition_valid_and_invalid, |app| {
    setup(&app).await;
    create(&app, "hero").await;
    // From draft only submit (and edit) work.
    for action in ["start", "stop"] {
        let body = assert_json_error(act(&app, "hero", action, Role::Marketer).await, 409).await;
        assert!(
            body["message"].as_str().unwrap().contains("it is draft"),
            "{body}"
        );
    }
    for action in ["approve", "deny"] {
        assert_json_error(act(&app, "hero", action, Role::Compliance).await, 409).await;
    }
    assert_eq!(
        act(&app, "hero", "submit", Role::Marketer).await.status(),
        200
    );
    assert_json_error(act(&app, "hero", "submit", Role::Marketer).await, 409).await;
    assert_json_error(act(&app, "hero", "start", Role::Marketer).await, 409).await;
    let approved: Value = act(&app, "hero", "approve", Role::Compliance)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(approved["state"], "approved");
    assert_eq!(
        approved["approval"]["decided_by"],
        "compliance-token (compliance)"
    );
    assert_json_error(act(&app, "hero", "deny", Role::Compliance).await, 409).await;
    assert_json_error(act(&app, "hero", "stop", Role::Marketer).await, 409).await;
    let running: Value = act(&app, "hero", "start", Role::Marketer)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(running["state"], "running");
    assert_json_error(act(&app, "hero", "start", Role::Marketer).await, 409).await;
    let edit_running = send(
        &app,
        Method::PUT,
        "/api/v1/experiments/hero",
        Role::Marketer,
        Some(design("hero")),
    )
    .await;
    assert!(
        assert_json_error(edit_running, 409).await["message"]
            .as_str()
            .unwrap()
            .contains("it is running")
    );
    let stopped: Value = act(&app, "hero", "stop", Role::Marketer)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stopped["state"], "stopped");
    for action in ["submit", "start", "stop"] {
        assert_json_error(act(&app, "hero", action, Role::Marketer).await, 409).await;
    }

    // A denial; editing a denied pilot returns it to draft for another try.
    create(&app, "banner").await;
    act(&app, "banner", "submit", Role::Marketer).await;
    let denied: Value = act(&app, "banner", "deny", Role::Compliance)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            denied["state"].as_str(),
            denied["approval"]["decision"].as_str()
        ),
        (Some("denied"), Some("denied"))
    );
    assert_json_error(act(&app, "banner", "start", Role::Marketer).await, 409).await;
    let redrafted: Value = send(
        &app,
        Method::PUT,
        "/api/v1/experiments/banner",
        Role::Marketer,
        Some(design("banner")),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(redrafted["state"], "draft");
    assert_eq!(redrafted["approval"], Value::Null);
    assert_json_error(act(&app, "nope", "submit", Role::Marketer).await, 404).await;
});

api_story!(editing_an_approved_pilot_voids_the_approval, |app| {
    setup(&app).await;
    create(&app, "hero").await;
    act(&app, "hero", "submit", Role::Marketer).await;
    act(&app, "hero", "approve", Role::Compliance).await;
    let mut wider = design("hero");
    wider["coverage"] = json!(1.0);
    let edited = send(
        &app,
        Method::PUT,
        "/api/v1/experiments/hero",
        Role::Marketer,
        Some(wider),
    )
    .await;
    assert_eq!(edited.status(), 200);
    let edited: Value = edited.json().await.unwrap();
    assert_eq!(edited["state"], "draft");
    assert_eq!(edited["approval"], Value::Null);
    assert_eq!(edited["design_version"], 2);
    assert_eq!(edited["coverage"], 1.0);
    assert_json_error(act(&app, "hero", "start", Role::Marketer).await, 409).await;
    let mut renamed = design("other-key");
    renamed["name"] = json!("x");
    assert_json_error(
        send(
            &app,
            Method::PUT,
            "/api/v1/experiments/hero",
            Role::Marketer,
            Some(renamed),
        )
        .await,
        422,
    )
    .await;
    // Editing a submitted pilot also returns it to draft.
    act(&app, "hero", "submit", Role::Marketer).await;
    let edited: Value = send(
        &app,
        Method::PUT,
        "/api/v1/experiments/hero",
        Role::Marketer,
        Some(design("hero")),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(edited["state"], "draft");
});

api_story!(only_compliance_decides_and_never_on_its_own_pilot, |app| {
    setup(&app).await;
    create(&app, "hero").await;
    act(&app, "hero", "submit", Role::Marketer).await;
    for role in [Role::Marketer, Role::Admin, Role::Analyst, Role::Ingest] {
        let refused = assert_json_error(act(&app, "hero", "approve", role).await, 403).await;
        assert_eq!(refused["error"], "forbidden");
    }
    // The marketer who created the pilot also holds a compliance token.
    let own = app.add_token("marketer-token", Role::Compliance).await;
    let comment = json!({"design_version": 1, "comment": "looks fine to me"});
    let response = app
        .client
        .post(format!("{}/api/v1/experiments/hero/approve", app.address))
        .bearer_auth(&own)
        .json(&comment)
        .send()
        .await
        .unwrap();
    let refused = assert_json_error(response, 403).await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("separation of duties"),
        "{refused}"
    );
    let response = app
        .client
        .post(format!("{}/api/v1/experiments/hero/deny", app.address))
        .bearer_auth(&own)
        .json(&comment)
        .send()
        .await
        .unwrap();
    assert_json_error(response, 403).await;
    let no_comment = send(
        &app,
        Method::POST,
        "/api/v1/experiments/hero/approve",
        Role::Compliance,
        Some(json!({"design_version": 1, "comment": "  "})),
    )
    .await;
    assert_json_error(no_comment, 422).await;
    let still: Value = app
        .get_json("/api/v1/experiments/hero", Some(Role::Marketer))
        .await;
    assert_eq!(still["state"], "submitted");
    assert_eq!(
        act(&app, "hero", "approve", Role::Compliance)
            .await
            .status(),
        200
    );
});

api_story!(the_audit_trail_tells_the_whole_story_of_a_pilot, |app| {
    setup(&app).await;
    create(&app, "hero").await;
    act(&app, "hero", "submit", Role::Marketer).await;
    act(&app, "hero", "deny", Role::Compliance).await;
    let mut better = design("hero");
    better["data_categories"] = json!(["page_views"]);
    send(
        &app,
        Method::PUT,
        "/api/v1/experiments/hero",
        Role::Marketer,
        Some(better),
    )
    .await;
    act(&app, "hero", "submit", Role::Marketer).await;
    act(&app, "hero", "approve", Role::Compliance).await;
    act(&app, "hero", "start", Role::Marketer).await;
    act(&app, "hero", "stop", Role::Marketer).await;

    let trail: Value = app
        .get(
            "/api/v1/audit?target=experiment:hero",
            Some(Role::Compliance),
        )
        .await
        .json()
        .await
        .unwrap();
    let entries = trail["entries"].as_array().unwrap();
    let story: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        story,
        [
            ("experiment.create", "marketer-token (marketer)"),
            ("experiment.submit", "marketer-token (marketer)"),
            ("experiment.deny", "compliance-token (compliance)"),
            ("experiment.update", "marketer-token (marketer)"),
            ("experiment.submit", "marketer-token (marketer)"),
            ("experiment.approve", "compliance-token (compliance)"),
            ("experiment.start", "marketer-token (marketer)"),
            ("experiment.stop", "marketer-token (marketer)"),
        ]
    );
    assert_eq!(entries[0]["details"]["design"]["coverage"], 0.8);
    assert_eq!(
        entries[2]["details"]["comment"],
        "Consent-only purpose, notice v1 or later: lawful."
    );
    assert_eq!(
        entries[3]["details"]["before"]["data_categories"],
        json!(["page_views", "identifier"])
    );
    assert_eq!(
        entries[3]["details"]["after"]["data_categories"],
        json!(["page_views"])
    );
    assert_eq!(entries[5]["details"]["design_version"], 2);
    let verify: Value = app
        .get_json("/api/v1/audit/verify", Some(Role::Compliance))
        .await;
    assert_eq!(verify["ok"], true);
});
