//! Linear scales, padded domains and "nice" axis ticks for the charts.

/// Maps a domain of data values linearly onto a range of pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LinearScale {
    domain: (f64, f64),
    range: (f64, f64),
}

impl LinearScale {
    /// A scale from `domain` (low, high) onto `range` (start, end). The range
    /// may run backwards, as a y axis does.
    pub(crate) fn new(domain: (f64, f64), range: (f64, f64)) -> Self {
        Self { domain, range }
    }

    /// The pixel position of `value`. A degenerate domain maps everything to
    /// the middle of the range.
    pub(crate) fn map(&self, value: f64) -> f64 {
        let (low, high) = self.domain;
        let (start, end) = self.range;
        let span = high - low;
        if span.abs() < f64::EPSILON || !span.is_finite() {
            return (start + end) / 2.0;
        }
        start + (value - low) / span * (end - start)
    }

    /// The data values at both ends of the domain.
    pub(crate) fn domain(&self) -> (f64, f64) {
        self.domain
    }
}

/// The smallest interval holding every finite value of `values` and of
/// `always`, widened by a margin of 8% on each side. A single value gets a
/// margin of its own size (or 1% when it is zero). `None` when no value is
/// finite.
pub(crate) fn padded_domain(
    values: impl IntoIterator<Item = f64>,
    always: &[f64],
) -> Option<(f64, f64)> {
    let mut low = f64::INFINITY;
    let mut high = f64::NEG_INFINITY;
    for value in values.into_iter().chain(always.iter().copied()) {
        if value.is_finite() {
            low = low.min(value);
            high = high.max(value);
        }
    }
    if low > high {
        return None;
    }
    let span = high - low;
    let margin = if span > 0.0 {
        span * 0.08
    } else if low != 0.0 {
        low.abs() * 0.5
    } else {
        0.01
    };
    Some((low - margin, high + margin))
}

/// Round tick values inside `domain`, at most about `count` of them, spaced by
/// 1, 2 or 5 times a power of ten. Also returns that spacing.
pub(crate) fn nice_ticks(domain: (f64, f64), count: u32) -> (Vec<f64>, f64) {
    let (low, high) = domain;
    let span = high - low;
    if !span.is_finite() || span <= 0.0 || count == 0 {
        return (Vec::new(), 0.0);
    }
    let raw_step = span / f64::from(count);
    let power = 10f64.powf(raw_step.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * power)
        .find(|candidate| *candidate >= raw_step)
        .unwrap_or(10.0 * power);
    let first = (low / step).ceil() as i64;
    let last = (high / step).floor() as i64;
    let ticks = (first..=last)
        .take(64)
        .map(|i| {
            let tick = i as f64 * step;
            // Snap values like 1e-17 back to zero so labels read "0%".
            if tick.abs() < step * 1e-9 { 0.0 } else { tick }
        })
        .collect();
    (ticks, step)
}

/// A tick label for a share, with as many decimals as the tick spacing
/// needs: `0.02` as `+2%`, `-0.005` as `−0.5%`.
pub(crate) fn percent_tick(value: f64, step: f64) -> String {
    let decimals = if step > 0.0 {
        (-(step * 100.0).log10().floor()).max(0.0) as usize
    } else {
        0
    };
    let magnitude = format!("{:.decimals$}%", (value * 100.0).abs());
    if value > 0.0 {
        format!("+{magnitude}")
    } else if value < 0.0 {
        format!("\u{2212}{magnitude}")
    } else {
        "0%".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scale_maps_ends_to_ends_and_survives_a_point_domain() {
        let scale = LinearScale::new((0.0, 10.0), (100.0, 0.0));
        assert_eq!(scale.map(0.0), 100.0);
        assert_eq!(scale.map(10.0), 0.0);
        assert_eq!(scale.map(5.0), 50.0);
        let point = LinearScale::new((3.0, 3.0), (0.0, 200.0));
        assert_eq!(point.map(3.0), 100.0);
    }

    #[test]
    fn padded_domain_skips_non_finite_values() {
        assert_eq!(padded_domain([f64::NAN, f64::INFINITY], &[]), None);
        let (low, high) = padded_domain([0.02, f64::NAN, 0.05], &[0.0]).unwrap();
        assert!(low < 0.0 && high > 0.05);
        let (low, high) = padded_domain([0.0], &[]).unwrap();
        assert!(low < 0.0 && high > 0.0);
    }

    #[test]
    fn ticks_are_round_and_inside_the_domain() {
        let (ticks, step) = nice_ticks((-0.013, 0.061), 5);
        assert!((step - 0.02).abs() < 1e-12);
        assert_eq!(ticks.len(), 4);
        assert!(ticks.contains(&0.0));
        assert!(nice_ticks((1.0, 1.0), 5).0.is_empty());
        assert!(nice_ticks((f64::NAN, 1.0), 5).0.is_empty());
    }

    #[test]
    fn percent_ticks_carry_signs_and_enough_decimals() {
        assert_eq!(percent_tick(0.02, 0.02), "+2%");
        assert_eq!(percent_tick(-0.005, 0.005), "\u{2212}0.5%");
        assert_eq!(percent_tick(0.0, 0.01), "0%");
    }
}
