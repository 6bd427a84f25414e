//! Governed exports in headless Chromium, as the people who do them:
//! compliance registers three recipients on the Recipients page; the analyst
//! asks for an export to each on the pilot's page; compliance approves two
//! and denies one on the compliance view; the analyst downloads through the
//! page's link, as a browser saves a file. The audit entry of each download
//! precedes it and its manifest's hash is the file's; the two recipients'
//! files share no subject id with each other nor with pilotgate's own
//! pseudonyms; the link goes after the third download and the download
//! itself is refused; the denied request never offers one.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::exports_api::pilot_with_data;
use crate::journey::{fill, shoot, sign_in, sign_out, text_of};
use crate::support::chromium::Browser;
use crate::support::pseudonym;
use pilotgate_domain::Role;
use serde_json::Value;
use sha2::Digest;

const RECIPIENTS: [&str; 3] = ["warehouse", "crm", "archive"];

/// Compliance registers the three recipients in the browser.
fn compliance_registers(browser: &mut Browser, address: &str, token: &str, label: &str) {
    let mut shots = Vec::new();
    sign_in(browser, address, token);
    browser.click_and_wait("nav a[href='/ui/recipients']");
    assert!(text_of(browser).contains("No recipient is registered"));
    let ends = (chrono::Utc::now() + chrono::Duration::days(60))
        .format("%Y-%m-%d")
        .to_string();
    // A contract that ended yesterday is refused, as typed.
    fill(browser, "#name", "warehouse");
    fill(browser, "#owner", "Data team");
    browser.evaluate("document.querySelector('#purpose-personalize\\\\.content').checked = true");
    browser.evaluate("document.querySelector('#format-csv').checked = true");
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    browser.evaluate(&format!(
        "document.querySelector('#expires_on').value = '{yesterday}'"
    ));
    browser.click_and_wait("main form button[type=submit]");
    let refused = text_of(browser);
    assert!(refused.contains("was not registered"), "{refused}");
    assert_eq!(
        browser.evaluate("document.querySelector('#owner').value"),
        "Data team",
        "the values typed are kept"
    );
    shoot(browser, label, "recipients-refused", &mut shots);
    for name in RECIPIENTS {
        fill(browser, "#name", name);
        fill(browser, "#owner", "Data team");
        browser
            .evaluate("document.querySelector('#purpose-personalize\\\\.content').checked = true");
        browser.evaluate("document.querySelector('#format-csv').checked = true");
        browser.evaluate(&format!(
            "document.querySelector('#expires_on').value = '{ends}'"
        ));
        browser.click_and_wait("main form button[type=submit]");
        assert!(
            browser.url().ends_with("/ui/recipients"),
            "{}",
            browser.url()
        );
    }
    let page = text_of(browser);
    assert!(page.contains("Recipients (3)"), "{page}");
    shoot(browser, label, "recipients", &mut shots);
    sign_out(browser);
}

/// The analyst asks for an export to each recipient on the pilot's page.
fn analyst_requests(browser: &mut Browser, address: &str, token: &str) {
    sign_in(browser, address, token);
    for name in RECIPIENTS {
        browser.open(&format!("{address}/ui/experiments/hero"));
        browser.evaluate(&format!(
            "document.querySelector('#export-recipient').value = '{name}'"
        ));
        browser.evaluate("document.querySelector('#export-format').value = 'csv'");
        fill(browser, "#export-reason", &format!("load into {name}"));
        browser.click_and_wait("form[aria-label='Request an export'] button[type=submit]");
        assert!(
            browser.url().ends_with("/ui/experiments/hero"),
            "{}",
            browser.url()
        );
    }
    let page = text_of(browser);
    assert_eq!(page.matches("pending").count(), 3, "{page}");
    sign_out(browser);
}

/// Compliance approves the warehouse and the CRM, and denies the archive.
fn compliance_decides(browser: &mut Browser, address: &str, token: &str, label: &str) {
    let mut shots = Vec::new();
    sign_in(browser, address, token);
    for (name, approve) in [("warehouse", true), ("crm", true), ("archive", false)] {
        browser.open(&format!("{address}/ui/experiments/hero/compliance"));
        let (verb, comment) = if approve {
            ("Approve", "Contract checked.")
        } else {
            ("Deny", "The archive needs no pilot data.")
        };
        let form = format!("form[aria-label='{verb} the export to {name}']");
        fill(browser, &format!("{form} textarea"), comment);
        browser.click_and_wait(&format!("{form} button[type=submit]"));
        assert!(
            browser.url().ends_with("/ui/experiments/hero/compliance"),
            "{}",
            browser.url()
        );
    }
    let view = text_of(browser);
    assert!(!view.contains("Decide: export"), "{view}");
    shoot(browser, label, "exports-decided", &mut shots);
    sign_out(browser);
}

/// What the analyst's browser saved: per recipient, the export's id and
/// each download's bytes.
struct Downloads {
    files: Vec<(String, String, Vec<Vec<u8>>)>,
    /// The page's text after the limit.
    after_limit: String,
    /// The error page's text for a download past the limit.
    refused: String,
}

/// The analyst downloads: the warehouse's export three times, the CRM's
/// once; then the link is gone and the address refused.
fn analyst_downloads(
    browser: &mut Browser,
    address: &str,
    token: &str,
    folder: &Path,
) -> Downloads {
    sign_in(browser, address, token);
    browser.save_downloads_in(folder);
    let mut files = Vec::new();
    for (name, times) in [("warehouse", 3), ("crm", 1)] {
        let mut bytes = Vec::new();
        let mut id = String::new();
        for _ in 0..times {
            browser.open(&format!("{address}/ui/experiments/hero"));
            let href = browser
                .evaluate(&format!(
                    "[...document.querySelectorAll('a[href$=\"/download\"]')].find(a => a.closest('tr').innerText.includes('{name}')).getAttribute('href')"
                ))
                .as_str()
                .expect("a download link")
                .to_owned();
            id = href
                .trim_start_matches("/ui/exports/")
                .trim_end_matches("/download")
                .to_owned();
            bytes.push(browser.download(
                &format!("a[href='{href}']"),
                folder,
                &format!("hero-{name}-{id}.csv"),
            ));
        }
        files.push((name.to_owned(), id, bytes));
    }
    browser.open(&format!("{address}/ui/experiments/hero"));
    let after_limit = text_of(browser);
    let links = browser.evaluate("document.querySelectorAll('a[href$=\"/download\"]').length");
    assert_eq!(links, 1, "only the CRM's export may still be downloaded");
    browser.open(&format!("{address}/ui/exports/{}/download", files[0].1));
    let refused = text_of(browser);
    Downloads {
        files,
        after_limit,
        refused,
    }
}

fn subjects_of(file: &[u8]) -> HashSet<String> {
    let mut reader = csv::Reader::from_reader(file);
    reader
        .records()
        .map(|r| r.expect("a CSV row")[0].to_owned())
        .collect()
}

api_story!(
    an_analyst_exports_to_approved_recipients_in_chromium,
    |app| {
        let label = if app.db.url.starts_with("postgres") {
            "postgres-exports"
        } else {
            "sqlite-exports"
        };
        let users = pilot_with_data(&app).await;
        let address = app.address.clone();
        let (compliance, analyst) = (
            app.tokens[&Role::Compliance].clone(),
            app.tokens[&Role::Analyst].clone(),
        );
        let folder = tempfile::tempdir().expect("a download folder");
        let saved_in: PathBuf = folder.path().to_owned();
        let seen = tokio::task::spawn_blocking(move || {
            let mut browser = Browser::launch();
            browser.viewport(1280, 800, false);
            compliance_registers(&mut browser, &address, &compliance, label);
            analyst_requests(&mut browser, &address, &analyst);
            compliance_decides(&mut browser, &address, &compliance, label);
            analyst_downloads(&mut browser, &address, &analyst, &saved_in)
        })
        .await
        .expect("the browser session");

        // Each download was audited first, its manifest naming its bytes.
        let entries = crate::exports_api::downloads_audited(&app).await;
        assert_eq!(entries.len(), 4, "four downloads, four entries");
        for (name, id, downloads) in &seen.files {
            let mut manifests: Vec<Value> = entries
                .iter()
                .map(|e| serde_json::from_str::<Value>(&e.details).unwrap())
                .filter(|m| m["export"] == id.as_str())
                .collect();
            manifests.sort_by_key(|m| m["download"].as_i64());
            assert_eq!(manifests.len(), downloads.len(), "{name}");
            for (manifest, file) in manifests.iter().zip(downloads) {
                assert_eq!(manifest["recipient"], name.as_str());
                assert_eq!(manifest["pilot"], "hero");
                assert_eq!(
                    manifest["sha256"],
                    hex::encode(sha2::Sha256::digest(file)).as_str(),
                    "the manifest names the bytes the browser saved"
                );
            }
        }

        // The two recipients' ids cannot be joined, nor with pilotgate's.
        let warehouse = subjects_of(&seen.files[0].2[0]);
        let crm = subjects_of(&seen.files[1].2[0]);
        assert_eq!(
            warehouse.len(),
            users.len() - 1,
            "the withdrawn one is left out"
        );
        assert!(warehouse.is_disjoint(&crm));
        let own: HashSet<String> = users.iter().map(|u| pseudonym(u)).collect();
        assert!(warehouse.is_disjoint(&own) && crm.is_disjoint(&own));
        for file in &seen.files[0].2 {
            let text = String::from_utf8(file.clone()).unwrap();
            assert!(users.iter().all(|u| !text.contains(u.as_str())));
        }

        // Past the limit: no link, and the address is refused.
        assert!(seen.after_limit.contains("3 of 3"), "{}", seen.after_limit);
        assert!(
            seen.refused.contains("downloaded") || seen.refused.contains("limit"),
            "{}",
            seen.refused
        );
        // The denied request offers nothing and downloads nothing.
        let denied = app
            .get_json("/api/v1/experiments/hero/exports", Some(Role::Analyst))
            .await;
        let archive = denied["exports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["recipient"] == "archive")
            .unwrap()
            .clone();
        assert_eq!(archive["state"], "denied");
        assert_eq!(archive["downloads"], 0);
        let response = app
            .get(
                &format!(
                    "/api/v1/exports/{}/download",
                    archive["id"].as_str().unwrap()
                ),
                Some(Role::Analyst),
            )
            .await;
        assert_eq!(response.status(), 409);
    }
);
