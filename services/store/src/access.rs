//! What is held about a person, by pseudonym (GDPR Art. 15 access): every
//! assignment with its legal proof, how many events each pilot holds (counts
//! only), the erasure, and the pseudonyms linked to one of the person's
//! (see `links.rs`). The ledger itself is read by `consents.rs`.

use chrono::{DateTime, Utc};
use pilotgate_domain::time::from_micros;
use serde::Serialize;
use sqlx::Row;

use crate::assignments::{Assignment, assignment_from_row};
use crate::core::Core;
use crate::db::numbered;
use crate::error::{StoreError, corrupt};
use crate::links::linked_pseudonyms;

/// How many events one pseudonym has in one pilot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventCount {
    pub experiment_key: String,
    pub subject: String,
    pub events: u64,
}

/// The erasure of one pseudonym, as the `erasures` table keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasureRecord {
    pub subject: String,
    pub key_version: u32,
    pub erased_at: DateTime<Utc>,
    pub deleted_assignments: u64,
    pub deleted_events: u64,
    /// The audit entry that recorded it.
    pub audit_id: Option<i64>,
}

impl Core {
    /// Every assignment of any of `subjects` (one person's pseudonyms), with
    /// its proof, oldest first. Assignments are keyed by pilot, so each
    /// pilot's key is tried with the pseudonyms.
    pub async fn assignments_of_subjects(
        &self,
        subjects: &[String],
    ) -> Result<Vec<Assignment>, StoreError> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT * FROM assignments WHERE experiment_key IN (SELECT key FROM experiments) \
             AND subject IN ({}) ORDER BY assigned_at, experiment_key, subject",
            numbered(1, subjects.len())
        );
        let mut query = sqlx::query(&sql);
        for subject in subjects {
            query = query.bind(subject);
        }
        let rows = query.fetch_all(&self.reader).await?;
        rows.iter().map(assignment_from_row).collect()
    }

    /// The segment attributes stored with the assignments of `subjects`
    /// (pilot key, pseudonym, `name=value;…`), for those that have any.
    pub async fn segment_attributes_of_subjects(
        &self,
        subjects: &[String],
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT experiment_key, subject, segments FROM assignments \
             WHERE experiment_key IN (SELECT key FROM experiments) \
             AND subject IN ({}) AND segments IS NOT NULL",
            numbered(1, subjects.len())
        );
        let mut query = sqlx::query(&sql);
        for subject in subjects {
            query = query.bind(subject);
        }
        let rows = query.fetch_all(&self.reader).await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("experiment_key")?,
                    row.try_get("subject")?,
                    row.try_get("segments")?,
                ))
            })
            .collect()
    }

    /// How many events each of `subjects` has per pilot (pilots without one
    /// are left out), by pilot key. Events are stored under their
    /// assignment's pseudonym, so only the pilots the pseudonyms are
    /// assigned in are scanned.
    pub async fn event_counts_of_subjects(
        &self,
        subjects: &[String],
    ) -> Result<Vec<EventCount>, StoreError> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let n = subjects.len();
        let sql = format!(
            "SELECT experiment_key, subject, COUNT(*) AS events FROM events \
             WHERE subject IN ({}) AND experiment_key IN \
             (SELECT experiment_key FROM assignments WHERE experiment_key IN (SELECT key FROM experiments) AND subject IN ({})) \
             GROUP BY experiment_key, subject ORDER BY experiment_key, subject",
            numbered(1, n),
            numbered(n + 1, n)
        );
        let mut query = sqlx::query(&sql);
        for _ in 0..2 {
            for subject in subjects {
                query = query.bind(subject);
            }
        }
        let rows = query.fetch_all(&self.reader).await?;
        rows.iter()
            .map(|row| {
                Ok(EventCount {
                    experiment_key: row.try_get("experiment_key")?,
                    subject: row.try_get("subject")?,
                    events: u64::try_from(row.try_get::<i64, _>("events")?)
                        .map_err(|_| corrupt("events count"))?,
                })
            })
            .collect()
    }

    /// The erasures of any of `subjects`, oldest first.
    pub async fn erasures_of_subjects(
        &self,
        subjects: &[String],
    ) -> Result<Vec<ErasureRecord>, StoreError> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT subject, key_version, requested_at, executed_at, deleted_assignments, deleted_events, audit_id \
             FROM erasures WHERE subject IN ({}) ORDER BY id",
            numbered(1, subjects.len())
        );
        let mut query = sqlx::query(&sql);
        for subject in subjects {
            query = query.bind(subject);
        }
        let rows = query.fetch_all(&self.reader).await?;
        let count = |row: &sqlx::any::AnyRow, column: &'static str| -> Result<u64, StoreError> {
            u64::try_from(row.try_get::<i64, _>(column)?).map_err(|_| corrupt(column))
        };
        rows.iter()
            .map(|row| {
                let requested: i64 = row.try_get("requested_at")?;
                let executed: Option<i64> = row.try_get("executed_at")?;
                Ok(ErasureRecord {
                    subject: row.try_get("subject")?,
                    key_version: u32::try_from(row.try_get::<i64, _>("key_version")?)
                        .map_err(|_| corrupt("erasures.key_version"))?,
                    erased_at: from_micros(executed.unwrap_or(requested)),
                    deleted_assignments: count(row, "deleted_assignments")?,
                    deleted_events: count(row, "deleted_events")?,
                    audit_id: row.try_get("audit_id")?,
                })
            })
            .collect()
    }

    /// `subject` (made with key `key_version`) and every pseudonym linked to
    /// it, directly or through others, with their key versions: the person
    /// as far as the links know (`subject` first).
    pub async fn person_of(
        &self,
        subject: &str,
        key_version: u32,
    ) -> Result<Vec<(String, u32)>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        linked_pseudonyms(&mut conn, subject, key_version).await
    }
}
