//! Small-cell suppression across the views of one pilot. The results, the
//! eligibility report and the compliance page each release counts of the
//! same people (a variant's assigned subjects are its cohorts by basis and
//! notice, and also its analysed plus its withdrawn subjects), so the counts
//! are suppressed together, once, with every relation a reader of all of
//! them knows; each view then withholds what this says.

use std::collections::BTreeMap;

use pilotgate_analysis::attrition::AttritionCounts;
use pilotgate_analysis::disclosure::{Figures, Keep, MinCell};
use pilotgate_dashboards as view;
use pilotgate_store::{Store, StoreError};

/// The cells of pilot `key` under `k`, from its raw assignments or, once
/// purged, from the aggregates kept.
pub async fn pilot_cells(store: &Store, key: &str, k: MinCell) -> Result<PilotCells, StoreError> {
    let kept = super::purge::kept_aggregates(store, key).await?;
    let (counts, cohorts) = match &kept {
        Some((_, kept)) => (kept.counts.clone(), kept.eligibility.clone()),
        None => (
            store.assignment_counts(key).await?,
            store.eligibility_breakdown(key).await?,
        ),
    };
    let variants: Vec<String> = counts.iter().map(|(v, ..)| v.clone()).collect();
    let losses = super::attrition::losses(
        store,
        key,
        &variants,
        kept.as_ref().map(|(_, kept)| kept.counts.as_slice()),
        kept.as_ref()
            .map_or(&[], |(_, kept)| kept.attrition.as_slice()),
    )
    .await?;
    Ok(PilotCells::new(&counts, &cohorts, &losses.by_variant, k))
}

/// A standalone count of people (no total or other figure relates to it):
/// released when it is 0 or at least `k`.
pub fn standalone(count: u64, k: MinCell) -> Option<u64> {
    k.allows(count).then_some(count)
}

/// Marks in `matrix` what small-cell suppression withholds: its cells, row
/// totals, column totals and grand total, as the table shows them all;
/// `keep` says which it gives up last.
pub fn withhold(matrix: &mut view::CountMatrix, k: MinCell, keep: Keep) {
    let rows: Vec<Vec<u64>> = matrix
        .rows
        .iter()
        .map(|row| (0..matrix.columns.len()).map(|c| row.count(c)).collect())
        .collect();
    let released = release_grid(&rows, k, keep);
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
    withhold(&mut matrix, k, Keep::ColumnTotals);
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
    withhold(&mut matrix, k, Keep::Cells);
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
    /// Assigned and not erased (the eligibility cohorts add up to it).
    pub assigned: Option<u64>,
    /// Left the analysis by a withdrawal or an objection.
    pub withdrawn: Option<u64>,
    /// Assigned and not withdrawn: the users the results analyse.
    pub analysed: Option<u64>,
    /// Of `withdrawn`, those who withdrew or denied consent.
    pub consent_withdrawn: Option<u64>,
    /// Of `withdrawn`, those who objected (Art. 21).
    pub objected: Option<u64>,
    /// Erased (Art. 17): no longer in `assigned`.
    pub erased: Option<u64>,
    /// Ever assigned: `assigned` plus `erased` (the attrition's assigned).
    pub ever_assigned: Option<u64>,
}

impl VariantCells {
    /// Whether every count of the variant is released.
    pub fn whole(&self) -> bool {
        [
            self.assigned,
            self.withdrawn,
            self.analysed,
            self.consent_withdrawn,
            self.objected,
            self.erased,
            self.ever_assigned,
        ]
        .iter()
        .all(Option::is_some)
    }
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

/// The figures of one variant in [`PilotCells::new`].
struct VariantFigures {
    assigned: usize,
    withdrawn: usize,
    analysed: usize,
    consent_withdrawn: usize,
    objected: usize,
    erased: usize,
    ever_assigned: usize,
}

impl PilotCells {
    /// The pilot's counts under `k`: `counts` are `(variant, assigned,
    /// withdrawn)`, `cohorts` `(variant, basis, notice version, subjects)`
    /// and `losses` the attrition per variant (withdrawn, objected, erased).
    /// A variant's figures are related as a reader of every view knows:
    /// withdrawn = consent withdrawn + objected, assigned = withdrawn +
    /// analysed = its cohorts, ever assigned = assigned + erased, lost =
    /// withdrawn + erased; and the totals over the variants the views show
    /// (withdrawn, assigned, analysed).
    pub fn new(
        counts: &[(String, u64, u64)],
        cohorts: &[(String, String, Option<i64>, i64)],
        losses: &BTreeMap<String, AttritionCounts>,
        k: MinCell,
    ) -> PilotCells {
        let mut names: Vec<&String> = counts.iter().map(|(v, ..)| v).collect();
        names.extend(
            losses
                .keys()
                .filter(|v| !counts.iter().any(|(c, ..)| c == *v)),
        );
        let mut figures = Figures::new();
        let mut variants: Vec<(&String, VariantFigures)> = Vec::new();
        for variant in names {
            let (assigned, left) = counts
                .iter()
                .find(|(v, ..)| v == variant)
                .map_or((0, 0), |(_, assigned, withdrawn)| (*assigned, *withdrawn));
            let lost = losses.get(variant).cloned().unwrap_or_default();
            // The attrition tells withdrawals from objections; the counts
            // only their sum (and a purged pilot's kept counts not even that).
            let objected = lost.objected.min(left);
            let consent_withdrawn = figures.figure(left - objected);
            let objected = figures.figure(objected);
            let withdrawn = figures.total(&[consent_withdrawn, objected]);
            let analysed = figures.kept_figure(assigned.saturating_sub(left));
            let assigned = figures.total(&[withdrawn, analysed]);
            let erased = figures.figure(lost.erased);
            let ever_assigned = figures.total(&[assigned, erased]);
            // Every subject the variant lost (ever assigned minus analysed)
            // is a group of people too.
            figures.total(&[withdrawn, erased]);
            variants.push((
                variant,
                VariantFigures {
                    assigned,
                    withdrawn,
                    analysed,
                    consent_withdrawn,
                    objected,
                    erased,
                    ever_assigned,
                },
            ));
        }
        let cohort_figures: Vec<usize> = cohorts
            .iter()
            .map(|(_, _, _, subjects)| figures.figure(u64::try_from(*subjects).unwrap_or(0)))
            .collect();
        for (variant, f) in &variants {
            let parts: Vec<(usize, i64)> = cohorts
                .iter()
                .zip(&cohort_figures)
                .filter(|((v, ..), _)| v == *variant)
                .map(|(_, figure)| (*figure, 1))
                .collect();
            if !parts.is_empty() {
                figures.relate(parts.into_iter().chain([(f.assigned, -1)]).collect());
            }
        }
        let total_of = |figures: &mut Figures, pick: fn(&VariantFigures) -> usize| {
            let parts: Vec<usize> = variants.iter().map(|(_, f)| pick(f)).collect();
            figures.total(&parts)
        };
        // The totals the views show (a total of released parts is known
        // anyway; one no view shows must not count as known).
        let withdrawn_total = total_of(&mut figures, |f| f.withdrawn);
        let assigned_total = total_of(&mut figures, |f| f.assigned);
        let analysed_total = total_of(&mut figures, |f| f.analysed);
        let suppressed = figures.suppress(k);
        let shown = |figure: usize| (!suppressed[figure]).then(|| figures.values()[figure]);
        PilotCells {
            variants: variants
                .iter()
                .map(|(variant, f)| {
                    (
                        (*variant).clone(),
                        VariantCells {
                            assigned: shown(f.assigned),
                            withdrawn: shown(f.withdrawn),
                            analysed: shown(f.analysed),
                            consent_withdrawn: shown(f.consent_withdrawn),
                            objected: shown(f.objected),
                            erased: shown(f.erased),
                            ever_assigned: shown(f.ever_assigned),
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
pub fn release_grid(rows: &[Vec<u64>], k: MinCell, keep: Keep) -> ReleasedGrid {
    let grid = pilotgate_analysis::disclosure::Grid::keeping(rows, keep);
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
        let cells = PilotCells::new(&counts, &cohorts, &BTreeMap::new(), MinCell::DEFAULT);
        let control = cells.variant("control");
        assert_eq!(control.withdrawn, None);
        assert_eq!(control.analysed, Some(117), "the results keep their users");
        assert_eq!(control.assigned, None, "120 - 117 would give the 3");
        assert_eq!(cells.cohorts[0].3, None, "the only cohort is the assigned");
        assert!(
            cells.withdrawn_total.is_none() || cells.variant("treatment").withdrawn.is_none(),
            "15 - 12 would give the 3"
        );
    }

    #[test]
    fn one_erasure_hides_the_assigned_before_or_after_it() {
        let counts = vec![("control".to_owned(), 50, 0), ("v1".to_owned(), 49, 12)];
        let losses = BTreeMap::from([
            ("control".to_owned(), AttritionCounts::default()),
            (
                "v1".to_owned(),
                AttritionCounts {
                    assigned: 50,
                    withdrawn: 10,
                    objected: 2,
                    erased: 1,
                },
            ),
        ]);
        let cells = PilotCells::new(&counts, &[], &losses, MinCell::DEFAULT);
        let v1 = cells.variant("v1");
        assert_eq!(v1.erased, None, "1 erased");
        assert!(
            v1.assigned.is_none() || v1.ever_assigned.is_none(),
            "50 - 49 would give the erasure: {v1:?}"
        );
        assert_eq!(v1.objected, None, "2 objected");
        assert!(
            v1.consent_withdrawn.is_none() || v1.withdrawn.is_none(),
            "12 - 10 would give the objections: {v1:?}"
        );
        assert_eq!(cells.variant("control").analysed, Some(50));
    }
}
