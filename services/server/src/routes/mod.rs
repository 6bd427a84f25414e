//! The HTTP routes, one module per resource.

pub mod audit;
pub mod health;
