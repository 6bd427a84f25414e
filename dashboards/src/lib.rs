//! Server-rendered pages of pilotgate: askama templates, page view models and
//! SVG charts. Pages get precomputed view models, never rows or data frames.
//!
//! The server builds one view model per request (for example a
//! [`ResultsPage`]), calls [`askama::Template::render`] on it and wraps the
//! string in an HTTP response. Nothing in this crate does IO.
#![forbid(unsafe_code)]

pub mod charts;
mod csv;
pub mod format;
mod layout;
mod pages;
pub mod urls;
mod view;

pub use askama::Template;
pub use csv::{eligibility_csv, reconsent_csv};
pub use layout::{Chrome, NavLink, SignedInUser};
pub use pages::*;
pub use view::{
    Badge, Count, CountMatrix, CountRow, Estimate, ExperimentState, SUPPRESSED, Tone, Withheld,
};
