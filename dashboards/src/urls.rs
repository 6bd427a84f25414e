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

/// The dashboards' home: it sends people on to the experiments list.
pub const HOME: &str = "/ui";
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

/// The route patterns of the pages, as the server registers them and its
/// permission table lists them (`{key}` is one path segment).
pub mod patterns {
    pub use super::{AUDIT, CONSENTS, EXPERIMENTS, HOME, SIGN_IN, SIGN_OUT};
    /// An experiment's results page.
    pub const RESULTS: &str = "/ui/experiments/{key}";
    /// An experiment's compliance view.
    pub const COMPLIANCE: &str = "/ui/experiments/{key}/compliance";
    /// An experiment's eligibility report as CSV.
    pub const COMPLIANCE_CSV: &str = "/ui/experiments/{key}/compliance.csv";
    /// The approval form's target.
    pub const APPROVE: &str = "/ui/experiments/{key}/approve";
    /// The denial form's target.
    pub const DENY: &str = "/ui/experiments/{key}/deny";
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

    #[test]
    fn every_link_fits_its_pattern() {
        let fill = |pattern: &str| pattern.replace("{key}", "k");
        assert_eq!(results("k"), fill(patterns::RESULTS));
        assert_eq!(compliance("k"), fill(patterns::COMPLIANCE));
        assert_eq!(compliance_csv("k"), fill(patterns::COMPLIANCE_CSV));
        assert_eq!(approve("k"), fill(patterns::APPROVE));
        assert_eq!(deny("k"), fill(patterns::DENY));
    }
}
