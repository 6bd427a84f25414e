//! End to end in headless Chromium: a compliance officer signs in with a
//! token through the form, opens the results page and the compliance page of
//! a seeded pilot, and every number shown equals the API's. Screenshots at a
//! laptop and a phone width are saved under `target/screenshots` (or
//! `$PILOTGATE_SCREENSHOTS`).

use std::path::PathBuf;

use crate::support::TestApp;
use crate::support::chromium::Browser;
use pilotgate_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

/// Consented subjects, and subjects who ask to be assigned without consent.
const CONSENTED: usize = 90;
const WITHOUT_CONSENT: usize = 7;

/// A running three-variant pilot with purchases and refunds, and refused
/// assignments of subjects without consent.
async fn seeded_pilot(app: &TestApp) {
    app.start_pilot(json!({"key": "hero", "name": "Hero banner", "hypothesis": "A personal hero banner sells more",
        "purpose": "personalize.content",
        "variants": [{"key": "control", "weight": 1}, {"key": "banner-a", "weight": 1}, {"key": "banner-b", "weight": 1}],
        "coverage": 1.0, "primary_metric": {"event": "purchase", "kind": "binary"},
        "guardrails": [{"event": "refund", "kind": "binary"}],
        "mde": 0.1, "alpha": 0.05, "power": 0.8, "data_categories": ["orders"], "retention_days": 90}))
        .await;
    let records: Vec<Value> = (0..CONSENTED)
        .map(|n| {
            json!({"user_id": format!("shopper{n}@example.com"), "purpose": "personalize.content", "basis": "consent",
                "status": "granted", "notice_id": "pn", "notice_version": 1 + (n % 2) as u32,
                "source": {"channel": "banner", "method": "tap"}, "collected_at": "2026-01-01T00:00:00Z"})
        })
        .collect();
    let stored = app
        .request(Method::POST, "/api/v1/consents", Some(Role::Ingest))
        .json(&json!({ "records": records }))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 201, "{}", stored.text().await.unwrap());
    let mut events = Vec::new();
    for n in 0..CONSENTED + WITHOUT_CONSENT {
        let user = format!("shopper{n}@example.com");
        app.assign("hero", &user).await;
        if n % 3 != 0 {
            events.push(
                json!({"event_id": format!("p{n}"), "user_id": user, "name": "purchase",
                "value": 20.0 + n as f64, "occurred_at": chrono::Utc::now().to_rfc3339()}),
            );
        }
        if n % 11 == 0 {
            events.push(
                json!({"event_id": format!("r{n}"), "user_id": user, "name": "refund",
                "occurred_at": chrono::Utc::now().to_rfc3339()}),
            );
        }
    }
    let sent = app
        .request(Method::POST, "/api/v1/events", Some(Role::Ingest))
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert!(sent.status().is_success(), "{}", sent.text().await.unwrap());
}

/// Whether `shown` (as a page shows numbers: `1,234`, `+3.42%`, `−0.120 pp`,
/// `0.0123`, `< 0.001`) is `value` rounded to the digits shown.
pub(crate) fn shows(shown: &str, value: f64) -> bool {
    let text = shown
        .trim()
        .replace('\u{2212}', "-")
        .replace([',', '+'], "");
    if let Some(bound) = text.strip_prefix("< ") {
        return value < bound.parse::<f64>().unwrap();
    }
    let (number, scale) = if let Some(n) = text.strip_suffix('%') {
        (n, 0.01)
    } else if let Some(n) = text.strip_suffix(" pp") {
        (n, 0.01)
    } else {
        (text.as_str(), 1.0)
    };
    let Ok(parsed) = number.trim().parse::<f64>() else {
        return false;
    };
    let decimals = number.split('.').nth(1).map_or(0, str::len) as i32;
    let half_unit = 0.5 * 10f64.powi(-decimals) * scale;
    (parsed * scale - value).abs() <= half_unit * 1.000_001 + 1e-12
}

/// `[a, b]` to its two parts.
fn bounds(interval: &str) -> (String, String) {
    let inner = interval
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let (lower, upper) = inner.split_once(", ").expect("an interval");
    (lower.to_owned(), upper.to_owned())
}

/// The cells of the table in the section labelled `section`: per body row,
/// per cell, its own text and the text of its interval (`span.ci`).
const TABLE_CELLS: &str = r#"(section) => [...document.querySelectorAll(
    `section[aria-labelledby="${section}"] tbody tr`)].map(row => [...row.cells].map(cell => {
        const ci = cell.querySelector('.ci');
        return { text: (ci ? cell.textContent.slice(0, cell.textContent.length - ci.textContent.length)
                              : cell.textContent).trim(),
                 ci: ci ? ci.textContent.trim() : '' };
    }))"#;

pub(crate) fn table(browser: &mut Browser, section: &str) -> Vec<Vec<(String, String)>> {
    let cells = browser.evaluate(&format!("({TABLE_CELLS})({})", json!(section)));
    cells
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            row.as_array()
                .expect("cells")
                .iter()
                .map(|c| {
                    (
                        c["text"].as_str().unwrap().to_owned(),
                        c["ci"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .collect()
}

/// Where screenshots go.
pub(crate) fn screenshots() -> PathBuf {
    std::env::var_os("PILOTGATE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots")
        })
}

/// What the browser saw, handed back from the blocking browser thread.
struct Seen {
    after_sign_in: String,
    results_rows: Vec<Vec<(String, String)>>,
    results_text: String,
    chart_count: u64,
    eligibility_rows: Vec<Vec<(String, String)>>,
    refusal_total: String,
    compliance_text: String,
    phone_overflow: bool,
    shots: Vec<(PathBuf, usize)>,
}

fn browse(address: String, token: String, label: &'static str) -> Seen {
    let mut browser = Browser::launch();
    browser.viewport(1280, 800, false);
    browser.open(&format!("{address}/ui/sign-in"));
    browser.type_into("#token", &token);
    browser.click_and_wait("form button[type=submit]");
    let after_sign_in = browser.url();

    let folder = screenshots();
    let mut shots = Vec::new();
    browser.open(&format!("{address}/ui/experiments/hero"));
    let results_rows = table(&mut browser, "variants");
    let results_text = browser
        .evaluate("document.body.innerText")
        .as_str()
        .unwrap()
        .to_owned();
    let chart_count = browser
        .evaluate("document.querySelectorAll('svg.chart').length")
        .as_u64()
        .unwrap();
    let path = folder.join(format!("{label}-results-laptop.png"));
    let size = browser.screenshot(&path);
    shots.push((path, size));

    browser.open(&format!("{address}/ui/experiments/hero/compliance"));
    let eligibility_rows = table(&mut browser, "eligibility");
    let refusal_total = browser
        .evaluate(
            "document.querySelector('section[aria-labelledby=\"refusals\"] tfoot tr').lastElementChild.textContent",
        )
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let compliance_text = browser
        .evaluate("document.body.innerText")
        .as_str()
        .unwrap()
        .to_owned();
    let path = folder.join(format!("{label}-compliance-laptop.png"));
    let size = browser.screenshot(&path);
    shots.push((path, size));

    browser.viewport(390, 844, true);
    browser.open(&format!("{address}/ui/experiments/hero"));
    let phone_overflow = browser
        .evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
        .as_bool()
        .unwrap();
    let path = folder.join(format!("{label}-results-phone.png"));
    let size = browser.screenshot(&path);
    shots.push((path, size));
    Seen {
        after_sign_in,
        results_rows,
        results_text,
        chart_count,
        eligibility_rows,
        refusal_total,
        compliance_text,
        phone_overflow,
        shots,
    }
}

api_story!(
    a_compliance_officer_signs_in_in_chromium_and_sees_the_apis_numbers,
    |app| {
        seeded_pilot(&app).await;
        let api: Value = app
            .get_json("/api/v1/experiments/hero/results", Some(Role::Compliance))
            .await;
        let token = app.tokens[&Role::Compliance].clone();
        let label = if app.db.url.starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        };
        let address = app.address.clone();
        let seen = tokio::task::spawn_blocking(move || browse(address, token, label))
            .await
            .expect("the browser session");

        assert!(
            seen.after_sign_in.ends_with("/ui/experiments"),
            "signed in to {}",
            seen.after_sign_in
        );

        // The per-variant table: users, conversions, rate, uplifts and p-values.
        let variants = api["variants"].as_array().unwrap();
        assert_eq!(seen.results_rows.len(), variants.len());
        let mut compared = 0;
        for (row, variant) in seen.results_rows.iter().zip(variants) {
            let name = variant["variant"].as_str().unwrap();
            assert_eq!(row[0].0, name);
            assert!(
                shows(&row[1].0, variant["users"].as_f64().unwrap()),
                "{name} users"
            );
            assert!(
                shows(&row[2].0, variant["sum"].as_f64().unwrap()),
                "{name} conversions"
            );
            assert!(
                shows(&row[3].0, variant["mean"].as_f64().unwrap()),
                "{name} rate {} vs {}",
                row[3].0,
                variant["mean"]
            );
            compared += 3;
            let Some(comparison) = api["comparisons"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["variant"] == name)
            else {
                assert_eq!(row[4].0, "\u{2014}", "the control has no uplift");
                continue;
            };
            for (cell, effect) in [(&row[4], "absolute"), (&row[5], "relative")] {
                let want = &comparison[effect];
                assert!(
                    shows(&cell.0, want["estimate"].as_f64().unwrap()),
                    "{name} {effect}: {} vs {}",
                    cell.0,
                    want["estimate"]
                );
                let (lower, upper) = bounds(&cell.1);
                assert!(
                    shows(&lower, want["ci"][0].as_f64().unwrap()),
                    "{name} {effect} lower"
                );
                assert!(
                    shows(&upper, want["ci"][1].as_f64().unwrap()),
                    "{name} {effect} upper"
                );
                compared += 3;
            }
            assert!(
                shows(
                    &row[6].0,
                    comparison["relative"]["p_value"].as_f64().unwrap()
                ),
                "{name} p-value {} vs {}",
                row[6].0,
                comparison["relative"]["p_value"]
            );
            compared += 1;
        }
        assert_eq!(compared, 3 * 3 + 2 * 7);
        let decision = api["decision"]["outcome"].as_str().unwrap();
        let banner = match decision {
            "scale" => "Decision: Scale",
            "do_not_scale" => "Decision: Do not scale",
            "keep_running" => "Decision: Keep running",
            _ => "Decision: Invalid",
        };
        assert!(seen.results_text.contains(banner), "{decision}");
        // A forest plot and one cumulative chart per treatment variant; all
        // users were assigned today, so the cumulative series ends at the
        // whole analysis.
        assert_eq!(seen.chart_count, 3);
        assert!(seen.results_text.contains("banner-b against the control"));
        let last_day = api["cumulative"].as_array().unwrap().last().unwrap();
        assert_eq!(last_day["comparisons"], api["comparisons"]);

        // The compliance page: eligibility per variant adds up to the API's users.
        let mut eligible: std::collections::BTreeMap<String, f64> = Default::default();
        for row in &seen.eligibility_rows {
            let count: f64 = row[3].0.replace(',', "").parse().unwrap();
            *eligible.entry(row[0].0.clone()).or_default() += count;
        }
        for variant in variants {
            let name = variant["variant"].as_str().unwrap();
            assert_eq!(eligible[name], variant["users"].as_f64().unwrap(), "{name}");
        }
        assert_eq!(
            seen.eligibility_rows.len(),
            6,
            "three variants x two notice versions"
        );
        assert!(
            shows(&seen.refusal_total, WITHOUT_CONSENT as f64),
            "refusals {}",
            seen.refusal_total
        );
        assert!(seen.compliance_text.contains("Approval record"));

        assert!(
            !seen.phone_overflow,
            "the results page is wider than a phone"
        );
        for (path, size) in &seen.shots {
            assert!(*size > 10_000, "{} is only {size} bytes", path.display());
            eprintln!("screenshot: {}", path.display());
        }
        for secret in app.tokens.values() {
            assert!(!seen.results_text.contains(secret.as_str()));
            assert!(!seen.compliance_text.contains(secret.as_str()));
        }
        assert!(!seen.results_text.contains("shopper1@example.com"));
        assert!(!seen.compliance_text.contains("shopper1@example.com"));
    }
);

#[test]
fn numbers_are_read_back_at_the_precision_shown() {
    assert!(shows("1,234", 1234.0));
    assert!(!shows("1,234", 1235.0));
    assert!(shows("+3.42%", 0.034_24));
    assert!(!shows("+3.42%", 0.0343));
    assert!(shows("\u{2212}0.120 pp", -0.001_2));
    assert!(shows("< 0.001", 0.000_2));
    assert!(!shows("< 0.001", 0.002));
    assert!(shows("0.0123", 0.012_34));
    assert!(!shows("n/a", 0.1));
}
