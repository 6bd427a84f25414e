//! The audit log: appending a chained entry inside a change's transaction,
//! paging through entries, and walking the chain.

use pilotgate_domain::Actor;
use pilotgate_domain::audit::{
    AuditEntry, ChainReport, ChainVerifier, EntryContent, GENESIS_HASH, canonical_details,
};
use pilotgate_domain::time::to_micros;
use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError};

/// How many entries `verify_audit_chain` reads per query.
const VERIFY_PAGE: i64 = 5_000;

/// A page of the audit log: entries with id greater than `after`, oldest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub after: Option<i64>,
    pub limit: i64,
    /// Only entries about this target, e.g. `experiment:spring-banner`.
    pub target: Option<String>,
}

/// What one change records about itself.
#[derive(Debug, Clone)]
pub(crate) struct AuditRecord<'a> {
    pub actor: &'a Actor,
    pub action: &'a str,
    pub target: String,
    pub details: serde_json::Value,
}

impl Store {
    /// Appends `record` to the chain on `conn`, which must be inside the
    /// transaction of the change it records.
    pub(crate) async fn append_audit(
        &self,
        conn: &mut AnyConnection,
        record: AuditRecord<'_>,
    ) -> Result<AuditEntry, StoreError> {
        self.lock_audit_chain(conn).await?;
        let last = sqlx::query("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
        let (id, prev_hash) = match last {
            Some(row) => (
                row.try_get::<i64, _>("id")? + 1,
                row.try_get::<String, _>("hash")?,
            ),
            None => (1, GENESIS_HASH.to_owned()),
        };
        let actor = record.actor.to_string();
        let details = canonical_details(&record.details);
        let at = to_micros(self.now());
        let content = EntryContent {
            id,
            at,
            actor: &actor,
            action: record.action,
            target: &record.target,
            details: &details,
        };
        let hash = content.chained_hash(&prev_hash);
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, action, target, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(at)
        .bind(&actor)
        .bind(record.action)
        .bind(&record.target)
        .bind(&details)
        .bind(&prev_hash)
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
        Ok(AuditEntry {
            id,
            at,
            actor,
            action: record.action.to_owned(),
            target: record.target,
            details,
            prev_hash: prev_hash.clone(),
            hash,
        })
    }

    /// Appends a record in a transaction of its own, for actions that change nothing else
    /// (an export, a verification someone asked for).
    pub async fn record_audit(
        &self,
        actor: &Actor,
        action: &str,
        target: String,
        details: serde_json::Value,
    ) -> Result<AuditEntry, StoreError> {
        let mut tx = self.begin_write().await?;
        let entry = self
            .append_audit(
                &mut tx,
                AuditRecord {
                    actor,
                    action,
                    target,
                    details,
                },
            )
            .await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// A page of the audit log, oldest first.
    pub async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let after = query.after.unwrap_or(0);
        let limit = query.limit.clamp(1, 1_000);
        let rows =
            match &query.target {
                Some(target) => sqlx::query(
                    "SELECT * FROM audit_log WHERE target = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(target)
                .bind(after)
                .bind(limit)
                .fetch_all(&self.reader)
                .await?,
                None => {
                    sqlx::query("SELECT * FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2")
                        .bind(after)
                        .bind(limit)
                        .fetch_all(&self.reader)
                        .await?
                }
            };
        rows.iter().map(entry_from_row).collect()
    }

    /// Walks the whole chain in id order and names the first entry that does not fit.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport, StoreError> {
        let mut verifier = ChainVerifier::default();
        let mut after = i64::MIN;
        loop {
            let rows = sqlx::query("SELECT * FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(VERIFY_PAGE)
                .fetch_all(&self.reader)
                .await?;
            for row in &rows {
                let entry = entry_from_row(row)?;
                after = entry.id;
                verifier.push(&entry);
            }
            if (rows.len() as i64) < VERIFY_PAGE {
                return Ok(verifier.finish());
            }
        }
    }
}

fn entry_from_row(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        details: row.try_get("details")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}
