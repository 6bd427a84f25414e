//! Why a statistic could not be computed, in one sentence a reader can act on.

use std::fmt;

/// One side of a two-arm comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm {
    Control,
    Variant,
}

impl fmt::Display for Arm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arm::Control => "control",
            Arm::Variant => "variant",
        })
    }
}

/// Inputs that give no meaningful statistic. Callers render the result as
/// null and show this message, which explains why in one sentence.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    #[error("the {0} has fewer than 2 users, so its variance cannot be estimated")]
    TooFewUsers(Arm),
    #[error("the {0} has no variance (every user has the same value), so no test can be computed")]
    ZeroVariance(Arm),
    #[error("the control mean is 0, so a relative lift is undefined")]
    ZeroControlMean,
    #[error("the {0} statistics contain a number that is not finite or that overflows")]
    NotFinite(Arm),
    #[error("the result overflowed to a non-finite number, so the inputs are too extreme to test")]
    NonFiniteResult,
    #[error("alpha must be strictly between 0 and 1")]
    Alpha,
    #[error("the sequential tuning parameter must be a positive finite number of users")]
    Tuning,
    #[error("the prior variance must be a positive finite number and the prior mean finite")]
    Prior,
    #[error("a relative prior cannot be rescaled to an absolute effect when the control mean is 0")]
    PriorScale,
    #[error("the control and the variant must both be proportions or both be means")]
    MixedKinds,
    #[error("the pre-period and post-period statistics of the {0} count different users")]
    CovariateUsers(Arm),
    #[error("there are {users} user counts but {weights} weights, so the split cannot be checked")]
    SrmLengths { users: usize, weights: usize },
    #[error("a sample ratio check needs at least 2 variants")]
    SrmTooFewVariants,
    #[error("the expected weights must be finite, not negative, and add up to more than 0")]
    SrmWeights,
    #[error("every p-value must be a number between 0 and 1")]
    PValue,
}
