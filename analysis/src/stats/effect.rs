//! The effect of a variant over the control, absolute or relative, with its
//! delta-method variance, and the checks that make it defined.

use super::error::{Arm, StatsError};
use super::moments::ArmMoments;

/// How a variant is compared with the control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The relative lift `(mean_variant - mean_control) / mean_control`.
    Relative,
    /// The difference `mean_variant - mean_control`.
    Absolute,
}

/// The point estimate of the effect, as gbstats `frequentist_diff`: a
/// relative effect divides by the control's unadjusted mean.
pub(crate) fn difference(effect: Effect, control: &ArmMoments, variant: &ArmMoments) -> f64 {
    match effect {
        Effect::Relative => (variant.mean - control.mean) / control.unadjusted_mean,
        Effect::Absolute => variant.mean - control.mean,
    }
}

/// The variance of the effect estimate, as gbstats `frequentist_variance`:
/// `vB/nB + vA/nA` for an absolute effect and the delta-method
/// `vB/(nB mA^2) + vA mB^2/(nA mA^4)` (with unadjusted means) for a relative one.
pub(crate) fn difference_variance(
    effect: Effect,
    control: &ArmMoments,
    variant: &ArmMoments,
) -> f64 {
    let (n_a, n_b) = (control.n as f64, variant.n as f64);
    match effect {
        Effect::Relative => {
            let (m_a, m_b) = (control.unadjusted_mean, variant.unadjusted_mean);
            variant.variance / (m_a * m_a * n_b)
                + control.variance * m_b * m_b / (m_a.powi(4) * n_a)
        }
        Effect::Absolute => variant.variance / n_b + control.variance / n_a,
    }
}

/// Refuses a pair of arms on which the effect is undefined: a number that is
/// not finite, fewer than 2 users in an arm, a zero control mean for a
/// relative effect, or an arm without positive variance (gbstats refuses when
/// either arm has zero variance).
pub(crate) fn check_pair(
    effect: Effect,
    control: &ArmMoments,
    variant: &ArmMoments,
) -> Result<(), StatsError> {
    let arms = [(Arm::Control, control), (Arm::Variant, variant)];
    for (arm, moments) in arms {
        let numbers = [moments.mean, moments.unadjusted_mean, moments.variance];
        if numbers.iter().any(|x| !x.is_finite()) {
            return Err(StatsError::NotFinite(arm));
        }
    }
    for (arm, moments) in arms {
        if moments.n < 2 {
            return Err(StatsError::TooFewUsers(arm));
        }
    }
    if effect == Effect::Relative && (control.mean == 0.0 || control.unadjusted_mean == 0.0) {
        return Err(StatsError::ZeroControlMean);
    }
    for (arm, moments) in arms {
        if moments.variance <= 0.0 {
            return Err(StatsError::ZeroVariance(arm));
        }
    }
    Ok(())
}

/// Refuses an alpha outside (0, 1).
pub(crate) fn check_alpha(alpha: f64) -> Result<(), StatsError> {
    if alpha > 0.0 && alpha < 1.0 {
        Ok(())
    } else {
        Err(StatsError::Alpha)
    }
}
