//! After a full demo run, no raw user id, token secret, privacy link token or pseudonym key is
//! anywhere it must not be: the database files, the server's log (at debug
//! level), every dashboard page, the API's answers, or an export. The demo's
//! own stdout shows the tokens on purpose (like `token create`) and is the
//! only place they may appear.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::process::{pilotgate, run, text};
use crate::support::web;

const KEY_HEX: &str = "c0ffee11c0ffee22c0ffee33c0ffee44c0ffee55c0ffee66c0ffee77c0ffee88";
const AUDIT_KEY_HEX: &str = "ad17c0dead17c0dead17c0dead17c0dead17c0dead17c0dead17c0dead17c0de";

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_demo_run_leaves_no_raw_id_token_or_key_in_the_database_logs_pages_or_exports() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let key = format!("1:{KEY_HEX}");
    let mut command = pilotgate(dir.path(), None);
    command
        .args(["demo", "--subjects", "800", "--days", "4", "--seed", "5"])
        .args(["--db", &url, "--bind", "127.0.0.1:0"])
        .env("PILOTGATE_PSEUDONYM_KEY", &key)
        .env("PILOTGATE_AUDIT_KEY", AUDIT_KEY_HEX)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child: std::process::Child = command.spawn().expect("start pilotgate demo");
    let (sender, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let mut shown = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !shown.iter().any(|l: &String| l.starts_with("serving on")) {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("the demo did not finish: {shown:#?}"));
        shown.push(line);
    }
    let output = shown.join("\n");
    let token_of = |role: &str| {
        shown
            .iter()
            .find_map(|l| l.trim().strip_prefix(role)?.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {role} token in {output}"))
            .to_owned()
    };
    let tokens: Vec<String> = ["compliance", "marketer", "analyst", "admin", "ingest"]
        .iter()
        .map(|role| token_of(role))
        .collect();
    let base = shown
        .iter()
        .find_map(|l| l.strip_prefix("Dashboard")?.split_whitespace().next())
        .and_then(|u| u.strip_suffix("/ui"))
        .expect("the dashboard address")
        .to_owned();
    assert!(
        output.contains("ineligible subjects assigned: 0"),
        "{output}"
    );

    // Everything a person or a client can read while it serves.
    let mut seen: Vec<(String, String)> = Vec::new();
    let session = web::sign_in(&base, &tokens[0]).await.pair;
    let client = web::client();
    for path in [
        "/ui/experiments",
        "/ui/experiments/demo-pilot-1",
        "/ui/experiments/demo-pilot-1/compliance",
        "/ui/experiments/demo-pilot-1/compliance.csv",
        "/ui/consents",
        "/ui/audit",
    ] {
        let response = client
            .get(format!("{base}{path}"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        seen.push((path.to_owned(), response.text().await.unwrap()));
    }
    // The subject desk, asked about a demo person by raw id: the page, the
    // log and the audit entry it leaves are all read below.
    let (status, desk) = web::page(&base, &session, "/ui/subjects").await;
    assert_eq!(status, 200);
    let csrf = web::csrf_of(&desk);
    let fields = [("user_id", "demo1-user0000001"), ("csrf", csrf.as_str())];
    let lookup = web::submit(&base, &session, "/ui/subjects", &fields).await;
    assert_eq!(lookup.status().as_u16(), 200);
    seen.push(("the subject desk".to_owned(), lookup.text().await.unwrap()));
    // A privacy link for a demo person: its token must not show up in the
    // log (the request log names routes, not paths), the database (only
    // its hash is kept), the audit log or the API's answers.
    let notice = serde_json::json!({"id": "demo-notice", "purposes": ["analytics.storefront.ab_testing"],
        "languages": {"en": {"title": "Your choices", "body": "We test the shop.",
        "purposes": {"analytics.storefront.ab_testing": "Test versions of the shop."}}}});
    let created = client
        .post(format!("{base}/api/v1/notices"))
        .bearer_auth(&tokens[0])
        .json(&notice)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let issued: serde_json::Value = client
        .post(format!("{base}/api/v1/privacy-links"))
        .bearer_auth(&tokens[4])
        .json(&serde_json::json!({"user_id": "demo1-user0000002", "notice": "demo-notice"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link_token = issued["url"]
        .as_str()
        .and_then(|u| u.strip_prefix("/privacy/"))
        .expect("a privacy link")
        .to_owned();
    let form = client
        .get(format!("{base}/privacy/{link_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status().as_u16(), 200);
    let choices = serde_json::json!({"notice_version": 1,
        "choices": [{"purpose": "analytics.storefront.ab_testing", "allow": false}]});
    for (path, status) in [
        (format!("/api/v1/privacy/{link_token}"), 200),
        (format!("/api/v1/privacy/{link_token}/choices"), 201),
        (format!("/api/v1/privacy/{link_token}x"), 404),
        (format!("/privacy/{link_token}/receipts/not-a-receipt"), 404),
    ] {
        let request = if path.ends_with("/choices") {
            client.post(format!("{base}{path}")).json(&choices)
        } else {
            client.get(format!("{base}{path}"))
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        seen.push((
            "a privacy link's answer".to_owned(),
            response.text().await.unwrap(),
        ));
    }
    for (path, role) in [
        ("/api/v1/experiments/demo-pilot-1/results", 2),
        ("/api/v1/experiments/demo-pilot-1/eligibility", 0),
        ("/api/v1/experiments", 1),
        ("/api/v1/audit?limit=1000", 0),
        ("/api/v1/legal-basis-map", 0),
        ("/metrics", 0),
    ] {
        let response = client
            .get(format!("{base}{path}"))
            .bearer_auth(&tokens[role])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        seen.push((path.to_owned(), response.text().await.unwrap()));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    seen.push(("the server's log".to_owned(), log.join().unwrap()));
    assert!(
        seen.last().unwrap().1.len() > 10_000,
        "the debug log is suspiciously short"
    );

    // Exports in both formats.
    for format in ["csv", "parquet"] {
        let out = dir.path().join(format!("export-{format}"));
        let exported = run(pilotgate(dir.path(), Some(&url))
            .env("PILOTGATE_PSEUDONYM_KEY", &key)
            .env("PILOTGATE_AUDIT_KEY", AUDIT_KEY_HEX)
            .args([
                "export",
                "--break-glass",
                "secrets check",
                "--experiment",
                "demo-pilot-1",
                "--format",
                format,
            ])
            .arg("--out")
            .arg(&out));
        assert!(exported.status.success(), "{}", text(&exported.stderr));
        seen.push((format!("export log ({format})"), text(&exported.stderr)));
    }
    let mut files = Vec::new();
    for file in files_under(dir.path()) {
        files.push((file.display().to_string(), std::fs::read(&file).unwrap()));
    }
    assert!(files.iter().any(|(name, _)| name.ends_with("demo.db")));
    assert!(files.iter().any(|(name, _)| name.ends_with(".parquet")));

    let secrets: Vec<(&str, String)> = std::iter::once(("a raw user id", "demo1-user".to_owned()))
        .chain(std::iter::once(("the pseudonym key", KEY_HEX.to_owned())))
        .chain(std::iter::once(("the audit key", AUDIT_KEY_HEX.to_owned())))
        .chain(std::iter::once((
            "a privacy link token",
            link_token.clone(),
        )))
        .chain(tokens.iter().map(|t| {
            // The secret half of `pgt_<id>_<secret>`.
            ("a token secret", t.rsplit('_').next().unwrap().to_owned())
        }))
        .collect();
    let needle_in = |haystack: &[u8], needle: &str| {
        haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    };
    for (what, secret) in &secrets {
        for (place, content) in &seen {
            assert!(
                !needle_in(content.as_bytes(), secret),
                "{what} appears in {place}"
            );
        }
        for (file, content) in &files {
            assert!(!needle_in(content, secret), "{what} appears in {file}");
        }
    }
    // The demo's own summary shows tokens on purpose, but never a raw id.
    assert!(!output.contains("demo1-user"), "{output}");
}
