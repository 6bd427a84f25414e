//! Server-rendered pages of pilotgate: askama templates, page view models and
//! SVG charts. Pages get precomputed view models, never rows or data frames.
#![forbid(unsafe_code)]

pub mod format;
