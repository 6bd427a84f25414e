//! The data inventory: the categories of personal data pilots may name,
//! their sensitivity class and required measures. Seeded by migration 0011;
//! compliance adds and edits categories (audited).

use pilotgate_domain::Actor;
use pilotgate_domain::inventory::{CategoryKey, DataCategory, Measures, Sensitivity};
use pilotgate_domain::time::to_micros;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::AuditRecord;
use crate::core::Core;
use crate::error::{StoreError, corrupt, unless_taken};

impl Core {
    /// Every category of the inventory, by key.
    pub async fn list_data_categories(&self) -> Result<Vec<DataCategory>, StoreError> {
        let rows = sqlx::query("SELECT * FROM data_categories ORDER BY key")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(category_from_row).collect()
    }

    /// The category `key`, if the inventory has it.
    pub async fn data_category(&self, key: &str) -> Result<Option<DataCategory>, StoreError> {
        let row = sqlx::query("SELECT * FROM data_categories WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(category_from_row).transpose()
    }

    /// Adds `category` to the inventory and audits it (`data_category.create`);
    /// a key in the inventory already is a conflict.
    pub async fn create_data_category(
        &self,
        category: &DataCategory,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let now = to_micros(self.now());
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO data_categories (key, name, description, sensitivity, prohibited, pseudonymised, \
             encrypted_at_rest, retention_ceiling_days, dpo_sign_off, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(category.key.as_str())
        .bind(&category.name)
        .bind(&category.description)
        .bind(category.sensitivity.as_str())
        .bind(i64::from(category.prohibited))
        .bind(i64::from(category.measures.pseudonymised))
        .bind(i64::from(category.measures.encrypted_at_rest))
        .bind(category.measures.retention_ceiling_days.map(i64::from))
        .bind(i64::from(category.measures.dpo_sign_off))
        .bind(now)
        .execute(&mut *tx)
        .await;
        unless_taken(inserted, || {
            format!(
                "the data category '{}' is in the inventory already",
                category.key
            )
        })?;
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "data_category.create",
                target: format!("data_category:{}", category.key),
                details: serde_json::to_value(category).unwrap_or_default(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the category with `category`'s key and audits the change
    /// (`data_category.update`, before and after); an unknown key is not
    /// found. A category that pilots could use and now may not sends the
    /// submitted and approved pilots that name it back to draft in the same
    /// transaction (audited each); their keys, sorted.
    pub async fn update_data_category(
        &self,
        category: &DataCategory,
        actor: &Actor,
    ) -> Result<Vec<String>, StoreError> {
        let key = category.key.as_str();
        let now = to_micros(self.now());
        let mut tx = self.begin_write().await?;
        let before = sqlx::query("SELECT * FROM data_categories WHERE key = $1")
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(category_from_row)
            .transpose()?
            .ok_or_else(|| {
                StoreError::NotFound(format!("the data inventory has no category '{key}'"))
            })?;
        sqlx::query(
            "UPDATE data_categories SET name = $1, description = $2, sensitivity = $3, prohibited = $4, \
             pseudonymised = $5, encrypted_at_rest = $6, retention_ceiling_days = $7, dpo_sign_off = $8, \
             updated_at = $9 WHERE key = $10",
        )
        .bind(&category.name)
        .bind(&category.description)
        .bind(category.sensitivity.as_str())
        .bind(i64::from(category.prohibited))
        .bind(i64::from(category.measures.pseudonymised))
        .bind(i64::from(category.measures.encrypted_at_rest))
        .bind(category.measures.retention_ceiling_days.map(i64::from))
        .bind(i64::from(category.measures.dpo_sign_off))
        .bind(now)
        .bind(key)
        .execute(&mut *tx)
        .await?;
        let returned = if before.permitted_for_pilots() && !category.permitted_for_pilots() {
            let why = format!("the data category {key} is now prohibited for pilots");
            let keys = waiting_pilots_naming(&mut tx, key).await?;
            self.return_to_draft(&mut tx, &keys, &why, actor, now)
                .await?
        } else {
            Vec::new()
        };
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "data_category.update",
                target: format!("data_category:{key}"),
                details: serde_json::json!({
                    "before": before,
                    "after": category,
                    "returned_to_draft": returned,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(returned)
    }
}

/// The submitted and approved pilots whose design names the category `key`,
/// read in `tx`.
async fn waiting_pilots_naming(
    tx: &mut AnyConnection,
    key: &str,
) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "SELECT key, data_categories FROM experiments WHERE state IN ('submitted', 'approved')",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut keys = Vec::new();
    for row in &rows {
        let categories: Vec<String> =
            serde_json::from_str(&row.try_get::<String, _>("data_categories")?)
                .map_err(|_| corrupt("experiments.data_categories"))?;
        if categories.iter().any(|c| c == key) {
            keys.push(row.try_get("key")?);
        }
    }
    Ok(keys)
}

fn category_from_row(row: &AnyRow) -> Result<DataCategory, StoreError> {
    let flag =
        |column: &str| -> Result<bool, StoreError> { Ok(row.try_get::<i64, _>(column)? != 0) };
    let key: String = row.try_get("key")?;
    let sensitivity: String = row.try_get("sensitivity")?;
    let ceiling: Option<i64> = row.try_get("retention_ceiling_days")?;
    Ok(DataCategory {
        key: CategoryKey::parse(&key).map_err(|_| corrupt("data_categories.key"))?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        sensitivity: sensitivity
            .parse::<Sensitivity>()
            .map_err(|_| corrupt("data_categories.sensitivity"))?,
        prohibited: flag("prohibited")?,
        measures: Measures {
            pseudonymised: flag("pseudonymised")?,
            encrypted_at_rest: flag("encrypted_at_rest")?,
            retention_ceiling_days: ceiling
                .map(u32::try_from)
                .transpose()
                .map_err(|_| corrupt("data_categories.retention_ceiling_days"))?,
            dpo_sign_off: flag("dpo_sign_off")?,
        },
    })
}
