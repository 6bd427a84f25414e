//! CUPED: regression adjustment on a pre-period covariate with a theta pooled
//! over both arms, as gbstats does when a test receives two
//! `RegressionAdjustedStatistic`s.

use super::effect::Effect;
use super::error::{Arm, StatsError};
use super::moments::{ArmMoments, RegressionAdjusted, SampleStatistic};
use super::{Interval, Method, compare_moments};

/// The adjusted moments of both arms and the pooled theta they were adjusted with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdjustedArms {
    pub theta: f64,
    pub control: ArmMoments,
    pub variant: ArmMoments,
}

/// A CUPED-adjusted comparison and the pooled theta it used (0 when the
/// adjustment was dropped because a pooled variance was 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdjustedInterval {
    pub interval: Interval,
    pub theta: f64,
}

/// Both arms' statistics added together, as gbstats `create_joint_statistic`.
fn joint(a: &SampleStatistic, b: &SampleStatistic) -> SampleStatistic {
    SampleStatistic {
        kind: a.kind,
        n: a.n + b.n,
        sum: a.sum + b.sum,
        sum_squares: a.sum_squares + b.sum_squares,
    }
}

fn check_arms(
    control: &RegressionAdjusted,
    variant: &RegressionAdjusted,
) -> Result<(), StatsError> {
    for (arm, statistic) in [(Arm::Control, control), (Arm::Variant, variant)] {
        if !statistic.is_finite() {
            return Err(StatsError::NotFinite(arm));
        }
        if statistic.pre.n != statistic.post.n {
            return Err(StatsError::CovariateUsers(arm));
        }
    }
    if control.post.kind != variant.post.kind || control.pre.kind != variant.pre.kind {
        return Err(StatsError::MixedKinds);
    }
    Ok(())
}

/// The pooled regression coefficient of the post-period outcome on the
/// covariate over the users of both arms, `cov(post, pre) / var(pre)`
/// (gbstats `compute_theta`); 0 when the pooled variance of either is 0.
pub fn pooled_theta(
    control: &RegressionAdjusted,
    variant: &RegressionAdjusted,
) -> Result<f64, StatsError> {
    check_arms(control, variant)?;
    let post = joint(&control.post, &variant.post);
    let pre = joint(&control.pre, &variant.pre);
    if post.variance() <= 0.0 || pre.variance() <= 0.0 {
        return Ok(0.0);
    }
    let cross = control.post_pre_sum_of_products + variant.post_pre_sum_of_products;
    let theta = RegressionAdjusted::new(post, pre, cross).covariance() / pre.variance();
    if theta.is_finite() {
        Ok(theta)
    } else {
        Err(StatsError::NonFiniteResult)
    }
}

/// Both arms adjusted with the pooled theta. As in gbstats, a theta of 0
/// falls back to the unadjusted post-period statistics.
pub fn adjust(
    control: &RegressionAdjusted,
    variant: &RegressionAdjusted,
) -> Result<AdjustedArms, StatsError> {
    let theta = pooled_theta(control, variant)?;
    if theta == 0.0 {
        return Ok(AdjustedArms {
            theta,
            control: control.post.moments(),
            variant: variant.post.moments(),
        });
    }
    Ok(AdjustedArms {
        theta,
        control: control.with_theta(theta).moments(),
        variant: variant.with_theta(theta).moments(),
    })
}

/// Compares a variant with the control by `method` on `effect` at level
/// `1 - alpha`, on CUPED-adjusted statistics. The estimate uses the adjusted
/// means; a relative effect is scaled by the unadjusted control mean.
pub fn compare_adjusted(
    method: &Method,
    effect: Effect,
    control: &RegressionAdjusted,
    variant: &RegressionAdjusted,
    alpha: f64,
) -> Result<AdjustedInterval, StatsError> {
    let arms = adjust(control, variant)?;
    let interval = compare_moments(method, effect, &arms.control, &arms.variant, alpha)?;
    Ok(AdjustedInterval {
        interval,
        theta: arms.theta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::compare;
    use crate::stats::test_vectors::assert_close_to;

    /// Sufficient statistics `[n, post sum, post sum of squares, pre sum,
    /// pre sum of squares, cross products]`.
    type Sums = [f64; 6];

    /// Per effect, the frequentist, sequential and Bayesian results.
    type Expected = (Effect, [f64; 4], [f64; 4], [f64; 6]);

    fn arm(sums: Sums, binary: bool) -> RegressionAdjusted {
        let n = sums[0] as u64;
        let post = if binary {
            SampleStatistic::proportion(n, sums[1])
        } else {
            SampleStatistic::sample_mean(n, sums[1], sums[2])
        };
        let pre = SampleStatistic::sample_mean(n, sums[3], sums[4]);
        RegressionAdjusted::new(post, pre, sums[5])
    }

    // Synthetic arms (gamma covariate, outcome correlated with it) and the
    // results gbstats 0.8.0 gives on them with RegressionAdjustedStatistic:
    // theta, then per effect [estimate, ci low, ci high, p-value] for the
    // frequentist and sequential (N* 5000) tests and [estimate, ci low,
    // ci high, chance to win, risk control, risk variant] for flat Bayes.
    const MEAN_CONTROL: Sums = [
        800.0,
        15703.93,
        439514.2373,
        16514.840000000004,
        497682.56059999997,
        450333.6722,
    ];
    const MEAN_VARIANT: Sums = [
        820.0,
        16355.44,
        494028.2236,
        16555.37,
        518741.8913,
        490022.0971,
    ];
    const MEAN_THETA: f64 = 0.8375992080207119;
    const MEAN_RESULTS: [Expected; 2] = [
        (
            Effect::Relative,
            [
                0.03546008604145071,
                0.0051100057002271305,
                0.0658101663826743,
                0.022052404400039416,
            ],
            [
                0.03546008604145071,
                -0.01368978979539675,
                0.08460996187829817,
                0.2853172106086805,
            ],
            [
                0.03546008604145071,
                0.005132751836007074,
                0.06578742024689435,
                0.9890378911879089,
                0.035518139434730575,
                5.805339327986078e-05,
            ],
        ),
        (
            Effect::Absolute,
            [
                0.6960783862361488,
                0.10522707792076569,
                1.286929694551532,
                0.02097191252687791,
            ],
            [
                0.6960783862361488,
                -0.2607648285178975,
                1.652921600990195,
                0.27644071640477813,
            ],
            [
                0.6960783862361488,
                0.10566989665249882,
                1.2864868758197987,
                0.9895767667725329,
                0.6971471313617981,
                0.0010687451256492135,
            ],
        ),
    ];
    const BINARY_CONTROL: Sums = [
        800.0,
        114.0,
        114.0,
        16695.98,
        532147.8578,
        2698.8900000000003,
    ];
    const BINARY_VARIANT: Sums = [820.0, 120.0, 120.0, 16561.04, 504823.1742, 3128.37];
    const BINARY_THETA: f64 = 0.002889220108358402;
    const BINARY_RESULTS: [Expected; 2] = [
        (
            Effect::Relative,
            [
                0.040614723064104526,
                -0.20133092879531223,
                0.28256037492352126,
                0.742001820607417,
            ],
            [
                0.040614723064104526,
                -0.3512000500983457,
                0.43242949622655474,
                1.0,
            ],
            [
                0.040614723064104526,
                -0.20114982608292115,
                0.28237927221113013,
                0.6290204107569639,
                0.07216114887268398,
                0.031546425808579456,
            ],
        ),
        (
            Effect::Absolute,
            [
                0.0057875980366348945,
                -0.028222327005268714,
                0.0397975230785385,
                0.738585568409754,
            ],
            [
                0.0057875980366348945,
                -0.04928919695081243,
                0.06086439302408222,
                1.0,
            ],
            [
                0.0057875980366348945,
                -0.028196869677864937,
                0.03977206575113471,
                0.6307288558379924,
                0.01019299408795166,
                0.004405396051316766,
            ],
        ),
    ];

    fn check_against_gbstats(binary: bool, sums: (Sums, Sums), theta: f64, results: &[Expected]) {
        let (control, variant) = (arm(sums.0, binary), arm(sums.1, binary));
        assert_close_to(pooled_theta(&control, &variant).unwrap(), theta, "theta");
        for (effect, frequentist, sequential, bayesian) in results {
            let methods: [(Method, &[f64]); 3] = [
                (Method::Frequentist, frequentist),
                (Method::SEQUENTIAL_DEFAULT, sequential),
                (Method::BAYESIAN_FLAT, bayesian),
            ];
            for (method, want) in methods {
                let label = format!("binary {binary} {method:?} {effect:?}");
                let got = compare_adjusted(&method, *effect, &control, &variant, 0.05).unwrap();
                assert_close_to(got.theta, theta, &label);
                let i = got.interval;
                let mut numbers = vec![i.estimate, i.ci[0], i.ci[1]];
                numbers.extend(i.p_value);
                numbers.extend(i.chance_to_win);
                numbers.extend(i.risk.into_iter().flatten());
                assert_eq!(numbers.len(), want.len(), "{label}");
                for (got, want) in numbers.into_iter().zip(want) {
                    assert_close_to(got, *want, &label);
                }
            }
        }
    }

    #[test]
    fn adjusted_means_match_gbstats() {
        check_against_gbstats(
            false,
            (MEAN_CONTROL, MEAN_VARIANT),
            MEAN_THETA,
            &MEAN_RESULTS,
        );
    }

    #[test]
    fn adjusted_proportions_match_gbstats() {
        check_against_gbstats(
            true,
            (BINARY_CONTROL, BINARY_VARIANT),
            BINARY_THETA,
            &BINARY_RESULTS,
        );
    }

    /// Per-user (pre, post) pairs where post = 2 pre + noise, from a small
    /// deterministic generator, summed into a regression-adjusted statistic.
    fn correlated_arm(seed: u64, users: usize, lift: f64) -> (RegressionAdjusted, Vec<(f64, f64)>) {
        let mut state = seed;
        let mut uniform = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let pairs: Vec<(f64, f64)> = (0..users)
            .map(|_| {
                let pre = 10.0 * uniform();
                let post = 2.0 * pre + 3.0 * (uniform() - 0.5) + lift;
                (pre, post)
            })
            .collect();
        let n = users as u64;
        let post = SampleStatistic::sample_mean(
            n,
            pairs.iter().map(|p| p.1).sum(),
            pairs.iter().map(|p| p.1 * p.1).sum(),
        );
        let pre = SampleStatistic::sample_mean(
            n,
            pairs.iter().map(|p| p.0).sum(),
            pairs.iter().map(|p| p.0 * p.0).sum(),
        );
        let cross = pairs.iter().map(|p| p.0 * p.1).sum();
        (RegressionAdjusted::new(post, pre, cross), pairs)
    }

    #[test]
    fn theta_is_the_pooled_least_squares_slope_and_reduces_variance() {
        let (control, control_pairs) = correlated_arm(1, 500, 0.0);
        let (variant, variant_pairs) = correlated_arm(2, 480, 0.3);
        // The closed form over the raw pooled users, in two passes.
        let pooled: Vec<(f64, f64)> = control_pairs.into_iter().chain(variant_pairs).collect();
        let count = pooled.len() as f64;
        let mean_pre = pooled.iter().map(|p| p.0).sum::<f64>() / count;
        let mean_post = pooled.iter().map(|p| p.1).sum::<f64>() / count;
        let sxy: f64 = pooled
            .iter()
            .map(|p| (p.0 - mean_pre) * (p.1 - mean_post))
            .sum();
        let sxx: f64 = pooled.iter().map(|p| (p.0 - mean_pre).powi(2)).sum();
        let theta = pooled_theta(&control, &variant).unwrap();
        assert_close_to(theta, sxy / sxx, "theta");
        assert!(
            (theta - 2.0).abs() < 0.1,
            "the slope of the generator is 2, got {theta}"
        );

        let arms = adjust(&control, &variant).unwrap();
        // post = 2 pre + uniform noise of variance 0.75: adjustment removes
        // the covariate's share, 4 var(pre) = 4 * 100/12, almost all of it.
        for (adjusted, raw) in [(arms.control, control.post), (arms.variant, variant.post)] {
            assert!(adjusted.variance < raw.variance() / 10.0);
            assert!(
                (adjusted.variance - 0.75).abs() < 0.15,
                "{}",
                adjusted.variance
            );
            assert_eq!(adjusted.unadjusted_mean, raw.mean());
        }
        let plain = compare(
            &Method::Frequentist,
            Effect::Absolute,
            &control.post,
            &variant.post,
            0.05,
        )
        .unwrap();
        let cuped = compare_adjusted(
            &Method::Frequentist,
            Effect::Absolute,
            &control,
            &variant,
            0.05,
        )
        .unwrap()
        .interval;
        assert!(cuped.ci[1] - cuped.ci[0] < (plain.ci[1] - plain.ci[0]) / 3.0);
        assert!(
            cuped.ci[0] < 0.3 && 0.3 < cuped.ci[1],
            "the true lift 0.3 is covered"
        );
    }

    #[test]
    fn a_constant_covariate_falls_back_to_the_unadjusted_test() {
        let post_a = SampleStatistic::sample_mean(100, 250.0, 900.0);
        let post_b = SampleStatistic::sample_mean(100, 280.0, 1000.0);
        let pre = SampleStatistic::sample_mean(100, 500.0, 2500.0);
        let control = RegressionAdjusted::new(post_a, pre, 5.0 * 250.0);
        let variant = RegressionAdjusted::new(post_b, pre, 5.0 * 280.0);
        let got = compare_adjusted(
            &Method::Frequentist,
            Effect::Relative,
            &control,
            &variant,
            0.05,
        )
        .unwrap();
        let plain = compare(
            &Method::Frequentist,
            Effect::Relative,
            &post_a,
            &post_b,
            0.05,
        )
        .unwrap();
        assert_eq!(got.theta, 0.0);
        assert_eq!(got.interval, plain);
    }

    #[test]
    fn inconsistent_covariates_are_refused() {
        let post = SampleStatistic::sample_mean(100, 250.0, 900.0);
        let pre = SampleStatistic::sample_mean(100, 500.0, 2600.0);
        let good = RegressionAdjusted::new(post, pre, 1300.0);
        let short = RegressionAdjusted::new(
            post,
            SampleStatistic::sample_mean(99, 500.0, 2600.0),
            1300.0,
        );
        let binary = RegressionAdjusted::new(SampleStatistic::proportion(100, 20.0), pre, 120.0);
        let nan = RegressionAdjusted::new(post, pre, f64::NAN);
        let cases = [
            (short, good, StatsError::CovariateUsers(Arm::Control)),
            (good, binary, StatsError::MixedKinds),
            (good, nan, StatsError::NotFinite(Arm::Variant)),
        ];
        for (control, variant, want) in cases {
            let got = compare_adjusted(
                &Method::BAYESIAN_FLAT,
                Effect::Absolute,
                &control,
                &variant,
                0.05,
            );
            assert_eq!(got, Err(want.clone()));
            assert_eq!(pooled_theta(&control, &variant), Err(want));
        }
    }
}
