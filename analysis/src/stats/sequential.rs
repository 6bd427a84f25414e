//! The asymptotic confidence sequence of gbstats `SequentialTwoSidedTTest`
//! (Waudby-Smith et al. 2023), valid however often the results are looked at.

use super::Interval;
use super::effect::{Effect, check_alpha, check_pair, difference, difference_variance};
use super::error::StatsError;
use super::moments::ArmMoments;

/// gbstats' default tuning parameter N*: the total sample size at which the
/// confidence sequence is tightest.
pub const DEFAULT_TUNING: f64 = 5000.0;

/// The mixture parameter rho of eq. 161 in Waudby-Smith et al.:
/// `sqrt((-2 ln alpha + ln(-2 ln alpha + 1)) / N*)`.
pub fn rho(alpha: f64, tuning: f64) -> f64 {
    let log_alpha = alpha.ln();
    ((-2.0 * log_alpha + (-2.0 * log_alpha + 1.0).ln()) / tuning).sqrt()
}

/// The effect estimate, its `1 - alpha` confidence sequence (eq. 9)
/// `estimate ± sqrt(N var) sqrt(2 (N rho^2 + 1) ln(sqrt(N rho^2 + 1) / alpha) / (N rho)^2)`
/// with `N` the users of both arms, and the always-valid p-value
/// `min(1, 1 / e)` from the e-value of eq. 155.
pub fn two_sided_test(
    effect: Effect,
    control: &ArmMoments,
    variant: &ArmMoments,
    alpha: f64,
    tuning: f64,
) -> Result<Interval, StatsError> {
    check_alpha(alpha)?;
    if !(tuning.is_finite() && tuning > 0.0) {
        return Err(StatsError::Tuning);
    }
    check_pair(effect, control, variant)?;
    let estimate = difference(effect, control, variant);
    let variance = difference_variance(effect, control, variant);
    let total = (control.n + variant.n) as f64;
    let rho = rho(alpha, tuning);
    let rho2 = rho * rho;
    let scale = total * rho2 + 1.0;
    let width = (variance * total).sqrt()
        * (2.0 * scale * (scale.sqrt() / alpha).ln() / (total * rho).powi(2)).sqrt();
    // The e-value exp(rho^2 s / (2 scale)) / sqrt(scale), taken in logs so
    // that a huge e-value gives a p-value of 0 rather than overflowing.
    let squared_statistic = estimate * estimate * total / variance;
    let log_e_value = rho2 * squared_statistic / (2.0 * scale) - 0.5 * scale.ln();
    let p_value = (-log_e_value).exp().min(1.0);
    Interval {
        estimate,
        ci: [estimate - width, estimate + width],
        p_value: Some(p_value),
        chance_to_win: None,
        risk: None,
    }
    .into_finite()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::frequentist;
    use crate::stats::moments::SampleStatistic;
    use crate::stats::test_vectors::check_method_against_vectors;

    #[test]
    fn every_sequential_vector_matches_gbstats() {
        let compared = check_method_against_vectors("sequential_n5000", |e, c, v, a| {
            two_sided_test(e, c, v, a, DEFAULT_TUNING)
        });
        assert_eq!(compared, 40);
    }

    #[test]
    fn the_sequence_is_wider_than_the_fixed_horizon_interval() {
        let control = SampleStatistic::proportion(4000, 400.0).moments();
        let variant = SampleStatistic::proportion(4000, 460.0).moments();
        let fixed =
            frequentist::two_sided_test(Effect::Relative, &control, &variant, 0.05).unwrap();
        let always_valid =
            two_sided_test(Effect::Relative, &control, &variant, 0.05, DEFAULT_TUNING).unwrap();
        assert!(always_valid.ci[0] < fixed.ci[0] && always_valid.ci[1] > fixed.ci[1]);
        assert!(always_valid.p_value.unwrap() > fixed.p_value.unwrap());
    }

    #[test]
    fn a_tuning_parameter_that_is_not_positive_is_refused() {
        let arm = SampleStatistic::proportion(100, 10.0).moments();
        for tuning in [0.0, -5.0, f64::NAN, f64::INFINITY] {
            let got = two_sided_test(Effect::Absolute, &arm, &arm, 0.05, tuning);
            assert_eq!(got, Err(StatsError::Tuning), "tuning {tuning}");
        }
    }

    #[test]
    fn an_overwhelming_effect_gives_a_p_value_of_zero_not_nan() {
        let control = SampleStatistic::proportion(1_000_000, 10_000.0).moments();
        let variant = SampleStatistic::proportion(1_000_000, 900_000.0).moments();
        let got = two_sided_test(Effect::Absolute, &control, &variant, 0.05, 5000.0).unwrap();
        assert_eq!(got.p_value, Some(0.0));
    }
}
