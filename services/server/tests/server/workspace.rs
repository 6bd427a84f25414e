//! The marketer's workspace over HTTP, as a browser without JavaScript uses
//! it: the root redirect, the design form (rows added and removed, refusals
//! beside their fields with the values kept), the consent-aware planner in
//! the API and on the form, the lifecycle buttons with their confirmation
//! pages, compliance's comment shown to the marketer, the empty state, the
//! downloads (audited), the memo, CUPED in the service, and no link a role
//! cannot open.

use std::collections::{BTreeSet, VecDeque};

use crate::support::process::{pilotgate, run, text};
use crate::support::{Design, TestApp, web};
use pilotgate_domain::Role;
use serde_json::{Value, json};

/// Ledger records for `users` with `status` on `personalize.content`,
/// collected at `at`.
async fn ledger(app: &TestApp, users: &[String], status: &str, at: &str) {
    for chunk in users.chunks(500) {
        let records: Vec<Value> = chunk
            .iter()
            .map(|u| {
                json!({"user_id": u, "purpose": "personalize.content", "basis": "consent", "status": status,
                "notice_id": "pn", "notice_version": 1, "source": {"channel": "app", "method": "tap"}, "collected_at": at})
            })
            .collect();
        app.post_ok(
            "/api/v1/consents",
            Role::Ingest,
            json!({"records": records}),
        )
        .await;
    }
}

fn people(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}@example.com")).collect()
}

/// The form fields of a sound design of pilot `key`, as the page posts them.
fn form(key: &str, csrf: &str) -> Vec<(&'static str, String)> {
    [
        ("csrf", csrf),
        ("key", key),
        ("name", "Checkout copy"),
        ("hypothesis", "Shorter copy sells more"),
        ("owner", ""),
        ("purpose", "personalize.content"),
        ("variant_key", "control"),
        ("variant_weight", "1"),
        ("variant_key", "short"),
        ("variant_weight", "1"),
        ("coverage", "1"),
        ("primary_event", "purchase"),
        ("primary_kind", "binary"),
        ("guardrail_event", "refund"),
        ("guardrail_kind", "binary"),
        ("mde", "0.1"),
        ("alpha", "0.05"),
        ("power", "0.8"),
        ("baseline_rate", "0.1"),
        ("attribution_window_hours", ""),
        ("data_categories", "orders, page_views"),
        ("retention_days", "90"),
        ("daily_visitors", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect()
}

fn with(
    mut fields: Vec<(&'static str, String)>,
    name: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    match fields.iter_mut().find(|(k, _)| *k == name) {
        Some(slot) => slot.1 = value.to_owned(),
        None => fields.push((name, value.to_owned())),
    }
    fields
}

async fn post_form(
    app: &TestApp,
    cookie: &str,
    path: &str,
    fields: &[(&'static str, String)],
) -> (u16, String, String) {
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = web::submit(&app.address, cookie, path, &pairs).await;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, location, response.text().await.unwrap())
}

api_story!(the_root_leads_to_the_dashboards_and_signing_in, |app| {
    let client = web::client();
    let root = client
        .get(format!("{}/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 303);
    assert_eq!(root.headers()["location"], "/ui");
    let (status, _) = app.page("", "/ui").await;
    assert_eq!(status, 303);
    let home = client
        .get(format!("{}/ui", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(home.headers()["location"], "/ui/sign-in");
    let cookie = app.sign_in(&app.tokens[&Role::Marketer]).await;
    let home = client
        .get(format!("{}/ui", app.address))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(home.headers()["location"], "/ui/experiments");
});

api_story!(
    a_marketer_designs_a_pilot_in_the_form_and_mends_a_refused_field,
    |app| {
        app.register_purpose().await;
        let cookie = app.sign_in(&app.tokens[&Role::Marketer]).await;
        let (status, page) = app.page(&cookie, "/ui/experiments/new").await;
        assert_eq!(status, 200);
        assert!(
            page.contains("personalize.content — bases: consent; notice v1 or later"),
            "{page}"
        );
        assert_eq!(page.matches("name=\"variant_key\"").count(), 2);
        let csrf = web::csrf_of(&page);

        // Rows come and go without JavaScript, keeping what was typed.
        let (status, _, page) = post_form(
            &app,
            &cookie,
            "/ui/experiments/new",
            &with(form("copy", &csrf), "op", "add_variant"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(page.matches("name=\"variant_key\"").count(), 3);
        assert!(page.contains("value=\"Checkout copy\""));
        let (_, _, page) = post_form(
            &app,
            &cookie,
            "/ui/experiments/new",
            &with(form("copy", &csrf), "op", "remove_guardrail_0"),
        )
        .await;
        assert_eq!(page.matches("name=\"guardrail_event\"").count(), 0);

        // A refusal stands beside its field, with the values kept.
        let (status, _, page) = post_form(
            &app,
            &cookie,
            "/ui/experiments/new",
            &with(form("copy", &csrf), "mde", "ten percent"),
        )
        .await;
        assert_eq!(status, 422);
        assert!(
            page.contains("id=\"mde-error\">must be a number</p>"),
            "{page}"
        );
        assert!(page.contains("value=\"ten percent\"") && page.contains("value=\"Checkout copy\""));
        let (status, _, page) = post_form(
            &app,
            &cookie,
            "/ui/experiments/new",
            &with(form("copy", &csrf), "coverage", "1.5"),
        )
        .await;
        assert_eq!(status, 422);
        assert!(
            page.contains("id=\"coverage-error\">must be in (0, 1]")
                || page.contains("id=\"coverage-error\">"),
            "{page}"
        );
        assert!(
            !page.contains("id=\"coverage-error\"></p>"),
            "the coverage refusal is shown: {page}"
        );
        let (status, location, page) = post_form(
            &app,
            &cookie,
            "/ui/experiments/new",
            &with(form("new", &csrf), "key", "new"),
        )
        .await;
        assert_eq!(
            status, 422,
            "the page's own name is no pilot key: {location} {page}"
        );
        assert!(page.contains("id=\"key-error\">is reserved"), "{page}");
        // Without the session's CSRF token nothing is saved.
        let (status, _, _) = post_form(
            &app,
            &cookie,
            "/ui/experiments/new",
            &form("copy", "forged"),
        )
        .await;
        assert_eq!(status, 403);

        let (status, location, _) =
            post_form(&app, &cookie, "/ui/experiments/new", &form("copy", &csrf)).await;
        assert_eq!((status, location.as_str()), (303, "/ui/experiments/copy"));
        let pilot = app
            .get_json("/api/v1/experiments/copy", Some(Role::Analyst))
            .await;
        assert_eq!(pilot["state"], "draft");
        assert_eq!(pilot["name"], "Checkout copy");
        assert_eq!(pilot["owner"], "marketer-token");
        assert_eq!(pilot["guardrails"][0]["event"], "refund");
        assert_eq!(pilot["data_categories"], json!(["orders", "page_views"]));
        let creation = app
            .get_json(
                "/api/v1/audit?target=experiment:copy",
                Some(Role::Compliance),
            )
            .await;
        assert_eq!(
            creation["entries"][0]["action"], "experiment.create",
            "{creation}"
        );

        // Editing keeps the key and makes a new design version.
        let (status, page) = app.page(&cookie, "/ui/experiments/copy/edit").await;
        assert_eq!(status, 200);
        assert!(
            page.contains("<code>copy</code>")
                && page.contains("value=\"Shorter copy sells more\"")
                || page.contains("Shorter copy sells more")
        );
        let (status, _, _) = post_form(
            &app,
            &cookie,
            "/ui/experiments/copy/edit",
            &with(form("copy", &csrf), "name", "Checkout copy, shorter"),
        )
        .await;
        assert_eq!(status, 303);
        let pilot = app
            .get_json("/api/v1/experiments/copy", Some(Role::Analyst))
            .await;
        assert_eq!(
            (pilot["name"].as_str(), pilot["design_version"].as_i64()),
            (Some("Checkout copy, shorter"), Some(2))
        );

        // Other roles get no form.
        let analyst = app.sign_in(&app.tokens[&Role::Analyst]).await;
        assert_eq!(app.page(&analyst, "/ui/experiments/new").await.0, 403);
        assert_eq!(app.page(&analyst, "/ui/experiments/copy/edit").await.0, 403);
    }
);

api_story!(
    the_plan_counts_only_eligible_subjects_and_half_of_them_takes_twice_as_long,
    |app| {
        app.register_purpose().await;
        let granted = people("yes", 30);
        let denied = people("no", 30);
        ledger(&app, &granted, "granted", "2026-01-01T00:00:00Z").await;
        ledger(&app, &denied, "denied", "2026-01-01T00:00:00Z").await;
        let share = app
            .get_json(
                "/api/v1/purposes/personalize.content/eligible-share",
                Some(Role::Marketer),
            )
            .await;
        assert_eq!(
            (share["known"].as_u64(), share["eligible"].as_u64()),
            (Some(60), Some(30))
        );
        assert_eq!(share["share"], 0.5);
        assert_eq!(share["ineligible"], json!({"denied": 30}));
        let missing = app
            .get(
                "/api/v1/purposes/no.such/eligible-share",
                Some(Role::Marketer),
            )
            .await;
        crate::support::assert_json_error(missing, 404).await;
        assert_eq!(
            app.get(
                "/api/v1/purposes/personalize.content/eligible-share",
                Some(Role::Ingest)
            )
            .await
            .status(),
            403
        );

        let design = Design::new("plan")
            .with("baseline_rate", json!(0.1))
            .with("coverage", json!(0.5));
        app.post_ok("/api/v1/experiments", Role::Marketer, design.json())
            .await;
        let half = app
            .get_json(
                "/api/v1/experiments/plan?daily_visitors=1000",
                Some(Role::Marketer),
            )
            .await;
        let needed = half["planned_sample_size"]["per_variant"].as_f64().unwrap();
        let plan = &half["plan"];
        assert_eq!(plan["traffic"], "expected_visitors");
        assert_eq!(plan["needed_per_variant"].as_f64(), Some(needed));
        // 1,000 visitors × 50% eligible × 50% coverage, split in two.
        assert_eq!(plan["daily_enrolled"], 250.0);
        let half_days = plan["days_needed"].as_f64().unwrap();
        assert!((half_days - needed / 125.0).abs() < 1e-9, "{plan}");
        assert_eq!(plan["detectable"].as_array().unwrap().len(), 3);
        assert_eq!(plan["detectable"][0]["days"], 7);
        assert_eq!(plan["detectable"][0]["users_per_variant"], 875.0);

        // Everyone consents later: every subject eligible, the days halve,
        // and the plan is the plain power calculation.
        ledger(&app, &denied, "granted", "2026-01-02T00:00:00Z").await;
        let all = app
            .get_json(
                "/api/v1/experiments/plan?daily_visitors=1000",
                Some(Role::Marketer),
            )
            .await;
        let all_days = all["plan"]["days_needed"].as_f64().unwrap();
        assert!(
            (half_days - 2.0 * all_days).abs() < 1e-9,
            "{half_days} vs {all_days}"
        );
        assert!((all_days * 1000.0 * 0.5 * 0.5 - needed).abs() < 1e-6);
        let bad = app
            .get(
                "/api/v1/experiments/plan?daily_visitors=-5",
                Some(Role::Marketer),
            )
            .await;
        crate::support::assert_json_error(bad, 422).await;

        // The same figures on the form.
        let cookie = app.sign_in(&app.tokens[&Role::Marketer]).await;
        let (_, page) = app.page(&cookie, "/ui/experiments/new").await;
        let csrf = web::csrf_of(&page);
        let fields = with(
            with(form("planned", &csrf), "daily_visitors", "1000"),
            "op",
            "plan",
        );
        let fields = with(fields, "coverage", "0.5");
        let (status, _, page) = post_form(&app, &cookie, "/ui/experiments/new", &fields).await;
        assert_eq!(status, 200, "{page}");
        let days = all_days.ceil() as u64;
        assert!(
            page.contains(&format!("<strong>{days} days</strong>")),
            "{days} days: {page}"
        );
        assert!(page.contains("100% (60 of 60)"), "{page}");
        let (status, pilot_page) = app
            .page(&cookie, "/ui/experiments/plan?daily_visitors=1000")
            .await;
        assert_eq!(status, 200);
        assert!(
            pilot_page.contains(&format!("<strong>{days} days</strong>")),
            "the pilot's page: {pilot_page}"
        );
        assert!(
            app.get("/api/v1/experiments/planned", Some(Role::Marketer))
                .await
                .status()
                == 404,
            "planning saves nothing"
        );
    }
);

api_story!(
    the_marketer_submits_starts_and_stops_from_the_pilot_page_and_reads_the_dpos_comment,
    |app| {
        app.register_purpose().await;
        app.post_ok(
            "/api/v1/experiments",
            Role::Marketer,
            Design::new("walk").json(),
        )
        .await;
        let marketer = app.sign_in(&app.tokens[&Role::Marketer]).await;
        let (status, page) = app.page(&marketer, "/ui/experiments/walk").await;
        assert_eq!(
            status, 200,
            "a pilot without users has a page, not an error"
        );
        assert!(page.contains("No results yet"), "{page}");
        assert!(page.contains("href=\"/ui/experiments/walk/submit\""));
        assert!(
            !page.contains("/ui/experiments/walk/start\"") && !page.contains("Compliance view")
        );

        let (status, confirm) = app.page(&marketer, "/ui/experiments/walk/submit").await;
        assert_eq!(status, 200);
        assert!(confirm.contains("Submit for approval"));
        let csrf = web::csrf_of(&confirm);
        let stale = [("csrf", csrf.clone()), ("design_version", "7".to_owned())];
        let (status, _, _) =
            post_form(&app, &marketer, "/ui/experiments/walk/submit", &stale).await;
        assert_eq!(
            status, 409,
            "a page showing another design version acts on nothing"
        );
        let fresh = [("csrf", csrf.clone()), ("design_version", "1".to_owned())];
        let (status, location, _) =
            post_form(&app, &marketer, "/ui/experiments/walk/submit", &fresh).await;
        assert_eq!((status, location.as_str()), (303, "/ui/experiments/walk"));
        let pilot = app
            .get_json("/api/v1/experiments/walk", Some(Role::Marketer))
            .await;
        assert_eq!(pilot["state"], "submitted");
        // Twice is a conflict, not a second submission.
        assert_eq!(
            app.page(&marketer, "/ui/experiments/walk/submit").await.0,
            409
        );

        // Compliance denies with a reason; the marketer reads it.
        let dpo = app.sign_in(&app.tokens[&Role::Compliance]).await;
        let (_, view) = app.page(&dpo, "/ui/experiments/walk/compliance").await;
        let dpo_csrf = web::csrf_of(&view);
        let deny = [
            ("csrf", dpo_csrf.clone()),
            ("design_version", "1".to_owned()),
            (
                "comment",
                "Retention is longer than the purpose allows.".to_owned(),
            ),
        ];
        assert_eq!(
            post_form(&app, &dpo, "/ui/experiments/walk/deny", &deny)
                .await
                .0,
            303
        );
        let (_, page) = app.page(&marketer, "/ui/experiments/walk").await;
        assert!(page.contains("Denied by compliance-token"), "{page}");
        assert!(page.contains("Retention is longer than the purpose allows."));
        assert!(page.contains("href=\"/ui/experiments/walk/edit\""));
        let (_, edit) = app.page(&marketer, "/ui/experiments/walk/edit").await;
        assert!(edit.contains("Compliance denied this design"));

        // Edited, submitted again, approved, started and stopped in the browser.
        let (_, _, _) = post_form(
            &app,
            &marketer,
            "/ui/experiments/walk/edit",
            &with(form("walk", &csrf), "retention_days", "30"),
        )
        .await;
        let again = [("csrf", csrf.clone()), ("design_version", "2".to_owned())];
        assert_eq!(
            post_form(&app, &marketer, "/ui/experiments/walk/submit", &again)
                .await
                .0,
            303
        );
        let approve = [
            ("csrf", dpo_csrf),
            ("design_version", "2".to_owned()),
            ("comment", "Fine now.".to_owned()),
        ];
        assert_eq!(
            post_form(&app, &dpo, "/ui/experiments/walk/approve", &approve)
                .await
                .0,
            303
        );
        let (_, page) = app.page(&marketer, "/ui/experiments/walk").await;
        assert!(
            page.contains("Approved by compliance-token") && page.contains("Fine now."),
            "{page}"
        );
        assert!(page.contains("href=\"/ui/experiments/walk/start\""));
        let analyst = app.sign_in(&app.tokens[&Role::Analyst]).await;
        assert_eq!(
            app.page(&analyst, "/ui/experiments/walk/start").await.0,
            403
        );
        let (_, page) = app.page(&analyst, "/ui/experiments/walk").await;
        assert!(
            !page.contains("/ui/experiments/walk/start\""),
            "no button for a role that cannot press it"
        );
        let (_, confirm) = app.page(&marketer, "/ui/experiments/walk/start").await;
        let start = [
            ("csrf", web::csrf_of(&confirm)),
            ("design_version", "2".to_owned()),
        ];
        assert_eq!(
            post_form(&app, &marketer, "/ui/experiments/walk/start", &start)
                .await
                .0,
            303
        );
        let (_, page) = app.page(&marketer, "/ui/experiments/walk").await;
        assert!(
            page.contains("The pilot runs, but no eligible visitor has been assigned yet"),
            "{page}"
        );
        let stop = [("csrf", csrf), ("design_version", "2".to_owned())];
        assert_eq!(
            post_form(&app, &marketer, "/ui/experiments/walk/stop", &stop)
                .await
                .0,
            303
        );
        let pilot = app
            .get_json("/api/v1/experiments/walk", Some(Role::Marketer))
            .await;
        assert_eq!(pilot["state"], "stopped");
        let trail = app
            .get_json(
                "/api/v1/audit?target=experiment:walk",
                Some(Role::Compliance),
            )
            .await;
        let actions: Vec<&str> = trail["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        for action in ["experiment.submit", "experiment.start", "experiment.stop"] {
            assert!(
                actions.iter().any(|a| a == &action),
                "{action} in {actions:?}"
            );
        }
    }
);

/// A running pilot `hero` with consented, assigned users and purchases.
async fn running_pilot(app: &TestApp) {
    let design = Design::new("hero")
        .with("name", json!("Hero banner"))
        .with("baseline_rate", json!(0.2));
    app.start_pilot(design.guardrails(&[("refund", "binary")]).json())
        .await;
    let users = people("shopper", 60);
    ledger(app, &users, "granted", "2026-01-01T00:00:00Z").await;
    let mut events = Vec::new();
    for (n, user) in users.iter().enumerate() {
        app.assign("hero", user).await;
        if n % 3 == 0 {
            events.push(json!({"event_id": format!("p{n}"), "user_id": user, "name": "purchase", "value": 1.0, "occurred_at": chrono::Utc::now().to_rfc3339()}));
        }
    }
    app.post_ok("/api/v1/events", Role::Ingest, json!({"events": events}))
        .await;
}

api_story!(
    downloads_and_the_memo_carry_the_apis_numbers_and_are_audited,
    |app| {
        running_pilot(&app).await;
        let api = app
            .get_json(
                "/api/v1/experiments/hero/results?method=bayesian",
                Some(Role::Marketer),
            )
            .await;
        let marketer = app.sign_in(&app.tokens[&Role::Marketer]).await;
        let (status, page) = app
            .page(&marketer, "/ui/experiments/hero?method=bayesian")
            .await;
        assert_eq!(status, 200);
        assert!(page.contains("href=\"/ui/experiments/hero/results.csv?metric=purchase&#38;method=bayesian&#38;alpha=0.05\""), "{page}");

        let download = |path: &'static str| {
            let (address, cookie) = (app.address.clone(), marketer.clone());
            async move {
                let response = web::client()
                    .get(format!("{address}{path}"))
                    .header("cookie", cookie)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200, "{path}");
                assert!(
                    response.headers()["content-disposition"]
                        .to_str()
                        .unwrap()
                        .starts_with("attachment; filename=\"hero-results.")
                );
                response.text().await.unwrap()
            }
        };
        let csv =
            download("/ui/experiments/hero/results.csv?metric=purchase&method=bayesian&alpha=0.05")
                .await;
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        for (line, variant) in lines.zip(api["variants"].as_array().unwrap()) {
            let row: std::collections::HashMap<&str, &str> =
                header.iter().copied().zip(line.split(',')).collect();
            assert_eq!(row["variant"], variant["variant"].as_str().unwrap());
            assert_eq!(
                row["users"].parse::<u64>().unwrap(),
                variant["users"].as_u64().unwrap()
            );
            assert_eq!(row["method"], "bayesian");
        }
        let treated: Vec<&str> = csv.lines().nth(2).unwrap().split(',').collect();
        let relative = api["comparisons"][0]["relative"]["estimate"]
            .as_f64()
            .unwrap();
        let column = header
            .iter()
            .position(|h| *h == "relative_estimate")
            .unwrap();
        assert_eq!(treated[column].parse::<f64>().unwrap(), relative);
        let chance = header.iter().position(|h| *h == "chance_to_win").unwrap();
        assert_eq!(
            treated[chance].parse::<f64>().unwrap(),
            api["comparisons"][0]["relative"]["chance_to_win"]
                .as_f64()
                .unwrap()
        );

        let json: Value = serde_json::from_str(
            &download("/ui/experiments/hero/results.json?method=bayesian").await,
        )
        .unwrap();
        for field in ["variants", "comparisons", "decision", "guardrails"] {
            assert_eq!(json[field], api[field], "{field}");
        }
        let through_api = app
            .get(
                "/api/v1/experiments/hero/results/download?format=csv&method=bayesian",
                Some(Role::Analyst),
            )
            .await;
        assert_eq!(through_api.status(), 200);
        assert_eq!(through_api.text().await.unwrap(), csv);
        assert_eq!(
            app.get(
                "/api/v1/experiments/hero/results/download?format=csv",
                Some(Role::Ingest)
            )
            .await
            .status(),
            403
        );
        let bad = app
            .get(
                "/api/v1/experiments/hero/results/download?format=xls",
                Some(Role::Analyst),
            )
            .await;
        assert!(bad.status().is_client_error());

        let trail = app
            .get_json(
                "/api/v1/audit?target=experiment:hero",
                Some(Role::Compliance),
            )
            .await;
        let downloads: Vec<&Value> = trail["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "results.downloaded")
            .collect();
        assert_eq!(downloads.len(), 3, "{trail}");
        assert_eq!(downloads[0]["actor"], "marketer-token (marketer)");
        assert_eq!(downloads[0]["details"]["format"], "csv");
        assert_eq!(
            downloads[0]["details"]["sha256"].as_str().unwrap().len(),
            64
        );

        // The memo: the results endpoint's numbers under the pre-registered
        // method, the approval and the audit chain's head.
        let api = app
            .get_json("/api/v1/experiments/hero/results", Some(Role::Marketer))
            .await;
        let (status, memo) = app.page(&marketer, "/ui/experiments/hero/memo").await;
        assert_eq!(status, 200);
        let head = app
            .get_json("/api/v1/audit?limit=1000", Some(Role::Compliance))
            .await;
        let entries = head["entries"].as_array().unwrap();
        let last = entries.last().unwrap();
        assert!(
            memo.contains(&format!(
                "<code id=\"audit-hash\">{}</code>",
                last["hash"].as_str().unwrap()
            )),
            "{memo}"
        );
        assert!(memo.contains(&format!("<dd id=\"audit-entries\">{}</dd>", last["id"])));
        for variant in api["variants"].as_array().unwrap() {
            assert!(
                memo.contains(&format!("<td class=\"num\">{}</td>", variant["users"])),
                "users of {variant}"
            );
        }
        let relative = api["comparisons"][0]["relative"]["estimate"]
            .as_f64()
            .unwrap();
        assert!(
            memo.contains(&pilotgate_dashboards::format::signed_percent(relative)),
            "{relative} in the memo"
        );
        assert!(
            memo.contains(">approved<") && memo.contains("<dd>ok</dd>"),
            "the approval record"
        );
        assert!(memo.contains(&format!(
            "Decision: {}",
            match api["decision"]["outcome"].as_str().unwrap() {
                "scale" => "Scale",
                "do_not_scale" => "Do not scale",
                "keep_running" => "Keep running",
                _ => "Invalid",
            }
        )));
        assert!(!memo.contains("shopper1@example.com"));

        // `pilotgate memo` writes the same page to a file of its own, 0600, audited.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("memo.html");
        let written = run(pilotgate(dir.path(), Some(&app.db.url))
            .args(["memo", "--experiment", "hero", "--out"])
            .arg(&out));
        assert!(written.status.success(), "{}", text(&written.stderr));
        let file = std::fs::read_to_string(&out).unwrap();
        assert!(
            file.contains("Scale-decision memo")
                && file.contains(&pilotgate_dashboards::format::signed_percent(relative))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let again = run(pilotgate(dir.path(), Some(&app.db.url))
            .args(["memo", "--experiment", "hero", "--out"])
            .arg(&out));
        assert!(
            !again.status.success(),
            "an existing file is never replaced"
        );
        let missing = run(pilotgate(dir.path(), Some(&app.db.url))
            .args(["memo", "--experiment", "nope", "--out"])
            .arg(dir.path().join("x.html")));
        assert!(text(&missing.stderr).contains("no pilot has the key 'nope'"));
    }
);

api_story!(
    cuped_in_the_service_equals_the_offline_analysis_with_the_covariate,
    |app| {
        // An earlier pilot of the same purpose holds each subject's purchases
        // before the later pilot assigns them.
        let prior = Design::new("prior").purchase("sum");
        app.start_pilot(prior.json()).await;
        let users = people("buyer", 120);
        ledger(&app, &users, "granted", "2026-01-01T00:00:00Z").await;
        let mut events = Vec::new();
        for (i, user) in users.iter().enumerate() {
            app.assign("prior", user).await;
            if i % 4 != 0 {
                events.push(json!({"event_id": format!("a{i}"), "user_id": user, "name": "purchase", "value": (i % 9) as f64 * 2.5 + 1.0, "occurred_at": chrono::Utc::now().to_rfc3339()}));
            }
        }
        app.post_ok("/api/v1/events", Role::Ingest, json!({"events": events}))
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let later = Design::new("later").purchase("sum");
        app.post_ok("/api/v1/experiments", Role::Marketer, later.json())
            .await;
        app.post_ok(
            "/api/v1/experiments/later/submit",
            Role::Marketer,
            json!({}),
        )
        .await;
        app.post_ok(
            "/api/v1/experiments/later/approve",
            Role::Compliance,
            json!({"design_version": 1, "comment": "ok"}),
        )
        .await;
        app.post_ok("/api/v1/experiments/later/start", Role::Marketer, json!({}))
            .await;
        let mut events = Vec::new();
        for (i, user) in users.iter().enumerate() {
            let assigned = app.assign("later", user).await;
            let lift = if assigned["variant"] == "v1" {
                1.5
            } else {
                0.0
            };
            events.push(json!({"event_id": format!("b{i}"), "user_id": user, "name": "purchase", "value": (i % 9) as f64 * 2.0 + lift, "occurred_at": chrono::Utc::now().to_rfc3339()}));
        }
        app.post_ok("/api/v1/events", Role::Ingest, json!({"events": events}))
            .await;

        let adjusted = app
            .get_json(
                "/api/v1/experiments/later/results?cuped=true",
                Some(Role::Analyst),
            )
            .await;
        let reduction = adjusted["cuped"]["variance_reduction"].as_f64().unwrap();
        assert!(reduction > 0.3 && reduction <= 1.0, "{adjusted}");
        assert!(adjusted["variants"][0]["theta"].is_number(), "{adjusted}");
        let plain = app
            .get_json("/api/v1/experiments/later/results", Some(Role::Analyst))
            .await;
        let width = |r: &Value| {
            r["comparisons"][0]["absolute"]["ci"][1].as_f64().unwrap()
                - r["comparisons"][0]["absolute"]["ci"][0].as_f64().unwrap()
        };
        assert!(
            width(&adjusted) < width(&plain),
            "CUPED narrows the interval: {adjusted} vs {plain}"
        );

        // Offline: both pilots exported, the covariate file made from the
        // earlier pilot's events before each later assignment.
        let dir = tempfile::tempdir().unwrap();
        for key in ["prior", "later"] {
            let exported = run(pilotgate(dir.path(), Some(&app.db.url))
                .args([
                    "export",
                    "--break-glass",
                    "workspace check",
                    "--covariate-days",
                    "28",
                    "--experiment",
                    key,
                    "--out",
                ])
                .arg(dir.path().join(key)));
            assert!(exported.status.success(), "{}", text(&exported.stderr));
        }
        let read = |path: std::path::PathBuf| -> Vec<Vec<String>> {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .skip(1)
                .map(|l| l.split(',').map(str::to_owned).collect())
                .collect()
        };
        let assigned_at: std::collections::HashMap<String, chrono::DateTime<chrono::Utc>> =
            read(dir.path().join("later/assignments.csv"))
                .into_iter()
                .map(|row| {
                    (
                        row[0].clone(),
                        chrono::DateTime::parse_from_rfc3339(&row[2])
                            .unwrap()
                            .into(),
                    )
                })
                .collect();
        let mut covariate: std::collections::BTreeMap<String, f64> = Default::default();
        for row in read(dir.path().join("prior/events.csv")) {
            let at: chrono::DateTime<chrono::Utc> = chrono::DateTime::parse_from_rfc3339(&row[3])
                .unwrap()
                .into();
            if let Some(assigned) = assigned_at.get(&row[0])
                && at < *assigned
                && at >= *assigned - chrono::Duration::days(28)
            {
                *covariate.entry(row[0].clone()).or_default() += row[2].parse::<f64>().unwrap();
            }
        }
        assert!(covariate.len() > 50);
        // The export carries the same covariate, made by the service's own
        // definition.
        let exported: std::collections::BTreeMap<String, f64> =
            read(dir.path().join("later/covariate.csv"))
                .into_iter()
                .map(|row| (row[0].clone(), row[1].parse::<f64>().unwrap()))
                .collect();
        assert_eq!(
            exported.keys().collect::<Vec<_>>(),
            covariate.keys().collect::<Vec<_>>()
        );
        for (subject, value) in &covariate {
            assert!((exported[subject] - value).abs() < 1e-9, "{subject}");
        }
        let close = |a: &Value, b: &Value| {
            (a.as_f64().unwrap() - b.as_f64().unwrap()).abs()
                <= 1e-9 * b.as_f64().unwrap().abs().max(1.0)
        };
        // Every method: the service's CUPED equals `pilotgate analyze
        // --covariate` on the export.
        for method in ["frequentist", "sequential", "bayesian"] {
            let adjusted = app
                .get_json(
                    &format!("/api/v1/experiments/later/results?cuped=true&method={method}"),
                    Some(Role::Analyst),
                )
                .await;
            let offline = run(pilotgate(dir.path(), None)
                .args([
                    "analyze",
                    "--format",
                    "json",
                    "--metric",
                    "purchase",
                    "--kind",
                    "sum",
                    "--method",
                    method,
                    "--assignments",
                ])
                .arg(dir.path().join("later/assignments.csv"))
                .arg("--events")
                .arg(dir.path().join("later/events.csv"))
                .arg("--covariate")
                .arg(dir.path().join("later/covariate.csv")));
            assert!(offline.status.success(), "{}", text(&offline.stderr));
            let offline: Value = serde_json::from_slice(&offline.stdout).unwrap();
            assert_eq!(adjusted["method"], method);
            for effect in ["relative", "absolute"] {
                let (got, want) = (
                    &adjusted["comparisons"][0][effect],
                    &offline["comparisons"][0][effect],
                );
                let fields: &[&str] = if method == "bayesian" {
                    &["estimate", "chance_to_win"]
                } else {
                    &["estimate", "p_value"]
                };
                for field in fields {
                    assert!(
                        close(&got[field], &want[field]),
                        "{method} {effect} {field}: {got} vs {want}"
                    );
                }
                assert!(
                    close(&got["ci"][0], &want["ci"][0]) && close(&got["ci"][1], &want["ci"][1]),
                    "{method} {effect}: {got} vs {want}"
                );
            }
            for (got, want) in adjusted["variants"]
                .as_array()
                .unwrap()
                .iter()
                .zip(offline["variants"].as_array().unwrap())
            {
                assert!(close(&got["theta"], &want["theta"]), "{got} vs {want}");
            }
            assert!(adjusted["cuped"]["variance_reduction"].as_f64().unwrap() > 0.3);
        }

        // A pilot whose subjects have no earlier events has no covariate.
        let lonely = app
            .get(
                "/api/v1/experiments/prior/results?cuped=true",
                Some(Role::Analyst),
            )
            .await;
        let body = crate::support::assert_json_error(lonely, 422).await;
        assert!(
            body["message"].as_str().unwrap().starts_with("cuped:"),
            "{body}"
        );
        let marketer = app.sign_in(&app.tokens[&Role::Marketer]).await;
        let (status, page) = app.page(&marketer, "/ui/experiments/prior?cuped=on").await;
        assert_eq!(status, 200);
        assert!(page.contains("CUPED is not available"), "{page}");
        let (_, page) = app
            .page(&marketer, "/ui/experiments/later?cuped=on&lookback_days=28")
            .await;
        assert!(
            page.contains("CUPED with a 28-day pre-period removed"),
            "{page}"
        );
    }
);

/// Every `/ui` link of `html`, with `&amp;` decoded.
fn links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| href.starts_with("/ui"))
        .map(|href| href.replace("&amp;", "&").replace("&#38;", "&"))
        .collect()
}

api_story!(no_page_shows_a_link_its_role_cannot_open, |app| {
    running_pilot(&app).await;
    app.post_ok(
        "/api/v1/experiments",
        Role::Marketer,
        Design::new("drafted").json(),
    )
    .await;
    for (role, token) in &app.tokens {
        let cookie = app.sign_in(token).await;
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from(["/ui/experiments".to_owned()]);
        while let Some(path) = queue.pop_front() {
            if !seen.insert(path.clone()) || seen.len() > 300 {
                continue;
            }
            let (status, page) = app.page(&cookie, &path).await;
            assert!(
                status == 200 || (status == 303 && path.ends_with("/ui")),
                "{role}: {path} answers {status}"
            );
            // Downloads are files; pages are walked further.
            if !path.contains("results.") {
                queue.extend(links(&page));
            }
        }
        let expected_pages = match role {
            Role::Ingest => 1,
            _ => 5,
        };
        assert!(seen.len() >= expected_pages, "{role} walked {seen:?}");
    }
});
