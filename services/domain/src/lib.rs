//! Pure rules of pilotgate: roles, API tokens, the audit chain, purposes and
//! legal bases, the consent ledger, eligibility and pseudonyms. No IO here.
#![forbid(unsafe_code)]

pub mod actor;
pub mod assessment;
pub mod audit;
pub mod bucketing;
pub mod consent;
pub mod eligibility;
pub mod event_id;
pub mod experiment;
pub mod inventory;
pub mod ledger_reduction;
pub mod notice;
pub mod pseudonym;
pub mod purpose;
pub mod refusal;
pub mod role;
pub mod session;
pub mod text;
pub mod time;
pub mod token;

pub use actor::Actor;
pub use role::Role;
