//! Links between the pages, with experiment keys percent-encoded so any key
//! stays one path segment.

/// `text` percent-encoded for use as one URL path segment or query value:
/// everything but ASCII letters, digits and `-._~` is encoded.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The experiments list.
pub const EXPERIMENTS: &str = "/ui/experiments";
/// The consent overview.
pub const CONSENTS: &str = "/ui/consents";
/// The audit log.
pub const AUDIT: &str = "/ui/audit";
/// The sign-in form's target.
pub const SIGN_IN: &str = "/ui/sign-in";
/// The sign-out form's target.
pub const SIGN_OUT: &str = "/ui/sign-out";

/// The results page of an experiment.
pub fn results(key: &str) -> String {
    format!("{EXPERIMENTS}/{}", encode_component(key))
}

/// The compliance view of an experiment.
pub fn compliance(key: &str) -> String {
    format!("{}/compliance", results(key))
}

/// The eligibility report of an experiment, as CSV.
pub fn compliance_csv(key: &str) -> String {
    format!("{}/compliance.csv", results(key))
}

/// The approval form's target.
pub fn approve(key: &str) -> String {
    format!("{}/approve", results(key))
}

/// The denial form's target.
pub fn deny(key: &str) -> String {
    format!("{}/deny", results(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_one_path_segment() {
        assert_eq!(
            results("checkout-cta_v2"),
            "/ui/experiments/checkout-cta_v2"
        );
        assert_eq!(
            compliance("a/b c?"),
            "/ui/experiments/a%2Fb%20c%3F/compliance"
        );
        assert_eq!(encode_component("é"), "%C3%A9");
    }
}
