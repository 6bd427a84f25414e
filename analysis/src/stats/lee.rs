//! Lee (2009) trimming bounds: the effect of a variant on an outcome seen
//! only for the subjects who stayed, under the worst case the attrition
//! allows.
//!
//! When one arm keeps a larger share `q_hi` of its assigned subjects than
//! the other (`q_lo`), the extra share `p = (q_hi - q_lo) / q_hi` of its kept
//! subjects may be the ones the other arm lost. Trimming that share from the
//! top of its outcome distribution gives the lowest mean it can have over
//! the comparable subjects, trimming it from the bottom the highest; the
//! difference to the other arm's mean bounds the effect (Lee, "Training,
//! Wages, and Sample Selection", Review of Economic Studies 76, 2009, under
//! monotone attrition). The bounds are estimates: they carry no sampling
//! error of their own.

use super::error::{Arm, StatsError};

/// One arm: how many subjects were assigned, and the outcomes of those kept
/// as `(value, how many kept subjects have it)`, in any order.
#[derive(Debug, Clone, PartialEq)]
pub struct TrimGroup {
    pub assigned: u64,
    pub outcomes: Vec<(f64, u64)>,
}

impl TrimGroup {
    fn kept(&self) -> u64 {
        self.outcomes.iter().map(|(_, n)| n).sum()
    }

    fn mean(&self) -> f64 {
        let kept = self.kept() as f64;
        self.outcomes
            .iter()
            .map(|(v, n)| v * *n as f64)
            .sum::<f64>()
            / kept
    }

    /// The mean after removing `share` of the kept subjects from the top
    /// (`from_top`) or the bottom of the distribution; a subject may be
    /// removed in part, so the share is exact.
    fn trimmed_mean(&self, share: f64, from_top: bool) -> f64 {
        let mut sorted = self.outcomes.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        if from_top {
            sorted.reverse();
        }
        let kept = self.kept() as f64;
        let mut to_remove = share * kept;
        let (mut sum, mut weight) = (0.0, 0.0);
        for (value, count) in sorted {
            let removed = to_remove.min(count as f64);
            to_remove -= removed;
            let left = count as f64 - removed;
            sum += value * left;
            weight += left;
        }
        sum / weight
    }
}

/// Which arm was trimmed and by how much, with the bounds of the absolute
/// effect (variant mean minus control mean) and, when the control's means
/// are positive, of the relative effect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeeBounds {
    /// The arm that kept the larger share of its subjects, the one trimmed.
    pub trimmed: Arm,
    /// The share of that arm's kept subjects trimmed, `p`.
    pub trimmed_share: f64,
    pub absolute: [f64; 2],
    pub relative: Option<[f64; 2]>,
}

/// The Lee bounds of `variant` against `control`.
pub fn lee_bounds(control: &TrimGroup, variant: &TrimGroup) -> Result<LeeBounds, StatsError> {
    for (arm, group) in [(Arm::Control, control), (Arm::Variant, variant)] {
        let finite = group.outcomes.iter().all(|(v, _)| v.is_finite());
        if !finite || group.kept() > group.assigned {
            return Err(StatsError::NotFinite(arm));
        }
        if group.kept() < 1 {
            return Err(StatsError::TooFewUsers(arm));
        }
    }
    let kept_share = |g: &TrimGroup| g.kept() as f64 / g.assigned as f64;
    let (q_control, q_variant) = (kept_share(control), kept_share(variant));
    let (trimmed, share, [low_control, high_control], [low_variant, high_variant]) =
        if q_variant >= q_control {
            let share = (q_variant - q_control) / q_variant;
            let control_mean = control.mean();
            (
                Arm::Variant,
                share,
                [control_mean, control_mean],
                [
                    variant.trimmed_mean(share, true),
                    variant.trimmed_mean(share, false),
                ],
            )
        } else {
            let share = (q_control - q_variant) / q_control;
            let variant_mean = variant.mean();
            (
                Arm::Control,
                share,
                [
                    control.trimmed_mean(share, true),
                    control.trimmed_mean(share, false),
                ],
                [variant_mean, variant_mean],
            )
        };
    // The lowest effect pairs the lowest variant mean with the highest
    // control mean, and the other way round.
    let absolute = [low_variant - high_control, high_variant - low_control];
    let relative = (low_control > 0.0).then(|| {
        [
            low_variant / high_control - 1.0,
            high_variant / low_control - 1.0,
        ]
    });
    let bounds = LeeBounds {
        trimmed,
        trimmed_share: share,
        absolute,
        relative,
    };
    let all_finite = absolute
        .iter()
        .chain(relative.iter().flatten())
        .all(|x| x.is_finite());
    if all_finite {
        Ok(bounds)
    } else {
        Err(StatsError::NonFiniteResult)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn a_hand_computed_example_trims_the_arm_that_kept_more() {
        // Control: 10 assigned, 8 kept with outcomes 1..=8 (mean 4.5).
        // Variant: 10 assigned, all 10 kept with outcomes 1..=10 (mean 5.5).
        // q_control = 0.8, q_variant = 1.0, p = 0.2: trim 2 of the variant's 10.
        // Trimmed from the top: 1..=8, mean 4.5; from the bottom: 3..=10, mean 6.5.
        let control = TrimGroup {
            assigned: 10,
            outcomes: (1..=8).map(|v| (f64::from(v), 1)).collect(),
        };
        let variant = TrimGroup {
            assigned: 10,
            outcomes: (1..=10).map(|v| (f64::from(v), 1)).collect(),
        };
        let bounds = lee_bounds(&control, &variant).unwrap();
        assert_eq!(bounds.trimmed, Arm::Variant);
        assert!(close(bounds.trimmed_share, 0.2));
        assert!(close(bounds.absolute[0], 0.0), "{bounds:?}");
        assert!(close(bounds.absolute[1], 2.0), "{bounds:?}");
        let relative = bounds.relative.unwrap();
        assert!(
            close(relative[0], 0.0) && close(relative[1], 2.0 / 4.5),
            "{bounds:?}"
        );
    }

    #[test]
    fn a_fractional_share_trims_part_of_a_subject_and_binary_outcomes_use_counts() {
        // Control: 100 assigned, 90 kept, 30 converted (mean 1/3).
        // Variant: 100 assigned, 60 kept, 24 converted (mean 0.4).
        // q_control = 0.9 > q_variant = 0.6: p = 1/3 of the control's 90, 30 subjects.
        // Trimmed from the top: 30 ones go, 0 of 60 left: mean 0.
        // Trimmed from the bottom: 30 zeros go, 30 of 60: mean 0.5.
        let control = TrimGroup {
            assigned: 100,
            outcomes: vec![(1.0, 30), (0.0, 60)],
        };
        let variant = TrimGroup {
            assigned: 100,
            outcomes: vec![(0.0, 36), (1.0, 24)],
        };
        let bounds = lee_bounds(&control, &variant).unwrap();
        assert_eq!(bounds.trimmed, Arm::Control);
        assert!(close(bounds.trimmed_share, 1.0 / 3.0));
        assert!(close(bounds.absolute[0], 0.4 - 0.5), "{bounds:?}");
        assert!(close(bounds.absolute[1], 0.4 - 0.0), "{bounds:?}");
        assert_eq!(
            bounds.relative, None,
            "the control may be trimmed to a mean of 0"
        );

        // A share that is not a whole number of subjects: control 3 assigned,
        // 3 kept (0, 3, 6); variant 4 assigned, 3 kept, each 1. p = 1/4 of
        // the control's 3 subjects, 0.75 of one. From the top: 0.75 of the 6
        // goes, (0 + 3 + 1.5) / 2.25 = 2; from the bottom: 0.75 of the 0, 9 / 2.25 = 4.
        let control = TrimGroup {
            assigned: 3,
            outcomes: vec![(6.0, 1), (0.0, 1), (3.0, 1)],
        };
        let variant = TrimGroup {
            assigned: 4,
            outcomes: vec![(1.0, 3)],
        };
        let bounds = lee_bounds(&control, &variant).unwrap();
        assert!(close(bounds.trimmed_share, 0.25));
        assert!(close(bounds.absolute[0], 1.0 - 4.0), "{bounds:?}");
        assert!(close(bounds.absolute[1], 1.0 - 2.0), "{bounds:?}");
        let relative = bounds.relative.unwrap();
        assert!(
            close(relative[0], -0.75) && close(relative[1], -0.5),
            "{bounds:?}"
        );
    }

    #[test]
    fn equal_attrition_gives_the_plain_difference_and_bad_input_is_refused() {
        let control = TrimGroup {
            assigned: 10,
            outcomes: vec![(1.0, 4), (0.0, 4)],
        };
        let variant = TrimGroup {
            assigned: 10,
            outcomes: vec![(1.0, 6), (0.0, 2)],
        };
        let bounds = lee_bounds(&control, &variant).unwrap();
        assert_eq!(bounds.trimmed_share, 0.0);
        assert!(close(bounds.absolute[0], 0.25) && close(bounds.absolute[1], 0.25));
        let empty = TrimGroup {
            assigned: 10,
            outcomes: vec![],
        };
        assert_eq!(
            lee_bounds(&empty, &variant),
            Err(StatsError::TooFewUsers(Arm::Control))
        );
        let impossible = TrimGroup {
            assigned: 1,
            outcomes: vec![(1.0, 2)],
        };
        assert_eq!(
            lee_bounds(&control, &impossible),
            Err(StatsError::NotFinite(Arm::Variant))
        );
    }
}
