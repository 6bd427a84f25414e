//! Attrition in the results: withdrawals, objections and erasures counted
//! per variant and day, their balance test, the Lee bounds beside the
//! estimate and the `not_decidable` verdict under differential attrition;
//! refusals counted per variant they would have had; the anytime-valid SRM
//! check beside the chi-square one. On simulated differential attrition.

use crate::support::{Design, TestApp, pseudonym};
use pilotgate_domain::Role;
use serde_json::{Value, json};

/// A ledger record of `user` with `status` on the pilots' purpose.
fn record(user: &str, status: &str, at: &str) -> Value {
    json!({"user_id": user, "purpose": "personalize.content", "basis": "consent", "status": status,
        "notice_id": "pn", "notice_version": 1, "source": {"channel": "app", "method": "tap"}, "collected_at": at})
}

async fn say(app: &TestApp, records: Vec<Value>) {
    for chunk in records.chunks(100) {
        app.post_ok("/api/v1/consents", Role::Ingest, json!({"records": chunk}))
            .await;
    }
}

/// Starts the pilot `hero` and grants consent to `n` people named from
/// `prefix`, whom it returns.
async fn granted_pilot(app: &TestApp, prefix: &str, n: usize) -> Vec<String> {
    app.start_pilot(Design::new("hero").json()).await;
    let earlier = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
    let users: Vec<String> = (0..n).map(|i| format!("{prefix}{i}@example.com")).collect();
    say(
        app,
        users
            .iter()
            .map(|u| record(u, "granted", &earlier))
            .collect(),
    )
    .await;
    users
}

/// The Lee bounds of the relative lift for a binary metric, by hand:
/// `(assigned, kept, converted)` per arm; the arm that kept the larger share
/// loses that excess share of its kept subjects, from the top or the bottom.
fn binary_lee_bounds(control: (f64, f64, f64), variant: (f64, f64, f64)) -> [f64; 2] {
    let (q_c, q_v) = (control.1 / control.0, variant.1 / variant.0);
    assert!(q_c > q_v, "the simulation loses more of the variant");
    let trimmed = (q_c - q_v) / q_c * control.1;
    let left = control.1 - trimmed;
    let lowest = (control.2 - trimmed.min(control.2)) / left;
    let highest = control.2 / left;
    let variant_mean = variant.2 / variant.1;
    [variant_mean / highest - 1.0, variant_mean / lowest - 1.0]
}

api_story!(
    differential_attrition_is_counted_bounded_and_not_decidable,
    |app| {
        let users = granted_pilot(&app, "leaver", 300).await;
        let mut events = Vec::new();
        let mut variant_of = Vec::new();
        for (i, user) in users.iter().enumerate() {
            let assigned = app.assign("hero", user).await;
            variant_of.push(assigned["variant"].as_str().unwrap().to_owned());
            if i % 10 < 3 {
                events.push(json!({"event_id": format!("p{i}"), "user_id": user, "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339()}));
            }
        }
        app.post_ok("/api/v1/events", Role::Ingest, json!({"events": events}))
            .await;

        // v1 loses every third of its subjects, converted or not (withdrawn,
        // objected and erased in turn); the control loses two.
        let now = chrono::Utc::now().to_rfc3339();
        let (mut lost_v1, mut lost_control) = (0, 0);
        let mut expected = json!({
            "control": {"withdrawn": 0, "objected": 0, "erased": 0},
            "v1": {"withdrawn": 0, "objected": 0, "erased": 0},
        });
        let mut consents = Vec::new();
        for (i, user) in users.iter().enumerate() {
            let variant = variant_of[i].as_str();
            let cause = match variant {
                "v1" if i % 3 == 0 => {
                    lost_v1 += 1;
                    ["withdrawn", "objected", "erased"][lost_v1 % 3]
                }
                "control" if lost_control < 2 => {
                    lost_control += 1;
                    ["withdrawn", "erased"][lost_control % 2]
                }
                _ => continue,
            };
            let count = expected[variant][cause].as_u64().unwrap();
            expected[variant][cause] = json!(count + 1);
            if cause == "erased" {
                app.post_ok(
                    &format!("/api/v1/subjects/{}/erasure", pseudonym(user)),
                    Role::Compliance,
                    json!({}),
                )
                .await;
            } else {
                consents.push(record(user, cause, &now));
            }
        }
        say(&app, consents).await;
        // Ten people without consent are refused; they count under the
        // variant they would have had.
        for i in 0..10 {
            let refused = app
                .assign("hero", &format!("stranger{i}@example.com"))
                .await;
            assert_eq!(refused["eligible"], false);
        }

        let results = app
            .get_json("/api/v1/experiments/hero/results", Some(Role::Analyst))
            .await;
        let attrition = &results["attrition"];
        for variant in ["control", "v1"] {
            let got = &attrition["by_variant"][variant];
            for cause in ["withdrawn", "objected", "erased"] {
                assert_eq!(
                    got[cause], expected[variant][cause],
                    "{variant} {cause}: {got}"
                );
            }
            let assigned = variant_of.iter().filter(|v| *v == variant).count();
            assert_eq!(
                got["assigned"],
                json!(assigned),
                "{variant}: erased ones included"
            );
        }
        assert_eq!(
            attrition["imbalance"]["mismatch"], true,
            "objections and erasures count in the balance test: {attrition}"
        );
        let series = attrition["series"].as_array().unwrap();
        let last = &series.last().unwrap()["variants"]["v1"];
        assert_eq!(last["assigned"], attrition["by_variant"]["v1"]["assigned"]);
        assert!(last["lost_share"].as_f64().unwrap() > 0.25, "{last}");

        // The Lee bounds beside the estimate, as computed by hand from the
        // counts the results report.
        let arm = |variant: &str| {
            let row = results["variants"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["variant"] == variant)
                .unwrap();
            (
                attrition["by_variant"][variant]["assigned"]
                    .as_f64()
                    .unwrap(),
                row["users"].as_f64().unwrap(),
                row["sum"].as_f64().unwrap(),
            )
        };
        let want = binary_lee_bounds(arm("control"), arm("v1"));
        let bounds = &attrition["lee_bounds"][0];
        assert_eq!(bounds["variant"], "v1");
        assert_eq!(bounds["trimmed"], "control");
        for (got, want) in bounds["relative"].as_array().unwrap().iter().zip(want) {
            assert!(
                (got.as_f64().unwrap() - want).abs() < 1e-12,
                "{bounds} vs {want:?}"
            );
        }
        assert!(
            want[0] < 0.0 && want[1] > 0.0,
            "{want:?}: {} {attrition}",
            results["variants"]
        );
        assert_eq!(results["decision"]["outcome"], "not_decidable");
        let reason = results["decision"]["reasons"][0].as_str().unwrap();
        assert!(
            reason.starts_with("not decidable: differential attrition"),
            "{reason}"
        );

        let refusals = &attrition["refusals"];
        let refused: u64 = ["control", "v1"]
            .iter()
            .map(|v| refusals["by_variant"][v].as_u64().unwrap())
            .sum();
        assert_eq!(refused, 10);
        assert_eq!(refusals["independence"]["mismatch"], false, "{refusals}");
        let sequential = &results["sequential_srm"];
        assert_eq!(sequential["mismatch"], false, "{sequential}");
        assert!(sequential["p_value"].as_f64().unwrap() <= 1.0);

        let analyst = app.sign_in(&app.tokens[&Role::Analyst]).await;
        let (status, page) = app.page(&analyst, "/ui/experiments/hero").await;
        assert_eq!(status, 200);
        for shown in [
            "Decision: Not decidable",
            "Attrition imbalance",
            "Lee bounds",
            "Sample ratio OK (anytime-valid)",
            "Refusals independent of the variant",
        ] {
            assert!(page.contains(shown), "{shown}");
        }
    }
);

api_story!(
    even_attrition_leaves_the_decision_to_the_usual_rules,
    |app| {
        let users = granted_pilot(&app, "stayer", 120).await;
        for user in &users {
            app.assign("hero", user).await;
        }
        let now = chrono::Utc::now().to_rfc3339();
        say(&app, vec![record(&users[0], "objected", &now)]).await;
        let results = app
            .get_json("/api/v1/experiments/hero/results", Some(Role::Analyst))
            .await;
        let attrition = &results["attrition"];
        let objected: u64 = ["control", "v1"]
            .iter()
            .map(|v| attrition["by_variant"][v]["objected"].as_u64().unwrap())
            .sum();
        assert_eq!(objected, 1);
        assert_eq!(attrition["imbalance"]["mismatch"], false, "{attrition}");
        assert_ne!(results["decision"]["outcome"], "not_decidable");
        assert_eq!(
            attrition["refusals"]["independence"],
            Value::Null,
            "no refusal, no test"
        );
    }
);

api_story!(
    a_variant_dependent_refusal_rule_is_caught_by_the_refusal_check,
    |app| {
        // The injected rule decides eligibility after bucketing: it denies
        // consent to most of the people the hash puts into `v1` and to few
        // of the control's. pilotgate decides eligibility before bucketing,
        // so only a rule like this one could make refusals follow the
        // variant; the check must catch it.
        let users = granted_pilot(&app, "ruled", 0).await;
        assert!(users.is_empty());
        let earlier = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
        let people: Vec<String> = (0..400).map(|i| format!("ruled{i}@example.com")).collect();
        let mut records = Vec::new();
        let mut denied = [0_u64; 2];
        for (i, user) in people.iter().enumerate() {
            let hash = pilotgate_domain::bucketing::hash_v2("hero", &pseudonym(user));
            let variant = pilotgate_domain::bucketing::choose_variant(hash, 1.0, &[1.0, 1.0])
                .expect("full coverage");
            let deny = if variant == 1 { i % 5 < 3 } else { i % 10 == 0 };
            denied[variant] += u64::from(deny);
            let status = if deny { "denied" } else { "granted" };
            records.push(record(user, status, &earlier));
        }
        say(&app, records).await;
        for user in &people {
            app.assign("hero", user).await;
        }
        let results = app
            .get_json("/api/v1/experiments/hero/results", Some(Role::Analyst))
            .await;
        let refusals = &results["attrition"]["refusals"];
        assert_eq!(refusals["by_variant"]["control"], denied[0], "{refusals}");
        assert_eq!(refusals["by_variant"]["v1"], denied[1], "{refusals}");
        assert_eq!(refusals["independence"]["mismatch"], true, "{refusals}");
        assert!(refusals["independence"]["p_value"].as_f64().unwrap() < 1e-6);
        let analyst = app.sign_in(&app.tokens[&Role::Analyst]).await;
        let (_, page) = app.page(&analyst, "/ui/experiments/hero").await;
        assert!(page.contains("Refusals depend on the variant"));
    }
);
