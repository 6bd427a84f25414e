//! The forest plot: one horizontal interval per treatment variant, with a
//! zero line and dashed lines at plus and minus the minimum detectable effect.

use super::scale::{LinearScale, nice_ticks, padded_domain, percent_tick};
use super::{Svg, close_svg, coordinate, empty_chart, escape_xml, open_svg, palette};
use crate::format::{percent_interval, signed_percent};

/// One row of a forest plot: a relative uplift and its interval, as shares.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestRow {
    /// The variant's name, drawn left of its row.
    pub label: String,
    /// The point estimate, e.g. `0.0342` for +3.42%.
    pub estimate: f64,
    /// The interval's lower bound.
    pub lower: f64,
    /// The interval's upper bound.
    pub upper: f64,
}

const WIDTH: u32 = 640;
const LABEL_WIDTH: f64 = 132.0;
const RIGHT_MARGIN: f64 = 24.0;
const TOP: f64 = 16.0;
const ROW_HEIGHT: f64 = 34.0;
const AXIS_HEIGHT: f64 = 40.0;

/// Draws `rows` as a forest plot of relative uplifts. `mde` is the relative
/// minimum detectable effect (e.g. `0.02`); it is marked at both signs when
/// finite and positive. Rows without a finite estimate are listed as "n/a".
pub fn forest_plot(rows: &[ForestRow], mde: f64, title: &str) -> Svg {
    if rows.is_empty() {
        return empty_chart(title, "No treatment variants to compare yet");
    }
    let mde = (mde.is_finite() && mde > 0.0).then_some(mde);
    let markers: Vec<f64> = match mde {
        Some(m) => vec![0.0, m, -m],
        None => vec![0.0],
    };
    let values = rows
        .iter()
        .filter(|row| row.estimate.is_finite())
        .flat_map(|row| [row.estimate, row.lower, row.upper]);
    let Some(domain) = padded_domain(values, &markers) else {
        return empty_chart(title, "No estimates yet");
    };

    let plot_bottom = TOP + ROW_HEIGHT * rows.len() as f64;
    let height = (plot_bottom + AXIS_HEIGHT).ceil() as u32;
    let x = LinearScale::new(domain, (LABEL_WIDTH, f64::from(WIDTH) - RIGHT_MARGIN));
    let mut svg = open_svg(WIDTH, height, title);

    draw_axis(&mut svg, &x, plot_bottom);
    draw_vertical(&mut svg, x.map(0.0), plot_bottom, palette::AXIS, None);
    if let Some(m) = mde {
        for edge in [m, -m] {
            draw_vertical(
                &mut svg,
                x.map(edge),
                plot_bottom,
                palette::MDE,
                Some("5 4"),
            );
        }
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{}\" font-size=\"11\">MDE</text>",
            coordinate(x.map(m)),
            coordinate(TOP - 4.0),
            palette::MDE,
        ));
    }
    for (index, row) in rows.iter().enumerate() {
        let middle = TOP + ROW_HEIGHT * (index as f64 + 0.5);
        draw_row(&mut svg, &x, row, middle);
    }
    close_svg(svg)
}

/// Draws the tick marks and labels along the bottom of the plot.
fn draw_axis(svg: &mut String, x: &LinearScale, plot_bottom: f64) {
    let (ticks, step) = nice_ticks(x.domain(), 6);
    svg.push_str(&format!(
        "<line x1=\"{}\" y1=\"{b}\" x2=\"{}\" y2=\"{b}\" stroke=\"{}\"/>",
        coordinate(LABEL_WIDTH),
        coordinate(f64::from(WIDTH) - RIGHT_MARGIN),
        palette::AXIS,
        b = coordinate(plot_bottom),
    ));
    for tick in ticks {
        let at = coordinate(x.map(tick));
        svg.push_str(&format!(
            "<line x1=\"{at}\" y1=\"{}\" x2=\"{at}\" y2=\"{}\" stroke=\"{}\"/>\
             <line x1=\"{at}\" y1=\"{}\" x2=\"{at}\" y2=\"{}\" stroke=\"{}\"/>\
             <text x=\"{at}\" y=\"{}\" text-anchor=\"middle\" fill=\"{}\">{}</text>",
            coordinate(TOP),
            coordinate(plot_bottom),
            palette::GRID,
            coordinate(plot_bottom),
            coordinate(plot_bottom + 5.0),
            palette::AXIS,
            coordinate(plot_bottom + 19.0),
            palette::AXIS,
            escape_xml(&percent_tick(tick, step)),
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{}\">Relative uplift</text>",
        coordinate((LABEL_WIDTH + f64::from(WIDTH) - RIGHT_MARGIN) / 2.0),
        coordinate(plot_bottom + 35.0),
        palette::AXIS,
    ));
}

/// Draws a vertical reference line over the plot area, dashed when asked.
fn draw_vertical(svg: &mut String, at: f64, plot_bottom: f64, colour: &str, dash: Option<&str>) {
    let dash = dash
        .map(|pattern| format!(" stroke-dasharray=\"{pattern}\""))
        .unwrap_or_default();
    svg.push_str(&format!(
        "<line x1=\"{a}\" y1=\"{}\" x2=\"{a}\" y2=\"{}\" stroke=\"{colour}\"{dash}/>",
        coordinate(TOP),
        coordinate(plot_bottom),
        a = coordinate(at),
    ));
}

/// Draws one variant's label, interval and point estimate.
fn draw_row(svg: &mut String, x: &LinearScale, row: &ForestRow, middle: f64) {
    let y = coordinate(middle);
    svg.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#1f2328\">{}</text>",
        coordinate(LABEL_WIDTH - 10.0),
        coordinate(middle + 4.0),
        escape_xml(&row.label),
    ));
    if !row.estimate.is_finite() {
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" fill=\"{}\">n/a</text>",
            coordinate(LABEL_WIDTH + 6.0),
            coordinate(middle + 4.0),
            palette::AXIS,
        ));
        return;
    }
    let has_interval = row.lower.is_finite() && row.upper.is_finite();
    let colour = if has_interval && row.lower > 0.0 {
        palette::POSITIVE
    } else if has_interval && row.upper < 0.0 {
        palette::NEGATIVE
    } else {
        palette::NEUTRAL
    };
    let mut description = signed_percent(row.estimate);
    if has_interval {
        let (low, high) = (x.map(row.lower), x.map(row.upper));
        svg.push_str(&format!(
            "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{colour}\" stroke-width=\"3\"/>",
            coordinate(low),
            coordinate(high),
        ));
        description = format!("{description} {}", percent_interval(row.lower, row.upper));
    }
    svg.push_str(&format!(
        "<circle cx=\"{}\" cy=\"{y}\" r=\"5\" fill=\"{colour}\"><title>{}: {}</title></circle>",
        coordinate(x.map(row.estimate)),
        escape_xml(&row.label),
        escape_xml(&description),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str, estimate: f64, lower: f64, upper: f64) -> ForestRow {
        ForestRow {
            label: label.to_owned(),
            estimate,
            lower,
            upper,
        }
    }

    #[test]
    fn intervals_get_a_zero_line_and_dashed_mde_lines() {
        let svg = forest_plot(
            &[
                row("B", 0.0342, 0.0123, 0.0561),
                row("C", -0.004, -0.021, 0.013),
            ],
            0.02,
            "Relative uplift",
        );
        let text = svg.as_str();
        assert!(text.starts_with("<svg"));
        assert_eq!(text.matches("stroke-dasharray").count(), 2);
        assert_eq!(text.matches("<circle").count(), 2);
        assert!(text.contains(palette::POSITIVE), "B lies above zero");
        assert!(text.contains(palette::NEUTRAL), "C crosses zero");
        assert!(text.contains("[1.23%, 5.61%]"));
    }

    #[test]
    fn degenerate_rows_do_not_panic() {
        assert!(
            forest_plot(&[], 0.02, "t")
                .as_str()
                .contains("No treatment")
        );
        let nan = forest_plot(&[row("B", f64::NAN, f64::NAN, 1.0)], f64::NAN, "t");
        assert!(nan.as_str().contains(">n/a</text>"));
        let point = forest_plot(&[row("B", 0.01, f64::NAN, f64::INFINITY)], 0.0, "t");
        assert!(point.as_str().contains("<circle"));
        assert!(!point.as_str().contains("NaN") && !point.as_str().contains("inf\""));
    }

    #[test]
    fn labels_are_escaped() {
        let svg = forest_plot(&[row("<script>", 0.01, 0.0, 0.02)], 0.02, "t");
        assert!(!svg.as_str().contains("<script>"));
        assert!(svg.as_str().contains("&lt;script&gt;"));
    }
}
