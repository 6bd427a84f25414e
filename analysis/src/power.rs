//! Power and sample size for a pre-registered minimum detectable effect.

use statrs::distribution::{ContinuousCDF, Normal};

/// Inputs that cannot give a sample size.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PowerError {
    #[error("the baseline rate must be strictly between 0 and 1")]
    Baseline,
    #[error("the minimum detectable effect must be positive and keep the treated rate below 1")]
    Effect,
    #[error("alpha must be strictly between 0 and 1")]
    Alpha,
    #[error("power must be strictly between 0 and 1")]
    Power,
}

/// Users needed per arm to detect a relative lift `relative_mde` on a conversion
/// rate `baseline` with a two-sided test at `alpha` and the given `power`
/// (unpooled normal approximation):
/// `n = (z_{1-alpha/2} + z_power)^2 (p(1-p) + q(1-q)) / (q-p)^2`, `q = p(1+mde)`.
pub fn sample_size_per_arm(
    baseline: f64,
    relative_mde: f64,
    alpha: f64,
    power: f64,
) -> Result<f64, PowerError> {
    let open_unit = |x: f64| x > 0.0 && x < 1.0;
    if !open_unit(baseline) {
        return Err(PowerError::Baseline);
    }
    if !open_unit(alpha) {
        return Err(PowerError::Alpha);
    }
    if !open_unit(power) {
        return Err(PowerError::Power);
    }
    let treated = baseline * (1.0 + relative_mde);
    if !(relative_mde > 0.0 && treated < 1.0) {
        return Err(PowerError::Effect);
    }
    let standard = Normal::standard();
    let z = standard.inverse_cdf(1.0 - alpha / 2.0) + standard.inverse_cdf(power);
    let variance = baseline * (1.0 - baseline) + treated * (1.0 - treated);
    Ok(z * z * variance / (treated - baseline).powi(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors() -> Vec<serde_json::Value> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/stats-vectors.json");
        let text =
            std::fs::read_to_string(path).expect("the oracle vectors in analysis/tests/data");
        let all: serde_json::Value = serde_json::from_str(&text).unwrap();
        all["sample_size"].as_array().unwrap().clone()
    }

    #[test]
    fn sample_sizes_match_the_oracle_vectors() {
        let vectors = vectors();
        assert!(!vectors.is_empty());
        for v in vectors {
            let expected = v["n_per_arm"].as_f64().unwrap();
            let got = sample_size_per_arm(
                v["baseline"].as_f64().unwrap(),
                v["relative_mde"].as_f64().unwrap(),
                v["alpha"].as_f64().unwrap(),
                v["power"].as_f64().unwrap(),
            )
            .unwrap();
            assert!(((got - expected) / expected).abs() < 1e-6, "{v}: got {got}");
        }
    }

    #[test]
    fn impossible_designs_are_refused() {
        assert_eq!(
            sample_size_per_arm(0.0, 0.1, 0.05, 0.8),
            Err(PowerError::Baseline)
        );
        assert_eq!(
            sample_size_per_arm(0.6, 1.0, 0.05, 0.8),
            Err(PowerError::Effect)
        );
        assert_eq!(
            sample_size_per_arm(0.1, -0.1, 0.05, 0.8),
            Err(PowerError::Effect)
        );
        assert_eq!(
            sample_size_per_arm(0.1, 0.1, 1.0, 0.8),
            Err(PowerError::Alpha)
        );
        assert_eq!(
            sample_size_per_arm(0.1, 0.1, 0.05, 0.0),
            Err(PowerError::Power)
        );
    }
}
