//! Inline SVG charts drawn from plain numbers: a forest plot of uplift
//! intervals, a line with its interval band over time, horizontal bars, and
//! stacked columns over time.
//!
//! Every function here is pure: numbers in, an [`Svg`] out. Non-finite values
//! (NaN, infinities) are skipped, an empty series draws a labelled empty
//! frame, and every piece of text placed inside the SVG is escaped here, so
//! pages may embed an [`Svg`] with askama's `|safe` filter.

mod band;
mod bars;
mod columns;
mod forest;
mod scale;

use std::fmt;

pub use band::{BandPoint, band_chart};
pub use bars::{Bar, bar_chart};
pub use columns::{StackedColumn, stacked_columns};
pub use forest::{ForestRow, forest_plot};

/// The markup of one chart. It can only be built by this module, which
/// escapes all text it places inside, so it is safe to embed unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Svg(String);

impl Svg {
    /// The SVG markup.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Svg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Colours shared by the charts, chosen to read on a white page.
pub(crate) mod palette {
    /// Axis lines, ticks and labels.
    pub const AXIS: &str = "#5b6270";
    /// Light grid lines.
    pub const GRID: &str = "#e3e6eb";
    /// An interval entirely above zero.
    pub const POSITIVE: &str = "#1a7f37";
    /// An interval entirely below zero.
    pub const NEGATIVE: &str = "#c62828";
    /// An interval that crosses zero, or a neutral series.
    pub const NEUTRAL: &str = "#3558a8";
    /// The filled interval band behind a line.
    pub const BAND: &str = "#c9d6f2";
    /// The minimum detectable effect markers.
    pub const MDE: &str = "#b26a00";
}

/// `text` with the five XML special characters replaced by entities.
pub(crate) fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A coordinate with one decimal, which is plenty at the sizes drawn here.
pub(crate) fn coordinate(x: f64) -> String {
    format!("{x:.1}")
}

/// Builds the opening of an SVG document of the given size with an
/// accessible name, ready for shapes to be appended.
pub(crate) fn open_svg(width: u32, height: u32, title: &str) -> String {
    let title = escape_xml(title);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" \
         aria-label=\"{title}\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" \
         height=\"{height}\" font-family=\"system-ui, sans-serif\" font-size=\"12\">\
         <title>{title}</title>"
    )
}

/// Closes an SVG document started with [`open_svg`].
pub(crate) fn close_svg(mut svg: String) -> Svg {
    svg.push_str("</svg>");
    Svg(svg)
}

/// A horizontal grid line at height `at` from `left` to `right`, with its
/// `label` right-aligned left of the plot.
pub(crate) fn grid_line(svg: &mut String, at: f64, left: f64, right: f64, label: &str) {
    let y = coordinate(at);
    svg.push_str(&format!(
        "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{}\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{}\">{}</text>",
        coordinate(left),
        coordinate(right),
        palette::GRID,
        coordinate(left - 6.0),
        coordinate(at + 4.0),
        palette::AXIS,
        escape_xml(label),
    ));
}

/// A small framed chart that says there is nothing to draw yet.
pub(crate) fn empty_chart(title: &str, message: &str) -> Svg {
    let (width, height) = (640, 80);
    let mut svg = open_svg(width, height, title);
    svg.push_str(&format!(
        "<rect x=\"0.5\" y=\"0.5\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"{}\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{}\">{}</text>",
        width - 1,
        height - 1,
        palette::GRID,
        width / 2,
        height / 2 + 4,
        palette::AXIS,
        escape_xml(message),
    ));
    close_svg(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_special_characters_are_escaped() {
        assert_eq!(
            escape_xml("<a href=\"x\">Tom & Jerry's</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
        );
    }

    #[test]
    fn an_empty_chart_still_has_an_accessible_name() {
        let svg = empty_chart("Uplift <by> day", "No data yet");
        assert!(svg.as_str().starts_with("<svg"));
        assert!(svg.as_str().contains("role=\"img\""));
        assert!(
            svg.as_str()
                .contains("<title>Uplift &lt;by&gt; day</title>")
        );
        assert!(svg.as_str().ends_with("</svg>"));
    }
}
