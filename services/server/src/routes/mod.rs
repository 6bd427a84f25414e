//! The HTTP routes, one module per resource.

pub mod assignments;
pub mod audit;
pub mod consents;
pub mod eligibility;
pub mod events;
pub mod experiments;
pub mod exports;
pub mod health;
pub mod inventory;
pub mod legal_basis_map;
pub mod notices;
pub mod privacy;
pub mod purposes;
pub mod reconsent;
pub mod results;
pub mod subjects;
