//! Per-arm sufficient statistics: plain samples and CUPED regression-adjusted ones.

/// Whether a metric is a conversion (0 or 1 per user) or an unbounded value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatisticKind {
    /// One 0-or-1 outcome per user; the variance is `p(1 - p)`.
    Proportion,
    /// Any numeric outcome per user; the variance is the sample variance.
    Mean,
}

/// The sufficient statistics of one arm: users, sum and sum of squares of the
/// per-user outcome (gbstats `ProportionStatistic` / `SampleMeanStatistic`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleStatistic {
    pub kind: StatisticKind,
    pub n: u64,
    pub sum: f64,
    pub sum_squares: f64,
}

impl SampleStatistic {
    /// A conversion metric with `n` users of whom `conversions` converted; the
    /// sum of squares of a 0-or-1 outcome equals its sum.
    pub fn proportion(n: u64, conversions: f64) -> SampleStatistic {
        SampleStatistic {
            kind: StatisticKind::Proportion,
            n,
            sum: conversions,
            sum_squares: conversions,
        }
    }

    /// A numeric metric with `n` users, the sum of their values and the sum of
    /// the squares of their values.
    pub fn sample_mean(n: u64, sum: f64, sum_squares: f64) -> SampleStatistic {
        SampleStatistic {
            kind: StatisticKind::Mean,
            n,
            sum,
            sum_squares,
        }
    }

    /// The mean per user, or 0 when there are no users (as in gbstats).
    pub fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum / self.n as f64
        }
    }

    /// The per-user variance: `p(1 - p)` for a proportion, and
    /// `(sum_squares - sum^2 / n) / (n - 1)` for a mean, which is 0 when there
    /// are fewer than 2 users (as in gbstats).
    pub fn variance(&self) -> f64 {
        match self.kind {
            StatisticKind::Proportion => {
                let p = self.mean();
                p * (1.0 - p)
            }
            StatisticKind::Mean => {
                if self.n <= 1 {
                    return 0.0;
                }
                let n = self.n as f64;
                (self.sum_squares - self.sum * self.sum / n) / (n - 1.0)
            }
        }
    }

    /// The numbers a two-sample test reads from this arm.
    pub fn moments(&self) -> ArmMoments {
        ArmMoments {
            n: self.n,
            mean: self.mean(),
            unadjusted_mean: self.mean(),
            variance: self.variance(),
        }
    }

    /// True when every field is a finite number.
    pub(crate) fn is_finite(&self) -> bool {
        self.sum.is_finite() && self.sum_squares.is_finite()
    }
}

/// What a two-sample test needs from one arm. For a plain statistic the two
/// means are equal; for a CUPED statistic `mean` is adjusted, while
/// `unadjusted_mean` is the raw mean that relative effects are scaled by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmMoments {
    pub n: u64,
    pub mean: f64,
    pub unadjusted_mean: f64,
    pub variance: f64,
}

/// A post-period outcome adjusted by a pre-period covariate of the same users
/// (CUPED), as gbstats `RegressionAdjustedStatistic`: the adjusted outcome is
/// `post - theta * pre`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegressionAdjusted {
    pub post: SampleStatistic,
    pub pre: SampleStatistic,
    /// The sum over users of `post * pre`.
    pub post_pre_sum_of_products: f64,
    /// The regression coefficient; see `cuped::pooled_theta`.
    pub theta: f64,
}

impl RegressionAdjusted {
    /// An unadjusted (theta 0) statistic from the post and pre moments of the
    /// same users and the sum of their cross products.
    pub fn new(
        post: SampleStatistic,
        pre: SampleStatistic,
        post_pre_sum_of_products: f64,
    ) -> RegressionAdjusted {
        RegressionAdjusted {
            post,
            pre,
            post_pre_sum_of_products,
            theta: 0.0,
        }
    }

    /// The same statistic with the regression coefficient set to `theta`.
    pub fn with_theta(self, theta: f64) -> RegressionAdjusted {
        RegressionAdjusted { theta, ..self }
    }

    /// The number of users, counted by the post-period statistic.
    pub fn n(&self) -> u64 {
        self.post.n
    }

    /// The adjusted mean `mean(post) - theta * mean(pre)`.
    pub fn mean(&self) -> f64 {
        self.post.mean() - self.theta * self.pre.mean()
    }

    /// The raw post-period mean.
    pub fn unadjusted_mean(&self) -> f64 {
        self.post.mean()
    }

    /// The sample covariance of post and pre, or 0 with fewer than 2 users.
    pub fn covariance(&self) -> f64 {
        if self.n() <= 1 {
            return 0.0;
        }
        let n = self.n() as f64;
        (self.post_pre_sum_of_products - self.post.sum * self.pre.sum / n) / (n - 1.0)
    }

    /// The variance of the adjusted outcome,
    /// `var(post) + theta^2 var(pre) - 2 theta cov(post, pre)`, or 0 with fewer
    /// than 2 users.
    pub fn variance(&self) -> f64 {
        if self.n() <= 1 {
            return 0.0;
        }
        self.post.variance() + self.theta * self.theta * self.pre.variance()
            - 2.0 * self.theta * self.covariance()
    }

    /// The numbers a two-sample test reads from this arm.
    pub fn moments(&self) -> ArmMoments {
        ArmMoments {
            n: self.n(),
            mean: self.mean(),
            unadjusted_mean: self.unadjusted_mean(),
            variance: self.variance(),
        }
    }

    /// True when every field is a finite number.
    pub(crate) fn is_finite(&self) -> bool {
        self.post.is_finite()
            && self.pre.is_finite()
            && self.post_pre_sum_of_products.is_finite()
            && self.theta.is_finite()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportion_variance_is_p_times_one_minus_p() {
        let s = SampleStatistic::proportion(40, 10.0);
        assert_eq!(s.mean(), 0.25);
        assert_eq!(s.variance(), 0.1875);
        assert_eq!(s.sum_squares, 10.0);
    }

    #[test]
    fn sample_mean_variance_is_the_unbiased_sample_variance() {
        // Values 1, 2, 3, 6: mean 3, squared deviations 4 + 1 + 0 + 9 = 14.
        let s = SampleStatistic::sample_mean(4, 12.0, 50.0);
        assert_eq!(s.mean(), 3.0);
        assert!((s.variance() - 14.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn empty_and_single_user_arms_have_zero_mean_or_variance() {
        assert_eq!(SampleStatistic::sample_mean(0, 0.0, 0.0).mean(), 0.0);
        assert_eq!(SampleStatistic::sample_mean(1, 5.0, 25.0).variance(), 0.0);
        assert_eq!(SampleStatistic::proportion(0, 0.0).variance(), 0.0);
    }

    #[test]
    fn regression_adjustment_follows_the_covariance_formula() {
        // Users (post, pre): (1, 1), (3, 2), (5, 3). var(post) 4, var(pre) 1,
        // cov 2; with theta 2 the adjusted outcome 1-2, 3-4, 5-6 is constant.
        let post = SampleStatistic::sample_mean(3, 9.0, 35.0);
        let pre = SampleStatistic::sample_mean(3, 6.0, 14.0);
        let adjusted = RegressionAdjusted::new(post, pre, 22.0);
        assert!((adjusted.covariance() - 2.0).abs() < 1e-12);
        assert!((adjusted.variance() - 4.0).abs() < 1e-12);
        let adjusted = adjusted.with_theta(2.0);
        assert!(adjusted.variance().abs() < 1e-12);
        assert!((adjusted.mean() - (-1.0)).abs() < 1e-12);
        assert_eq!(adjusted.unadjusted_mean(), 3.0);
    }
}
