//! `pilotgate purge`: pilots stopped longer ago than their retention lose
//! their raw assignments and events, keep results equal to what they were,
//! and every purge is audited; a dry run changes nothing; a purge killed
//! mid-way leaves each pilot untouched or wholly purged, and a rerun finishes.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::support::process::{pilotgate, run, text};
use crate::support::{Design, TestApp};
use pilotgate_domain::Role;
use serde_json::{Value, json};

/// Starts `key` (retention `retention_days`), fills it with consenting
/// users, events of every metric and one withdrawal, then stops it.
async fn stopped_pilot(app: &TestApp, key: &str, retention_days: u32, offset: usize) {
    let design = Design::new(key)
        .guardrails(&[("refund", "binary"), ("basket", "sum")])
        .with("attribution_window_hours", json!(1))
        .with("retention_days", json!(retention_days));
    if offset == 0 {
        app.start_pilot(design.json()).await;
    } else {
        // The purpose is registered already: the rest of `start_pilot`.
        app.post_ok("/api/v1/experiments", Role::Marketer, design.json())
            .await;
        app.post_ok(
            &format!("/api/v1/experiments/{key}/submit"),
            Role::Marketer,
            json!({}),
        )
        .await;
        app.post_ok(
            &format!("/api/v1/experiments/{key}/approve"),
            Role::Compliance,
            json!({"design_version": 1, "comment": "ok"}),
        )
        .await;
        app.post_ok(
            &format!("/api/v1/experiments/{key}/start"),
            Role::Marketer,
            json!({}),
        )
        .await;
    }
    let earlier = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
    let users: Vec<String> = (offset..offset + 60)
        .map(|i| format!("user{i}@example.com"))
        .collect();
    let records: Vec<Value> = users.iter().map(|u| json!({"user_id": u, "purpose": "personalize.content", "basis": "consent", "status": "granted",
        "notice_id": "pn", "notice_version": 1, "source": {"channel": "app", "method": "tap"}, "collected_at": earlier})).collect();
    app.post_ok(
        "/api/v1/consents",
        Role::Ingest,
        json!({"records": records}),
    )
    .await;
    // Every event carries a value: on PostgreSQL a batch mixing events with
    // and without one can fail to bind (a known ingest problem, reported).
    let mut events = Vec::new();
    for (i, user) in users.iter().enumerate() {
        app.post_ok(
            "/api/v1/assign",
            Role::Ingest,
            json!({"experiment": key, "user_id": user}),
        )
        .await;
        let now = chrono::Utc::now().to_rfc3339();
        if i % 3 == 0 {
            events.push(json!({"event_id": format!("{key}-p{i}"), "user_id": user, "name": "purchase", "value": 1.0, "occurred_at": now}));
        }
        if i % 7 == 0 {
            events.push(json!({"event_id": format!("{key}-r{i}"), "user_id": user, "name": "refund", "value": 1.0, "occurred_at": now}));
        }
        for k in 0..(i % 3) {
            events.push(
                json!({"event_id": format!("{key}-b{i}-{k}"), "user_id": user, "name": "basket",
                "value": (i % 11) as f64 * 3.7 + k as f64 * 0.25, "occurred_at": now}),
            );
        }
    }
    app.post_ok("/api/v1/events", Role::Ingest, json!({"events": events}))
        .await;
    app.post_ok("/api/v1/consents", Role::Ingest, json!({"user_id": users[4], "purpose": "personalize.content", "basis": "consent", "status": "withdrawn",
        "notice_id": "pn", "notice_version": 1, "source": {"channel": "app", "method": "tap"}, "collected_at": chrono::Utc::now().to_rfc3339()})).await;
    app.post_ok(
        &format!("/api/v1/experiments/{key}/stop"),
        Role::Marketer,
        json!({}),
    )
    .await;
}

/// Every result of `key` the API answers: the primary metric by each
/// method, and each guardrail.
async fn all_results(app: &TestApp, key: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for query in [
        "",
        "?method=sequential",
        "?method=bayesian",
        "?metric=refund",
        "?metric=basket",
    ] {
        all.push(
            app.get_json(
                &format!("/api/v1/experiments/{key}/results{query}"),
                Some(Role::Analyst),
            )
            .await,
        );
    }
    all
}

/// `a` and `b` are equal, numbers to 1e-9; `raw_data_purged_on` is left out.
fn assert_close(a: &Value, b: &Value, at: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-9 * x.abs().max(1.0), "{at}: {x} != {y}");
        }
        (Value::Object(x), Value::Object(y)) => {
            let keys = |m: &serde_json::Map<String, Value>| {
                m.keys()
                    .filter(|k| *k != "raw_data_purged_on")
                    .cloned()
                    .collect::<Vec<_>>()
            };
            assert_eq!(keys(x), keys(y), "{at}");
            for key in keys(x) {
                assert_close(&x[&key], &y[&key], &format!("{at}.{key}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_close(x, y, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

async fn raw(app: &TestApp, key: &str) -> (u64, u64) {
    let counts = app.db.store.raw_counts(key).await.unwrap();
    (counts.assignments, counts.events)
}

async fn purge_audits(app: &TestApp) -> Vec<Value> {
    app.db
        .store
        .list_audit_before(None, 1_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "experiment.purge")
        .map(|e| {
            let mut details: Value = serde_json::from_str(&e.details).unwrap();
            details["target"] = json!(e.target);
            details
        })
        .collect()
}

fn as_of(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days)).to_rfc3339()
}

api_story!(
    a_purge_past_retention_deletes_the_raw_rows_keeps_the_results_and_audits_the_counts,
    |app| {
        stopped_pilot(&app, "hero", 30, 0).await;
        stopped_pilot(&app, "fresh", 90, 100).await;
        let before = all_results(&app, "hero").await;
        let (hero_raw, fresh_raw) = (raw(&app, "hero").await, raw(&app, "fresh").await);
        assert_eq!(hero_raw.0, 60);
        assert!(hero_raw.1 > 60, "{hero_raw:?}");
        let dir = tempfile::tempdir().unwrap();
        let when = as_of(45);

        let dry = run(pilotgate(dir.path(), Some(&app.db.url)).args([
            "purge",
            "--as-of",
            &when,
            "--dry-run",
        ]));
        assert!(dry.status.success(), "{}", text(&dry.stderr));
        assert_eq!(
            text(&dry.stdout).trim(),
            format!(
                "would purge hero: 60 assignments, {} events (stopped {}, retention 30 days)",
                hero_raw.1,
                chrono::Utc::now().format("%Y-%m-%d")
            )
        );
        assert_eq!(
            raw(&app, "hero").await,
            hero_raw,
            "a dry run deletes nothing"
        );
        assert!(purge_audits(&app).await.is_empty());
        assert!(app.db.store.result_summary("hero").await.unwrap().is_none());

        let purge = run(pilotgate(dir.path(), Some(&app.db.url)).args(["purge", "--as-of", &when]));
        assert!(purge.status.success(), "{}", text(&purge.stderr));
        assert!(
            text(&purge.stdout).starts_with(&format!(
                "purged hero: 60 assignments, {} events",
                hero_raw.1
            )),
            "{}",
            text(&purge.stdout)
        );
        assert!(
            !text(&purge.stdout).contains("fresh"),
            "fresh is within its retention"
        );
        assert_eq!(raw(&app, "hero").await, (0, 0));
        assert_eq!(
            raw(&app, "fresh").await,
            fresh_raw,
            "a pilot within its retention is untouched"
        );

        let after = all_results(&app, "hero").await;
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        for (before, after) in before.iter().zip(&after) {
            assert!(before.get("raw_data_purged_on").is_none());
            assert_eq!(after["raw_data_purged_on"], json!(today));
            assert_close(before, after, "results");
        }
        // The pages say so: the results page and the memo with a banner,
        // the compliance view with what went and when.
        let analyst = app.sign_in(&app.tokens[&Role::Analyst]).await;
        let (status, page) = app.page(&analyst, "/ui/experiments/hero").await;
        assert_eq!(status, 200);
        assert!(
            page.contains(&format!("Raw data purged on {today}")),
            "{page}"
        );
        assert!(!page.contains("No results yet"));
        let (status, memo) = app.page(&analyst, "/ui/experiments/hero/memo").await;
        assert_eq!(status, 200);
        assert!(memo.contains(&format!("Raw data purged on {today}")));
        let (_, fresh_page) = app.page(&analyst, "/ui/experiments/fresh").await;
        assert!(!fresh_page.contains("Raw data purged"));
        let compliance = app.sign_in(&app.tokens[&Role::Compliance]).await;
        let (status, view) = app
            .page(&compliance, "/ui/experiments/hero/compliance")
            .await;
        assert_eq!(status, 200);
        assert!(
            view.contains(&format!(
                "raw data purged on {today}: 60 assignments and {} events deleted",
                hero_raw.1
            )),
            "{view}"
        );
        let (_, fresh_view) = app
            .page(&compliance, "/ui/experiments/fresh/compliance")
            .await;
        let due = (chrono::Utc::now() + chrono::Duration::days(90)).format("%Y-%m-%d");
        assert!(
            fresh_view.contains(&format!("{due} (90 days after the stop)")),
            "{fresh_view}"
        );

        let audits = purge_audits(&app).await;
        assert_eq!(audits.len(), 1);
        assert_eq!(audits[0]["target"], "experiment:hero");
        assert_eq!(
            audits[0]["deleted"],
            json!({"assignments": 60, "events": hero_raw.1})
        );

        // Idempotent: a second run purges nothing and audits nothing.
        let again = run(pilotgate(dir.path(), Some(&app.db.url)).args(["purge", "--as-of", &when]));
        assert!(again.status.success(), "{}", text(&again.stderr));
        assert_eq!(text(&again.stdout), "");
        assert_eq!(purge_audits(&app).await.len(), 1);
        let later = all_results(&app, "hero").await;
        assert_close(&json!(after), &json!(later), "rerun");
        // CUPED with another pre-period than the one kept cannot be computed any more.
        let cuped = app
            .get(
                "/api/v1/experiments/hero/results?cuped=true&lookback_days=7",
                Some(Role::Analyst),
            )
            .await;
        assert_eq!(cuped.status(), 422);
    }
);

api_story!(
    a_purge_killed_mid_way_leaves_each_pilot_whole_and_a_rerun_converges,
    |app| {
        let keys = ["one", "two", "three"];
        let mut before = Vec::new();
        let mut raws = Vec::new();
        for (n, key) in keys.iter().enumerate() {
            stopped_pilot(&app, key, 30, n * 100).await;
            before.push(all_results(&app, key).await);
            raws.push(raw(&app, key).await);
        }
        let dir = tempfile::tempdir().unwrap();
        let when = as_of(45);
        let mut child = pilotgate(dir.path(), Some(&app.db.url))
            .args(["purge", "--as-of", &when])
            .env("PILOTGATE_TEST_PURGE_PAUSE_MS", "1500")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        let reader = tokio::task::spawn_blocking(move || {
            stdout.read_line(&mut first).unwrap();
            first
        });
        let first = reader.await.unwrap();
        assert!(first.starts_with("purged "), "{first}");
        // SIGKILL while the purge waits before its next pilot, or works on it.
        std::thread::sleep(std::time::Duration::from_millis(1_600));
        child.kill().unwrap();
        child.wait().unwrap();

        let mut purged = 0;
        for (key, original) in keys.iter().zip(&raws) {
            let summary = app.db.store.result_summary(key).await.unwrap();
            let now = raw(&app, key).await;
            match summary {
                Some(_) => {
                    assert_eq!(now, (0, 0), "{key} has a summary but raw rows left");
                    purged += 1;
                }
                None => assert_eq!(now, *original, "{key} was half purged"),
            }
        }
        assert!(
            (1..3).contains(&purged),
            "the kill came mid-way: {purged} purged"
        );
        assert_eq!(purge_audits(&app).await.len(), purged);

        let rerun = run(pilotgate(dir.path(), Some(&app.db.url)).args(["purge", "--as-of", &when]));
        assert!(rerun.status.success(), "{}", text(&rerun.stderr));
        assert_eq!(text(&rerun.stdout).lines().count(), 3 - purged);
        for (n, key) in keys.iter().enumerate() {
            assert_eq!(raw(&app, key).await, (0, 0));
            let after = all_results(&app, key).await;
            assert_close(&json!(before[n]), &json!(after), key);
        }
        assert_eq!(purge_audits(&app).await.len(), 3);
    }
);

api_story!(
    the_ledger_of_subjects_with_no_purpose_left_is_reduced_after_the_proof_period,
    |app| {
        use crate::support::pseudonym;
        app.register_purpose().await;
        let record = |user: &str, status: &str, expires: Option<String>| {
            let mut r = json!({"user_id": user, "purpose": "personalize.content", "basis": "consent", "status": status,
                "notice_id": "pn", "notice_version": 1, "source": {"channel": "app", "method": "tap on the banner"},
                "collected_at": chrono::Utc::now().to_rfc3339(), "proof_ref": format!("ticket for {status}")});
            if let Some(at) = expires {
                r["expires_at"] = json!(at);
            }
            r
        };
        let soon = (chrono::Utc::now() + chrono::Duration::days(10)).to_rfc3339();
        let records = vec![
            record("gone@example.com", "granted", None),
            record("kept@example.com", "granted", None),
            record("lapsed@example.com", "granted", Some(soon)),
        ];
        app.post_ok(
            "/api/v1/consents",
            Role::Ingest,
            json!({"records": records}),
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        app.post_ok(
            "/api/v1/consents",
            Role::Ingest,
            record("gone@example.com", "withdrawn", None),
        )
        .await;
        let history = async |user: &str| {
            app.db
                .store
                .consent_history(&[pseudonym(user)])
                .await
                .unwrap()
        };
        let dir = tempfile::tempdir().unwrap();

        // A 30-day proof-keeping period (1095 days by default), so that the
        // remaining grant has not expired yet when the others are reduced.
        let purge = |when: &str, dry: bool| {
            let mut command = pilotgate(dir.path(), Some(&app.db.url));
            command
                .env("PILOTGATE_PROOF_KEEPING_DAYS", "30")
                .args(["purge", "--as-of", when]);
            if dry {
                command.arg("--dry-run");
            }
            run(&mut command)
        };
        // Within the proof-keeping period: nothing.
        let early = purge(&as_of(20), false);
        assert!(early.status.success(), "{}", text(&early.stderr));
        assert_eq!(text(&early.stdout), "");

        let when = as_of(40);
        let dry = purge(&when, true);
        assert!(dry.status.success(), "{}", text(&dry.stderr));
        assert_eq!(
            text(&dry.stdout).trim(),
            "would reduce the consent records of 2 subjects with no purpose left, last recorded over 30 days ago: 3 records"
        );
        assert!(
            history("gone@example.com")
                .await
                .iter()
                .all(|r| r.proof_ref.is_some())
        );

        let reduce = purge(&when, false);
        assert!(reduce.status.success(), "{}", text(&reduce.stderr));
        assert!(text(&reduce.stdout).starts_with("reduced the consent records of 2 subjects"));
        for user in ["gone@example.com", "lapsed@example.com"] {
            for r in history(user).await {
                assert_eq!(r.proof_ref, None, "{user}");
                assert_eq!(r.source_method, "reduced");
                assert_eq!(r.notice_id, "pn");
                assert_eq!(r.subject, pseudonym(user));
            }
        }
        let gone = history("gone@example.com").await;
        assert_eq!(gone.len(), 2, "the history stays");
        assert_eq!(gone[1].status.as_str(), "withdrawn");
        let kept = history("kept@example.com").await;
        assert_eq!(kept[0].proof_ref.as_deref(), Some("ticket for granted"));
        assert_eq!(kept[0].source_method, "tap on the banner");

        let audits: Vec<_> = app
            .db
            .store
            .list_audit_before(None, 1_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "ledger.reduce")
            .collect();
        assert_eq!(audits.len(), 1);
        let details: Value = serde_json::from_str(&audits[0].details).unwrap();
        assert_eq!(
            (details["subjects"].as_u64(), details["records"].as_u64()),
            (Some(2), Some(3))
        );
        assert!(!audits[0].details.contains(&pseudonym("gone@example.com")));

        let again = purge(&when, false);
        assert!(again.status.success());
        assert_eq!(
            text(&again.stdout),
            "",
            "reduced records are not reduced again"
        );
    }
);

api_story!(
    the_purge_scheduled_inside_serve_purges_a_pilot_past_its_retention_on_its_own,
    |app| {
        stopped_pilot(&app, "hero", 1, 0).await;
        let before = all_results(&app, "hero").await;
        assert_eq!(raw(&app, "hero").await.0, 60);
        // Two days on, the pilot is past its one-day retention; the job
        // that `serve` runs (`PILOTGATE_PURGE_INTERVAL`) finds it alone.
        let later = chrono::Utc::now() + chrono::Duration::days(2);
        app.db.store.simulate_time(Some(later));
        pilotgate_server::purge_job::spawn_purging(
            app.db.store.clone(),
            std::time::Duration::from_millis(200),
            pilotgate_domain::ledger_reduction::DEFAULT_PROOF_KEEPING_DAYS,
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while raw(&app, "hero").await != (0, 0) {
            assert!(
                std::time::Instant::now() < deadline,
                "the scheduled purge did not run"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        // Several runs later, the pilot was purged once.
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        let audits = purge_audits(&app).await;
        assert_eq!(audits.len(), 1, "{audits:?}");
        assert_eq!(audits[0]["target"], "experiment:hero");
        let entries = app.db.store.list_audit_before(None, 1_000).await.unwrap();
        let entry = entries
            .iter()
            .find(|e| e.action == "experiment.purge")
            .unwrap();
        assert_eq!(entry.actor, "retention-purge (scheduled)");
        let after = all_results(&app, "hero").await;
        for (before, after) in before.iter().zip(&after) {
            assert_eq!(
                after["raw_data_purged_on"],
                json!(later.format("%Y-%m-%d").to_string())
            );
            assert_close(before, after, "results");
        }
    }
);
