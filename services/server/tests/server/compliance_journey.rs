//! The compliance officer's job and the customer's consent form in headless
//! Chromium, without a line of curl for either of them: compliance registers
//! a purpose and records its legitimate-interest assessment, publishes a
//! notice from a template; the shop asks for a privacy link through the API;
//! the customer opens it, allows one purpose and refuses another, and
//! downloads the receipt, which `pilotgate receipt verify` accepts; the
//! subject-rights desk shows the two ledger records with channel
//! `privacy_center`; compliance raises the purpose's minimum notice version
//! and the marketer finds the submitted pilot back in draft, with the
//! reason. Pages are saved under `target/screenshots` like the marketer's
//! journey.

use std::path::PathBuf;

use crate::journey::{fill, shoot, sign_in, sign_out, text_of};
use crate::support::chromium::Browser;
use crate::support::process::{pilotgate, run, text};
use crate::support::{Design, pseudonym, web};
use pilotgate_domain::Role;
use serde_json::{Value, json};

const PURPOSE: &str = "analytics.storefront.ab_testing";
const CUSTOMER: &str = "journey-customer-7@example.com";

/// Compliance registers the purpose with legitimate interest, records a
/// positive assessment, and creates the notice `shop-choices` from the
/// personalisation template, all in the browser.
fn compliance_prepares(
    address: String,
    token: String,
    label: &'static str,
) -> (Browser, Vec<(PathBuf, usize)>) {
    let mut shots = Vec::new();
    let mut browser = Browser::launch();
    browser.viewport(1280, 800, false);
    sign_in(&mut browser, &address, &token);
    browser.click_and_wait("nav a[href='/ui/purposes']");
    fill(&mut browser, "#key", PURPOSE);
    fill(&mut browser, "#description", "A/B tests of the storefront");
    browser.evaluate("document.querySelector('#basis_legitimate_interest').checked = true");
    fill(&mut browser, "#retention_days", "90");
    browser.click_and_wait("form[action='/ui/purposes'] button[type=submit]");
    assert!(
        browser.url().ends_with(&format!("/ui/purposes/{PURPOSE}")),
        "{}",
        browser.url()
    );
    let page = text_of(&mut browser);
    assert!(
        page.contains("none positive: legitimate interest cannot be relied on"),
        "{page}"
    );
    for (field, words) in [
        (
            "#purpose_test",
            "Knowing which page layout helps customers buy is a legitimate interest.",
        ),
        (
            "#necessity_test",
            "Comparing two layouts on pseudonyms is the least intrusive way.",
        ),
        ("#interests", "A checkout that works better."),
        (
            "#expectations",
            "Customers expect a shop to improve its pages.",
        ),
        (
            "#safeguards",
            "Pseudonyms, 90 days, objections honoured at once.",
        ),
    ] {
        fill(&mut browser, field, words);
    }
    browser.evaluate("document.querySelector('#outcome_positive').checked = true");
    fill(&mut browser, "#reviewer", "Dana (DPO)");
    shoot(
        &mut browser,
        label,
        "compliance-assessment-form",
        &mut shots,
    );
    browser.click_and_wait("form[action$='/assessments'] button[type=submit]");
    let page = text_of(&mut browser);
    assert!(
        page.contains("LIA v1: positive, reviewed by Dana (DPO)"),
        "{page}"
    );
    assert!(page.contains("LIA v1 (positive)"), "{page}");
    shoot(&mut browser, label, "compliance-purpose", &mut shots);

    browser.click_and_wait("nav a[href='/ui/notices']");
    browser.click_and_wait("a[href='/ui/notices?template=personalisation']");
    fill(&mut browser, "#new-id", "shop-choices");
    shoot(&mut browser, label, "compliance-notice-form", &mut shots);
    browser.click_and_wait("form[action='/ui/notices'] button[value=save]");
    let page = text_of(&mut browser);
    assert!(page.contains("shop-choices (version 1)"), "{page}");
    sign_out(&mut browser);
    (browser, shots)
}

/// The customer opens the link, allows the first purpose, refuses the
/// second and saves; the receipt link's address.
fn customer_chooses(
    mut browser: Browser,
    address: String,
    link: String,
    label: &'static str,
    mut shots: Vec<(PathBuf, usize)>,
) -> (Browser, Vec<(PathBuf, usize)>, String) {
    browser.open(&format!("{address}{link}"));
    let checked = browser
        .evaluate("document.querySelectorAll('input[type=radio]:checked').length")
        .as_u64()
        .unwrap();
    assert_eq!(checked, 0, "no choice is made for the customer");
    let scripts = browser
        .evaluate("document.querySelectorAll('script').length")
        .as_u64()
        .unwrap();
    assert_eq!(scripts, 0, "the form works without JavaScript");
    // Every radio button has a label the customer can click.
    let unlabelled = browser
        .evaluate("[...document.querySelectorAll('input[type=radio]')].filter(i => !document.querySelector(`label[for='${i.id}']`)).length")
        .as_u64()
        .unwrap();
    assert_eq!(unlabelled, 0);
    shoot(&mut browser, label, "customer-form", &mut shots);
    // A click on the words chooses, as a person would do it.
    browser.evaluate("document.querySelector(\"label[for='c0-yes']\").click()");
    browser.evaluate("document.querySelector(\"label[for='c1-no']\").click()");
    let chosen = browser.evaluate(
        "[...document.querySelectorAll('input[type=radio]:checked')].map(i => i.id).join(',')",
    );
    assert_eq!(chosen, json!("c0-yes,c1-no"));
    browser.click_and_wait("button[name=all][value='']");
    let page = text_of(&mut browser);
    assert!(page.contains("Your choices were saved."), "{page}");
    shoot(&mut browser, label, "customer-saved", &mut shots);
    let receipt = browser
        .evaluate("document.querySelector('a[download]').getAttribute('href')")
        .as_str()
        .expect("a receipt link")
        .to_owned();
    (browser, shots, receipt)
}

/// Compliance looks the customer up at the desk, then raises the purpose's
/// minimum notice version; the marketer finds the pilot back in draft.
fn compliance_follows_up(
    mut browser: Browser,
    address: String,
    compliance: String,
    marketer: String,
    label: &'static str,
    mut shots: Vec<(PathBuf, usize)>,
) -> String {
    sign_in(&mut browser, &address, &compliance);
    browser.click_and_wait("nav a[href='/ui/subjects']");
    browser.type_into("#user-id", CUSTOMER);
    browser.click_and_wait("main form button[type=submit]");
    let desk = text_of(&mut browser);
    assert!(!desk.contains(CUSTOMER), "the raw id is not shown back");
    assert_eq!(
        desk.matches("privacy_center").count(),
        2,
        "the two records of the form: {desk}"
    );
    shoot(&mut browser, label, "compliance-desk", &mut shots);

    browser.open(&format!("{address}/ui/purposes/{PURPOSE}"));
    fill(&mut browser, "#min_notice_version", "2");
    browser.click_and_wait(&format!(
        "form[action='/ui/purposes/{PURPOSE}'] button[type=submit]"
    ));
    let page = text_of(&mut browser);
    assert!(
        page.contains("pilots sent back to draft: storefront-layout"),
        "{page}"
    );
    shoot(&mut browser, label, "compliance-purpose-raised", &mut shots);
    sign_out(&mut browser);

    sign_in(&mut browser, &address, &marketer);
    browser.open(&format!("{address}/ui/experiments/storefront-layout"));
    let page = text_of(&mut browser);
    shoot(&mut browser, label, "marketer-back-in-draft", &mut shots);
    for (path, size) in &shots {
        assert!(
            *size > 2_000,
            "{} is too small to be a page",
            path.display()
        );
    }
    page
}

api_story!(
    compliance_and_the_customer_do_their_part_in_chromium,
    |app| {
        let label = if app.db.url.starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        };
        // The template's purposes, registered through the API; the one with
        // the assessment is the browser's.
        for key in [
            "personalize.content.profiling",
            "personalize.offers.profiling",
        ] {
            app.post_ok(
                "/api/v1/purposes",
                Role::Compliance,
                json!({"key": key, "description": "d", "allowed_bases": ["consent"],
                    "min_notice_version": 1, "retention_days": 90}),
            )
            .await;
        }
        let (address, compliance) = (app.address.clone(), app.tokens[&Role::Compliance].clone());
        let (browser, shots) =
            tokio::task::spawn_blocking(move || compliance_prepares(address, compliance, label))
                .await
                .expect("the browser session");
        let purpose = app
            .get_json(&format!("/api/v1/purposes/{PURPOSE}"), Some(Role::Analyst))
            .await;
        assert_eq!(purpose["purpose"]["li_assessment_ref"], "LIA v1");
        assert_eq!(
            purpose["purpose"]["allowed_bases"],
            json!(["consent", "legitimate_interest"])
        );

        // The shop asks for the customer's link; the marketer submits a pilot.
        let issued = app
            .post_ok(
                "/api/v1/privacy-links",
                Role::Ingest,
                json!({"user_id": CUSTOMER, "notice": "shop-choices"}),
            )
            .await;
        let link = issued["url"].as_str().unwrap().to_owned();
        assert!(!link.contains(CUSTOMER));
        app.submit_pilot(
            Design::new("storefront-layout")
                .with("purpose", json!(PURPOSE))
                .json(),
        )
        .await;

        let address = app.address.clone();
        let (browser, shots, receipt) = tokio::task::spawn_blocking(move || {
            customer_chooses(browser, address, link, label, shots)
        })
        .await
        .expect("the browser session");

        // The receipt downloads and verifies with the CLI.
        let download = web::client()
            .get(format!("{}{receipt}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(download.status(), 200);
        let jws = download.text().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("receipt.jws");
        std::fs::write(&file, &jws).unwrap();
        let verified = run(pilotgate(dir.path(), Some(&app.db.url))
            .args(["receipt", "verify"])
            .arg(&file));
        assert!(verified.status.success(), "{}", text(&verified.stderr));
        let line = text(&verified.stdout);
        assert!(
            line.contains(&format!("subject {}", pseudonym(CUSTOMER)))
                && line.contains("2 purposes"),
            "{line}"
        );

        // The ledger holds the two records of the form.
        let ledger = app
            .get_json(
                &format!("/api/v1/subjects/{}/consents", pseudonym(CUSTOMER)),
                Some(Role::Compliance),
            )
            .await;
        let mut records: Vec<(String, String, String)> = ledger["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r: &Value| {
                (
                    r["purpose"].as_str().unwrap().to_owned(),
                    r["status"].as_str().unwrap().to_owned(),
                    r["source"]["channel"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        records.sort();
        assert_eq!(
            records,
            vec![
                (
                    "personalize.content.profiling".to_owned(),
                    "granted".to_owned(),
                    "privacy_center".to_owned()
                ),
                (
                    "personalize.offers.profiling".to_owned(),
                    "denied".to_owned(),
                    "privacy_center".to_owned()
                ),
            ]
        );
        assert!(
            ledger["history"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["notice_id"] == "shop-choices" && r["notice_version"] == 1)
        );

        let (address, compliance, marketer) = (
            app.address.clone(),
            app.tokens[&Role::Compliance].clone(),
            app.tokens[&Role::Marketer].clone(),
        );
        let page = tokio::task::spawn_blocking(move || {
            compliance_follows_up(browser, address, compliance, marketer, label, shots)
        })
        .await
        .expect("the browser session");
        assert!(page.contains("Back in draft"), "{page}");
        assert!(
            page.contains("the minimum notice version rose from 1 to 2"),
            "{page}"
        );
        let pilot = app
            .get_json(
                "/api/v1/experiments/storefront-layout",
                Some(Role::Marketer),
            )
            .await;
        assert_eq!(pilot["state"], "draft");
    }
);
