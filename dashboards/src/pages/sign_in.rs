//! The sign-in page: one password-type field for an API token.

use askama::Template;

use crate::layout::Chrome;
use crate::urls;

/// The sign-in form. The token typed in is never echoed back.
#[derive(Debug, Clone, Template)]
#[template(path = "pages/sign_in.html")]
pub struct SignInPage {
    /// The frame: no user, no navigation, and the form's CSRF token.
    pub chrome: Chrome,
    /// Why the last attempt failed, e.g. "That token is not valid.".
    pub error: Option<String>,
}

impl SignInPage {
    /// Where the form posts to.
    fn action(&self) -> &'static str {
        urls::SIGN_IN
    }
}
