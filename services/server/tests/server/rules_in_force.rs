//! Pilots answer to the rules in force, not to those they were designed
//! under (issue 22, attack review), on SQLite and PostgreSQL: the built-in
//! special-category and children's categories cannot be opened to pilots,
//! by the API, the page or a row edited behind the service's back; a
//! category made prohibited sends waiting pilots back to draft; a shorter
//! purpose retention narrows; and submit, approve and start re-check the
//! design against the purpose and the inventory as they are now.

use crate::inventory::find;
use crate::support::{Design, TestApp, assert_json_error, web};
use pilotgate_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

async fn put(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.request(Method::PUT, path, Some(Role::Compliance))
        .json(&body)
        .send()
        .await
        .expect("PUT")
}

/// The category `key` as the API lists it, without the read-only field,
/// with `changes` applied: a body for `PUT /api/v1/data-categories/{key}`.
async fn category_edit(app: &TestApp, key: &str, changes: Value) -> Value {
    let list = app
        .get_json("/api/v1/data-categories", Some(Role::Compliance))
        .await;
    let mut body = find(&list, key).clone();
    body.as_object_mut().unwrap().remove("required_measures");
    for (field, value) in changes.as_object().expect("an object") {
        body[field] = value.clone();
    }
    body
}

async fn state_of(app: &TestApp, key: &str) -> String {
    app.get_json(&format!("/api/v1/experiments/{key}"), Some(Role::Marketer))
        .await["state"]
        .as_str()
        .expect("a state")
        .to_owned()
}

/// The audit entries of `action`, oldest first.
async fn audited(app: &TestApp, action: &str) -> Vec<Value> {
    let audit = app
        .get_json(
            &format!("/api/v1/audit?action={action}&limit=1000"),
            Some(Role::Compliance),
        )
        .await;
    let mut entries = audit["entries"].as_array().unwrap().clone();
    entries.sort_by_key(|e| e["id"].as_i64());
    entries
}

async fn approve(app: &TestApp, key: &str) -> reqwest::Response {
    app.post(
        &format!("/api/v1/experiments/{key}/approve"),
        Role::Compliance,
        json!({"design_version": 1, "comment": "fine"}),
    )
    .await
}

api_story!(
    the_special_category_and_children_stay_closed_to_pilots,
    |app| {
        app.register_purpose().await;
        let lowered = category_edit(
            &app,
            "special_category",
            json!({"sensitivity": "low", "prohibited": false}),
        )
        .await;
        let refused = put(&app, "/api/v1/data-categories/special_category", lowered).await;
        let error = assert_json_error(refused, 422).await;
        assert_eq!(
            error["message"],
            "sensitivity: special-category data (Art. 9) is always of the special class"
        );
        let opened = category_edit(&app, "children", json!({"prohibited": false})).await;
        let refused = put(&app, "/api/v1/data-categories/children", opened).await;
        let error = assert_json_error(refused, 422).await;
        assert_eq!(
            error["message"],
            "prohibited: children's data (Art. 8) is always prohibited for pilots"
        );
        // A wording change keeps them prohibited and is accepted.
        let renamed = category_edit(&app, "children", json!({"name": "Data about children"})).await;
        assert_eq!(
            put(&app, "/api/v1/data-categories/children", renamed)
                .await
                .status(),
            200
        );
        let list = app
            .get_json("/api/v1/data-categories", Some(Role::Marketer))
            .await;
        assert_eq!(find(&list, "children")["prohibited"], true);
        assert_eq!(find(&list, "special_category")["sensitivity"], "special");

        // The page's form goes through the same rule.
        let cookie = app.sign_in(&app.tokens[&Role::Compliance]).await;
        let (_, page) = app.page(&cookie, "/ui/inventory").await;
        let csrf = web::csrf_of(&page);
        let form = [
            ("csrf", csrf.as_str()),
            ("name", "Children's data"),
            (
                "description",
                "Data about people under the age of digital consent.",
            ),
            ("sensitivity", "low"),
        ];
        let response = web::submit(&app.address, &cookie, "/ui/inventory/children", &form).await;
        assert_eq!(response.status(), 422);
        let page = response.text().await.unwrap();
        assert!(
            page.contains("children&#39;s data (Art. 8) is always prohibited for pilots")
                || page.contains("children's data (Art. 8) is always prohibited for pilots"),
            "{page}"
        );

        // Rows opened behind the service's back still refuse pilots, and
        // the design form does not offer them.
        app.db
            .execute_raw(
                "UPDATE data_categories SET sensitivity = 'low', prohibited = 0 \
                 WHERE key IN ('special_category', 'children')",
            )
            .await
            .unwrap();
        for (category, message) in [
            (
                "special_category",
                "data_categories: 'special_category' is special-category data (Art. 9): refused for pilots",
            ),
            (
                "children",
                "data_categories: 'children' is prohibited for pilots (Data about children): refused for pilots",
            ),
        ] {
            let design = Design::new("hero").with("data_categories", json!(["orders", category]));
            let response = app
                .post("/api/v1/experiments", Role::Marketer, design.json())
                .await;
            let error = assert_json_error(response, 422).await;
            assert_eq!(error["message"], message);
        }
        let marketer = app.sign_in(&app.tokens[&Role::Marketer]).await;
        let (status, form) = app.page(&marketer, "/ui/experiments/new").await;
        assert_eq!(status, 200);
        assert!(form.contains("value=\"orders\""));
        assert!(!form.contains("value=\"children\""), "not offered");
        assert!(!form.contains("value=\"special_category\""), "not offered");
    }
);

api_story!(
    a_category_made_prohibited_sends_waiting_pilots_back_to_draft,
    |app| {
        let device =
            |key: &str| Design::new(key).with("data_categories", json!(["orders", "device"]));
        app.start_pilot(device("running").json()).await;
        app.submit_pilot(device("waiting").json()).await;
        app.submit_pilot(device("approved").json()).await;
        assert_eq!(approve(&app, "approved").await.status(), 200);
        app.submit_pilot(Design::new("other").json()).await;
        app.post_ok(
            "/api/v1/experiments",
            Role::Marketer,
            device("drafted").json(),
        )
        .await;

        let prohibited = category_edit(&app, "device", json!({"prohibited": true})).await;
        assert_eq!(
            put(&app, "/api/v1/data-categories/device", prohibited)
                .await
                .status(),
            200
        );
        assert_eq!(state_of(&app, "waiting").await, "draft");
        assert_eq!(state_of(&app, "approved").await, "draft");
        assert_eq!(state_of(&app, "other").await, "submitted");
        assert_eq!(state_of(&app, "running").await, "running");
        let approved = app
            .get_json("/api/v1/experiments/approved", Some(Role::Marketer))
            .await;
        assert!(approved["approval"].is_null(), "the approval is void");
        let returned = audited(&app, "experiment.returned_to_draft").await;
        let targets: Vec<&str> = returned
            .iter()
            .map(|e| e["target"].as_str().unwrap())
            .collect();
        assert_eq!(targets, ["experiment:approved", "experiment:waiting"]);
        assert_eq!(
            returned[0]["details"]["reason"],
            "the data category device is now prohibited for pilots"
        );
        let update = audited(&app, "data_category.update").await;
        assert_eq!(
            update[0]["details"]["returned_to_draft"],
            json!(["approved", "waiting"])
        );
        // None of them can be submitted again until the design changes.
        let submit = app
            .post(
                "/api/v1/experiments/drafted/submit",
                Role::Marketer,
                json!({}),
            )
            .await;
        let error = assert_json_error(submit, 409).await;
        let message = error["message"].as_str().unwrap();
        assert!(
            message.starts_with(
                "the design no longer fits: data_categories: 'device' is prohibited for pilots"
            ) && message.ends_with("; edit it"),
            "{message}"
        );
        // Permitting it again sends nobody anywhere.
        let permitted = category_edit(&app, "device", json!({"prohibited": false})).await;
        put(&app, "/api/v1/data-categories/device", permitted).await;
        assert_eq!(
            audited(&app, "data_category.update").await[1]["details"]["returned_to_draft"],
            json!([])
        );
        assert_eq!(state_of(&app, "other").await, "submitted");
    }
);

api_story!(
    approve_and_start_re_check_the_design_against_the_inventory_and_purpose_now,
    |app| {
        let device = |key: &str| Design::new(key).with("data_categories", json!(["device"]));
        app.register_purpose().await;
        app.submit_pilot(device("waiting").json()).await;
        app.submit_pilot(device("approved").json()).await;
        assert_eq!(approve(&app, "approved").await.status(), 200);
        // Prohibited behind the service's back (e.g. before this rule): the
        // pilots are still waiting, but cannot go on.
        app.db
            .execute_raw("UPDATE data_categories SET prohibited = 1 WHERE key = 'device'")
            .await
            .unwrap();
        let error = assert_json_error(approve(&app, "waiting").await, 409).await;
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with("the design no longer fits: data_categories: 'device'"),
            "{error}"
        );
        let start = app
            .post(
                "/api/v1/experiments/approved/start",
                Role::Marketer,
                json!({}),
            )
            .await;
        assert_json_error(start, 409).await;
        assert_eq!(state_of(&app, "waiting").await, "submitted");
        assert_eq!(state_of(&app, "approved").await, "approved");

        // The same for the purpose: its retention shortened below the
        // design's behind the service's back.
        app.db
            .execute_raw("UPDATE data_categories SET prohibited = 0 WHERE key = 'device'")
            .await
            .unwrap();
        app.db
            .execute_raw("UPDATE purposes SET retention_days = 30")
            .await
            .unwrap();
        let fits = "the design no longer fits: retention_days: may not exceed the purpose's retention period; edit it";
        let error = assert_json_error(approve(&app, "waiting").await, 409).await;
        assert_eq!(error["message"], fits);
        let start = app
            .post(
                "/api/v1/experiments/approved/start",
                Role::Marketer,
                json!({}),
            )
            .await;
        assert_eq!(assert_json_error(start, 409).await["message"], fits);
        app.db
            .execute_raw("UPDATE purposes SET retention_days = 365")
            .await
            .unwrap();
        assert_eq!(approve(&app, "waiting").await.status(), 200);
        app.post_ok(
            "/api/v1/experiments/approved/start",
            Role::Marketer,
            json!({}),
        )
        .await;
    }
);

api_story!(
    a_shorter_purpose_retention_narrows_and_a_longer_design_cannot_go_on,
    |app| {
        app.register_purpose().await;
        let retention = |key: &str, days: u32| Design::new(key).with("retention_days", json!(days));
        app.submit_pilot(retention("long", 300).json()).await;
        app.submit_pilot(retention("short", 90).json()).await;
        assert_eq!(approve(&app, "short").await.status(), 200);
        let rule = |days: u32| {
            json!({"description": "d", "allowed_bases": ["consent"], "min_notice_version": 1,
                "retention_days": days})
        };
        let longer: Value = put(&app, "/api/v1/purposes/personalize.content", rule(400))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(longer["narrowing"], json!([]));
        assert_eq!(state_of(&app, "long").await, "submitted");
        let shorter: Value = put(&app, "/api/v1/purposes/personalize.content", rule(180))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            shorter["narrowing"],
            json!(["the retention fell from 400 to 180 days"])
        );
        assert_eq!(shorter["returned_to_draft"], json!(["long", "short"]));
        assert_eq!(state_of(&app, "long").await, "draft");
        assert_eq!(state_of(&app, "short").await, "draft");
        let submit = app
            .post("/api/v1/experiments/long/submit", Role::Marketer, json!({}))
            .await;
        let error = assert_json_error(submit, 409).await;
        assert_eq!(
            error["message"],
            "the design no longer fits: retention_days: may not exceed the purpose's retention period; edit it"
        );
        // The design within the new retention goes on.
        app.post_ok(
            "/api/v1/experiments/short/submit",
            Role::Marketer,
            json!({}),
        )
        .await;
    }
);
