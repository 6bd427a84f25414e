//! `pilotgate analyze`: per-variant statistics, SRM, and each variant against
//! the control, as the JSON of ANALYZE.md or a table for people.

use std::fmt::Write as _;

use serde::Serialize;

use std::path::Path;

use crate::input::InputError;
use crate::pipeline::{Aggregates, Outcome, PipelineSpec, VariantSums, aggregate, cumulate_by_day};
use crate::stats::{
    Effect, Interval, Method, RegressionAdjusted, SampleStatistic, check_srm, compare,
    compare_adjusted,
};

/// How to analyse, besides the files.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    pub method: Method,
    pub control: String,
    pub alpha: f64,
    /// Expected split for the SRM check, by variant; equal when empty.
    pub weights: Vec<(String, f64)>,
}

/// Why an analysis cannot be given, in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{0}")]
    Design(String),
}

/// One variant's unadjusted per-user statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantReport {
    pub variant: String,
    /// `None` only when small-cell suppression withheld it (see `suppressed`).
    pub users: Option<u64>,
    pub sum: Option<f64>,
    pub sum_squares: Option<f64>,
    pub mean: Option<f64>,
    pub variance: Option<f64>,
    /// The CUPED coefficient, when a covariate was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theta: Option<f64>,
    /// Some figure of this variant describes fewer than `k` people (or would
    /// reveal one that does), so it is `null` (see `disclosure`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

/// The sample ratio check.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SrmReport {
    pub chi2: f64,
    pub p_value: f64,
    pub mismatch: bool,
}

/// One effect of one comparison; fields that do not apply to the method are left out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffectReport {
    pub estimate: f64,
    pub ci: [f64; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chance_to_win: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<[f64; 2]>,
}

/// A variant against the control. An effect that cannot be computed is null and `notes` says why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonReport {
    pub variant: String,
    pub relative: Option<EffectReport>,
    pub absolute: Option<EffectReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The effects are withheld because a group they compare has fewer
    /// than `k` people (see `disclosure`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

/// What the analysis left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Excluded {
    pub unknown_subject_events: u64,
    pub multiple_variant_subjects: u64,
}

/// The whole analysis, as ANALYZE.md specifies its JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub metric: String,
    pub kind: Outcome,
    pub method: MethodName,
    pub control: String,
    pub alpha: f64,
    pub variants: Vec<VariantReport>,
    pub srm: Option<SrmReport>,
    pub comparisons: Vec<ComparisonReport>,
    pub excluded: Excluded,
    /// Some figure of the report is withheld under small-cell suppression
    /// (the SRM check is withheld when a variant's users are).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

/// Which test a report ran, as reports name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MethodName {
    Frequentist,
    Sequential,
    Bayesian,
}

impl MethodName {
    pub fn as_str(self) -> &'static str {
        match self {
            MethodName::Frequentist => "frequentist",
            MethodName::Sequential => "sequential",
            MethodName::Bayesian => "bayesian",
        }
    }
}

impl From<&Method> for MethodName {
    fn from(method: &Method) -> MethodName {
        match method {
            Method::Frequentist => MethodName::Frequentist,
            Method::Sequential { .. } => MethodName::Sequential,
            Method::Bayesian { .. } => MethodName::Bayesian,
        }
    }
}

impl From<Interval> for EffectReport {
    fn from(i: Interval) -> Self {
        EffectReport {
            estimate: i.estimate,
            ci: i.ci,
            p_value: i.p_value,
            chance_to_win: i.chance_to_win,
            risk: i.risk,
        }
    }
}

fn statistic(kind: Outcome, v: &VariantSums) -> SampleStatistic {
    match kind {
        Outcome::Binary => SampleStatistic::proportion(v.users, v.sum),
        Outcome::Sum => SampleStatistic::sample_mean(v.users, v.sum, v.sum_squares),
    }
}

fn adjusted(kind: Outcome, v: &VariantSums) -> RegressionAdjusted {
    RegressionAdjusted::new(
        statistic(kind, v),
        SampleStatistic::sample_mean(v.users, v.x_sum, v.x_sum_squares),
        v.xy_sum,
    )
}

/// Reads the files, aggregates and compares every variant with the control.
pub fn analyze(spec: &PipelineSpec<'_>, options: &AnalyzeOptions) -> Result<Report, AnalyzeError> {
    let aggregates = aggregate(spec)?;
    report(spec, options, aggregates)
}

/// The spec of outcomes computed by the server: no files, no window (the
/// database applied it), and a covariate when the sums carry one.
fn outcomes_spec(metric: &str, outcome: Outcome, covariate: bool) -> PipelineSpec<'_> {
    let source = Path::new("the pilot's assignments");
    PipelineSpec {
        assignments: source,
        events: source,
        covariate: covariate.then(|| Path::new("the pre-period covariate")),
        metric,
        outcome,
        window_hours: None,
    }
}

/// The report of one assignment day of a cumulative series: the users
/// assigned on or before `day` (days since the epoch), with all their outcomes.
#[derive(Debug, Clone, PartialEq)]
pub struct DayReport {
    pub day: i64,
    pub report: Report,
}

/// Analyses per-variant sums of each assignment day, computed where the data
/// lives: the whole analysis (every day together) and the same analysis
/// cumulated by assignment day, one report per day on which someone was
/// assigned, oldest first. Days before the control had a user are left out of
/// the series (nothing to compare).
pub fn analyze_daily_sums(
    daily: Vec<(i64, VariantSums)>,
    metric: &str,
    outcome: Outcome,
    options: &AnalyzeOptions,
) -> Result<(Report, Vec<DayReport>), AnalyzeError> {
    analyze_daily_sums_with(daily, metric, outcome, options, false)
}

/// [`analyze_daily_sums`], CUPED-adjusted by the covariate sums the daily
/// sums carry (`x_sum`, `x_sum_squares`, `xy_sum`) when `cuped`, as
/// `pilotgate analyze --covariate` adjusts.
pub fn analyze_daily_sums_with(
    daily: Vec<(i64, VariantSums)>,
    metric: &str,
    outcome: Outcome,
    options: &AnalyzeOptions,
    cuped: bool,
) -> Result<(Report, Vec<DayReport>), AnalyzeError> {
    let spec = outcomes_spec(metric, outcome, cuped);
    let aggregates = |variants: Vec<VariantSums>| Aggregates {
        variants,
        unknown_subject_events: 0,
        multiple_variant_subjects: 0,
    };
    let series = cumulate_by_day(daily);
    let whole = series
        .last()
        .map(|(_, totals)| totals.clone())
        .unwrap_or_default();
    let whole = report(&spec, options, aggregates(whole))?;
    let mut days = Vec::with_capacity(series.len());
    for (day, sums) in series {
        let has_control = sums
            .iter()
            .any(|v| v.variant == options.control && v.users > 0);
        if has_control {
            days.push(DayReport {
                day,
                report: report(&spec, options, aggregates(sums))?,
            });
        }
    }
    Ok((whole, days))
}

/// The report of aggregates already computed.
pub fn report(
    spec: &PipelineSpec<'_>,
    options: &AnalyzeOptions,
    aggregates: Aggregates,
) -> Result<Report, AnalyzeError> {
    if !(options.alpha > 0.0 && options.alpha < 1.0) {
        return Err(AnalyzeError::Design(
            "--alpha must be strictly between 0 and 1".to_owned(),
        ));
    }
    let mut sums = aggregates.variants;
    // Variants named only in --weights still count for SRM, with 0 users.
    for (name, _) in &options.weights {
        if !sums.iter().any(|v| &v.variant == name) {
            sums.push(VariantSums::empty(name));
        }
    }
    // The control first, then the others by name.
    sums.sort_by(|a, b| {
        (a.variant != options.control, &a.variant).cmp(&(b.variant != options.control, &b.variant))
    });
    let control = match sums.first() {
        Some(c) if c.variant == options.control && c.users > 0 => c.clone(),
        _ => {
            return Err(AnalyzeError::Input(InputError::File {
                file: spec.assignments.display().to_string(),
                message: format!(
                    "no users in the control '{}' (choose it with --control)",
                    options.control
                ),
            }));
        }
    };
    if let Some((name, _)) = options
        .weights
        .iter()
        .find(|(_, w)| !(w.is_finite() && *w > 0.0))
    {
        return Err(AnalyzeError::Design(format!(
            "--weights: the weight of '{name}' must be a positive number"
        )));
    }
    let weights: Vec<f64> = sums
        .iter()
        .map(|v| {
            if options.weights.is_empty() {
                Ok(1.0)
            } else {
                options
                    .weights
                    .iter()
                    .find(|(name, _)| name == &v.variant)
                    .map(|(_, w)| *w)
                    .ok_or_else(|| {
                        AnalyzeError::Design(format!(
                            "--weights names no weight for the variant '{}'",
                            v.variant
                        ))
                    })
            }
        })
        .collect::<Result<_, _>>()?;
    let users: Vec<u64> = sums.iter().map(|v| v.users).collect();
    let srm = check_srm(&users, &weights).ok().map(|c| SrmReport {
        chi2: c.chi2,
        p_value: c.p_value,
        mismatch: c.mismatch,
    });

    let cuped = spec.covariate.is_some();
    let mut comparisons = Vec::new();
    let mut thetas = vec![None; sums.len()];
    for (index, variant) in sums.iter().enumerate().skip(1) {
        let mut notes = Vec::new();
        let mut effect = |effect: Effect| -> Option<EffectReport> {
            let outcome = if cuped {
                compare_adjusted(
                    &options.method,
                    effect,
                    &adjusted(spec.outcome, &control),
                    &adjusted(spec.outcome, variant),
                    options.alpha,
                )
                .map(|a| {
                    thetas[index] = Some(a.theta);
                    thetas[0].get_or_insert(a.theta);
                    a.interval
                })
            } else {
                compare(
                    &options.method,
                    effect,
                    &statistic(spec.outcome, &control),
                    &statistic(spec.outcome, variant),
                    options.alpha,
                )
            };
            match outcome {
                Ok(interval) => Some(interval.into()),
                Err(error) => {
                    let label = match effect {
                        Effect::Relative => "relative",
                        Effect::Absolute => "absolute",
                    };
                    notes.push(format!("{label}: {error}"));
                    None
                }
            }
        };
        let relative = effect(Effect::Relative);
        let absolute = effect(Effect::Absolute);
        comparisons.push(ComparisonReport {
            variant: variant.variant.clone(),
            relative,
            absolute,
            notes,
            suppressed: false,
        });
    }
    let variants = sums
        .iter()
        .zip(thetas)
        .map(|(v, theta)| {
            let s = statistic(spec.outcome, v);
            VariantReport {
                variant: v.variant.clone(),
                users: Some(v.users),
                sum: Some(v.sum),
                sum_squares: Some(v.sum_squares),
                mean: (v.users > 0).then(|| s.mean()).filter(|m| m.is_finite()),
                variance: (v.users > 1)
                    .then(|| s.variance())
                    .filter(|m| m.is_finite()),
                theta: if cuped { theta.or(Some(0.0)) } else { None },
                suppressed: false,
            }
        })
        .collect();
    Ok(Report {
        metric: spec.metric.to_owned(),
        kind: spec.outcome,
        method: MethodName::from(&options.method),
        control: options.control.clone(),
        alpha: options.alpha,
        variants,
        srm,
        comparisons,
        excluded: Excluded {
            unknown_subject_events: aggregates.unknown_subject_events,
            multiple_variant_subjects: aggregates.multiple_variant_subjects,
        },
        suppressed: false,
    })
}

fn number(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.digits$}"))
}

impl Report {
    /// A table for people: variants, then each comparison.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} ({}), {} analysis, alpha {}, control '{}'",
            self.metric,
            self.kind.as_str(),
            self.method.as_str(),
            self.alpha,
            self.control
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<20} {:>10} {:>14} {:>12}",
            "variant", "users", "mean", "variance"
        );
        for v in &self.variants {
            let _ = writeln!(
                out,
                "{:<20} {:>10} {:>14} {:>12}",
                v.variant,
                v.users
                    .map_or_else(|| "suppressed".to_owned(), |u| u.to_string()),
                number(v.mean, 6),
                number(v.variance, 6)
            );
        }
        if let Some(srm) = self.srm {
            let verdict = if srm.mismatch {
                "MISMATCH: the split does not follow the weights"
            } else {
                "ok"
            };
            let _ = writeln!(
                out,
                "\nsample ratio: chi2 {:.3}, p {:.4} ({verdict})",
                srm.chi2, srm.p_value
            );
        }
        let level = ((1.0 - self.alpha) * 100.0).round();
        for c in &self.comparisons {
            let _ = writeln!(out, "\n{} vs {}", c.variant, self.control);
            for (label, effect) in [("relative", &c.relative), ("absolute", &c.absolute)] {
                match effect {
                    Some(e) => {
                        let scale = if label == "relative" { 100.0 } else { 1.0 };
                        let unit = if label == "relative" { "%" } else { "" };
                        let mut line = format!(
                            "  {label:<9} {:+.3}{unit}  {level}% interval [{:+.3}{unit}, {:+.3}{unit}]",
                            e.estimate * scale,
                            e.ci[0] * scale,
                            e.ci[1] * scale
                        );
                        if let Some(p) = e.p_value {
                            let _ = write!(line, "  p {p:.4}");
                        }
                        if let Some(ctw) = e.chance_to_win {
                            let _ = write!(line, "  chance to win {:.1}%", ctw * 100.0);
                        }
                        let _ = writeln!(out, "{line}");
                    }
                    None => {
                        let _ = writeln!(out, "  {label:<9} n/a");
                    }
                }
            }
            for note in &c.notes {
                let _ = writeln!(out, "  note: {note}");
            }
        }
        let _ = writeln!(
            out,
            "\nleft out: {} events of unknown subjects, {} subjects assigned to more than one variant",
            self.excluded.unknown_subject_events, self.excluded.multiple_variant_subjects
        );
        out
    }
}

/// The columns of [`Report::csv`].
pub const CSV_COLUMNS: &str = "metric,kind,method,alpha,control,variant,users,sum,mean,variance,\
absolute_estimate,absolute_ci_lower,absolute_ci_upper,relative_estimate,relative_ci_lower,\
relative_ci_upper,p_value,chance_to_win,suppressed";

impl Report {
    /// The per-variant table with each treatment's comparison against the
    /// control, as CSV: one row per variant (the control's comparison
    /// columns are empty), numbers in full precision so they equal the JSON
    /// report's; a figure withheld by small-cell suppression is empty and
    /// its row says `suppressed` true. Keys and event names need no quoting (their alphabets have
    /// no comma, quote or line break).
    pub fn csv(&self) -> String {
        let cell = |x: Option<f64>| x.map(|x| x.to_string()).unwrap_or_default();
        let mut out = String::from(CSV_COLUMNS);
        out.push('\n');
        for v in &self.variants {
            let comparison = self.comparisons.iter().find(|c| c.variant == v.variant);
            let effect = |pick: fn(&ComparisonReport) -> &Option<EffectReport>| {
                comparison.and_then(|c| pick(c).clone())
            };
            let absolute = effect(|c| &c.absolute);
            let relative = effect(|c| &c.relative);
            let bounds = |e: &Option<EffectReport>| {
                [
                    cell(e.as_ref().map(|e| e.estimate)),
                    cell(e.as_ref().map(|e| e.ci[0])),
                    cell(e.as_ref().map(|e| e.ci[1])),
                ]
            };
            let row = [
                self.metric.clone(),
                self.kind.as_str().to_owned(),
                self.method.as_str().to_owned(),
                self.alpha.to_string(),
                self.control.clone(),
                v.variant.clone(),
                v.users.map(|u| u.to_string()).unwrap_or_default(),
                cell(v.sum),
                cell(v.mean),
                cell(v.variance),
            ]
            .into_iter()
            .chain(bounds(&absolute))
            .chain(bounds(&relative))
            .chain([
                cell(relative.as_ref().and_then(|e| e.p_value)),
                cell(relative.as_ref().and_then(|e| e.chance_to_win)),
                (v.suppressed || comparison.is_some_and(|c| c.suppressed)).to_string(),
            ])
            .collect::<Vec<_>>()
            .join(",");
            out.push_str(&row);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests;
