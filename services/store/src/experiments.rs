//! Pilots: designs, their lifecycle and the approval record. State changes are
//! guarded by the state they start from, so two concurrent transitions cannot
//! both win.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use pilotgate_domain::Actor;
use pilotgate_domain::experiment::{
    Action, Design, ExperimentKey, Metric, State, Variant, transition,
};
use pilotgate_domain::purpose::PurposeKey;
use pilotgate_domain::time::{from_micros, to_micros};
use serde::Serialize;
use sqlx::any::AnyArguments;
use sqlx::any::AnyRow;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Row};

use crate::audit::AuditRecord;
use crate::error::{corrupt, is_unique_violation};
use crate::{Store, StoreError};

/// A compliance decision on one version of a design.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalRecord {
    /// `approved` or `denied`.
    pub decision: String,
    pub comment: String,
    pub decided_by: String,
    pub decided_at: DateTime<Utc>,
    pub design_version: i64,
}

/// A pilot as stored: its design, where it is in its life, and who decided what.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Experiment {
    pub design: Design,
    pub state: State,
    /// Starts at 1 and grows with every edit; an approval names the version it approved.
    pub design_version: i64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    /// Users needed per variant for the pre-registered MDE, when it can be computed.
    pub planned_sample_size: Option<i64>,
    /// The decision in force (none after an edit voided it).
    pub approval: Option<ApprovalRecord>,
}

impl Store {
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
             retention_days, design_version, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'draft', $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, 1, $19, $20, $20)",
        )
        .bind(design.key.as_str());
        let inserted = bind_design(query, design, planned_sample_size)
            .bind(&actor.name)
            .bind(now)
            .execute(&mut *tx)
            .await;
        match inserted {
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::Conflict(format!(
                    "a pilot with the key '{}' exists already",
                    design.key
                )));
            }
            other => other?,
        };
        insert_variants(&mut tx, design).await?;
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
        let before = self.experiment(key).await?.ok_or_else(|| not_found(key))?;
        transition(before.state, Action::Edit).map_err(|e| StoreError::Conflict(e.to_string()))?;
        let now = to_micros(self.now());
        let mut tx = self.begin_write().await?;
        let query = sqlx::query(
            "UPDATE experiments SET name = $1, hypothesis = $2, owner = $3, purpose = $4, state = 'draft', coverage = $5, seed = $6, \
             primary_event = $7, primary_kind = $8, guardrails = $9, mde = $10, alpha = $11, power = $12, baseline_rate = $13, \
             planned_sample_size = $14, attribution_window_hours = $15, data_categories = $16, retention_days = $17, \
             design_version = design_version + 1, updated_at = $18 \
             WHERE key = $19 AND state = $20 AND design_version = $21",
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
        let voided = sqlx::query(
            "UPDATE approvals SET voided_at = $1 WHERE experiment_key = $2 AND voided_at IS NULL",
        )
        .bind(now)
        .bind(key)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "experiment.update",
                target: format!("experiment:{key}"),
                details: serde_json::json!({
                    "before": before.design,
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

    /// Applies a lifecycle action other than an edit. Approve and deny record
    /// the decision with its comment; the caller has checked separation of duties.
    pub async fn transition_experiment(
        &self,
        key: &str,
        action: Action,
        comment: Option<&str>,
        actor: &Actor,
    ) -> Result<Experiment, StoreError> {
        let before = self.experiment(key).await?.ok_or_else(|| not_found(key))?;
        let after =
            transition(before.state, action).map_err(|e| StoreError::Conflict(e.to_string()))?;
        let now = to_micros(self.now());
        let mut tx = self.begin_write().await?;
        let timestamp_column = match action {
            Action::Start => ", started_at = $4",
            Action::Stop => ", stopped_at = $4",
            _ => ", updated_at = $4",
        };
        let sql = format!(
            "UPDATE experiments SET state = $1{timestamp_column} WHERE key = $2 AND state = $3"
        );
        let updated = sqlx::query(&sql)
            .bind(after.as_str())
            .bind(key)
            .bind(before.state.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!(
                "the pilot '{key}' changed state meanwhile; read it again"
            )));
        }
        if matches!(action, Action::Approve | Action::Deny) {
            sqlx::query(
                "INSERT INTO approvals (experiment_key, design_version, decision, comment, decided_by, decided_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(key)
            .bind(before.design_version)
            .bind(after.as_str())
            .bind(comment.unwrap_or_default())
            .bind(actor.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: match action {
                    Action::Submit => "experiment.submit",
                    Action::Approve => "experiment.approve",
                    Action::Deny => "experiment.deny",
                    Action::Start => "experiment.start",
                    Action::Stop => "experiment.stop",
                    Action::Edit => "experiment.update",
                },
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

    /// The pilot with `key`. A malformed key names no pilot (keys are checked
    /// when a pilot is created), and is not sent to the database: PostgreSQL
    /// refuses text with a NUL character.
    pub async fn experiment(&self, key: &str) -> Result<Option<Experiment>, StoreError> {
        if ExperimentKey::parse(key).is_err() {
            return Ok(None);
        }
        Ok(self.load_experiments(Some(key)).await?.pop())
    }

    /// Every pilot, newest first.
    pub async fn list_experiments(&self) -> Result<Vec<Experiment>, StoreError> {
        self.load_experiments(None).await
    }

    async fn load_experiments(&self, key: Option<&str>) -> Result<Vec<Experiment>, StoreError> {
        let filter = if key.is_some() {
            "WHERE key = $1"
        } else {
            "WHERE $1 IS NULL OR key = $1"
        };
        let rows = sqlx::query(&format!(
            "SELECT * FROM experiments {filter} ORDER BY created_at DESC, key"
        ))
        .bind(key)
        .fetch_all(&self.reader)
        .await?;
        let variant_rows = sqlx::query("SELECT experiment_key, variant_key, weight FROM experiment_variants WHERE $1 IS NULL OR experiment_key = $1 ORDER BY experiment_key, position")
        .bind(key)
        .fetch_all(&self.reader)
        .await?;
        let mut variants: HashMap<String, Vec<Variant>> = HashMap::new();
        for row in &variant_rows {
            variants
                .entry(row.try_get("experiment_key")?)
                .or_default()
                .push(Variant {
                    key: row.try_get("variant_key")?,
                    weight: row.try_get("weight")?,
                });
        }
        let approval_rows = sqlx::query(
            "SELECT experiment_key, decision, comment, decided_by, decided_at, design_version FROM approvals \
             WHERE voided_at IS NULL AND ($1 IS NULL OR experiment_key = $1) ORDER BY id",
        )
        .bind(key)
        .fetch_all(&self.reader)
        .await?;
        let mut approvals: HashMap<String, ApprovalRecord> = HashMap::new();
        for row in &approval_rows {
            approvals.insert(
                row.try_get("experiment_key")?,
                ApprovalRecord {
                    decision: row.try_get("decision")?,
                    comment: row.try_get("comment")?,
                    decided_by: row.try_get("decided_by")?,
                    decided_at: from_micros(row.try_get("decided_at")?),
                    design_version: row.try_get("design_version")?,
                },
            );
        }
        rows.iter()
            .map(|row| {
                let key: String = row.try_get("key")?;
                let variants = variants.remove(&key).unwrap_or_default();
                experiment_from_row(row, variants, approvals.remove(&key))
            })
            .collect()
    }
}

/// Binds the 17 design columns, in the order both the INSERT and the UPDATE name them:
/// name, hypothesis, owner, purpose, coverage, seed, primary event and kind,
/// guardrails, mde, alpha, power, baseline rate, planned sample size,
/// attribution window, data categories, retention days.
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
}

fn not_found(key: &str) -> StoreError {
    StoreError::NotFound(format!("no pilot has the key '{key}'"))
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

fn experiment_from_row(
    row: &AnyRow,
    variants: Vec<Variant>,
    approval: Option<ApprovalRecord>,
) -> Result<Experiment, StoreError> {
    let text =
        |column: &str| -> Result<String, StoreError> { Ok(row.try_get::<String, _>(column)?) };
    let guardrails: Vec<Metric> = serde_json::from_str(&text("guardrails")?)
        .map_err(|_| corrupt("experiments.guardrails"))?;
    let data_categories: Vec<String> = serde_json::from_str(&text("data_categories")?)
        .map_err(|_| corrupt("experiments.data_categories"))?;
    let design = Design {
        key: ExperimentKey::parse(&text("key")?).map_err(|_| corrupt("experiments.key"))?,
        name: text("name")?,
        hypothesis: text("hypothesis")?,
        owner: text("owner")?,
        purpose: PurposeKey::parse(&text("purpose")?)
            .map_err(|_| corrupt("experiments.purpose"))?,
        variants,
        coverage: row.try_get("coverage")?,
        seed: text("seed")?,
        primary_metric: Metric {
            event: text("primary_event")?,
            kind: text("primary_kind")?
                .parse()
                .map_err(|_| corrupt("experiments.primary_kind"))?,
        },
        guardrails,
        mde: row.try_get("mde")?,
        alpha: row.try_get("alpha")?,
        power: row.try_get("power")?,
        baseline_rate: row.try_get("baseline_rate")?,
        attribution_window_hours: row
            .try_get::<Option<i64>, _>("attribution_window_hours")?
            .map(|h| u32::try_from(h).map_err(|_| corrupt("experiments.attribution_window_hours")))
            .transpose()?,
        data_categories,
        retention_days: u32::try_from(row.try_get::<i64, _>("retention_days")?)
            .map_err(|_| corrupt("experiments.retention_days"))?,
    };
    Ok(Experiment {
        design,
        state: text("state")?
            .parse()
            .map_err(|_| corrupt("experiments.state"))?,
        design_version: row.try_get("design_version")?,
        created_by: text("created_by")?,
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
        started_at: row
            .try_get::<Option<i64>, _>("started_at")?
            .map(from_micros),
        stopped_at: row
            .try_get::<Option<i64>, _>("stopped_at")?
            .map(from_micros),
        planned_sample_size: row.try_get("planned_sample_size")?,
        approval,
    })
}
