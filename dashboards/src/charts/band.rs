//! A line over time with its interval band, used for the cumulative uplift.

use super::scale::{LinearScale, nice_ticks, padded_domain, percent_tick};
use super::{Svg, close_svg, coordinate, empty_chart, escape_xml, grid_line, open_svg, palette};
use crate::format::{percent_interval, signed_percent};

/// One point of a series over time: an estimate and its interval, as shares.
#[derive(Debug, Clone, PartialEq)]
pub struct BandPoint {
    /// The label of the x position, e.g. a day such as `2025-03-04`.
    pub label: String,
    /// The point estimate, e.g. `0.0342` for +3.42%.
    pub estimate: f64,
    /// The interval's lower bound.
    pub lower: f64,
    /// The interval's upper bound.
    pub upper: f64,
}

const WIDTH: u32 = 640;
const HEIGHT: u32 = 260;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 44.0;

/// Draws `points` in order as a line with its interval band and a zero line.
/// Points without a finite estimate are skipped; a point without finite
/// bounds keeps its place on the line but adds nothing to the band.
pub fn band_chart(points: &[BandPoint], title: &str) -> Svg {
    let kept: Vec<&BandPoint> = points
        .iter()
        .filter(|point| point.estimate.is_finite())
        .collect();
    if kept.is_empty() {
        return empty_chart(title, "No data over time yet");
    }
    let values = kept
        .iter()
        .flat_map(|point| [point.estimate, point.lower, point.upper]);
    let Some(domain) = padded_domain(values, &[0.0]) else {
        return empty_chart(title, "No data over time yet");
    };
    let plot_bottom = f64::from(HEIGHT) - BOTTOM;
    let plot_right = f64::from(WIDTH) - RIGHT;
    let y = LinearScale::new(domain, (plot_bottom, TOP));
    let last_index = (kept.len() - 1) as f64;
    let x = LinearScale::new((0.0, last_index), (LEFT + 8.0, plot_right - 8.0));
    let mut svg = open_svg(WIDTH, HEIGHT, title);

    draw_y_axis(&mut svg, &y, plot_right);
    draw_band(&mut svg, &x, &y, &kept);
    draw_line(&mut svg, &x, &y, &kept);
    draw_x_labels(&mut svg, &x, &kept, plot_bottom);
    close_svg(svg)
}

/// Draws the horizontal grid, the zero line and the percentage labels.
fn draw_y_axis(svg: &mut String, y: &LinearScale, plot_right: f64) {
    let (ticks, step) = nice_ticks(y.domain(), 5);
    for tick in ticks {
        grid_line(
            svg,
            y.map(tick),
            LEFT,
            plot_right,
            &percent_tick(tick, step),
        );
    }
    let zero = coordinate(y.map(0.0));
    svg.push_str(&format!(
        "<line x1=\"{}\" y1=\"{zero}\" x2=\"{}\" y2=\"{zero}\" stroke=\"{}\"/>",
        coordinate(LEFT),
        coordinate(plot_right),
        palette::AXIS,
    ));
}

/// Draws the interval band: a polygon when two or more points have finite
/// bounds, a vertical bar when only one has.
fn draw_band(svg: &mut String, x: &LinearScale, y: &LinearScale, kept: &[&BandPoint]) {
    let bounded: Vec<(f64, &BandPoint)> = kept
        .iter()
        .enumerate()
        .filter(|(_, point)| point.lower.is_finite() && point.upper.is_finite())
        .map(|(index, point)| (x.map(index as f64), *point))
        .collect();
    match bounded.as_slice() {
        [] => {}
        [(at, point)] => svg.push_str(&format!(
            "<line x1=\"{a}\" y1=\"{}\" x2=\"{a}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"6\"/>",
            coordinate(y.map(point.lower)),
            coordinate(y.map(point.upper)),
            palette::BAND,
            a = coordinate(*at),
        )),
        many => {
            let upper = many.iter().map(|(at, point)| {
                format!("{},{}", coordinate(*at), coordinate(y.map(point.upper)))
            });
            let lower = many.iter().rev().map(|(at, point)| {
                format!("{},{}", coordinate(*at), coordinate(y.map(point.lower)))
            });
            let outline: Vec<String> = upper.chain(lower).collect();
            svg.push_str(&format!(
                "<polygon points=\"{}\" fill=\"{}\" stroke=\"none\"/>",
                outline.join(" "),
                palette::BAND,
            ));
        }
    }
}

/// Draws the estimates as a line, and the latest estimate as a dot that
/// names its value.
fn draw_line(svg: &mut String, x: &LinearScale, y: &LinearScale, kept: &[&BandPoint]) {
    if kept.len() >= 2 {
        let line: Vec<String> = kept
            .iter()
            .enumerate()
            .map(|(index, point)| {
                format!(
                    "{},{}",
                    coordinate(x.map(index as f64)),
                    coordinate(y.map(point.estimate))
                )
            })
            .collect();
        svg.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
            line.join(" "),
            palette::NEUTRAL,
        ));
    }
    if let Some(last) = kept.last() {
        let mut description = format!("{}: {}", last.label, signed_percent(last.estimate));
        if last.lower.is_finite() && last.upper.is_finite() {
            description = format!("{description} {}", percent_interval(last.lower, last.upper));
        }
        svg.push_str(&format!(
            "<circle cx=\"{}\" cy=\"{}\" r=\"4\" fill=\"{}\"><title>{}</title></circle>",
            coordinate(x.map((kept.len() - 1) as f64)),
            coordinate(y.map(last.estimate)),
            palette::NEUTRAL,
            escape_xml(&description),
        ));
    }
}

/// Labels the first, middle and last x positions.
fn draw_x_labels(svg: &mut String, x: &LinearScale, kept: &[&BandPoint], plot_bottom: f64) {
    let last = kept.len() - 1;
    let mut indices = vec![0, last / 2, last];
    indices.dedup();
    for index in indices {
        let anchor = match index {
            0 if last > 0 => "start",
            i if i == last && last > 0 => "end",
            _ => "middle",
        };
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\" fill=\"{}\">{}</text>",
            coordinate(x.map(index as f64)),
            coordinate(plot_bottom + 18.0),
            palette::AXIS,
            escape_xml(&kept[index].label),
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{}\">Cumulative relative uplift by day</text>",
        coordinate((LEFT + f64::from(WIDTH) - RIGHT) / 2.0),
        coordinate(plot_bottom + 36.0),
        palette::AXIS,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(day: u32, estimate: f64, lower: f64, upper: f64) -> BandPoint {
        BandPoint {
            label: format!("2025-03-{day:02}"),
            estimate,
            lower,
            upper,
        }
    }

    #[test]
    fn a_series_draws_a_band_and_a_line() {
        let points: Vec<BandPoint> = (1..=14)
            .map(|day| {
                let width = 0.2 / f64::from(day);
                point(day, 0.03, 0.03 - width, 0.03 + width)
            })
            .collect();
        let svg = band_chart(&points, "Cumulative uplift");
        assert!(svg.as_str().contains("<polygon"));
        assert!(svg.as_str().contains("<polyline"));
        assert!(svg.as_str().contains("2025-03-01"));
        assert!(svg.as_str().contains("2025-03-14"));
    }

    #[test]
    fn empty_single_and_non_finite_series_do_not_panic() {
        assert!(
            band_chart(&[], "t")
                .as_str()
                .contains("No data over time yet")
        );
        let nan_only = [point(1, f64::NAN, 0.0, 1.0)];
        assert!(
            band_chart(&nan_only, "t")
                .as_str()
                .contains("No data over time")
        );
        let single = band_chart(&[point(1, 0.01, -0.02, 0.04)], "t");
        assert!(single.as_str().contains("<circle"));
        assert!(!single.as_str().contains("<polyline"));
        let mixed = [
            point(1, 0.01, f64::NEG_INFINITY, 0.04),
            point(2, f64::INFINITY, 0.0, 0.0),
            point(3, 0.02, 0.0, 0.04),
        ];
        let svg = band_chart(&mixed, "t");
        assert!(svg.as_str().contains("<polyline"));
        assert!(!svg.as_str().contains("NaN") && !svg.as_str().contains("inf"));
    }
}
