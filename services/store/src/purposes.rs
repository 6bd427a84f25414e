//! The purpose registry.

use std::collections::BTreeSet;

use pilotgate_domain::Actor;
use pilotgate_domain::purpose::{LegalBasis, Purpose, PurposeKey};
use pilotgate_domain::time::to_micros;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::AuditRecord;
use crate::core::Core;
use crate::db::Reads;
use crate::error::StoreError;
use crate::error::{corrupt, unless_taken};

impl Core {
    /// Registers a purpose and audits it; a key registered already is a conflict.
    pub async fn create_purpose(&self, purpose: &Purpose, actor: &Actor) -> Result<(), StoreError> {
        let now = to_micros(self.now());
        let bases: Vec<&str> = purpose.allowed_bases.iter().map(|b| b.as_str()).collect();
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO purposes (key, description, allowed_bases, min_notice_version, special_category, \
             li_assessment_ref, contract_necessary, retention_days, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
        )
        .bind(purpose.key.as_str())
        .bind(&purpose.description)
        .bind(bases.join(","))
        .bind(i64::from(purpose.min_notice_version))
        .bind(i64::from(purpose.special_category))
        .bind(purpose.li_assessment_ref.as_deref())
        .bind(i64::from(purpose.contract_necessary))
        .bind(i64::from(purpose.retention_days))
        .bind(now)
        .execute(&mut *tx)
        .await;
        unless_taken(inserted, || {
            format!("the purpose '{}' is registered already", purpose.key)
        })?;
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "purpose.create",
                target: format!("purpose:{}", purpose.key),
                details: serde_json::to_value(purpose).unwrap_or_default(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every registered purpose, by key.
    pub async fn list_purposes(&self) -> Result<Vec<Purpose>, StoreError> {
        purposes_on(&mut *self.reader.acquire().await?).await
    }

    /// The purpose registered under `key`.
    pub async fn purpose(&self, key: &str) -> Result<Option<Purpose>, StoreError> {
        let row = sqlx::query("SELECT * FROM purposes WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(purpose_from_row).transpose()
    }
}

/// Every registered purpose, by key, read on `conn` (in its transaction, if any).
pub(crate) async fn purposes_on(conn: &mut impl Reads) -> Result<Vec<Purpose>, StoreError> {
    let (sql, conn) = conn.reading("SELECT * FROM purposes ORDER BY key")?;
    let rows = sqlx::query(&sql).fetch_all(conn).await?;
    rows.iter().map(purpose_from_row).collect()
}

fn purpose_from_row(row: &AnyRow) -> Result<Purpose, StoreError> {
    purpose_from_row_with_key(row, "key")
}

/// A purpose from a row whose key column is called `key_column` (in joins).
pub(crate) fn purpose_from_row_with_key(
    row: &AnyRow,
    key_column: &str,
) -> Result<Purpose, StoreError> {
    let key: String = row.try_get(key_column)?;
    let bases: String = row.try_get("allowed_bases")?;
    let allowed_bases = bases
        .split(',')
        .filter(|b| !b.is_empty())
        .map(|b| {
            b.parse::<LegalBasis>()
                .map_err(|_| corrupt("purposes.allowed_bases"))
        })
        .collect::<Result<BTreeSet<_>, _>>()?;
    Ok(Purpose {
        key: PurposeKey::parse(&key).map_err(|_| corrupt("purposes.key"))?,
        description: row.try_get("description")?,
        allowed_bases,
        min_notice_version: u32::try_from(row.try_get::<i64, _>("min_notice_version")?)
            .map_err(|_| corrupt("purposes.min_notice_version"))?,
        special_category: row.try_get::<i64, _>("special_category")? != 0,
        li_assessment_ref: row.try_get("li_assessment_ref")?,
        contract_necessary: row.try_get::<i64, _>("contract_necessary")? != 0,
        retention_days: u32::try_from(row.try_get::<i64, _>("retention_days")?)
            .map_err(|_| corrupt("purposes.retention_days"))?,
    })
}
