//! Small-cell suppression: which figures describing groups of people may be
//! released. A figure counting fewer than `k` people (but some) is
//! suppressed, and so is any other figure that would let an onlooker
//! recompute a suppressed one from the linear relations they know (a row
//! and its total, two consecutive days of a cumulative series).
//!
//! Pure: no IO. It lives here rather than in the domain crate because the
//! figures it guards are results and tables built from them, and the
//! analysis crate is where every released number is computed; the server
//! applies it to every page, route and download.

use crate::pipeline::Outcome;
use crate::report::{ComparisonReport, Report, VariantReport};

/// The minimum cell size `k`: the fewest people a released figure may describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinCell(u64);

impl MinCell {
    /// The default, 10 people.
    pub const DEFAULT: MinCell = MinCell(10);

    /// `k`, which must be at least 1 (1 releases everything).
    pub fn new(k: u64) -> Option<MinCell> {
        (k >= 1).then_some(MinCell(k))
    }

    /// The number `k`.
    pub fn get(self) -> u64 {
        self.0
    }

    /// Whether a group of `count` people may be described: nobody, or at
    /// least `k`.
    pub fn allows(self, count: u64) -> bool {
        count == 0 || count >= self.0
    }

    /// Whether every count of `counts` may be described.
    pub fn allows_all(self, counts: &[u64]) -> bool {
        counts.iter().all(|c| self.allows(*c))
    }
}

impl Default for MinCell {
    fn default() -> Self {
        MinCell::DEFAULT
    }
}

/// One known linear relation: `Σ coefficient × figure = 0`.
type Relation = Vec<(usize, i64)>;

/// Figures about people, and the linear relations among them that anyone
/// reading them knows (each relation says `Σ coefficient × figure = 0`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    values: Vec<u64>,
    relations: Vec<Vec<(usize, i64)>>,
    /// Figures suppressed beside others only when no other will do.
    kept: Vec<bool>,
    /// Figures released elsewhere already: never suppressed here.
    public: Vec<bool>,
}

impl Figures {
    /// No figures yet.
    pub fn new() -> Figures {
        Figures::default()
    }

    /// Adds a figure counting `value` people; returns its index.
    pub fn figure(&mut self, value: u64) -> usize {
        self.values.push(value);
        self.kept.push(false);
        self.public.push(false);
        self.values.len() - 1
    }

    /// Adds a figure that complementary suppression takes only when no
    /// other figure will do (the one readers need most); returns its index.
    pub fn kept_figure(&mut self, value: u64) -> usize {
        let figure = self.figure(value);
        self.kept[figure] = true;
        figure
    }

    /// Marks `figure` as released elsewhere: it is never suppressed, and
    /// the figures related to it are suppressed around it.
    pub fn publish(&mut self, figure: usize) {
        self.public[figure] = true;
    }

    /// Adds a figure that is the sum of `parts` (a total), and the relation
    /// that says so; returns its index.
    pub fn total(&mut self, parts: &[usize]) -> usize {
        let value = parts.iter().map(|p| self.values[*p]).sum();
        let total = self.figure(value);
        self.relate(parts.iter().map(|p| (*p, 1)).chain([(total, -1)]).collect());
        total
    }

    /// Records that `Σ coefficient × figure = 0` is known.
    pub fn relate(&mut self, terms: Vec<(usize, i64)>) {
        self.relations.push(terms);
    }

    /// The figures' values, in the order they were added.
    pub fn values(&self) -> &[u64] {
        &self.values
    }

    /// The relations, as added.
    pub fn relations(&self) -> &[Vec<(usize, i64)>] {
        &self.relations
    }

    /// Which figures to suppress (true) under `k`: every figure of fewer
    /// than `k` people but some (primary), then, while any suppressed figure
    /// can be solved from the released ones and the relations, the smallest
    /// released figure of a relation it is in (complementary; non-zero
    /// figures first, kept figures last). Ends when no figure suppressed
    /// for being too small (or withheld elsewhere) is determined; one
    /// suppressed only beside those may be.
    pub fn suppress(&self, k: MinCell) -> Vec<bool> {
        self.suppress_with(k, &[])
    }

    /// [`Figures::suppress`], with the figures of `withheld` suppressed from
    /// the start (withheld elsewhere, by relations these figures do not hold).
    pub fn suppress_with(&self, k: MinCell, withheld: &[usize]) -> Vec<bool> {
        let mut suppressed: Vec<bool> = self.values.iter().map(|v| !k.allows(*v)).collect();
        for figure in withheld {
            suppressed[*figure] = true;
        }
        // The figures to protect: those too small, and those withheld
        // elsewhere. A figure suppressed here only beside them may be
        // recomputed (it describes no one or at least k people).
        let sensitive = suppressed.clone();
        loop {
            let mut exposed = self.determined(&suppressed);
            exposed.retain(|figure| sensitive[*figure]);
            if exposed.is_empty() {
                break;
            }
            let mut changed = false;
            for figure in exposed {
                if let Some(partner) = self.partner(figure, &suppressed) {
                    suppressed[partner] = true;
                    changed = true;
                }
            }
            if !changed {
                // Only relations among suppressed figures are left, and
                // those say nothing about any one of them alone.
                break;
            }
        }
        self.release_back(suppressed, &sensitive)
    }

    /// Releases again each figure the greedy pass suppressed beside others
    /// that no sensitive figure needs (kept figures first, then the larger
    /// ones): the greedy pass suppresses more than it must.
    fn release_back(&self, mut suppressed: Vec<bool>, sensitive: &[bool]) -> Vec<bool> {
        let exposes = |suppressed: &[bool]| {
            self.determined(suppressed)
                .iter()
                .any(|figure| sensitive[*figure])
        };
        let mut complementary: Vec<usize> = (0..self.values.len())
            .filter(|i| suppressed[*i] && !sensitive[*i])
            .collect();
        complementary.sort_by_key(|i| (!self.kept[*i], std::cmp::Reverse(self.values[*i]), *i));
        for figure in complementary {
            suppressed[figure] = false;
            if exposes(&suppressed) {
                suppressed[figure] = true;
            }
        }
        suppressed
    }

    /// The released figure to suppress beside `figure`: the smallest one in
    /// a relation with it, else in any relation holding a suppressed figure;
    /// a kept figure only when no other will do in either.
    fn partner(&self, figure: usize, suppressed: &[bool]) -> Option<usize> {
        let candidates = |holds: &dyn Fn(&Relation) -> bool, kept: bool| {
            self.relations
                .iter()
                .filter(|r| holds(r))
                .flat_map(|r| r.iter().map(|(i, _)| *i))
                .filter(|i| !suppressed[*i] && !self.public[*i] && self.kept[*i] == kept)
                .min_by_key(|i| (self.values[*i] == 0, self.values[*i], *i))
        };
        let direct = |r: &Relation| r.iter().any(|(i, _)| *i == figure);
        let wider = |r: &Relation| r.iter().any(|(i, _)| suppressed[*i]);
        candidates(&direct, false)
            .or_else(|| candidates(&wider, false))
            .or_else(|| candidates(&direct, true))
            .or_else(|| candidates(&wider, true))
    }

    /// The suppressed figures an onlooker can solve exactly from the
    /// released figures and the relations.
    pub fn determined(&self, suppressed: &[bool]) -> Vec<usize> {
        let unknowns: Vec<usize> = (0..self.values.len()).filter(|i| suppressed[*i]).collect();
        if unknowns.is_empty() {
            return Vec::new();
        }
        let column = |figure: usize| unknowns.binary_search(&figure).ok();
        let rows: Vec<Vec<f64>> = self
            .relations
            .iter()
            .map(|relation| {
                let mut row = vec![0.0; unknowns.len()];
                for (figure, coefficient) in relation {
                    if let Some(c) = column(*figure) {
                        row[c] += *coefficient as f64;
                    }
                }
                row
            })
            .collect();
        let basis = reduced_row_echelon(rows);
        unknowns
            .iter()
            .enumerate()
            .filter(|(c, _)| in_row_space(&basis, *c))
            .map(|(_, figure)| *figure)
            .collect()
    }
}

const EPSILON: f64 = 1e-9;

/// The non-zero rows of the reduced row echelon form of `rows`, each with
/// its pivot column.
fn reduced_row_echelon(mut rows: Vec<Vec<f64>>) -> Vec<(usize, Vec<f64>)> {
    let width = rows.first().map_or(0, Vec::len);
    let mut pivots = Vec::new();
    let mut top = 0;
    for column in 0..width {
        let Some(best) = (top..rows.len())
            .max_by(|a, b| rows[*a][column].abs().total_cmp(&rows[*b][column].abs()))
        else {
            break;
        };
        if rows[best][column].abs() < EPSILON {
            continue;
        }
        rows.swap(top, best);
        let pivot = rows[top][column];
        for value in rows[top].iter_mut() {
            *value /= pivot;
        }
        for other in 0..rows.len() {
            if other != top && rows[other][column].abs() >= EPSILON {
                let factor = rows[other][column];
                let source = rows[top].clone();
                for (value, s) in rows[other].iter_mut().zip(source) {
                    *value -= factor * s;
                }
            }
        }
        pivots.push(column);
        top += 1;
    }
    pivots.into_iter().zip(rows).collect()
}

/// Whether the unit vector of `column` is a combination of the reduced rows.
fn in_row_space(basis: &[(usize, Vec<f64>)], column: usize) -> bool {
    let width = basis.first().map_or(0, |(_, row)| row.len());
    let mut rest = vec![0.0_f64; width];
    rest[column] = 1.0;
    for (pivot, row) in basis {
        let factor = rest[*pivot];
        if factor.abs() >= EPSILON {
            for (value, r) in rest.iter_mut().zip(row) {
                *value -= factor * r;
            }
        }
    }
    rest.iter().all(|v| v.abs() < EPSILON)
}

/// A table of counts as figures: its cells, each row's total, each
/// column's total and the grand total, related as a reader knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    pub figures: Figures,
    /// `cells[row][column]`: the index of the cell's figure.
    pub cells: Vec<Vec<usize>>,
    pub row_totals: Vec<usize>,
    pub column_totals: Vec<usize>,
    pub grand_total: usize,
}

/// Which figures of a [`Grid`] complementary suppression gives up last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The cells (a table read cell by cell, e.g. subjects per basis and status).
    Cells,
    /// The column totals (a table read by its columns' totals, e.g.
    /// refusals per reason over the days), then the larger figures.
    ColumnTotals,
}

impl Grid {
    /// The grid of `rows` (rows shorter than the longest read as zeros),
    /// giving up its cells before its column totals.
    pub fn new(rows: &[Vec<u64>]) -> Grid {
        Grid::keeping(rows, Keep::ColumnTotals)
    }

    /// The grid of `rows`, giving up last what `keep` says.
    pub fn keeping(rows: &[Vec<u64>], keep: Keep) -> Grid {
        let width = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut figures = Figures::new();
        let cells: Vec<Vec<usize>> = rows
            .iter()
            .map(|row| {
                (0..width)
                    .map(|c| {
                        let value = row.get(c).copied().unwrap_or(0);
                        match keep {
                            Keep::Cells => figures.kept_figure(value),
                            Keep::ColumnTotals => figures.figure(value),
                        }
                    })
                    .collect()
            })
            .collect();
        let row_totals: Vec<usize> = cells.iter().map(|row| figures.total(row)).collect();
        let column_totals: Vec<usize> = (0..width)
            .map(|c| {
                let column: Vec<usize> = cells.iter().map(|row| row[c]).collect();
                let total = figures.total(&column);
                if keep == Keep::ColumnTotals {
                    figures.kept[total] = true;
                }
                total
            })
            .collect();
        let grand_total = figures.total(&row_totals);
        figures.relate(
            column_totals
                .iter()
                .map(|c| (*c, 1))
                .chain([(grand_total, -1)])
                .collect(),
        );
        Grid {
            figures,
            cells,
            row_totals,
            column_totals,
            grand_total,
        }
    }
}

/// A coordinate's count in the figure that follows a cumulative series
/// (the whole analysis, which equals its last point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Released: the difference to it must describe nobody or `k` people.
    Released(u64),
    /// Withheld: no point may come within `k` people of it, or it would be
    /// told (or nearly) by that point.
    Withheld(u64),
}

/// Which points of a cumulative series may be released under `k`.
/// `points[i][c]` is the number of people of coordinate `c` (a variant's
/// users, or its converted and unconverted users) counted at point `i`,
/// never fewer than at the point before; `after[c]` is that coordinate's
/// count in the figure that follows the series. Walking back from the end,
/// a point is released when each of its counts, and each difference to the
/// next released count of the same coordinate, is 0 or at least `k`: the
/// difference of two released points then never describes fewer than `k`
/// people, and no point tells a withheld figure after it.
pub fn release_cumulative(points: &[Vec<u64>], after: &[After], k: MinCell) -> Vec<bool> {
    let mut next: Vec<After> = after.to_vec();
    let mut released = vec![false; points.len()];
    for (index, point) in points.iter().enumerate().rev() {
        let safe = point.iter().enumerate().all(|(c, count)| {
            k.allows(*count)
                && match next.get(c) {
                    None => true,
                    Some(After::Released(after)) => k.allows(after.saturating_sub(*count)),
                    Some(After::Withheld(after)) => {
                        *count == 0 || after.saturating_sub(*count) >= k.get()
                    }
                }
        });
        if safe {
            released[index] = true;
            next = point.iter().map(|c| After::Released(*c)).collect();
        }
    }
    released
}

/// Which points of a series of levels (people in some state at each time,
/// who may enter and leave it) may be released under `k`. Walking back from
/// the end, a point is released when its level is 0 or at least `k` and so
/// is its difference, either way, to the next released point: two released
/// points then never tell a change of fewer than `k` people.
pub fn release_levels(levels: &[u64], k: MinCell) -> Vec<bool> {
    let mut next: Option<u64> = None;
    let mut released = vec![false; levels.len()];
    for (index, level) in levels.iter().enumerate().rev() {
        let safe = k.allows(*level) && next.is_none_or(|n| k.allows(n.abs_diff(*level)));
        if safe {
            released[index] = true;
            next = Some(*level);
        }
    }
    released
}

/// The counts of people behind one variant of `report`, from its full
/// figures: its users, and for a binary metric also its converted and its
/// unconverted users (a rate over a group tells both).
pub fn variant_counts(report: &Report) -> Vec<Vec<u64>> {
    report
        .variants
        .iter()
        .map(|v| {
            let users = v.users.unwrap_or(0);
            match report.kind {
                Outcome::Binary => {
                    let converted = v.sum.unwrap_or(0.0).round().max(0.0) as u64;
                    vec![users, converted, users.saturating_sub(converted)]
                }
                Outcome::Sum => vec![users],
            }
        })
        .collect()
}

/// Withholds what `report` may not release under `k`. A variant's users go
/// when they are too few or `users_released` (one flag per variant, from
/// relations the caller knows of elsewhere) says so; its outcome figures
/// (sum, mean, variance, CUPED coefficient) go with them, or when its
/// converted or unconverted users are too few. A comparison goes when the
/// outcome figures of its variant or of the control went, and the sample
/// ratio check goes when any variant's users went: both are statistics over
/// the groups and are released only when every group is.
pub fn release_report(report: &mut Report, users_released: &[bool], k: MinCell) {
    let counts = variant_counts(report);
    let mut users_ok = Vec::with_capacity(counts.len());
    let mut outcome_ok = Vec::with_capacity(counts.len());
    for (index, counts) in counts.iter().enumerate() {
        let users = k.allows(counts[0]) && users_released.get(index).copied().unwrap_or(true);
        users_ok.push(users);
        outcome_ok.push(users && k.allows_all(counts));
    }
    withhold_in_report(report, &users_ok, &outcome_ok);
}

/// Withholds in `report` each variant's users where `users_ok` (one flag
/// per variant) says no, and its outcome figures where `outcome_ok` says
/// no (or its users went); then every comparison whose variant's or
/// control's outcome went, and the sample ratio check when any users went.
pub fn withhold_in_report(report: &mut Report, users_ok: &[bool], outcome_ok: &[bool]) {
    let mut outcome_released = Vec::with_capacity(report.variants.len());
    for (index, variant) in report.variants.iter_mut().enumerate() {
        let users = users_ok.get(index).copied().unwrap_or(true);
        let outcome = users && outcome_ok.get(index).copied().unwrap_or(true);
        if !users {
            variant.users = None;
        }
        if !outcome {
            withhold_outcome(variant);
        }
        outcome_released.push((variant.variant.clone(), outcome));
    }
    let released = |name: &str| {
        outcome_released
            .iter()
            .any(|(variant, ok)| variant == name && *ok)
    };
    let control_released = released(&report.control);
    for comparison in &mut report.comparisons {
        if !(control_released && released(&comparison.variant)) {
            withhold_comparison(comparison);
        }
    }
    if report.variants.iter().any(|v| v.users.is_none()) {
        report.srm = None;
    }
    report.suppressed = report.variants.iter().any(|v| v.suppressed)
        || report.comparisons.iter().any(|c| c.suppressed);
}

/// Withholds every figure of `report` (a day of a series that would reveal
/// a small group).
pub fn withhold_report(report: &mut Report) {
    for variant in &mut report.variants {
        variant.users = None;
        withhold_outcome(variant);
    }
    report.comparisons.iter_mut().for_each(withhold_comparison);
    report.srm = None;
    report.suppressed = true;
}

fn withhold_outcome(variant: &mut VariantReport) {
    variant.sum = None;
    variant.sum_squares = None;
    variant.mean = None;
    variant.variance = None;
    variant.theta = None;
    variant.suppressed = true;
}

fn withhold_comparison(comparison: &mut ComparisonReport) {
    comparison.relative = None;
    comparison.absolute = None;
    comparison.notes.clear();
    comparison.suppressed = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(value: u64) -> MinCell {
        MinCell::new(value).expect("a positive k")
    }

    #[test]
    fn a_row_with_one_small_cell_hides_a_second_cell_or_its_totals() {
        for keep in [Keep::Cells, Keep::ColumnTotals] {
            let grid = Grid::keeping(&[vec![3, 40, 25]], keep);
            let suppressed = grid.figures.suppress(k(10));
            let cells: Vec<bool> = grid.cells[0].iter().map(|i| suppressed[*i]).collect();
            assert!(cells[0], "{keep:?}: the 3 is withheld");
            let second = cells[1] || cells[2];
            let totals = suppressed[grid.row_totals[0]] && suppressed[grid.grand_total];
            assert!(second || totals, "{keep:?}: {cells:?}");
            if keep == Keep::Cells {
                assert!(totals && !second, "the cells are kept: {cells:?}");
            }
            let exposed = grid.figures.determined(&suppressed);
            assert!(
                !exposed.contains(&grid.cells[0][0]),
                "{keep:?}: {exposed:?}"
            );
        }
    }

    #[test]
    fn a_total_released_elsewhere_is_never_the_one_withheld() {
        // 11 + 3 = 14, and the 14 is shown by another view: the 11 goes.
        let mut figures = Figures::new();
        let (a, b) = (figures.figure(11), figures.figure(3));
        let total = figures.total(&[a, b]);
        figures.publish(total);
        let suppressed = figures.suppress(k(10));
        assert_eq!(
            (suppressed[a], suppressed[b], suppressed[total]),
            (true, true, false)
        );
    }

    #[test]
    fn a_table_without_small_cells_is_released_whole() {
        let grid = Grid::new(&[vec![12, 40], vec![0, 25]]);
        assert!(grid.figures.suppress(k(10)).iter().all(|s| !s));
    }

    #[test]
    fn one_new_user_between_two_days_hides_the_earlier_day() {
        let released = release_cumulative(&[vec![20], vec![21]], &[After::Released(21)], k(10));
        assert_eq!(released, [false, true]);
    }

    #[test]
    fn days_far_enough_apart_are_all_released() {
        let released = release_cumulative(
            &[vec![10], vec![20], vec![30]],
            &[After::Released(30)],
            k(10),
        );
        assert_eq!(released, [true, true, true]);
    }

    #[test]
    fn no_day_tells_a_withheld_whole() {
        let released = release_cumulative(
            &[vec![10], vec![25], vec![30]],
            &[After::Withheld(30)],
            k(10),
        );
        assert_eq!(released, [true, false, false]);
    }

    #[test]
    fn a_level_that_moves_by_fewer_than_k_hides_the_day_before() {
        let released = release_levels(&[30, 31, 12, 12, 25], k(10));
        assert_eq!(released, [false, true, true, true, true]);
        assert_eq!(release_levels(&[3, 0], k(10)), [false, true]);
    }

    #[test]
    fn k_of_one_releases_everything_and_zero_is_refused() {
        assert!(k(1).allows_all(&[0, 1, 2]));
        assert!(MinCell::new(0).is_none());
        assert!(!MinCell::DEFAULT.allows(9) && MinCell::DEFAULT.allows(10));
    }
}
