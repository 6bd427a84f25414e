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
/// The design form of a new pilot.
pub const NEW_EXPERIMENT: &str = "/ui/experiments/new";
/// The consent overview.
pub const CONSENTS: &str = "/ui/consents";
/// The audit log.
pub const AUDIT: &str = "/ui/audit";
/// The purpose registry.
pub const PURPOSES: &str = "/ui/purposes";
/// The sign-in form's target.
pub const SIGN_IN: &str = "/ui/sign-in";
/// The sign-out form's target.
pub const SIGN_OUT: &str = "/ui/sign-out";

/// The data inventory.
pub const INVENTORY: &str = "/ui/inventory";

/// The edit form's target of the inventory's category `key`.
pub fn inventory_item(key: &str) -> String {
    format!("{INVENTORY}/{}", encode_component(key))
}

/// The recipient registry (data contracts).
pub const RECIPIENTS: &str = "/ui/recipients";

/// The notices: versions, new notices, templates.
pub const NOTICES: &str = "/ui/notices";

/// The form that publishes a new version of a notice.
pub fn notice_versions(id: &str) -> String {
    format!("{NOTICES}/{}/versions", encode_component(id))
}

/// The notices page with the create form prefilled from template `key`.
pub fn notices_from_template(key: &str) -> String {
    format!("{NOTICES}?template={}", encode_component(key))
}

/// The re-consent report (per purpose and day) as CSV, linked from the consents page.
pub const CONSENTS_RECONSENT_CSV: &str = "/ui/consents/reconsent.csv";

/// The customer's consent form behind a privacy link (`token` is URL-safe base64).
pub fn privacy(token: &str) -> String {
    format!("/privacy/{}", encode_component(token))
}

/// The consent form in the language `lang`.
pub fn privacy_in(token: &str, lang: &str) -> String {
    format!("{}?lang={}", privacy(token), encode_component(lang))
}

/// A consent receipt of the form, as a file.
pub fn privacy_receipt(token: &str, receipt_id: &str) -> String {
    format!(
        "{}/receipts/{}",
        privacy(token),
        encode_component(receipt_id)
    )
}

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

/// The design form of an existing pilot.
pub fn edit(key: &str) -> String {
    format!("{}/edit", results(key))
}

/// A lifecycle action's page (GET: the confirmation; POST: the action):
/// `submit`, `start` or `stop`.
pub fn lifecycle(key: &str, action: &str) -> String {
    format!("{}/{action}", results(key))
}

/// The results of an experiment as CSV (`extension` `csv`) or JSON (`json`),
/// with the page's query.
pub fn results_file(key: &str, extension: &str) -> String {
    format!("{}/results.{extension}", results(key))
}

/// The scale-decision memo of an experiment.
pub fn memo(key: &str) -> String {
    format!("{}/memo", results(key))
}

/// A purpose's page (GET) and the target of its change form (POST).
pub fn purpose(key: &str) -> String {
    format!("{PURPOSES}/{}", encode_component(key))
}

/// The target of a purpose's assessment form.
pub fn purpose_assessments(key: &str) -> String {
    format!("{}/assessments", purpose(key))
}

/// The target of a purpose's retirement form.
pub fn purpose_retire(key: &str) -> String {
    format!("{}/retire", purpose(key))
}

/// The subject-rights desk: the lookup form (GET) and a person's page (POST
/// of the raw id; the id travels only in the body).
pub const SUBJECTS: &str = "/ui/subjects";
/// The desk's download of what is held about a person, as JSON (POST).
pub const SUBJECT_DOWNLOAD: &str = "/ui/subjects/download";
/// The desk's confirmation step before an erasure (POST).
pub const SUBJECT_ERASE: &str = "/ui/subjects/erase";
/// The desk's erasure itself, answered with its receipt (POST).
pub const SUBJECT_ERASURE: &str = "/ui/subjects/erasure";

/// The export request form's target of a pilot.
pub fn pilot_exports(key: &str) -> String {
    format!("{}/exports", results(key))
}

/// The governed exports' pages.
pub const EXPORTS: &str = "/ui/exports";

/// The download of approved export `id` (GET, an attachment).
pub fn export_download(id: &str) -> String {
    format!("{EXPORTS}/{}/download", encode_component(id))
}

/// The approval form's target of export request `id`.
pub fn export_approve(id: &str) -> String {
    format!("{EXPORTS}/{}/approve", encode_component(id))
}

/// The denial form's target of export request `id`.
pub fn export_deny(id: &str) -> String {
    format!("{EXPORTS}/{}/deny", encode_component(id))
}

/// The route patterns of the pages, as the server registers them and its
/// permission table lists them (`{key}` is one path segment).
pub mod patterns {
    pub use super::{AUDIT, CONSENTS, EXPERIMENTS, HOME, NEW_EXPERIMENT, SIGN_IN, SIGN_OUT};
    /// The service's root, which sends people to the dashboards.
    pub const ROOT: &str = "/";
    /// The design form of an existing pilot.
    pub const EDIT: &str = "/ui/experiments/{key}/edit";
    /// An experiment's results as CSV.
    pub const RESULTS_CSV: &str = "/ui/experiments/{key}/results.csv";
    /// An experiment's results as JSON.
    pub const RESULTS_JSON: &str = "/ui/experiments/{key}/results.json";
    /// An experiment's scale-decision memo.
    pub const MEMO: &str = "/ui/experiments/{key}/memo";
    /// Submitting a pilot for approval.
    pub const SUBMIT: &str = "/ui/experiments/{key}/submit";
    /// Starting an approved pilot.
    pub const START: &str = "/ui/experiments/{key}/start";
    /// Stopping a running pilot.
    pub const STOP: &str = "/ui/experiments/{key}/stop";
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
    pub use super::PURPOSES;
    /// A purpose's page and its change form's target.
    pub const PURPOSE: &str = "/ui/purposes/{key}";
    /// A purpose's assessment form's target.
    pub const PURPOSE_ASSESSMENTS: &str = "/ui/purposes/{key}/assessments";
    /// A purpose's retirement form's target.
    pub const PURPOSE_RETIRE: &str = "/ui/purposes/{key}/retire";
    pub use super::INVENTORY;
    pub use super::{SUBJECT_DOWNLOAD, SUBJECT_ERASE, SUBJECT_ERASURE, SUBJECTS};
    /// The edit form's target of one category of the inventory.
    pub const INVENTORY_ITEM: &str = "/ui/inventory/{key}";
    pub use super::NOTICES;
    pub use super::RECIPIENTS;
    /// Publishing a new version of a notice.
    pub const NOTICE_VERSIONS: &str = "/ui/notices/{id}/versions";
    /// The customer's consent form.
    pub const PRIVACY: &str = "/privacy/{token}";
    /// A consent receipt of the form, as a file.
    pub const PRIVACY_RECEIPT: &str = "/privacy/{token}/receipts/{receipt_id}";
    pub use super::CONSENTS_RECONSENT_CSV;
    /// A pilot's export request form's target.
    pub const PILOT_EXPORTS: &str = "/ui/experiments/{key}/exports";
    /// The download of an approved export.
    pub const EXPORT_DOWNLOAD: &str = "/ui/exports/{id}/download";
    /// The approval form's target of an export request.
    pub const EXPORT_APPROVE: &str = "/ui/exports/{id}/approve";
    /// The denial form's target of an export request.
    pub const EXPORT_DENY: &str = "/ui/exports/{id}/deny";
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
        assert_eq!(edit("k"), fill(patterns::EDIT));
        assert_eq!(results_file("k", "csv"), fill(patterns::RESULTS_CSV));
        assert_eq!(results_file("k", "json"), fill(patterns::RESULTS_JSON));
        assert_eq!(memo("k"), fill(patterns::MEMO));
        assert_eq!(lifecycle("k", "submit"), fill(patterns::SUBMIT));
        assert_eq!(lifecycle("k", "start"), fill(patterns::START));
        assert_eq!(lifecycle("k", "stop"), fill(patterns::STOP));
        assert_eq!(purpose("k"), fill(patterns::PURPOSE));
        assert_eq!(
            purpose_assessments("k"),
            fill(patterns::PURPOSE_ASSESSMENTS)
        );
        assert_eq!(purpose_retire("k"), fill(patterns::PURPOSE_RETIRE));
        assert_eq!(inventory_item("k"), fill(patterns::INVENTORY_ITEM));
        assert_eq!(
            notice_versions("n"),
            patterns::NOTICE_VERSIONS.replace("{id}", "n")
        );
        assert_eq!(privacy("t"), patterns::PRIVACY.replace("{token}", "t"));
        assert_eq!(
            privacy_receipt("t", "r"),
            patterns::PRIVACY_RECEIPT
                .replace("{token}", "t")
                .replace("{receipt_id}", "r")
        );
        assert_eq!(pilot_exports("k"), fill(patterns::PILOT_EXPORTS));
        let id = |pattern: &str| pattern.replace("{id}", "e");
        assert_eq!(export_download("e"), id(patterns::EXPORT_DOWNLOAD));
        assert_eq!(export_approve("e"), id(patterns::EXPORT_APPROVE));
        assert_eq!(export_deny("e"), id(patterns::EXPORT_DENY));
    }
}
