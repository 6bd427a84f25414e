//! The customer's consent form behind a privacy link, on SQLite and
//! PostgreSQL: the link (no raw id in it, tampered and expired links
//! refused), the page over HTTP without JavaScript, saving choices into the
//! ledger with channel `privacy_center`, the form's own CSRF field, Global
//! Privacy Control, receipts and `pilotgate receipt verify`, and the assign
//! route honouring a forwarded `Sec-GPC: 1`.

use crate::notices_api::{notice_from_template, register_template_purposes};
use crate::support::process::{pilotgate, run, text};
use crate::support::{Design, TestApp, assert_json_error, pseudonym, web};
use pilotgate_domain::Role;
use serde_json::{Value, json};

pub const USER: &str = "customer-42@example.com";

/// Registers the purposes, creates the notice `shop-testing` with both the
/// A/B testing purpose and the content profiling purpose, and returns a
/// privacy link for [`USER`].
pub async fn notice_and_link(app: &TestApp) -> String {
    register_template_purposes(app).await;
    let mut body = notice_from_template(app, "shop-testing", "ab-testing").await;
    body["purposes"] = json!([
        "analytics.storefront.ab_testing",
        "personalize.content.profiling"
    ]);
    for (lang, sentence) in [
        ("en", "Choose products for you."),
        ("de", "Produkte für Sie auswählen."),
    ] {
        body["languages"][lang]["purposes"]["personalize.content.profiling"] = json!(sentence);
    }
    app.post_ok("/api/v1/notices", Role::Compliance, body).await;
    link(app, USER).await
}

pub async fn link(app: &TestApp, user: &str) -> String {
    let issued = app
        .post_ok(
            "/api/v1/privacy-links",
            Role::Ingest,
            json!({"user_id": user, "notice": "shop-testing"}),
        )
        .await;
    issued["url"].as_str().unwrap().to_owned()
}

pub async fn history(app: &TestApp) -> Vec<Value> {
    let path = format!("/api/v1/subjects/{}/consents", pseudonym(USER));
    app.get_json(&path, Some(Role::Compliance)).await["history"]
        .as_array()
        .unwrap()
        .clone()
}

pub async fn get_form(app: &TestApp, url: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let response = web::client()
        .get(format!("{}{url}", app.address))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.text().await.unwrap(), headers)
}

pub async fn post_form(
    app: &TestApp,
    url: &str,
    fields: &[(&str, &str)],
    gpc: bool,
) -> (u16, String) {
    let mut request = web::client()
        .post(format!("{}{url}", app.address))
        .form(fields);
    if gpc {
        request = request.header("Sec-GPC", "1");
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

api_story!(
    a_privacy_link_names_no_raw_id_and_tampered_or_expired_links_are_refused,
    |app| {
        let url = notice_and_link(&app).await;
        assert!(url.starts_with("/privacy/"), "{url}");
        let hex_id: String = USER.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(
            !url.contains(USER) && !url.contains(&hex_id) && !url.contains("customer-42"),
            "{url}"
        );
        let refused = app
            .post(
                "/api/v1/privacy-links",
                Role::Marketer,
                json!({"user_id": USER, "notice": "shop-testing"}),
            )
            .await;
        assert_json_error(refused, 403).await;
        let unknown = app
            .post(
                "/api/v1/privacy-links",
                Role::Ingest,
                json!({"user_id": USER, "notice": "nope"}),
            )
            .await;
        assert_json_error(unknown, 404).await;
        let blank = app
            .post(
                "/api/v1/privacy-links",
                Role::Ingest,
                json!({"user_id": " ", "notice": "shop-testing"}),
            )
            .await;
        assert_json_error(blank, 422).await;

        let token = url.trim_start_matches("/privacy/");
        let mut tampered = token.as_bytes().to_vec();
        tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let (status, html, _) = get_form(&app, &format!("/privacy/{tampered}")).await;
        assert_eq!(status, 404);
        assert!(html.contains("not valid"), "{html}");
        assert_json_error(
            app.get(&format!("/api/v1/privacy/{tampered}"), None).await,
            404,
        )
        .await;

        app.db
            .store
            .simulate_time(Some(chrono::Utc::now() + chrono::Duration::minutes(31)));
        let (status, html, _) = get_form(&app, &url).await;
        app.db.store.simulate_time(None);
        assert_eq!(status, 410);
        assert!(html.contains("expired"), "{html}");
        assert!(history(&app).await.is_empty(), "nothing recorded");
    }
);

api_story!(
    the_form_records_choices_in_the_ledger_with_a_receipt_that_verifies,
    |app| {
        let url = notice_and_link(&app).await;
        let (status, html, headers) = get_form(&app, &url).await;
        assert_eq!(status, 200);
        assert!(!html.contains("checked"), "no choice is pre-selected");
        assert!(!html.contains("<script"), "no JavaScript");
        assert!(
            html.contains("Yes, allow") && html.contains("No, don"),
            "{html}"
        );
        assert!(
            html.contains("Allow all")
                && html.contains("Refuse all")
                && html.contains("Save my choices")
        );
        assert!(
            html.contains("no choice yet")
                && html.contains("<legend>")
                && html.contains("for=\"c0-yes\"")
        );
        assert!(html.contains("hreflang=\"de\""), "a link to German");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors *"), "{csp}");
        assert!(!headers.contains_key("x-frame-options"));
        let (_, german, _) = get_form(&app, &format!("{url}?lang=de")).await;
        assert!(german.contains("Ja, erlauben") && german.contains("lang=\"de\""));

        let csrf = web::csrf_of(&html);
        let (status, _) = post_form(
            &app,
            &url,
            &[("c0", "allow"), ("notice_version", "1"), ("all", "")],
            false,
        )
        .await;
        assert_eq!(status, 403, "no CSRF field");
        let (status, _) = post_form(
            &app,
            &url,
            &[("c0", "allow"), ("notice_version", "1"), ("csrf", "0000")],
            false,
        )
        .await;
        assert_eq!(status, 403, "a wrong CSRF field");
        assert!(history(&app).await.is_empty());

        let fields = [
            ("csrf", csrf.as_str()),
            ("notice_version", "1"),
            ("lang", "en"),
            ("all", ""),
            ("c0", "allow"),
            ("c1", "refuse"),
        ];
        let (status, saved) = post_form(&app, &url, &fields, false).await;
        assert_eq!(status, 200, "{saved}");
        assert!(
            saved.contains("Your choices were saved") && saved.contains("allowed since"),
            "{saved}"
        );
        let records = history(&app).await;
        assert_eq!(records.len(), 2, "{records:?}");
        for record in &records {
            assert_eq!(record["source"]["channel"], "privacy_center");
            assert_eq!(record["source"]["method"], "form");
            assert_eq!(
                (
                    record["notice_id"].as_str(),
                    record["notice_version"].as_i64()
                ),
                (Some("shop-testing"), Some(1))
            );
            assert_eq!(record["basis"], "consent");
        }
        let statuses: Vec<(&str, &str)> = records
            .iter()
            .map(|r| {
                (
                    r["purpose"].as_str().unwrap(),
                    r["status"].as_str().unwrap(),
                )
            })
            .collect();
        assert!(
            statuses.contains(&("analytics.storefront.ab_testing", "granted")),
            "{statuses:?}"
        );
        assert!(
            statuses.contains(&("personalize.content.profiling", "denied")),
            "{statuses:?}"
        );

        // Withdrawing is as easy as giving: the same form, "Refuse all".
        let (status, _) = post_form(
            &app,
            &url,
            &[("csrf", &csrf), ("notice_version", "1"), ("all", "refuse")],
            false,
        )
        .await;
        assert_eq!(status, 200);
        let records = history(&app).await;
        assert_eq!(records.len(), 4);
        let last: Vec<&str> = records[2..]
            .iter()
            .map(|r| r["status"].as_str().unwrap())
            .collect();
        assert!(
            last.contains(&"withdrawn") && last.contains(&"denied"),
            "{last:?}"
        );

        // A version that was never published: the notice changed, reload.
        let (status, page) = post_form(
            &app,
            &url,
            &[("csrf", &csrf), ("notice_version", "7"), ("all", "allow")],
            false,
        )
        .await;
        assert_eq!(status, 409);
        assert!(page.contains("reload"), "{page}");

        // The receipt: downloadable for this link's person only, and verifiable by the CLI.
        let at = saved.find("/receipts/").expect("a receipt link");
        let href: String = saved[..at + 10 + 36].rsplit('"').next().unwrap().to_owned();
        let download = web::client()
            .get(format!("{}{href}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(download.status(), 200);
        let disposition = download.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            disposition.contains("consent-receipt-") && disposition.ends_with(".jws\""),
            "{disposition}"
        );
        let jws = download.text().await.unwrap();
        let other = link(&app, "someone-else").await;
        let receipt_id = &href[href.len() - 36..];
        let (status, _, _) = get_form(&app, &format!("{other}/receipts/{receipt_id}")).await;
        assert_eq!(
            status, 404,
            "another person's link does not reach the receipt"
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("consent-receipt.jws");
        std::fs::write(&file, &jws).unwrap();
        let valid = run(pilotgate(dir.path(), Some(&app.db.url))
            .args(["receipt", "verify"])
            .arg(&file));
        assert!(valid.status.success(), "{}", text(&valid.stderr));
        let line = text(&valid.stdout);
        assert!(
            line.starts_with(&format!(
                "valid: receipt {receipt_id}, subject {}, 2 purposes, signed with key v1",
                pseudonym(USER)
            )),
            "{line}"
        );
        let parts: Vec<&str> = jws.split('.').collect();
        let forged = format!("{}.{}x.{}", parts[0], parts[1], parts[2]);
        std::fs::write(&file, forged).unwrap();
        let bad = run(pilotgate(dir.path(), Some(&app.db.url))
            .args(["receipt", "verify"])
            .arg(&file));
        assert!(!bad.status.success());
        assert_eq!(
            text(&bad.stderr).lines().count(),
            1,
            "{}",
            text(&bad.stderr)
        );
        let missing = run(pilotgate(dir.path(), Some(&app.db.url)).args([
            "receipt",
            "verify",
            "nowhere.jws",
        ]));
        assert!(!missing.status.success());
    }
);

api_story!(
    a_gpc_signal_on_the_form_records_an_objection_and_the_api_twin_saves_too,
    |app| {
        let url = notice_and_link(&app).await;
        let token = url.trim_start_matches("/privacy/");
        let form = app
            .get_json(&format!("/api/v1/privacy/{token}"), None)
            .await;
        assert_eq!(form["notice_version"], 1);
        assert_eq!(form["purposes"][0]["current"]["choice"], "no_choice");
        let (_, html, _) = get_form(&app, &url).await;
        let csrf = web::csrf_of(&html);
        let (status, page) = post_form(
            &app,
            &url,
            &[("csrf", &csrf), ("notice_version", "1"), ("c1", "allow")],
            true,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains("Global Privacy Control signal was recorded as an objection"),
            "{page}"
        );
        let records = history(&app).await;
        let objection = records
            .iter()
            .find(|r| r["status"] == "objected")
            .expect("an objection");
        assert_eq!(objection["basis"], "legitimate_interest");
        assert_eq!(objection["purpose"], "analytics.storefront.ab_testing");
        assert_eq!(objection["source"]["channel"], "privacy_center");
        assert_eq!(records.len(), 2, "the choice and the objection");

        let choices = json!({"notice_version": 1, "choices": [{"purpose": "analytics.storefront.ab_testing", "allow": true}]});
        let saved = app
            .client
            .post(format!("{}/api/v1/privacy/{token}/choices", app.address))
            .json(&choices)
            .send()
            .await
            .unwrap();
        assert_eq!(saved.status(), 201);
        let saved: Value = saved.json().await.unwrap();
        assert_eq!(saved["records"][0]["status"], "granted");
        assert_eq!(saved["receipt"].as_str().unwrap().split('.').count(), 3);
        let form = app
            .get_json(&format!("/api/v1/privacy/{token}"), None)
            .await;
        assert_eq!(form["purposes"][0]["current"]["choice"], "allowed");
        let stale = json!({"notice_version": 2, "choices": [{"purpose": "analytics.storefront.ab_testing", "allow": true}]});
        let conflict = app
            .client
            .post(format!("{}/api/v1/privacy/{token}/choices", app.address))
            .json(&stale)
            .send()
            .await
            .unwrap();
        assert_json_error(conflict, 409).await;
        let foreign = json!({"notice_version": 1, "choices": [{"purpose": "personalize.offers.profiling", "allow": true}]});
        let invalid = app
            .client
            .post(format!("{}/api/v1/privacy/{token}/choices", app.address))
            .json(&foreign)
            .send()
            .await
            .unwrap();
        assert_json_error(invalid, 422).await;
    }
);

api_story!(
    assign_refuses_legitimate_interest_subjects_as_objected_when_the_shop_forwards_gpc,
    |app| {
        register_template_purposes(&app).await;
        let design = Design::new("gpc-pilot")
            .with("purpose", json!("analytics.storefront.ab_testing"))
            .json();
        let steps = [
            ("/api/v1/experiments".to_owned(), Role::Marketer, design),
            (
                "/api/v1/experiments/gpc-pilot/submit".to_owned(),
                Role::Marketer,
                json!({}),
            ),
            (
                "/api/v1/experiments/gpc-pilot/approve".to_owned(),
                Role::Compliance,
                json!({"design_version": 1, "comment": "ok"}),
            ),
            (
                "/api/v1/experiments/gpc-pilot/start".to_owned(),
                Role::Marketer,
                json!({}),
            ),
        ];
        for (path, role, body) in steps {
            app.post_ok(&path, role, body).await;
        }
        for (user, basis) in [
            ("li-user", "legitimate_interest"),
            ("consent-user", "consent"),
        ] {
            let record = json!({"user_id": user, "purpose": "analytics.storefront.ab_testing", "basis": basis,
            "status": "granted", "notice_id": "n", "notice_version": 1,
            "source": {"channel": "api", "method": "click"}, "collected_at": "2026-01-01T00:00:00Z"});
            app.post_ok("/api/v1/consents", Role::Ingest, record).await;
        }
        let assign = |user: &'static str, gpc: bool| {
            let mut request = app
                .request(reqwest::Method::POST, "/api/v1/assign", Some(Role::Ingest))
                .json(&json!({"experiment": "gpc-pilot", "user_id": user}));
            if gpc {
                request = request.header("Sec-GPC", "1");
            }
            async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
        };
        let refused = assign("li-user", true).await;
        assert_eq!(
            (refused["eligible"].as_bool(), refused["variant"].is_null()),
            (Some(false), true),
            "{refused}"
        );
        let consent = assign("consent-user", true).await;
        assert_eq!(consent["eligible"], true, "{consent}");
        let without = assign("li-user", false).await;
        assert_eq!(without["eligible"], true, "{without}");
        let again = assign("li-user", true).await;
        assert_eq!(
            again["eligible"], false,
            "sticky or not, the signal refuses: {again}"
        );
        let report = app
            .get_json(
                "/api/v1/experiments/gpc-pilot/eligibility",
                Some(Role::Compliance),
            )
            .await;
        assert!(report.to_string().contains("objected"), "{report}");
    }
);

api_story!(
    a_refusal_on_the_form_withdraws_the_assignment_held_under_an_older_key,
    |app| {
        // Under key v1: the person consented and was assigned.
        app.start_pilot(Design::new("hero").json()).await;
        let sentence = json!({"personalize.content": "Choose content for you."});
        let notice = json!({"id": "shop-testing", "purposes": ["personalize.content"],
        "languages": {"en": {"title": "Your choices", "body": "We choose content for you.", "purposes": sentence}}});
        app.post_ok("/api/v1/notices", Role::Compliance, notice)
            .await;
        let record = json!({"user_id": USER, "purpose": "personalize.content", "basis": "consent",
        "status": "granted", "notice_id": "shop-testing", "notice_version": 1,
        "source": {"channel": "api", "method": "click"}, "collected_at": "2026-01-01T00:00:00Z"});
        app.post_ok("/api/v1/consents", Role::Ingest, record).await;
        assert_eq!(app.assign("hero", USER).await["eligible"], true);

        // The key rotates to v2: the link names the v2 pseudonym, linked to v1.
        let rotated = pilotgate_domain::pseudonym::KeyRing::new(vec![
            pilotgate_store::testing::test_key(),
            pilotgate_domain::pseudonym::PseudonymKey::new(2, vec![9; 32]).unwrap(),
        ])
        .unwrap();
        let second = app.instance_with_keys(rotated).await;
        let issued = app
            .post_at(
                &second,
                "/api/v1/privacy-links",
                Role::Ingest,
                json!({"user_id": USER, "notice": "shop-testing"}),
            )
            .await;
        assert_eq!(issued.status(), 201);
        let url = issued.json::<Value>().await.unwrap()["url"]
            .as_str()
            .unwrap()
            .to_owned();
        let page = web::client()
            .get(format!("{second}{url}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("allowed since 2026-01-01"),
            "the choice made under v1 shows: {page}"
        );
        let csrf = web::csrf_of(&page);
        let saved = web::client()
            .post(format!("{second}{url}"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("notice_version", "1"),
                ("c0", "refuse"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(saved.status(), 200);

        let subject = app
            .post_at(
                &second,
                "/api/v1/subjects/resolve",
                Role::Compliance,
                json!({"user_id": USER}),
            )
            .await;
        let subject = subject.json::<Value>().await.unwrap()["subject"]
            .as_str()
            .unwrap()
            .to_owned();
        let records = app
            .get_json(
                &format!("/api/v1/subjects/{subject}/consents"),
                Some(Role::Compliance),
            )
            .await;
        assert_eq!(
            records["history"][0]["status"], "withdrawn",
            "a withdrawal, not a denial: {records}"
        );
        // The v1 assignment is withdrawn: an event under v1 is refused.
        let event = json!({"events": [{"event_id": "e1", "user_id": USER, "name": "purchase", "value": 1.0,
        "occurred_at": chrono::Utc::now().to_rfc3339()}]});
        let outcome = app.post_ok("/api/v1/events", Role::Ingest, event).await;
        assert_eq!(outcome["accepted"], 0, "{outcome}");
        assert_eq!(outcome["refused"][0]["reason"], "withdrawn", "{outcome}");
    }
);
