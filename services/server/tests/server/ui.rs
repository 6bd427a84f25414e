//! The dashboards through HTTP: sign-in with a token, the session cookie,
//! CSRF, pages per role, and numbers equal to the API's.

use crate::support::{Design, TestApp, web};
use pilotgate_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

async fn seeded_pilot(app: &TestApp) {
    let design = Design::new("hero")
        .with("name", json!("Hero banner"))
        .variants(&["control", "personalized"]);
    app.start_pilot(design.json()).await;
    for n in 0..40 {
        let user = format!("user{n}@example.com");
        let record = json!({"user_id": user, "purpose": "personalize.content", "basis": "consent", "status": "granted",
            "notice_id": "pn", "notice_version": 1, "source": {"channel": "app", "method": "tap"},
            "collected_at": "2026-01-01T00:00:00Z"});
        let ok = app
            .request(Method::POST, "/api/v1/consents", Some(Role::Ingest))
            .json(&record)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 201);
        app.assign("hero", &user).await;
        if n % 3 == 0 {
            let event = json!({"events": [{"event_id": format!("e{n}"), "user_id": user, "name": "purchase",
                "value": 1.0, "occurred_at": chrono::Utc::now().to_rfc3339()}]});
            app.request(Method::POST, "/api/v1/events", Some(Role::Ingest))
                .json(&event)
                .send()
                .await
                .unwrap();
        }
    }
}

api_story!(
    a_person_signs_in_with_a_token_and_sees_what_the_api_says,
    |app| {
        seeded_pilot(&app).await;
        let analyst = app.tokens[&Role::Analyst].clone();
        let cookie = app.sign_in(&analyst).await;

        let (status, list) = app.page(&cookie, "/ui/experiments").await;
        assert_eq!(status, 200);
        assert!(list.contains("Hero banner"), "{list}");

        let api: Value = app
            .get_json("/api/v1/experiments/hero/results", Some(Role::Analyst))
            .await;
        let (status, results) = app.page(&cookie, "/ui/experiments/hero").await;
        assert_eq!(status, 200);
        for variant in api["variants"].as_array().unwrap() {
            let users = variant["users"].as_u64().unwrap();
            assert!(
                results.contains(&format!(">{users}<")),
                "users {users} not shown"
            );
        }
        for secret in app.tokens.values() {
            assert!(!list.contains(secret.as_str()) && !results.contains(secret.as_str()));
        }
        assert!(!results.contains("user1@example.com"));

        // The analyst may not read the audit log through the API, so not here either.
        let (status, _) = app.page(&cookie, "/ui/audit").await;
        assert_eq!(status, 403);
    }
);

api_story!(
    pages_without_a_valid_session_send_people_to_sign_in,
    |app| {
        let (status, _) = app.page("", "/ui/experiments").await;
        assert_eq!(status, 303);
        let (status, _) = app
            .page("pilotgate_session=pgt_x_y.00", "/ui/experiments")
            .await;
        assert_eq!(status, 303);

        // A wrong token, then a missing CSRF token, are refused with the form again.
        let client = web::client();
        let form = client
            .get(format!("{}/ui/sign-in", app.address))
            .send()
            .await
            .unwrap();
        let pre = web::set_cookie(&form, "pilotgate_csrf").unwrap().pair;
        let csrf = web::csrf_of(&form.text().await.unwrap());
        let wrong = client
            .post(format!("{}/ui/sign-in", app.address))
            .header("cookie", &pre)
            .form(&[("token", "pgt_nope_nope"), ("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        let forged = client
            .post(format!("{}/ui/sign-in", app.address))
            .header("cookie", &pre)
            .form(&[
                ("token", app.tokens[&Role::Compliance].as_str()),
                ("csrf", "0"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 403);

        // A revoked token's session ends at once.
        let token = app.add_token("carla", Role::Compliance).await;
        let cookie = app.sign_in(&token).await;
        assert_eq!(app.page(&cookie, "/ui/audit").await.0, 200);
        app.db
            .store
            .revoke_token(
                "carla",
                Some(Role::Compliance),
                &pilotgate_domain::Actor::operator(),
            )
            .await
            .unwrap();
        assert_eq!(app.page(&cookie, "/ui/audit").await.0, 303);
    }
);

api_story!(
    compliance_sees_the_audit_log_and_the_consent_overview,
    |app| {
        seeded_pilot(&app).await;
        let cookie = app.sign_in(&app.tokens[&Role::Compliance]).await;
        let (status, audit) = app.page(&cookie, "/ui/audit").await;
        assert_eq!(status, 200);
        assert!(
            audit.contains("experiment.approve") || audit.contains("approve"),
            "{audit}"
        );
        let (status, consents) = app.page(&cookie, "/ui/consents").await;
        assert_eq!(status, 200);
        assert!(consents.contains("personalize.content"));
        assert!(
            consents.contains("40"),
            "the 40 granted consents are counted"
        );
        // Sign-out needs the session's CSRF token.
        let csrf = web::csrf_of(&audit);
        let out = web::client()
            .post(format!("{}/ui/sign-out", app.address))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(out.status(), 303);
        assert!(
            web::set_cookie(&out, "pilotgate_session")
                .unwrap()
                .full
                .contains("Max-Age=0")
        );
    }
);

api_story!(compliance_reviews_a_submitted_pilot_on_its_page, |app| {
    seeded_pilot(&app).await;
    let design = Design::new("promo").with("name", json!("Promo"));
    app.submit_pilot(design.json()).await;
    let cookie = app.sign_in(&app.tokens[&Role::Compliance]).await;
    let (status, html) = app.page(&cookie, "/ui/experiments/promo/compliance").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("/ui/experiments/promo/approve"),
        "the approve form is offered"
    );
    let csrf = web::csrf_of(&html);

    // A forged CSRF token changes nothing.
    let forged = web::client()
        .post(format!("{}/ui/experiments/promo/approve", app.address))
        .header("cookie", &cookie)
        .form(&[("design_version", "1"), ("comment", "fine"), ("csrf", "0")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let approved = web::client()
        .post(format!("{}/ui/experiments/promo/approve", app.address))
        .header("cookie", &cookie)
        .form(&[
            ("design_version", "1"),
            ("comment", "purpose and data categories fit"),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 303);
    let shown: Value = app
        .get_json("/api/v1/experiments/promo", Some(Role::Compliance))
        .await;
    assert_eq!(shown["state"], "approved");

    // The running pilot's eligibility report: 40 consented subjects, by variant.
    let (status, html) = app.page(&cookie, "/ui/experiments/hero/compliance").await;
    assert_eq!(status, 200);
    assert!(
        !html.contains("/approve\""),
        "no decision forms on a running pilot"
    );
    let response = web::client()
        .get(format!(
            "{}/ui/experiments/hero/compliance.csv",
            app.address
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let csv = response.text().await.unwrap();
    let total: u64 = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.rsplit(',').next()?.trim().parse::<u64>().ok())
        .sum();
    assert_eq!(total, 40, "{csv}");

    // Analysts do not see the compliance view.
    let analyst = app.sign_in(&app.tokens[&Role::Analyst]).await;
    assert_eq!(
        app.page(&analyst, "/ui/experiments/hero/compliance")
            .await
            .0,
        403
    );
});

/// Behind a trusted TLS proxy (`PILOTGATE_TRUSTED_PROXIES`) that says https,
/// every cookie is Secure; over plain http it is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_https_proxy_every_cookie_is_secure_and_over_http_it_cannot_be() {
    let app = TestApp::spawn_with(
        pilotgate_store::Dialect::Sqlite,
        pilotgate_store::testing::test_key_ring(),
        |config| {
            config.trusted_proxies =
                pilotgate_server::network::Network::parse_proxies("127.0.0.1").unwrap()
        },
    )
    .await
    .unwrap();
    {
        let client = web::client();
        for (proto, secure) in [("https", true), ("http", false)] {
            let form = client
                .get(format!("{}/ui/sign-in", app.address))
                .header("x-forwarded-proto", proto)
                .send()
                .await
                .unwrap();
            let web::SetCookie { pair: pre, full } =
                web::set_cookie(&form, "pilotgate_csrf").expect("a pre-session cookie");
            assert_eq!(full.contains("; Secure"), secure, "{full}");
            let csrf = web::csrf_of(&form.text().await.unwrap());
            let token = app.tokens[&Role::Compliance].clone();
            let response = client
                .post(format!("{}/ui/sign-in", app.address))
                .header("x-forwarded-proto", proto)
                .header("cookie", &pre)
                .form(&[("token", token.as_str()), ("csrf", csrf.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 303);
            let full = web::set_cookie(&response, "pilotgate_session")
                .expect("a session cookie")
                .full;
            assert_eq!(full.contains("; Secure"), secure, "{full}");
            assert!(
                full.contains("HttpOnly") && full.contains("SameSite=Strict"),
                "{full}"
            );
        }
    }
}

api_story!(
    the_page_refuses_an_approval_comment_with_a_control_character_as_the_api_does,
    |app| {
        app.register_purpose().await;
        app.submit_pilot(Design::new("promo").json()).await;
        let comment = "fine\u{7}\u{1b}[2J by me";
        let api = app
            .post(
                "/api/v1/experiments/promo/approve",
                Role::Compliance,
                json!({"design_version": 1, "comment": comment}),
            )
            .await;
        let refusal = crate::support::assert_json_error(api, 422).await;
        let message = refusal["message"].as_str().unwrap().to_owned();
        assert!(message.contains("comment"), "{message}");

        let cookie = app.sign_in(&app.tokens[&Role::Compliance]).await;
        let (_, html) = app.page(&cookie, "/ui/experiments/promo/compliance").await;
        let csrf = web::csrf_of(&html);
        for action in ["approve", "deny"] {
            let page = web::submit(
                &app.address,
                &cookie,
                &format!("/ui/experiments/promo/{action}"),
                &[
                    ("design_version", "1"),
                    ("comment", comment),
                    ("csrf", csrf.as_str()),
                ],
            )
            .await;
            assert_eq!(page.status(), 422, "{action}");
            let html = page.text().await.unwrap();
            assert!(
                html.contains(&askama_escape(&message)),
                "{action}: the page says what the API says ({message}): {html}"
            );
            assert!(!html.contains('\u{7}') && !html.contains('\u{1b}'));
        }
        let pilot: Value = app
            .get_json("/api/v1/experiments/promo", Some(Role::Compliance))
            .await;
        assert_eq!(pilot["state"], "submitted", "nothing was decided");
    }
);

/// `text` as the pages escape it.
fn askama_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}
