//! `pilotgate export`: the analyze input format, pseudonymized, without
//! withdrawn subjects, audited.

use crate::support::process::{pilotgate, run, text};
use crate::support::{Design, TestApp};
use pilotgate_domain::Role;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_holds_assignments_and_events_of_subjects_still_in_the_pilot() {
    let app = TestApp::spawn(pilotgate_store::Dialect::Sqlite)
        .await
        .unwrap();
    app.start_pilot(Design::new("hero").purchase("sum").json())
        .await;
    let users = ["ann@example.com", "ben@example.com", "cat@example.com"];
    let earlier = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
    for user in users {
        app.post_ok("/api/v1/consents", Role::Ingest, json!({"user_id": user, "purpose": "personalize.content", "basis": "consent",
            "status": "granted", "notice_id": "pn", "notice_version": 1, "source": {"channel": "app", "method": "tap"}, "collected_at": earlier})).await;
        app.post_ok(
            "/api/v1/assign",
            Role::Ingest,
            json!({"experiment": "hero", "user_id": user}),
        )
        .await;
        let event = json!({"events": [{"event_id": format!("e-{user}"), "user_id": user, "name": "purchase", "value": 10.0, "occurred_at": chrono::Utc::now().to_rfc3339()}]});
        assert_eq!(
            app.post_ok("/api/v1/events", Role::Ingest, event).await["accepted"],
            1
        );
    }
    app.post_ok("/api/v1/consents", Role::Ingest, json!({"user_id": "cat@example.com", "purpose": "personalize.content", "basis": "consent",
        "status": "withdrawn", "notice_id": "pn", "notice_version": 1, "source": {"channel": "app", "method": "tap"}, "collected_at": chrono::Utc::now().to_rfc3339()})).await;

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("export");
    let csv = run(pilotgate(dir.path(), Some(&app.db.url))
        .args([
            "export",
            "--break-glass",
            "incident 42",
            "--experiment",
            "hero",
            "--out",
        ])
        .arg(&out));
    assert!(csv.status.success(), "{}", text(&csv.stderr));
    assert!(
        text(&csv.stderr).contains("2 assignments")
            && text(&csv.stderr).contains("1 withdrawn subjects left out"),
        "{}",
        text(&csv.stderr)
    );
    let assignments = std::fs::read_to_string(out.join("assignments.csv")).unwrap();
    let events = std::fs::read_to_string(out.join("events.csv")).unwrap();
    assert!(assignments.starts_with("subject,variant,assigned_at\n"));
    assert!(events.starts_with("subject,event,value,occurred_at\n"));
    assert_eq!(assignments.lines().count(), 3);
    assert_eq!(events.lines().count(), 3);
    let withdrawn: Value = app
        .post_ok(
            "/api/v1/subjects/resolve",
            Role::Compliance,
            json!({"user_id": "cat@example.com"}),
        )
        .await;
    for file in [&assignments, &events] {
        assert!(
            !file.contains(withdrawn["subject"].as_str().unwrap()),
            "a withdrawn subject was exported"
        );
        assert!(!file.contains("example.com"), "a raw id was exported");
    }

    let parquet = run(pilotgate(dir.path(), Some(&app.db.url))
        .args([
            "export",
            "--break-glass",
            "incident 42",
            "--experiment",
            "hero",
            "--format",
            "parquet",
            "--out",
        ])
        .arg(&out));
    assert!(parquet.status.success(), "{}", text(&parquet.stderr));
    assert!(out.join("assignments.parquet").exists() && out.join("events.parquet").exists());

    let trail: Value = app
        .get(
            "/api/v1/audit?target=experiment:hero",
            Some(Role::Compliance),
        )
        .await
        .json()
        .await
        .unwrap();
    let exports = trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "experiment.export")
        .count();
    assert_eq!(exports, 2);

    let unknown = run(pilotgate(dir.path(), Some(&app.db.url))
        .args([
            "export",
            "--break-glass",
            "incident 42",
            "--experiment",
            "nope",
            "--out",
        ])
        .arg(&out));
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(
        text(&unknown.stderr).trim(),
        "error: no pilot has the key 'nope'"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_exports_only_an_approved_request_or_under_break_glass_audited_first() {
    let app = TestApp::spawn(pilotgate_store::Dialect::Sqlite)
        .await
        .unwrap();
    app.start_pilot(Design::new("hero").json()).await;
    let earlier = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
    for user in ["ann@example.com", "ben@example.com"] {
        app.post_ok("/api/v1/consents", Role::Ingest, json!({"user_id": user, "purpose": "personalize.content", "basis": "consent",
            "status": "granted", "notice_id": "pn", "notice_version": 1, "source": {"channel": "app", "method": "tap"}, "collected_at": earlier})).await;
        app.assign("hero", user).await;
    }
    let dir = tempfile::tempdir().unwrap();

    // Neither an approved export nor break-glass: nothing is written.
    let bare = run(pilotgate(dir.path(), Some(&app.db.url))
        .args(["export", "--experiment", "hero", "--out"])
        .arg(dir.path().join("bare")));
    assert!(!bare.status.success());
    assert!(!dir.path().join("bare").exists());

    // Break-glass is audited before the export itself.
    let glass = run(pilotgate(dir.path(), Some(&app.db.url))
        .args([
            "export",
            "--break-glass",
            "incident 42",
            "--experiment",
            "hero",
            "--out",
        ])
        .arg(dir.path().join("glass")));
    assert!(glass.status.success(), "{}", text(&glass.stderr));
    let audit: Value = app
        .get_json("/api/v1/audit?limit=200", Some(Role::Compliance))
        .await;
    let entries = audit["entries"].as_array().unwrap();
    let id_of = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .map(|e| e["id"].as_i64().unwrap())
            .unwrap_or_else(|| panic!("no {action} entry"))
    };
    assert!(id_of("export.break_glass") < id_of("experiment.export"));

    // An approved request: counted as a download, ids made for the recipient.
    let expires = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    app.post_ok(
        "/api/v1/recipients",
        Role::Compliance,
        json!({"name": "warehouse", "owner": "Data team",
        "purposes": ["personalize.content"], "formats": ["csv"], "expires_at": expires}),
    )
    .await;
    let request = app
        .post_ok(
            "/api/v1/experiments/hero/exports",
            Role::Analyst,
            json!({"recipient": "warehouse", "format": "csv", "reason": "warehouse load"}),
        )
        .await;
    let id = request["id"].as_str().unwrap();
    let pending = run(pilotgate(dir.path(), Some(&app.db.url))
        .args(["export", "--export-id", id, "--experiment", "hero", "--out"])
        .arg(dir.path().join("pending")));
    assert!(
        !pending.status.success(),
        "a pending request exports nothing"
    );
    app.post_ok(
        &format!("/api/v1/exports/{id}/approve"),
        Role::Compliance,
        json!({"comment": "ok"}),
    )
    .await;
    let approved = run(pilotgate(dir.path(), Some(&app.db.url))
        .args(["export", "--export-id", id, "--experiment", "hero", "--out"])
        .arg(dir.path().join("approved")));
    assert!(approved.status.success(), "{}", text(&approved.stderr));
    let file =
        std::fs::read_to_string(dir.path().join("approved").join("assignments.csv")).unwrap();
    assert_eq!(file.lines().count(), 3);
    for user in ["ann@example.com", "ben@example.com"] {
        assert!(
            !file.contains(&crate::support::pseudonym(user)),
            "pilotgate's own ids stay home"
        );
    }
    let listed = app
        .get_json("/api/v1/experiments/hero/exports", Some(Role::Compliance))
        .await;
    assert_eq!(listed["exports"][0]["downloads"], 1);
    // Its audit entry names the bytes of both files, hashed before writing.
    let audit: Value = app
        .get_json("/api/v1/audit?limit=200", Some(Role::Compliance))
        .await;
    let manifest = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "export.download")
        .map(|e| e["details"].clone())
        .expect("the download's entry");
    for table in ["assignments", "events"] {
        let bytes =
            std::fs::read(dir.path().join("approved").join(format!("{table}.csv"))).unwrap();
        assert_eq!(
            manifest["sha256"][table],
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)).as_str(),
            "{table}"
        );
    }
    // Two people: under the default minimum cell size, the manifest (read
    // in the audit log) withholds the count, as the API download does.
    assert!(manifest["basis_counts"]["consent"].is_null(), "{manifest}");
    assert_eq!(manifest["suppressed"], true);
    assert_eq!(manifest["min_cell"], 10);
    assert_eq!(manifest["purpose"], "personalize.content");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_break_glass_export_shows_in_red_on_the_compliance_view() {
    let app = TestApp::spawn(pilotgate_store::Dialect::Sqlite)
        .await
        .unwrap();
    app.start_pilot(Design::new("hero").json()).await;
    let cookie = app.sign_in(&app.tokens[&Role::Compliance].clone()).await;
    let (status, before) = app.page(&cookie, "/ui/experiments/hero/compliance").await;
    assert_eq!(status, 200);
    assert!(!before.contains("tone-negative\" role=\"alert\""));
    let dir = tempfile::tempdir().unwrap();
    let glass = run(pilotgate(dir.path(), Some(&app.db.url))
        .args([
            "export",
            "--break-glass",
            "incident 42",
            "--experiment",
            "hero",
            "--out",
        ])
        .arg(dir.path().join("glass")));
    assert!(glass.status.success(), "{}", text(&glass.stderr));
    let (status, after) = app.page(&cookie, "/ui/experiments/hero/compliance").await;
    assert_eq!(status, 200);
    assert!(
        after.contains("<div class=\"banner tone-negative\" role=\"alert\"><p>Break-glass export"),
        "{after}"
    );
    assert!(after.contains("incident 42"));
}
