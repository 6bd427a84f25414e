//! sqlx storage of pilotgate, on SQLite (the default) or PostgreSQL, chosen at
//! runtime from the URL scheme. All SQL of the project lives in this crate.
//!
//! Queries are written once, in the subset of SQL both dialects share, with
//! `$1`-style placeholders, and run through sqlx's `Any` driver. Every instant
//! is stored as microseconds since the Unix epoch and every flag as 0/1, so
//! no dialect-specific type is needed. The few real dialect differences (how a
//! write transaction begins, how the audit chain is locked) live in `db.rs`.
#![forbid(unsafe_code)]

mod assignments;
mod audit;
mod cache;
mod checkpoint;
mod clock;
mod consents;
mod db;
mod erasure;
mod error;
mod events;
mod experiments;
mod group;
mod keys;
mod links;
mod purposes;
mod sessions;
mod tokens;

#[cfg(feature = "testing")]
pub mod testing;

pub use assignments::{AssignOutcome, Assignment, AssignmentTarget};
pub use audit::AuditQuery;
pub use consents::{Appended, BasisCount, LegalBasisMap, ReconsentNeed};
pub use db::{Dialect, Store};
pub use erasure::{Deleted, ErasedVersion, ErasureReceipt};
pub use error::StoreError;
pub use events::{DailySums, EventDraft, EventFate, StoredEvent};
pub use experiments::{ApprovalRecord, Experiment};
pub use keys::KeyState;
pub use sessions::StoredSession;
pub use tokens::{NewToken, StoredCredential, TokenRecord};
