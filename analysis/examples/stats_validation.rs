//! The full statistics validation run of `bench/stats_validation.sh`: every
//! check of `tests/validation` with thousands of simulated pilots, printed
//! as the Markdown of `bench/results/stats_validation.md`. Exits with status
//! 2 when a figure falls outside its band.
//!
//! usage: `cargo run --release -p pilotgate-analysis --example
//! stats_validation -- [--sims N] [--seed S] [--days D] [--users-per-day U]`

#[path = "../tests/validation/mod.rs"]
mod validation;

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use validation::{
    Band, Check, Config, Design, Figure, Pilot, Population, coverage, false_positives, power,
};

/// The designs whose planned sample size is checked: a typical conversion
/// pilot, a rare conversion with a large MDE, and a common one planned for
/// 90% power.
const DESIGNS: [Design; 3] = [
    Design {
        baseline: 0.10,
        mde: 0.10,
        alpha: 0.05,
        power: 0.80,
    },
    Design {
        baseline: 0.05,
        mde: 0.20,
        alpha: 0.05,
        power: 0.80,
    },
    Design {
        baseline: 0.30,
        mde: 0.05,
        alpha: 0.05,
        power: 0.90,
    },
];

fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("stats_validation: {message}");
            return ExitCode::from(1);
        }
    };
    let started = Instant::now();
    let mut out = String::new();
    let mut all = Vec::new();

    let _ = writeln!(
        out,
        "Pilots of {} days with {} users a day (split by a fair coin), α = {}, {} simulated pilots per scenario, seed {} (each scenario's own seed is in its rows).\n",
        config.pilot.days, config.pilot.users_per_day, config.alpha, config.sims, config.seed
    );

    let mut section = Vec::new();
    for population in [Population::Conversion, Population::Revenue] {
        eprintln!("A/A pilots, {} metric", population.label());
        section.extend(false_positives(&config, population));
    }
    let _ = writeln!(
        out,
        "## (a) A/A pilots: false positives\n\nThe share of pilots with no true effect whose relative interval excludes 0 (the decision's \"significant\"): at the end of the pilot, and on at least one day when the cumulative results are looked at every day.\n"
    );
    out.push_str(&table(&section));
    all.append(&mut section);

    for population in [Population::Conversion, Population::Revenue] {
        eprintln!("coverage, {} metric", population.label());
        section.extend(coverage(&config, population));
    }
    let _ = writeln!(
        out,
        "\n## (b) Coverage of a true relative lift of {:+}%\n\nThe share of pilots whose {}% interval on the relative lift covers the true lift: at the end, and on every day of daily looks.\n",
        config.lift * 100.0,
        ((1.0 - config.alpha) * 100.0).round()
    );
    out.push_str(&table(&section));
    all.append(&mut section);

    let _ = writeln!(
        out,
        "\n## (c) Power at the planned sample size\n\nBinary pilots stopped at the users per variant the service plans (`relative_sample_size_per_arm`, rounded up: the users for the relative interval, with its delta-method variance, to reach the planned power), with the MDE as the true lift, analysed by the default (frequentist) method. \"relative\" is the interval the decision reads, held to the planned power; \"absolute\" is the difference of rates, shown for context (the same users test it with more power). \"predicted\" is the planner's normal-approximation power of the relative interval.\n"
    );
    out.push_str("| design | interval | power | band | in band | predicted | sims | seed |\n");
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for design in &DESIGNS {
        eprintln!("power, baseline {} MDE {}", design.baseline, design.mde);
        let figures = power(&config, design);
        for figure in &figures {
            let predicted = match figure.check {
                Check::PowerRelative => {
                    percent(design.relative_test_power(design.planned_per_variant()))
                }
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {predicted} | {} | {} |",
                figure.scenario,
                check_label(figure.check),
                rate(figure),
                band(figure.band),
                verdict(figure),
                figure.trials,
                figure.seed
            );
        }
        all.extend(figures);
    }

    let banded: Vec<&Figure> = all.iter().filter(|f| f.band != Band::Context).collect();
    let inside = banded.iter().filter(|f| f.within(0.0)).count();
    let _ = writeln!(
        out,
        "\n{inside} of {} figures with a band are inside it; {:.0} s.",
        banded.len(),
        started.elapsed().as_secs_f64()
    );
    print!("{out}");
    if inside == banded.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Config, String> {
    let mut config = Config {
        sims: 4000,
        pilot: Pilot {
            days: 28,
            users_per_day: 400,
        },
        seed: 20_261_203,
        alpha: 0.05,
        lift: 0.05,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = value
            .parse::<u64>()
            .map_err(|_| format!("{flag}: '{value}' is not a whole number"))?;
        let small = || u32::try_from(number).map_err(|_| format!("{flag}: {number} is too large"));
        match flag.as_str() {
            "--sims" if number > 0 => config.sims = number,
            "--seed" => config.seed = number,
            "--days" if number > 0 => config.pilot.days = small()?,
            "--users-per-day" if number > 1 => config.pilot.users_per_day = small()?,
            "--sims" | "--days" | "--users-per-day" => {
                return Err(format!("{flag}: {number} is too small"));
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(config)
}

fn percent(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

/// The rate with its Monte Carlo standard error.
fn rate(figure: &Figure) -> String {
    let p = figure.rate();
    let error = (p * (1.0 - p) / figure.trials as f64).sqrt();
    format!("{} (± {:.2})", percent(p), error * 100.0)
}

fn band(band: Band) -> String {
    match band {
        Band::Around { target, tolerance } => {
            format!("{} ± {} pp", percent(target), tolerance * 100.0)
        }
        Band::AtMost(limit) => format!("≤ {}", percent(limit)),
        Band::AtLeast(limit) => format!("≥ {}", percent(limit)),
        Band::Context => "context".to_owned(),
    }
}

fn verdict(figure: &Figure) -> &'static str {
    match (figure.band, figure.within(0.0)) {
        (Band::Context, _) => "",
        (_, true) => "yes",
        (_, false) => "**no**",
    }
}

fn check_label(check: Check) -> &'static str {
    match check {
        Check::FalsePositive => "at the end",
        Check::EverCrossed => "ever, daily looks",
        Check::Coverage => "at the end",
        Check::CoveredAtEveryLook => "every day, daily looks",
        Check::PowerRelative => "relative",
        Check::PowerAbsolute => "absolute",
    }
}

/// The rows of the A/A and coverage figures.
fn table(figures: &[Figure]) -> String {
    let mut out = String::from(
        "| metric | CUPED | method | measured | rate | band | in band | sims | seed |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for figure in figures {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            figure.scenario,
            if figure.cuped { "yes" } else { "no" },
            figure.method,
            check_label(figure.check),
            rate(figure),
            band(figure.band),
            verdict(figure),
            figure.trials,
            figure.seed
        );
    }
    out
}
