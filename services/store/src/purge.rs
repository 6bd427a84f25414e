//! The retention purge of a pilot: once it has been stopped longer than its
//! retention period, the aggregates its results need go to
//! `result_summaries` and its raw assignments and events are deleted, in one
//! transaction with the audit entry, so an interrupted purge leaves the pilot
//! either untouched or wholly purged.

use chrono::{DateTime, Utc};
use pilotgate_domain::Actor;
use pilotgate_domain::time::{from_micros, to_micros};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::audit::AuditRecord;
use crate::core::Core;
use crate::error::{StoreError, corrupt};

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;

/// A stopped pilot past its retention period whose raw data is still stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeCandidate {
    pub key: String,
    pub stopped_at: DateTime<Utc>,
    pub retention_days: u32,
}

/// The raw rows of a pilot a purge deletes (or deleted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawCounts {
    pub assignments: u64,
    pub events: u64,
}

/// The aggregates kept for a purged pilot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSummary {
    pub purged_at: DateTime<Utc>,
    /// JSON written by the server's purge service.
    pub summary: String,
}

impl StoredSummary {
    /// The summary read as `T`.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, StoreError> {
        serde_json::from_str(&self.summary).map_err(|_| corrupt("result_summaries.summary"))
    }
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl Core {
    /// The stopped pilots whose `stopped_at + retention_days` is before
    /// `as_of` and that have not been purged yet, oldest stop first.
    pub async fn purge_candidates(
        &self,
        as_of: DateTime<Utc>,
    ) -> Result<Vec<PurgeCandidate>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT key, stopped_at, retention_days FROM experiments \
             WHERE stopped_at IS NOT NULL AND stopped_at + retention_days * {DAY_MICROS} < $1 \
             AND key NOT IN (SELECT experiment_key FROM result_summaries) \
             ORDER BY stopped_at, key"
        ))
        .bind(to_micros(as_of))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PurgeCandidate {
                    key: row.try_get("key")?,
                    stopped_at: from_micros(row.try_get("stopped_at")?),
                    retention_days: u32::try_from(row.try_get::<i64, _>("retention_days")?)
                        .unwrap_or(0),
                })
            })
            .collect()
    }

    /// How many assignments and events of the pilot are stored.
    pub async fn raw_counts(&self, experiment_key: &str) -> Result<RawCounts, StoreError> {
        let assignments: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM assignments WHERE experiment_key = $1")
                .bind(experiment_key)
                .fetch_one(&self.reader)
                .await?;
        let events: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE experiment_key = $1")
                .bind(experiment_key)
                .fetch_one(&self.reader)
                .await?;
        Ok(RawCounts {
            assignments: count(assignments),
            events: count(events),
        })
    }

    /// Purges the pilot in one transaction: stores `summary`, deletes its
    /// events and assignments and audits `experiment.purge` with the counts.
    /// `None` when the pilot was purged already (nothing changes).
    pub async fn purge_pilot(
        &self,
        experiment_key: &str,
        summary: &str,
        actor: &Actor,
        details: serde_json::Value,
    ) -> Result<Option<RawCounts>, StoreError> {
        let now = to_micros(self.now());
        let mut tx = self.begin_write().await?;
        let done: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM result_summaries WHERE experiment_key = $1")
                .bind(experiment_key)
                .fetch_one(&mut *tx)
                .await?;
        if done > 0 {
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO result_summaries (experiment_key, computed_at, summary) VALUES ($1, $2, $3)",
        )
        .bind(experiment_key)
        .bind(now)
        .bind(summary)
        .execute(&mut *tx)
        .await?;
        let events = sqlx::query("DELETE FROM events WHERE experiment_key = $1")
            .bind(experiment_key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let assignments = sqlx::query("DELETE FROM assignments WHERE experiment_key = $1")
            .bind(experiment_key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // The results' aggregates go with the raw rows (the kept summary
        // answers from now on).
        let mut aggregates = crate::db::AppendBatch::default();
        crate::aggregates::push_forget_pilot(&mut aggregates, self.dialect, experiment_key)?;
        aggregates.run_on(&mut tx).await?;
        let counts = RawCounts {
            assignments,
            events,
        };
        let mut details = details;
        if let Some(map) = details.as_object_mut() {
            map.insert(
                "deleted".to_owned(),
                serde_json::json!({ "assignments": assignments, "events": events }),
            );
        }
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "experiment.purge",
                target: format!("experiment:{experiment_key}"),
                details,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Some(counts))
    }

    /// The summary kept for a purged pilot, `None` while its raw data is stored.
    pub async fn result_summary(
        &self,
        experiment_key: &str,
    ) -> Result<Option<StoredSummary>, StoreError> {
        let row = sqlx::query(
            "SELECT computed_at, summary FROM result_summaries WHERE experiment_key = $1 \
             ORDER BY id LIMIT 1",
        )
        .bind(experiment_key)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| {
            Ok(StoredSummary {
                purged_at: from_micros(row.try_get("computed_at")?),
                summary: row.try_get("summary")?,
            })
        })
        .transpose()
    }

    /// Every purged pilot: its key and when it was purged, oldest first.
    pub async fn purged_pilots(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT experiment_key, computed_at FROM result_summaries ORDER BY computed_at, experiment_key",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("experiment_key")?,
                    from_micros(row.try_get("computed_at")?),
                ))
            })
            .collect()
    }
}

/// A subject of the ledger whose records still carry free text, with the
/// latest record per purpose and when its last record was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSubject {
    pub subject: String,
    pub last_recorded: DateTime<Utc>,
    pub latest: Vec<pilotgate_domain::ledger_reduction::LatestRecord>,
    /// Its records that still carry free text.
    pub records: u64,
}

impl Core {
    /// The subjects whose last record was made before `before` and whose
    /// records are not all reduced yet, with their latest record per purpose.
    pub async fn ledger_reduction_candidates(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<LedgerSubject>, StoreError> {
        use pilotgate_domain::ledger_reduction::{LatestRecord, REDUCED_METHOD};
        let rows = sqlx::query(
            "SELECT subject, MAX(recorded_at) AS last, \
               SUM(CASE WHEN source_method <> $2 OR proof_ref IS NOT NULL THEN 1 ELSE 0 END) AS open \
             FROM consent_records GROUP BY subject \
             HAVING MAX(recorded_at) < $1 AND MAX(collected_at) < $1 \
               AND SUM(CASE WHEN source_method <> $2 OR proof_ref IS NOT NULL THEN 1 ELSE 0 END) > 0 \
             ORDER BY subject",
        )
        .bind(to_micros(before))
        .bind(REDUCED_METHOD)
        .fetch_all(&self.reader)
        .await?;
        let mut subjects = Vec::with_capacity(rows.len());
        for row in &rows {
            let subject: String = row.try_get("subject")?;
            let latest = sqlx::query(
                "SELECT status, expires_at FROM consent_records c WHERE c.subject = $1 AND NOT EXISTS (\
                   SELECT 1 FROM consent_records d WHERE d.subject = c.subject AND d.purpose = c.purpose \
                   AND (d.effective_from > c.effective_from OR (d.effective_from = c.effective_from AND d.id > c.id)))",
            )
            .bind(&subject)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|r| {
                Ok(LatestRecord {
                    status: r
                        .try_get::<String, _>("status")?
                        .parse()
                        .map_err(|_| corrupt("consent_records.status"))?,
                    expires_at: r.try_get::<Option<i64>, _>("expires_at")?.map(from_micros),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
            subjects.push(LedgerSubject {
                subject,
                last_recorded: from_micros(row.try_get("last")?),
                latest,
                records: count(row.try_get("open")?),
            });
        }
        Ok(subjects)
    }

    /// Reduces every record of `subjects` in one transaction (`proof_ref`
    /// dropped, `source_method` made `reduced`), audited as `ledger.reduce`
    /// with the counts only. Returns how many records changed.
    pub async fn reduce_ledger(
        &self,
        subjects: &[String],
        actor: &Actor,
        details: serde_json::Value,
    ) -> Result<u64, StoreError> {
        use pilotgate_domain::ledger_reduction::REDUCED_METHOD;
        if subjects.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let mut records = 0;
        for chunk in subjects.chunks(100) {
            let sql = format!(
                "UPDATE consent_records SET proof_ref = NULL, source_method = $1 \
                 WHERE subject IN ({}) AND (source_method <> $1 OR proof_ref IS NOT NULL)",
                crate::db::numbered(2, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(REDUCED_METHOD);
            for subject in chunk {
                query = query.bind(subject);
            }
            records += query.execute(&mut *tx).await?.rows_affected();
        }
        let mut details = details;
        if let Some(map) = details.as_object_mut() {
            map.insert("subjects".to_owned(), serde_json::json!(subjects.len()));
            map.insert("records".to_owned(), serde_json::json!(records));
        }
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "ledger.reduce",
                target: "ledger".to_owned(),
                details,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(records)
    }
}
