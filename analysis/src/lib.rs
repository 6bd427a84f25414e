//! Statistics of pilotgate: per-variant statistics, tests and decisions, and
//! the export format they read. Knows nothing of HTTP or SQL; the server hands
//! it data and gets numbers back.
#![forbid(unsafe_code)]

pub mod attrition;
pub mod batches;
pub mod csv_scan;
pub mod decision;
pub mod disclosure;
pub mod export;
pub mod input;
pub mod pipeline;
pub mod plan;
pub mod power;
pub mod prefilter;
pub mod report;
pub mod stats;
pub mod tally;
