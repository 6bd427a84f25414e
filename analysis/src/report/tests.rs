//! Tests of `report`.

use std::path::PathBuf;

use super::*;

fn case(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/cases")).join(name)
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-9 + 1e-6 * want.abs()
}

/// Every `expected.json` key (`kind/method[/cuped]`) of every reference case, to 1e-6 relative.
#[test]
fn every_reference_case_matches_gbstats() {
    let mut checked = 0;
    for name in ["two-arms", "three-arms", "srm"] {
        let dir = case(name);
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
                .unwrap();
        for (key, want) in expected.as_object().unwrap() {
            let parts: Vec<&str> = key.split('/').collect();
            let outcome = if parts[0] == "binary" {
                Outcome::Binary
            } else {
                Outcome::Sum
            };
            let method = match parts[1] {
                "frequentist" => Method::Frequentist,
                "sequential" => Method::SEQUENTIAL_DEFAULT,
                _ => Method::BAYESIAN_FLAT,
            };
            let covariate = dir.join("covariate.csv");
            let spec = PipelineSpec {
                assignments: &dir.join("assignments.csv"),
                events: &dir.join("events.csv"),
                covariate: (parts.get(2) == Some(&"cuped")).then_some(covariate.as_path()),
                metric: "purchase",
                outcome,
                window_hours: None,
            };
            let options = AnalyzeOptions {
                method,
                control: "control".to_owned(),
                alpha: 0.05,
                weights: vec![],
            };
            let got = analyze(&spec, &options).unwrap();
            let json = serde_json::to_value(&got).unwrap();
            assert!(
                close(got.srm.unwrap().p_value, want["srm_p"].as_f64().unwrap()),
                "{name} {key} srm"
            );
            for (variant, w) in want["variants"].as_object().unwrap() {
                let g = got.variants.iter().find(|v| &v.variant == variant).unwrap();
                assert_eq!(g.users, w["users"].as_u64());
                assert!(
                    close(g.mean.unwrap(), w["mean"].as_f64().unwrap()),
                    "{name} {key} {variant} mean"
                );
            }
            for (variant, effects) in want["comparisons"].as_object().unwrap() {
                let g = json["comparisons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["variant"] == variant.as_str())
                    .unwrap();
                for (effect, fields) in effects.as_object().unwrap() {
                    for (field, value) in fields.as_object().unwrap() {
                        let got_value = &g[effect][field];
                        match value {
                            serde_json::Value::Array(bounds) => {
                                for (i, bound) in bounds.iter().enumerate() {
                                    let got_bound = got_value[i].as_f64().unwrap();
                                    assert!(
                                        close(got_bound, bound.as_f64().unwrap()),
                                        "{name} {key} {variant} {effect} {field}[{i}]: {got_bound} vs {bound}"
                                    );
                                }
                            }
                            _ => {
                                let got_number = got_value.as_f64().unwrap();
                                assert!(
                                    close(got_number, value.as_f64().unwrap()),
                                    "{name} {key} {variant} {effect} {field}: {got_number} vs {value}"
                                );
                            }
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 200, "only {checked} values were compared");
}

#[test]
fn a_missing_control_is_refused_naming_the_assignments_file() {
    let dir = case("two-arms");
    let spec = PipelineSpec {
        assignments: &dir.join("assignments.csv"),
        events: &dir.join("events.csv"),
        covariate: None,
        metric: "purchase",
        outcome: Outcome::Binary,
        window_hours: None,
    };
    let options = AnalyzeOptions {
        method: Method::Frequentist,
        control: "baseline".to_owned(),
        alpha: 0.05,
        weights: vec![],
    };
    let error = analyze(&spec, &options).unwrap_err().to_string();
    assert!(
        error.ends_with(
            "assignments.csv: no users in the control 'baseline' (choose it with --control)"
        ),
        "{error}"
    );
}

fn day(day: i64, variant: &str, users: u64, sum: f64) -> (i64, VariantSums) {
    (day, VariantSums::plain(variant, users, sum, sum))
}

fn frequentist() -> AnalyzeOptions {
    AnalyzeOptions {
        method: Method::Frequentist,
        control: "control".to_owned(),
        alpha: 0.05,
        weights: vec![],
    }
}

#[test]
fn the_cumulative_series_grows_by_assignment_day_and_ends_at_the_whole_analysis() {
    // Day 10: two control users; day 11: the treatment starts; day 12: more of both.
    let daily = vec![
        day(12, "treatment", 2, 1.0),
        day(10, "control", 2, 1.0),
        day(11, "treatment", 1, 1.0),
        day(12, "control", 2, 1.0),
    ];
    let (whole, series) =
        analyze_daily_sums(daily, "purchase", Outcome::Binary, &frequentist()).unwrap();
    let users = |report: &Report| -> Vec<(String, u64)> {
        report
            .variants
            .iter()
            .map(|v| (v.variant.clone(), v.users.unwrap_or(0)))
            .collect()
    };
    assert_eq!(
        series.iter().map(|d| d.day).collect::<Vec<_>>(),
        [10, 11, 12]
    );
    assert_eq!(
        users(&series[0].report),
        [("control".to_owned(), 2), ("treatment".to_owned(), 0)]
    );
    assert_eq!(
        users(&series[1].report),
        [("control".to_owned(), 2), ("treatment".to_owned(), 1)]
    );
    assert_eq!(series[1].report.variants[0].sum, Some(1.0));
    assert_eq!(
        users(&whole),
        [("control".to_owned(), 4), ("treatment".to_owned(), 3)]
    );
    assert_eq!(whole.variants[1].sum, Some(2.0));
    assert_eq!(series[2].report, whole);
}

#[test]
fn days_before_the_control_has_a_user_are_left_out_of_the_series() {
    let daily = vec![day(3, "treatment", 1, 1.0), day(5, "control", 1, 0.0)];
    let (_, series) =
        analyze_daily_sums(daily, "purchase", Outcome::Binary, &frequentist()).unwrap();
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].day, 5);
}

#[test]
fn no_users_at_all_is_an_error_naming_the_control() {
    let error = analyze_daily_sums(Vec::new(), "purchase", Outcome::Binary, &frequentist())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("no users in the control 'control'"),
        "{error}"
    );
}

#[test]
fn the_csv_has_one_row_per_variant_with_the_reports_numbers() {
    let daily = vec![
        day(10, "control", 400, 40.0),
        day(10, "treatment", 400, 60.0),
    ];
    let (report, _) =
        analyze_daily_sums(daily, "purchase", Outcome::Binary, &frequentist()).unwrap();
    let csv = report.csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], CSV_COLUMNS);
    assert_eq!(lines.len(), 3);
    let header: Vec<&str> = lines[0].split(',').collect();
    let row = |n: usize| -> std::collections::HashMap<&str, &str> {
        header.iter().copied().zip(lines[n].split(',')).collect()
    };
    let control = row(1);
    assert_eq!(control["variant"], "control");
    assert_eq!(control["users"], "400");
    assert_eq!(control["relative_estimate"], "");
    let treatment = row(2);
    let relative = report.comparisons[0].relative.as_ref().unwrap();
    assert_eq!(
        treatment["relative_estimate"].parse::<f64>().unwrap(),
        relative.estimate
    );
    assert_eq!(
        treatment["relative_ci_lower"].parse::<f64>().unwrap(),
        relative.ci[0]
    );
    assert_eq!(
        treatment["p_value"].parse::<f64>().unwrap(),
        relative.p_value.unwrap()
    );
}

#[test]
fn daily_sums_with_a_covariate_are_cuped_adjusted_on_every_day() {
    let sums = |variant: &str, shift: f64| VariantSums {
        variant: variant.to_owned(),
        users: 100,
        sum: 500.0 + shift,
        sum_squares: 3_100.0 + 10.0 * shift,
        x_sum: 480.0,
        x_sum_squares: 2_900.0,
        xy_sum: 2_850.0 + 5.0 * shift,
    };
    let daily = vec![
        (10, sums("control", 0.0)),
        (10, sums("treatment", 20.0)),
        (11, sums("control", 0.0)),
        (11, sums("treatment", 20.0)),
    ];
    let (plain, _) =
        analyze_daily_sums(daily.clone(), "purchase", Outcome::Sum, &frequentist()).unwrap();
    let (adjusted, days) =
        analyze_daily_sums_with(daily, "purchase", Outcome::Sum, &frequentist(), true).unwrap();
    let theta = adjusted.variants[0].theta.unwrap();
    assert!(
        theta > 0.0,
        "the covariate sums reach the analysis: {theta}"
    );
    assert_eq!(plain.variants[0].theta, None);
    let width = |r: &Report| {
        let ci = r.comparisons[0].absolute.as_ref().unwrap().ci;
        ci[1] - ci[0]
    };
    assert!(width(&adjusted) < width(&plain));
    assert_eq!(
        days.last().unwrap().report.comparisons,
        adjusted.comparisons
    );
}
