//! Horizontal bars with their counts, used for refusals per reason.

use super::scale::LinearScale;
use super::{Svg, close_svg, coordinate, empty_chart, escape_xml, open_svg, palette};
use crate::format::thousands;

/// One bar: a label and a count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    /// What the bar counts, drawn left of it.
    pub label: String,
    /// The count.
    pub value: u64,
}

const WIDTH: u32 = 640;
const LABEL_WIDTH: f64 = 180.0;
const VALUE_WIDTH: f64 = 72.0;
const BAR_HEIGHT: f64 = 18.0;
const ROW_HEIGHT: f64 = 26.0;
const TOP: f64 = 8.0;

/// Draws one horizontal bar per entry of `bars`, longest for the largest
/// count, each followed by its count.
pub fn bar_chart(bars: &[Bar], title: &str) -> Svg {
    if bars.is_empty() {
        return empty_chart(title, "Nothing counted yet");
    }
    let largest = bars.iter().map(|bar| bar.value).max().unwrap_or(0).max(1);
    let height = (TOP * 2.0 + ROW_HEIGHT * bars.len() as f64).ceil() as u32;
    let x = LinearScale::new(
        (0.0, largest as f64),
        (LABEL_WIDTH, f64::from(WIDTH) - VALUE_WIDTH),
    );
    let mut svg = open_svg(WIDTH, height, title);
    for (index, bar) in bars.iter().enumerate() {
        let top = TOP + ROW_HEIGHT * index as f64;
        let middle = top + ROW_HEIGHT / 2.0;
        let end = x.map(bar.value as f64);
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#1f2328\">{}</text>\
             <rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{BAR_HEIGHT}\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"{}\">{}</text>",
            coordinate(LABEL_WIDTH - 8.0),
            coordinate(middle + 4.0),
            escape_xml(&bar.label),
            coordinate(LABEL_WIDTH),
            coordinate(middle - BAR_HEIGHT / 2.0),
            coordinate(end - LABEL_WIDTH),
            palette::NEUTRAL,
            coordinate(end + 6.0),
            coordinate(middle + 4.0),
            palette::AXIS,
            thousands(bar.value),
        ));
    }
    close_svg(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_show_their_counts_and_escape_labels() {
        let svg = bar_chart(
            &[
                Bar {
                    label: "withdrawn".to_owned(),
                    value: 12_345,
                },
                Bar {
                    label: "<b>expired</b>".to_owned(),
                    value: 0,
                },
            ],
            "Refusals per reason",
        );
        assert!(svg.as_str().contains("12,345"));
        assert!(svg.as_str().contains("&lt;b&gt;expired"));
        assert_eq!(svg.as_str().matches("<rect").count(), 2);
    }

    #[test]
    fn no_bars_and_all_zero_bars_do_not_panic() {
        assert!(bar_chart(&[], "t").as_str().contains("Nothing counted yet"));
        let zero = [Bar {
            label: "stale_notice".to_owned(),
            value: 0,
        }];
        assert!(bar_chart(&zero, "t").as_str().contains("width=\"0.0\""));
    }
}
