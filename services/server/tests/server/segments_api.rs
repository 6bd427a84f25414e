//! Pre-registered segments: a design names segments of the inventory's
//! vocabulary before it starts, assignment takes attributes of those
//! segments only, and the results, the page, the CSV and the memo break the
//! metric down per segment value with p-values adjusted across values and
//! variants (`.ci/segment_oracle.py` checks the numbers against gbstats).

use crate::support::{Design, TestApp, assert_json_error};
use pilotgate_domain::Role;
use serde_json::{Value, json};

/// A design on `personalize.content` that pre-registers `segments` (with
/// the device and location categories they need) under `correction`.
fn segmented(key: &str, segments: &[&str], correction: &str) -> Design {
    Design::new(key)
        .with("data_categories", json!(["orders", "device", "location"]))
        .with("segments", json!(segments))
        .with("segment_correction", json!(correction))
}

/// Grants consent to `users` a few seconds ago.
async fn consent(app: &TestApp, users: &[String]) {
    let earlier = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
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
}

const DEVICES: [&str; 3] = ["desktop", "mobile", "tablet"];

/// Starts pilot `key` with `variants`, assigns `n` people with a device
/// (every seventh without one) and a country, and records purchases that
/// differ by variant and device.
async fn run_segmented_pilot(app: &TestApp, key: &str, variants: &[&str], n: usize) {
    app.start_pilot(
        segmented(key, &["device_type", "country", "legal_basis"], "holm")
            .variants(variants)
            .guardrails(&[("refund", "binary")])
            .json(),
    )
    .await;
    let users: Vec<String> = (0..n).map(|i| format!("{key}-person{i}")).collect();
    consent(app, &users).await;
    let mut events = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let mut attributes = json!({"country": if i % 2 == 0 { "DE" } else { "FR" }});
        if i % 7 != 0 {
            attributes["device_type"] = json!(DEVICES[i % 3]);
        }
        let assigned = app
            .post_ok(
                "/api/v1/assign",
                Role::Ingest,
                json!({"experiment": key, "user_id": user, "attributes": attributes}),
            )
            .await;
        let treated = assigned["variant"] != "control";
        let converts = (i * 7919) % 10 < if treated { 4 } else { 2 } + (i % 3 == 1) as usize;
        let at = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
        if converts {
            events.push(json!({"event_id": format!("p{i}"), "user_id": user, "name": "purchase", "value": 1.0, "occurred_at": at}));
        }
        if i % 11 == 0 {
            events.push(json!({"event_id": format!("r{i}"), "user_id": user, "name": "refund", "occurred_at": at}));
        }
    }
    app.post_ok("/api/v1/events", Role::Ingest, json!({"events": events}))
        .await;
}

/// Holm's adjustment of `p`, written out here as statsmodels computes it.
fn holm(p: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|a, b| p[*a].total_cmp(&p[*b]));
    let mut adjusted = vec![0.0; p.len()];
    let mut running: f64 = 0.0;
    for (rank, index) in order.into_iter().enumerate() {
        running = running.max((p.len() - rank) as f64 * p[index]);
        adjusted[index] = running.min(1.0);
    }
    adjusted
}

api_story!(
    assignment_takes_only_the_attributes_of_declared_segments,
    |app| {
        app.start_pilot(segmented("hero", &["device_type", "legal_basis"], "holm").json())
            .await;
        let users: Vec<String> = (0..3).map(|i| format!("shopper{i}@example.com")).collect();
        consent(&app, &users).await;
        let assign = |user: &str, attributes: Value| {
            app.post(
                "/api/v1/assign",
                Role::Ingest,
                json!({"experiment": "hero", "user_id": user, "attributes": attributes}),
            )
        };

        let refusals = [
            (
                json!({"country": "DE"}),
                "not a segment this pilot declared",
            ),
            (
                json!({"email": "shopper0@example.com"}),
                "not a segment of the inventory",
            ),
            (
                json!({"device_type": "phablet"}),
                "must be desktop, mobile, tablet, other",
            ),
            (json!({"legal_basis": "consent"}), "legal basis"),
            (
                json!({"device_type": "mobile", "country": "DE"}),
                "not a segment this pilot declared",
            ),
        ];
        for (attributes, why) in refusals {
            let body = assert_json_error(assign(&users[0], attributes.clone()).await, 422).await;
            let message = body["message"].as_str().unwrap();
            assert!(message.contains(why), "{attributes}: {message}");
            assert!(
                !message.contains("shopper0"),
                "no value is echoed: {message}"
            );
        }
        assert!(
            app.db
                .store
                .assignments_of("hero")
                .await
                .unwrap()
                .is_empty(),
            "a refused call stores nothing"
        );

        let answer = assign(&users[0], json!({"device_type": "mobile"})).await;
        assert_eq!(answer.status(), 200);
        let plain = assign(&users[1], json!({})).await;
        assert_eq!(plain.status(), 200, "attributes are optional");
        // A repeat keeps the first call's attributes.
        assert_eq!(
            assign(&users[0], json!({"device_type": "desktop"}))
                .await
                .status(),
            200
        );

        let results = app
            .get_json(
                "/api/v1/experiments/hero/results?segment=device_type",
                Some(Role::Analyst),
            )
            .await;
        let values: Vec<(Value, u64)> = results["segments"]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["value"].clone(), v["assigned"].as_u64().unwrap()))
            .collect();
        assert_eq!(values, [(json!("mobile"), 1), (Value::Null, 1)]);
        let by_basis = app
            .get_json(
                "/api/v1/experiments/hero/results?segment=legal_basis",
                Some(Role::Analyst),
            )
            .await;
        assert_eq!(by_basis["segments"]["values"][0]["value"], "consent");
        assert_eq!(by_basis["segments"]["values"][0]["assigned"], 2);

        // What is held about the person (Art. 15) includes the attributes.
        for (user, held) in [
            (&users[0], json!("device_type=mobile")),
            (&users[1], Value::Null),
        ] {
            let document = app
                .get_json(
                    &format!(
                        "/api/v1/subjects/{}/access",
                        crate::support::pseudonym(user)
                    ),
                    Some(Role::Compliance),
                )
                .await;
            assert_eq!(
                document["versions"][0]["assignments"][0]["segment_attributes"], held,
                "{document}"
            );
        }
    }
);

api_story!(
    segments_are_declared_from_the_vocabulary_before_the_pilot_starts,
    |app| {
        app.register_purpose().await;
        let vocabulary = app
            .get_json("/api/v1/data-categories", Some(Role::Marketer))
            .await;
        let names: Vec<&str> = vocabulary["segment_dimensions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["key"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["device_type", "country", "new_vs_returning", "legal_basis"]
        );

        let refused = [
            (
                Design::new("a").with("segments", json!(["income"])),
                "not a segment of the inventory",
            ),
            (
                Design::new("b").with("segments", json!(["country"])),
                "declare 'location'",
            ),
            (
                segmented("c", &["country"], "bonferroni"),
                "must be holm or benjamini_hochberg",
            ),
        ];
        for (design, why) in refused {
            let response = app
                .post("/api/v1/experiments", Role::Marketer, design.json())
                .await;
            let body = assert_json_error(response, 422).await;
            assert!(body["message"].as_str().unwrap().contains(why), "{body}");
        }

        app.post_ok(
            "/api/v1/experiments",
            Role::Marketer,
            segmented("hero", &["country"], "benjamini_hochberg").json(),
        )
        .await;
        for (path, role, body) in [
            ("/api/v1/experiments/hero/submit", Role::Marketer, json!({})),
            (
                "/api/v1/experiments/hero/approve",
                Role::Compliance,
                json!({"design_version": 1, "comment": "ok"}),
            ),
            ("/api/v1/experiments/hero/start", Role::Marketer, json!({})),
        ] {
            app.post_ok(path, role, body).await;
        }
        let pilot = app
            .get_json("/api/v1/experiments/hero", Some(Role::Analyst))
            .await;
        assert_eq!(pilot["segments"], json!(["country"]));
        assert_eq!(pilot["segment_correction"], "benjamini_hochberg");

        // No fishing: a running pilot's segments cannot change, and a
        // segment it did not pre-register cannot be asked for.
        let late = app
            .request(
                reqwest::Method::PUT,
                "/api/v1/experiments/hero",
                Some(Role::Marketer),
            )
            .json(&segmented("hero", &["country", "device_type"], "benjamini_hochberg").json())
            .send()
            .await
            .unwrap();
        assert_json_error(late, 409).await;
        let pilot = app
            .get_json("/api/v1/experiments/hero", Some(Role::Analyst))
            .await;
        assert_eq!(pilot["segments"], json!(["country"]), "unchanged");
        let fishing = app
            .get(
                "/api/v1/experiments/hero/results?segment=device_type",
                Some(Role::Analyst),
            )
            .await;
        let body = assert_json_error(fishing, 422).await;
        assert!(
            body["message"].as_str().unwrap().contains("pre-registered"),
            "{body}"
        );
    }
);

api_story!(
    segment_results_adjust_the_primary_metric_across_values_and_variants_but_not_guardrails,
    |app| {
        run_segmented_pilot(&app, "hero", &["control", "v1", "v2"], 240).await;
        let results = app
            .get_json(
                "/api/v1/experiments/hero/results?segment=device_type",
                Some(Role::Analyst),
            )
            .await;
        let segments = &results["segments"];
        assert_eq!(segments["segment"], "device_type");
        assert_eq!(segments["correction"], "holm");
        assert_eq!(segments["adjusted"], true);
        let values = segments["values"].as_array().unwrap();
        let names: Vec<&Value> = values.iter().map(|v| &v["value"]).collect();
        assert_eq!(
            names,
            [
                &json!("desktop"),
                &json!("mobile"),
                &json!("tablet"),
                &Value::Null
            ],
            "the vocabulary's order, the people without the attribute last"
        );

        // Every person is in exactly one value, and each value's results
        // count its own people.
        let whole: u64 = results["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["users"].as_u64().unwrap())
            .sum();
        let parts: u64 = values
            .iter()
            .map(|v| {
                let users: u64 = v["results"]["variants"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x["users"].as_u64().unwrap())
                    .sum();
                assert_eq!(users, v["assigned"].as_u64().unwrap());
                users
            })
            .sum();
        assert_eq!(parts, whole);
        assert_eq!(whole, 240);

        // One family: 4 values × 2 treatments, Holm over all of them.
        let raw: Vec<f64> = values
            .iter()
            .flat_map(|v| v["p_values"].as_array().unwrap().iter())
            .map(|p| p["p_value"].as_f64().unwrap())
            .collect();
        assert_eq!(raw.len(), 8);
        assert_eq!(segments["family_size"], 8);
        let adjusted: Vec<f64> = values
            .iter()
            .flat_map(|v| v["p_values"].as_array().unwrap().iter())
            .map(|p| p["adjusted_p_value"].as_f64().unwrap())
            .collect();
        for (got, want) in adjusted.iter().zip(holm(&raw)) {
            assert!((got - want).abs() < 1e-12, "{adjusted:?}");
        }
        assert!(
            adjusted.iter().zip(&raw).any(|(a, p)| a > p),
            "the correction changes something"
        );
        // The p-value beside each adjusted one is its value's own comparison.
        let mobile = &values[1];
        assert_eq!(
            mobile["p_values"][0]["p_value"],
            mobile["results"]["comparisons"][0]["relative"]["p_value"]
        );

        // A guardrail is not adjusted.
        let refund = app
            .get_json(
                "/api/v1/experiments/hero/results?segment=device_type&metric=refund",
                Some(Role::Analyst),
            )
            .await;
        assert_eq!(refund["segments"]["adjusted"], false);
        assert_eq!(refund["segments"]["family_size"], 0);
        assert!(refund["segments"]["values"][0]["p_values"][0]["adjusted_p_value"].is_null());

        // Segment results are not CUPED-adjusted: asking for both is refused.
        let cuped = app
            .get(
                "/api/v1/experiments/hero/results?segment=device_type&cuped=true",
                Some(Role::Analyst),
            )
            .await;
        assert_json_error(cuped, 422).await;
    }
);

api_story!(the_csv_the_page_and_the_memo_carry_the_segments, |app| {
    run_segmented_pilot(&app, "hero", &["control", "v1"], 120).await;
    let csv = app
        .get(
            "/api/v1/experiments/hero/results/download?format=csv&segment=country",
            Some(Role::Analyst),
        )
        .await;
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("segment,segment_value,metric,"),
        "{header}"
    );
    assert!(
        header.ends_with(",p_value,chance_to_win,suppressed,adjusted_p_value"),
        "{header}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4, "two countries × two variants: {csv}");
    assert!(rows.iter().all(|r| r[0] == "country" && r.len() == 22));
    let treated: Vec<&Vec<&str>> = rows.iter().filter(|r| r[7] == "v1").collect();
    assert_eq!(
        treated.iter().map(|r| r[1]).collect::<Vec<_>>(),
        ["DE", "FR"]
    );
    for row in treated {
        let p: f64 = row[18].parse().unwrap();
        let adjusted: f64 = row[21].parse().unwrap();
        assert!(adjusted >= p && adjusted <= 1.0, "{row:?}");
    }

    let cookie = app.sign_in(&app.tokens[&Role::Analyst]).await;
    let (status, page) = app.page(&cookie, "/ui/experiments/hero").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<select id=\"segment\" name=\"segment\">"),
        "the selector"
    );
    assert!(
        !page.contains("Per segment ·"),
        "no segment until one is chosen"
    );
    let (status, page) = app
        .page(&cookie, "/ui/experiments/hero?segment=device_type")
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("<option value=\"device_type\" selected>"));
    assert!(page.contains("Per segment · device_type"));
    assert!(
        page.contains("Holm–Bonferroni across 4 comparisons"),
        "four device values (one of them unsent) × one treatment"
    );
    assert!(
        page.contains("segment=device_type\" download>"),
        "the downloads keep the segment"
    );

    let (status, memo) = app.page(&cookie, "/ui/experiments/hero/memo").await;
    assert_eq!(status, 200);
    assert!(memo.contains("Pre-registered segments"));
    for segment in ["device_type", "country", "legal_basis"] {
        assert!(
            memo.contains(&format!("Per {segment} value and variant")),
            "{segment}"
        );
    }
});
