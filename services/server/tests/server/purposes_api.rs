//! The purpose registry as versions (issue 22): a change is a new version
//! with the history kept; a change that narrows who may be used sends
//! submitted and approved pilots back to draft (audited, shown to the
//! marketer) while a running pilot goes on under the new rule; retiring
//! stops new assignments and consents; legitimate-interest assessments are
//! records whose outcome decides the basis. On SQLite and PostgreSQL, and
//! the registry's pages over HTTP.

use crate::consents_api::assessment;
use crate::support::{Design, TestApp, assert_json_error, web};
use pilotgate_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

const PURPOSE: &str = "personalize.content";

/// The rule `TestApp::register_purpose` registers, with `changes` applied.
fn rule(changes: Value) -> Value {
    let mut rule = json!({"description": "d", "allowed_bases": ["consent"],
        "min_notice_version": 1, "retention_days": 365});
    for (field, value) in changes.as_object().expect("an object") {
        rule[field] = value.clone();
    }
    rule
}

async fn put(app: &TestApp, key: &str, role: Role, body: Value) -> reqwest::Response {
    app.request(Method::PUT, &format!("/api/v1/purposes/{key}"), Some(role))
        .json(&body)
        .send()
        .await
        .expect("PUT")
}

/// A consent record for `user` on `purpose` under notice `version`.
fn grant(user: &str, purpose: &str, basis: &str, status: &str, version: u32) -> Value {
    json!({"user_id": user, "purpose": purpose, "basis": basis, "status": status,
        "notice_id": "pn", "notice_version": version,
        "source": {"channel": "app", "method": "tap"}, "collected_at": "2026-01-01T00:00:00Z"})
}

async fn state_of(app: &TestApp, key: &str) -> String {
    app.get_json(&format!("/api/v1/experiments/{key}"), Some(Role::Marketer))
        .await["state"]
        .as_str()
        .expect("a state")
        .to_owned()
}

api_story!(a_change_is_a_new_version_with_its_history, |app| {
    app.register_purpose().await;
    let changed: Value = put(
        &app,
        PURPOSE,
        Role::Compliance,
        rule(json!({"description": "Home page content", "version": 1})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(changed["purpose"]["version"], 2);
    assert_eq!(changed["narrowing"], json!([]));
    let detail = app
        .get_json(&format!("/api/v1/purposes/{PURPOSE}"), Some(Role::Marketer))
        .await;
    assert_eq!(detail["purpose"]["description"], "Home page content");
    let versions: Vec<i64> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, vec![2, 1], "newest first, the first kept");
    assert_eq!(detail["history"][1]["description"], "d");
    // A change made from version 1 again lost the race: 409, nothing written.
    let stale = put(&app, PURPOSE, Role::Compliance, rule(json!({"version": 1}))).await;
    assert_json_error(stale, 409).await;
    // Only compliance changes the registry; bad rules are 422s.
    assert_json_error(
        put(&app, PURPOSE, Role::Marketer, rule(json!({}))).await,
        403,
    )
    .await;
    let profiling = put(
        &app,
        PURPOSE,
        Role::Compliance,
        rule(json!({"allowed_bases": ["consent", "legitimate_interest"]})),
    )
    .await;
    assert_json_error(profiling, 422).await;
    assert_json_error(
        put(&app, "no.such", Role::Compliance, rule(json!({}))).await,
        404,
    )
    .await;
    let audit = app
        .get_json("/api/v1/audit?limit=1000", Some(Role::Compliance))
        .await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "purpose.update" && e["details"]["version"] == 2)
    );
});

api_story!(raising_the_notice_sends_waiting_pilots_back_to_draft_and_running_ones_refuse_the_newly_ineligible, |app| {
    app.start_pilot(Design::new("running").json()).await;
    app.submit_pilot(Design::new("waiting").json()).await;
    app.submit_pilot(Design::new("approved").json()).await;
    app.post_ok(
        "/api/v1/experiments/approved/approve",
        Role::Compliance,
        json!({"design_version": 1, "comment": "fine"}),
    )
    .await;
    app.post_ok("/api/v1/experiments", Role::Marketer, Design::new("drafted").json())
        .await;
    app.post_ok(
        "/api/v1/consents",
        Role::Ingest,
        json!({"records": [grant("old@example.com", PURPOSE, "consent", "granted", 1),
            grant("new@example.com", PURPOSE, "consent", "granted", 2),
            grant("late@example.com", PURPOSE, "consent", "granted", 1)]}),
    )
    .await;
    let before = app.assign("running", "old@example.com").await;
    assert_eq!(before["eligible"], true);

    let changed: Value = put(&app, PURPOSE, Role::Compliance, rule(json!({"min_notice_version": 2})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        changed["narrowing"],
        json!(["the minimum notice version rose from 1 to 2"])
    );
    assert_eq!(changed["returned_to_draft"], json!(["approved", "waiting"]));
    assert_eq!(state_of(&app, "waiting").await, "draft");
    assert_eq!(state_of(&app, "approved").await, "draft");
    assert_eq!(state_of(&app, "drafted").await, "draft");
    assert_eq!(state_of(&app, "running").await, "running");
    let approved = app
        .get_json("/api/v1/experiments/approved", Some(Role::Marketer))
        .await;
    assert!(approved["approval"].is_null(), "the approval is void");
    // The approval cannot be started any more.
    let start = app
        .post("/api/v1/experiments/approved/start", Role::Marketer, json!({}))
        .await;
    assert_json_error(start, 409).await;

    // The running pilot goes on: the notice-1 subjects are refused from now
    // on, the notice-2 subject is assigned.
    assert_eq!(app.assign("running", "late@example.com").await["eligible"], false);
    assert_eq!(app.assign("running", "old@example.com").await["eligible"], false);
    assert_eq!(app.assign("running", "new@example.com").await["eligible"], true);

    // Audited per pilot, with the reason; the marketer reads it on the page.
    let audit = app
        .get_json("/api/v1/audit?limit=1000", Some(Role::Compliance))
        .await;
    let returned: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "experiment.returned_to_draft")
        .collect();
    assert_eq!(returned.len(), 2);
    assert!(
        returned[0]["details"]["reason"]
            .as_str()
            .unwrap()
            .contains("minimum notice version rose from 1 to 2")
    );
    let cookie = app.sign_in(&app.tokens[&Role::Marketer]).await;
    let (status, page) = app.page(&cookie, "/ui/experiments/waiting").await;
    assert_eq!(status, 200);
    assert!(page.contains("Back in draft"), "{page}");
    assert!(page.contains("minimum notice version rose from 1 to 2"));
    // Submitting again answers the note.
    app.post_ok("/api/v1/experiments/waiting/submit", Role::Marketer, json!({}))
        .await;
    let (_, page) = app.page(&cookie, "/ui/experiments/waiting").await;
    assert!(!page.contains("Back in draft"));
});

api_story!(removing_a_basis_narrows_adding_one_does_not, |app| {
    let key = "analytics.shop.ab_testing";
    app.post_ok(
        "/api/v1/purposes",
        Role::Compliance,
        json!({"key": key, "description": "d", "allowed_bases": ["consent", "legitimate_interest"],
            "min_notice_version": 1, "retention_days": 90}),
    )
    .await;
    app.submit_pilot(Design::new("lia").with("purpose", json!(key)).json())
        .await;
    let wider: Value = put(
        &app,
        key,
        Role::Compliance,
        rule(json!({"allowed_bases": ["consent", "legitimate_interest", "contract"], "contract_necessary": true})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(wider["returned_to_draft"], json!([]));
    assert_eq!(state_of(&app, "lia").await, "submitted");
    let narrower: Value = put(
        &app,
        key,
        Role::Compliance,
        rule(json!({"allowed_bases": ["consent"]})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        narrower["narrowing"],
        json!([
            "no longer allowed: contract, legitimate_interest",
            "it is no longer necessary for a contract"
        ])
    );
    assert_eq!(narrower["returned_to_draft"], json!(["lia"]));
    assert_eq!(state_of(&app, "lia").await, "draft");
});

api_story!(
    legitimate_interest_rests_on_a_positive_assessment_record,
    |app| {
        let key = "analytics.shop.ab_testing";
        // A free-text reference is no longer an assessment.
        let free_text = app
        .post(
            "/api/v1/purposes",
            Role::Compliance,
            json!({"key": key, "description": "d", "allowed_bases": ["consent", "legitimate_interest"],
                "min_notice_version": 1, "retention_days": 90, "li_assessment_ref": "LIA-1"}),
        )
        .await;
        let body = assert_json_error(free_text, 422).await;
        assert!(body["message"].as_str().unwrap().contains("assessments"));
        app.post_ok(
        "/api/v1/purposes",
        Role::Compliance,
        json!({"key": key, "description": "d", "allowed_bases": ["consent", "legitimate_interest"],
            "min_notice_version": 1, "retention_days": 90}),
    )
    .await;
        app.post_ok(
            "/api/v1/experiments",
            Role::Marketer,
            Design::new("lia").with("purpose", json!(key)).json(),
        )
        .await;
        for (path, role, body) in [
            ("/api/v1/experiments/lia/submit", Role::Marketer, json!({})),
            (
                "/api/v1/experiments/lia/approve",
                Role::Compliance,
                json!({"design_version": 1, "comment": "ok"}),
            ),
            ("/api/v1/experiments/lia/start", Role::Marketer, json!({})),
        ] {
            app.post_ok(path, role, body).await;
        }
        app.post_ok(
            "/api/v1/consents",
            Role::Ingest,
            grant("li@example.com", key, "legitimate_interest", "granted", 1),
        )
        .await;
        let path = format!("/api/v1/purposes/{key}/assessments");
        // No assessment: legitimate interest cannot be relied on.
        assert_eq!(app.assign("lia", "li@example.com").await["eligible"], false);
        // Each field is checked.
        let mut incomplete = assessment("positive");
        incomplete["safeguards"] = json!(" ");
        let refused =
            assert_json_error(app.post(&path, Role::Compliance, incomplete).await, 422).await;
        assert!(refused["message"].as_str().unwrap().contains("safeguards"));
        assert_json_error(
            app.post(&path, Role::Marketer, assessment("positive"))
                .await,
            403,
        )
        .await;
        let recorded = app
            .post_ok(&path, Role::Compliance, assessment("positive"))
            .await;
        assert_eq!(recorded["version"], 1);
        assert_eq!(app.assign("lia", "li@example.com").await["eligible"], true);
        let listed = app.get_json(&path, Some(Role::Compliance)).await;
        assert_eq!(listed["assessments"][0]["outcome"], "positive");
        assert_eq!(listed["assessments"][0]["reviewer"], "Dana (DPO)");
        let purpose = app
            .get_json(&format!("/api/v1/purposes/{key}"), Some(Role::Analyst))
            .await;
        assert_eq!(purpose["purpose"]["li_assessment_ref"], "LIA v1");
        // The compliance view of the pilot shows it.
        let cookie = app.sign_in(&app.tokens[&Role::Compliance]).await;
        let (_, view) = app.page(&cookie, "/ui/experiments/lia/compliance").await;
        assert!(
            view.contains("LIA v1, positive, reviewed by Dana (DPO) on 2026-12-01"),
            "{view}"
        );
        // A negative review withdraws the basis: the person is refused again.
        let negative = app
            .post_ok(&path, Role::Compliance, assessment("negative"))
            .await;
        assert_eq!(negative["version"], 2);
        assert_eq!(negative["outcome"], "negative");
        let again = app.assign("lia", "li@example.com").await;
        assert_eq!(
            again["eligible"], false,
            "legitimate interest no longer holds"
        );
    }
);

api_story!(a_retired_purpose_takes_nobody_new, |app| {
    app.start_pilot(Design::new("running").json()).await;
    app.post_ok(
        "/api/v1/experiments",
        Role::Marketer,
        Design::new("drafted").json(),
    )
    .await;
    app.post_ok(
        "/api/v1/consents",
        Role::Ingest,
        json!({"records": [grant("in@example.com", PURPOSE, "consent", "granted", 1),
            grant("out@example.com", PURPOSE, "consent", "granted", 1)]}),
    )
    .await;
    let held = app.assign("running", "in@example.com").await;
    assert_eq!(held["eligible"], true);
    let retire = format!("/api/v1/purposes/{PURPOSE}/retire");
    assert_json_error(
        app.post(&retire, Role::Compliance, json!({"reason": ""}))
            .await,
        422,
    )
    .await;
    let retired = app
        .post_ok(
            &retire,
            Role::Compliance,
            json!({"reason": "the home page is gone"}),
        )
        .await;
    assert_eq!(retired["purpose"]["version"], 2);
    assert!(retired["purpose"]["retired_at"].is_string());
    assert_json_error(
        app.post(&retire, Role::Compliance, json!({"reason": "again"}))
            .await,
        409,
    )
    .await;
    // Someone new is refused; someone assigned before keeps the variant.
    let new = app.assign("running", "out@example.com").await;
    assert_eq!(new["eligible"], false);
    assert_eq!(new["reason"], "purpose_retired");
    let again = app.assign("running", "in@example.com").await;
    assert_eq!(again["variant"], held["variant"]);
    // No new consent (the record's error); a withdrawal is still recorded.
    let consent = app
        .post(
            "/api/v1/consents",
            Role::Ingest,
            grant("third@example.com", PURPOSE, "consent", "granted", 1),
        )
        .await;
    assert_json_error(consent, 422).await;
    app.post_ok(
        "/api/v1/consents",
        Role::Ingest,
        grant("in@example.com", PURPOSE, "consent", "withdrawn", 1),
    )
    .await;
    // No new pilot, no submission; no change of the retired purpose.
    let create = app
        .post(
            "/api/v1/experiments",
            Role::Marketer,
            Design::new("later").json(),
        )
        .await;
    assert_json_error(create, 422).await;
    let submit = app
        .post(
            "/api/v1/experiments/drafted/submit",
            Role::Marketer,
            json!({}),
        )
        .await;
    assert_json_error(submit, 409).await;
    assert_json_error(
        put(&app, PURPOSE, Role::Compliance, rule(json!({}))).await,
        409,
    )
    .await;
    let history = app
        .get_json(
            &format!("/api/v1/purposes/{PURPOSE}"),
            Some(Role::Compliance),
        )
        .await;
    assert_eq!(history["history"][0]["retired"], true);
});

api_story!(
    the_registry_pages_change_assess_and_retire_for_compliance_only,
    |app| {
        app.register_purpose().await;
        let compliance = app.sign_in(&app.tokens[&Role::Compliance]).await;
        let (status, list) = app.page(&compliance, "/ui/purposes").await;
        assert_eq!(status, 200);
        assert!(list.contains("Register a purpose"));
        let csrf = web::csrf_of(&list);
        let created = web::submit(
            &app.address,
            &compliance,
            "/ui/purposes",
            &[
                ("csrf", csrf.as_str()),
                ("key", "analytics.shop.ab_testing"),
                ("description", "Storefront tests"),
                ("basis_consent", "on"),
                ("basis_legitimate_interest", "on"),
                ("min_notice_version", "1"),
                ("retention_days", "90"),
            ],
        )
        .await;
        assert_eq!(created.status(), 303);
        let (_, page) = app
            .page(&compliance, "/ui/purposes/analytics.shop.ab_testing")
            .await;
        assert!(page.contains("none positive: legitimate interest cannot be relied on"));
        let assessed = web::submit(
            &app.address,
            &compliance,
            "/ui/purposes/analytics.shop.ab_testing/assessments",
            &[
                ("csrf", csrf.as_str()),
                ("purpose_test", "Better pages.\r\nFor everyone."),
                ("necessity_test", "Least intrusive."),
                ("interests", "Clearer checkout."),
                ("expectations", "Expected."),
                ("safeguards", "Pseudonyms."),
                ("outcome", "positive"),
                ("reviewer", "Dana"),
                ("reviewed_on", "2026-12-02"),
            ],
        )
        .await;
        assert_eq!(assessed.status(), 303);
        let changed = web::submit(
            &app.address,
            &compliance,
            "/ui/purposes/analytics.shop.ab_testing",
            &[
                ("csrf", csrf.as_str()),
                ("description", "Storefront tests"),
                ("basis_consent", "on"),
                ("min_notice_version", "3"),
                ("retention_days", "90"),
                ("version", "1"),
            ],
        )
        .await;
        assert_eq!(changed.status(), 303);
        let (_, page) = app
            .page(&compliance, "/ui/purposes/analytics.shop.ab_testing")
            .await;
        assert!(page.contains("LIA v1: positive, reviewed by Dana on 2026-12-02"));
        assert!(page.contains("narrowed: the minimum notice version rose from 1 to 3"));
        assert!(page.contains("Save as version 3"));
        // A form without the session's CSRF token changes nothing.
        let forged = web::submit(
            &app.address,
            &compliance,
            "/ui/purposes/analytics.shop.ab_testing/retire",
            &[("csrf", "forged"), ("reason", "x")],
        )
        .await;
        assert_eq!(forged.status(), 403);
        let retired = web::submit(
            &app.address,
            &compliance,
            "/ui/purposes/analytics.shop.ab_testing/retire",
            &[("csrf", csrf.as_str()), ("reason", "done")],
        )
        .await;
        assert_eq!(retired.status(), 303);
        let (_, page) = app
            .page(&compliance, "/ui/purposes/analytics.shop.ab_testing")
            .await;
        assert!(page.contains("Retired on"));
        assert!(
            !page.contains("Save as version"),
            "a retired purpose has no forms"
        );

        // The marketer reads the registry, without forms or assessments.
        let marketer = app.sign_in(&app.tokens[&Role::Marketer]).await;
        let (status, list) = app.page(&marketer, "/ui/purposes").await;
        assert_eq!(status, 200);
        assert!(!list.contains("Register a purpose"));
        let (_, page) = app
            .page(&marketer, "/ui/purposes/personalize.content")
            .await;
        assert!(!page.contains("Legitimate-interest assessments"));
        assert!(!page.contains("<form method=\"post\" action=\"/ui/purposes"));
        let csrf = web::csrf_of(&page);
        let refused = web::submit(
            &app.address,
            &marketer,
            "/ui/purposes/personalize.content/retire",
            &[("csrf", csrf.as_str()), ("reason", "x")],
        )
        .await;
        assert_eq!(refused.status(), 403);
    }
);
