//! Two-sample tests compatible with GrowthBook's stats engine `gbstats` 0.8:
//! frequentist, sequential and Bayesian effects, CUPED, SRM and multiple
//! comparison corrections. Pure functions of sufficient statistics, no IO.
//!
//! A caller picks a `Method` and an `Effect`, hands in the control's and the
//! variant's statistics and alpha, and gets one `Interval` or a `StatsError`
//! that explains in one sentence why the comparison is undefined.

pub mod bayesian;
pub mod cuped;
pub mod effect;
pub mod error;
pub mod frequentist;
pub mod lee;
pub mod moments;
pub mod multiple;
pub mod sequential;
pub mod srm;
pub mod srm_sequential;

#[cfg(test)]
mod test_vectors;

pub use bayesian::{GaussianPrior, Prior};
pub use cuped::{AdjustedInterval, compare_adjusted, pooled_theta};
pub use effect::Effect;
pub use error::{Arm, StatsError};
pub use lee::{LeeBounds, TrimGroup, lee_bounds};
pub use moments::{ArmMoments, RegressionAdjusted, SampleStatistic, StatisticKind};
pub use multiple::{benjamini_hochberg, holm};
pub use srm::{SRM_P_THRESHOLD, SampleRatioCheck, check_srm};
pub use srm_sequential::{SequentialSrmCheck, sequential_srm};

/// The inference method of a comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// A two-sided Welch t-test (gbstats `TwoSidedTTest`).
    Frequentist,
    /// An asymptotic confidence sequence, valid under continuous monitoring
    /// (gbstats `SequentialTwoSidedTTest`), tuned for `tuning` users in total.
    Sequential { tuning: f64 },
    /// A Gaussian posterior of the effect (gbstats `EffectBayesianABTest`).
    Bayesian { prior: Prior },
}

impl Method {
    /// The sequential method with gbstats' default tuning parameter N* = 5000.
    pub const SEQUENTIAL_DEFAULT: Method = Method::Sequential {
        tuning: sequential::DEFAULT_TUNING,
    };

    /// The Bayesian method with a flat prior, gbstats' default.
    pub const BAYESIAN_FLAT: Method = Method::Bayesian { prior: Prior::Flat };
}

/// The result of one comparison. `ci` is a confidence interval (frequentist),
/// a confidence sequence (sequential) or a credible interval (Bayesian) at
/// level `1 - alpha`. Frequentist and sequential results carry `p_value`;
/// Bayesian results carry `chance_to_win` and `risk`, which is
/// `[risk of choosing the control, risk of choosing the variant]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub estimate: f64,
    pub ci: [f64; 2],
    pub p_value: Option<f64>,
    pub chance_to_win: Option<f64>,
    pub risk: Option<[f64; 2]>,
}

impl Interval {
    /// The interval itself when every number in it is finite, and an error
    /// otherwise, so that callers never see NaN or infinity.
    pub(crate) fn into_finite(self) -> Result<Interval, StatsError> {
        let optional = [
            self.p_value,
            self.chance_to_win,
            self.risk.map(|r| r[0]),
            self.risk.map(|r| r[1]),
        ];
        let all_finite = self.estimate.is_finite()
            && self.ci.iter().all(|x| x.is_finite())
            && optional.iter().flatten().all(|x| x.is_finite());
        if all_finite {
            Ok(self)
        } else {
            Err(StatsError::NonFiniteResult)
        }
    }
}

/// Compares a variant with the control by `method` on `effect` at level
/// `1 - alpha`. Both arms must be of the same kind.
pub fn compare(
    method: &Method,
    effect: Effect,
    control: &SampleStatistic,
    variant: &SampleStatistic,
    alpha: f64,
) -> Result<Interval, StatsError> {
    for (arm, statistic) in [(Arm::Control, control), (Arm::Variant, variant)] {
        if !statistic.is_finite() {
            return Err(StatsError::NotFinite(arm));
        }
    }
    if control.kind != variant.kind {
        return Err(StatsError::MixedKinds);
    }
    compare_moments(
        method,
        effect,
        &control.moments(),
        &variant.moments(),
        alpha,
    )
}

/// Compares two arms given by their moments, which may be CUPED-adjusted.
pub fn compare_moments(
    method: &Method,
    effect: Effect,
    control: &ArmMoments,
    variant: &ArmMoments,
    alpha: f64,
) -> Result<Interval, StatsError> {
    match method {
        Method::Frequentist => frequentist::two_sided_test(effect, control, variant, alpha),
        Method::Sequential { tuning } => {
            sequential::two_sided_test(effect, control, variant, alpha, *tuning)
        }
        Method::Bayesian { prior } => bayesian::effect_test(effect, control, variant, alpha, prior),
    }
}

#[cfg(test)]
mod tests {
    use super::test_vectors::{assert_close, two_sample_cases};
    use super::*;

    #[test]
    fn compare_dispatches_every_method_to_the_oracle_values() {
        let methods = [
            ("frequentist", Method::Frequentist),
            ("sequential_n5000", Method::SEQUENTIAL_DEFAULT),
            ("bayesian_flat", Method::BAYESIAN_FLAT),
        ];
        for case in two_sample_cases() {
            for (effect_key, effect) in [
                ("relative", Effect::Relative),
                ("absolute", Effect::Absolute),
            ] {
                for (method_key, method) in &methods {
                    let expected = &case.expected[effect_key][method_key];
                    let label = format!("{} {effect_key} {method_key}", case.name);
                    let got = compare(method, effect, &case.control, &case.variant, case.alpha)
                        .unwrap_or_else(|e| panic!("{label}: {e}"));
                    assert_close(got.estimate, &expected["estimate"], &label);
                    assert_close(got.ci[0], &expected["ci"][0], &label);
                    assert_close(got.ci[1], &expected["ci"][1], &label);
                }
            }
        }
    }

    #[test]
    fn arms_of_different_kinds_are_refused() {
        let control = SampleStatistic::proportion(100, 10.0);
        let variant = SampleStatistic::sample_mean(100, 10.0, 30.0);
        let got = compare(
            &Method::Frequentist,
            Effect::Absolute,
            &control,
            &variant,
            0.05,
        );
        assert_eq!(got, Err(StatsError::MixedKinds));
    }

    /// Every degenerate input, for every method and effect, gives the error
    /// that names its cause and never a panic or a non-finite number.
    #[test]
    fn degenerate_inputs_give_an_explained_error() {
        let ok = SampleStatistic::sample_mean(50, 100.0, 400.0);
        let cases: [(
            &str,
            SampleStatistic,
            SampleStatistic,
            f64,
            Option<StatsError>,
        ); 10] = [
            (
                "empty control",
                SampleStatistic::sample_mean(0, 0.0, 0.0),
                ok,
                0.05,
                Some(StatsError::TooFewUsers(Arm::Control)),
            ),
            (
                "one variant user",
                ok,
                SampleStatistic::sample_mean(1, 3.0, 9.0),
                0.05,
                Some(StatsError::TooFewUsers(Arm::Variant)),
            ),
            (
                "constant control",
                SampleStatistic::sample_mean(50, 100.0, 200.0),
                ok,
                0.05,
                Some(StatsError::ZeroVariance(Arm::Control)),
            ),
            (
                "no conversions anywhere",
                SampleStatistic::proportion(50, 0.0),
                SampleStatistic::proportion(50, 0.0),
                0.05,
                None,
            ),
            (
                "all converted in variant",
                SampleStatistic::proportion(50, 10.0),
                SampleStatistic::proportion(50, 50.0),
                0.05,
                Some(StatsError::ZeroVariance(Arm::Variant)),
            ),
            (
                "NaN sum",
                SampleStatistic::sample_mean(50, f64::NAN, 400.0),
                ok,
                0.05,
                Some(StatsError::NotFinite(Arm::Control)),
            ),
            (
                "infinite sum of squares",
                ok,
                SampleStatistic::sample_mean(50, 1.0, f64::INFINITY),
                0.05,
                Some(StatsError::NotFinite(Arm::Variant)),
            ),
            (
                "negative variance",
                SampleStatistic::sample_mean(50, 100.0, 10.0),
                ok,
                0.05,
                Some(StatsError::ZeroVariance(Arm::Control)),
            ),
            ("alpha of 0", ok, ok, 0.0, Some(StatsError::Alpha)),
            ("NaN alpha", ok, ok, f64::NAN, Some(StatsError::Alpha)),
        ];
        let methods = [
            Method::Frequentist,
            Method::SEQUENTIAL_DEFAULT,
            Method::BAYESIAN_FLAT,
        ];
        for (label, control, variant, alpha, error) in cases {
            for method in &methods {
                for effect in [Effect::Relative, Effect::Absolute] {
                    let got = compare(method, effect, &control, &variant, alpha);
                    // With no conversions the relative lift is undefined first,
                    // and the absolute effect fails on the zero variance.
                    let want = error.clone().unwrap_or(match effect {
                        Effect::Relative => StatsError::ZeroControlMean,
                        Effect::Absolute => StatsError::ZeroVariance(Arm::Control),
                    });
                    assert_eq!(got, Err(want), "{label} {method:?} {effect:?}");
                }
            }
        }
    }

    #[test]
    fn a_zero_control_mean_refuses_only_the_relative_effect() {
        // Values summing to 0 with a positive spread: the absolute difference
        // is defined, the relative lift is not.
        let control = SampleStatistic::sample_mean(40, 0.0, 90.0);
        let variant = SampleStatistic::sample_mean(40, 20.0, 110.0);
        for method in [
            Method::Frequentist,
            Method::SEQUENTIAL_DEFAULT,
            Method::BAYESIAN_FLAT,
        ] {
            let relative = compare(&method, Effect::Relative, &control, &variant, 0.05);
            assert_eq!(relative, Err(StatsError::ZeroControlMean));
            let message = relative.unwrap_err().to_string();
            assert_eq!(
                message,
                "the control mean is 0, so a relative lift is undefined"
            );
            let absolute = compare(&method, Effect::Absolute, &control, &variant, 0.05).unwrap();
            assert!((absolute.estimate - 0.5).abs() < 1e-12);
        }
    }

    #[test]
    fn results_that_overflow_are_refused_rather_than_returned() {
        // A control mean of 1e-200 makes the relative variance 1e400, which
        // overflows, while every input and per-arm moment is finite.
        let control = SampleStatistic::sample_mean(10, 1e-199, 9.0);
        let variant = SampleStatistic::sample_mean(10, 10.0, 19.0);
        for method in [
            Method::Frequentist,
            Method::SEQUENTIAL_DEFAULT,
            Method::BAYESIAN_FLAT,
        ] {
            let got = compare(&method, Effect::Relative, &control, &variant, 0.05);
            assert_eq!(got, Err(StatsError::NonFiniteResult), "{method:?}");
        }
    }
}
