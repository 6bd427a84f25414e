//! The pilotgate service: configuration, the actix-web application, its
//! routes, authentication and the command-line interface.
#![forbid(unsafe_code)]

pub mod anchor;
pub mod auth;
pub mod cli;
pub mod config;
pub mod consent_input;
pub mod demo;
pub mod error;
pub mod export;
pub mod import;
pub mod keys;
pub mod metrics;
pub mod network;
pub mod openapi;
pub mod purge_job;
pub mod receipts;
pub mod routes;
pub mod service;
pub mod signing;
pub mod startup;
pub mod telemetry;
pub mod throttle;
pub mod tls;
pub mod ui;
