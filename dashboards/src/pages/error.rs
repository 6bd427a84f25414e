//! The error page for 403 and 404 (and any other status the server maps).

use askama::Template;

use crate::layout::Chrome;

/// A status code with one clear sentence about it.
#[derive(Debug, Clone, Template)]
#[template(path = "pages/error.html")]
pub struct ErrorPage {
    /// The frame.
    pub chrome: Chrome,
    /// The HTTP status code, e.g. `404`.
    pub status: u16,
    /// What went wrong, in one sentence, without internals.
    pub message: String,
}

impl ErrorPage {
    /// The page for a role that may not see what it asked for.
    pub fn forbidden(chrome: Chrome) -> Self {
        Self {
            chrome,
            status: 403,
            message: "Your role may not see this page.".to_owned(),
        }
    }

    /// The page for something that does not exist.
    pub fn not_found(chrome: Chrome) -> Self {
        Self {
            chrome,
            status: 404,
            message: "There is nothing at this address.".to_owned(),
        }
    }

    /// The reason phrase of the status code.
    fn reason(&self) -> &'static str {
        match self.status {
            400 => "Bad request",
            401 => "Not signed in",
            403 => "Forbidden",
            404 => "Not found",
            409 => "Conflict",
            422 => "Not valid",
            500..=599 => "Something went wrong",
            _ => "Error",
        }
    }
}
