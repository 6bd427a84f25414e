//! Small view pieces shared by several pages: badges and their tones,
//! experiment states, estimates with intervals and tables of counts.

use crate::format::thousands;

/// The colour family of a badge or banner; each maps to one CSS class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Grey: nothing has happened yet.
    Neutral,
    /// Blue: waiting for someone.
    Info,
    /// Teal: cleared to go.
    Positive,
    /// Green: live and healthy.
    Active,
    /// Amber: needs attention.
    Warning,
    /// Slate: finished.
    Muted,
    /// Red: refused or broken.
    Negative,
}

impl Tone {
    /// The CSS class the base template styles for this tone.
    pub fn css_class(self) -> &'static str {
        match self {
            Tone::Neutral => "tone-neutral",
            Tone::Info => "tone-info",
            Tone::Positive => "tone-positive",
            Tone::Active => "tone-active",
            Tone::Warning => "tone-warning",
            Tone::Muted => "tone-muted",
            Tone::Negative => "tone-negative",
        }
    }
}

/// A short coloured label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Badge {
    /// The text of the badge.
    pub label: String,
    /// Its colour.
    pub tone: Tone,
}

impl Badge {
    /// A badge with the given text and tone.
    pub fn new(label: impl Into<String>, tone: Tone) -> Self {
        Self {
            label: label.into(),
            tone,
        }
    }
}

/// Where an experiment is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExperimentState {
    /// Being designed.
    Draft,
    /// Waiting for compliance.
    Submitted,
    /// Cleared by compliance, not started.
    Approved,
    /// Assigning users and collecting events.
    Running,
    /// Temporarily not assigning.
    Paused,
    /// Finished.
    Stopped,
    /// Refused by compliance.
    Denied,
}

impl ExperimentState {
    /// The state as one lowercase word.
    pub fn label(self) -> &'static str {
        match self {
            ExperimentState::Draft => "draft",
            ExperimentState::Submitted => "submitted",
            ExperimentState::Approved => "approved",
            ExperimentState::Running => "running",
            ExperimentState::Paused => "paused",
            ExperimentState::Stopped => "stopped",
            ExperimentState::Denied => "denied",
        }
    }

    /// The state as a badge, one colour per state.
    pub fn badge(self) -> Badge {
        let tone = match self {
            ExperimentState::Draft => Tone::Neutral,
            ExperimentState::Submitted => Tone::Info,
            ExperimentState::Approved => Tone::Positive,
            ExperimentState::Running => Tone::Active,
            ExperimentState::Paused => Tone::Warning,
            ExperimentState::Stopped => Tone::Muted,
            ExperimentState::Denied => Tone::Negative,
        };
        Badge::new(self.label(), tone)
    }
}

/// A point estimate with its interval (confidence, credible or sequence).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The point estimate.
    pub value: f64,
    /// The interval's lower bound.
    pub lower: f64,
    /// The interval's upper bound.
    pub upper: f64,
}

/// What a page shows in place of a figure that small-cell suppression
/// withholds: fewer than `k` people, or a figure from which such a one
/// could be recomputed (so the marker does not say which).
pub const SUPPRESSED: &str = "suppressed";

/// A count of people as released: the number, or withheld by small-cell
/// suppression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Released.
    Shown(u64),
    /// Withheld.
    Suppressed,
}

impl Count {
    /// `Some` is shown, `None` is withheld.
    pub fn released(value: Option<u64>) -> Count {
        value.map_or(Count::Suppressed, Count::Shown)
    }

    /// The number, when released.
    pub fn value(self) -> Option<u64> {
        match self {
            Count::Shown(n) => Some(n),
            Count::Suppressed => None,
        }
    }

    /// The count for people, or the suppression marker.
    pub fn text(self) -> String {
        self.value()
            .map_or_else(|| SUPPRESSED.to_owned(), thousands)
    }
}

/// Which figures of a [`CountMatrix`] small-cell suppression withholds;
/// empty means none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Withheld {
    /// `cells[row][column]`.
    pub cells: Vec<Vec<bool>>,
    pub row_totals: Vec<bool>,
    pub column_totals: Vec<bool>,
    pub grand_total: bool,
}

fn flag(flags: &[bool], index: usize) -> bool {
    flags.get(index).copied().unwrap_or(false)
}

/// A row of a [`CountMatrix`] as the table macro shows it.
#[derive(Debug)]
pub(crate) struct RowView {
    pub(crate) label: String,
    pub(crate) cells: Vec<String>,
    pub(crate) total: String,
}

/// A table of counts: one row per label, one count per column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountMatrix {
    /// The column headings, in order.
    pub columns: Vec<String>,
    /// The rows, in order.
    pub rows: Vec<CountRow>,
    /// The figures withheld by small-cell suppression: shown as
    /// [`SUPPRESSED`], drawn as 0 in charts.
    pub withheld: Withheld,
}

/// One row of a [`CountMatrix`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountRow {
    /// The row heading.
    pub label: String,
    /// One count per column of the matrix; missing counts read as zero.
    pub counts: Vec<u64>,
}

impl CountMatrix {
    /// Pivots `(row, column, count)` cells into a matrix. Rows and columns
    /// keep the order in which they first appear; repeated cells add up.
    pub fn from_cells<R, C>(cells: impl IntoIterator<Item = (R, C, u64)>) -> Self
    where
        R: Into<String>,
        C: Into<String>,
    {
        let mut matrix = CountMatrix::default();
        for (row, column, count) in cells {
            let (row, column) = (row.into(), column.into());
            let column_index = match matrix.columns.iter().position(|c| *c == column) {
                Some(index) => index,
                None => {
                    matrix.columns.push(column);
                    matrix.columns.len() - 1
                }
            };
            let row_index = match matrix.rows.iter().position(|r| r.label == row) {
                Some(index) => index,
                None => {
                    matrix.rows.push(CountRow {
                        label: row,
                        counts: Vec::new(),
                    });
                    matrix.rows.len() - 1
                }
            };
            let counts = &mut matrix.rows[row_index].counts;
            if counts.len() <= column_index {
                counts.resize(column_index + 1, 0);
            }
            counts[column_index] += count;
        }
        matrix
    }

    /// The sum of each column, in column order.
    pub fn column_totals(&self) -> Vec<u64> {
        (0..self.columns.len())
            .map(|column| self.rows.iter().map(|row| row.count(column)).sum())
            .collect()
    }

    /// Whether the matrix has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Whether the cell at `row`, `column` is withheld.
    pub fn is_withheld(&self, row: usize, column: usize) -> bool {
        self.withheld
            .cells
            .get(row)
            .is_some_and(|cells| flag(cells, column))
    }

    /// The count of the cell at `row`, `column` as charts draw it: 0 when withheld.
    pub fn released_count(&self, row: usize, column: usize) -> u64 {
        if self.is_withheld(row, column) {
            0
        } else {
            self.rows.get(row).map_or(0, |r| r.count(column))
        }
    }

    /// The column totals as charts draw them: 0 when withheld.
    pub fn released_column_totals(&self) -> Vec<u64> {
        self.column_totals()
            .into_iter()
            .enumerate()
            .map(|(c, total)| {
                if flag(&self.withheld.column_totals, c) {
                    0
                } else {
                    total
                }
            })
            .collect()
    }

    /// The column totals formatted for people, for the table's footer.
    pub(crate) fn total_cells(&self) -> Vec<String> {
        self.column_totals()
            .into_iter()
            .enumerate()
            .map(|(c, total)| shown(total, flag(&self.withheld.column_totals, c)))
            .collect()
    }

    /// The grand total formatted for people.
    pub(crate) fn grand_total(&self) -> String {
        shown(self.column_totals().iter().sum(), self.withheld.grand_total)
    }

    /// The rows formatted for people, cell by cell, with their totals.
    pub(crate) fn row_views(&self) -> Vec<RowView> {
        self.rows
            .iter()
            .enumerate()
            .map(|(r, row)| RowView {
                label: row.label.clone(),
                cells: (0..self.columns.len())
                    .map(|c| shown(row.count(c), self.is_withheld(r, c)))
                    .collect(),
                total: shown(row.counts.iter().sum(), flag(&self.withheld.row_totals, r)),
            })
            .collect()
    }
}

/// `count` for people, or the suppression marker when `withheld`.
fn shown(count: u64, withheld: bool) -> String {
    if withheld {
        SUPPRESSED.to_owned()
    } else {
        thousands(count)
    }
}

impl CountRow {
    /// The count in `column`, zero when missing.
    pub fn count(&self, column: usize) -> u64 {
        self.counts.get(column).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_pivot_in_first_seen_order_and_add_up() {
        let matrix = CountMatrix::from_cells([
            ("2025-03-01", "withdrawn", 3),
            ("2025-03-01", "expired", 1),
            ("2025-03-02", "expired", 2),
            ("2025-03-01", "withdrawn", 4),
        ]);
        assert_eq!(matrix.columns, ["withdrawn", "expired"]);
        assert_eq!(matrix.rows[0].counts, [7, 1]);
        assert_eq!(matrix.rows[1].count(0), 0);
        assert_eq!(matrix.rows[1].count(1), 2);
        assert_eq!(matrix.column_totals(), [7, 3]);
    }

    #[test]
    fn every_state_has_its_own_colour() {
        let states = [
            ExperimentState::Draft,
            ExperimentState::Submitted,
            ExperimentState::Approved,
            ExperimentState::Running,
            ExperimentState::Paused,
            ExperimentState::Stopped,
            ExperimentState::Denied,
        ];
        let mut classes: Vec<&str> = states.iter().map(|s| s.badge().tone.css_class()).collect();
        classes.sort_unstable();
        classes.dedup();
        assert_eq!(classes.len(), states.len());
    }
}
