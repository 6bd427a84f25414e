//! The marketer's whole job in headless Chromium, without a line of curl:
//! the marketer designs a pilot in the form (mending a refused field on the
//! way) and submits it; compliance approves it; the marketer starts it;
//! traffic arrives through the API; the marketer reads the results with each
//! method, downloads the CSV and opens the memo, and every number is checked
//! against the API. Each page is saved at a laptop and a phone width under
//! `target/screenshots` (or `$PILOTGATE_SCREENSHOTS`).

use std::path::PathBuf;

use crate::browser::{screenshots, shows, table};
use crate::support::chromium::Browser;
use pilotgate_domain::Role;
use serde_json::{Value, json};

const SUBJECTS: usize = 80;

/// Saves the page as it stands (a refused form keeps what was typed) at a
/// laptop and a phone width; on the phone it must not scroll sideways.
pub(crate) fn shoot(
    browser: &mut Browser,
    label: &str,
    name: &str,
    shots: &mut Vec<(PathBuf, usize)>,
) {
    let folder = screenshots();
    for (width, height, mobile, suffix) in [(390, 844, true, "phone"), (1280, 800, false, "laptop")]
    {
        browser.viewport(width, height, mobile);
        if mobile {
            let overflow = browser
                .evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
                .as_bool()
                .unwrap();
            assert!(!overflow, "{name} scrolls sideways on a phone");
        }
        let path = folder.join(format!("{label}-journey-{name}-{suffix}.png"));
        let size = browser.screenshot(&path);
        shots.push((path, size));
    }
}

pub(crate) fn sign_in(browser: &mut Browser, address: &str, token: &str) {
    browser.open(&format!("{address}/ui/sign-in"));
    browser.type_into("#token", token);
    browser.click_and_wait("main form button[type=submit]");
    assert!(
        browser.url().ends_with("/ui/experiments"),
        "{}",
        browser.url()
    );
}

pub(crate) fn sign_out(browser: &mut Browser) {
    browser.click_and_wait("header form button[type=submit]");
}

/// Replaces the value of the field `selector` with `text`, typed.
pub(crate) fn fill(browser: &mut Browser, selector: &str, text: &str) {
    browser.evaluate(&format!(
        "document.querySelector({}).value = ''",
        json!(selector)
    ));
    browser.type_into(selector, text);
}

pub(crate) fn text_of(browser: &mut Browser) -> String {
    browser
        .evaluate("document.body.innerText")
        .as_str()
        .unwrap()
        .to_owned()
}

/// Design, submit, approve and start in the browser.
fn launch(
    address: String,
    marketer: String,
    compliance: String,
    label: &'static str,
) -> (Browser, Vec<(PathBuf, usize)>) {
    let mut shots = Vec::new();
    let mut browser = Browser::launch();
    browser.viewport(1280, 800, false);
    sign_in(&mut browser, &address, &marketer);
    let nav = text_of(&mut browser);
    assert!(
        !nav.contains("Audit log"),
        "a marketer is not offered the audit log"
    );
    browser.click_and_wait("a[href='/ui/experiments/new']");
    shoot(&mut browser, label, "design-form", &mut shots);
    fill(&mut browser, "#key", "journey");
    fill(&mut browser, "#name", "Journey banner");
    fill(&mut browser, "#hypothesis", "A personal banner sells more");
    browser.evaluate("document.querySelector('#purpose').value = 'personalize.content'");
    browser.evaluate("document.querySelector('#data_categories-orders').checked = true");
    fill(&mut browser, "#primary_event", "purchase");
    fill(&mut browser, "#baseline_rate", "0.3");
    fill(&mut browser, "#mde", "a tenth");
    browser.click_and_wait("button[value=save]");
    let refused = text_of(&mut browser);
    assert!(refused.contains("must be a number"), "{refused}");
    assert_eq!(
        browser.evaluate("document.querySelector('#name').value"),
        json!("Journey banner"),
        "the values typed are kept"
    );
    shoot(&mut browser, label, "design-refused", &mut shots);
    fill(&mut browser, "#mde", "0.2");
    fill(&mut browser, "#daily_visitors", "500");
    browser.click_and_wait("button[value=plan]");
    let planned = text_of(&mut browser);
    assert!(planned.contains("Consent-aware plan"), "{planned}");
    browser.click_and_wait("button[value=save]");
    assert!(
        browser.url().ends_with("/ui/experiments/journey"),
        "{}",
        browser.url()
    );
    shoot(&mut browser, label, "pilot-draft", &mut shots);
    browser.click_and_wait("a[href='/ui/experiments/journey/submit']");
    shoot(&mut browser, label, "confirm-submit", &mut shots);
    browser.click_and_wait("main form button[type=submit]");
    assert!(text_of(&mut browser).contains("awaits compliance"));
    sign_out(&mut browser);

    sign_in(&mut browser, &address, &compliance);
    browser.open(&format!("{address}/ui/experiments/journey/compliance"));
    browser.type_into("#approve-comment", "Consent only; 90 days; no profiling.");
    browser.click_and_wait("form[action$='/approve'] button");
    shoot(&mut browser, label, "compliance-approved", &mut shots);
    sign_out(&mut browser);

    sign_in(&mut browser, &address, &marketer);
    browser.open(&format!("{address}/ui/experiments/journey"));
    let page = text_of(&mut browser);
    assert!(
        page.contains("Consent only; 90 days; no profiling."),
        "the DPO's comment: {page}"
    );
    browser.click_and_wait("a[href='/ui/experiments/journey/start']");
    browser.click_and_wait("main form button[type=submit]");
    assert!(text_of(&mut browser).contains("no eligible visitor has been assigned yet"));
    shoot(&mut browser, label, "pilot-running-empty", &mut shots);
    (browser, shots)
}

/// A table as the browser read it: per row, per cell, its text and interval.
type Rows = Vec<Vec<(String, String)>>;

/// What the marketer read after the traffic.
struct Read {
    rows: Vec<(String, Rows)>,
    /// The CSV link of the page and the browser's cookies.
    csv: (String, String),
    memo_text: String,
    memo_rows: Rows,
    shots: Vec<(PathBuf, usize)>,
}

fn read(
    mut browser: Browser,
    address: String,
    label: &'static str,
    mut shots: Vec<(PathBuf, usize)>,
) -> Read {
    let mut rows = Vec::new();
    for method in ["frequentist", "sequential", "bayesian"] {
        browser.open(&format!("{address}/ui/experiments/journey"));
        browser.evaluate(&format!(
            "document.querySelector('#method').value = '{method}'"
        ));
        browser.click_and_wait("form.controls button[type=submit]");
        rows.push((method.to_owned(), table(&mut browser, "variants")));
        shoot(
            &mut browser,
            label,
            &format!("results-{method}"),
            &mut shots,
        );
    }
    // The page's own download link, fetched with the browser's session
    // cookie (the page's policy lets no script fetch, and Chromium saves an
    // attachment to disk instead of showing it).
    let href = browser
        .evaluate("document.querySelector('a[href*=\"results.csv\"]').href")
        .as_str()
        .unwrap()
        .to_owned();
    let cookies = browser.call("Network.getCookies", json!({"urls": [href.clone()]}));
    let cookie = cookies["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}={}",
                c["name"].as_str().unwrap(),
                c["value"].as_str().unwrap()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let csv = (href, cookie);
    browser.click_and_wait("a[href='/ui/experiments/journey/memo']");
    let memo_text = text_of(&mut browser);
    let memo_rows = table(&mut browser, "m-uplift");
    shoot(&mut browser, label, "memo", &mut shots);
    Read {
        rows,
        csv,
        memo_text,
        memo_rows,
        shots,
    }
}

api_story!(
    a_marketer_launches_follows_and_reports_a_pilot_in_chromium,
    |app| {
        app.register_purpose().await;
        let users: Vec<String> = (0..SUBJECTS)
            .map(|i| format!("walker{i}@example.com"))
            .collect();
        let records: Vec<Value> = users
            .iter()
            .map(|u| json!({"user_id": u, "purpose": "personalize.content", "basis": "consent", "status": "granted",
                "notice_id": "pn", "notice_version": 1, "source": {"channel": "app", "method": "tap"}, "collected_at": "2026-01-01T00:00:00Z"}))
            .collect();
        app.post_ok(
            "/api/v1/consents",
            Role::Ingest,
            json!({"records": records}),
        )
        .await;
        let label = if app.db.url.starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        };
        let (address, marketer, compliance) = (
            app.address.clone(),
            app.tokens[&Role::Marketer].clone(),
            app.tokens[&Role::Compliance].clone(),
        );
        let (browser, shots) =
            tokio::task::spawn_blocking(move || launch(address, marketer, compliance, label))
                .await
                .expect("the browser session");
        let pilot = app
            .get_json("/api/v1/experiments/journey", Some(Role::Marketer))
            .await;
        assert_eq!(pilot["state"], "running");
        assert_eq!(pilot["mde"], 0.2);
        assert_eq!(
            pilot["approval"]["comment"],
            "Consent only; 90 days; no profiling."
        );

        // Traffic through the API, as the shop sends it.
        let mut events = Vec::new();
        for (i, user) in users.iter().enumerate() {
            let answer = app.assign("journey", user).await;
            let buys = if answer["variant"] == "control" {
                i % 3 == 0
            } else {
                i % 2 == 0
            };
            if buys {
                events.push(json!({"event_id": format!("j{i}"), "user_id": user, "name": "purchase", "value": 1.0, "occurred_at": chrono::Utc::now().to_rfc3339()}));
            }
        }
        app.post_ok("/api/v1/events", Role::Ingest, json!({"events": events}))
            .await;

        let address = app.address.clone();
        let seen = tokio::task::spawn_blocking(move || read(browser, address, label, shots))
            .await
            .expect("the browser session");

        for (method, rows) in &seen.rows {
            let api = app
                .get_json(
                    &format!("/api/v1/experiments/journey/results?method={method}"),
                    Some(Role::Marketer),
                )
                .await;
            let variants = api["variants"].as_array().unwrap();
            assert_eq!(rows.len(), variants.len(), "{method}");
            for (row, variant) in rows.iter().zip(variants) {
                assert_eq!(row[0].0, variant["variant"].as_str().unwrap());
                assert!(
                    shows(&row[1].0, variant["users"].as_f64().unwrap()),
                    "{method} users"
                );
                assert!(
                    shows(&row[3].0, variant["mean"].as_f64().unwrap()),
                    "{method} rate"
                );
            }
            let relative = api["comparisons"][0]["relative"]["estimate"]
                .as_f64()
                .unwrap();
            assert!(
                shows(&rows[1][5].0, relative),
                "{method}: {} vs {relative}",
                rows[1][5].0
            );
        }
        let api = app
            .get_json("/api/v1/experiments/journey/results", Some(Role::Marketer))
            .await;
        let (href, cookie) = &seen.csv;
        let csv = crate::support::web::client()
            .get(href)
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(csv.status(), 200);
        let csv = csv.text().await.unwrap();
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let treated: Vec<&str> = csv.lines().nth(2).unwrap().split(',').collect();
        let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
        assert_eq!(
            treated[at("relative_estimate")].parse::<f64>().unwrap(),
            api["comparisons"][0]["relative"]["estimate"]
                .as_f64()
                .unwrap()
        );
        assert_eq!(
            treated[at("users")].parse::<u64>().unwrap(),
            api["variants"][1]["users"].as_u64().unwrap()
        );
        for (row, variant) in seen
            .memo_rows
            .iter()
            .zip(api["variants"].as_array().unwrap())
        {
            assert!(
                shows(&row[1].0, variant["users"].as_f64().unwrap()),
                "memo users"
            );
        }
        assert!(shows(
            &seen.memo_rows[1][5].0,
            api["comparisons"][0]["relative"]["estimate"]
                .as_f64()
                .unwrap()
        ));
        assert!(
            seen.memo_text
                .contains("Consent only; 90 days; no profiling.")
        );
        assert!(
            seen.memo_text
                .contains("Audit chain at the time of printing")
        );
        for (path, size) in &seen.shots {
            assert!(*size > 5_000, "{} is an empty screenshot", path.display());
        }
        assert!(seen.shots.len() >= 2 * 10);
    }
);
