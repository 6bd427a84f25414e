//! The Gaussian effect posterior of gbstats `EffectBayesianABTest`: chance to
//! win, credible interval and risk, with a flat or a proper Gaussian prior.

use statrs::distribution::{Continuous, ContinuousCDF, Normal};

use super::Interval;
use super::effect::{Effect, check_alpha, check_pair, difference, difference_variance};
use super::error::StatsError;
use super::moments::ArmMoments;

/// A proper Gaussian prior on the effect, stated on the `scale` of a relative
/// or an absolute effect; gbstats states priors on the relative scale and
/// rescales them by the control mean when the other effect is asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaussianPrior {
    pub mean: f64,
    pub variance: f64,
    pub scale: Effect,
}

/// The prior on the effect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Prior {
    /// An improper flat prior: the posterior is the likelihood, gbstats' default.
    Flat,
    /// A proper Gaussian prior.
    Gaussian(GaussianPrior),
}

impl GaussianPrior {
    /// The prior restated on the scale of `effect`, as gbstats does: dividing
    /// an absolute prior by `|mean_control|` (variance by its square) for a
    /// relative effect, and multiplying a relative one for an absolute effect.
    fn on_scale_of(&self, effect: Effect, control: &ArmMoments) -> Result<(f64, f64), StatsError> {
        let m = control.unadjusted_mean;
        let (mean, variance) = match (self.scale, effect) {
            (Effect::Absolute, Effect::Relative) => (self.mean / m.abs(), self.variance / (m * m)),
            (Effect::Relative, Effect::Absolute) => {
                if m == 0.0 {
                    return Err(StatsError::PriorScale);
                }
                (self.mean * m.abs(), self.variance * m * m)
            }
            _ => (self.mean, self.variance),
        };
        if mean.is_finite() && variance.is_finite() && variance > 0.0 {
            Ok((mean, variance))
        } else {
            Err(StatsError::PriorScale)
        }
    }
}

/// The posterior mean of the effect (the estimate), the `1 - alpha` credible
/// interval, the chance that the variant beats the control, and the risk
/// `[risk of choosing the control, risk of choosing the variant]`.
///
/// The likelihood of the effect is Gaussian with the frequentist estimate and
/// its (delta-method) variance; a proper prior adds its precision.
pub fn effect_test(
    effect: Effect,
    control: &ArmMoments,
    variant: &ArmMoments,
    alpha: f64,
    prior: &Prior,
) -> Result<Interval, StatsError> {
    check_alpha(alpha)?;
    if let Prior::Gaussian(p) = prior
        && !(p.mean.is_finite() && p.variance.is_finite() && p.variance > 0.0)
    {
        return Err(StatsError::Prior);
    }
    check_pair(effect, control, variant)?;
    let data_mean = difference(effect, control, variant);
    let data_variance = difference_variance(effect, control, variant);
    let (mean, std_dev) = match prior {
        Prior::Flat => (data_mean, (1.0 / (1.0 / data_variance)).sqrt()),
        Prior::Gaussian(p) => {
            let (prior_mean, prior_variance) = p.on_scale_of(effect, control)?;
            let precision = 1.0 / data_variance + 1.0 / prior_variance;
            let mean = (data_mean / data_variance + prior_mean / prior_variance) / precision;
            (mean, (1.0 / precision).sqrt())
        }
    };
    if !(std_dev.is_finite() && std_dev > 0.0 && mean.is_finite()) {
        return Err(StatsError::NonFiniteResult);
    }
    let standard = Normal::standard();
    let z = standard.inverse_cdf(1.0 - alpha / 2.0);
    Interval {
        estimate: mean,
        ci: [mean - z * std_dev, mean + z * std_dev],
        p_value: None,
        chance_to_win: Some(standard.cdf(mean / std_dev)),
        risk: Some(risk(mean, std_dev)),
    }
    .into_finite()
}

/// The expected loss of each decision under a Gaussian posterior of the
/// effect `X ~ N(mean, std_dev^2)`: choosing the control loses `E[max(X, 0)]`
/// and choosing the variant loses `E[max(-X, 0)]`. These are gbstats'
/// `P(X > 0) E[X | X > 0]` and `-P(X < 0) E[X | X < 0]` in closed form,
/// `mean Phi(z) + sd phi(z)` and `sd phi(z) - mean Phi(-z)` with `z = mean / sd`.
pub fn risk(mean: f64, std_dev: f64) -> [f64; 2] {
    let standard = Normal::standard();
    let z = mean / std_dev;
    let density = std_dev * standard.pdf(z);
    let risk_control = mean * standard.cdf(z) + density;
    let risk_variant = density - mean * standard.sf(z);
    [risk_control.max(0.0), risk_variant.max(0.0)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::moments::SampleStatistic;
    use crate::stats::test_vectors::{assert_close_to, check_method_against_vectors};

    #[test]
    fn every_flat_prior_vector_matches_gbstats() {
        let compared = check_method_against_vectors("bayesian_flat", |e, c, v, a| {
            effect_test(e, c, v, a, &Prior::Flat)
        });
        // 5 cases x 2 effects x (estimate, 2 CI bounds, chance to win, 2 risks).
        assert_eq!(compared, 60);
    }

    // [estimate, ci low, ci high, chance to win, risk control, risk variant]
    // from gbstats 0.8.0, named PROPER_<prior scale>_<effect>.
    const PROPER_RELATIVE_RELATIVE: [f64; 6] = [
        0.05154525219182023,
        -0.017366416848856862,
        0.12045692123249732,
        0.9286804641836754,
        0.052658124680750644,
        0.0011128724889304152,
    ];
    const PROPER_RELATIVE_ABSOLUTE: [f64; 6] = [
        0.5151515151515151,
        -0.1672203572211295,
        1.1975233875241598,
        0.9305180073436083,
        0.5258373459858221,
        0.01068583083430693,
    ];
    const PROPER_ABSOLUTE_RELATIVE: [f64; 6] = [
        0.019548675867213726,
        -0.014653298884503133,
        0.05375065061893058,
        0.8686959953264308,
        0.02069894507918936,
        0.0011502692119756334,
    ];
    const PROPER_ABSOLUTE_ABSOLUTE: [f64; 6] = [
        0.19696969696969696,
        -0.14421623921662535,
        0.5381556331560192,
        0.871078650228214,
        0.20818939365383818,
        0.011219696684141215,
    ];

    /// Values from gbstats 0.8.0 `EffectBayesianABTest` with
    /// `GaussianPrior(mean=0.1, variance=0.04, proper=True)` on the
    /// `bayes-means` arms (n 10, sum 100 / 105, sum of squares 1002.25 /
    /// 1111.5), with `prior_type` relative and absolute.
    #[test]
    fn a_proper_prior_matches_gbstats() {
        let control = SampleStatistic::sample_mean(10, 100.0, 1002.25).moments();
        let variant = SampleStatistic::sample_mean(10, 105.0, 1111.5).moments();
        let cases = [
            (Effect::Relative, Effect::Relative, PROPER_RELATIVE_RELATIVE),
            (Effect::Relative, Effect::Absolute, PROPER_RELATIVE_ABSOLUTE),
            (Effect::Absolute, Effect::Relative, PROPER_ABSOLUTE_RELATIVE),
            (Effect::Absolute, Effect::Absolute, PROPER_ABSOLUTE_ABSOLUTE),
        ];
        for (scale, effect, want) in cases {
            let prior = Prior::Gaussian(GaussianPrior {
                mean: 0.1,
                variance: 0.04,
                scale,
            });
            let got = effect_test(effect, &control, &variant, 0.05, &prior).unwrap();
            let risk = got.risk.unwrap();
            let label = format!("prior on {scale:?} scale, {effect:?} effect");
            let pairs = [
                (got.estimate, want[0]),
                (got.ci[0], want[1]),
                (got.ci[1], want[2]),
                (got.chance_to_win.unwrap(), want[3]),
                (risk[0], want[4]),
                (risk[1], want[5]),
            ];
            for (got, want) in pairs {
                assert_close_to(got, want, &label);
            }
        }
    }

    #[test]
    fn risks_are_finite_and_ordered_far_in_the_tails() {
        for (mean, std_dev) in [(1.0, 1e-3), (-1.0, 1e-3), (50.0, 1.0), (0.0, 2.0)] {
            let [risk_control, risk_variant] = risk(mean, std_dev);
            assert!(risk_control.is_finite() && risk_variant.is_finite());
            assert!(risk_control >= 0.0 && risk_variant >= 0.0);
            // E[max(X,0)] - E[max(-X,0)] = E[X].
            assert!(
                (risk_control - risk_variant - mean).abs() < 1e-9,
                "{mean} {std_dev}"
            );
        }
    }

    #[test]
    fn an_improper_prior_is_refused() {
        let arm = SampleStatistic::proportion(100, 10.0).moments();
        for (mean, variance) in [
            (0.0, 0.0),
            (0.0, -1.0),
            (f64::NAN, 1.0),
            (0.0, f64::INFINITY),
        ] {
            let prior = Prior::Gaussian(GaussianPrior {
                mean,
                variance,
                scale: Effect::Relative,
            });
            let got = effect_test(Effect::Relative, &arm, &arm, 0.05, &prior);
            assert_eq!(got, Err(StatsError::Prior), "{mean} {variance}");
        }
    }
}
