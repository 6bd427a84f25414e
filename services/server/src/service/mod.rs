//! The application services: what people and clients may do, called by the
//! API's routes and the dashboards' pages alike, so that the two cannot
//! disagree. Handlers only translate HTTP to these calls and back.

pub mod attrition;
pub mod audit;
pub mod disclosure;
pub mod experiments;
pub mod exports;
pub mod inventory;
pub mod notices;
pub mod plan;
pub mod privacy;
pub mod privacy_save;
pub mod purge;
pub mod purposes;
pub mod reconsent;
pub mod results;
pub mod segments;
pub mod subjects;
pub mod tokens;

use pilotgate_store::StoreError;

/// Why an action could not be done.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A value the caller gave breaks a rule (HTTP 422): `field: reason`.
    #[error("{0}")]
    Unprocessable(String),
    /// The store refused or failed (its own mapping to statuses applies).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something failed that the caller cannot mend (logged where it happened).
    #[error("an internal error occurred; it has been logged")]
    Internal,
}

impl ServiceError {
    /// An internal failure, logged here with its cause.
    pub fn internal(cause: impl std::fmt::Display) -> ServiceError {
        tracing::error!(%cause, "internal failure");
        ServiceError::Internal
    }

    /// `field: reason`, as every 422 names the field first.
    pub fn invalid(field: &str, reason: impl std::fmt::Display) -> ServiceError {
        ServiceError::Unprocessable(format!("{field}: {reason}"))
    }
}
