//! A pilot's changes: create, edit, move through its lifecycle, decide.
//! Each reads the pilot's state inside its own write transaction with the
//! row locked, records who contributed to the design version, and writes
//! its audit entry in the same transaction.

use pilotgate_domain::Actor;
use pilotgate_domain::experiment::{
    Action, Design, ExperimentKey, State, check_reviewed_version, check_reviewer, transition,
};
use pilotgate_domain::time::to_micros;
use serde::Serialize;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Row};

use super::{Experiment, not_found};
use crate::audit::AuditRecord;
use crate::core::Core;
use crate::error::StoreError;
use crate::error::{corrupt, unless_taken};

impl Core {
    /// Stores a new pilot in `draft`; a key in use is a conflict.
    pub async fn create_experiment(
        &self,
        design: &Design,
        planned_sample_size: Option<i64>,
        actor: &Actor,
    ) -> Result<Experiment, StoreError> {
        let now = to_micros(self.now());
        let mut tx = self.begin_write().await?;
        let query = sqlx::query(
            "INSERT INTO experiments (key, name, hypothesis, owner, purpose, state, coverage, seed, primary_event, primary_kind, \
             guardrails, mde, alpha, power, baseline_rate, planned_sample_size, attribution_window_hours, data_categories, \
             retention_days, segments, segment_correction, design_version, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'draft', $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, 1, $21, $22, $22)",
        )
        .bind(design.key.as_str());
        let inserted = bind_design(query, design, planned_sample_size)
            .bind(&actor.name)
            .bind(now)
            .execute(&mut *tx)
            .await;
        unless_taken(inserted, || {
            format!("a pilot with the key '{}' exists already", design.key)
        })?;
        insert_variants(&mut tx, design).await?;
        record_contribution(&mut tx, design.key.as_str(), 1, actor, "create", now).await?;
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "experiment.create",
                target: format!("experiment:{}", design.key),
                details: serde_json::json!({ "design": design, "design_version": 1, "state": "draft" }),
            },
        )
        .await?;
        tx.commit().await?;
        self.experiment(design.key.as_str())
            .await?
            .ok_or_else(|| corrupt("experiments.key"))
    }

    /// Replaces the design of a pilot that is not running or stopped; it returns
    /// to `draft` and any approval is void.
    pub async fn update_experiment(
        &self,
        design: &Design,
        planned_sample_size: Option<i64>,
        actor: &Actor,
    ) -> Result<Experiment, StoreError> {
        let key = design.key.as_str();
        let mut tx = self.begin_write().await?;
        let before = self.locked_experiment(&mut tx, key).await?;
        transition(before.state, Action::Edit).map_err(|e| StoreError::Conflict(e.to_string()))?;
        // Committed and locked: nobody else changes it before this transaction ends.
        let before_design = self
            .experiment(key)
            .await?
            .ok_or_else(|| not_found(key))?
            .design;
        let now = to_micros(self.now());
        let query = sqlx::query(
            "UPDATE experiments SET name = $1, hypothesis = $2, owner = $3, purpose = $4, state = 'draft', coverage = $5, seed = $6, \
             primary_event = $7, primary_kind = $8, guardrails = $9, mde = $10, alpha = $11, power = $12, baseline_rate = $13, \
             planned_sample_size = $14, attribution_window_hours = $15, data_categories = $16, retention_days = $17, \
             segments = $18, segment_correction = $19, design_version = design_version + 1, updated_at = $20 \
             WHERE key = $21 AND state = $22 AND design_version = $23",
        );
        let updated = bind_design(query, design, planned_sample_size)
            .bind(now)
            .bind(key)
            .bind(before.state.as_str())
            .bind(before.design_version)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!(
                "the pilot '{key}' changed while it was being edited; read it again"
            )));
        }
        sqlx::query("DELETE FROM experiment_variants WHERE experiment_key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await?;
        insert_variants(&mut tx, design).await?;
        record_contribution(&mut tx, key, before.design_version + 1, actor, "edit", now).await?;
        let voided = void_approvals(&mut tx, key, now).await?;
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "experiment.update",
                target: format!("experiment:{key}"),
                details: serde_json::json!({
                    "before": before_design,
                    "after": design,
                    "from": before.state,
                    "to": "draft",
                    "design_version": before.design_version + 1,
                    "approval_voided": voided > 0,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        self.experiment(key).await?.ok_or_else(|| not_found(key))
    }

    /// Applies `submit`, `start` or `stop`. The state is read and changed in
    /// one transaction, so two concurrent transitions cannot both win; a
    /// submission records its submitter among the design's contributors.
    pub async fn transition_experiment(
        &self,
        key: &str,
        action: Action,
        actor: &Actor,
    ) -> Result<Experiment, StoreError> {
        self.transition_experiment_at(key, action, None, actor)
            .await
    }

    /// [`Core::transition_experiment`] of the design version `seen` (the one
    /// a page showed): `Conflict` when the design changed since, checked in
    /// the same transaction as the change.
    pub async fn transition_experiment_at(
        &self,
        key: &str,
        action: Action,
        seen: Option<i64>,
        actor: &Actor,
    ) -> Result<Experiment, StoreError> {
        debug_assert!(!matches!(
            action,
            Action::Approve | Action::Deny | Action::Edit
        ));
        let mut tx = self.begin_write().await?;
        let before = self.locked_experiment(&mut tx, key).await?;
        if let Some(seen) = seen
            && seen != before.design_version
        {
            return Err(StoreError::Conflict(format!(
                "the design changed since it was shown (version {} is current, version {seen} was shown): read it again",
                before.design_version
            )));
        }
        let after =
            transition(before.state, action).map_err(|e| StoreError::Conflict(e.to_string()))?;
        let now = to_micros(self.now());
        set_state(&mut tx, key, before.state, after, action, now).await?;
        if action == Action::Submit {
            record_contribution(&mut tx, key, before.design_version, actor, "submit", now).await?;
        }
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: action_name(action),
                target: format!("experiment:{key}"),
                details: serde_json::json!({
                    "from": before.state,
                    "to": after,
                    "design_version": before.design_version,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        self.experiment(key).await?.ok_or_else(|| not_found(key))
    }

    /// Approves or denies version `reviewed_version` of a pilot's design, with
    /// the reviewer's comment. Inside one transaction: the pilot must be
    /// submitted (else `Conflict`), still at the version reviewed (else
    /// `Conflict`: the design changed), and the reviewer none of the people
    /// who created, edited or submitted it (else `Forbidden`, and the refusal
    /// is audited in a transaction of its own).
    pub async fn decide_experiment(
        &self,
        key: &str,
        action: Action,
        reviewed_version: i64,
        comment: &str,
        actor: &Actor,
    ) -> Result<Experiment, StoreError> {
        debug_assert!(matches!(action, Action::Approve | Action::Deny));
        let mut tx = self.begin_write().await?;
        let before = self.locked_experiment(&mut tx, key).await?;
        let after =
            transition(before.state, action).map_err(|e| StoreError::Conflict(e.to_string()))?;
        check_reviewed_version(reviewed_version, before.design_version)
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
        let contributors: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT person FROM design_contributors WHERE experiment_key = $1 ORDER BY person",
        )
        .bind(key)
        .fetch_all(&mut *tx)
        .await?;
        if let Err(refusal) = check_reviewer(actor, &contributors) {
            drop(tx);
            self.record_audit(
                actor,
                "experiment.decision_refused",
                format!("experiment:{key}"),
                serde_json::json!({
                    "attempted": action.as_str(),
                    "design_version": before.design_version,
                    "reason": refusal.to_string(),
                }),
            )
            .await?;
            return Err(StoreError::Forbidden(refusal.to_string()));
        }
        let now = to_micros(self.now());
        set_state(&mut tx, key, before.state, after, action, now).await?;
        sqlx::query(
            "INSERT INTO approvals (experiment_key, design_version, decision, comment, decided_by, decided_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(key)
        .bind(before.design_version)
        .bind(after.as_str())
        .bind(comment)
        .bind(actor.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: action_name(action),
                target: format!("experiment:{key}"),
                details: serde_json::json!({
                    "from": before.state,
                    "to": after,
                    "design_version": before.design_version,
                    "comment": comment,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        self.experiment(key).await?.ok_or_else(|| not_found(key))
    }

    /// Sends each pilot of `keys` that is submitted or approved back to draft
    /// with `why` (a rule it was designed under changed), voiding its
    /// approval; one `experiment.returned_to_draft` audit entry per pilot, in
    /// `tx`. The keys of the pilots sent back, sorted.
    pub(crate) async fn return_to_draft(
        &self,
        tx: &mut AnyConnection,
        keys: &[String],
        why: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut keys = keys.to_vec();
        keys.sort();
        keys.dedup();
        let mut returned = Vec::with_capacity(keys.len());
        for key in &keys {
            let row = sqlx::query(
                "UPDATE experiments SET state = 'draft', returned_at = $1, returned_reason = $2, updated_at = $1 \
                 WHERE key = $3 AND state IN ('submitted', 'approved') RETURNING design_version",
            )
            .bind(now)
            .bind(why)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else { continue };
            let version: i64 = row.try_get("design_version")?;
            let voided = void_approvals(tx, key, now).await?;
            self.append_audit(
                tx,
                AuditRecord {
                    actor,
                    action: "experiment.returned_to_draft",
                    target: format!("experiment:{key}"),
                    details: serde_json::json!({
                        "reason": why,
                        "design_version": version,
                        "approval_voided": voided > 0,
                    }),
                },
            )
            .await?;
            returned.push(key.clone());
        }
        Ok(returned)
    }

    /// The state and design version of pilot `key`, read inside `tx` with the
    /// row locked until it ends (PostgreSQL `FOR UPDATE`; SQLite's write
    /// transaction holds the database already).
    async fn locked_experiment(
        &self,
        tx: &mut AnyConnection,
        key: &str,
    ) -> Result<Locked, StoreError> {
        if ExperimentKey::parse(key).is_err() {
            return Err(not_found(key));
        }
        let lock = self.dialect.for_update();
        let row = sqlx::query(&format!(
            "SELECT state, design_version FROM experiments WHERE key = $1{lock}"
        ))
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| not_found(key))?;
        Ok(Locked {
            state: row
                .try_get::<String, _>("state")?
                .parse()
                .map_err(|_| corrupt("experiments.state"))?,
            design_version: row.try_get("design_version")?,
        })
    }
}

/// Binds the 19 design columns, in the order both the INSERT and the UPDATE name them:
/// name, hypothesis, owner, purpose, coverage, seed, primary event and kind,
/// guardrails, mde, alpha, power, baseline rate, planned sample size,
/// attribution window, data categories, retention days, segments and their
/// correction.
fn bind_design<'q>(
    query: Query<'q, Any, AnyArguments<'q>>,
    design: &'q Design,
    planned_sample_size: Option<i64>,
) -> Query<'q, Any, AnyArguments<'q>> {
    query
        .bind(&design.name)
        .bind(&design.hypothesis)
        .bind(&design.owner)
        .bind(design.purpose.as_str())
        .bind(design.coverage)
        .bind(&design.seed)
        .bind(&design.primary_metric.event)
        .bind(design.primary_metric.kind.as_str())
        .bind(json_text(&design.guardrails))
        .bind(design.mde)
        .bind(design.alpha)
        .bind(design.power)
        .bind(design.baseline_rate)
        .bind(planned_sample_size)
        .bind(design.attribution_window_hours.map(i64::from))
        .bind(json_text(&design.data_categories))
        .bind(i64::from(design.retention_days))
        .bind(json_text(&design.segments))
        .bind(design.segment_correction.as_str())
}

/// A pilot's state and design version, as read under its lock.
struct Locked {
    state: State,
    design_version: i64,
}

/// Moves pilot `key` from `from` to `to`, stamping the time the action sets.
async fn set_state(
    tx: &mut AnyConnection,
    key: &str,
    from: State,
    to: State,
    action: Action,
    now: i64,
) -> Result<(), StoreError> {
    let timestamp_column = match action {
        Action::Start => ", started_at = $4",
        Action::Stop => ", stopped_at = $4",
        // A submission answers the note of a purpose change, if any.
        Action::Submit => ", updated_at = $4, returned_at = NULL, returned_reason = NULL",
        _ => ", updated_at = $4",
    };
    let sql = format!(
        "UPDATE experiments SET state = $1{timestamp_column} WHERE key = $2 AND state = $3"
    );
    let updated = sqlx::query(&sql)
        .bind(to.as_str())
        .bind(key)
        .bind(from.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    if updated.rows_affected() != 1 {
        return Err(StoreError::Conflict(format!(
            "the pilot '{key}' changed state meanwhile; read it again"
        )));
    }
    Ok(())
}

/// Records that `actor` did `action` (create, edit or submit) to version `version` of pilot `key`.
async fn record_contribution(
    tx: &mut AnyConnection,
    key: &str,
    version: i64,
    actor: &Actor,
    action: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO design_contributors (experiment_key, design_version, person, action, at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (experiment_key, design_version, person, action) DO NOTHING",
    )
    .bind(key)
    .bind(version)
    .bind(&actor.name)
    .bind(action)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Submit => "experiment.submit",
        Action::Approve => "experiment.approve",
        Action::Deny => "experiment.deny",
        Action::Start => "experiment.start",
        Action::Stop => "experiment.stop",
        Action::Edit => "experiment.update",
    }
}

fn json_text<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

async fn insert_variants(tx: &mut AnyConnection, design: &Design) -> Result<(), StoreError> {
    for (position, variant) in design.variants.iter().enumerate() {
        sqlx::query("INSERT INTO experiment_variants (experiment_key, position, variant_key, weight) VALUES ($1, $2, $3, $4)")
            .bind(design.key.as_str())
            .bind(position as i64)
            .bind(&variant.key)
            .bind(variant.weight)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Voids the approval in force of pilot `key` at `now` (an edit, or a rule
/// it was designed under changed); how many were voided.
async fn void_approvals(tx: &mut AnyConnection, key: &str, now: i64) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE approvals SET voided_at = $1 WHERE experiment_key = $2 AND voided_at IS NULL",
    )
    .bind(now)
    .bind(key)
    .execute(&mut *tx)
    .await?
    .rows_affected())
}
