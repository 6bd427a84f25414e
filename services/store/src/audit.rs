//! The audit log: appending a chained entry inside a change's transaction,
//! paging through entries (filtered by actor, action and target, either
//! way), and walking the chain.

use pilotgate_domain::Actor;
use pilotgate_domain::audit::{
    AuditEntry, AuditKey, ChainHead, ChainReport, ChainVerifier, EntryContent, GENESIS_HASH,
    canonical_details,
};
use pilotgate_domain::time::to_micros;
use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::core::Core;
use crate::error::StoreError;

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

/// Which entries of the audit log to list: each given field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// A token's name (`dana`), or an actor as recorded (`dana (compliance)`).
    pub actor: Option<String>,
    /// An action, e.g. `experiment.approve`.
    pub action: Option<String>,
    /// A target, e.g. `experiment:spring-banner` or `subject:<pseudonym>`.
    pub target: Option<String>,
}

/// Where a page of the audit log starts, and its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditCursor {
    /// Entries with ids below this one (all when `None`), newest first.
    Before(Option<i64>),
    /// Entries with ids above this one, oldest first.
    After(i64),
}

/// What one change records about itself.
#[derive(Debug, Clone)]
pub(crate) struct AuditRecord<'a> {
    pub actor: &'a Actor,
    pub action: &'a str,
    pub target: String,
    pub details: serde_json::Value,
}

impl Core {
    /// Chains every later audit entry with `key` (see `Store::attach_keys`).
    pub(crate) fn set_audit_key(&self, key: AuditKey) {
        *self.audit_key.write().unwrap_or_else(|e| e.into_inner()) = Some(key);
    }

    /// The audit key attached to this store; a store without one writes no audit entry.
    pub(crate) fn audit_key(&self) -> Result<AuditKey, StoreError> {
        self.audit_key
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                StoreError::Keys(
                    "no audit key is attached to the store: audit entries cannot be written"
                        .to_owned(),
                )
            })
    }

    /// The key client event ids are stored under, derived from the audit key
    /// (see `pilotgate_domain::event_id`).
    pub fn event_id_key(&self) -> Result<pilotgate_domain::event_id::EventIdKey, StoreError> {
        Ok(pilotgate_domain::event_id::EventIdKey::new(
            self.audit_key()?.derive("event ids"),
        ))
    }

    /// Appends `record` to the chain on `conn`, which must be inside the
    /// transaction of the change it records.
    pub(crate) async fn append_audit(
        &self,
        conn: &mut AnyConnection,
        record: AuditRecord<'_>,
    ) -> Result<AuditEntry, StoreError> {
        let key = self.audit_key()?;
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
        let hash = content.chained_hash(&key, &prev_hash);
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

    /// At most `limit` entries with ids below `before` (all when `None`), newest first.
    pub async fn list_audit_before(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2")
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit.clamp(1, 1_000))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// At most `limit` entries that pass `filter`, from `cursor` on in its order.
    pub async fn filtered_audit(
        &self,
        filter: &AuditFilter,
        cursor: AuditCursor,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut conditions = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        if let Some(actor) = &filter.actor {
            let forms = actor_forms(actor);
            conditions.push(format!(
                "actor IN ({})",
                crate::db::numbered(binds.len() + 1, forms.len())
            ));
            binds.extend(forms);
        }
        for (column, value) in [("action", &filter.action), ("target", &filter.target)] {
            if let Some(value) = value {
                binds.push(value.clone());
                conditions.push(format!("{column} = ${}", binds.len()));
            }
        }
        let (id, order, from) = match cursor {
            AuditCursor::Before(before) => ("<", "DESC", before.unwrap_or(i64::MAX)),
            AuditCursor::After(after) => (">", "ASC", after),
        };
        conditions.push(format!("id {id} ${}", binds.len() + 1));
        let sql = format!(
            "SELECT * FROM audit_log WHERE {} ORDER BY id {order} LIMIT ${}",
            conditions.join(" AND "),
            binds.len() + 2
        );
        let mut query = sqlx::query(&sql);
        for value in &binds {
            query = query.bind(value);
        }
        let rows = query
            .bind(from)
            .bind(limit.clamp(1, 1_000))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// The hash of entry `id`, if it exists.
    pub async fn audit_hash_at(&self, id: i64) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT hash FROM audit_log WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    /// The head of the chain now: how many entries and the last one's hash.
    pub async fn audit_head(&self) -> Result<ChainHead, StoreError> {
        let last = sqlx::query("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
            .fetch_optional(&self.reader)
            .await?;
        Ok(match last {
            Some(row) => ChainHead {
                entries: u64::try_from(row.try_get::<i64, _>("id")?).unwrap_or(0),
                hash: row.try_get("hash")?,
            },
            None => ChainHead {
                entries: 0,
                hash: GENESIS_HASH.to_owned(),
            },
        })
    }

    /// Walks the whole chain in id order with the audit key, checked against
    /// `anchor` (a head recorded outside the database) when given, and names
    /// the first entry that does not fit or the first one missing.
    pub async fn verify_audit_chain(
        &self,
        anchor: Option<ChainHead>,
    ) -> Result<ChainReport, StoreError> {
        self.continue_audit_verification(ChainVerifier::new(&self.audit_key()?, anchor))
            .await
    }

    /// [`Store::verify_audit_chain`] that trusts the entries up to `verified`
    /// (a head an earlier walk ended at, without a failure) and reads only
    /// the entries after it.
    pub async fn resume_audit_verification(
        &self,
        anchor: Option<ChainHead>,
        verified: &ChainHead,
    ) -> Result<ChainReport, StoreError> {
        self.continue_audit_verification(ChainVerifier::resume(
            &self.audit_key()?,
            anchor,
            verified,
        ))
        .await
    }

    /// Continues `verifier` with the entries after its last verified one.
    async fn continue_audit_verification(
        &self,
        mut verifier: ChainVerifier,
    ) -> Result<ChainReport, StoreError> {
        // From the very start, rows under ids below 1 are read too (and named).
        let mut after = match verifier.next_id() {
            1 => i64::MIN,
            next => next - 1,
        };
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

/// The actors as recorded that `actor` names: itself, and when it is a bare
/// name, that name under every role, at the command line, and as the
/// customer of a privacy link (`customer (privacy link)`).
fn actor_forms(actor: &str) -> Vec<String> {
    let mut forms = vec![actor.to_owned()];
    if !actor.ends_with(')') {
        forms.extend(
            pilotgate_domain::Role::ALL
                .iter()
                .map(|role| Actor::token(actor, *role).to_string()),
        );
        forms.push(format!("{actor} (cli)"));
        if actor == pilotgate_domain::actor::CUSTOMER {
            forms.push(Actor::customer().to_string());
        }
    }
    forms
}

pub(crate) fn entry_from_row(row: &AnyRow) -> Result<AuditEntry, StoreError> {
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
