//! Re-consent remediation on SQLite and PostgreSQL: `POST
//! /api/v1/eligibility/check` answers `ask_again` for expired and
//! stale-notice people only and nothing else about anyone's state, issues a
//! privacy link when asked (audited), counts asks per purpose and day; the
//! re-consent report (API JSON and CSV, the consents page's chart and CSV)
//! shows the people needing re-consent, the asks and the consents that came
//! back; the roles.

use chrono::{Duration, Utc};
use pilotgate_domain::Role;
use serde_json::{Value, json};

use crate::notices_api::{notice_from_template, register_template_purposes};
use crate::support::{TestApp, assert_json_error, pseudonym};

const PURPOSE: &str = "personalize.reconsent";

fn record(
    user: &str,
    status: &str,
    notice_version: u32,
    collected: chrono::DateTime<Utc>,
) -> Value {
    json!({
        "user_id": user, "purpose": PURPOSE, "basis": "consent", "status": status,
        "notice_id": "privacy-notice", "notice_version": notice_version,
        "source": {"channel": "banner", "method": "click"},
        "collected_at": collected.to_rfc3339(), "proof_ref": "cmp://receipts/1"
    })
}

/// The purpose (consent only, notice v2 or later), the notice `shop-testing`,
/// and one person in each state.
async fn people(app: &TestApp) {
    register_template_purposes(app).await;
    let notice = notice_from_template(app, "shop-testing", "ab-testing").await;
    app.post_ok("/api/v1/notices", Role::Compliance, notice)
        .await;
    app.post_ok(
        "/api/v1/purposes",
        Role::Compliance,
        json!({"key": PURPOSE, "description": "Personalized content", "allowed_bases": ["consent"],
               "min_notice_version": 2, "retention_days": 90}),
    )
    .await;
    let now = Utc::now() - Duration::seconds(2);
    let mut expired = record("expired@example.com", "granted", 2, now - Duration::days(3));
    expired["expires_at"] = json!((now - Duration::days(2)).to_rfc3339());
    let mut records = vec![
        expired,
        record("stale@example.com", "granted", 1, now),
        record("fine@example.com", "granted", 2, now),
        record("denied@example.com", "denied", 2, now),
        record(
            "withdrawn@example.com",
            "granted",
            2,
            now - Duration::hours(2),
        ),
        record(
            "withdrawn@example.com",
            "withdrawn",
            2,
            now - Duration::hours(1),
        ),
        record("objected@example.com", "objected", 2, now),
        record("erased@example.com", "granted", 2, now - Duration::hours(3)),
    ];
    // An erased person's consent in force is stale too: erasure must win.
    records.push(record(
        "erased@example.com",
        "granted",
        1,
        now - Duration::hours(1),
    ));
    app.post_ok(
        "/api/v1/consents",
        Role::Ingest,
        json!({"records": records}),
    )
    .await;
    let erased = pseudonym("erased@example.com");
    let erasure = app
        .post(
            &format!("/api/v1/subjects/{erased}/erasure"),
            Role::Compliance,
            json!({}),
        )
        .await;
    assert_eq!(erasure.status(), 200);
}

async fn check(app: &TestApp, user: &str, link: bool) -> Value {
    let mut body = json!({"user_id": user, "purpose": PURPOSE});
    if link {
        body["link"] = json!({"notice": "shop-testing"});
    }
    let response = app
        .post("/api/v1/eligibility/check", Role::Ingest, body)
        .await;
    assert_eq!(response.status(), 200, "check {user}");
    response.json().await.unwrap()
}

fn keys(answer: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = answer
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

async fn today_row(app: &TestApp, query: &str) -> Value {
    let report = app
        .get_json(
            &format!("/api/v1/legal-basis-map/reconsent{query}"),
            Some(Role::Analyst),
        )
        .await;
    let today = Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(report["to"], today.as_str(), "{report}");
    report["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["purpose"] == PURPOSE && d["day"] == today.as_str())
        .cloned()
        .expect("a row for today")
}

api_story!(
    the_check_asks_again_only_after_an_expiry_or_a_stale_notice,
    |app| {
        people(&app).await;
        for user in ["expired@example.com", "stale@example.com"] {
            let answer = check(&app, user, false).await;
            assert_eq!(
                answer,
                json!({"eligible": false, "ask_again": true}),
                "{user}"
            );
        }
        let fine = check(&app, "fine@example.com", true).await;
        assert_eq!(fine, json!({"eligible": true, "ask_again": false}));
        // Every other state reads the same, and says nothing more: not even a
        // link when one is asked for, nor whether the person is known at all.
        for user in [
            "denied@example.com",
            "withdrawn@example.com",
            "objected@example.com",
            "erased@example.com",
            "never-seen@example.com",
        ] {
            for link in [false, true] {
                let answer = check(&app, user, link).await;
                assert_eq!(
                    answer,
                    json!({"eligible": false, "ask_again": false}),
                    "{user}"
                );
            }
        }
        let links = app
            .get_json(
                "/api/v1/audit?action=privacy_link.issue",
                Some(Role::Compliance),
            )
            .await;
        assert_eq!(links["entries"].as_array().unwrap().len(), 0, "{links}");
    }
);

api_story!(
    an_ask_with_a_notice_issues_a_privacy_link_and_is_counted,
    |app| {
        people(&app).await;
        let asked = check(&app, "expired@example.com", true).await;
        assert_eq!(keys(&asked), ["ask_again", "eligible", "privacy_link"]);
        assert_eq!(
            (&asked["eligible"], &asked["ask_again"]),
            (&json!(false), &json!(true))
        );
        let url = asked["privacy_link"]["url"].as_str().unwrap();
        assert!(url.starts_with("/privacy/"), "{url}");
        assert!(!url.contains("expired"), "{url}");
        assert_eq!(keys(&asked["privacy_link"]), ["expires_at", "url"]);
        // The link works: the form opens for the person.
        let form = app.get(&format!("/api/v1{url}"), None).await;
        assert_eq!(form.status(), 200);
        check(&app, "stale@example.com", false).await;
        check(&app, "stale@example.com", true).await;
        check(&app, "withdrawn@example.com", true).await;
        let links = app
            .get_json(
                "/api/v1/audit?action=privacy_link.issue",
                Some(Role::Compliance),
            )
            .await;
        assert_eq!(links["entries"].as_array().unwrap().len(), 2, "{links}");

        let today = today_row(&app, "").await;
        assert_eq!(
            (
                &today["expired"],
                &today["stale_notice"],
                &today["asked"],
                &today["links_issued"],
                &today["came_back"]
            ),
            (&json!(1), &json!(1), &json!(3), &json!(2), &json!(0)),
            "{today}"
        );
        // Only counts: no pseudonym of anyone is in the report.
        let report = app
            .get("/api/v1/legal-basis-map/reconsent", Some(Role::Compliance))
            .await
            .text()
            .await
            .unwrap();
        for user in ["expired@example.com", "stale@example.com"] {
            assert!(!report.contains(&pseudonym(user)), "{report}");
        }

        // Both come back (any channel): the ledger says so, the need goes.
        let now = Utc::now() - Duration::seconds(1);
        app.post_ok(
            "/api/v1/consents",
            Role::Ingest,
            json!({"records": [record("expired@example.com", "granted", 2, now),
                               record("stale@example.com", "granted", 2, now),
                               record("fine@example.com", "granted", 2, now)]}),
        )
        .await;
        let today = today_row(&app, "?days=3&format=json").await;
        assert_eq!(
            (
                &today["expired"],
                &today["stale_notice"],
                &today["came_back"]
            ),
            (&json!(0), &json!(0), &json!(2)),
            "{today}"
        );
        assert_eq!(
            check(&app, "expired@example.com", true).await,
            json!({"eligible": true, "ask_again": false})
        );

        let csv = app
            .get(
                "/api/v1/legal-basis-map/reconsent?format=csv&days=3",
                Some(Role::Compliance),
            )
            .await;
        assert_eq!(csv.status(), 200);
        assert!(
            csv.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let csv = csv.text().await.unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "purpose,day,expired,stale_notice,asked,links_issued,came_back"
        );
        let day = |offset: i64| {
            (Utc::now() - Duration::days(offset))
                .format("%Y-%m-%d")
                .to_string()
        };
        assert!(
            lines.contains(&format!("{PURPOSE},{},0,0,3,2,2", day(0)).as_str()),
            "{csv}"
        );
        // Yesterday the expired consent already needed re-consent; nobody was asked.
        assert!(
            lines.contains(&format!("{PURPOSE},{},1,0,0,0,0", day(1)).as_str()),
            "{csv}"
        );
        // 4 purposes x 3 days.
        assert_eq!(lines.len(), 1 + 4 * 3, "{csv}");
    }
);

api_story!(the_check_refuses_bad_input_without_reading_anyone, |app| {
    people(&app).await;
    let unknown_purpose = app
        .post(
            "/api/v1/eligibility/check",
            Role::Ingest,
            json!({"user_id": "expired@example.com", "purpose": "no.such"}),
        )
        .await;
    assert_json_error(unknown_purpose, 404).await;
    // An unknown notice is refused alike whoever the person is.
    for user in ["expired@example.com", "denied@example.com"] {
        let unknown_notice = app
            .post(
                "/api/v1/eligibility/check",
                Role::Ingest,
                json!({"user_id": user, "purpose": PURPOSE, "link": {"notice": "nope"}}),
            )
            .await;
        let body = assert_json_error(unknown_notice, 404).await;
        assert!(!body.to_string().contains(&pseudonym(user)));
    }
    let extra = app
        .post(
            "/api/v1/eligibility/check",
            Role::Ingest,
            json!({"user_id": "x", "purpose": PURPOSE, "reason": true}),
        )
        .await;
    assert!([400, 422].contains(&extra.status().as_u16()));
    for days in ["0", "91"] {
        let out_of_range = app
            .get(
                &format!("/api/v1/legal-basis-map/reconsent?days={days}"),
                Some(Role::Compliance),
            )
            .await;
        assert_json_error(out_of_range, 422).await;
    }
    // Nothing was counted.
    let today = today_row(&app, "").await;
    assert_eq!(today["asked"], 0);
});

api_story!(
    the_check_is_for_ingest_and_the_report_for_compliance_and_analysts,
    |app| {
        people(&app).await;
        let body = json!({"user_id": "expired@example.com", "purpose": PURPOSE});
        for role in [Role::Marketer, Role::Analyst, Role::Compliance] {
            let response = app
                .post("/api/v1/eligibility/check", role, body.clone())
                .await;
            assert_json_error(response, 403).await;
        }
        for role in [Role::Ingest, Role::Marketer] {
            let response = app
                .get("/api/v1/legal-basis-map/reconsent", Some(role))
                .await;
            assert_json_error(response, 403).await;
        }
        let anonymous = app.get("/api/v1/legal-basis-map/reconsent", None).await;
        assert_json_error(anonymous, 401).await;
        // The refused calls counted nothing.
        assert_eq!(today_row(&app, "").await["asked"], 0);
    }
);

api_story!(
    the_consents_page_charts_the_reconsent_report_and_hands_out_its_csv,
    |app| {
        people(&app).await;
        check(&app, "expired@example.com", true).await;
        let cookie = app.sign_in(&app.tokens[&Role::Compliance]).await;
        let (status, html) = app.page(&cookie, "/ui/consents").await;
        assert_eq!(status, 200);
        assert!(html.contains("Re-consent over the last 14 days"), "{html}");
        assert!(
            html.contains(&format!("People needing re-consent per day for {PURPOSE}")),
            "{html}"
        );
        assert!(html.contains("<svg"), "{html}");
        assert!(html.contains("· asked: 1"), "{html}");
        assert!(
            html.contains("href=\"/ui/consents/reconsent.csv\""),
            "{html}"
        );
        let (status, csv) = app.page(&cookie, "/ui/consents/reconsent.csv").await;
        assert_eq!(status, 200);
        let today = Utc::now().format("%Y-%m-%d").to_string();
        assert!(
            csv.contains(&format!("{PURPOSE},{today},1,1,1,1,0")),
            "{csv}"
        );
        assert_eq!(csv.lines().count(), 1 + 4 * 14);

        // The marketer may not read the legal-basis map: neither page nor CSV.
        let marketer = app.sign_in(&app.tokens[&Role::Marketer]).await;
        let (status, _) = app.page(&marketer, "/ui/consents/reconsent.csv").await;
        assert_eq!(status, 403);
        let (status, _) = app.page(&marketer, "/ui/consents").await;
        assert_eq!(status, 403);
    }
);
