//! Statistics of pilotgate: per-variant statistics, tests and decisions.
//! Knows nothing of HTTP or SQL; the server hands it data and gets numbers back.
#![forbid(unsafe_code)]

pub mod power;
