//! The fold of `outcome_queue` into `subject_outcomes` and `outcome_cells`:
//! five statements that run in one transaction under the subject lock and
//! read nothing back. Per pilot, subject and metric queued:
//! - binary: the cells count the subjects with no outcome yet (their
//!   outcome goes from 0 to 1), then those subjects get the outcome 1;
//! - sum: the subject's outcome grows by `d`, the sum of its queued values,
//!   then its cell's sums grow by `d` and by `d·(2y − d)`, `y` being the
//!   outcome after (`y² − (y − d)²`, without reading the outcome before);
//!
//! then the queue is emptied. A subject withdrawn or erased is folded
//! before it leaves (`leaving.rs`), and reads of outcomes fold first, so a
//! queued change is never lost nor counted for a subject no longer kept.
//! `pilotgate serve` folds every [`FOLD_INTERVAL`] besides.

use std::time::Duration;

use super::DAY_MICROS;
use crate::core::Core;
use crate::db::{AppendBatch, AppendTable};
use crate::error::StoreError;

/// How often `pilotgate serve` folds the queue: each fold writes a
/// subject's outcome once for all its events since the last one.
pub const FOLD_INTERVAL: Duration = Duration::from_millis(500);

/// The cells' upsert of the queued subjects `k` (`experiment_key, subject,
/// metric`, and `d`) with the sums `sums`, joined as `join` says.
fn cells_sql(queued: &str, join: &str, sums: &str) -> String {
    let d = DAY_MICROS;
    format!(
        "INSERT INTO outcome_cells (experiment_key, metric, variant, day, basis, segments, total, total_squares) \
         SELECT a.experiment_key, k.metric, a.variant, a.assigned_at / {d}, a.basis, COALESCE(a.segments, ''), {sums} \
         FROM ({queued}) AS k JOIN assignments a ON a.experiment_key = k.experiment_key AND a.subject = k.subject \
         {join} a.withdrawn_at IS NULL \
         GROUP BY a.experiment_key, k.metric, a.variant, a.assigned_at / {d}, a.basis, COALESCE(a.segments, '') \
         ON CONFLICT (experiment_key, metric, variant, day, basis, segments) DO UPDATE SET \
         total = outcome_cells.total + excluded.total, total_squares = outcome_cells.total_squares + excluded.total_squares"
    )
}

const BINARY_QUEUED: &str = "SELECT DISTINCT experiment_key, subject, metric FROM outcome_queue WHERE metric LIKE 'binary:%'";
const SUM_QUEUED: &str = "SELECT experiment_key, subject, metric, SUM(d) AS d FROM outcome_queue \
     WHERE metric LIKE 'sum:%' GROUP BY experiment_key, subject, metric";

/// Only subjects still assigned get an outcome (an erased one has none).
const ASSIGNED: &str = "JOIN assignments a ON a.experiment_key = k.experiment_key AND a.subject = k.subject WHERE 1 = 1";

/// Adds the fold's statements to `batch` (none takes a parameter).
pub(crate) fn push_fold(batch: &mut AppendBatch) -> Result<(), StoreError> {
    let outcome = "LEFT JOIN subject_outcomes o ON o.experiment_key = k.experiment_key \
                   AND o.subject = k.subject AND o.metric = k.metric WHERE";
    batch.push(
        AppendTable::OutcomeCells,
        cells_sql(
            BINARY_QUEUED,
            &outcome.replace("WHERE", "WHERE o.y IS NULL AND"),
            "COUNT(*), COUNT(*)",
        ),
        Vec::new(),
    )?;
    batch.push(
        AppendTable::SubjectOutcomes,
        format!(
            "INSERT INTO subject_outcomes (experiment_key, subject, metric, y) \
             SELECT k.experiment_key, k.subject, k.metric, 1.0 FROM ({BINARY_QUEUED}) AS k {ASSIGNED} \
             ON CONFLICT (experiment_key, subject, metric) DO NOTHING"
        ),
        Vec::new(),
    )?;
    batch.push(
        AppendTable::SubjectOutcomes,
        format!(
            "INSERT INTO subject_outcomes (experiment_key, subject, metric, y) \
             SELECT k.experiment_key, k.subject, k.metric, k.d FROM ({SUM_QUEUED}) AS k {ASSIGNED} \
             ON CONFLICT (experiment_key, subject, metric) DO UPDATE SET y = subject_outcomes.y + excluded.y"
        ),
        Vec::new(),
    )?;
    batch.push(
        AppendTable::OutcomeCells,
        cells_sql(
            SUM_QUEUED,
            &outcome.replace("LEFT JOIN", "JOIN"),
            "SUM(k.d), SUM(k.d * (2 * o.y - k.d))",
        ),
        Vec::new(),
    )?;
    batch.push(
        AppendTable::OutcomeQueue,
        "DELETE FROM outcome_queue".to_owned(),
        Vec::new(),
    )
}

impl Core {
    /// Folds the queued outcome changes now, in a transaction of their own
    /// (nothing when none are queued).
    pub async fn fold_outcomes(&self) -> Result<(), StoreError> {
        let queued: i64 = sqlx::query_scalar(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM outcome_queue) THEN 1 ELSE 0 END",
        )
        .fetch_one(&self.reader)
        .await?;
        if queued == 0 {
            return Ok(());
        }
        let tx = self.begin_subject_append().await?;
        let mut batch = AppendBatch::default();
        push_fold(&mut batch)?;
        tx.commit_after(batch).await
    }
}
