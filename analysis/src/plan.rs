//! The consent-aware sample-size planner. Calculators of experimentation
//! platforms assume every visitor can be enrolled; a pilot may enrol only the
//! share of its purpose's subjects that are eligible now. Given the users a
//! pilot enrols per day (visitors × eligible share × coverage, or the daily
//! assignments observed while it runs), the plan says how many days reach the
//! planned sample size per variant, and the smallest effect detectable after
//! 7, 14 and 28 days.

use serde::Serialize;

use crate::power::{PowerError, relative_sample_size_per_arm};

/// The days after which the plan states the smallest detectable effect.
pub const HORIZONS: [u32; 3] = [7, 14, 28];

/// What a plan starts from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanInput {
    /// Users per variant the design needs (the power calculation), if known.
    pub needed_per_variant: Option<f64>,
    /// Users entering the pilot per day, all variants together.
    pub daily_enrolled: f64,
    /// The smallest variant's share of the traffic (its weight over the total):
    /// the variant that fills last.
    pub smallest_share: f64,
    /// The control's expected conversion rate, for the detectable effects.
    pub baseline: Option<f64>,
    pub alpha: f64,
    pub power: f64,
}

/// How long a pilot needs and what it can detect on the way.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Users per day entering the smallest variant.
    pub daily_per_variant: f64,
    /// Days until every variant has its planned users (unrounded), when
    /// there is a plan and traffic.
    pub days_needed: Option<f64>,
    /// The smallest detectable effect after each of [`HORIZONS`].
    pub detectable: Vec<Detectable>,
}

/// The smallest relative effect detectable after some days.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detectable {
    pub days: u32,
    /// Users per variant (of the smallest variant) by then.
    pub users_per_variant: f64,
    /// The smallest relative lift detectable with the design's α and power;
    /// `None` without a baseline or when no lift keeping the rate below 1 is.
    pub relative_effect: Option<f64>,
}

/// The plan of `input`.
pub fn plan(input: &PlanInput) -> Result<Plan, PowerError> {
    let daily_per_variant = (input.daily_enrolled * input.smallest_share).max(0.0);
    let days_needed = input
        .needed_per_variant
        .filter(|_| daily_per_variant > 0.0)
        .map(|needed| needed / daily_per_variant);
    let detectable = HORIZONS
        .iter()
        .map(|&days| {
            let users = daily_per_variant * f64::from(days);
            let relative_effect = match input.baseline {
                Some(baseline) => detectable_effect(baseline, users, input.alpha, input.power)?,
                None => None,
            };
            Ok(Detectable {
                days,
                users_per_variant: users,
                relative_effect,
            })
        })
        .collect::<Result<_, PowerError>>()?;
    Ok(Plan {
        daily_per_variant,
        days_needed,
        detectable,
    })
}

/// The smallest relative lift on `baseline` that `per_arm` users per arm
/// detect with a two-sided test at `alpha` and `power`: the inverse of
/// [`relative_sample_size_per_arm`] (the service's planner), found by bisection (that size falls as the lift
/// grows). `None` when even the largest lift that keeps the treated rate
/// below 1 needs more users.
pub fn detectable_effect(
    baseline: f64,
    per_arm: f64,
    alpha: f64,
    power: f64,
) -> Result<Option<f64>, PowerError> {
    if !(baseline > 0.0 && baseline < 1.0) {
        return Err(PowerError::Baseline);
    }
    let ceiling = (1.0 / baseline - 1.0) * (1.0 - 1e-9);
    if per_arm <= 0.0 || relative_sample_size_per_arm(baseline, ceiling, alpha, power)? > per_arm {
        return Ok(None);
    }
    let (mut low, mut high) = (0.0_f64, ceiling);
    for _ in 0..200 {
        let middle = (low + high) / 2.0;
        if middle <= 0.0 || relative_sample_size_per_arm(baseline, middle, alpha, power)? > per_arm
        {
            low = middle;
        } else {
            high = middle;
        }
        if high - low < 1e-12 {
            break;
        }
    }
    Ok(Some(high))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(daily_visitors: f64, eligible_share: f64) -> PlanInput {
        PlanInput {
            needed_per_variant: Some(relative_sample_size_per_arm(0.1, 0.1, 0.05, 0.8).unwrap()),
            daily_enrolled: daily_visitors * eligible_share * 0.5,
            smallest_share: 0.5,
            baseline: Some(0.1),
            alpha: 0.05,
            power: 0.8,
        }
    }

    #[test]
    fn with_everyone_eligible_the_plan_is_the_plain_power_calculation() {
        let plain = relative_sample_size_per_arm(0.1, 0.1, 0.05, 0.8).unwrap();
        let plan = plan(&input(2_000.0, 1.0)).unwrap();
        // 2,000 visitors, coverage 0.5, two equal variants: 500 a variant a day.
        assert_eq!(plan.daily_per_variant, 500.0);
        let days = plan.days_needed.unwrap();
        assert!((days * 500.0 - plain).abs() < 1e-6, "{days} days");
        for horizon in &plan.detectable {
            let users = 500.0 * f64::from(horizon.days);
            assert_eq!(horizon.users_per_variant, users);
            if let Some(effect) = horizon.relative_effect {
                let needed = relative_sample_size_per_arm(0.1, effect, 0.05, 0.8).unwrap();
                assert!((needed - users).abs() / users < 1e-6, "{horizon:?}");
            }
        }
        // After the days needed, the detectable effect is the design's MDE.
        let at_plan = detectable_effect(0.1, plain, 0.05, 0.8).unwrap().unwrap();
        assert!((at_plan - 0.1).abs() < 1e-6, "{at_plan}");
    }

    #[test]
    fn with_half_eligible_the_days_double() {
        let all = plan(&input(2_000.0, 1.0)).unwrap().days_needed.unwrap();
        let half = plan(&input(2_000.0, 0.5)).unwrap().days_needed.unwrap();
        assert!((half - 2.0 * all).abs() < 1e-9, "{all} and {half}");
    }

    #[test]
    fn more_days_detect_smaller_effects_and_no_traffic_plans_nothing() {
        let plan_ = plan(&input(2_000.0, 1.0)).unwrap();
        let effects: Vec<f64> = plan_
            .detectable
            .iter()
            .map(|d| d.relative_effect.unwrap())
            .collect();
        assert!(
            effects[0] > effects[1] && effects[1] > effects[2],
            "{effects:?}"
        );
        let none = plan(&input(0.0, 1.0)).unwrap();
        assert_eq!(none.days_needed, None);
        assert!(none.detectable.iter().all(|d| d.relative_effect.is_none()));
        // Half a user a variant cannot detect even a lift to a rate of 1.
        assert_eq!(detectable_effect(0.1, 0.5, 0.05, 0.8).unwrap(), None);
    }
}
