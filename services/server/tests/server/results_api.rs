//! The results endpoint: the same JSON as `pilotgate analyze` on the pilot's
//! export, plus the decision and the withdrawn subjects left out.

use crate::support::Design;
use crate::support::process::{pilotgate, run, text};
use pilotgate_domain::Role;
use serde_json::{Value, json};

api_story!(
    results_equal_the_offline_analysis_of_the_export_and_carry_a_decision,
    |app| {
        let design = Design::new("hero")
            .guardrails(&[("refund", "binary"), ("basket", "sum")])
            .with("attribution_window_hours", json!(1))
            .with("baseline_rate", json!(0.3));
        app.start_pilot(design.json()).await;
        let earlier = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
        let users: Vec<String> = (0..240).map(|i| format!("user{i}@example.com")).collect();
        for chunk in users.chunks(100) {
            let records: Vec<Value> = chunk.iter().map(|u| json!({"user_id": u, "purpose": "personalize.content", "basis": "consent", "status": "granted",
            "notice_id": "pn", "notice_version": 1, "source": {"channel": "app", "method": "tap"}, "collected_at": earlier})).collect();
            app.post_ok(
                "/api/v1/consents",
                Role::Ingest,
                json!({"records": records}),
            )
            .await;
        }
        let mut events = Vec::new();
        for (i, user) in users.iter().enumerate() {
            let assigned = app
                .post_ok(
                    "/api/v1/assign",
                    Role::Ingest,
                    json!({"experiment": "hero", "user_id": user}),
                )
                .await;
            let converts = if assigned["variant"] == "v1" {
                i % 5 < 2
            } else {
                i % 5 < 1
            };
            if converts {
                events.push(json!({"event_id": format!("p{i}"), "user_id": user, "name": "purchase", "value": 1.0, "occurred_at": chrono::Utc::now().to_rfc3339()}));
            }
            if i % 17 == 0 {
                events.push(json!({"event_id": format!("r{i}"), "user_id": user, "name": "refund", "occurred_at": chrono::Utc::now().to_rfc3339()}));
            }
            // Sums with fractions, several per user, and some outside the
            // one-hour attribution window (too late, or before assignment).
            for k in 0..(i % 3) {
                let at = match (i + k) % 7 {
                    0 => chrono::Utc::now() + chrono::Duration::hours(2),
                    1 => chrono::Utc::now() - chrono::Duration::minutes(10),
                    _ => chrono::Utc::now(),
                };
                events.push(json!({"event_id": format!("b{i}-{k}"), "user_id": user, "name": "basket",
                    "value": (i % 11) as f64 * 3.7 + k as f64 * 0.25, "occurred_at": at.to_rfc3339()}));
            }
        }
        app.post_ok("/api/v1/events", Role::Ingest, json!({"events": events}))
            .await;
        app.post_ok("/api/v1/consents", Role::Ingest, json!({"user_id": users[3], "purpose": "personalize.content", "basis": "consent", "status": "withdrawn",
        "notice_id": "pn", "notice_version": 1, "source": {"channel": "app", "method": "tap"}, "collected_at": chrono::Utc::now().to_rfc3339()})).await;

        let results: Value = app
            .get_json("/api/v1/experiments/hero/results", Some(Role::Analyst))
            .await;
        assert_eq!(results["metric"], "purchase");
        let users_analysed: u64 = results["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["users"].as_u64().unwrap())
            .sum();
        assert_eq!(users_analysed, 239, "the withdrawn subject is left out");
        assert_eq!(
            results["withdrawn"]["by_variant"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
                .sum::<u64>(),
            1
        );
        assert!(
            ["scale", "do_not_scale", "keep_running", "invalid"]
                .contains(&results["decision"]["outcome"].as_str().unwrap())
        );
        assert!(
            !results["decision"]["reasons"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        assert_eq!(results["guardrails"][0]["metric"], "refund");
        assert_eq!(results["planned_sample_size_per_variant"], 3947);

        // The same numbers as `pilotgate analyze` on the export.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("export");
        let export = run(pilotgate(dir.path(), Some(&app.db.url))
            .args([
                "export",
                "--break-glass",
                "offline check",
                "--experiment",
                "hero",
                "--out",
            ])
            .arg(&out));
        assert!(export.status.success(), "{}", text(&export.stderr));
        let analyze = |args: &[&str]| -> Value {
            let output = run(pilotgate(dir.path(), None)
                .arg("analyze")
                .args(args)
                .args(["--format", "json", "--assignments"])
                .arg(out.join("assignments.csv"))
                .arg("--events")
                .arg(out.join("events.csv")));
            assert!(output.status.success(), "{}", text(&output.stderr));
            serde_json::from_slice(&output.stdout).unwrap()
        };
        let offline = analyze(&["--metric", "purchase"]);
        for field in ["variants", "comparisons", "srm", "excluded"] {
            assert_eq!(
                results[field], offline[field],
                "{field} differs between the endpoint and the offline analysis"
            );
        }
        let basket = analyze(&["--metric", "basket", "--kind", "sum", "--window-hours", "1"]);
        let endpoint = &results["guardrails"][1];
        assert_eq!(endpoint["metric"], "basket");
        for (got, want) in endpoint["variants"]
            .as_array()
            .unwrap()
            .iter()
            .zip(basket["variants"].as_array().unwrap())
        {
            assert_eq!(got["users"], want["users"]);
            for field in ["sum", "sum_squares", "mean", "variance"] {
                let (g, w) = (got[field].as_f64().unwrap(), want[field].as_f64().unwrap());
                assert!(
                    (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                    "basket {field}: {g} vs {w}"
                );
            }
        }
        assert!(basket["variants"][0]["sum"].as_f64().unwrap() > 0.0);
        // Everyone was assigned today: the cumulative series has one day,
        // and that day is the whole analysis.
        let cumulative = results["cumulative"].as_array().unwrap();
        assert_eq!(cumulative.len(), 1);
        assert_eq!(
            cumulative[0]["day"],
            chrono::Utc::now().format("%Y-%m-%d").to_string()
        );
        assert_eq!(cumulative[0]["comparisons"], results["comparisons"]);
        for variant in results["variants"].as_array().unwrap() {
            let name = variant["variant"].as_str().unwrap();
            assert_eq!(cumulative[0]["users"][name], variant["users"], "{name}");
        }

        let sequential: Value = app
            .get(
                "/api/v1/experiments/hero/results?method=sequential&metric=refund",
                Some(Role::Marketer),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            (sequential["method"].as_str(), sequential["metric"].as_str()),
            (Some("sequential"), Some("refund"))
        );
        let bad = app
            .get(
                "/api/v1/experiments/hero/results?metric=page_view",
                Some(Role::Compliance),
            )
            .await;
        assert_eq!(bad.status(), 422);
        assert_eq!(
            app.get("/api/v1/experiments/hero/results", Some(Role::Ingest))
                .await
                .status(),
            403
        );
    }
);
