//! The two-sided Welch t-test of gbstats `TwoSidedTTest`, on absolute or
//! relative effects.

use statrs::distribution::{ContinuousCDF, StudentsT};

use super::Interval;
use super::effect::{Effect, check_alpha, check_pair, difference, difference_variance};
use super::error::StatsError;
use super::moments::ArmMoments;

/// The Welch–Satterthwaite degrees of freedom of the two arms' variances,
/// `(vB/nB + vA/nA)^2 / (vB^2/(nB^2 (nB-1)) + vA^2/(nA^2 (nA-1)))`.
pub fn welch_degrees_of_freedom(control: &ArmMoments, variant: &ArmMoments) -> f64 {
    let (n_a, n_b) = (control.n as f64, variant.n as f64);
    let (v_a, v_b) = (control.variance, variant.variance);
    (v_b / n_b + v_a / n_a).powi(2)
        / (v_b * v_b / (n_b * n_b * (n_b - 1.0)) + v_a * v_a / (n_a * n_a * (n_a - 1.0)))
}

/// The effect estimate, its `1 - alpha` confidence interval
/// `estimate ± t_{1-alpha/2, df} sqrt(variance)` and the two-sided p-value
/// `2 P(T_df > |estimate| / sqrt(variance))`, with Welch–Satterthwaite df.
pub fn two_sided_test(
    effect: Effect,
    control: &ArmMoments,
    variant: &ArmMoments,
    alpha: f64,
) -> Result<Interval, StatsError> {
    check_alpha(alpha)?;
    check_pair(effect, control, variant)?;
    let estimate = difference(effect, control, variant);
    let standard_error = difference_variance(effect, control, variant).sqrt();
    let dof = welch_degrees_of_freedom(control, variant);
    let t = StudentsT::new(0.0, 1.0, dof).map_err(|_| StatsError::NonFiniteResult)?;
    // gbstats writes 2 (1 - cdf); the survival function is the same number
    // without the cancellation for very small p-values.
    let p_value = (2.0 * t.sf((estimate / standard_error).abs())).min(1.0);
    let width = t_quantile(1.0 - alpha / 2.0, dof) * standard_error;
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
    use crate::stats::moments::SampleStatistic;
    use crate::stats::test_vectors::check_method_against_vectors;

    #[test]
    fn every_frequentist_vector_matches_gbstats() {
        let compared = check_method_against_vectors("frequentist", two_sided_test);
        // 5 cases x 2 effects x (estimate, two CI bounds, p-value).
        assert_eq!(compared, 40);
    }

    #[test]
    fn welch_df_of_equal_arms_is_twice_n_minus_one() {
        let arm = SampleStatistic::sample_mean(11, 22.0, 84.0).moments();
        assert!((welch_degrees_of_freedom(&arm, &arm) - 20.0).abs() < 1e-9);
    }

    #[test]
    fn a_smaller_alpha_gives_a_wider_interval_and_the_same_p_value() {
        let control = SampleStatistic::proportion(1000, 100.0).moments();
        let variant = SampleStatistic::proportion(1000, 130.0).moments();
        let wide = two_sided_test(Effect::Absolute, &control, &variant, 0.01).unwrap();
        let narrow = two_sided_test(Effect::Absolute, &control, &variant, 0.10).unwrap();
        assert!(wide.ci[1] - wide.ci[0] > narrow.ci[1] - narrow.ci[0]);
        assert_eq!(wide.p_value, narrow.p_value);
        assert!((wide.estimate - 0.03).abs() < 1e-12);
    }
}

/// The Student's t quantile. statrs inverts the regularized incomplete beta
/// function, which loses digits when the degrees of freedom are large (a
/// million users gives a 5e-6 relative error); from 200 degrees of freedom on,
/// the Cornish–Fisher expansion around the normal quantile (Hill 1970) is
/// exact to better than 1e-10 against scipy.
pub(crate) fn t_quantile(p: f64, dof: f64) -> f64 {
    use statrs::distribution::Normal;
    if dof < 200.0 {
        return StudentsT::new(0.0, 1.0, dof).map_or(f64::NAN, |t| t.inverse_cdf(p));
    }
    let z = Normal::standard().inverse_cdf(p);
    let (z2, v) = (z * z, dof);
    z + z * (z2 + 1.0) / (4.0 * v)
        + z * (5.0 * z2 * z2 + 16.0 * z2 + 3.0) / (96.0 * v * v)
        + z * (3.0 * z2.powi(3) + 19.0 * z2 * z2 + 17.0 * z2 - 15.0) / (384.0 * v.powi(3))
        + z * (79.0 * z2.powi(4) + 776.0 * z2.powi(3) + 1482.0 * z2 * z2 - 1920.0 * z2 - 945.0)
            / (92160.0 * v.powi(4))
}

#[cfg(test)]
mod quantile_tests {
    use statrs::distribution::{ContinuousCDF, StudentsT};

    use super::t_quantile;

    /// scipy.stats.t.ppf and t.sf at large degrees of freedom.
    #[test]
    fn t_quantiles_and_tails_hold_their_digits_with_a_million_users() {
        for (dof, expected) in [
            (1e3, 1.9623390808264083),
            (1e5, 1.9599877075346095),
            (9.9e5, 1.9599663807764995),
            (1e7, 1.959964221767205),
        ] {
            let got = t_quantile(0.975, dof);
            assert!(
                ((got - expected) / expected).abs() < 1e-9,
                "dof {dof}: {got} vs {expected}"
            );
        }
        for (dof, x, expected) in [
            (1e4, 1.5, 0.06682298591180982),
            (1e6, 1.5, 0.0668073591183964),
            (1e6, 4.0, 3.167351700502405e-05),
        ] {
            let got = StudentsT::new(0.0, 1.0, dof).unwrap().sf(x);
            assert!(
                ((got - expected) / expected).abs() < 1e-7,
                "dof {dof}, x {x}: {got} vs {expected}"
            );
        }
    }
}
