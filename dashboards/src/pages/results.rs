//! The results page of one experiment: decision, health checks, power,
//! per-variant statistics, a forest plot and the cumulative uplift.

use askama::Template;

use super::{Choice, Progress};
use crate::charts::{BandPoint, ForestRow, Svg, band_chart, forest_plot};
use crate::format::{
    number_interval, p_value, percent, percent_interval, percentage_points, points_interval,
    signed_percent, signed_significant, significant, thousands, trimmed,
};
use crate::layout::Chrome;
use crate::pages::pilot::PilotPanel;
use crate::urls;
use crate::view::{Badge, Count, Estimate, ExperimentState, SUPPRESSED, Tone};

/// Everything the results page shows for one metric under one method.
#[derive(Debug, Clone, Template)]
#[template(path = "pages/results.html")]
pub struct ResultsPage {
    /// The frame.
    pub chrome: Chrome,
    /// The experiment's key, used for links.
    pub experiment_key: String,
    /// The experiment's human name.
    pub experiment_name: String,
    /// Its lifecycle state.
    pub state: ExperimentState,
    /// The metric shown: the `value` of one of `metric_options`.
    pub metric: String,
    /// Whether the metric shown is binary (a rate) or a sum (a mean).
    pub metric_kind: MetricKind,
    /// The metrics one may switch to: the primary metric, then guardrails.
    pub metric_options: Vec<MetricOption>,
    /// The statistical method shown.
    pub method: Method,
    /// The significance level, e.g. `0.05` for 95% intervals.
    pub alpha: f64,
    /// The pre-registered relative minimum detectable effect, e.g. `0.02`.
    pub mde: f64,
    /// The decision on the primary metric.
    pub decision: Decision,
    /// Why, in sentences, e.g. "The interval lies above the MDE.".
    pub decision_reasons: Vec<String>,
    /// The sample ratio mismatch check; `None` when withheld (a variant's
    /// users are suppressed).
    pub srm: Option<BalanceCheck>,
    /// The anytime-valid sample ratio check over the daily looks.
    /// `None` when small-cell suppression withholds it.
    pub sequential_srm: Option<BalanceCheck>,
    /// The check for lost subjects (withdrawn, objected, erased) unevenly
    /// spread over variants; `None` when withheld (a variant's losses are
    /// suppressed) or nobody was lost.
    pub withdrawal_balance: Option<BalanceCheck>,
    /// Every subject lost per variant, day by day, and the Lee bounds.
    pub attrition: Attrition,
    /// Withdrawn subjects excluded from this analysis, over all variants.
    pub withdrawn_excluded: Count,
    /// The minimum cell size `k` the figures were released under.
    pub min_cell: u64,
    /// Whether some figure of the page is suppressed (a note then says why).
    pub suppressed: bool,
    /// Users so far against the planned sample size, per variant.
    pub power: Vec<PowerProgress>,
    /// One row per variant, the control first.
    pub variants: Vec<VariantResult>,
    /// The cumulative relative uplift by assignment day, one series per
    /// treatment variant.
    pub cumulative_uplift: Vec<UpliftSeries>,
    /// Guardrail metrics, per metric and treatment variant.
    pub guardrails: Vec<GuardrailSummary>,
    /// The pilot's design in brief, decision, buttons and plan; when its
    /// `empty` says why, the results sections are left out.
    pub pilot: PilotPanel,
    /// The α values one may pick (the pre-registered one among them).
    pub alpha_options: Vec<f64>,
    /// Whether the metric shown is CUPED-adjusted.
    pub cuped: bool,
    /// The CUPED pre-period in days (the form's value).
    pub lookback_days: u32,
    /// What CUPED achieved, or why it is not available.
    pub cuped_note: Option<String>,
    /// `YYYY-MM-DD` when the pilot's raw data was purged (its retention
    /// ended): the results shown come from the aggregates kept.
    pub raw_data_purged_on: Option<String>,
    /// The segments the design pre-registered (the selector's options).
    pub segment_options: Vec<String>,
    /// The segment shown, if one was chosen.
    pub segment: Option<String>,
    /// The chosen segment's table.
    pub segment_table: Option<super::segments::SegmentTable>,
}

/// One treatment variant's relative uplift over the users assigned up to
/// each day, oldest day first.
#[derive(Debug, Clone, PartialEq)]
pub struct UpliftSeries {
    /// The treatment variant's key.
    pub variant: String,
    /// One point per day.
    pub points: Vec<BandPoint>,
}

/// How the metric is measured per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Converted or not; per-variant values are rates.
    Binary,
    /// A sum of event values; per-variant values are means.
    Sum,
}

/// A metric one may pick in the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricOption {
    /// The query value, the metric's event name, e.g. `purchase`.
    pub value: String,
    /// What the option says, e.g. `purchase (primary)`.
    pub label: String,
}

/// The statistical method of the analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Fixed-horizon Welch t-test.
    Frequentist,
    /// Asymptotic confidence sequences, valid at any look.
    Sequential,
    /// Gaussian posterior with chance to win.
    Bayesian,
}

impl Method {
    /// Every method, in the order the form lists them.
    pub const ALL: [Method; 3] = [Method::Frequentist, Method::Sequential, Method::Bayesian];

    /// The value of the `method` query parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Frequentist => "frequentist",
            Method::Sequential => "sequential",
            Method::Bayesian => "bayesian",
        }
    }

    /// The method's name for people.
    pub fn label(self) -> &'static str {
        match self {
            Method::Frequentist => "Frequentist (fixed horizon)",
            Method::Sequential => "Sequential (always valid)",
            Method::Bayesian => "Bayesian",
        }
    }

    /// What the interval is called under this method.
    fn interval_name(self) -> &'static str {
        match self {
            Method::Frequentist => "confidence interval",
            Method::Sequential => "confidence sequence",
            Method::Bayesian => "credible interval",
        }
    }

    /// The heading of the significance column.
    pub(crate) fn significance_heading(self) -> &'static str {
        match self {
            Method::Bayesian => "Chance to win",
            Method::Frequentist | Method::Sequential => "p-value",
        }
    }
}

/// The decision on the primary metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Roll the treatment out.
    Scale,
    /// Do not roll it out.
    DoNotScale,
    /// Not enough evidence yet.
    KeepRunning,
    /// The data cannot be trusted (sample ratio mismatch).
    Invalid,
    /// Attrition differs between variants and the Lee bounds include 0.
    NotDecidable,
}

impl Decision {
    /// The decision in a few words.
    pub fn label(self) -> &'static str {
        match self {
            Decision::Scale => "Scale",
            Decision::DoNotScale => "Do not scale",
            Decision::KeepRunning => "Keep running",
            Decision::Invalid => "Invalid",
            Decision::NotDecidable => "Not decidable",
        }
    }

    /// The banner's colour.
    pub(crate) fn tone(self) -> Tone {
        match self {
            Decision::Scale => Tone::Active,
            Decision::DoNotScale => Tone::Negative,
            Decision::KeepRunning => Tone::Info,
            Decision::Invalid | Decision::NotDecidable => Tone::Warning,
        }
    }

    /// One sentence saying what the decision means.
    pub(crate) fn explanation(self) -> &'static str {
        match self {
            Decision::Scale => {
                "The treatment beat the control by a meaningful margin without harming a guardrail."
            }
            Decision::DoNotScale => "The treatment did not earn a rollout.",
            Decision::KeepRunning => "There is not enough evidence yet; keep collecting data.",
            Decision::Invalid => {
                "The data failed a health check, so the results cannot be trusted."
            }
            Decision::NotDecidable => {
                "The variants lost different shares of their subjects, and under the worst case that loss allows the effect could go either way."
            }
        }
    }
}

/// The subjects each variant lost and what that allows about the effect.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Attrition {
    /// One row per variant, the control first.
    pub variants: Vec<AttritionRow>,
    /// The share lost per variant (in the order of `variants`) at the end of
    /// each day, oldest first; `None` where small-cell suppression withholds it.
    pub days: Vec<(String, Vec<Option<f64>>)>,
    /// Per treatment variant: its relative estimate and the Lee bounds of
    /// the relative effect, when the variants kept different shares.
    pub lee_bounds: Vec<LeeRow>,
    /// Refused assignment calls per variant the subject would have had,
    /// tested against the split; `None` with no refusal.
    pub refusal_check: Option<BalanceCheck>,
}

/// One variant's attrition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttritionRow {
    pub variant: String,
    pub assigned: Count,
    pub withdrawn: Count,
    pub objected: Count,
    pub erased: Count,
}

/// One treatment variant's estimate beside its Lee bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct LeeRow {
    pub variant: String,
    /// The relative estimate shown in the results table.
    pub estimate: Option<f64>,
    /// The Lee bounds of the relative effect, or why there are none.
    pub bounds: Result<[f64; 2], String>,
    /// The share of the trimmed arm's kept subjects trimmed, and which arm.
    pub trimmed: String,
}

/// The texts of one attrition row.
pub struct AttritionRowView {
    pub variant: String,
    pub assigned: String,
    pub withdrawn: String,
    pub objected: String,
    pub erased: String,
    pub lost_share: String,
}

/// The texts of one Lee row.
pub struct LeeRowView {
    pub variant: String,
    pub estimate: String,
    pub bounds: String,
    pub trimmed: String,
}

/// A balance check (sample ratio, withdrawals) and whether it failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BalanceCheck {
    /// The chi-square test's p-value.
    pub p_value: f64,
    /// Whether the analysis flagged an imbalance.
    pub flagged: bool,
}

/// How far one variant is towards its planned sample size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerProgress {
    /// The variant's key.
    pub variant: String,
    /// Users assigned so far.
    pub users: Count,
    /// Users planned for this variant.
    pub planned: u64,
}

/// How sure the method is that a treatment differs from the control.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Significance {
    /// A two-sided p-value (frequentist and sequential methods).
    PValue(f64),
    /// The posterior chance that the treatment beats the control (Bayesian).
    ChanceToWin(f64),
}

impl Significance {
    /// The value for people: `0.0123`, `< 0.001` or `87.3%`; a dash when
    /// there is none.
    fn text_of(significance: Option<Significance>) -> String {
        match significance {
            Some(Significance::PValue(p)) => p_value(p),
            Some(Significance::ChanceToWin(chance)) => percent(chance),
            None => "\u{2014}".to_owned(),
        }
    }
}

/// One variant's statistics on the metric shown.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantResult {
    /// The variant's key, e.g. `control`.
    pub variant: String,
    /// Users analysed.
    pub users: Count,
    /// Users who converted, for binary metrics.
    pub conversions: Option<Count>,
    /// The rate (binary) or mean (sum) per user; `None` when suppressed.
    pub mean: Option<f64>,
    /// The difference to the control, `None` for the control itself.
    pub absolute_uplift: Option<Estimate>,
    /// The relative difference to the control, as a share.
    pub relative_uplift: Option<Estimate>,
    /// The p-value or chance to win, `None` for the control.
    pub significance: Option<Significance>,
}

/// The verdict on one guardrail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardrailStatus {
    /// No harm detected.
    Ok,
    /// The treatment harmed this metric.
    Harmed,
    /// Not enough evidence either way.
    Inconclusive,
}

impl GuardrailStatus {
    /// The verdict as a badge.
    fn badge(self) -> Badge {
        match self {
            GuardrailStatus::Ok => Badge::new("no harm", Tone::Active),
            GuardrailStatus::Harmed => Badge::new("harm detected", Tone::Negative),
            GuardrailStatus::Inconclusive => Badge::new("inconclusive", Tone::Neutral),
        }
    }
}

/// One guardrail metric for one treatment variant.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardrailSummary {
    /// The guardrail's event name.
    pub metric: String,
    /// The treatment variant's key.
    pub variant: String,
    /// The relative difference to the control, as a share.
    pub relative_uplift: Option<Estimate>,
    /// The p-value or chance to win.
    pub significance: Option<Significance>,
    /// The verdict.
    pub status: GuardrailStatus,
}

/// A variant row as the template shows it.
#[derive(Debug)]
pub(crate) struct VariantView {
    pub(crate) variant: String,
    pub(crate) users: String,
    pub(crate) conversions: String,
    pub(crate) mean: String,
    pub(crate) absolute: String,
    pub(crate) absolute_interval: String,
    pub(crate) relative: String,
    pub(crate) relative_interval: String,
    pub(crate) significance: String,
}

/// A power row as the template shows it.
#[derive(Debug)]
pub(crate) struct PowerView {
    pub(crate) variant: String,
    pub(crate) users: String,
    pub(crate) planned: String,
    pub(crate) progress: Option<Progress>,
}

/// A guardrail row as the template shows it.
#[derive(Debug)]
pub(crate) struct GuardrailView {
    pub(crate) metric: String,
    pub(crate) variant: String,
    pub(crate) relative: String,
    pub(crate) relative_interval: String,
    pub(crate) significance: String,
    pub(crate) badge: Badge,
}

/// `estimate` formatted as a relative uplift and its interval.
fn relative_texts(estimate: Option<Estimate>) -> (String, String) {
    match estimate {
        Some(e) => (signed_percent(e.value), percent_interval(e.lower, e.upper)),
        None => ("\u{2014}".to_owned(), String::new()),
    }
}

impl ResultsPage {
    /// The interval level, e.g. "95%".
    pub(crate) fn level(&self) -> String {
        format!("{}%", trimmed((1.0 - self.alpha) * 100.0, 1))
    }

    /// The heading of the interval columns, e.g. "95% confidence interval".
    pub(crate) fn interval_heading(&self) -> String {
        format!("{} {}", self.level(), self.method.interval_name())
    }

    pub(crate) fn is_binary(&self) -> bool {
        self.metric_kind == MetricKind::Binary
    }

    pub(crate) fn significance_heading(&self) -> &'static str {
        self.method.significance_heading()
    }

    fn results_href(&self) -> String {
        urls::results(&self.experiment_key)
    }

    /// The results shown, as a file (`csv` or `json`), with this page's choices.
    fn download_href(&self, extension: &str) -> String {
        let mut href = format!(
            "{}?metric={}&method={}&alpha={}",
            urls::results_file(&self.experiment_key, extension),
            urls::encode_component(&self.metric),
            self.method.as_str(),
            self.alpha
        );
        if self.cuped {
            href.push_str(&format!("&cuped=on&lookback_days={}", self.lookback_days));
        }
        if let Some(segment) = &self.segment {
            href.push_str(&format!("&segment={}", urls::encode_component(segment)));
        }
        href
    }

    fn segment_chosen(&self, name: &str) -> bool {
        self.segment.as_deref() == Some(name)
    }

    fn memo_href(&self) -> String {
        urls::memo(&self.experiment_key)
    }

    fn alpha_choices(&self) -> Vec<Choice> {
        self.alpha_options
            .iter()
            .map(|a| Choice {
                value: a.to_string(),
                label: format!("{} ({}% intervals)", a, trimmed((1.0 - a) * 100.0, 1)),
                selected: (a - self.alpha).abs() < 1e-12,
            })
            .collect()
    }

    fn metric_choices(&self) -> Vec<Choice> {
        self.metric_options
            .iter()
            .map(|option| Choice {
                value: option.value.clone(),
                label: option.label.clone(),
                selected: option.value == self.metric,
            })
            .collect()
    }

    fn method_choices(&self) -> Vec<Choice> {
        Method::ALL
            .iter()
            .map(|method| Choice {
                value: method.as_str().to_owned(),
                label: method.label().to_owned(),
                selected: *method == self.method,
            })
            .collect()
    }

    pub(crate) fn srm_badge(&self) -> Badge {
        match &self.srm {
            Some(check) => balance_badge(check, "Sample ratio mismatch", "Sample ratio OK"),
            None => Badge::new("Sample ratio check suppressed", Tone::Neutral),
        }
    }

    pub(crate) fn sequential_srm_badge(&self) -> Badge {
        match &self.sequential_srm {
            Some(check) => balance_badge(
                check,
                "Sample ratio mismatch (anytime-valid)",
                "Sample ratio OK (anytime-valid)",
            ),
            None => Badge::new("Anytime-valid sample ratio check suppressed", Tone::Neutral),
        }
    }

    pub(crate) fn attrition_rows(&self) -> Vec<AttritionRowView> {
        self.attrition
            .variants
            .iter()
            .map(|row| {
                let counts =
                    [row.assigned, row.withdrawn, row.objected, row.erased].map(Count::value);
                AttritionRowView {
                    variant: row.variant.clone(),
                    assigned: row.assigned.text(),
                    withdrawn: row.withdrawn.text(),
                    objected: row.objected.text(),
                    erased: row.erased.text(),
                    lost_share: match counts {
                        [Some(0), ..] => "\u{2014}".to_owned(),
                        [Some(assigned), Some(w), Some(o), Some(e)] => {
                            percent((w + o + e) as f64 / assigned as f64)
                        }
                        _ => SUPPRESSED.to_owned(),
                    },
                }
            })
            .collect()
    }

    /// Whether small-cell suppression withholds an attrition count.
    pub(crate) fn attrition_withheld(&self) -> bool {
        self.attrition.variants.iter().any(|row| {
            [row.assigned, row.withdrawn, row.objected, row.erased]
                .iter()
                .any(|c| c.value().is_none())
        }) || self
            .attrition
            .days
            .iter()
            .any(|(_, shares)| shares.iter().any(Option::is_none))
    }

    pub(crate) fn refusal_badge(&self) -> Option<Badge> {
        self.attrition.refusal_check.as_ref().map(|check| {
            balance_badge(
                check,
                "Refusals depend on the variant",
                "Refusals independent of the variant",
            )
        })
    }

    pub(crate) fn attrition_days(&self) -> Vec<(String, Vec<String>)> {
        self.attrition
            .days
            .iter()
            .map(|(day, shares)| {
                let shares = shares
                    .iter()
                    .map(|s| s.map_or_else(|| SUPPRESSED.to_owned(), percent))
                    .collect();
                (day.clone(), shares)
            })
            .collect()
    }

    pub(crate) fn lee_rows(&self) -> Vec<LeeRowView> {
        self.attrition
            .lee_bounds
            .iter()
            .map(|row| LeeRowView {
                variant: row.variant.clone(),
                estimate: row
                    .estimate
                    .map_or_else(|| "\u{2014}".to_owned(), signed_percent),
                bounds: match &row.bounds {
                    Ok([low, high]) => {
                        format!("[{}, {}]", signed_percent(*low), signed_percent(*high))
                    }
                    Err(why) => why.clone(),
                },
                trimmed: row.trimmed.clone(),
            })
            .collect()
    }

    pub(crate) fn withdrawal_badge(&self) -> Badge {
        match &self.withdrawal_balance {
            Some(check) => balance_badge(check, "Attrition imbalance", "Attrition balanced"),
            None if self.withdrawn_excluded == Count::Shown(0) => {
                Badge::new("No withdrawals", Tone::Active)
            }
            None => Badge::new("Attrition balance check suppressed", Tone::Neutral),
        }
    }

    pub(crate) fn withdrawn_text(&self) -> String {
        match self.withdrawn_excluded {
            Count::Shown(0) => "No withdrawn subjects were excluded.".to_owned(),
            Count::Shown(1) => "1 withdrawn subject was excluded from this analysis.".to_owned(),
            Count::Shown(n) => format!(
                "{} withdrawn subjects were excluded from this analysis.",
                thousands(n)
            ),
            Count::Suppressed => {
                "The number of withdrawn subjects excluded from this analysis is suppressed."
                    .to_owned()
            }
        }
    }

    /// Why figures read "suppressed", when some do.
    pub(crate) fn suppression_note(&self) -> Option<String> {
        self.suppressed.then(|| {
            format!(
                "Figures describing fewer than {k} people (< {k}) are suppressed, and so are the figures from which one could be recomputed; statistics over a suppressed group are withheld.",
                k = self.min_cell
            )
        })
    }

    pub(crate) fn power_rows(&self) -> Vec<PowerView> {
        self.power
            .iter()
            .map(|row| PowerView {
                variant: row.variant.clone(),
                users: row.users.text(),
                planned: thousands(row.planned),
                progress: row
                    .users
                    .value()
                    .and_then(|users| Progress::new(users, Some(row.planned))),
            })
            .collect()
    }

    pub(crate) fn variant_rows(&self) -> Vec<VariantView> {
        self.variants
            .iter()
            .map(|row| {
                let (absolute, absolute_interval) = match (row.absolute_uplift, self.metric_kind) {
                    (None, _) => ("\u{2014}".to_owned(), String::new()),
                    (Some(e), MetricKind::Binary) => (
                        percentage_points(e.value),
                        points_interval(e.lower, e.upper),
                    ),
                    (Some(e), MetricKind::Sum) => (
                        signed_significant(e.value),
                        number_interval(e.lower, e.upper),
                    ),
                };
                let (relative, relative_interval) = relative_texts(row.relative_uplift);
                VariantView {
                    variant: row.variant.clone(),
                    users: row.users.text(),
                    conversions: row.conversions.map(Count::text).unwrap_or_default(),
                    mean: match (row.mean, self.metric_kind) {
                        (None, _) => SUPPRESSED.to_owned(),
                        (Some(mean), MetricKind::Binary) => percent(mean),
                        (Some(mean), MetricKind::Sum) => significant(mean, 3),
                    },
                    absolute,
                    absolute_interval,
                    relative,
                    relative_interval,
                    significance: Significance::text_of(row.significance),
                }
            })
            .collect()
    }

    pub(crate) fn guardrail_rows(&self) -> Vec<GuardrailView> {
        self.guardrails
            .iter()
            .map(|row| {
                let (relative, relative_interval) = relative_texts(row.relative_uplift);
                GuardrailView {
                    metric: row.metric.clone(),
                    variant: row.variant.clone(),
                    relative,
                    relative_interval,
                    significance: Significance::text_of(row.significance),
                    badge: row.status.badge(),
                }
            })
            .collect()
    }

    fn forest_svg(&self) -> Svg {
        let rows: Vec<ForestRow> = self
            .variants
            .iter()
            .filter_map(|row| {
                row.relative_uplift.map(|e| ForestRow {
                    label: row.variant.clone(),
                    estimate: e.value,
                    lower: e.lower,
                    upper: e.upper,
                })
            })
            .collect();
        let title = format!(
            "Relative uplift of {} per treatment variant with {}s; dashed lines at plus and minus the MDE of {}",
            self.metric,
            self.interval_heading(),
            percent(self.mde),
        );
        forest_plot(&rows, self.mde, &title)
    }

    /// One chart per treatment variant with the variant's name; a single
    /// empty chart when there is no series yet.
    fn cumulative_charts(&self) -> Vec<(String, Svg)> {
        let title = |variant: &str| {
            format!(
                "Cumulative relative uplift of {} for {variant} by assignment day, with its {}",
                self.metric,
                self.interval_heading(),
            )
        };
        if self.cumulative_uplift.is_empty() {
            return vec![(String::new(), band_chart(&[], &title("the treatment")))];
        }
        self.cumulative_uplift
            .iter()
            .map(|series| {
                (
                    series.variant.clone(),
                    band_chart(&series.points, &title(&series.variant)),
                )
            })
            .collect()
    }
}

/// `= 0.0123` or `< 0.001`, for a p-value already formatted.
fn p_phrase(formatted: &str) -> String {
    if formatted.starts_with('<') {
        formatted.to_owned()
    } else {
        format!("= {formatted}")
    }
}

/// The badge of a balance check: `flagged_text` in red, or `ok_text` in green, with the p-value.
fn balance_badge(check: &BalanceCheck, flagged_text: &str, ok_text: &str) -> Badge {
    let p = p_value(check.p_value);
    if check.flagged {
        Badge::new(
            format!("{flagged_text} (p {})", p_phrase(&p)),
            Tone::Negative,
        )
    } else {
        Badge::new(format!("{ok_text} (p {})", p_phrase(&p)), Tone::Active)
    }
}
