//! Erasure (GDPR Art. 17): a person's assignments and events go, under every
//! pseudonym the person has had (one per key version), the pseudonymized
//! ledger stays as proof of lawful past processing, and the person is blocked
//! from future assignment.

use chrono::{DateTime, Utc};
use pilotgate_domain::Actor;
use pilotgate_domain::time::{from_micros, to_micros};
use serde::Serialize;
use sqlx::Row;

use crate::audit::AuditRecord;
use crate::core::Core;
use crate::error::StoreError;
use crate::links::linked_pseudonyms;

/// What an erasure deleted, per table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deleted {
    pub assignments: u64,
    pub events: u64,
}

/// What one pseudonym of the person lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasedVersion {
    pub subject: String,
    pub key_version: u32,
    pub deleted: Deleted,
}

/// The receipt handed to compliance and written to the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasureReceipt {
    pub subject: String,
    pub erased_at: DateTime<Utc>,
    /// Totals over every pseudonym of the person.
    pub deleted: Deleted,
    /// Per pseudonym of the person (one per key version it was known under):
    /// the one asked for first, then those linked to it.
    pub versions: Vec<ErasedVersion>,
    pub audit_id: i64,
}

impl Core {
    /// Every erasure: the subject's pseudonym and when it was executed, oldest first.
    pub async fn erasures(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        let rows = sqlx::query("SELECT subject, requested_at FROM erasures ORDER BY id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("subject")?,
                    from_micros(row.try_get("requested_at")?),
                ))
            })
            .collect()
    }

    /// Erases the person known as `subject` (made with key `key_version`) in
    /// one transaction, under that pseudonym and every pseudonym linked to it
    /// (the same person under other key versions, see `links.rs`). A person
    /// whose every pseudonym was erased already is a conflict.
    pub async fn erase_subject(
        &self,
        subject: &str,
        key_version: u32,
        actor: &Actor,
    ) -> Result<ErasureReceipt, StoreError> {
        let now = to_micros(self.now());
        let mut tx = self.begin_subject_write().await?;
        let people = linked_pseudonyms(&mut tx, subject, key_version).await?;
        let mut versions = Vec::with_capacity(people.len());
        for (pseudonym, version) in &people {
            let registered = sqlx::query(
                "INSERT INTO erasures (subject, key_version, requested_at, executed_at, deleted_assignments, deleted_events) \
                 VALUES ($1, $2, $3, $3, 0, 0) ON CONFLICT (subject) DO NOTHING",
            )
            .bind(pseudonym)
            .bind(i64::from(*version))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if registered.rows_affected() == 0 {
                // Erased before, on its own or as another pseudonym of the person.
                continue;
            }
            // Each pilot the pseudonym leaves counts one erasure in its
            // variant (attrition); nothing else of the assignment is kept.
            sqlx::query(
                "INSERT INTO erasure_counters (experiment_key, variant, day, erased) \
                 SELECT experiment_key, variant, $2, COUNT(*) FROM assignments \
                 WHERE experiment_key IN (SELECT key FROM experiments) AND subject = $1 \
                 GROUP BY experiment_key, variant \
                 ON CONFLICT (experiment_key, variant, day) DO UPDATE SET erased = erasure_counters.erased + excluded.erased",
            )
            .bind(pseudonym)
            .bind(from_micros(now).format("%Y-%m-%d").to_string())
            .execute(&mut *tx)
            .await?;
            // The results' aggregates lose the subject (its assignments are
            // read before they are deleted).
            crate::aggregates::leaving::leave(
                &mut tx,
                self.dialect,
                &[pseudonym.as_str()],
                crate::aggregates::leaving::Leaving::Erased,
            )
            .await?;
            // Events are stored under their assignment's pseudonym, so the
            // pilots the pseudonym is assigned in name every event it has: the
            // events of those pilots are scanned (they are kept in time order),
            // and the assignments found by trying each pilot's key with it.
            let events = sqlx::query(
                "DELETE FROM events WHERE subject = $1 AND experiment_key IN \
                 (SELECT experiment_key FROM assignments WHERE experiment_key IN (SELECT key FROM experiments) AND subject = $1)",
            )
            .bind(pseudonym)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let assignments = sqlx::query(
                "DELETE FROM assignments WHERE experiment_key IN (SELECT key FROM experiments) AND subject = $1",
            )
            .bind(pseudonym)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            versions.push(ErasedVersion {
                subject: pseudonym.clone(),
                key_version: *version,
                deleted: Deleted {
                    assignments,
                    events,
                },
            });
        }
        if versions.is_empty() {
            return Err(StoreError::Conflict(
                "this subject was erased already".to_owned(),
            ));
        }
        let deleted = Deleted {
            assignments: versions.iter().map(|v| v.deleted.assignments).sum(),
            events: versions.iter().map(|v| v.deleted.events).sum(),
        };
        let entry = self
            .append_audit(
                &mut tx,
                AuditRecord {
                    actor,
                    action: "subject.erase",
                    target: format!("subject:{subject}"),
                    details: serde_json::json!({ "deleted": deleted, "versions": versions }),
                },
            )
            .await?;
        for version in &versions {
            sqlx::query("UPDATE erasures SET deleted_assignments = $1, deleted_events = $2, audit_id = $3 WHERE subject = $4")
                .bind(i64::try_from(version.deleted.assignments).unwrap_or(i64::MAX))
                .bind(i64::try_from(version.deleted.events).unwrap_or(i64::MAX))
                .bind(entry.id)
                .bind(&version.subject)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(ErasureReceipt {
            subject: subject.to_owned(),
            erased_at: from_micros(now),
            deleted,
            versions,
            audit_id: entry.id,
        })
    }

    /// How many subjects have been erased.
    pub async fn erasure_count(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM erasures")
            .fetch_one(&self.reader)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
