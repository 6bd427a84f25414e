//! An anytime-valid sample ratio check: the Dirichlet-multinomial Bayes
//! factor of Lindon & Malek, "Anytime-valid inference for multinomial count
//! data" (NeurIPS 2022), the test behind Optimizely's and Eppo's SRM alarm.
//!
//! Under the expected split `p`, the Bayes factor of a Dirichlet(`k p`)
//! mixture against `p` is a nonnegative martingale with mean 1, so by
//! Ville's inequality it exceeds `1 / alpha` at ANY look with probability at
//! most `alpha`: looking at the badge every day (or after every user) does
//! not inflate the false alarms, unlike the chi-square test beside it. The
//! anytime-valid p-value is the smallest `1 / BF` over the looks so far.

use statrs::function::gamma::ln_gamma;

use super::error::StatsError;

/// The prior's concentration `k` (Dirichlet parameters `k p`), the default of
/// Lindon's `savvi` package.
pub const PRIOR_CONCENTRATION: f64 = 100.0;

/// The outcome of the sequential check over a series of looks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SequentialSrmCheck {
    /// The Bayes factor against the expected split at the last look.
    pub bayes_factor: f64,
    /// The anytime-valid p-value: `min(1, 1 / BF)` at the worst look so far.
    pub p_value: f64,
    /// True when `p_value` is below `threshold`.
    pub mismatch: bool,
}

/// The natural logarithm of the Bayes factor of `counts` against `weights`
/// (normalized here) under a Dirichlet(`k p`) prior. A variant of weight 0
/// with users is infinitely unlikely under the split.
fn log_bayes_factor(counts: &[u64], p: &[f64], k: f64) -> f64 {
    let total: f64 = counts
        .iter()
        .zip(p)
        .filter(|(_, p)| **p > 0.0)
        .map(|(n, _)| *n as f64)
        .sum();
    if counts.iter().zip(p).any(|(n, p)| *p == 0.0 && *n > 0) {
        return f64::INFINITY;
    }
    let mut log_bf = ln_gamma(k) - ln_gamma(k + total);
    for (n, p) in counts.iter().zip(p).filter(|(_, p)| **p > 0.0) {
        let n = *n as f64;
        log_bf += ln_gamma(k * p + n) - ln_gamma(k * p) - n * p.ln();
    }
    log_bf
}

/// Checks the cumulative users per variant at each look (`looks`, oldest
/// first, each as long as `weights`) against the expected split `weights`;
/// a mismatch when the anytime-valid p-value falls below `threshold`.
pub fn sequential_srm(
    looks: &[Vec<u64>],
    weights: &[f64],
    threshold: f64,
) -> Result<SequentialSrmCheck, StatsError> {
    if weights.len() < 2 {
        return Err(StatsError::SrmTooFewVariants);
    }
    if let Some(look) = looks.iter().find(|l| l.len() != weights.len()) {
        return Err(StatsError::SrmLengths {
            users: look.len(),
            weights: weights.len(),
        });
    }
    let total_weight: f64 = weights.iter().sum();
    let usable = weights.iter().all(|w| w.is_finite() && *w >= 0.0)
        && total_weight.is_finite()
        && total_weight > 0.0;
    if !usable {
        return Err(StatsError::SrmWeights);
    }
    if !(threshold > 0.0 && threshold < 1.0) {
        return Err(StatsError::Alpha);
    }
    let p: Vec<f64> = weights.iter().map(|w| w / total_weight).collect();
    let mut largest_log_bf: f64 = 0.0;
    let mut last_log_bf = 0.0;
    for look in looks {
        last_log_bf = log_bayes_factor(look, &p, PRIOR_CONCENTRATION);
        if last_log_bf.is_nan() {
            return Err(StatsError::NonFiniteResult);
        }
        largest_log_bf = largest_log_bf.max(last_log_bf);
    }
    let p_value = (-largest_log_bf).exp().min(1.0);
    Ok(SequentialSrmCheck {
        bayes_factor: last_log_bf.exp(),
        p_value,
        mismatch: p_value < threshold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (SplitMix64), so the simulation is
    /// the same on every run.
    struct SplitMix(u64);

    impl SplitMix {
        fn uniform(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// `days` looks of `per_day` users each, split by `share` of the first variant.
    fn simulate(rng: &mut SplitMix, days: usize, per_day: u64, share: f64) -> Vec<Vec<u64>> {
        let mut counts = vec![0u64, 0];
        (0..days)
            .map(|_| {
                for _ in 0..per_day {
                    counts[usize::from(rng.uniform() >= share)] += 1;
                }
                counts.clone()
            })
            .collect()
    }

    #[test]
    fn a_hand_computed_bayes_factor() {
        // Two users, one per variant, split 1:1, k = 100 (a_i = 50):
        // BF = G(100)/G(102) * (G(51)/G(50))^2 / (1/2)^2 = 50^2 * 4 / (100 * 101).
        let got = sequential_srm(&[vec![1, 1]], &[1.0, 1.0], 0.05).unwrap();
        let expected = 50.0 * 50.0 * 4.0 / (100.0 * 101.0);
        assert!((got.bayes_factor - expected).abs() < 1e-9, "{got:?}");
        assert_eq!(got.p_value, 1.0, "a Bayes factor below 1 proves nothing");
    }

    #[test]
    fn a_clear_mismatch_is_caught_and_a_balanced_split_is_not() {
        let skewed = sequential_srm(&[vec![5_000, 5_600]], &[1.0, 1.0], 0.001).unwrap();
        assert!(skewed.mismatch, "{skewed:?}");
        assert!(skewed.p_value < 1e-4, "{skewed:?}");
        let balanced = sequential_srm(&[vec![5_000, 5_030]], &[1.0, 1.0], 0.001).unwrap();
        assert!(!balanced.mismatch, "{balanced:?}");
        let unequal = sequential_srm(&[vec![2_000, 6_000]], &[1.0, 3.0], 0.001).unwrap();
        assert!(
            !unequal.mismatch,
            "a 1:3 split that follows its weights: {unequal:?}"
        );
    }

    #[test]
    fn the_p_value_keeps_the_worst_look() {
        // An early imbalance that later evens out still counts: that is what
        // makes the p-value valid whenever it is read.
        let looks = vec![vec![700, 1_000], vec![5_000, 5_300]];
        let got = sequential_srm(&looks, &[1.0, 1.0], 0.05).unwrap();
        let last_only = sequential_srm(&looks[1..], &[1.0, 1.0], 0.05).unwrap();
        assert!(got.p_value < last_only.p_value, "{got:?} {last_only:?}");
        assert!(got.mismatch);
    }

    #[test]
    fn under_daily_peeking_the_false_alarm_rate_stays_below_alpha() {
        // 2000 pilots with a true 1:1 split, read every day for 30 days:
        // the share that EVER crosses alpha = 0.05 stays at most 0.05. The
        // chi-square test read the same way is shown to cross far more often.
        let mut rng = SplitMix(24);
        let (pilots, alpha) = (2_000, 0.05);
        let (mut sequential_alarms, mut chi_square_alarms) = (0, 0);
        for _ in 0..pilots {
            let looks = simulate(&mut rng, 30, 100, 0.5);
            if sequential_srm(&looks, &[1.0, 1.0], alpha).unwrap().mismatch {
                sequential_alarms += 1;
            }
            let any_chi_square = looks
                .iter()
                .any(|l| crate::stats::check_srm(l, &[1.0, 1.0]).unwrap().p_value < alpha);
            chi_square_alarms += usize::from(any_chi_square);
        }
        let rate = f64::from(sequential_alarms) / f64::from(pilots);
        let chi_rate = chi_square_alarms as f64 / f64::from(pilots);
        assert!(rate <= alpha, "sequential false alarms {rate}");
        assert!(chi_rate > 2.0 * alpha, "peeking at chi-square: {chi_rate}");
    }

    #[test]
    fn a_real_mismatch_is_caught_under_peeking() {
        // A 52:48 split, 30 days of 1000 users: caught in most pilots.
        let mut rng = SplitMix(7);
        let caught = (0..200)
            .filter(|_| {
                let looks = simulate(&mut rng, 30, 1_000, 0.52);
                sequential_srm(&looks, &[1.0, 1.0], 0.05).unwrap().mismatch
            })
            .count();
        assert!(caught >= 180, "caught {caught} of 200");
    }

    #[test]
    fn unusable_inputs_are_refused() {
        assert_eq!(
            sequential_srm(&[vec![1, 2, 3]], &[1.0, 1.0], 0.05),
            Err(StatsError::SrmLengths {
                users: 3,
                weights: 2
            })
        );
        assert_eq!(
            sequential_srm(&[vec![1]], &[1.0], 0.05),
            Err(StatsError::SrmTooFewVariants)
        );
        assert_eq!(
            sequential_srm(&[vec![1, 1]], &[0.0, 0.0], 0.05),
            Err(StatsError::SrmWeights)
        );
        assert_eq!(
            sequential_srm(&[vec![1, 1]], &[1.0, 1.0], 1.5),
            Err(StatsError::Alpha)
        );
        let none = sequential_srm(&[], &[1.0, 1.0], 0.05).unwrap();
        assert_eq!((none.p_value, none.mismatch), (1.0, false));
        let impossible = sequential_srm(&[vec![3, 1]], &[1.0, 0.0], 0.05).unwrap();
        assert!(impossible.mismatch, "users in a variant of weight 0");
    }
}
