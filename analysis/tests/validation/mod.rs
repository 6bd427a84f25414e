//! The statistics validation suite: simulated pilots run through the
//! analysis the results service runs (`report::analyze_daily_sums_with` on
//! per-variant, per-day sums, with the methods and settings of
//! `service/results.rs`), and the planned sample size of the service's
//! planner (`power::relative_sample_size_per_arm`, rounded up), measured against
//! their promises: the false-positive rate of A/A pilots, the coverage of
//! the intervals, and the power at the planned sample size.
//!
//! Shared by the fast test (`tests/stats_validation.rs`) and the full run
//! (`examples/stats_validation.rs`, `bench/stats_validation.sh`).
//!
//! Every user is simulated one by one from a population with a known mean,
//! assigned to the control or the treatment by a fair coin, and reduced to
//! the sums the database hands the analysis (users, sum and sum of squares
//! of the outcome, and the covariate's sums and cross products). A treated
//! user's rate is multiplied by `1 + lift`, so the true relative lift is
//! `lift` exactly. Outcomes are final on the day of assignment, so the
//! cumulative report of day `d` is what a look on day `d` shows.

use pilotgate_analysis::pipeline::{Outcome, VariantSums};
use pilotgate_analysis::power::{relative_interval_power, relative_sample_size_per_arm};
use pilotgate_analysis::report::{
    AnalyzeOptions, DayReport, EffectReport, Report, analyze_daily_sums_with,
};
use pilotgate_analysis::stats::{Method, Prior};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use statrs::distribution::{Beta, Gamma, LogNormal, Poisson};

/// The variant names the simulated pilots use.
const CONTROL: &str = "control";
const TREATMENT: &str = "treatment";

/// The methods of the results service, with the settings it gives them
/// (`compute_results`: `frequentist`, `sequential`, `bayesian`).
pub const METHODS: [(&str, Method); 3] = [
    ("frequentist", Method::Frequentist),
    ("sequential", Method::SEQUENTIAL_DEFAULT),
    ("bayesian", Method::Bayesian { prior: Prior::Flat }),
];

/// A population of users with a pre-period covariate `x` and an outcome `y`
/// that share a latent per-user propensity, so CUPED has something to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Population {
    /// A conversion (binary metric): a user's rate is `p = 0.5 B` with
    /// `B ~ Beta(0.4, 1.6)` (mean 10%); `x` counts conversions in 8 earlier
    /// weeks, `Binomial(8, p)`; `y ~ Bernoulli(p (1 + lift))`, which stays a
    /// probability because `p <= 0.5`.
    Conversion,
    /// Revenue (sum metric): a user buys `Poisson(λ)` times, `λ ~ Gamma(shape
    /// 0.3, rate 0.6)` (mean 0.5), each purchase worth `LogNormal(3.5, 0.8)`
    /// (mean 45.6); `x` is the spend of the pre-period, `y` of the pilot
    /// with `λ (1 + lift)`.
    Revenue,
}

/// The samplers of a population, built once.
struct Sampler {
    population: Population,
    beta: Beta,
    gamma: Gamma,
    value: LogNormal,
}

impl Sampler {
    fn new(population: Population) -> Sampler {
        Sampler {
            population,
            beta: Beta::new(0.4, 1.6).expect("valid Beta shapes"),
            gamma: Gamma::new(0.3, 0.6).expect("valid Gamma shape and rate"),
            value: LogNormal::new(3.5, 0.8).expect("valid log-normal parameters"),
        }
    }

    /// One user's covariate and outcome, the outcome's rate lifted by `lift`.
    fn user(&self, rng: &mut StdRng, lift: f64) -> (f64, f64) {
        match self.population {
            Population::Conversion => {
                let p = 0.5 * rng.sample(self.beta);
                let x = (0..8).filter(|_| rng.random::<f64>() < p).count() as f64;
                let y = f64::from(u8::from(rng.random::<f64>() < p * (1.0 + lift)));
                (x, y)
            }
            Population::Revenue => {
                let rate = rng.sample(self.gamma);
                let x = self.spend(rng, rate);
                let y = self.spend(rng, rate * (1.0 + lift));
                (x, y)
            }
        }
    }

    /// The spend of a user buying at `rate`.
    fn spend(&self, rng: &mut StdRng, rate: f64) -> f64 {
        // A Gamma draw of exactly 0 (an underflow) is a user who never buys.
        let purchases: u64 = match Poisson::new(rate) {
            Ok(poisson) => rng.sample(poisson),
            Err(_) => 0,
        };
        (0..purchases).map(|_| rng.sample(self.value)).sum()
    }
}

impl Population {
    /// The metric kind the service analyses it as.
    pub fn outcome(self) -> Outcome {
        match self {
            Population::Conversion => Outcome::Binary,
            Population::Revenue => Outcome::Sum,
        }
    }

    /// Its name in the results.
    pub fn label(self) -> &'static str {
        match self {
            Population::Conversion => "binary",
            Population::Revenue => "sum",
        }
    }
}

/// How long a simulated pilot runs and how many users it enrols a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pilot {
    pub days: u32,
    pub users_per_day: u32,
}

/// A planned design: the planner's inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Design {
    pub baseline: f64,
    pub mde: f64,
    pub alpha: f64,
    pub power: f64,
}

impl Design {
    /// The users per variant the service plans (`planned_per_variant`: the
    /// sample size per arm, rounded up).
    pub fn planned_per_variant(&self) -> u64 {
        relative_sample_size_per_arm(self.baseline, self.mde, self.alpha, self.power)
            .expect("a valid design")
            .ceil() as u64
    }

    /// The power of the relative interval at `n` users per arm (normal
    /// approximation, the far tail left out as the planner does). Its lower
    /// bound is above 0 when the observed difference `d` exceeds
    /// `z sqrt((q(1-q) + p(1-p) r²) / n)`, with `r = 1 + d/p` the observed
    /// ratio: the delta-method variance is read at that boundary (a fixed
    /// point), not at the true lift.
    pub fn relative_test_power(&self, n: u64) -> f64 {
        relative_interval_power(self.baseline, self.mde, self.alpha, n as f64)
    }
}

/// What the suite simulates and how often.
#[derive(Debug, Clone)]
pub struct Config {
    /// Simulated pilots per scenario.
    pub sims: u64,
    pub pilot: Pilot,
    pub seed: u64,
    pub alpha: f64,
    /// The true relative lift of the coverage pilots.
    pub lift: f64,
}

/// The band a figure must fall in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Band {
    /// `target ± tolerance`.
    Around { target: f64, tolerance: f64 },
    /// At most this rate.
    AtMost(f64),
    /// At least this rate.
    AtLeast(f64),
    /// No band: shown for context.
    Context,
}

impl Band {
    /// The bounds of the band, each widened by `slack`.
    pub fn bounds(&self, slack: f64) -> Option<(f64, f64)> {
        match *self {
            Band::Around { target, tolerance } => {
                Some((target - tolerance - slack, target + tolerance + slack))
            }
            Band::AtMost(limit) => Some((0.0, limit + slack)),
            Band::AtLeast(limit) => Some((limit - slack, 1.0)),
            Band::Context => None,
        }
    }

    /// The rate the band is about, for the binomial standard error.
    fn reference(&self) -> Option<f64> {
        match *self {
            Band::Around { target, .. } => Some(target),
            Band::AtMost(limit) | Band::AtLeast(limit) => Some(limit),
            Band::Context => None,
        }
    }
}

/// Which promise a figure measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// A/A: the share of pilots whose final interval excludes 0.
    FalsePositive,
    /// A/A with a look every day: the share of pilots whose interval
    /// excluded 0 on at least one day.
    EverCrossed,
    /// The share of pilots whose final interval covers the true lift.
    Coverage,
    /// The share of pilots whose interval covered the true lift on every day.
    CoveredAtEveryLook,
    /// The share of pilots with the planned users whose relative interval
    /// excludes 0 (what the decision reads).
    PowerRelative,
    /// The same with the absolute interval (for context: the difference of
    /// rates, which the planned users test with more power).
    PowerAbsolute,
}

/// One measured rate beside its band.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub check: Check,
    /// `binary` or `sum`, or the design of a power figure.
    pub scenario: String,
    pub cuped: bool,
    pub method: &'static str,
    pub hits: u64,
    pub trials: u64,
    pub band: Band,
    pub seed: u64,
}

impl Figure {
    pub fn rate(&self) -> f64 {
        self.hits as f64 / self.trials as f64
    }

    /// The binomial standard error of the rate at the band's reference rate.
    pub fn standard_error(&self) -> f64 {
        let p = self.band.reference().unwrap_or_else(|| self.rate());
        (p * (1.0 - p) / self.trials as f64).sqrt()
    }

    /// Whether the rate lies in the band widened by `k` standard errors
    /// (0 for the band itself); figures shown for context always do.
    pub fn within(&self, k: f64) -> bool {
        match self.band.bounds(k * self.standard_error()) {
            Some((low, high)) => (low..=high).contains(&self.rate()),
            None => true,
        }
    }
}

/// A seed of its own for each scenario, from the suite's seed and the
/// scenario's name (FNV-1a), so that one scenario's draws do not depend on
/// which others run.
pub fn scenario_seed(seed: u64, scenario: &str) -> u64 {
    scenario
        .bytes()
        .fold(seed ^ 0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// One simulated pilot: per assignment day, each variant's sums.
fn simulate_pilot(
    rng: &mut StdRng,
    sampler: &Sampler,
    pilot: Pilot,
    lift: f64,
) -> Vec<(i64, VariantSums)> {
    let mut daily = Vec::with_capacity(2 * pilot.days as usize);
    for day in 0..pilot.days {
        let mut arms = [VariantSums::empty(CONTROL), VariantSums::empty(TREATMENT)];
        for _ in 0..pilot.users_per_day {
            let treated = rng.random_bool(0.5);
            let (x, y) = sampler.user(rng, if treated { lift } else { 0.0 });
            add_user(&mut arms[usize::from(treated)], x, y);
        }
        daily.extend(arms.into_iter().map(|sums| (i64::from(day), sums)));
    }
    daily
}

fn add_user(sums: &mut VariantSums, x: f64, y: f64) {
    sums.users += 1;
    sums.sum += y;
    sums.sum_squares += y * y;
    sums.x_sum += x;
    sums.x_sum_squares += x * x;
    sums.xy_sum += x * y;
}

/// The whole report and the daily cumulative reports, as the service computes them.
fn analyze(
    daily: &[(i64, VariantSums)],
    outcome: Outcome,
    method: Method,
    alpha: f64,
    cuped: bool,
) -> (Report, Vec<DayReport>) {
    let options = AnalyzeOptions {
        method,
        control: CONTROL.to_owned(),
        alpha,
        weights: vec![(CONTROL.to_owned(), 1.0), (TREATMENT.to_owned(), 1.0)],
    };
    analyze_daily_sums_with(daily.to_vec(), "metric", outcome, &options, cuped)
        .expect("simulated pilots have users in the control")
}

fn relative(report: &Report) -> Option<&EffectReport> {
    report.comparisons.first()?.relative.as_ref()
}

fn absolute(report: &Report) -> Option<&EffectReport> {
    report.comparisons.first()?.absolute.as_ref()
}

/// Whether an interval excludes 0 (the decision's "significant").
fn excludes_zero(effect: Option<&EffectReport>) -> bool {
    effect.is_some_and(|e| e.ci[0] > 0.0 || e.ci[1] < 0.0)
}

/// Whether an interval covers `truth`; a missing interval covers nothing.
fn covers(effect: Option<&EffectReport>, truth: f64) -> bool {
    effect.is_some_and(|e| e.ci[0] <= truth && truth <= e.ci[1])
}

/// Counters of one (CUPED, method) pair: at the end and over every look.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    end: u64,
    every_look: u64,
}

/// Simulates `config.sims` pilots of `population` with `lift` and counts, per
/// CUPED setting and method, the pilots where `hit` holds for the final
/// report and where `over_days` holds of the daily reports' hits.
fn tally(
    config: &Config,
    population: Population,
    lift: f64,
    seed: u64,
    hit: impl Fn(Option<&EffectReport>) -> bool,
    over_days: impl Fn(&[bool]) -> bool,
) -> [[Tally; 3]; 2] {
    let sampler = Sampler::new(population);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tallies = [[Tally::default(); 3]; 2];
    for _ in 0..config.sims {
        let daily = simulate_pilot(&mut rng, &sampler, config.pilot, lift);
        for (cuped, row) in tallies.iter_mut().enumerate() {
            for ((_, method), tally) in METHODS.iter().zip(row.iter_mut()) {
                let (whole, days) = analyze(
                    &daily,
                    population.outcome(),
                    *method,
                    config.alpha,
                    cuped == 1,
                );
                tally.end += u64::from(hit(relative(&whole)));
                let looks: Vec<bool> = days.iter().map(|d| hit(relative(&d.report))).collect();
                tally.every_look += u64::from(over_days(&looks));
            }
        }
    }
    tallies
}

/// (a) A/A pilots: the false-positive rate of each method at the end, and
/// the rate of ever crossing under daily looks. The band of the fixed-horizon
/// methods is `alpha ± 1.5 pp`; the sequential method must stay at most
/// `alpha` under daily looks (and so at the end); the other methods' daily
/// looks are shown for context.
pub fn false_positives(config: &Config, population: Population) -> Vec<Figure> {
    let scenario = format!("aa-{}", population.label());
    let seed = scenario_seed(config.seed, &scenario);
    let tallies = tally(config, population, 0.0, seed, excludes_zero, |looks| {
        looks.contains(&true)
    });
    let end_band = Band::Around {
        target: config.alpha,
        tolerance: 0.015,
    };
    let at_most = Band::AtMost(config.alpha);
    let checks = [Check::FalsePositive, Check::EverCrossed];
    figures_of(config, population, seed, &tallies, checks, |sequential| {
        if sequential {
            [at_most, at_most]
        } else {
            [end_band, Band::Context]
        }
    })
}

/// The figures of tallies: per CUPED setting and method, the end's and the
/// daily looks' `checks` with the bands `bands(sequential)` gives.
fn figures_of(
    config: &Config,
    population: Population,
    seed: u64,
    tallies: &[[Tally; 3]; 2],
    checks: [Check; 2],
    bands: impl Fn(bool) -> [Band; 2],
) -> Vec<Figure> {
    let mut figures = Vec::new();
    for (cuped, row) in tallies.iter().enumerate() {
        for ((name, method), tally) in METHODS.iter().zip(row) {
            let sequential = matches!(method, Method::Sequential { .. });
            let hits = [tally.end, tally.every_look];
            for ((check, hits), band) in checks.into_iter().zip(hits).zip(bands(sequential)) {
                figures.push(Figure {
                    check,
                    scenario: population.label().to_owned(),
                    cuped: cuped == 1,
                    method: name,
                    hits,
                    trials: config.sims,
                    band,
                    seed,
                });
            }
        }
    }
    figures
}

/// (b) Pilots with a true relative lift of `config.lift`: the share of final
/// intervals that cover it (band `1 - alpha ± 2 pp`; the sequential
/// method's confidence sequence is wider by design, so at least `1 - alpha`),
/// and the share of pilots covered on every day (the sequential promise, at
/// least `1 - alpha`; context for the others).
pub fn coverage(config: &Config, population: Population) -> Vec<Figure> {
    let scenario = format!("coverage-{}", population.label());
    let seed = scenario_seed(config.seed, &scenario);
    let truth = config.lift;
    let tallies = tally(
        config,
        population,
        truth,
        seed,
        |effect| covers(effect, truth),
        |looks| !looks.contains(&false),
    );
    let level = 1.0 - config.alpha;
    let end_band = Band::Around {
        target: level,
        tolerance: 0.02,
    };
    let at_least = Band::AtLeast(level);
    let checks = [Check::Coverage, Check::CoveredAtEveryLook];
    figures_of(config, population, seed, &tallies, checks, |sequential| {
        if sequential {
            [at_least, at_least]
        } else {
            [end_band, Band::Context]
        }
    })
}

/// (c) Pilots of a binary design stopped at the planned users per variant,
/// with the design's MDE as the true lift, analysed by the service's default
/// (frequentist) method: the share whose relative interval excludes 0
/// against the planned power `± 3 pp`, and for context the share whose
/// absolute interval does.
pub fn power(config: &Config, design: &Design) -> Vec<Figure> {
    let scenario = format!(
        "power-p{}-mde{}-a{}-power{}",
        design.baseline, design.mde, design.alpha, design.power
    );
    let seed = scenario_seed(config.seed, &scenario);
    let mut rng = StdRng::seed_from_u64(seed);
    let planned = design.planned_per_variant();
    let treated_rate = design.baseline * (1.0 + design.mde);
    let conversions = |rng: &mut StdRng, rate: f64| {
        (0..planned).filter(|_| rng.random::<f64>() < rate).count() as f64
    };
    let (mut relative_hits, mut absolute_hits) = (0, 0);
    for _ in 0..config.sims {
        let control = conversions(&mut rng, design.baseline);
        let treated = conversions(&mut rng, treated_rate);
        let daily = vec![
            (0, VariantSums::plain(CONTROL, planned, control, control)),
            (0, VariantSums::plain(TREATMENT, planned, treated, treated)),
        ];
        let (whole, _) = analyze(
            &daily,
            Outcome::Binary,
            Method::Frequentist,
            design.alpha,
            false,
        );
        relative_hits += u64::from(excludes_zero(relative(&whole)));
        absolute_hits += u64::from(excludes_zero(absolute(&whole)));
    }
    let band = Band::Around {
        target: design.power,
        tolerance: 0.03,
    };
    let label = format!(
        "baseline {}, MDE {:+}%, α {}, power {}: {planned} per variant",
        design.baseline,
        design.mde * 100.0,
        design.alpha,
        design.power
    );
    [
        (Check::PowerRelative, relative_hits),
        (Check::PowerAbsolute, absolute_hits),
    ]
    .into_iter()
    .map(|(check, hits)| Figure {
        check,
        scenario: label.clone(),
        cuped: false,
        method: "frequentist",
        hits,
        trials: config.sims,
        band: if check == Check::PowerRelative {
            band
        } else {
            Band::Context
        },
        seed,
    })
    .collect()
}
