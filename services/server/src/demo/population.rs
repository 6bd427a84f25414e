//! The demo's simulated people: a consent inventory, the day each one first
//! visits, and what each would do in each variant. Pure and seeded: the same
//! seed gives the same population; the server decides everything else, and
//! the demo checks its decisions against what this population implies.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The control's conversion rate (a purchase during the pilot).
pub(crate) const BASELINE: f64 = 0.10;
/// Share of assigned visitors who contact support during the pilot (the
/// guardrail), the same in every variant: the treatment does no harm.
pub(crate) const SUPPORT_RATE: f64 = 0.04;
/// Share of assigned subjects who withdraw (or object) during the pilot.
pub(crate) const WITHDRAW_RATE: f64 = 0.03;
/// The hour of the day visitors arrive at (assignments), in minutes.
pub(crate) const VISIT_MINUTE: u32 = 8 * 60;
/// The minute of the day withdrawals and objections are recorded at.
pub(crate) const WITHDRAW_MINUTE: u32 = 12 * 60;
/// Purchases and support contacts happen between these minutes of a day.
const SHOPPING_MINUTES: std::ops::Range<u32> = 9 * 60..22 * 60;

/// Where a subject stands in the consent inventory before the pilot starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Consent granted under the current notice (version 2).
    Consent,
    /// Legitimate interest, no objection.
    LegitimateInterest,
    /// Consent granted under notice version 1, below the purpose's minimum.
    StaleNotice,
    Denied,
    /// Consent withdrawn before the pilot.
    Withdrawn,
    /// Objected to processing on legitimate interest.
    Objected,
    /// Consent given more than 13 months ago.
    Expired,
    /// No record at all.
    NeverAsked,
}

impl Standing {
    /// The inventory's mix: each standing and its share of the population.
    pub(crate) const MIX: [(Standing, f64); 8] = [
        (Standing::Consent, 0.52),
        (Standing::LegitimateInterest, 0.14),
        (Standing::StaleNotice, 0.07),
        (Standing::Denied, 0.05),
        (Standing::Withdrawn, 0.04),
        (Standing::Objected, 0.03),
        (Standing::Expired, 0.05),
        (Standing::NeverAsked, 0.10),
    ];

    /// The refusal reason the eligibility rule must give, or `None` when eligible.
    pub(crate) fn refusal(self) -> Option<&'static str> {
        match self {
            Standing::Consent | Standing::LegitimateInterest => None,
            Standing::StaleNotice => Some("stale_notice"),
            Standing::Denied => Some("denied"),
            Standing::Withdrawn => Some("withdrawn"),
            Standing::Objected => Some("objected"),
            Standing::Expired => Some("expired"),
            Standing::NeverAsked => Some("no_record"),
        }
    }

    /// The legal basis of the subject's record (`None`: never asked).
    pub(crate) fn basis(self) -> Option<&'static str> {
        match self {
            Standing::LegitimateInterest | Standing::Objected => Some("legitimate_interest"),
            Standing::NeverAsked => None,
            _ => Some("consent"),
        }
    }

    /// How an eligible subject leaves mid-pilot on its basis: withdraws consent or objects.
    pub(crate) fn leaving_status(self) -> &'static str {
        if self.basis() == Some("legitimate_interest") {
            "objected"
        } else {
            "withdrawn"
        }
    }
}

/// One simulated person.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub standing: Standing,
    /// Days before the pilot's first day the inventory record was collected.
    pub collected_days_before: u32,
    /// The pilot day of the first visit (the assignment call).
    pub arrival_day: u32,
    /// Converts in a variant whose rate is above this draw: one draw for every
    /// variant, so the variants differ only by their rates.
    pub conversion_draw: f64,
    /// Days from the first visit to the purchase.
    pub purchase_delay: u32,
    pub purchase_minute: u32,
    /// Days from the first visit to a support contact, if any.
    pub contacts_support_after: Option<u32>,
    pub support_minute: u32,
    /// Days from the first visit to a withdrawal or objection, if any.
    pub leaves_after: Option<u32>,
}

impl Person {
    /// The pilot day of the purchase, when it falls within the pilot.
    pub(crate) fn purchase_day(&self, converts: bool, days: u32) -> Option<u32> {
        let day = self.arrival_day + self.purchase_delay;
        (converts && day < days).then_some(day)
    }

    /// The pilot day of a support contact, when within the pilot.
    pub(crate) fn support_day(&self, days: u32) -> Option<u32> {
        let day = self.arrival_day + self.contacts_support_after?;
        (day < days).then_some(day)
    }

    /// The pilot day of the withdrawal or objection, when within the pilot.
    pub(crate) fn leaving_day(&self, days: u32) -> Option<u32> {
        if self.standing.refusal().is_some() {
            return None;
        }
        let day = self.arrival_day + self.leaves_after?;
        (day < days).then_some(day)
    }
}

/// The conversion rate of a variant: the control's, or lifted by `true_lift`.
pub(crate) fn conversion_rate(treated: bool, true_lift: f64) -> f64 {
    if treated {
        BASELINE * (1.0 + true_lift)
    } else {
        BASELINE
    }
}

/// `n` people whose first visits spread evenly over `days` days.
pub(crate) fn population(n: usize, days: u32, seed: u64) -> Vec<Person> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let standing = pick_standing(rng.random());
            let collected_days_before = match standing {
                // 13 months is about 396 days: these are past it.
                Standing::Expired => rng.random_range(400..600),
                _ => rng.random_range(1..360),
            };
            Person {
                standing,
                collected_days_before,
                arrival_day: rng.random_range(0..days),
                conversion_draw: rng.random(),
                purchase_delay: rng.random_range(0..=2),
                purchase_minute: rng.random_range(SHOPPING_MINUTES),
                contacts_support_after: (rng.random::<f64>() < SUPPORT_RATE)
                    .then(|| rng.random_range(0..=3)),
                support_minute: rng.random_range(SHOPPING_MINUTES),
                leaves_after: (rng.random::<f64>() < WITHDRAW_RATE)
                    .then(|| rng.random_range(1..=5)),
            }
        })
        .collect()
}

fn pick_standing(draw: f64) -> Standing {
    let mut cumulative = 0.0;
    for (standing, share) in Standing::MIX {
        cumulative += share;
        if draw < cumulative {
            return standing;
        }
    }
    Standing::NeverAsked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inventory_mix_covers_everyone() {
        let total: f64 = Standing::MIX.iter().map(|(_, share)| share).sum();
        assert!((total - 1.0).abs() < 1e-12, "{total}");
    }

    #[test]
    fn a_seed_gives_the_same_population_and_another_seed_a_different_one() {
        let a = population(500, 14, 7);
        let b = population(500, 14, 7);
        let c = population(500, 14, 8);
        let draws = |p: &[Person]| p.iter().map(|x| x.conversion_draw).collect::<Vec<_>>();
        assert_eq!(draws(&a), draws(&b));
        assert_ne!(draws(&a), draws(&c));
    }

    #[test]
    fn the_mix_shows_in_a_large_population() {
        let people = population(50_000, 14, 1);
        let eligible = people
            .iter()
            .filter(|p| p.standing.refusal().is_none())
            .count() as f64
            / people.len() as f64;
        assert!((eligible - 0.66).abs() < 0.01, "{eligible}");
        assert!(people.iter().all(|p| p.arrival_day < 14));
    }

    #[test]
    fn nobody_leaves_or_buys_after_the_pilot() {
        let people = population(5_000, 5, 3);
        for person in &people {
            assert!(person.leaving_day(5).is_none_or(|d| d < 5));
            assert!(person.purchase_day(true, 5).is_none_or(|d| d < 5));
        }
        assert!(people.iter().any(|p| p.leaving_day(5).is_some()));
    }
}
