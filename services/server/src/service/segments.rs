//! Results per value of a pre-registered segment: each value's results view
//! built by the same builder as the whole pilot's (`results::build_view`),
//! and the primary metric's p-values adjusted across every segment value and
//! treatment variant by the design's correction (Holm or
//! Benjamini–Hochberg), as GrowthBook adjusts its goal metrics; a
//! guardrail's p-values are not adjusted (GrowthBook's rule).

use std::collections::BTreeMap;

use pilotgate_analysis::stats::{benjamini_hochberg, holm};
use pilotgate_domain::experiment::Design;
use pilotgate_domain::inventory::segments::{Attributes, Correction, Dimension};
use pilotgate_store::{DailySums, SegmentOf};
use serde::Serialize;

use super::ServiceError;
use super::results::{ResultsView, ViewInput, build_view};
use pilotgate_analysis::disclosure::{self, Figures, MinCell};
use pilotgate_analysis::report::Report;

/// The segment results of one pre-registered segment.
#[derive(Debug, Serialize)]
pub struct SegmentResults {
    /// The segment's name, e.g. `device_type`.
    pub segment: String,
    /// `holm` or `benjamini_hochberg`, as the design pre-registered.
    pub correction: String,
    /// Whether the metric shown is adjusted: the primary metric is, a guardrail is not.
    pub adjusted: bool,
    /// How many p-values the correction adjusted together (segment values
    /// with results times treatment variants).
    pub family_size: usize,
    /// One entry per segment value seen, in the vocabulary's order; the
    /// value `null` holds the assignments made without the attribute.
    pub values: Vec<SegmentValueResults>,
}

/// The results of the people of one segment value.
#[derive(Debug, Serialize)]
pub struct SegmentValueResults {
    pub value: Option<String>,
    /// The people assigned with this value (withdrawn ones included);
    /// `null` when small-cell suppression withholds it.
    pub assigned: Option<u64>,
    /// The value's results, built as the whole pilot's; absent when they
    /// cannot be computed (see `unavailable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Box<ResultsView>>,
    /// Why there are no results (e.g. a variant without anyone), in one sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// Per treatment variant: the relative effect's p-value and its
    /// adjusted value (`null` when the method gives no p-value, or for a
    /// guardrail, which is not adjusted).
    pub p_values: Vec<AdjustedPValue>,
}

/// One comparison's p-value and its adjusted value.
#[derive(Debug, Clone, Serialize)]
pub struct AdjustedPValue {
    pub variant: String,
    pub p_value: Option<f64>,
    pub adjusted_p_value: Option<f64>,
}

/// The segment `name` if the design pre-registered it; 422 otherwise.
pub(super) fn declared(design: &Design, name: &str) -> Result<Dimension, ServiceError> {
    let refuse = || {
        let names: Vec<&str> = design.segments.iter().map(|d| d.as_str()).collect();
        ServiceError::invalid(
            "segment",
            if names.is_empty() {
                "this pilot pre-registered no segment; segments are named in the design before it starts".to_owned()
            } else {
                format!(
                    "must be a segment this pilot pre-registered before it started: {}",
                    names.join(", ")
                )
            },
        )
    };
    let dimension: Dimension = name.parse().map_err(|_| refuse())?;
    if design.segments.contains(&dimension) {
        Ok(dimension)
    } else {
        Err(refuse())
    }
}

/// The key of a segment value in its display order: the vocabulary's
/// listed order (or alphabetical for a shape), the people without the
/// attribute last.
fn order_key(dimension: Dimension, value: &Option<String>) -> (usize, String) {
    use pilotgate_domain::inventory::segments::Values;
    match (value, dimension.values()) {
        (None, _) => (usize::MAX, String::new()),
        (Some(v), Values::Listed(listed)) => (
            listed.iter().position(|l| l == v).unwrap_or(listed.len()),
            v.clone(),
        ),
        (Some(v), Values::CountryCode | Values::LegalBases) => (0, v.clone()),
    }
}

/// What the whole pilot's view released, which the segment values must
/// not let anyone recompute a withheld figure of.
#[derive(Debug, Clone)]
pub(super) struct PilotReleased {
    /// The metric shown and the guardrails, as released.
    pub(super) reports: Vec<Report>,
    pub(super) assigned_total: Option<u64>,
    pub(super) withdrawn_total: Option<u64>,
}

/// The segment results of `dimension` from the per-make-up sums and counts,
/// each value's view built from `base` with that value's data. Each view is
/// first built from the full data; the p-values are adjusted over the full
/// family; then small-cell suppression runs over every value at once, with
/// the sums a reader knows (a variant's users over the values are the
/// pilot's, a value's assigned are its users plus its withdrawals), and
/// each view withholds what it says. A value's view has no withdrawals,
/// attrition, daily series or anytime-valid SRM: those are the pilot's.
pub(super) fn segment_results(
    dimension: Dimension,
    correction: Correction,
    daily: Vec<(SegmentOf, DailySums)>,
    counts: Vec<(SegmentOf, String, u64, u64)>,
    base: &ViewInput,
    pilot: &PilotReleased,
) -> Result<SegmentResults, ServiceError> {
    type Slices = (Vec<DailySums>, BTreeMap<String, (u64, u64)>);
    let value_of = |of: &SegmentOf| {
        let attributes = Attributes::from_stored(of.attributes.as_deref());
        dimension
            .value_of(&of.basis, &attributes)
            .map(str::to_owned)
    };
    let mut by_value: BTreeMap<(usize, String), (Option<String>, Slices)> = BTreeMap::new();
    fn slot(
        by_value: &mut BTreeMap<(usize, String), (Option<String>, Slices)>,
        dimension: Dimension,
        value: Option<String>,
    ) -> &mut Slices {
        &mut by_value
            .entry(order_key(dimension, &value))
            .or_insert_with(|| (value, Default::default()))
            .1
    }
    for (of, sums) in daily {
        slot(&mut by_value, dimension, value_of(&of)).0.push(sums);
    }
    for (of, variant, assigned, withdrawn) in counts {
        let totals = slot(&mut by_value, dimension, value_of(&of))
            .1
            .entry(variant)
            .or_default();
        totals.0 += assigned;
        totals.1 += withdrawn;
    }

    let whole = MinCell::new(1).expect("1 is a minimum cell size");
    let mut values = Vec::with_capacity(by_value.len());
    let mut value_counts = Vec::with_capacity(by_value.len());
    for (_, (value, (daily, counts))) in by_value {
        let assigned = counts.values().map(|(n, _)| n).sum();
        value_counts.push(counts.clone());
        let input = ViewInput {
            daily: merge_days(daily),
            counts: counts
                .into_iter()
                .map(|(variant, (n, gone))| (variant, n, gone))
                .collect(),
            // The eligibility cohorts describe the whole pilot, not a value.
            cohorts: Vec::new(),
            k: whole,
            ..base.clone()
        };
        let (results, unavailable) = match build_view(input) {
            Ok(view) => (Some(Box::new(view)), None),
            Err(ServiceError::Unprocessable(reason)) => (None, Some(reason)),
            Err(other) => return Err(other),
        };
        let p_values = results
            .as_ref()
            .map(|view| {
                view.report
                    .comparisons
                    .iter()
                    .map(|c| AdjustedPValue {
                        variant: c.variant.clone(),
                        p_value: c.relative.as_ref().and_then(|e| e.p_value),
                        adjusted_p_value: None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        values.push(SegmentValueResults {
            value,
            assigned: Some(assigned),
            results,
            unavailable,
            p_values,
        });
    }

    let adjusted = base.metric == base.metrics[0];
    let family_size = if adjusted {
        adjust(&mut values, correction)?
    } else {
        0
    };
    release_values(&mut values, &value_counts, pilot, base.k);
    Ok(SegmentResults {
        segment: dimension.as_str().to_owned(),
        correction: correction.as_str().to_owned(),
        adjusted,
        family_size,
        values,
    })
}

/// The figures of one report of one segment value: per variant, its users
/// and (binary metric) its converted and unconverted users.
type ReportFigures = Vec<Vec<usize>>;

/// Withholds from every value's view, jointly, what small-cell suppression
/// under `k` says (see [`segment_results`]); `counts` are each value's
/// `(assigned, withdrawn)` per variant (its withdrawals are never shown, but
/// a reader may deduce them: only a count under `k` must stay unknown).
fn release_values(
    values: &mut [SegmentValueResults],
    counts: &[BTreeMap<String, (u64, u64)>],
    pilot: &PilotReleased,
    k: MinCell,
) {
    let mut figures = Figures::new();
    let mut withheld = Vec::new();
    let variants: Vec<String> = pilot
        .reports
        .first()
        .map(|r| r.variants.iter().map(|v| v.variant.clone()).collect())
        .unwrap_or_default();
    // Per value: per metric (in the order of `pilot.reports`), its figures.
    let mut per_value: Vec<Vec<ReportFigures>> = Vec::with_capacity(values.len());
    let mut assigned_figures = Vec::with_capacity(values.len());
    let mut withdrawn_figures = Vec::with_capacity(values.len());
    for (value, counts) in values.iter().zip(counts) {
        let reports: Vec<Option<&Report>> = pilot
            .reports
            .iter()
            .map(|released| {
                value.results.as_ref().and_then(|view| {
                    std::iter::once(&view.report)
                        .chain(&view.guardrails)
                        .find(|r| r.metric == released.metric)
                })
            })
            .collect();
        let users: Vec<usize> = variants
            .iter()
            .map(|variant| {
                let (assigned, gone) = counts.get(variant).copied().unwrap_or_default();
                let figure = figures.figure(assigned.saturating_sub(gone));
                if value.results.is_none() {
                    // No view of the value shows its users.
                    withheld.push(figure);
                }
                figure
            })
            .collect();
        let mut metrics = Vec::with_capacity(reports.len());
        for report in &reports {
            let counts = report.map(disclosure::variant_counts).unwrap_or_default();
            let per_variant: ReportFigures = variants
                .iter()
                .enumerate()
                .map(|(index, variant)| {
                    let whole = report
                        .and_then(|r| r.variants.iter().position(|v| &v.variant == variant))
                        .and_then(|i| counts.get(i))
                        .cloned()
                        .unwrap_or_else(|| vec![0]);
                    let mut row = vec![users[index]];
                    if whole.len() == 3 {
                        let converted = figures.figure(whole[1]);
                        let unconverted = figures.figure(whole[2]);
                        figures.relate(vec![(converted, 1), (unconverted, 1), (users[index], -1)]);
                        if value.results.is_none() {
                            withheld.extend([converted, unconverted]);
                        }
                        row.extend([converted, unconverted]);
                    }
                    row
                })
                .collect();
            metrics.push(per_variant);
        }
        let gone = counts.values().map(|(_, gone)| gone).sum();
        let withdrawn = figures.figure(gone);
        let assigned = figures.total(&users.iter().copied().chain([withdrawn]).collect::<Vec<_>>());
        assigned_figures.push(assigned);
        withdrawn_figures.push(withdrawn);
        per_value.push(metrics);
    }
    // The pilot's own figures are the sums over the values.
    for (m, released) in pilot.reports.iter().enumerate() {
        for (index, variant) in released.variants.iter().enumerate() {
            let coordinates = per_value
                .first()
                .and_then(|metrics| metrics.get(m))
                .and_then(|rows| rows.get(index))
                .map_or(0, Vec::len);
            for c in 0..coordinates {
                if m > 0 && c == 0 {
                    continue; // one users total per variant
                }
                let parts: Vec<usize> = per_value
                    .iter()
                    .filter_map(|metrics| metrics.get(m)?.get(index)?.get(c).copied())
                    .collect();
                let total = figures.total(&parts);
                let shown = if c == 0 {
                    variant.users.is_some()
                } else {
                    !variant.suppressed
                };
                if shown {
                    // The pilot's view shows it: a value's figure is
                    // withheld around it, never it.
                    figures.publish(total);
                } else {
                    withheld.push(total);
                }
            }
        }
    }
    for (total, released) in [
        (figures.total(&assigned_figures), pilot.assigned_total),
        (figures.total(&withdrawn_figures), pilot.withdrawn_total),
    ] {
        match released {
            Some(_) => figures.publish(total),
            None => withheld.push(total),
        }
    }

    let suppressed = figures.suppress_with(k, &withheld);
    // Per variant of one report's figures: whether its users, and whether
    // its outcome, are released.
    let flags = |rows: &ReportFigures| -> (Vec<bool>, Vec<bool>) {
        rows.iter()
            .map(|row| {
                let users = !suppressed[row[0]];
                (users, users && row.iter().all(|f| !suppressed[*f]))
            })
            .unzip()
    };
    let released_metrics: Vec<&str> = pilot.reports.iter().map(|r| r.metric.as_str()).collect();
    for ((value, metrics), assigned) in values.iter_mut().zip(&per_value).zip(&assigned_figures) {
        if suppressed[*assigned] {
            value.assigned = None;
        }
        let Some(view) = value.results.as_mut() else {
            continue;
        };
        for report in std::iter::once(&mut view.report).chain(view.guardrails.iter_mut()) {
            let order: Vec<String> = report.variants.iter().map(|v| v.variant.clone()).collect();
            let Some(m) = released_metrics
                .iter()
                .position(|name| *name == report.metric)
            else {
                continue;
            };
            let (users_by_variant, outcome_by_variant) = flags(&metrics[m]);
            let pick = |flags: &[bool]| -> Vec<bool> {
                order
                    .iter()
                    .map(|name| {
                        variants
                            .iter()
                            .position(|v| v == name)
                            .is_none_or(|i| flags[i])
                    })
                    .collect()
            };
            disclosure::withhold_in_report(
                report,
                &pick(&users_by_variant),
                &pick(&outcome_by_variant),
            );
        }
        if view.report.suppressed || view.guardrails.iter().any(|g| g.suppressed) {
            view.decision = super::results::withheld_decision(k);
        }
        view.withdrawn = None;
        view.attrition = None;
        view.sequential_srm = None;
        view.cumulative.clear();
        view.min_cell = k.get();
        for entry in &mut value.p_values {
            let released = view
                .report
                .comparisons
                .iter()
                .any(|c| c.variant == entry.variant && !c.suppressed);
            if !released {
                entry.p_value = None;
                entry.adjusted_p_value = None;
            }
        }
    }
}

/// Sets every adjusted p-value of `values` from their p-values taken as one
/// family; returns the family's size.
fn adjust(
    values: &mut [SegmentValueResults],
    correction: Correction,
) -> Result<usize, ServiceError> {
    let family: Vec<f64> = values
        .iter()
        .flat_map(|v| v.p_values.iter().filter_map(|p| p.p_value))
        .collect();
    let corrected = match correction {
        Correction::Holm => holm(&family),
        Correction::BenjaminiHochberg => benjamini_hochberg(&family),
    }
    .map_err(ServiceError::internal)?;
    let mut next = corrected.into_iter();
    for entry in values.iter_mut().flat_map(|v| v.p_values.iter_mut()) {
        if entry.p_value.is_some() {
            entry.adjusted_p_value = next.next();
        }
    }
    Ok(family.len())
}

/// Rows of the same variant and day (several make-ups of one segment value) summed.
fn merge_days(daily: Vec<DailySums>) -> Vec<DailySums> {
    let mut merged: BTreeMap<(i64, String), DailySums> = BTreeMap::new();
    for row in daily {
        match merged.get_mut(&(row.day, row.variant.clone())) {
            Some(sum) => {
                sum.users += row.users;
                for (total, (s, q)) in sum.per_metric.iter_mut().zip(row.per_metric) {
                    total.0 += s;
                    total.1 += q;
                }
            }
            None => {
                merged.insert((row.day, row.variant.clone()), row);
            }
        }
    }
    merged.into_values().collect()
}

impl SegmentResults {
    /// The per-variant table of every segment value, as CSV: the columns of
    /// `Report::csv` after `segment` and `segment_value`, then the
    /// adjusted p-value. A value without results has no rows.
    pub fn csv(&self) -> String {
        let mut out = format!(
            "segment,segment_value,{},adjusted_p_value\n",
            pilotgate_analysis::report::CSV_COLUMNS
        );
        for value in &self.values {
            let Some(results) = &value.results else {
                continue;
            };
            let label = value.value.as_deref().unwrap_or("");
            let table = results.report.csv();
            for (line, variant) in table.lines().skip(1).zip(&results.report.variants) {
                let adjusted = value
                    .p_values
                    .iter()
                    .find(|p| p.variant == variant.variant)
                    .and_then(|p| p.adjusted_p_value)
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                out.push_str(&format!("{},{label},{line},{adjusted}\n", self.segment));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(variant: &str, p: Option<f64>) -> AdjustedPValue {
        AdjustedPValue {
            variant: variant.to_owned(),
            p_value: p,
            adjusted_p_value: None,
        }
    }

    fn value(name: &str, p_values: Vec<AdjustedPValue>) -> SegmentValueResults {
        SegmentValueResults {
            value: Some(name.to_owned()),
            assigned: Some(100),
            results: None,
            unavailable: None,
            p_values,
        }
    }

    #[test]
    fn the_family_is_every_segment_value_and_variant_and_skips_missing_p_values() {
        let mut values = vec![
            value(
                "mobile",
                vec![entry("b", Some(0.01)), entry("c", Some(0.04))],
            ),
            value("desktop", vec![entry("b", Some(0.03)), entry("c", None)]),
        ];
        assert_eq!(adjust(&mut values, Correction::Holm).unwrap(), 3);
        let adjusted: Vec<Option<f64>> = values
            .iter()
            .flat_map(|v| v.p_values.iter().map(|p| p.adjusted_p_value))
            .collect();
        // Holm over [0.01, 0.04, 0.03]: 0.03, 0.06, 0.06.
        let expected = [Some(0.03), Some(0.06), Some(0.06), None];
        for (got, want) in adjusted.iter().zip(expected) {
            match (got, want) {
                (Some(g), Some(w)) => assert!((g - w).abs() < 1e-12, "{adjusted:?}"),
                (None, None) => {}
                _ => panic!("{adjusted:?}"),
            }
        }
        assert_eq!(
            adjust(&mut values, Correction::BenjaminiHochberg).unwrap(),
            3
        );
        // Benjamini–Hochberg over the same: 0.03, 0.04, 0.04.
        assert!((values[0].p_values[0].adjusted_p_value.unwrap() - 0.03).abs() < 1e-12);
        assert!((values[0].p_values[1].adjusted_p_value.unwrap() - 0.04).abs() < 1e-12);
    }

    #[test]
    fn rows_of_one_day_and_variant_are_summed() {
        let row = |variant: &str, day, users, s| DailySums {
            variant: variant.to_owned(),
            day,
            users,
            per_metric: vec![(s, s)],
        };
        let merged = merge_days(vec![
            row("a", 1, 2, 1.0),
            row("a", 1, 3, 2.0),
            row("b", 1, 1, 0.0),
        ]);
        assert_eq!(merged, vec![row("a", 1, 5, 3.0), row("b", 1, 1, 0.0)]);
    }
}
