//! Test helpers that read the gbstats oracle vectors copied to `analysis/tests/data`.

use serde_json::Value;

use super::moments::{ArmMoments, SampleStatistic};
use super::{Effect, Interval, StatsError};

/// The whole oracle vector file.
pub(crate) fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/stats-vectors.json");
    let text = std::fs::read_to_string(path).expect("the oracle vectors in analysis/tests/data");
    serde_json::from_str(&text).expect("the oracle vectors are JSON")
}

/// One `two_sample` vector: two arms, alpha and the expected results keyed
/// `relative|absolute` then `frequentist|sequential_n5000|bayesian_flat`.
pub(crate) struct TwoSampleCase {
    pub name: String,
    pub alpha: f64,
    pub control: SampleStatistic,
    pub variant: SampleStatistic,
    pub expected: Value,
}

fn statistic(arm: &Value) -> SampleStatistic {
    let n = arm["n"].as_u64().expect("n is a count");
    let sum = arm["sum"].as_f64().expect("sum is a number");
    match arm["type"].as_str() {
        Some("proportion") => SampleStatistic::proportion(n, sum),
        Some("mean") => {
            let sum_squares = arm["sum_squares"].as_f64().expect("sum_squares");
            SampleStatistic::sample_mean(n, sum, sum_squares)
        }
        other => panic!("unknown statistic type {other:?}"),
    }
}

/// All five `two_sample` vectors.
pub(crate) fn two_sample_cases() -> Vec<TwoSampleCase> {
    let all = vectors();
    let cases: Vec<TwoSampleCase> = all["two_sample"]
        .as_array()
        .expect("two_sample is a list")
        .iter()
        .map(|case| TwoSampleCase {
            name: case["name"].as_str().expect("name").to_owned(),
            alpha: case["alpha"].as_f64().expect("alpha"),
            control: statistic(&case["control"]),
            variant: statistic(&case["variant"]),
            expected: case["expected"].clone(),
        })
        .collect();
    assert_eq!(
        cases.len(),
        5,
        "the oracle file holds five two-sample cases"
    );
    cases
}

/// Asserts `got` is within a relative error of 1e-6 of the expected JSON
/// number (an absolute error of 1e-9 when that number is 0).
#[track_caller]
pub(crate) fn assert_close(got: f64, expected: &Value, label: &str) {
    let want = expected
        .as_f64()
        .unwrap_or_else(|| panic!("{label}: expected value {expected} is not a number"));
    assert_close_to(got, want, label);
}

/// Asserts `got` is within a relative error of 1e-6 of `want` (an absolute
/// error of 1e-9 when `want` is 0).
#[track_caller]
pub(crate) fn assert_close_to(got: f64, want: f64, label: &str) {
    let ok = if want == 0.0 {
        got.abs() <= 1e-9
    } else {
        ((got - want) / want).abs() <= 1e-6
    };
    assert!(ok, "{label}: got {got}, expected {want}");
}

/// Checks every field of every `two_sample` vector under `method_key`
/// (`frequentist`, `sequential_n5000` or `bayesian_flat`), for both effects,
/// against `test`; returns how many numbers were compared.
pub(crate) fn check_method_against_vectors(
    method_key: &str,
    test: impl Fn(Effect, &ArmMoments, &ArmMoments, f64) -> Result<Interval, StatsError>,
) -> usize {
    let mut compared = 0;
    for case in two_sample_cases() {
        for (effect_key, effect) in [
            ("relative", Effect::Relative),
            ("absolute", Effect::Absolute),
        ] {
            let expected = &case.expected[effect_key][method_key];
            let label = format!("{} {effect_key} {method_key}", case.name);
            let got = test(
                effect,
                &case.control.moments(),
                &case.variant.moments(),
                case.alpha,
            )
            .unwrap_or_else(|e| panic!("{label}: {e}"));
            let fields = expected
                .as_object()
                .expect("expected results are an object");
            for (field, want) in fields {
                let label = format!("{label} {field}");
                match field.as_str() {
                    "estimate" => assert_close(got.estimate, want, &label),
                    "ci" => {
                        assert_close(got.ci[0], &want[0], &label);
                        assert_close(got.ci[1], &want[1], &label);
                    }
                    "p_value" => assert_close(got.p_value.expect(&label), want, &label),
                    "chance_to_win" => assert_close(got.chance_to_win.expect(&label), want, &label),
                    "risk" => {
                        let risk = got.risk.expect(&label);
                        assert_close(risk[0], &want[0], &label);
                        assert_close(risk[1], &want[1], &label);
                    }
                    other => panic!("{label}: the test does not know field {other}"),
                }
                compared += if want.is_array() { 2 } else { 1 };
            }
        }
    }
    compared
}
