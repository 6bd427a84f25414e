//! The data inventory (issue 22) through the API: the vocabulary,
//! compliance's edits (audited; others refused), pilots that name only
//! permitted categories of it, and the risk checklist in the eligibility
//! report. The pages are `inventory_pages.rs`.

use crate::support::{Design, TestApp, assert_json_error};
use pilotgate_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

fn category(key: &str) -> Value {
    json!({"key": key, "name": "Loyalty points", "description": "Points balance and tier.",
        "sensitivity": "low", "measures": {"pseudonymised": true, "retention_ceiling_days": 30}})
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    role: Role,
    body: Value,
) -> reqwest::Response {
    app.request(method, path, Some(role))
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub(crate) fn find<'a>(list: &'a Value, key: &str) -> &'a Value {
    list["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == key)
        .unwrap_or_else(|| panic!("{key} is in the inventory"))
}

api_story!(
    every_role_reads_the_vocabulary_with_classes_and_measures,
    |app| {
        for role in [
            Role::Marketer,
            Role::Analyst,
            Role::Ingest,
            Role::Compliance,
        ] {
            app.get_json("/api/v1/data-categories", Some(role)).await;
        }
        let list = app
            .get_json("/api/v1/data-categories", Some(Role::Marketer))
            .await;
        let keys: Vec<&str> = list["categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["key"].as_str().unwrap())
            .collect();
        for key in [
            "identifier",
            "contact",
            "device",
            "behavioural",
            "purchase",
            "location",
            "inferred_interests",
            "special_category",
            "children",
            "orders",
            "page_views",
        ] {
            assert!(keys.contains(&key), "{key} in {keys:?}");
        }
        let behavioural = find(&list, "behavioural");
        assert_eq!(behavioural["sensitivity"], "moderate");
        assert_eq!(behavioural["prohibited"], false);
        assert_eq!(behavioural["measures"]["retention_ceiling_days"], 180);
        assert_eq!(
            behavioural["required_measures"],
            json!(["pseudonymised", "encrypted_at_rest", "retention_ceiling"])
        );
        let special = find(&list, "special_category");
        assert_eq!(special["sensitivity"], "special");
        assert_eq!(special["prohibited"], true);
        assert_eq!(find(&list, "children")["prohibited"], true);
        assert_json_error(app.get("/api/v1/data-categories", None).await, 401).await;
    }
);

api_story!(
    compliance_adds_and_edits_categories_and_others_may_not,
    |app| {
        let created = send(
            &app,
            Method::POST,
            "/api/v1/data-categories",
            Role::Compliance,
            category("loyalty"),
        )
        .await;
        assert_eq!(created.status(), 201);
        let created: Value = created.json().await.unwrap();
        assert_eq!(
            created["required_measures"],
            json!(["pseudonymised", "retention_ceiling"])
        );

        let again = send(
            &app,
            Method::POST,
            "/api/v1/data-categories",
            Role::Compliance,
            category("loyalty"),
        )
        .await;
        assert_json_error(again, 409).await;
        let marketer = send(
            &app,
            Method::POST,
            "/api/v1/data-categories",
            Role::Marketer,
            category("tier"),
        )
        .await;
        assert_json_error(marketer, 403).await;

        let refusals: Vec<(Value, &str)> = vec![
            (category("Loyalty Points"), "key:"),
            (
                {
                    let mut c = category("tier");
                    c["sensitivity"] = json!("secret");
                    c
                },
                "sensitivity: must be low, moderate, high or special",
            ),
            (
                {
                    let mut c = category("health");
                    c["sensitivity"] = json!("special");
                    c
                },
                "prohibited: a special-category class (Art. 9) is always prohibited for pilots",
            ),
            (
                {
                    let mut c = category("tier");
                    c["measures"]["retention_ceiling_days"] = json!(0);
                    c
                },
                "retention_ceiling_days:",
            ),
            (
                {
                    let mut c = category("tier");
                    c["name"] = json!("  ");
                    c
                },
                "name:",
            ),
        ];
        for (body, message) in refusals {
            let response = send(
                &app,
                Method::POST,
                "/api/v1/data-categories",
                Role::Compliance,
                body,
            )
            .await;
            let error = assert_json_error(response, 422).await;
            assert!(
                error["message"].as_str().unwrap().starts_with(message),
                "{error}"
            );
        }

        let mut edited = category("loyalty");
        edited["sensitivity"] = json!("moderate");
        edited["measures"]["dpo_sign_off"] = json!(true);
        let response = send(
            &app,
            Method::PUT,
            "/api/v1/data-categories/loyalty",
            Role::Compliance,
            edited.clone(),
        )
        .await;
        assert_eq!(response.status(), 200);
        let list = app
            .get_json("/api/v1/data-categories", Some(Role::Analyst))
            .await;
        let loyalty = find(&list, "loyalty");
        assert_eq!(loyalty["sensitivity"], "moderate");
        assert_eq!(loyalty["measures"]["dpo_sign_off"], true);

        let marketer = send(
            &app,
            Method::PUT,
            "/api/v1/data-categories/loyalty",
            Role::Marketer,
            edited.clone(),
        )
        .await;
        assert_json_error(marketer, 403).await;
        let mut keyless = edited.clone();
        keyless.as_object_mut().unwrap().remove("key");
        let unknown = send(
            &app,
            Method::PUT,
            "/api/v1/data-categories/nothing_here",
            Role::Compliance,
            keyless,
        )
        .await;
        assert_json_error(unknown, 404).await;
        let renamed = send(
            &app,
            Method::PUT,
            "/api/v1/data-categories/orders",
            Role::Compliance,
            edited,
        )
        .await;
        assert_json_error(renamed, 422).await;

        let trail = app
            .get_json(
                "/api/v1/audit?target=data_category:loyalty",
                Some(Role::Compliance),
            )
            .await;
        let actions: Vec<&str> = trail["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["data_category.create", "data_category.update"]);
        let update = &trail["entries"][1]["details"];
        assert_eq!(update["before"]["sensitivity"], "low");
        assert_eq!(update["after"]["sensitivity"], "moderate");
    }
);

api_story!(
    pilots_name_only_permitted_categories_of_the_inventory,
    |app| {
        app.register_purpose().await;
        let cases = [
            (
                json!(["orders", "favourite colour"]),
                "data_categories: 'favourite colour' is not in the data inventory",
            ),
            (
                json!(["special_category"]),
                "data_categories: 'special_category' is special-category data (Art. 9): refused for pilots",
            ),
            (
                json!(["behavioural", "children"]),
                "data_categories: 'children' is prohibited for pilots (Children's data): refused for pilots",
            ),
        ];
        for (categories, message) in cases {
            let design = Design::new("hero")
                .with("data_categories", categories)
                .json();
            let response = app
                .post("/api/v1/experiments", Role::Marketer, design)
                .await;
            let error = assert_json_error(response, 422).await;
            assert_eq!(error["message"], message);
        }
        let design = Design::new("hero").with("data_categories", json!(["orders", "device"]));
        app.post_ok("/api/v1/experiments", Role::Marketer, design.json())
            .await;
        let edit = Design::new("hero")
            .with("data_categories", json!(["page views"]))
            .json();
        let response = send(
            &app,
            Method::PUT,
            "/api/v1/experiments/hero",
            Role::Marketer,
            edit,
        )
        .await;
        let error = assert_json_error(response, 422).await;
        assert_eq!(
            error["message"],
            "data_categories: 'page views' is not in the data inventory"
        );

        // A category compliance adds may be named from then on.
        send(
            &app,
            Method::POST,
            "/api/v1/data-categories",
            Role::Compliance,
            category("loyalty"),
        )
        .await;
        let edit = Design::new("hero")
            .with("data_categories", json!(["loyalty"]))
            .json();
        let response = send(
            &app,
            Method::PUT,
            "/api/v1/experiments/hero",
            Role::Marketer,
            edit,
        )
        .await;
        assert_eq!(response.status(), 200);
    }
);

/// The checklist's lines of `report` as `(category, measure, met, evidence)`.
fn lines(report: &Value) -> Vec<(String, String, bool, String)> {
    report["checklist"]
        .as_array()
        .expect("a checklist")
        .iter()
        .map(|l| {
            (
                l["category"].as_str().unwrap().to_owned(),
                l["measure"].as_str().unwrap().to_owned(),
                l["met"].as_bool().unwrap(),
                l["evidence"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

api_story!(
    the_eligibility_report_carries_the_checklist_with_evidence,
    |app| {
        app.register_purpose().await;
        let design = Design::new("hero").with("data_categories", json!(["location", "device"]));
        app.submit_pilot(design.json()).await;
        let path = "/api/v1/experiments/hero/eligibility";
        let submitted = lines(&app.get_json(path, Some(Role::Compliance)).await);
        let version = app.keys.current().version();
        assert_eq!(
        submitted,
        vec![
            ("location".into(), "pseudonymised".into(), true, format!("pseudonymised: HMAC-SHA256 key v{version}")),
            ("location".into(), "encrypted_at_rest".into(), false,
             "encrypted at rest: not declared (set PILOTGATE_ENCRYPTED_AT_REST to describe it)".into()),
            ("location".into(), "retention_ceiling".into(), true, "retention 90 days ≤ ceiling 90".into()),
            ("location".into(), "dpo_sign_off".into(), false, "DPO sign-off: design version 1 is not approved yet".into()),
            ("device".into(), "pseudonymised".into(), true, format!("pseudonymised: HMAC-SHA256 key v{version}")),
            ("device".into(), "retention_ceiling".into(), true, "retention 90 days ≤ ceiling 365".into()),
        ]
    );
        // Unmet measures are shown, not enforced: the approval goes through.
        app.post_ok(
            "/api/v1/experiments/hero/approve",
            Role::Compliance,
            json!({"design_version": 1, "comment": "encryption to be declared"}),
        )
        .await;
        let approved = lines(&app.get_json(path, Some(Role::Compliance)).await);
        let sign_off = &approved[3];
        assert!(sign_off.2, "{sign_off:?}");
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        assert!(
            sign_off
                .3
                .starts_with("DPO sign-off: approved by compliance-token")
                && sign_off
                    .3
                    .ends_with(&format!("on {today} (design version 1)")),
            "{}",
            sign_off.3
        );

        // A tighter ceiling applies to the pilot from then on.
        let list = app
            .get_json("/api/v1/data-categories", Some(Role::Compliance))
            .await;
        let mut device = find(&list, "device").clone();
        device["measures"]["retention_ceiling_days"] = json!(30);
        let device = json!({"name": device["name"], "description": device["description"],
        "sensitivity": device["sensitivity"], "measures": device["measures"]});
        let response = send(
            &app,
            Method::PUT,
            "/api/v1/data-categories/device",
            Role::Compliance,
            device,
        )
        .await;
        assert_eq!(response.status(), 200);
        let tighter = lines(&app.get_json(path, Some(Role::Compliance)).await);
        assert_eq!(
            tighter[5],
            (
                "device".into(),
                "retention_ceiling".into(),
                false,
                "retention 90 days > ceiling 30".into()
            )
        );
    }
);

/// Encryption at rest declared by the operator is the evidence of that measure.
async fn declared_encryption_is_evidence(dialect: pilotgate_store::Dialect) {
    let Some(app) = TestApp::spawn_with(
        dialect,
        pilotgate_store::testing::test_key_ring(),
        |config| {
            config.encrypted_at_rest = Some("LUKS volume /var/lib".to_owned());
        },
    )
    .await
    else {
        eprintln!("skipped: set PILOTGATE_TEST_POSTGRES_URL to run on PostgreSQL");
        return;
    };
    app.register_purpose().await;
    app.submit_pilot(
        Design::new("hero")
            .with("data_categories", json!(["behavioural"]))
            .json(),
    )
    .await;
    let report = app
        .get_json(
            "/api/v1/experiments/hero/eligibility",
            Some(Role::Compliance),
        )
        .await;
    assert!(lines(&report).contains(&(
        "behavioural".into(),
        "encrypted_at_rest".into(),
        true,
        "encrypted at rest: LUKS volume /var/lib (declared by the operator)".into()
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_encryption_is_evidence_on_sqlite() {
    declared_encryption_is_evidence(pilotgate_store::Dialect::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_encryption_is_evidence_on_postgres() {
    declared_encryption_is_evidence(pilotgate_store::Dialect::Postgres).await;
}
