//! The segment table of the results page and the memo: per pre-registered
//! segment value and variant, the users, the mean, the relative uplift, the
//! p-value and the p-value adjusted across every segment value and variant.

use crate::format::{p_value, percent, percent_interval, signed_percent, significant, thousands};
use crate::view::Estimate;

/// The results of one pre-registered segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentTable {
    /// The segment's name, e.g. `device_type`.
    pub segment: String,
    /// `holm` or `benjamini_hochberg`.
    pub correction: String,
    /// Whether the p-values are adjusted (the primary metric) or not (a guardrail).
    pub adjusted: bool,
    /// How many p-values were adjusted together.
    pub family_size: usize,
    /// Whether the metric is binary (its mean is a rate).
    pub binary: bool,
    pub rows: Vec<SegmentRow>,
}

/// One variant of one segment value, or a value without results.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRow {
    /// The segment value; `None` for the assignments without the attribute.
    pub value: Option<String>,
    /// The variant; empty on the row of a value without results.
    pub variant: String,
    /// `None` when small-cell suppression withholds it.
    pub users: Option<u64>,
    pub mean: Option<f64>,
    pub relative_uplift: Option<Estimate>,
    pub p_value: Option<f64>,
    pub adjusted_p_value: Option<f64>,
    /// Why the value has no results, in one sentence.
    pub note: Option<String>,
}

/// A row as the template shows it.
#[derive(Debug)]
pub struct SegmentRowView {
    pub value: String,
    pub variant: String,
    pub users: String,
    pub mean: String,
    pub relative: String,
    pub relative_interval: String,
    pub p_value: String,
    pub adjusted_p_value: String,
    pub note: String,
}

const DASH: &str = "\u{2014}";

impl SegmentTable {
    /// The correction's name, e.g. "Holm–Bonferroni".
    pub fn correction_label(&self) -> &'static str {
        match self.correction.as_str() {
            "benjamini_hochberg" => "Benjamini–Hochberg",
            _ => "Holm–Bonferroni",
        }
    }

    /// One sentence on what the adjusted column means.
    pub fn adjustment_text(&self) -> String {
        if self.adjusted {
            format!(
                "P-values adjusted by {} across {} comparisons (every value of this segment and every treatment variant), as pre-registered.",
                self.correction_label(),
                self.family_size
            )
        } else {
            "A guardrail's p-values are not adjusted (GrowthBook's rule): they are shown as computed.".to_owned()
        }
    }

    pub fn row_views(&self) -> Vec<SegmentRowView> {
        let optional = |x: Option<f64>, show: fn(f64) -> String| {
            x.map(show).unwrap_or_else(|| DASH.to_owned())
        };
        self.rows
            .iter()
            .map(|row| {
                let (relative, relative_interval) = match row.relative_uplift {
                    Some(e) => (signed_percent(e.value), percent_interval(e.lower, e.upper)),
                    None => (DASH.to_owned(), String::new()),
                };
                SegmentRowView {
                    value: row.value.clone().unwrap_or_else(|| "(not sent)".to_owned()),
                    variant: row.variant.clone(),
                    users: row.users.map_or_else(|| "suppressed".to_owned(), thousands),
                    mean: if self.binary {
                        optional(row.mean, percent)
                    } else {
                        optional(row.mean, |m| significant(m, 3))
                    },
                    relative,
                    relative_interval,
                    p_value: optional(row.p_value, p_value),
                    adjusted_p_value: if self.adjusted {
                        optional(row.adjusted_p_value, p_value)
                    } else {
                        "not adjusted".to_owned()
                    },
                    note: row.note.clone().unwrap_or_default(),
                }
            })
            .collect()
    }
}
