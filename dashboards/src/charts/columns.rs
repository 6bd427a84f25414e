//! Stacked columns over time with a legend, used for refusals per reason and day.

use super::scale::{LinearScale, nice_ticks};
use super::{Svg, close_svg, coordinate, empty_chart, escape_xml, grid_line, open_svg, palette};
use crate::format::thousands;

/// One column: its label (a day such as `2025-03-04`) and one count per
/// series, in the order of the series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackedColumn {
    /// The label of the x position.
    pub label: String,
    /// The counts, stacked bottom up in series order.
    pub values: Vec<u64>,
}

const WIDTH: u32 = 640;
const PLOT_HEIGHT: f64 = 200.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 16.0;
const AXIS_SPACE: f64 = 28.0;
const LEGEND_ROW: f64 = 20.0;
const LEGEND_COLUMNS: usize = 3;

/// Colours of the series, in order; they repeat after the last.
const SERIES: [&str; 8] = [
    "#3558a8", "#b26a00", "#1a7f37", "#c62828", "#6f42c1", "#0b7285", "#8a6d3b", "#5b6270",
];

/// Draws one column per entry of `columns`, its counts stacked in the order
/// of `series` (the names the legend shows), with a count axis and the
/// first, middle and last labels under the columns.
pub fn stacked_columns(series: &[String], columns: &[StackedColumn], title: &str) -> Svg {
    let total = |column: &StackedColumn| column.values.iter().sum::<u64>();
    let largest = columns.iter().map(total).max().unwrap_or(0);
    if series.is_empty() || largest == 0 {
        return empty_chart(title, "Nothing counted yet");
    }
    let legend_rows = series.len().div_ceil(LEGEND_COLUMNS);
    let plot_bottom = TOP + PLOT_HEIGHT;
    let height = (plot_bottom + AXIS_SPACE + LEGEND_ROW * legend_rows as f64 + 8.0).ceil() as u32;
    let plot_right = f64::from(WIDTH) - RIGHT;
    let y = LinearScale::new((0.0, largest as f64), (plot_bottom, TOP));
    let mut svg = open_svg(WIDTH, height, title);

    let (ticks, _) = nice_ticks((0.0, largest as f64), 4);
    for tick in ticks.into_iter().filter(|t| t.fract() == 0.0 && *t >= 0.0) {
        grid_line(
            &mut svg,
            y.map(tick),
            LEFT,
            plot_right,
            &thousands(tick as u64),
        );
    }

    let slot = (plot_right - LEFT) / columns.len() as f64;
    let bar_width = (slot * 0.7).clamp(1.0, 48.0);
    for (index, column) in columns.iter().enumerate() {
        let left = LEFT + slot * index as f64 + (slot - bar_width) / 2.0;
        let mut below = 0u64;
        for (serie, value) in series.iter().enumerate().zip(&column.values) {
            let (serie_index, name) = serie;
            if *value == 0 {
                continue;
            }
            let top = y.map((below + value) as f64);
            let bottom = y.map(below as f64);
            svg.push_str(&format!(
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect>",
                coordinate(left),
                coordinate(top),
                coordinate(bar_width),
                coordinate(bottom - top),
                SERIES[serie_index % SERIES.len()],
                escape_xml(&format!("{} · {name}: {}", column.label, thousands(*value))),
            ));
            below += value;
        }
    }
    svg.push_str(&format!(
        "<line x1=\"{}\" y1=\"{b}\" x2=\"{}\" y2=\"{b}\" stroke=\"{}\"/>",
        coordinate(LEFT),
        coordinate(plot_right),
        palette::AXIS,
        b = coordinate(plot_bottom),
    ));

    let last = columns.len() - 1;
    let mut labelled = vec![0, last / 2, last];
    labelled.dedup();
    for index in labelled {
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{}\">{}</text>",
            coordinate(LEFT + slot * (index as f64 + 0.5)),
            coordinate(plot_bottom + 18.0),
            palette::AXIS,
            escape_xml(&columns[index].label),
        ));
    }

    let legend_top = plot_bottom + AXIS_SPACE;
    let legend_width = (plot_right - LEFT) / LEGEND_COLUMNS as f64;
    for (index, name) in series.iter().enumerate() {
        let x = LEFT + legend_width * (index % LEGEND_COLUMNS) as f64;
        let y = legend_top + LEGEND_ROW * (index / LEGEND_COLUMNS) as f64;
        svg.push_str(&format!(
            "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"#1f2328\">{}</text>",
            coordinate(x),
            coordinate(y),
            SERIES[index % SERIES.len()],
            coordinate(x + 18.0),
            coordinate(y + 10.0),
            escape_xml(name),
        ));
    }
    close_svg(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(day: u32, values: &[u64]) -> StackedColumn {
        StackedColumn {
            label: format!("2025-03-{day:02}"),
            values: values.to_vec(),
        }
    }

    #[test]
    fn segments_stack_per_day_with_a_legend_and_escaped_names() {
        let series = vec!["no_consent".to_owned(), "<expired>".to_owned()];
        let svg = stacked_columns(
            &series,
            &[
                column(1, &[3, 1]),
                column(2, &[0, 2]),
                column(3, &[1_234, 0]),
            ],
            "Refusals per day",
        );
        let text = svg.as_str();
        // Four non-zero segments and two legend swatches.
        assert_eq!(text.matches("<rect").count(), 6);
        assert!(text.contains("2025-03-03 · no_consent: 1,234"));
        assert!(text.contains("&lt;expired&gt;"));
        assert!(text.contains("2025-03-01") && text.contains("2025-03-03"));
    }

    #[test]
    fn nothing_counted_draws_an_empty_frame() {
        let names = vec!["no_consent".to_owned()];
        assert!(
            stacked_columns(&names, &[], "t")
                .as_str()
                .contains("Nothing counted yet")
        );
        assert!(
            stacked_columns(&names, &[column(1, &[0])], "t")
                .as_str()
                .contains("Nothing counted yet")
        );
        let one = stacked_columns(&names, &[column(1, &[1])], "t");
        assert!(!one.as_str().contains("NaN"));
    }
}
