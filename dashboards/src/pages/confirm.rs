//! The second page of a lifecycle action (submit, start, stop): it says what
//! the action does and asks for the click that does it, so no action is one
//! accidental click away and none needs JavaScript.

use askama::Template;

use crate::layout::Chrome;

/// "Start this pilot?" with one form that does it.
#[derive(Debug, Clone, Template)]
#[template(path = "pages/confirm.html")]
pub struct ConfirmPage {
    pub chrome: Chrome,
    pub experiment_name: String,
    /// What happens, in a sentence or two.
    pub explanation: String,
    /// The design version the page showed; the action is refused (409) if
    /// the design changed since.
    pub design_version: i64,
    /// Where the form posts.
    pub action: String,
    /// The button's text, e.g. "Start the pilot".
    pub button: String,
    /// Whether the action cannot be undone (the button is red).
    pub irreversible: bool,
    /// Where "Cancel" goes.
    pub back_href: String,
}
