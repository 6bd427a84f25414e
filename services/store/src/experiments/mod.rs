//! Pilots: designs, their lifecycle, who contributed to each design version,
//! and the approval record. Reads live here; every change (`lifecycle`)
//! reads the pilot's state inside its own transaction with the row locked,
//! so two concurrent changes cannot both win and a decision always sees the
//! version it names.

mod lifecycle;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use pilotgate_domain::experiment::{Design, ExperimentKey, Metric, State, Variant};
use pilotgate_domain::purpose::PurposeKey;
use pilotgate_domain::time::from_micros;
use serde::Serialize;
use sqlx::any::AnyArguments;
use sqlx::any::AnyRow;
use sqlx::query::Query;
use sqlx::{Any, Row};

use crate::core::Core;
use crate::error::StoreError;
use crate::error::corrupt;

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
    /// Why a change of its purpose sent the pilot back to draft; cleared when
    /// it is submitted again.
    pub returned: Option<ReturnedToDraft>,
}

/// A pilot sent back to draft by a change of its purpose.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReturnedToDraft {
    pub at: DateTime<Utc>,
    pub reason: String,
}
impl Core {
    /// The names of everyone who created, edited or submitted the pilot's design.
    pub async fn design_contributors(&self, key: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT person FROM design_contributors WHERE experiment_key = $1 ORDER BY person",
        )
        .bind(key)
        .fetch_all(&self.reader)
        .await?)
    }
    /// The pilot with `key`. A malformed key names no pilot (keys are checked
    /// when a pilot is created), and is not sent to the database: PostgreSQL
    /// refuses text with a NUL character.
    pub async fn experiment(&self, key: &str) -> Result<Option<Experiment>, StoreError> {
        if ExperimentKey::parse(key).is_err() {
            return Ok(None);
        }
        Ok(self.load_experiments(Some(&[key.to_owned()])).await?.pop())
    }

    /// Every pilot, newest first.
    pub async fn list_experiments(&self) -> Result<Vec<Experiment>, StoreError> {
        self.load_experiments(None).await
    }

    /// A page of pilots, newest first: at most `limit` from position
    /// `offset`, and whether more follow.
    pub async fn experiments_page(
        &self,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<Experiment>, bool), StoreError> {
        let mut keys: Vec<String> = sqlx::query_scalar(
            "SELECT key FROM experiments ORDER BY created_at DESC, key LIMIT $1 OFFSET $2",
        )
        .bind(limit + 1)
        .bind(offset.max(0))
        .fetch_all(&self.reader)
        .await?;
        let more = keys.len() as i64 > limit;
        keys.truncate(usize::try_from(limit).unwrap_or(0));
        if keys.is_empty() {
            return Ok((Vec::new(), more));
        }
        let mut page = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            page.extend(self.load_experiments(Some(chunk)).await?);
        }
        Ok((page, more))
    }

    /// The pilots of `keys` (every pilot when `None`), newest first.
    async fn load_experiments(
        &self,
        keys: Option<&[String]>,
    ) -> Result<Vec<Experiment>, StoreError> {
        let (experiment_filter, variant_filter, approval_filter) = match keys {
            Some(keys) => {
                let list = crate::db::numbered(1, keys.len());
                (
                    format!("WHERE key IN ({list})"),
                    format!("WHERE experiment_key IN ({list})"),
                    format!("AND experiment_key IN ({list})"),
                )
            }
            None => (String::new(), String::new(), String::new()),
        };
        let no_keys = Vec::new();
        let keys = keys.unwrap_or(&no_keys);
        let experiments_sql =
            format!("SELECT * FROM experiments {experiment_filter} ORDER BY created_at DESC, key");
        let variants_sql = format!(
            "SELECT experiment_key, variant_key, weight FROM experiment_variants {variant_filter} ORDER BY experiment_key, position"
        );
        let approvals_sql = format!(
            "SELECT experiment_key, decision, comment, decided_by, decided_at, design_version FROM approvals \
             WHERE voided_at IS NULL {approval_filter} ORDER BY id"
        );
        let rows = bind_all(sqlx::query(&experiments_sql), keys)
            .fetch_all(&self.reader)
            .await?;
        let variant_rows = bind_all(sqlx::query(&variants_sql), keys)
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
        let approval_rows = bind_all(sqlx::query(&approvals_sql), keys)
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

/// `query` with each of `values` bound, in order.
pub(super) fn bind_all<'q>(
    mut query: Query<'q, Any, AnyArguments<'q>>,
    values: &'q [String],
) -> Query<'q, Any, AnyArguments<'q>> {
    for value in values {
        query = query.bind(value.as_str());
    }
    query
}

pub(super) fn not_found(key: &str) -> StoreError {
    StoreError::NotFound(format!("no pilot has the key '{key}'"))
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
        segments: serde_json::from_str(&text("segments")?)
            .map_err(|_| corrupt("experiments.segments"))?,
        segment_correction: text("segment_correction")?
            .parse()
            .map_err(|_| corrupt("experiments.segment_correction"))?,
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
        returned: match (
            row.try_get::<Option<i64>, _>("returned_at")?,
            row.try_get::<Option<String>, _>("returned_reason")?,
        ) {
            (Some(at), Some(reason)) => Some(ReturnedToDraft {
                at: from_micros(at),
                reason,
            }),
            _ => None,
        },
    })
}
