//! The HTTP routes, one module per resource.

pub mod audit;
pub mod consents;
pub mod experiments;
pub mod health;
pub mod legal_basis_map;
pub mod purposes;
pub mod subjects;
