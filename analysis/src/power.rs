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

/// The power of the relative-lift interval (the interval the decision
/// reads) at `per_arm` users per arm, when the true lift is `relative_mde`
/// on `baseline` (normal approximation, the far tail left out). Its lower
/// bound is above 0 when the observed difference `d` exceeds
/// `z sqrt((q(1-q) + p(1-p) r²) / n)`, with `r = 1 + d/p` the observed
/// ratio: the delta-method variance is read at that boundary (a fixed
/// point), not at the true lift. It is below the power of the difference
/// of rates that [`sample_size_per_arm`] plans for, most for rare
/// conversions and large lifts.
pub fn relative_interval_power(baseline: f64, relative_mde: f64, alpha: f64, per_arm: f64) -> f64 {
    let (p, q) = (baseline, baseline * (1.0 + relative_mde));
    let standard = Normal::standard();
    let z = standard.inverse_cdf(1.0 - alpha / 2.0);
    let mut boundary = 0.0;
    for _ in 0..100 {
        let ratio = 1.0 + boundary / p;
        boundary = z * ((q * (1.0 - q) + p * (1.0 - p) * ratio * ratio) / per_arm).sqrt();
    }
    let spread = ((q * (1.0 - q) + p * (1.0 - p)) / per_arm).sqrt();
    standard.cdf((q - p - boundary) / spread)
}

/// Users needed per arm for the relative-lift interval to exclude 0 with
/// the given `power` when the true lift is `relative_mde`: the smallest
/// `n` (unrounded, by bisection) with [`relative_interval_power`] at least
/// `power`. This is what the service plans: the decision reads the
/// relative interval, so a plan for the difference of rates
/// ([`sample_size_per_arm`]) would fall short of its power (75.9% instead
/// of 80% for a baseline of 5% and an MDE of +20%).
pub fn relative_sample_size_per_arm(
    baseline: f64,
    relative_mde: f64,
    alpha: f64,
    power: f64,
) -> Result<f64, PowerError> {
    let difference = sample_size_per_arm(baseline, relative_mde, alpha, power)?;
    let reaches = |n: f64| relative_interval_power(baseline, relative_mde, alpha, n) >= power;
    let (mut low, mut high) = (difference / 2.0, difference);
    while !reaches(high) {
        low = high;
        high *= 2.0;
    }
    for _ in 0..200 {
        let middle = (low + high) / 2.0;
        if reaches(middle) {
            high = middle;
        } else {
            low = middle;
        }
        if high - low < 1e-9 * high {
            break;
        }
    }
    Ok(high)
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
    fn the_relative_plan_reaches_its_power_and_needs_more_than_the_difference_of_rates() {
        for (baseline, mde, power) in [(0.1, 0.1, 0.8), (0.05, 0.2, 0.8), (0.3, 0.05, 0.9)] {
            let relative = relative_sample_size_per_arm(baseline, mde, 0.05, power).unwrap();
            let difference = sample_size_per_arm(baseline, mde, 0.05, power).unwrap();
            assert!(
                relative > difference,
                "{baseline} {mde}: {relative} {difference}"
            );
            let reached = relative_interval_power(baseline, mde, 0.05, relative);
            assert!((reached - power).abs() < 1e-6, "{reached}");
            let short = relative_interval_power(baseline, mde, 0.05, relative * 0.99);
            assert!(short < power, "{short}");
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
