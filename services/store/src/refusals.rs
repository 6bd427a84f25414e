//! Refusal counters: an ineligible assignment call or a refused event leaves
//! only a count per pilot, stage, reason and day, never anything about the
//! subject. They are appended to (upserts into a table no cache holds).
//! Refused assignment calls are also counted under the variant the subject
//! would have had, for the check that refusals do not depend on it.

use chrono::{DateTime, Utc};
use pilotgate_domain::pseudonym::Pseudonym;
use pilotgate_domain::refusal::{Refusal, Stage};

use crate::assignments::AssignmentTarget;
use crate::core::Core;
use crate::db::{AppendBatch, AppendTable, Dialect, Value};
use crate::error::StoreError;

impl Core {
    /// Counts one refused call; nothing about the subject is kept.
    pub async fn count_refusal(
        &self,
        experiment_key: &str,
        stage: Stage,
        refusal: Refusal,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut statements = AppendBatch::default();
        push_refusal_count(
            &mut statements,
            self.dialect,
            experiment_key,
            stage,
            refusal,
            at,
            1,
        )?;
        self.begin_append().await?.commit_after(statements).await
    }

    /// Counts one refused assignment call under the variant `subject` would
    /// have been bucketed into (nothing when it would be out of traffic);
    /// nothing about the subject is kept.
    pub async fn count_refused_bucket(
        &self,
        target: &AssignmentTarget,
        subject: &Pseudonym,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some(variant) = target.bucket(subject) else {
            return Ok(());
        };
        let mut statements = AppendBatch::default();
        statements.push(
            AppendTable::RefusalBuckets,
            format!(
                "INSERT INTO refusal_buckets (experiment_key, variant, day, refused) VALUES ({}) \
                 ON CONFLICT (experiment_key, variant, day) DO UPDATE SET refused = refusal_buckets.refused + excluded.refused",
                self.dialect.placeholders(1, 4)
            ),
            vec![
                Value::Text(target.key.clone()),
                Value::Text(variant.key.clone()),
                Value::Text(day_of(at)),
                Value::Integer(Some(1)),
            ],
        )?;
        self.begin_append().await?.commit_after(statements).await
    }

    /// Refused assignment calls of a pilot per would-be variant, over all days.
    pub async fn refusal_buckets(
        &self,
        experiment_key: &str,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT variant, CAST(SUM(refused) AS BIGINT) FROM refusal_buckets WHERE experiment_key = $1 \
             GROUP BY variant ORDER BY variant",
        )
        .bind(experiment_key)
        .fetch_all(&self.reader)
        .await?)
    }

    /// Refusal counts of a pilot: `(stage, reason, day, count)`.
    pub async fn refusal_counts(
        &self,
        experiment_key: &str,
    ) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT stage, reason, day, count FROM refusal_counters WHERE experiment_key = $1 \
             ORDER BY day, stage, reason",
        )
        .bind(experiment_key)
        .fetch_all(&self.reader)
        .await?)
    }
}

/// The UTC day of `at`, as the counters key it.
fn day_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// Adds `by` to the counter of `(experiment, stage, refusal)` for the day of
/// `at`, in `statements`.
pub(crate) fn push_refusal_count(
    statements: &mut AppendBatch,
    dialect: Dialect,
    experiment_key: &str,
    stage: Stage,
    refusal: Refusal,
    at: DateTime<Utc>,
    by: i64,
) -> Result<(), StoreError> {
    statements.push(
        AppendTable::RefusalCounters,
        format!(
            "INSERT INTO refusal_counters (experiment_key, stage, reason, day, count) VALUES ({}) \
             ON CONFLICT (experiment_key, stage, reason, day) DO UPDATE SET count = refusal_counters.count + excluded.count",
            dialect.placeholders(1, 5)
        ),
        vec![
            Value::Text(experiment_key.to_owned()),
            Value::Text(stage.as_str().to_owned()),
            Value::Text(refusal.as_str().to_owned()),
            Value::Text(day_of(at)),
            Value::Integer(Some(by)),
        ],
    )
}
