//! Pilots' lifecycle actions that the API and the pages share.

use pilotgate_domain::Actor;
use pilotgate_domain::experiment::Action;
use pilotgate_domain::text::PlainText;
use pilotgate_store::{Experiment, Store};

use super::ServiceError;

/// The longest comment of a decision, in characters.
pub const MAX_COMMENT: usize = 2000;

/// Approves or denies version `design_version` of pilot `key` with the
/// reviewer's `comment` (plain text of several lines). The store checks, in
/// one transaction, that the pilot is submitted, still at that version, and
/// that `actor` is none of the people who created, edited or submitted it.
pub async fn decide(
    store: &Store,
    actor: &Actor,
    key: &str,
    action: Action,
    design_version: i64,
    comment: &str,
) -> Result<Experiment, ServiceError> {
    let comment = PlainText::lines(comment, MAX_COMMENT)
        .map_err(|e| ServiceError::invalid("comment", format!("give the reasoning: {e}")))?;
    Ok(store
        .decide_experiment(key, action, design_version, comment.as_str(), actor)
        .await?)
}
