//! The experiments list: every pilot with its state, approval and progress.

use askama::Template;

use super::Progress;
use crate::format::thousands;
use crate::layout::Chrome;
use crate::urls;
use crate::view::{Badge, Count, ExperimentState};

/// All experiments the signed-in user may see.
#[derive(Debug, Clone, Template)]
#[template(path = "pages/experiments.html")]
pub struct ExperimentsPage {
    /// The frame.
    pub chrome: Chrome,
    /// One row per experiment, in the order to show.
    pub rows: Vec<ExperimentRow>,
    /// The page before this one, if any (`?page=N`).
    pub previous_page: Option<u32>,
    /// The page after this one, if more experiments follow.
    pub next_page: Option<u32>,
    /// Whether this role may open each pilot's page (its results).
    pub can_open_results: bool,
    /// Whether this role may open each pilot's compliance view.
    pub can_open_compliance: bool,
    /// Whether this role may design a pilot (a link to the form).
    pub can_create: bool,
}

/// One experiment in the list.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentRow {
    /// The experiment's key, e.g. `checkout-cta`.
    pub key: String,
    /// Its human name.
    pub name: String,
    /// Its lifecycle state.
    pub state: ExperimentState,
    /// The purpose it processes data for, e.g. `personalize.content.profiling`.
    pub purpose: String,
    /// The owner's display name.
    pub owner: String,
    /// Who approved it and when, or `None` when not approved.
    pub approval: Option<Approval>,
    /// Users assigned so far.
    pub users_so_far: Count,
    /// The planned sample size, when known.
    pub users_planned: Option<u64>,
}

/// Who approved an experiment, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The approver's display name.
    pub by: String,
    /// When, already formatted for people, e.g. `2025-03-04 10:12 UTC`.
    pub at: String,
}

/// A row as the template shows it.
#[derive(Debug)]
struct RowView<'a> {
    row: &'a ExperimentRow,
    badge: Badge,
    results_href: String,
    compliance_href: String,
    users: String,
    progress: Option<Progress>,
}

impl ExperimentsPage {
    fn new_href(&self) -> &'static str {
        urls::NEW_EXPERIMENT
    }

    /// The table's caption, e.g. "3 experiments".
    fn caption(&self) -> String {
        match self.rows.len() {
            1 => "1 experiment".to_owned(),
            n => format!("{} experiments", thousands(n as u64)),
        }
    }

    /// The rows with their links, badges and progress worked out.
    fn row_views(&self) -> Vec<RowView<'_>> {
        self.rows
            .iter()
            .map(|row| RowView {
                row,
                badge: row.state.badge(),
                results_href: urls::results(&row.key),
                compliance_href: urls::compliance(&row.key),
                users: row.users_so_far.text(),
                progress: row
                    .users_so_far
                    .value()
                    .and_then(|users| Progress::new(users, row.users_planned)),
            })
            .collect()
    }
}
