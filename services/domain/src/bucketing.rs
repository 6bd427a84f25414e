//! Deterministic bucketing with GrowthBook's v2 hash:
//! `n = (fnv1a32(str(fnv1a32(seed + id))) % 10000) / 10000`, FNV-1a over the
//! string's UTF-16 code units, as GrowthBook's SDKs compute it; and the SDK's
//! bucket ranges, where variant `i` owns `[c_i, c_i + coverage * w_i)` (`c_i`
//! the normalized weights before it), so a subject outside every range is not
//! in the traffic and raising the coverage never moves a subject.

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

/// The variant whose bucket range holds `n`, as GrowthBook's SDK decides it
/// (`getBucketRanges` and `chooseVariation` in @growthbook/growthbook 1.8.0).
///
/// With `w_i` the weights normalized to sum to 1 and `c_i` the sum of the
/// normalized weights before variant `i`, variant `i` owns
/// `[c_i, c_i + coverage * w_i)`: coverage shrinks each variant's range from
/// its top, so raising the coverage never moves a bucketed subject to another
/// variant. `None` when `n` is in no range (the subject is not in the
/// traffic). Coverage is clamped to [0, 1] as the SDK clamps it.
///
/// The float arithmetic is the SDK's, step for step: a running `cumulative`
/// from 0, `start = cumulative; cumulative += w; range = [start, start + coverage * w)`.
/// The SDK takes the weights as given when they sum to within [0.99, 1.01]
/// and falls back to equal weights otherwise; pilotgate divides each weight
/// by their total first, so the sum is 1 up to rounding and the fallback
/// never applies. Weights that already sum to exactly 1 are left unchanged by
/// that division, so they give the SDK's ranges bit for bit. As in the SDK,
/// there is no fallback variant: a value in no range is not in the traffic.
pub fn choose_variant(n: f64, coverage: f64, weights: &[f64]) -> Option<usize> {
    let coverage = coverage.clamp(0.0, 1.0);
    let total: f64 = weights.iter().sum();
    let mut cumulative = 0.0;
    for (index, weight) in weights.iter().enumerate() {
        let weight = weight / total;
        let start = cumulative;
        cumulative += weight;
        if n >= start && n < start + coverage * weight {
            return Some(index);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_matches_every_growthbook_vector() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../analysis/tests/data/stats-vectors.json"
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

    /// GrowthBook's bucket vectors, copied into the repository from the shared reference folder.
    fn growthbook_bucket_cases() -> Vec<serde_json::Value> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../analysis/tests/data/growthbook-buckets.json"
        );
        let text = std::fs::read_to_string(path).expect("the GrowthBook bucket vectors");
        let vectors: serde_json::Value = serde_json::from_str(&text).unwrap();
        vectors["cases"].as_array().unwrap().clone()
    }

    #[test]
    fn every_id_gets_the_variation_growthbooks_sdk_assigns() {
        let cases = growthbook_bucket_cases();
        assert!(!cases.is_empty());
        let mut mismatches = Vec::new();
        let mut checked = 0;
        for case in &cases {
            let seed = case["seed"].as_str().unwrap();
            let coverage = case["coverage"].as_f64().unwrap();
            let weights: Vec<f64> = case["weights"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_f64().unwrap())
                .collect();
            let ids = case["ids"].as_array().unwrap();
            let variations = case["variation"].as_array().unwrap();
            assert_eq!(ids.len(), variations.len(), "case {seed}");
            for (id, want) in ids.iter().zip(variations) {
                let id = id.as_str().unwrap();
                let want = want.as_i64().unwrap();
                let got = choose_variant(hash_v2(seed, id), coverage, &weights)
                    .map_or(-1, |v| i64::try_from(v).unwrap());
                checked += 1;
                if got != want {
                    mismatches.push(format!(
                        "{seed} coverage {coverage} {id}: got {got}, SDK {want}"
                    ));
                }
            }
        }
        assert!(checked >= 1_500, "only {checked} ids were checked");
        assert!(
            mismatches.is_empty(),
            "{} of {checked} ids differ from the SDK:\n{}",
            mismatches.len(),
            mismatches.join("\n")
        );
    }

    #[test]
    fn fnv_counts_utf16_code_units() {
        // "é" is one UTF-16 unit (0xE9) but two UTF-8 bytes.
        let by_unit = (0x811c_9dc5_u32 ^ 0xE9).wrapping_mul(0x0100_0193);
        assert_eq!(fnv1a32("é"), by_unit);
    }

    #[test]
    fn ranges_follow_the_weights_scaled_by_coverage() {
        let halves = [1.0, 1.0];
        // Full coverage: [0, 0.5) and [0.5, 1).
        assert_eq!(choose_variant(0.0, 1.0, &halves), Some(0));
        assert_eq!(choose_variant(0.4999, 1.0, &halves), Some(0));
        assert_eq!(choose_variant(0.5, 1.0, &halves), Some(1));
        assert_eq!(choose_variant(0.9999, 1.0, &halves), Some(1));
        // Half coverage: [0, 0.25) and [0.5, 0.75); each range keeps its start.
        assert_eq!(choose_variant(0.2, 0.5, &halves), Some(0));
        assert_eq!(choose_variant(0.25, 0.5, &halves), None);
        assert_eq!(choose_variant(0.3, 0.5, &halves), None);
        assert_eq!(choose_variant(0.5, 0.5, &halves), Some(1));
        assert_eq!(choose_variant(0.7499, 0.5, &halves), Some(1));
        assert_eq!(choose_variant(0.75, 0.5, &halves), None);
        // Weights 1:3 at full coverage: [0, 0.25) and [0.25, 1).
        let quarter = [1.0, 3.0];
        assert_eq!(choose_variant(0.2, 1.0, &quarter), Some(0));
        assert_eq!(choose_variant(0.25, 1.0, &quarter), Some(1));
        // Weights 1:3 at half coverage: [0, 0.125) and [0.25, 0.625).
        assert_eq!(choose_variant(0.1249, 0.5, &quarter), Some(0));
        assert_eq!(choose_variant(0.125, 0.5, &quarter), None);
        assert_eq!(choose_variant(0.25, 0.5, &quarter), Some(1));
        assert_eq!(choose_variant(0.6249, 0.5, &quarter), Some(1));
        assert_eq!(choose_variant(0.625, 0.5, &quarter), None);
        // Coverage outside [0, 1] is clamped, as the SDK clamps it.
        assert_eq!(choose_variant(0.9999, 1.5, &halves), Some(1));
        assert_eq!(choose_variant(0.0, -0.5, &halves), None);
    }

    #[test]
    fn raising_coverage_never_moves_a_bucketed_id_to_another_variant() {
        let key = crate::pseudonym::PseudonymKey::new(1, vec![7; 32]).unwrap();
        let coverages = [0.1, 0.5, 0.8, 1.0];
        for weights in [
            vec![1.0, 1.0],
            vec![1.0, 2.0, 1.0],
            vec![0.1, 0.9],
            vec![0.25; 4],
        ] {
            let mut bucketed = [0u32; 4];
            for i in 0..20_000 {
                let pseudonym = key.pseudonymize(&format!("user-{i}@example.com"));
                let n = hash_v2("ramp-up", pseudonym.as_str());
                let chosen: Vec<Option<usize>> = coverages
                    .iter()
                    .map(|&coverage| choose_variant(n, coverage, &weights))
                    .collect();
                for (step, pair) in chosen.windows(2).enumerate() {
                    if let Some(variant) = pair[0] {
                        assert_eq!(
                            pair[1],
                            Some(variant),
                            "weights {weights:?}: n {n} moved when coverage rose from {} to {}",
                            coverages[step],
                            coverages[step + 1]
                        );
                    }
                }
                for (count, choice) in bucketed.iter_mut().zip(&chosen) {
                    *count += u32::from(choice.is_some());
                }
            }
            // Every id is in at full coverage, and each step lets more in.
            assert_eq!(bucketed[3], 20_000, "weights {weights:?}");
            assert!(
                bucketed.windows(2).all(|pair| pair[0] < pair[1]),
                "weights {weights:?}: {bucketed:?}"
            );
        }
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
