//! Property tests of small-cell suppression: for random tables and random
//! cumulative series, no released figure describes fewer than `k` people,
//! and no figure under `k` that is suppressed (nor any small group of a
//! series) can be solved
//! exactly by linear differencing over rows, columns, totals and days. The
//! check is an exact rational Gaussian elimination written here, apart from
//! the floating-point one the suppression itself uses.
//! `PROPTEST_CASES=5000 cargo test -p pilotgate-analysis --test disclosure`
//! runs a longer campaign.

use pilotgate_analysis::disclosure::{After, Figures, Grid, MinCell, release_cumulative};
use proptest::prelude::*;

/// A rational number `numerator / denominator`, the denominator positive and the
/// fraction reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ratio(i128, i128);

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 {
        a.abs().max(1)
    } else {
        gcd(b, a % b)
    }
}

impl Ratio {
    const ZERO: Ratio = Ratio(0, 1);

    fn of(n: i128) -> Ratio {
        Ratio(n, 1)
    }

    fn reduced(n: i128, d: i128) -> Ratio {
        let g = gcd(n, d) * d.signum();
        Ratio(n / g, d / g)
    }

    fn add(self, o: Ratio) -> Ratio {
        Ratio::reduced(self.0 * o.1 + o.0 * self.1, self.1 * o.1)
    }

    fn sub(self, o: Ratio) -> Ratio {
        Ratio::reduced(self.0 * o.1 - o.0 * self.1, self.1 * o.1)
    }

    fn mul(self, o: Ratio) -> Ratio {
        Ratio::reduced(self.0 * o.0, self.1 * o.1)
    }

    fn div(self, o: Ratio) -> Ratio {
        Ratio::reduced(self.0 * o.1, self.1 * o.0)
    }
}

/// The rank of `rows`, exactly.
fn rank(mut rows: Vec<Vec<Ratio>>) -> usize {
    let width = rows.first().map_or(0, Vec::len);
    let mut top = 0;
    for column in 0..width {
        let Some(pivot) = (top..rows.len()).find(|r| rows[*r][column] != Ratio::ZERO) else {
            continue;
        };
        rows.swap(top, pivot);
        for other in top + 1..rows.len() {
            if rows[other][column] != Ratio::ZERO {
                let factor = rows[other][column].div(rows[top][column]);
                let source = rows[top].clone();
                for (value, s) in rows[other].iter_mut().zip(source) {
                    *value = value.sub(factor.mul(s));
                }
            }
        }
        top += 1;
    }
    top
}

/// Whether `target` (over the unknowns) is a combination of `equations`:
/// then its value follows exactly from what was released.
fn solvable(equations: &[Vec<Ratio>], target: Vec<Ratio>) -> bool {
    let before = rank(equations.to_vec());
    let mut with = equations.to_vec();
    with.push(target);
    rank(with) == before
}

/// The relations of `figures` as equations over the suppressed figures
/// (released ones are known numbers, so they leave the unknowns' side).
fn equations(figures: &Figures, suppressed: &[bool]) -> (Vec<usize>, Vec<Vec<Ratio>>) {
    let unknowns: Vec<usize> = (0..suppressed.len()).filter(|i| suppressed[*i]).collect();
    let rows = figures
        .relations()
        .iter()
        .map(|relation| {
            let mut row = vec![Ratio::ZERO; unknowns.len()];
            for (figure, coefficient) in relation {
                if let Some(c) = unknowns.iter().position(|u| u == figure) {
                    row[c] = row[c].add(Ratio::of(i128::from(*coefficient)));
                }
            }
            row
        })
        .collect();
    (unknowns, rows)
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256)
}

/// Counts with many small ones, some zeros and a few large.
fn count() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 0u64..12, 2 => 0u64..40, 1 => 0u64..500]
}

fn table() -> impl Strategy<Value = Vec<Vec<u64>>> {
    (1usize..6, 1usize..6).prop_flat_map(|(rows, columns)| {
        prop::collection::vec(prop::collection::vec(count(), columns), rows)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_suppressed_cell_of_a_table_can_be_solved_from_what_is_released(
        rows in table(),
        k in 2u64..12,
    ) {
        let k = MinCell::new(k).expect("k is positive");
        let grid = Grid::new(&rows);
        let suppressed = grid.figures.suppress(k);
        for (figure, value) in grid.figures.values().iter().enumerate() {
            prop_assert!(suppressed[figure] || k.allows(*value), "figure {figure} = {value} is released under k");
        }
        let (unknowns, equations) = equations(&grid.figures, &suppressed);
        for (column, figure) in unknowns.iter().enumerate() {
            // A figure suppressed only beside a small one may be solved:
            // it describes no one or at least k people.
            if k.allows(grid.figures.values()[*figure]) {
                continue;
            }
            let mut target = vec![Ratio::ZERO; unknowns.len()];
            target[column] = Ratio::of(1);
            prop_assert!(
                !solvable(&equations, target),
                "small figure {figure} of {rows:?} follows from the released ones"
            );
        }
    }

    #[test]
    fn no_small_group_of_a_cumulative_series_can_be_solved_by_differencing_days(
        increments in prop::collection::vec(prop::collection::vec(count(), 2), 1..10),
        k in 2u64..12,
        whole_withheld_elsewhere in any::<bool>(),
    ) {
        let k = MinCell::new(k).expect("k is positive");
        let width = 2;
        let mut points: Vec<Vec<u64>> = Vec::new();
        for step in &increments {
            let before = points.last().cloned().unwrap_or_else(|| vec![0; width]);
            points.push(before.iter().zip(step).map(|(a, b)| a + b).collect());
        }
        let whole = points.last().cloned().unwrap_or_default();
        // The whole is withheld when small, or (sometimes) for a relation
        // elsewhere, as the results withhold users to hide withdrawals.
        let after: Vec<After> = whole
            .iter()
            .map(|c| {
                if k.allows(*c) && !whole_withheld_elsewhere {
                    After::Released(*c)
                } else {
                    After::Withheld(*c)
                }
            })
            .collect();
        let released = release_cumulative(&points, &after, k);
        // The unknowns are the day's new people per coordinate; a released
        // point tells the sum of its days so far, and so does the whole.
        for coordinate in 0..width {
            let days = increments.len();
            let mut equations: Vec<Vec<Ratio>> = released
                .iter()
                .enumerate()
                .filter(|(_, r)| **r)
                .map(|(day, _)| (0..days).map(|d| Ratio::of(i128::from(d <= day))).collect())
                .collect();
            let whole_released = matches!(after[coordinate], After::Released(_));
            if whole_released {
                equations.push(vec![Ratio::of(1); days]);
            }
            for (day, point) in points.iter().enumerate() {
                let count = point[coordinate];
                prop_assert!(!released[day] || k.allows(count));
                // The last day with new people is the whole, so a released
                // day must not come within k of a withheld whole.
                if let After::Withheld(whole) = after[coordinate] {
                    prop_assert!(!released[day] || count == 0 || whole - count >= k.get());
                }
            }
            for first in 0..days {
                for last in first..days {
                    let people: u64 = increments[first..=last].iter().map(|s| s[coordinate]).sum();
                    let whole = first == 0 && last + 1 == days;
                    if !k.allows(people) || (whole && !whole_released && people > 0) {
                        let target = (0..days)
                            .map(|d| Ratio::of(i128::from((first..=last).contains(&d))))
                            .collect();
                        prop_assert!(
                            equations.is_empty() || !solvable(&equations, target),
                            "the {people} people of days {first}..={last} in {increments:?} follow from days {released:?}"
                        );
                    }
                }
            }
        }
    }
}
