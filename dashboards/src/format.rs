//! Numbers formatted for people: thousands separators, percentages, and
//! intervals to three significant digits.

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `x` rounded to `digits` significant digits, without exponent notation.
pub fn significant(x: f64, digits: u32) -> String {
    if !x.is_finite() {
        return "n/a".to_owned();
    }
    if x == 0.0 {
        return "0".to_owned();
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (digits as i32 - 1 - magnitude).max(0) as usize;
    format!("{x:.decimals$}")
}

/// A share as a signed or plain percentage with three significant digits: `0.0342` as `3.42%`.
pub fn percent(share: f64) -> String {
    if !share.is_finite() {
        return "n/a".to_owned();
    }
    format!("{}%", significant(share * 100.0, 3))
}

/// A relative change with its sign: `0.034` as `+3.40%`, `-0.012` as `−1.20%`.
pub fn signed_percent(share: f64) -> String {
    if !share.is_finite() {
        return "n/a".to_owned();
    }
    let text = percent(share.abs());
    match share {
        s if s > 0.0 => format!("+{text}"),
        s if s < 0.0 => format!("\u{2212}{text}"),
        _ => text,
    }
}

/// A share that may be negative, with a true minus sign but no plus sign:
/// `0.0123` as `1.23%`, `-0.012` as `−1.20%`. Used for interval bounds.
pub fn bound_percent(share: f64) -> String {
    if share < 0.0 {
        signed_percent(share)
    } else {
        percent(share)
    }
}

/// An interval of shares in brackets: `[1.23%, 5.61%]`.
pub fn percent_interval(lower: f64, upper: f64) -> String {
    format!("[{}, {}]", bound_percent(lower), bound_percent(upper))
}

/// A number with three significant digits and its sign: `1.234` as `+1.23`,
/// `-0.5` as `−0.500`.
pub fn signed_significant(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".to_owned();
    }
    let text = significant(x.abs(), 3);
    match x {
        v if v > 0.0 => format!("+{text}"),
        v if v < 0.0 => format!("\u{2212}{text}"),
        _ => text,
    }
}

/// A number with three significant digits and a true minus sign but no plus
/// sign. Used for interval bounds.
pub fn bound_significant(x: f64) -> String {
    if x < 0.0 {
        signed_significant(x)
    } else {
        significant(x, 3)
    }
}

/// An interval of plain numbers in brackets: `[0.123, 4.56]`.
pub fn number_interval(lower: f64, upper: f64) -> String {
    format!(
        "[{}, {}]",
        bound_significant(lower),
        bound_significant(upper)
    )
}

/// A difference of two shares in percentage points: `0.0012` as `+0.120 pp`.
pub fn percentage_points(difference: f64) -> String {
    if !difference.is_finite() {
        return "n/a".to_owned();
    }
    format!("{} pp", signed_significant(difference * 100.0))
}

/// An interval of share differences in percentage points: `[0.120 pp, 0.560 pp]`.
pub fn points_interval(lower: f64, upper: f64) -> String {
    let bound = |x: f64| {
        if x.is_finite() {
            format!("{} pp", bound_significant(x * 100.0))
        } else {
            "n/a".to_owned()
        }
    };
    format!("[{}, {}]", bound(lower), bound(upper))
}

/// A p-value for people: `< 0.001` below one in a thousand, else three
/// significant digits.
pub fn p_value(p: f64) -> String {
    if !p.is_finite() {
        return "n/a".to_owned();
    }
    if p < 0.001 {
        "< 0.001".to_owned()
    } else {
        significant(p, 3)
    }
}

/// `x` with at most `max_decimals` decimals and no trailing zeros: `0.05` as
/// `0.05`, `95.00000001` as `95`. Used for design parameters such as alpha.
pub fn trimmed(x: f64, max_decimals: usize) -> String {
    if !x.is_finite() {
        return "n/a".to_owned();
    }
    let text = format!("{x:.max_decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn three_significant_digits() {
        assert_eq!(significant(0.034217, 3), "0.0342");
        assert_eq!(significant(123.456, 3), "123");
        assert_eq!(significant(-1.5, 3), "-1.50");
        assert_eq!(significant(f64::NAN, 3), "n/a");
    }

    #[test]
    fn percentages_carry_their_sign() {
        assert_eq!(percent(0.0342), "3.42%");
        assert_eq!(signed_percent(0.034), "+3.40%");
        assert_eq!(signed_percent(-0.012), "\u{2212}1.20%");
        assert_eq!(signed_percent(0.0), "0%");
    }

    #[test]
    fn intervals_use_a_true_minus_and_no_plus() {
        assert_eq!(percent_interval(0.0123, 0.0561), "[1.23%, 5.61%]");
        assert_eq!(percent_interval(-0.012, 0.05), "[\u{2212}1.20%, 5.00%]");
        assert_eq!(number_interval(-0.5, 1.234), "[\u{2212}0.500, 1.23]");
        assert_eq!(points_interval(0.0012, f64::NAN), "[0.120 pp, n/a]");
    }

    #[test]
    fn differences_and_p_values_read_well() {
        assert_eq!(percentage_points(0.0012), "+0.120 pp");
        assert_eq!(signed_significant(-0.5), "\u{2212}0.500");
        assert_eq!(p_value(0.0004), "< 0.001");
        assert_eq!(p_value(0.04123), "0.0412");
        assert_eq!(p_value(f64::INFINITY), "n/a");
    }

    #[test]
    fn trimmed_numbers_drop_trailing_zeros() {
        assert_eq!(trimmed(0.05, 4), "0.05");
        assert_eq!(trimmed((1.0 - 0.05) * 100.0, 1), "95");
        assert_eq!(trimmed(99.5, 1), "99.5");
        assert_eq!(trimmed(120.0, 0), "120");
    }
}
