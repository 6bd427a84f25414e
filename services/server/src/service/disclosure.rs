//! Small-cell suppression across the views of one pilot. The results, the
//! eligibility report and the compliance page each release counts of the
//! same people (a variant's assigned subjects are its cohorts by basis and
//! notice, and also its analysed plus its withdrawn subjects), so the counts
//! are suppressed together, once, with every relation a reader of all of
//! them knows; each view then withholds what this says.

use std::collections::BTreeMap;

use pilotgate_analysis::disclosure::{Figures, MinCell};
use pilotgate_dashboards as view;
use pilotgate_store::{Store, StoreError};

/// The cells of pilot `key` under `k`, from its raw assignments or, once
/// purged, from the aggregates kept.
pub async fn pilot_cells(store: &Store, key: &str, k: MinCell) -> Result<PilotCells, StoreError> {
    let counts = super::purge::assignment_counts(store, key).await?;
    let cohorts = super::purge::eligibility_breakdown(store, key).await?;
    Ok(PilotCells::new(&counts, &cohorts, k))
}

/// A standalone count of people (no total or other figure relates to it):
/// released when it is 0 or at least `k`.
pub fn standalone(count: u64, k: MinCell) -> Option<u64> {
    k.allows(count).then_some(count)
}

/// Marks in `matrix` what small-cell suppression withholds: its cells, row
/// totals, column totals and grand total, as the table shows them all.
pub fn withhold(matrix: &mut view::CountMatrix, k: MinCell) {
    let rows: Vec<Vec<u64>> = matrix
        .rows
        .iter()
        .map(|row| (0..matrix.columns.len()).map(|c| row.count(c)).collect())
        .collect();
    let released = release_grid(&rows, k);
    matrix.withheld = view::Withheld {
        cells: released
            .cells
            .iter()
            .map(|row| row.iter().map(Option::is_none).collect())
            .collect(),
        row_totals: released.row_totals.iter().map(Option::is_none).collect(),
        column_totals: released.column_totals.iter().map(Option::is_none).collect(),
        grand_total: released.grand_total.is_none(),
    };
}

/// Refusal counters `(stage, reason, day, count)`, ordered by day, as a
/// matrix with one row per day from the first to the last (days without a
/// refusal read 0, so the chart's time axis has no holes) and one column per
/// `stage: reason`, with what small-cell suppression withholds marked. The
/// compliance page and the eligibility report both read it, so they
/// withhold the same totals.
pub fn refusal_matrix(
    counters: Vec<(String, String, String, i64)>,
    k: MinCell,
) -> view::CountMatrix {
    let parse = |day: &str| chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok();
    let span = counters
        .first()
        .and_then(|c| parse(&c.2))
        .zip(counters.last().and_then(|c| parse(&c.2)));
    let mut matrix =
        view::CountMatrix::from_cells(counters.into_iter().map(|(stage, reason, day, count)| {
            (
                day,
                refusal_column(&stage, &reason),
                u64::try_from(count).unwrap_or(0),
            )
        }));
    if let Some((first, last)) = span {
        for day in first.iter_days().take_while(|day| *day <= last) {
            let label = day.format("%Y-%m-%d").to_string();
            if !matrix.rows.iter().any(|row| row.label == label) {
                matrix.rows.push(view::CountRow {
                    label,
                    counts: Vec::new(),
                });
            }
        }
        matrix.rows.sort_by(|a, b| a.label.cmp(&b.label));
    }
    withhold(&mut matrix, k);
    matrix
}

/// The legal-basis map of `purpose`: subjects per basis (rows) and status
/// (columns), with what small-cell suppression withholds marked. The
/// consents page and the legal-basis map route both read it.
pub fn basis_matrix(
    counts: &[pilotgate_store::BasisCount],
    purpose: &str,
    k: MinCell,
) -> view::CountMatrix {
    let mut matrix =
        view::CountMatrix::from_cells(counts.iter().filter(|c| c.purpose == purpose).map(|c| {
            (
                c.basis.clone(),
                c.status.clone(),
                u64::try_from(c.subjects).unwrap_or(0),
            )
        }));
    withhold(&mut matrix, k);
    matrix
}

/// The released value of the cell of `matrix` in row `row` and column
/// `column` (`None`: withheld, or no such cell).
pub fn released_cell(matrix: &view::CountMatrix, row: &str, column: &str) -> Option<u64> {
    let r = matrix.rows.iter().position(|x| x.label == row)?;
    let c = matrix.columns.iter().position(|x| x == column)?;
    (!matrix.is_withheld(r, c)).then(|| matrix.rows[r].count(c))
}

/// The column of the refusal matrix for `stage` and `reason`.
pub fn refusal_column(stage: &str, reason: &str) -> String {
    format!("{stage}: {reason}")
}

/// A variant's counts as every view of the pilot may release them (`None`:
/// suppressed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VariantCells {
    pub assigned: Option<u64>,
    pub withdrawn: Option<u64>,
    /// Assigned and not withdrawn: the users the results analyse.
    pub analysed: Option<u64>,
}

/// What the views of one pilot may release.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PilotCells {
    pub variants: BTreeMap<String, VariantCells>,
    /// Subjects per variant, basis and notice version, as given.
    pub cohorts: Vec<(String, String, Option<i64>, Option<u64>)>,
    /// The withdrawn subjects over all variants.
    pub withdrawn_total: Option<u64>,
    /// The assigned subjects over all variants (the cohorts' total).
    pub assigned_total: Option<u64>,
    /// The analysed (assigned, not withdrawn) subjects over all variants.
    pub analysed_total: Option<u64>,
    /// Whether anything was suppressed.
    pub suppressed: bool,
}

impl PilotCells {
    /// The pilot's counts under `k`: `counts` are `(variant, assigned,
    /// withdrawn)` and `cohorts` `(variant, basis, notice version, subjects)`.
    pub fn new(
        counts: &[(String, u64, u64)],
        cohorts: &[(String, String, Option<i64>, i64)],
        k: MinCell,
    ) -> PilotCells {
        let mut figures = Figures::new();
        let mut variants = Vec::new();
        for (variant, assigned, withdrawn) in counts {
            let withdrawn_figure = figures.figure(*withdrawn);
            let analysed_figure = figures.kept_figure(assigned.saturating_sub(*withdrawn));
            let assigned_figure = figures.total(&[withdrawn_figure, analysed_figure]);
            variants.push((variant, assigned_figure, withdrawn_figure, analysed_figure));
        }
        let cohort_figures: Vec<usize> = cohorts
            .iter()
            .map(|(_, _, _, subjects)| figures.figure(u64::try_from(*subjects).unwrap_or(0)))
            .collect();
        for (variant, assigned_figure, ..) in &variants {
            let parts: Vec<(usize, i64)> = cohorts
                .iter()
                .zip(&cohort_figures)
                .filter(|((v, ..), _)| v == *variant)
                .map(|(_, figure)| (*figure, 1))
                .collect();
            if !parts.is_empty() {
                figures.relate(parts.into_iter().chain([(*assigned_figure, -1)]).collect());
            }
        }
        let withdrawn_figures: Vec<usize> = variants.iter().map(|v| v.2).collect();
        let withdrawn_total = figures.total(&withdrawn_figures);
        let assigned_figures: Vec<usize> = variants.iter().map(|v| v.1).collect();
        let assigned_total = figures.total(&assigned_figures);
        let analysed_figures: Vec<usize> = variants.iter().map(|v| v.3).collect();
        let analysed_total = figures.total(&analysed_figures);
        let suppressed = figures.suppress(k);
        let shown = |figure: usize| (!suppressed[figure]).then(|| figures.values()[figure]);
        PilotCells {
            variants: variants
                .iter()
                .map(|(variant, assigned, withdrawn, analysed)| {
                    (
                        (*variant).clone(),
                        VariantCells {
                            assigned: shown(*assigned),
                            withdrawn: shown(*withdrawn),
                            analysed: shown(*analysed),
                        },
                    )
                })
                .collect(),
            cohorts: cohorts
                .iter()
                .zip(&cohort_figures)
                .map(|((variant, basis, notice, _), figure)| {
                    (variant.clone(), basis.clone(), *notice, shown(*figure))
                })
                .collect(),
            withdrawn_total: shown(withdrawn_total),
            assigned_total: shown(assigned_total),
            analysed_total: shown(analysed_total),
            suppressed: suppressed.iter().any(|s| *s),
        }
    }

    /// The cells of `variant` (all suppressed when the pilot has none of it).
    pub fn variant(&self, variant: &str) -> VariantCells {
        self.variants.get(variant).cloned().unwrap_or_default()
    }
}

/// Counts that add up to a total (e.g. an export's rows per legal basis),
/// released under `k`; `total_withheld` when the total is withheld
/// elsewhere. Returns the parts and the total, `None` where withheld.
pub fn release_parts(
    parts: &[u64],
    total_withheld: bool,
    k: MinCell,
) -> (Vec<Option<u64>>, Option<u64>) {
    let mut figures = Figures::new();
    let indices: Vec<usize> = parts.iter().map(|p| figures.figure(*p)).collect();
    let total = figures.total(&indices);
    let withheld: &[usize] = if total_withheld { &[total] } else { &[] };
    let suppressed = figures.suppress_with(k, withheld);
    let shown = |figure: usize| (!suppressed[figure]).then(|| figures.values()[figure]);
    (indices.into_iter().map(shown).collect(), shown(total))
}

/// A count table (rows by columns) as released under `k`: `None` where a
/// cell, row total or column total is suppressed, with the grand total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleasedGrid {
    pub cells: Vec<Vec<Option<u64>>>,
    pub row_totals: Vec<Option<u64>>,
    pub column_totals: Vec<Option<u64>>,
    pub grand_total: Option<u64>,
}

/// `rows` with its totals, suppressed under `k` (primary and complementary).
pub fn release_grid(rows: &[Vec<u64>], k: MinCell) -> ReleasedGrid {
    let grid = pilotgate_analysis::disclosure::Grid::new(rows);
    let suppressed = grid.figures.suppress(k);
    let shown = |figure: &usize| (!suppressed[*figure]).then(|| grid.figures.values()[*figure]);
    ReleasedGrid {
        cells: grid
            .cells
            .iter()
            .map(|row| row.iter().map(shown).collect())
            .collect(),
        row_totals: grid.row_totals.iter().map(shown).collect(),
        column_totals: grid.column_totals.iter().map(shown).collect(),
        grand_total: shown(&grid.grand_total),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_withdrawals_hide_the_analysed_users_or_the_assigned_of_their_variant() {
        let counts = vec![
            ("control".to_owned(), 120, 3),
            ("treatment".to_owned(), 118, 12),
        ];
        let cohorts = vec![
            ("control".to_owned(), "consent".to_owned(), Some(1), 120),
            ("treatment".to_owned(), "consent".to_owned(), Some(1), 118),
        ];
        let cells = PilotCells::new(&counts, &cohorts, MinCell::DEFAULT);
        let control = cells.variant("control");
        assert_eq!(control.withdrawn, None);
        assert_eq!(control.analysed, Some(117), "the results keep their users");
        assert_eq!(control.assigned, None, "120 - 117 would give the 3");
        assert_eq!(cells.cohorts[0].3, None, "the only cohort is the assigned");
        assert_eq!(cells.withdrawn_total, None, "15 - 12 would give the 3");
    }
}
