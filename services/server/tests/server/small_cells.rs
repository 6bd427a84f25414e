//! Small-cell suppression swept over every view of one pilot: with the
//! production minimum cell size (k = 10) and a pilot whose withdrawals,
//! refusals, treatment conversions and guardrail events are fewer than k,
//! no page, route or download releases a count under k, the suppressed
//! ones are `null` with `"suppressed": true`, and no suppressed count can be
//! recomputed from the released ones (rows, totals and the views together).

use std::collections::BTreeMap;

use pilotgate_analysis::disclosure::MinCell;
use pilotgate_domain::Role;
use serde_json::{Value, json};

use crate::support::{Design, TestApp};

const K: u64 = 10;

/// A server with the production minimum cell size.
async fn spawn(dialect: pilotgate_store::Dialect) -> Option<TestApp> {
    TestApp::spawn_with(
        dialect,
        pilotgate_store::testing::test_key_ring(),
        |config| config.min_cell = MinCell::new(K).expect("k is positive"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_view_of_a_pilot_with_small_cells_releases_a_count_under_k_on_sqlite() {
    let app = spawn(pilotgate_store::Dialect::Sqlite)
        .await
        .expect("sqlite");
    sweep(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_view_of_a_pilot_with_small_cells_releases_a_count_under_k_on_postgres() {
    match spawn(pilotgate_store::Dialect::Postgres).await {
        Some(app) => sweep(app).await,
        None => eprintln!("skipped: set PILOTGATE_TEST_POSTGRES_URL to run on PostgreSQL"),
    }
}

/// What the pilot holds, as the test made it.
struct Truth {
    /// Users per variant who stayed.
    analysed: BTreeMap<String, u64>,
    /// Users per variant who withdrew.
    withdrawn: BTreeMap<String, u64>,
}

fn consent(user: &str, status: &str, at: &str) -> Value {
    json!({"user_id": user, "purpose": "personalize.content", "basis": "consent", "status": status,
        "notice_id": "pn", "notice_version": 1, "source": {"channel": "app", "method": "tap"}, "collected_at": at})
}

/// A pilot of 60 consenting users, 5 of them on a tablet: the control
/// converts often, the treatment three times; one refund; two control
/// users withdraw and one treatment user is erased; three users without
/// consent are refused.
async fn small_pilot(app: &TestApp) -> Truth {
    let design = Design::new("small")
        .guardrails(&[("refund", "binary")])
        .with("data_categories", json!(["orders", "device"]))
        .with("segments", json!(["device_type"]));
    app.start_pilot(design.json()).await;
    let earlier = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
    let users: Vec<String> = (0..60).map(|i| format!("shopper{i}@example.com")).collect();
    let records: Vec<Value> = users
        .iter()
        .map(|u| consent(u, "granted", &earlier))
        .collect();
    app.post_ok(
        "/api/v1/consents",
        Role::Ingest,
        json!({"records": records}),
    )
    .await;
    let mut by_variant: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, user) in users.iter().enumerate() {
        let device = if i < 5 { "tablet" } else { "mobile" };
        let response = app
            .post(
                "/api/v1/assign",
                Role::Ingest,
                json!({"experiment": "small", "user_id": user, "attributes": {"device_type": device}}),
            )
            .await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.expect("json");
        let variant = answer["variant"].as_str().expect("assigned").to_owned();
        by_variant.entry(variant).or_default().push(user.clone());
    }
    for stranger in [
        "nobody1@example.com",
        "nobody2@example.com",
        "nobody3@example.com",
    ] {
        let answer = app.assign("small", stranger).await;
        assert!(answer["variant"].is_null(), "no consent, no assignment");
    }
    let control = &by_variant["control"];
    let treatment = &by_variant["v1"];
    assert!(
        control.len() >= 2 * K as usize + 2 && treatment.len() > K as usize,
        "the split leaves enough users in each variant: {} and {}",
        control.len(),
        treatment.len()
    );
    let now = chrono::Utc::now().to_rfc3339();
    let mut events = Vec::new();
    // Half the control converts (both counts at least k); three treatment users do.
    let converting = control
        .iter()
        .skip(2)
        .take((control.len() - 2) / 2)
        .chain(treatment.iter().take(3));
    for (i, user) in converting.enumerate() {
        events.push(json!({"event_id": format!("p{i}"), "user_id": user, "name": "purchase", "value": 1.0, "occurred_at": now}));
    }
    events.push(
        json!({"event_id": "r0", "user_id": treatment[5], "name": "refund", "occurred_at": now}),
    );
    app.post_ok("/api/v1/events", Role::Ingest, json!({"events": events}))
        .await;
    let later = chrono::Utc::now().to_rfc3339();
    for user in control.iter().take(2) {
        app.post_ok(
            "/api/v1/consents",
            Role::Ingest,
            consent(user, "withdrawn", &later),
        )
        .await;
    }
    let erased = treatment.last().expect("a treatment user");
    app.post_ok(
        &format!(
            "/api/v1/subjects/{}/erasure",
            crate::support::pseudonym(erased)
        ),
        Role::Compliance,
        json!({}),
    )
    .await;
    let count = |users: &Vec<String>, gone: u64| users.len() as u64 - gone;
    Truth {
        analysed: BTreeMap::from([
            ("control".to_owned(), count(control, 2)),
            ("v1".to_owned(), count(treatment, 1)),
        ]),
        withdrawn: BTreeMap::from([("control".to_owned(), 2), ("v1".to_owned(), 0)]),
    }
}

/// Every number under a key that counts people, anywhere in `value`, with
/// its path: each must be 0 or at least k.
fn counts_of_people(value: &Value, path: &str, out: &mut Vec<(String, u64)>) {
    const PEOPLE: [&str; 11] = [
        "basis_counts",
        "users",
        "subjects",
        "count",
        "assigned",
        "withdrawn",
        "total",
        "erasures",
        "withdrawn_left_out",
        "assignments",
        "by_variant",
    ];
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let here = format!("{path}.{key}");
                let counts_people = PEOPLE.contains(&key.as_str())
                    || PEOPLE.iter().any(|p| path.ends_with(&format!(".{p}")));
                match inner {
                    Value::Number(n) if counts_people => {
                        out.push((here.clone(), n.as_u64().unwrap_or(u64::MAX)));
                    }
                    _ => counts_of_people(inner, &here, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                counts_of_people(item, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn assert_no_small_count(what: &str, value: &Value) {
    let mut counts = Vec::new();
    counts_of_people(value, "", &mut counts);
    assert!(!counts.is_empty(), "{what} counts people somewhere");
    for (path, n) in counts {
        assert!(n == 0 || n >= K, "{what} releases {n} at {path}");
    }
}

/// The integers a page shows in its number cells and count sentences.
fn page_counts(html: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for (open, close) in [
        ("<td class=\"num\">", "</td>"),
        ("<strong>", "</strong>"),
        ("(", " in total)"),
    ] {
        for piece in html.split(open).skip(1) {
            if let Some(text) = piece.split(close).next() {
                let digits = text.replace(',', "");
                if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
                    out.push(digits.parse().expect("digits"));
                }
            }
        }
    }
    for sentence in html.split(". ") {
        let number = sentence
            .split(" withdrawn subject")
            .next()
            .and_then(|s| s.rsplit(['>', ' ']).next())
            .filter(|_| sentence.contains(" withdrawn subject"))
            .and_then(|number| number.replace(',', "").parse::<u64>().ok());
        out.extend(number);
    }
    out
}

async fn cookie_of(app: &TestApp) -> String {
    app.sign_in(&app.tokens[&Role::Compliance]).await
}

fn assert_page_has_no_small_count(what: &str, html: &str) {
    for n in page_counts(html) {
        assert!(n == 0 || n >= K, "{what} shows {n}");
    }
}

async fn sweep(app: TestApp) {
    let truth = small_pilot(&app).await;

    // The results, every method, the primary metric and the guardrail.
    let mut shown_days: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for method in ["frequentist", "sequential", "bayesian"] {
        for metric in ["purchase", "refund"] {
            let results: Value = app
                .get_json(
                    &format!("/api/v1/experiments/small/results?method={method}&metric={metric}"),
                    Some(Role::Analyst),
                )
                .await;
            let what = format!("the {method} results of {metric}");
            // The days shown are the same whatever the metric: two series
            // showing different days would tell who came between them.
            let days: Vec<String> = results["cumulative"]
                .as_array()
                .expect("a series")
                .iter()
                .filter(|d| d["suppressed"] != true)
                .map(|d| d["day"].as_str().expect("a day").to_owned())
                .collect();
            if let Some(other) = shown_days.insert(method.to_owned(), days.clone())
                && metric == "refund"
            {
                assert_eq!(other, days, "{what}: the days shown differ by metric");
            }

            assert_no_small_count(&what, &results);
            assert_eq!(results["min_cell"], K);
            let treatment = &results["variants"][1];
            assert_eq!(treatment["variant"], "v1");
            assert_eq!(treatment["suppressed"], true, "{what}: few conversions");
            assert!(
                treatment["sum"].is_null() && treatment["mean"].is_null(),
                "{what}"
            );
            assert_eq!(
                treatment["users"], truth.analysed["v1"],
                "{what}: enough users"
            );
            assert_eq!(results["comparisons"][0]["suppressed"], true, "{what}");
            assert!(results["comparisons"][0]["relative"].is_null(), "{what}");
            for day in results["cumulative"].as_array().expect("a series") {
                assert!(
                    day["comparisons"]
                        .as_array()
                        .is_none_or(|c| c.iter().all(|c| c["relative"].is_null()))
                );
            }
            let withdrawn = &results["withdrawn"];
            assert!(truth.withdrawn["control"] < K);
            assert!(
                withdrawn["by_variant"]["control"].is_null(),
                "{what}: 2 withdrew"
            );
            assert!(
                withdrawn["total"].is_null(),
                "{what}: the total minus 0 tells 2"
            );
            assert_eq!(withdrawn["suppressed"], true);
            assert!(withdrawn["imbalance"].is_null());
            assert_eq!(results["decision"]["outcome"], "keep_running");
            let attrition = &results["attrition"];
            assert_eq!(attrition["suppressed"], true, "{what}");
            assert!(
                attrition["by_variant"]["control"]["withdrawn"].is_null(),
                "{what}"
            );
            assert!(
                attrition["by_variant"]["v1"]["erased"].is_null(),
                "{what}: 1 erased"
            );
            assert!(attrition["imbalance"].is_null(), "{what}");
            let every_users = results["variants"]
                .as_array()
                .expect("variants")
                .iter()
                .all(|v| v["users"].is_u64());
            assert_eq!(
                results["sequential_srm"].is_object(),
                every_users,
                "{what}: the anytime-valid SRM goes with the users: {}",
                results["variants"]
            );
            let refusals = &attrition["refusals"];
            assert!(refusals["independence"].is_null(), "{what}: 3 refusals");
        }
    }
    let results: Value = app
        .get_json("/api/v1/experiments/small/results", Some(Role::Analyst))
        .await;
    let control_users = results["variants"][0]["users"].as_u64();
    assert!(
        results["variants"][0]["mean"].is_number(),
        "the control's own figures are released"
    );

    // The segment results: the tablet value is small; with the pilot's
    // users released, no variant may have exactly one value withheld (the
    // pilot's count minus the others would give it).
    let segmented: Value = app
        .get_json(
            "/api/v1/experiments/small/results?segment=device_type",
            Some(Role::Analyst),
        )
        .await;
    assert_no_small_count("the segment results", &segmented);
    let values = segmented["segments"]["values"].as_array().expect("values");
    assert!(values.len() >= 2, "{segmented}");
    for (index, variant) in ["control", "v1"].iter().enumerate() {
        let pilot = segmented["variants"][index]["users"].as_u64();
        let withheld = values
            .iter()
            .filter(|v| v["results"]["variants"][index]["users"].is_null())
            .count();
        assert!(
            pilot.is_none() || withheld != 1,
            "{variant}: one value withheld beside the pilot's {pilot:?}"
        );
        for value in values {
            assert!(value["results"].get("attrition").is_none());
            assert!(
                value["results"]["cumulative"]
                    .as_array()
                    .is_none_or(Vec::is_empty)
            );
        }
    }
    let withheld_assigned = values.iter().filter(|v| v["assigned"].is_null()).count();
    let eligibility: Value = app
        .get_json(
            "/api/v1/experiments/small/eligibility",
            Some(Role::Compliance),
        )
        .await;
    let assigned_total: Option<u64> = ["control", "v1"]
        .iter()
        .map(|v| eligibility["assignments"][v]["assigned"].as_u64())
        .sum();
    assert!(
        withheld_assigned != 1 || assigned_total.is_none(),
        "the values' assigned add up to the pilot's {assigned_total:?}"
    );
    let csv = app
        .get(
            "/api/v1/experiments/small/results/download?format=csv&segment=device_type",
            Some(Role::Analyst),
        )
        .await
        .text()
        .await
        .expect("text");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().expect("a header").clone();
    let users_column = headers.iter().position(|h| h == "users").expect("users");
    for record in reader.records() {
        let record = record.expect("a row");
        if let Ok(n) = record[users_column].parse::<u64>() {
            assert!(n == 0 || n >= K, "the segment CSV releases {n} users");
        }
    }
    let (status, html) = app
        .page(
            &cookie_of(&app).await,
            "/ui/experiments/small?segment=device_type",
        )
        .await;
    assert_eq!(status, 200);
    assert_page_has_no_small_count("the segment page", &html);

    // The re-consent report counts people too.
    let report: Value = app
        .get_json(
            "/api/v1/legal-basis-map/reconsent?days=14",
            Some(Role::Compliance),
        )
        .await;
    assert_eq!(report["min_cell"], K);
    for day in report["days"].as_array().expect("days") {
        for field in [
            "expired",
            "stale_notice",
            "asked",
            "links_issued",
            "came_back",
        ] {
            let n = &day[field];
            assert!(
                n.is_null() || n.as_u64().is_some_and(|n| n == 0 || n >= K),
                "re-consent {field}: {day}"
            );
        }
    }

    // The downloads of the API and of the pages.
    let cookie = app.sign_in(&app.tokens[&Role::Compliance]).await;
    for (path, role) in [
        (
            "/api/v1/experiments/small/results/download?format=csv",
            Some(Role::Analyst),
        ),
        ("/ui/experiments/small/results.csv", None),
    ] {
        let body = match role {
            Some(role) => app.get(path, Some(role)).await.text().await.expect("text"),
            None => app.page(&cookie, path).await.1,
        };
        let mut reader = csv::Reader::from_reader(body.as_bytes());
        let headers = reader.headers().expect("a header").clone();
        let column = |name: &str| headers.iter().position(|h| h == name).expect(name);
        for record in reader.records() {
            let record = record.expect("a row");
            for name in ["users", "sum"] {
                if let Ok(n) = record[column(name)].parse::<f64>() {
                    assert!(n == 0.0 || n >= K as f64, "{path} releases {name} {n}");
                }
            }
            if &record[column("variant")] == "v1" {
                assert_eq!(&record[column("suppressed")], "true");
                assert_eq!(&record[column("sum")], "");
            }
        }
    }
    for path in ["/api/v1/experiments/small/results/download?format=json"] {
        let body: Value = app
            .get(path, Some(Role::Analyst))
            .await
            .json()
            .await
            .expect("json");
        assert_no_small_count(path, &body);
    }
    let (status, body) = app
        .page(&cookie, "/ui/experiments/small/results.json")
        .await;
    assert_eq!(status, 200);
    assert_no_small_count(
        "the results page's JSON download",
        &serde_json::from_str(&body).expect("json"),
    );

    // The eligibility report and the legal-basis map.
    let eligibility: Value = app
        .get_json(
            "/api/v1/experiments/small/eligibility",
            Some(Role::Compliance),
        )
        .await;
    assert_no_small_count("the eligibility report", &eligibility);
    assert_eq!(eligibility["suppressed"], true);
    assert!(eligibility["assignments"]["control"]["withdrawn"].is_null());
    let refused: Vec<&Value> = eligibility["refusals"]
        .as_array()
        .expect("refusals")
        .iter()
        .collect();
    assert!(!refused.is_empty(), "three strangers were refused");
    for refusal in &refused {
        assert!(refusal["count"].is_null() && refusal["suppressed"] == true);
    }
    // Assigned = analysed + withdrawn across the two views: with the
    // withdrawals withheld, the control's assigned count must not be there
    // beside its analysed users.
    let assigned_control = eligibility["assignments"]["control"]["assigned"].as_u64();
    assert!(
        assigned_control.is_none() || control_users.is_none(),
        "assigned {assigned_control:?} minus analysed {control_users:?} tells the withdrawals"
    );
    let cohort_total: Option<u64> = eligibility["cohorts"]
        .as_array()
        .expect("cohorts")
        .iter()
        .filter(|c| c["variant"] == "control")
        .map(|c| c["subjects"].as_u64())
        .sum();
    assert!(
        cohort_total.is_none() || control_users.is_none(),
        "the control's cohorts add up to its assigned subjects"
    );
    let map: Value = app
        .get_json("/api/v1/legal-basis-map", Some(Role::Compliance))
        .await;
    assert_no_small_count("the legal-basis map", &map);
    assert_eq!(map["min_cell"], K);

    // Every page of the pilot, and the pages that list it.
    for path in [
        "/ui/experiments/small".to_owned(),
        "/ui/experiments/small?metric=refund".to_owned(),
        "/ui/experiments/small?method=bayesian".to_owned(),
        "/ui/experiments/small?method=sequential".to_owned(),
        "/ui/experiments/small/memo".to_owned(),
        "/ui/experiments/small/compliance".to_owned(),
        "/ui/experiments".to_owned(),
        "/ui/consents".to_owned(),
    ] {
        let (status, html) = app.page(&cookie, &path).await;
        assert_eq!(status, 200, "{path}");
        assert_page_has_no_small_count(&path, &html);
    }
    let (_, results_page) = app.page(&cookie, "/ui/experiments/small").await;
    assert!(
        results_page.contains("suppressed"),
        "the page marks what it withholds"
    );
    assert!(
        results_page.contains(&format!("fewer than {K} people (&#60; {K})"))
            || results_page.contains(&format!("fewer than {K} people (&lt; {K})"))
    );
    let (_, csv) = app
        .page(&cookie, "/ui/experiments/small/compliance.csv")
        .await;
    for line in csv.lines().skip(1) {
        let subjects = line.rsplit(',').next().expect("a last field");
        if let Ok(n) = subjects.parse::<u64>() {
            assert!(n == 0 || n >= K, "the eligibility CSV releases {n}");
        }
    }

    // The export's manifest, in the audit log.
    crate::exports_api::register_recipient(
        &app,
        "warehouse",
        json!(["personalize.content"]),
        json!(["csv"]),
    )
    .await;
    let request = app
        .post_ok(
            "/api/v1/experiments/small/exports",
            Role::Analyst,
            json!({"recipient": "warehouse", "format": "csv", "reason": "load into the warehouse"}),
        )
        .await;
    let id = request["id"].as_str().expect("an id").to_owned();
    app.post_ok(
        &format!("/api/v1/exports/{id}/approve"),
        Role::Compliance,
        json!({"comment": "contract checked"}),
    )
    .await;
    let response = app
        .get(
            &format!("/api/v1/exports/{id}/download"),
            Some(Role::Analyst),
        )
        .await;
    assert_eq!(response.status(), 200);
    let audit: Value = app
        .get_json(
            "/api/v1/audit?action=export.download",
            Some(Role::Compliance),
        )
        .await;
    let entries = audit["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{audit}");
    let details = &entries[0]["details"];
    let manifest: Value = match details {
        Value::String(text) => serde_json::from_str(text).expect("a manifest"),
        other => other.clone(),
    };
    assert_no_small_count("the export manifest", &manifest);
    assert!(manifest["withdrawn_left_out"].is_null());
    assert_eq!(manifest["suppressed"], true);
    let (_, compliance) = app.page(&cookie, "/ui/experiments/small/compliance").await;
    assert_page_has_no_small_count("the compliance view after the export", &compliance);
}
