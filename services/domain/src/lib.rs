//! Pure rules of pilotgate: roles, API tokens, the audit chain and (later)
//! purposes, legal bases, eligibility, pseudonyms and bucketing. No IO here.
#![forbid(unsafe_code)]

pub mod actor;
pub mod audit;
pub mod pseudonym;
pub mod role;
pub mod time;
pub mod token;

pub use actor::Actor;
pub use role::Role;
