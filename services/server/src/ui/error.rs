//! `UiError`: what a page answers when it cannot show itself. One mapping,
//! as `ApiError` has for the API: no session sends people to sign in; every
//! other failure is the error page with the status the API would answer
//! (an outage is 503, never "no such experiment" or zero users), in the
//! signed-in person's frame when there is one.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use pilotgate_dashboards::{Chrome, ErrorPage, urls};
use pilotgate_store::StoreError;

use super::html;
use crate::service::ServiceError;

/// Why a page is not shown.
#[derive(Debug)]
pub enum UiError {
    /// No valid session: a redirect to the sign-in form.
    SignIn,
    /// The error page.
    Page {
        status: StatusCode,
        message: String,
        /// The signed-in person's frame, when known (`Session::fail`).
        chrome: Option<Box<Chrome>>,
    },
}

impl UiError {
    /// The error page with `status` and a sentence for people.
    pub fn page(status: StatusCode, message: impl Into<String>) -> UiError {
        UiError::Page {
            status,
            message: message.into(),
            chrome: None,
        }
    }

    /// The same error, shown in `chrome`.
    pub fn in_frame(self, chrome: Chrome) -> UiError {
        match self {
            UiError::Page {
                status, message, ..
            } => UiError::Page {
                status,
                message,
                chrome: Some(Box::new(chrome)),
            },
            sign_in => sign_in,
        }
    }
}

impl std::fmt::Display for UiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UiError::SignIn => f.write_str("sign in first"),
            UiError::Page {
                status, message, ..
            } => write!(f, "{status}: {message}"),
        }
    }
}

impl ResponseError for UiError {
    fn status_code(&self) -> StatusCode {
        match self {
            UiError::SignIn => StatusCode::SEE_OTHER,
            UiError::Page { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            UiError::SignIn => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, urls::SIGN_IN))
                .finish(),
            UiError::Page {
                status,
                message,
                chrome,
            } => {
                let chrome = chrome
                    .as_deref()
                    .cloned()
                    .unwrap_or_else(|| Chrome::anonymous("Error", ""));
                let page = ErrorPage {
                    chrome: Chrome {
                        title: "Error".to_owned(),
                        ..chrome
                    },
                    status: status.as_u16(),
                    message: message.clone(),
                };
                html(*status, &page)
            }
        }
    }
}

impl From<StoreError> for UiError {
    fn from(error: StoreError) -> UiError {
        match error {
            StoreError::Unavailable(source) => {
                tracing::warn!(error = %source, "database unavailable");
                UiError::page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database is not available; try again shortly.",
                )
            }
            StoreError::NotFound(message) => UiError::page(StatusCode::NOT_FOUND, message),
            StoreError::Conflict(message) => UiError::page(StatusCode::CONFLICT, message),
            StoreError::Forbidden(message) => UiError::page(StatusCode::FORBIDDEN, message),
            other => {
                tracing::error!(error = %other, "store failure");
                UiError::page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong; it has been logged.",
                )
            }
        }
    }
}

impl From<ServiceError> for UiError {
    fn from(error: ServiceError) -> UiError {
        match error {
            ServiceError::Unprocessable(message) => {
                UiError::page(StatusCode::UNPROCESSABLE_ENTITY, message)
            }
            ServiceError::Store(error) => error.into(),
            ServiceError::Internal => UiError::page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong; it has been logged.",
            ),
        }
    }
}
