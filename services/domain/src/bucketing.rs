//! Deterministic bucketing with GrowthBook's v2 hash:
//! `n = (fnv1a32(str(fnv1a32(seed + id))) % 10000) / 10000`, FNV-1a over the
//! string's UTF-16 code units, as GrowthBook's SDKs compute it.

/// 32-bit FNV-1a over the UTF-16 code units of `s`.
pub fn fnv1a32(s: &str) -> u32 {
    s.encode_utf16().fold(0x811c_9dc5_u32, |hash, unit| {
        (hash ^ u32::from(unit)).wrapping_mul(0x0100_0193)
    })
}

/// GrowthBook's v2 hash of `id` under `seed`, in [0, 1) with four decimals.
pub fn hash_v2(seed: &str, id: &str) -> f64 {
    let first = fnv1a32(&format!("{seed}{id}"));
    let second = fnv1a32(&first.to_string());
    f64::from(second % 10_000) / 10_000.0
}

/// The variant whose range holds `n`: variant `i` owns
/// `[coverage * W(i-1), coverage * W(i))` where `W` is the cumulative share of
/// the weights. `None` when `n >= coverage` (the subject is not in the traffic).
pub fn choose_variant(n: f64, coverage: f64, weights: &[f64]) -> Option<usize> {
    if n >= coverage {
        return None;
    }
    let total: f64 = weights.iter().sum();
    let mut upper = 0.0;
    for (index, weight) in weights.iter().enumerate() {
        upper += weight / total;
        if n < coverage * upper {
            return Some(index);
        }
    }
    // Rounding can leave the very top of the covered range unassigned: it belongs to the last variant.
    weights.len().checked_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_matches_every_growthbook_vector() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/reference/stats-vectors.json"
        );
        let vectors: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("the oracle vectors"))
                .unwrap();
        let cases = vectors["hash_growthbook_v2"].as_array().unwrap();
        assert!(!cases.is_empty());
        for case in cases {
            let n = hash_v2(case["seed"].as_str().unwrap(), case["id"].as_str().unwrap());
            assert_eq!(n, case["n"].as_f64().unwrap(), "{case}");
        }
    }

    #[test]
    fn fnv_counts_utf16_code_units() {
        // "é" is one UTF-16 unit (0xE9) but two UTF-8 bytes.
        let by_unit = (0x811c_9dc5_u32 ^ 0xE9).wrapping_mul(0x0100_0193);
        assert_eq!(fnv1a32("é"), by_unit);
    }

    #[test]
    fn ranges_follow_the_weights_scaled_by_coverage() {
        let weights = [1.0, 1.0];
        assert_eq!(choose_variant(0.0, 1.0, &weights), Some(0));
        assert_eq!(choose_variant(0.4999, 1.0, &weights), Some(0));
        assert_eq!(choose_variant(0.5, 1.0, &weights), Some(1));
        assert_eq!(choose_variant(0.9999, 1.0, &weights), Some(1));
        assert_eq!(choose_variant(0.2, 0.5, &weights), Some(0));
        assert_eq!(choose_variant(0.3, 0.5, &weights), Some(1));
        assert_eq!(choose_variant(0.5, 0.5, &weights), None);
        assert_eq!(choose_variant(0.2, 1.0, &[1.0, 3.0]), Some(0));
        assert_eq!(choose_variant(0.25, 1.0, &[1.0, 3.0]), Some(1));
    }

    #[test]
    fn over_100000_pseudonyms_the_split_matches_the_weights() {
        let key = crate::pseudonym::PseudonymKey::new(1, vec![5; 32]).unwrap();
        let weights = [1.0, 2.0, 1.0];
        let mut counts = [0u64; 3];
        let mut outside = 0u64;
        for i in 0..100_000 {
            let pseudonym = key.pseudonymize(&format!("user-{i}@example.com"));
            match choose_variant(hash_v2("split-test", pseudonym.as_str()), 0.8, &weights) {
                Some(v) => counts[v] += 1,
                None => outside += 1,
            }
        }
        let inside: u64 = counts.iter().sum();
        let total: f64 = weights.iter().sum();
        let chi2: f64 = counts
            .iter()
            .zip(weights)
            .map(|(&observed, w)| {
                let expected = inside as f64 * w / total;
                (observed as f64 - expected).powi(2) / expected
            })
            .sum();
        // Two degrees of freedom: p > 0.001 means chi2 < 13.816.
        assert!(chi2 < 13.816, "chi2 {chi2} for {counts:?}");
        let share_outside = outside as f64 / 100_000.0;
        assert!((share_outside - 0.2).abs() < 0.01, "{share_outside}");
    }
}
