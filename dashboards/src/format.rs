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
}
