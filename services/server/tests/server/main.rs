//! Every story of the server in one test binary: the HTTP API (on SQLite
//! and PostgreSQL), the dashboards over HTTP and in headless Chromium, the
//! `pilotgate` binary as a process (commands, the demo, crashes, imports),
//! hostile input and fuzzing. One binary links the server once instead of
//! once per story file; `support` holds what they share (`TestApp`).

#[macro_use]
mod support;

mod analyze_cli;
mod api;
mod assign_api;
mod attrition_api;
mod audit_page;
mod browser;
mod cli;
mod compliance_journey;
mod consents_api;
mod demo;
mod desk;
mod experiments_api;
mod export;
mod exports_api;
mod exports_browser;
mod exports_pages;
mod faults;
mod fuzz_import;
mod hostile;
mod https;
mod import;
mod inventory;
mod inventory_pages;
mod journey;
mod no_secrets;
mod notices_api;
mod notices_page;
mod postgres_tls;
mod privacy_form;
mod privacy_links;
mod purge;
mod purposes_api;
mod reconsent;
mod record_checks;
mod resilience;
mod results_api;
mod rules_in_force;
mod segments_api;
mod small_cells;
mod trust;
mod ui;
mod workspace;
