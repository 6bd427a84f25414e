//! The one error type of the HTTP API: each variant maps to one status and a
//! JSON body `{error, message}`. A 500 never carries internal details.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use pilotgate_store::StoreError;
use serde::Serialize;

/// The JSON body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `forbidden`.
    pub error: &'static str,
    /// One clear sentence for people.
    pub message: String,
}

/// Everything a handler can answer instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("this route does not accept that method")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Unprocessable(String),
    /// Too many failed token checks from this client; the seconds to wait.
    #[error("too many failed sign-ins from this address; try again in {0} s")]
    TooManyRequests(u64),
    #[error("the database is unavailable; try again shortly")]
    Unavailable,
    #[error("an internal error occurred; it has been logged")]
    Internal,
    /// What the request names existed but is no longer valid (an expired privacy link).
    #[error("{0}")]
    Gone(String),
}

impl ApiError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::TooManyRequests(_) => "too_many_requests",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal => "internal",
            ApiError::Gone(_) => "gone",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Gone(_) => StatusCode::GONE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized(_)) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        match self {
            ApiError::Unavailable => {
                response.insert_header(("Retry-After", "1"));
            }
            ApiError::TooManyRequests(seconds) => {
                response.insert_header(("Retry-After", seconds.to_string()));
            }
            _ => {}
        }
        response.json(ErrorBody {
            error: self.code(),
            message: self.to_string(),
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(source) => {
                tracing::warn!(error = %source, "database unavailable");
                ApiError::Unavailable
            }
            StoreError::Conflict(message) => ApiError::Conflict(message),
            StoreError::Forbidden(message) => ApiError::Forbidden(message),
            StoreError::NotFound(message) => ApiError::NotFound(message),
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::Internal
            }
        }
    }
}

impl From<crate::service::ServiceError> for ApiError {
    fn from(error: crate::service::ServiceError) -> Self {
        use crate::service::ServiceError;
        match error {
            ServiceError::Unprocessable(message) => ApiError::Unprocessable(message),
            ServiceError::Store(error) => error.into(),
            ServiceError::Internal => ApiError::Internal,
        }
    }
}

/// Builds the JSON error handlers for actix's extractors, so that a malformed
/// body, query or path is answered like any other error.
pub mod extractors {
    use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
    use actix_web::{HttpRequest, web};

    use super::ApiError;

    /// Body, query and path configuration with JSON errors; bodies over `max_body_bytes` are 413.
    pub fn configure(
        max_body_bytes: usize,
    ) -> (web::JsonConfig, web::QueryConfig, web::PathConfig) {
        let json = web::JsonConfig::default()
            .limit(max_body_bytes)
            .error_handler(move |error, _req: &HttpRequest| {
                json_error(error, max_body_bytes).into()
            });
        let query = web::QueryConfig::default().error_handler(|error: QueryPayloadError, _req| {
            ApiError::BadRequest(format!(
                "the query string is invalid: {}",
                redact_values(&error.to_string())
            ))
            .into()
        });
        let path = web::PathConfig::default().error_handler(|error: PathError, _req| {
            ApiError::NotFound(format!(
                "no such resource: {}",
                redact_values(&error.to_string())
            ))
            .into()
        });
        (json, query, path)
    }

    fn json_error(error: JsonPayloadError, max_body_bytes: usize) -> ApiError {
        match error {
            JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
                ApiError::PayloadTooLarge(format!(
                    "the body is larger than the limit of {max_body_bytes} bytes"
                ))
            }
            JsonPayloadError::ContentType => ApiError::BadRequest(
                "the body must be JSON, sent with Content-Type: application/json".to_owned(),
            ),
            JsonPayloadError::Deserialize(error) if error.is_data() => {
                ApiError::Unprocessable(format!(
                    "the body does not fit the schema: {}",
                    redact_values(&error.to_string())
                ))
            }
            JsonPayloadError::Deserialize(error) => ApiError::BadRequest(format!(
                "the body is not valid JSON: {}",
                redact_values(&error.to_string())
            )),
            other => ApiError::BadRequest(format!(
                "the body could not be read: {}",
                redact_values(&other.to_string())
            )),
        }
    }

    /// Replaces quoted or back-ticked values in a parser message with `…`, so
    /// that an error never echoes what the client sent (it may be a raw user id).
    /// Field names that serde quotes with back-ticks are kept when they look like identifiers.
    pub fn redact_values(message: &str) -> String {
        let mut out = String::with_capacity(message.len());
        let mut chars = message.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' || c == '`' {
                let mut inner = String::new();
                for next in chars.by_ref() {
                    if next == c {
                        break;
                    }
                    inner.push(next);
                }
                // A field name starts with a letter: `4711` is a value (a numeric user id).
                let is_identifier = inner.len() <= 64
                    && inner
                        .chars()
                        .next()
                        .is_some_and(|ch| ch.is_ascii_lowercase() || ch == '_')
                    && inner
                        .chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
                if c == '`' && is_identifier {
                    out.push('`');
                    out.push_str(&inner);
                    out.push('`');
                } else {
                    out.push('…');
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::redact_values;

        #[test]
        fn values_are_redacted_and_field_names_kept() {
            assert_eq!(
                redact_values("invalid type: string \"alice@example.com\", expected u64 at line 1"),
                "invalid type: string …, expected u64 at line 1"
            );
            assert_eq!(
                redact_values("missing field `user_id`"),
                "missing field `user_id`"
            );
            assert_eq!(
                redact_values("unknown variant `Alice Smith`, expected `a`"),
                "unknown variant …, expected `a`"
            );
            assert_eq!(
                redact_values("invalid type: integer `4711`, expected a string"),
                "invalid type: integer …, expected a string"
            );
        }
    }
}
