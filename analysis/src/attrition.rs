//! Attrition and eligibility checks: whether the subjects a pilot lost
//! (withdrawn, objected, erased) are lost evenly across variants, how the
//! loss grew day by day, and whether refusals depend on the variant a
//! refused subject would have had (they must not: eligibility is decided
//! before bucketing).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::report::SrmReport;
use crate::stats::{StatsError, check_srm};

/// One variant's subjects: assigned (kept and lost) and lost, by cause.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AttritionCounts {
    pub assigned: u64,
    /// Consent withdrawn or denied after the assignment.
    pub withdrawn: u64,
    /// An objection (Art. 21) after the assignment.
    pub objected: u64,
    /// Erased (Art. 17): their assignment and events are gone.
    pub erased: u64,
}

impl AttritionCounts {
    /// Every subject lost to the analysis.
    pub fn lost(&self) -> u64 {
        self.withdrawn + self.objected + self.erased
    }

    /// The subjects the analysis keeps.
    pub fn kept(&self) -> u64 {
        self.assigned.saturating_sub(self.lost())
    }

    fn add(&mut self, other: &AttritionCounts) {
        self.assigned += other.assigned;
        self.withdrawn += other.withdrawn;
        self.objected += other.objected;
        self.erased += other.erased;
    }
}

fn report(check: crate::stats::SampleRatioCheck) -> SrmReport {
    SrmReport {
        chi2: check.chi2,
        p_value: check.p_value,
        mismatch: check.mismatch,
    }
}

/// The lost subjects per variant tested against the assigned ones, like an
/// SRM check (chi-square; a mismatch below `SRM_P_THRESHOLD`): equal loss
/// rates give lost counts in the proportions of the assigned counts. `None`
/// when nobody was lost or fewer than two variants assigned anyone.
pub fn attrition_balance(counts: &BTreeMap<String, AttritionCounts>) -> Option<SrmReport> {
    let lost: Vec<u64> = counts.values().map(AttritionCounts::lost).collect();
    let assigned: Vec<f64> = counts.values().map(|c| c.assigned as f64).collect();
    if lost.iter().sum::<u64>() == 0 {
        return None;
    }
    check_srm(&lost, &assigned).ok().map(report)
}

/// Refused assignment calls per variant the subject would have been bucketed
/// into, tested against the split `weights`. Eligibility is decided before
/// bucketing, so refusals follow the split; a mismatch means some rule
/// looks at the variant.
pub fn refusal_independence(refused: &[u64], weights: &[f64]) -> Result<SrmReport, StatsError> {
    check_srm(refused, weights).map(report)
}

/// One day of the attrition series: per variant, the subjects assigned and
/// lost up to and including that day, and the share lost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttritionPoint {
    /// The day, as the caller labels it.
    pub day: String,
    pub variants: BTreeMap<String, CumulativeAttrition>,
}

/// The cumulative counts of one variant on one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CumulativeAttrition {
    #[serde(flatten)]
    pub counts: AttritionCounts,
    /// `lost / assigned`, 0 with nobody assigned yet.
    pub lost_share: f64,
}

/// Cumulates per-day counts `(day, variant, counts)` (assignments counted
/// on their day, losses on the day they happened) into the series, oldest
/// day first, every variant of `variants` on every day.
pub fn attrition_series(
    variants: &[String],
    daily: &[(String, String, AttritionCounts)],
) -> Vec<AttritionPoint> {
    let mut by_day: BTreeMap<&str, Vec<(&str, &AttritionCounts)>> = BTreeMap::new();
    for (day, variant, counts) in daily {
        by_day
            .entry(day.as_str())
            .or_default()
            .push((variant.as_str(), counts));
    }
    let mut running: BTreeMap<String, AttritionCounts> = variants
        .iter()
        .map(|v| (v.clone(), AttritionCounts::default()))
        .collect();
    by_day
        .into_iter()
        .map(|(day, rows)| {
            for (variant, counts) in rows {
                running.entry(variant.to_owned()).or_default().add(counts);
            }
            AttritionPoint {
                day: day.to_owned(),
                variants: running
                    .iter()
                    .map(|(variant, counts)| {
                        let lost_share = if counts.assigned == 0 {
                            0.0
                        } else {
                            counts.lost() as f64 / counts.assigned as f64
                        };
                        (
                            variant.clone(),
                            CumulativeAttrition {
                                counts: counts.clone(),
                                lost_share,
                            },
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(assigned: u64, withdrawn: u64, objected: u64, erased: u64) -> AttritionCounts {
        AttritionCounts {
            assigned,
            withdrawn,
            objected,
            erased,
        }
    }

    #[test]
    fn erasures_and_objections_count_in_the_balance_test() {
        // Withdrawals alone are even (50 and 50 of 1000 each); objections
        // and erasures are all in v1.
        let even: BTreeMap<String, AttritionCounts> = [
            ("control".to_owned(), counts(1000, 50, 0, 0)),
            ("v1".to_owned(), counts(1000, 50, 0, 0)),
        ]
        .into();
        assert!(!attrition_balance(&even).unwrap().mismatch);
        let uneven: BTreeMap<String, AttritionCounts> = [
            ("control".to_owned(), counts(1000, 50, 0, 0)),
            ("v1".to_owned(), counts(1000, 50, 30, 30)),
        ]
        .into();
        let check = attrition_balance(&uneven).unwrap();
        assert!(check.mismatch, "{check:?}");
        assert_eq!(uneven["v1"].kept(), 890);
        let nobody: BTreeMap<String, AttritionCounts> = [
            ("control".to_owned(), counts(10, 0, 0, 0)),
            ("v1".to_owned(), counts(10, 0, 0, 0)),
        ]
        .into();
        assert_eq!(attrition_balance(&nobody), None);
    }

    #[test]
    fn a_variant_dependent_refusal_rule_is_caught() {
        // 10 000 calls, split 1:1 by the hash, 20% refused by consent.
        // Before bucketing: refusals follow the split. A rule that also
        // refuses a tenth of v1's subjects (it looked at the variant) does not.
        let fair = refusal_independence(&[1_004, 996], &[1.0, 1.0]).unwrap();
        assert!(!fair.mismatch, "{fair:?}");
        let biased = refusal_independence(&[1_000, 1_000 + 500], &[1.0, 1.0]).unwrap();
        assert!(biased.mismatch, "{biased:?}");
    }

    #[test]
    fn the_series_cumulates_assignments_and_losses_per_day() {
        let variants = vec!["control".to_owned(), "v1".to_owned()];
        let daily = vec![
            (
                "2026-01-01".to_owned(),
                "control".to_owned(),
                counts(10, 0, 0, 0),
            ),
            (
                "2026-01-01".to_owned(),
                "v1".to_owned(),
                counts(10, 1, 0, 0),
            ),
            (
                "2026-01-02".to_owned(),
                "v1".to_owned(),
                counts(10, 0, 2, 1),
            ),
        ];
        let series = attrition_series(&variants, &daily);
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].variants["v1"].lost_share, 0.1);
        assert_eq!(series[1].variants["control"].counts, counts(10, 0, 0, 0));
        assert_eq!(series[1].variants["v1"].counts, counts(20, 1, 2, 1));
        assert_eq!(series[1].variants["v1"].lost_share, 0.2);
    }
}
