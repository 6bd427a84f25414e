//! Governed exports through the API: recipients, requests, approval by
//! compliance only, the requester's bounded download audited first with
//! its manifest, ids that cannot be joined across recipients.

use std::collections::HashSet;

use crate::support::{Design, TestApp, assert_json_error, pseudonym};
use pilotgate_domain::{Actor, Role};
use pilotgate_store::{AuditCursor, AuditFilter};
use serde_json::{Value, json};
use sha2::Digest;

const USERS: usize = 12;

/// A running pilot `hero` with `USERS` assigned subjects, one withdrawn,
/// and a purchase for every third.
pub(crate) async fn pilot_with_data(app: &TestApp) -> Vec<String> {
    app.start_pilot(Design::new("hero").json()).await;
    let earlier = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
    let users: Vec<String> = (0..USERS)
        .map(|i| format!("buyer{i}@example.com"))
        .collect();
    let records: Vec<Value> = users.iter().map(|u| json!({"user_id": u, "purpose": "personalize.content", "basis": "consent", "status": "granted",
        "notice_id": "pn", "notice_version": 1, "source": {"channel": "app", "method": "tap"}, "collected_at": earlier})).collect();
    app.post_ok(
        "/api/v1/consents",
        Role::Ingest,
        json!({"records": records}),
    )
    .await;
    let mut events = Vec::new();
    for (i, user) in users.iter().enumerate() {
        app.assign("hero", user).await;
        if i % 3 == 0 {
            events.push(json!({"event_id": format!("p{i}"), "user_id": user, "name": "purchase", "value": 1.0, "occurred_at": chrono::Utc::now().to_rfc3339()}));
        }
    }
    app.post_ok("/api/v1/events", Role::Ingest, json!({"events": events}))
        .await;
    app.post_ok("/api/v1/consents", Role::Ingest, json!({"user_id": users[1], "purpose": "personalize.content", "basis": "consent", "status": "withdrawn",
        "notice_id": "pn", "notice_version": 1, "source": {"channel": "app", "method": "tap"}, "collected_at": chrono::Utc::now().to_rfc3339()})).await;
    users
}

pub(crate) async fn register_recipient(app: &TestApp, name: &str, purposes: Value, formats: Value) {
    let expires = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let response = app
        .post(
            "/api/v1/recipients",
            Role::Compliance,
            json!({"name": name, "owner": "Data team", "purposes": purposes, "formats": formats, "expires_at": expires}),
        )
        .await;
    assert_eq!(response.status(), 201, "register {name}");
}

async fn request(app: &TestApp, recipient: &str) -> String {
    let response = app
        .post(
            "/api/v1/experiments/hero/exports",
            Role::Analyst,
            json!({"recipient": recipient, "format": "csv", "reason": "load into the warehouse"}),
        )
        .await;
    assert_eq!(response.status(), 201, "request for {recipient}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["state"], "pending");
    body["id"].as_str().unwrap().to_owned()
}

async fn approve(app: &TestApp, id: &str) {
    app.post_ok(
        &format!("/api/v1/exports/{id}/approve"),
        Role::Compliance,
        json!({"comment": "contract checked"}),
    )
    .await;
}

/// The downloaded bytes and the audit entry id the server named.
async fn download(app: &TestApp, id: &str) -> (Vec<u8>, i64) {
    let response = app
        .get(
            &format!("/api/v1/exports/{id}/download"),
            Some(Role::Analyst),
        )
        .await;
    assert_eq!(response.status(), 200, "download {id}");
    let audit_id: i64 = response.headers()["x-audit-entry"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    (response.bytes().await.unwrap().to_vec(), audit_id)
}

/// The `export.download` audit entries, newest first.
pub(crate) async fn downloads_audited(app: &TestApp) -> Vec<pilotgate_domain::audit::AuditEntry> {
    app.db
        .store
        .filtered_audit(
            &AuditFilter {
                action: Some("export.download".to_owned()),
                ..AuditFilter::default()
            },
            AuditCursor::Before(None),
            20,
        )
        .await
        .unwrap()
}

fn subjects_of(file: &[u8]) -> HashSet<String> {
    let mut reader = csv::Reader::from_reader(file);
    assert_eq!(
        reader.headers().unwrap(),
        vec![
            "subject",
            "variant",
            "assigned_at",
            "event",
            "value",
            "occurred_at"
        ]
    );
    reader.records().map(|r| r.unwrap()[0].to_owned()).collect()
}

api_story!(
    an_approved_export_is_downloaded_by_its_requester_audited_first_and_bounded,
    |app| {
        let users = pilot_with_data(&app).await;
        register_recipient(
            &app,
            "warehouse",
            json!(["personalize.content"]),
            json!(["csv"]),
        )
        .await;
        register_recipient(
            &app,
            "crm",
            json!(["personalize.content"]),
            json!(["csv", "parquet"]),
        )
        .await;
        let listed = app
            .get_json("/api/v1/recipients", Some(Role::Analyst))
            .await;
        assert_eq!(listed["recipients"].as_array().unwrap().len(), 2);

        let id = request(&app, "warehouse").await;
        // Pending: nothing to download.
        let pending = app
            .get(
                &format!("/api/v1/exports/{id}/download"),
                Some(Role::Analyst),
            )
            .await;
        assert_json_error(pending, 409).await;
        approve(&app, &id).await;

        let (file, audit_id) = download(&app, &id).await;
        let digest = hex::encode(sha2::Sha256::digest(&file));
        let entries = crate::exports_api::downloads_audited(&app).await;
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        assert_eq!(entry.id, audit_id);
        let manifest: Value = serde_json::from_str(&entry.details).unwrap();
        assert_eq!(
            manifest["sha256"],
            digest.as_str(),
            "the manifest names the bytes sent"
        );
        assert_eq!(manifest["pilot"], "hero");
        assert_eq!(manifest["purpose"], "personalize.content");
        assert_eq!(manifest["recipient"], "warehouse");
        assert_eq!(manifest["basis_counts"]["consent"], (USERS - 1) as u64);
        assert_eq!(manifest["rows"]["assignments"], (USERS - 1) as u64);
        assert_eq!(manifest["withdrawn_left_out"], 1);
        assert!(manifest["expires_at"].is_string());

        // The file holds the kept subjects under ids made for this recipient.
        let warehouse_ids = subjects_of(&file);
        assert_eq!(
            warehouse_ids.len(),
            USERS - 1,
            "the withdrawn subject is left out"
        );
        let own: HashSet<String> = users.iter().map(|u| pseudonym(u)).collect();
        assert!(
            warehouse_ids.is_disjoint(&own),
            "no pilotgate pseudonym leaves"
        );
        let text = String::from_utf8(file.clone()).unwrap();
        assert!(
            users.iter().all(|u| !text.contains(u.as_str())),
            "no raw id leaves"
        );
        assert!(own.iter().all(|p| !text.contains(p.as_str())));

        // Another recipient's file cannot be joined with this one.
        let other = request(&app, "crm").await;
        approve(&app, &other).await;
        let (crm_file, crm_audit) = download(&app, &other).await;
        assert!(
            crm_audit > audit_id,
            "each download is audited when it happens"
        );
        let crm_ids = subjects_of(&crm_file);
        assert_eq!(crm_ids.len(), USERS - 1);
        assert!(crm_ids.is_disjoint(&warehouse_ids));
        assert!(crm_ids.is_disjoint(&own));

        // Three downloads, then none.
        let (again, _) = download(&app, &id).await;
        assert_eq!(again, file, "the same data, the same file");
        download(&app, &id).await;
        let fourth = app
            .get(
                &format!("/api/v1/exports/{id}/download"),
                Some(Role::Analyst),
            )
            .await;
        assert_json_error(fourth, 409).await;
        let downloads = crate::exports_api::downloads_audited(&app).await;
        assert_eq!(
            downloads.len(),
            4,
            "the refused download is not audited as one"
        );

        // Past its expiry, an approved export downloads nothing.
        let late = request(&app, "warehouse").await;
        approve(&app, &late).await;
        app.db
            .store
            .simulate_time(Some(chrono::Utc::now() + chrono::Duration::days(8)));
        let expired = app
            .get(
                &format!("/api/v1/exports/{late}/download"),
                Some(Role::Analyst),
            )
            .await;
        assert_json_error(expired, 409).await;
        // And an expired contract takes no request.
        app.db
            .store
            .simulate_time(Some(chrono::Utc::now() + chrono::Duration::days(31)));
        let response = app
            .post(
                "/api/v1/experiments/hero/exports",
                Role::Analyst,
                json!({"recipient": "crm", "format": "csv", "reason": "r"}),
            )
            .await;
        assert_json_error(response, 422).await;
        app.db.store.simulate_time(None);
    }
);

api_story!(
    exports_are_refused_denied_and_kept_from_those_who_did_not_ask,
    |app| {
        pilot_with_data(&app).await;
        app.post_ok(
            "/api/v1/purposes",
            Role::Compliance,
            json!({"key": "measure.reach", "description": "d", "allowed_bases": ["consent"],
            "min_notice_version": 1, "retention_days": 30}),
        )
        .await;
        register_recipient(&app, "reach", json!(["measure.reach"]), json!(["csv"])).await;
        register_recipient(
            &app,
            "lake",
            json!(["personalize.content"]),
            json!(["parquet"]),
        )
        .await;
        register_recipient(
            &app,
            "warehouse",
            json!(["personalize.content"]),
            json!(["csv"]),
        )
        .await;

        // Roles: only compliance keeps the registry, only analysts ask.
        let response = app
            .post("/api/v1/recipients", Role::Analyst, json!({"name": "x", "owner": "o", "purposes": ["personalize.content"], "formats": ["csv"], "expires_at": "2999-01-01T00:00:00Z"}))
            .await;
        assert_json_error(response, 403).await;
        let response = app.get("/api/v1/recipients", Some(Role::Marketer)).await;
        assert_json_error(response, 403).await;
        let response = app
            .post(
                "/api/v1/experiments/hero/exports",
                Role::Marketer,
                json!({"recipient": "warehouse", "format": "csv", "reason": "r"}),
            )
            .await;
        assert_json_error(response, 403).await;
        // A recipient may receive only its purposes and formats.
        for (recipient, format) in [
            ("reach", "csv"),
            ("lake", "csv"),
            ("warehouse", "parquet"),
            ("nobody", "csv"),
        ] {
            let response = app
                .post(
                    "/api/v1/experiments/hero/exports",
                    Role::Analyst,
                    json!({"recipient": recipient, "format": format, "reason": "r"}),
                )
                .await;
            assert_json_error(response, 422).await;
        }
        let duplicate = app
            .post("/api/v1/recipients", Role::Compliance, json!({"name": "warehouse", "owner": "o", "purposes": ["personalize.content"], "formats": ["csv"], "expires_at": "2999-01-01T00:00:00Z"}))
            .await;
        assert_json_error(duplicate, 409).await;

        // Separation of duties: the requester cannot decide, not even with the compliance role.
        let id = request(&app, "warehouse").await;
        let response = app
            .post(
                &format!("/api/v1/exports/{id}/approve"),
                Role::Analyst,
                json!({"comment": "mine"}),
            )
            .await;
        assert_json_error(response, 403).await;
        let requester = Actor::token("analyst-token", Role::Compliance);
        let refused = app
            .db
            .store
            .decide_export(
                &id,
                &requester,
                true,
                "mine",
                chrono::Utc::now() + chrono::Duration::days(7),
            )
            .await;
        assert!(
            matches!(refused, Err(pilotgate_store::StoreError::Forbidden(_))),
            "{refused:?}"
        );

        // A denied request downloads nothing and cannot be approved after.
        let denied = app
            .post_ok(
                &format!("/api/v1/exports/{id}/deny"),
                Role::Compliance,
                json!({"comment": "no contract for this"}),
            )
            .await;
        assert_eq!(denied["state"], "denied");
        let response = app
            .get(
                &format!("/api/v1/exports/{id}/download"),
                Some(Role::Analyst),
            )
            .await;
        assert_json_error(response, 409).await;
        let response = app
            .post(
                &format!("/api/v1/exports/{id}/approve"),
                Role::Compliance,
                json!({"comment": "changed my mind"}),
            )
            .await;
        assert_json_error(response, 409).await;

        // Only the requester downloads an approved export.
        let id = request(&app, "warehouse").await;
        approve(&app, &id).await;
        let other_analyst = app.add_token("second-analyst", Role::Analyst).await;
        let response = app
            .client
            .get(format!("{}/api/v1/exports/{id}/download", app.address))
            .bearer_auth(&other_analyst)
            .send()
            .await
            .unwrap();
        assert_json_error(response, 403).await;
        let response = app
            .get(
                &format!("/api/v1/exports/{id}/download"),
                Some(Role::Compliance),
            )
            .await;
        assert_json_error(response, 403).await;
        let listed = app
            .get_json("/api/v1/experiments/hero/exports", Some(Role::Compliance))
            .await;
        let states: Vec<&str> = listed["exports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["state"].as_str().unwrap())
            .collect();
        assert_eq!(states.len(), 2);
        assert!(states.contains(&"denied") && states.contains(&"approved"));
        let missing = app
            .get(
                "/api/v1/exports/ffffffffffffffffffffffff/download",
                Some(Role::Analyst),
            )
            .await;
        assert_json_error(missing, 404).await;
    }
);

api_story!(a_parquet_export_holds_the_same_rows_as_the_csv_one, |app| {
    pilot_with_data(&app).await;
    register_recipient(
        &app,
        "lake",
        json!(["personalize.content"]),
        json!(["csv", "parquet"]),
    )
    .await;
    let mut ids = Vec::new();
    for format in ["csv", "parquet"] {
        let response = app
            .post(
                "/api/v1/experiments/hero/exports",
                Role::Analyst,
                json!({"recipient": "lake", "format": format, "reason": format}),
            )
            .await;
        assert_eq!(response.status(), 201, "{format}");
        let id = response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        approve(&app, &id).await;
        ids.push(id);
    }
    let response = app
        .get(
            &format!("/api/v1/exports/{}/download", ids[1]),
            Some(Role::Analyst),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.apache.parquet"
    );
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.contains(".parquet"), "{disposition}");
    let parquet = response.bytes().await.unwrap().to_vec();
    assert!(parquet.starts_with(b"PAR1") && parquet.ends_with(b"PAR1"));
    let (csv, _) = download(&app, &ids[0]).await;

    // The Parquet table, read back and written as CSV, is the CSV file.
    use polars::prelude::{CsvWriter, ParquetReader, SerReader, SerWriter};
    let mut table = ParquetReader::new(std::io::Cursor::new(parquet.clone()))
        .finish()
        .unwrap();
    let mut as_csv = Vec::new();
    CsvWriter::new(&mut as_csv)
        .with_datetime_format(Some("%Y-%m-%dT%H:%M:%S%.6fZ".into()))
        .finish(&mut table)
        .unwrap();
    assert_eq!(
        String::from_utf8(as_csv).unwrap(),
        String::from_utf8(csv).unwrap()
    );
    let entries = crate::exports_api::downloads_audited(&app).await;
    let manifest: Value = serde_json::from_str(&entries[1].details).unwrap();
    assert_eq!(manifest["format"], "parquet");
    assert_eq!(
        manifest["sha256"],
        hex::encode(sha2::Sha256::digest(&parquet)).as_str()
    );
});
