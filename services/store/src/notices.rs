//! Notices and their published versions, and the consent receipts the
//! customer's form hands out. A version, once published, never changes: a
//! ledger record that names it names this text.

use chrono::{DateTime, Utc};
use pilotgate_domain::Actor;
use pilotgate_domain::notice::{NoticeContent, NoticeId};
use pilotgate_domain::pseudonym::Pseudonym;
use pilotgate_domain::time::{from_micros, to_micros};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::AuditRecord;
use crate::core::Core;
use crate::error::{StoreError, corrupt, unless_taken};

/// One published version of a notice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NoticeVersion {
    pub version: u32,
    pub content: NoticeContent,
    pub published_by: String,
    pub published_at: DateTime<Utc>,
}

/// A notice with every version, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredNotice {
    pub id: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub versions: Vec<NoticeVersion>,
}

impl StoredNotice {
    /// The newest version (every stored notice has one).
    pub fn latest(&self) -> Option<&NoticeVersion> {
        self.versions.last()
    }

    /// Version `version`, if published.
    pub fn version(&self, version: u32) -> Option<&NoticeVersion> {
        self.versions.iter().find(|v| v.version == version)
    }
}

/// A signed consent receipt to keep.
#[derive(Debug, Clone)]
pub struct NewReceipt {
    pub id: String,
    pub subject: String,
    pub key_version: u32,
    pub notice_id: String,
    pub notice_version: u32,
    pub jws: String,
}

impl Core {
    /// Creates the notice `id` with its first version, audited as `notice.create`;
    /// an id taken already is a conflict.
    pub async fn create_notice(
        &self,
        id: &NoticeId,
        content: &NoticeContent,
        actor: &Actor,
    ) -> Result<NoticeVersion, StoreError> {
        let now = self.now();
        let mut tx = self.begin_write().await?;
        let inserted =
            sqlx::query("INSERT INTO notices (id, created_by, created_at) VALUES ($1, $2, $3)")
                .bind(id.as_str())
                .bind(actor.to_string())
                .bind(to_micros(now))
                .execute(&mut *tx)
                .await;
        unless_taken(inserted, || {
            format!("the notice '{id}' exists already; publish a new version instead")
        })?;
        let version = insert_version(&mut tx, id, 1, content, actor, now).await?;
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "notice.create",
                target: format!("notice:{id}"),
                details: serde_json::json!({"version": 1, "purposes": content.purposes,
                    "languages": content.languages.keys().collect::<Vec<_>>()}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Publishes the next version of the notice `id` (the highest plus one),
    /// audited as `notice.publish`; an unknown notice is not found.
    pub async fn publish_notice_version(
        &self,
        id: &NoticeId,
        content: &NoticeContent,
        actor: &Actor,
    ) -> Result<NoticeVersion, StoreError> {
        let now = self.now();
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT id FROM notices WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("no notice is called '{id}'")));
        }
        let highest: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM notice_versions WHERE notice_id = $1")
                .bind(id.as_str())
                .fetch_one(&mut *tx)
                .await?;
        let next = u32::try_from(highest.unwrap_or(0) + 1)
            .map_err(|_| corrupt("notice_versions.version"))?;
        let version = insert_version(&mut tx, id, next, content, actor, now).await?;
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "notice.publish",
                target: format!("notice:{id}"),
                details: serde_json::json!({"version": next, "purposes": content.purposes,
                    "languages": content.languages.keys().collect::<Vec<_>>()}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Every notice with its versions, by id.
    pub async fn list_notices(&self) -> Result<Vec<StoredNotice>, StoreError> {
        let notices = sqlx::query("SELECT * FROM notices ORDER BY id")
            .fetch_all(&self.reader)
            .await?;
        let versions = sqlx::query("SELECT * FROM notice_versions ORDER BY notice_id, version")
            .fetch_all(&self.reader)
            .await?;
        let versions = versions
            .iter()
            .map(|row| {
                Ok((
                    row.try_get::<String, _>("notice_id")?,
                    version_from_row(row)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        notices
            .iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                Ok(StoredNotice {
                    versions: versions
                        .iter()
                        .filter(|(of, _)| *of == id)
                        .map(|(_, v)| v.clone())
                        .collect(),
                    created_by: row.try_get("created_by")?,
                    created_at: from_micros(row.try_get("created_at")?),
                    id,
                })
            })
            .collect()
    }

    /// The notice `id` with its versions, or `None`.
    pub async fn notice(&self, id: &str) -> Result<Option<StoredNotice>, StoreError> {
        let Some(row) = sqlx::query("SELECT * FROM notices WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
        else {
            return Ok(None);
        };
        let versions =
            sqlx::query("SELECT * FROM notice_versions WHERE notice_id = $1 ORDER BY version")
                .bind(id)
                .fetch_all(&self.reader)
                .await?
                .iter()
                .map(version_from_row)
                .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(StoredNotice {
            id: row.try_get("id")?,
            created_by: row.try_get("created_by")?,
            created_at: from_micros(row.try_get("created_at")?),
            versions,
        }))
    }

    /// Keeps a signed consent receipt, audited as `consent.receipt` (the
    /// entry names the receipt and the notice, not the person).
    pub async fn store_receipt(
        &self,
        receipt: &NewReceipt,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO consent_receipts (id, subject, key_version, notice_id, notice_version, created_at, jws) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&receipt.id)
        .bind(&receipt.subject)
        .bind(i64::from(receipt.key_version))
        .bind(&receipt.notice_id)
        .bind(i64::from(receipt.notice_version))
        .bind(to_micros(self.now()))
        .bind(&receipt.jws)
        .execute(&mut *tx)
        .await?;
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "consent.receipt",
                target: format!("receipt:{}", receipt.id),
                details: serde_json::json!({"notice_id": receipt.notice_id, "notice_version": receipt.notice_version}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The person's pseudonyms under other key versions that are linked to
    /// `subject` (see `links.rs`): a withdrawal on the form reaches them too.
    pub async fn linked_aliases(&self, subject: &Pseudonym) -> Result<Vec<Pseudonym>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let found =
            crate::links::linked_pseudonyms(&mut conn, subject.as_str(), subject.key_version())
                .await?;
        Ok(found
            .into_iter()
            .skip(1)
            .filter_map(|(alias, version)| Pseudonym::from_stored(&alias, version))
            .collect())
    }

    /// The signed receipt `id` if it was issued to `subject`; `None` otherwise.
    pub async fn receipt(&self, id: &str, subject: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT jws FROM consent_receipts WHERE id = $1 AND subject = $2")
                .bind(id)
                .bind(subject)
                .fetch_optional(&self.reader)
                .await?,
        )
    }
}

async fn insert_version(
    tx: &mut sqlx::AnyConnection,
    id: &NoticeId,
    version: u32,
    content: &NoticeContent,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<NoticeVersion, StoreError> {
    let json = serde_json::to_string(content).map_err(|_| corrupt("notice_versions.content"))?;
    let inserted = sqlx::query(
        "INSERT INTO notice_versions (notice_id, version, content, published_by, published_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id.as_str())
    .bind(i64::from(version))
    .bind(json)
    .bind(actor.to_string())
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await;
    unless_taken(inserted, || {
        format!(
            "version {version} of the notice '{id}' was published at the same time; reload and try again"
        )
    })?;
    Ok(NoticeVersion {
        version,
        content: content.clone(),
        published_by: actor.to_string(),
        published_at: from_micros(to_micros(now)),
    })
}

fn version_from_row(row: &AnyRow) -> Result<NoticeVersion, StoreError> {
    let content: String = row.try_get("content")?;
    Ok(NoticeVersion {
        version: u32::try_from(row.try_get::<i64, _>("version")?)
            .map_err(|_| corrupt("notice_versions.version"))?,
        content: serde_json::from_str(&content).map_err(|_| corrupt("notice_versions.content"))?,
        published_by: row.try_get("published_by")?,
        published_at: from_micros(row.try_get("published_at")?),
    })
}
