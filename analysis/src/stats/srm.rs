//! Sample ratio mismatch: a Pearson chi-square test of the users per variant
//! against the expected split, as gbstats `check_srm`.

use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::error::StatsError;

/// Below this p-value the split is flagged as a sample ratio mismatch.
pub const SRM_P_THRESHOLD: f64 = 0.001;

/// The outcome of a sample ratio check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRatioCheck {
    /// Pearson's statistic `sum (observed - expected)^2 / expected`.
    pub chi2: f64,
    /// The chi-square survival probability with `variants - 1` degrees of freedom.
    pub p_value: f64,
    /// True when `p_value < SRM_P_THRESHOLD`.
    pub mismatch: bool,
}

/// Tests `users` per variant against the expected split `weights` (any
/// positive scale). As in gbstats, a variant of weight 0 adds nothing to the
/// statistic but still counts towards the degrees of freedom, and no users at
/// all give a p-value of 1.
pub fn check_srm(users: &[u64], weights: &[f64]) -> Result<SampleRatioCheck, StatsError> {
    if users.len() != weights.len() {
        return Err(StatsError::SrmLengths {
            users: users.len(),
            weights: weights.len(),
        });
    }
    if users.len() < 2 {
        return Err(StatsError::SrmTooFewVariants);
    }
    let total_weight: f64 = weights.iter().sum();
    let weights_usable = weights.iter().all(|w| w.is_finite() && *w >= 0.0)
        && total_weight.is_finite()
        && total_weight > 0.0;
    if !weights_usable {
        return Err(StatsError::SrmWeights);
    }
    let total_users = users.iter().sum::<u64>() as f64;
    if total_users == 0.0 {
        return Ok(SampleRatioCheck {
            chi2: 0.0,
            p_value: 1.0,
            mismatch: false,
        });
    }
    let chi2: f64 = users
        .iter()
        .zip(weights)
        .filter(|(_, weight)| **weight > 0.0)
        .map(|(observed, weight)| {
            let expected = weight / total_weight * total_users;
            (*observed as f64 - expected).powi(2) / expected
        })
        .sum();
    let freedom = (users.len() - 1) as f64;
    let distribution = ChiSquared::new(freedom).map_err(|_| StatsError::NonFiniteResult)?;
    let p_value = distribution.sf(chi2);
    if !(chi2.is_finite() && p_value.is_finite()) {
        return Err(StatsError::NonFiniteResult);
    }
    Ok(SampleRatioCheck {
        chi2,
        p_value,
        mismatch: p_value < SRM_P_THRESHOLD,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::test_vectors::{assert_close, vectors};

    #[test]
    fn every_srm_vector_matches_gbstats() {
        let all = vectors();
        let cases = all["srm"].as_array().expect("srm is a list");
        assert_eq!(cases.len(), 4);
        for case in cases {
            let users: Vec<u64> = case["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_u64().unwrap())
                .collect();
            let weights: Vec<f64> = case["weights"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_f64().unwrap())
                .collect();
            let got = check_srm(&users, &weights).unwrap();
            assert_close(got.p_value, &case["p_value"], &format!("srm {case}"));
            let expected = case["p_value"].as_f64().unwrap();
            assert_eq!(got.mismatch, expected < SRM_P_THRESHOLD, "{case}");
        }
    }

    #[test]
    fn a_one_to_one_split_gives_the_textbook_statistic() {
        // 1000 vs 1200 against 1100 each: (100^2 + 100^2) / 1100.
        let got = check_srm(&[1000, 1200], &[1.0, 1.0]).unwrap();
        assert!((got.chi2 - 20000.0 / 1100.0).abs() < 1e-9);
        assert!(got.mismatch);
        let balanced = check_srm(&[500, 500], &[2.0, 2.0]).unwrap();
        assert_eq!(
            (balanced.chi2, balanced.p_value, balanced.mismatch),
            (0.0, 1.0, false)
        );
    }

    #[test]
    fn unusable_inputs_are_refused_or_neutral() {
        assert_eq!(
            check_srm(&[10, 20], &[1.0]),
            Err(StatsError::SrmLengths {
                users: 2,
                weights: 1
            })
        );
        assert_eq!(check_srm(&[10], &[1.0]), Err(StatsError::SrmTooFewVariants));
        assert_eq!(
            check_srm(&[10, 20], &[0.0, 0.0]),
            Err(StatsError::SrmWeights)
        );
        assert_eq!(
            check_srm(&[10, 20], &[-1.0, 2.0]),
            Err(StatsError::SrmWeights)
        );
        assert_eq!(
            check_srm(&[10, 20], &[f64::NAN, 1.0]),
            Err(StatsError::SrmWeights)
        );
        assert_eq!(check_srm(&[0, 0], &[1.0, 1.0]).unwrap().p_value, 1.0);
    }
}
