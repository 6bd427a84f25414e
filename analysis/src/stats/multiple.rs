//! Multiple comparison corrections: Holm–Bonferroni and Benjamini–Hochberg
//! adjusted p-values, as statsmodels `multipletests` computes them.

use super::error::StatsError;

fn check_p_values(p_values: &[f64]) -> Result<(), StatsError> {
    if p_values.iter().all(|p| (0.0..=1.0).contains(p)) {
        Ok(())
    } else {
        Err(StatsError::PValue)
    }
}

/// The indices of `p_values` from the smallest p-value to the largest.
fn ascending_order(p_values: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p_values.len()).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    order
}

/// Holm–Bonferroni adjusted p-values, in the input order: the i-th smallest
/// of m p-values is multiplied by `m - i + 1`, made non-decreasing in that
/// order by a running maximum, and capped at 1. These control the
/// family-wise error rate.
pub fn holm(p_values: &[f64]) -> Result<Vec<f64>, StatsError> {
    check_p_values(p_values)?;
    let m = p_values.len();
    let mut adjusted = vec![0.0; m];
    let mut running_max: f64 = 0.0;
    for (rank, &index) in ascending_order(p_values).iter().enumerate() {
        running_max = running_max.max((m - rank) as f64 * p_values[index]);
        adjusted[index] = running_max.min(1.0);
    }
    Ok(adjusted)
}

/// Benjamini–Hochberg adjusted p-values (q-values), in the input order: the
/// i-th smallest of m p-values is multiplied by `m / i`, made non-decreasing
/// by a running minimum from the largest down, and capped at 1. These
/// control the false discovery rate.
pub fn benjamini_hochberg(p_values: &[f64]) -> Result<Vec<f64>, StatsError> {
    check_p_values(p_values)?;
    let m = p_values.len();
    let mut adjusted = vec![0.0; m];
    let mut running_min: f64 = 1.0;
    for (rank, &index) in ascending_order(p_values).iter().enumerate().rev() {
        let scaled = p_values[index] / ((rank + 1) as f64 / m as f64);
        running_min = running_min.min(scaled);
        adjusted[index] = running_min;
    }
    Ok(adjusted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::test_vectors::{assert_close, vectors};

    fn check_vector(key: &str, adjust: fn(&[f64]) -> Result<Vec<f64>, StatsError>) {
        let all = vectors();
        let case = &all[key];
        let p_values: Vec<f64> = case["p_values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect();
        let expected = case["adjusted"].as_array().unwrap();
        let got = adjust(&p_values).unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(!got.is_empty());
        for (i, (got, want)) in got.iter().zip(expected).enumerate() {
            assert_close(*got, want, &format!("{key}[{i}]"));
        }
    }

    #[test]
    fn holm_matches_the_oracle_vector() {
        check_vector("holm", holm);
    }

    #[test]
    fn benjamini_hochberg_matches_the_oracle_vector() {
        check_vector("benjamini_hochberg", benjamini_hochberg);
    }

    #[test]
    fn corrections_never_lower_a_p_value_nor_exceed_one() {
        let p_values = [0.2, 0.0, 1.0, 0.04, 0.04, 0.9];
        for adjusted in [
            holm(&p_values).unwrap(),
            benjamini_hochberg(&p_values).unwrap(),
        ] {
            for (raw, adjusted) in p_values.iter().zip(&adjusted) {
                assert!(adjusted >= raw && *adjusted <= 1.0, "{raw} -> {adjusted}");
            }
            // Tied p-values get the same adjusted value.
            assert_eq!(adjusted[3], adjusted[4]);
        }
        assert_eq!(holm(&[0.01]).unwrap(), vec![0.01]);
        assert_eq!(benjamini_hochberg(&[]).unwrap(), Vec::<f64>::new());
    }

    #[test]
    fn p_values_outside_the_unit_interval_are_refused() {
        for bad in [[0.5, 1.5], [-0.1, 0.5], [f64::NAN, 0.5]] {
            assert_eq!(holm(&bad), Err(StatsError::PValue));
            assert_eq!(benjamini_hochberg(&bad), Err(StatsError::PValue));
        }
    }
}
