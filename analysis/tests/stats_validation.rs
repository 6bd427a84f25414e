//! The fast subset of the statistics validation suite (`tests/validation`;
//! the full run is `bench/stats_validation.sh`): a few hundred simulated
//! pilots per check from a fixed seed, short pilots, and every band widened
//! by four binomial standard errors of its simulations, so that a
//! calibrated method passes whatever stream of draws the seed gives while a
//! miscalibrated one (such as the fixed-horizon test looked at every day)
//! fails.

mod validation;

use validation::{
    Band, Check, Config, Design, Figure, Pilot, Population, coverage, false_positives, power,
};

/// How many binomial standard errors each band is widened by.
const SLACK: f64 = 4.0;

fn config(sims: u64) -> Config {
    Config {
        sims,
        pilot: Pilot {
            days: 14,
            users_per_day: 200,
        },
        seed: 24,
        alpha: 0.05,
        lift: 0.05,
    }
}

fn assert_within_widened_bands(figures: &[Figure]) {
    for figure in figures {
        assert!(
            figure.within(SLACK),
            "{:?} {} (CUPED {}) {}: {:.4} outside {:?} widened by {:.4}",
            figure.check,
            figure.scenario,
            figure.cuped,
            figure.method,
            figure.rate(),
            figure.band,
            SLACK * figure.standard_error()
        );
    }
}

fn find<'a>(figures: &'a [Figure], check: Check, method: &str) -> &'a Figure {
    figures
        .iter()
        .find(|f| f.check == check && f.method == method && !f.cuped)
        .expect("every method is measured")
}

#[test]
fn a_a_pilots_are_called_significant_as_often_as_alpha_says_and_daily_looks_need_the_sequential_method()
 {
    for population in [Population::Conversion, Population::Revenue] {
        let figures = false_positives(&config(300), population);
        assert_within_widened_bands(&figures);
        // The fixed-horizon test looked at every day crosses far more often
        // than alpha: the measurement tells a miscalibrated method apart.
        let peeking = find(&figures, Check::EverCrossed, "frequentist");
        let limit = Figure {
            band: Band::AtMost(0.05),
            ..peeking.clone()
        };
        assert!(
            !limit.within(SLACK),
            "{} daily looks: {:.4}",
            population.label(),
            peeking.rate()
        );
        assert!(find(&figures, Check::EverCrossed, "sequential").within(SLACK));
    }
}

#[test]
fn intervals_cover_a_true_lift_as_often_as_their_level_says_with_and_without_cuped() {
    for population in [Population::Conversion, Population::Revenue] {
        let figures = coverage(&config(300), population);
        assert_eq!(figures.len(), 12, "2 CUPED settings x 3 methods x 2 checks");
        assert_within_widened_bands(&figures);
    }
}

#[test]
fn the_planned_sample_size_reaches_the_planned_power_on_the_relative_interval() {
    // A rare conversion and a large lift: where a plan for the difference
    // of rates falls short on the relative interval the decision reads.
    let design = Design {
        baseline: 0.05,
        mde: 0.20,
        alpha: 0.05,
        power: 0.80,
    };
    let figures = power(&config(1500), &design);
    let relative = figures
        .iter()
        .find(|f| f.check == Check::PowerRelative)
        .unwrap();
    assert_within_widened_bands(std::slice::from_ref(relative));
    let predicted = design.relative_test_power(design.planned_per_variant());
    assert!(
        (predicted - design.power).abs() < 0.002,
        "the planner plans for its power: {predicted}"
    );
}
