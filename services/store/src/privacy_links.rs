//! Privacy links: the server-side half of the opaque tokens in
//! `/privacy/{token}`. A link is kept only under the SHA-256 of its token
//! (the token itself is never stored), with the person's pseudonym, the
//! notice, who issued it and when it expires.

use chrono::{DateTime, Utc};
use pilotgate_domain::Actor;
use pilotgate_domain::pseudonym::Pseudonym;
use pilotgate_domain::time::{from_micros, to_micros};
use sqlx::Row;

use crate::audit::AuditRecord;
use crate::core::Core;
use crate::error::{StoreError, corrupt};

/// A link to keep: the token's hash, never the token.
#[derive(Debug, Clone)]
pub struct NewPrivacyLink {
    /// SHA-256 of the token, hex.
    pub id_hash: String,
    /// A short non-secret reference to the link (for the audit log and records).
    pub reference: String,
    pub subject: Pseudonym,
    pub notice_id: String,
    pub expires_at: DateTime<Utc>,
}

/// A kept link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPrivacyLink {
    pub subject: Pseudonym,
    pub notice_id: String,
    pub issued_by: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Core {
    /// Keeps a privacy link issued by `actor`, audited as `privacy_link.issue`
    /// (target `notice:<id>`, details the link's reference and expiry).
    pub async fn issue_privacy_link(
        &self,
        link: &NewPrivacyLink,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO privacy_links (id_hash, subject, key_version, notice_id, issued_by, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&link.id_hash)
        .bind(link.subject.as_str())
        .bind(i64::from(link.subject.key_version()))
        .bind(&link.notice_id)
        .bind(&actor.name)
        .bind(to_micros(self.now()))
        .bind(to_micros(link.expires_at))
        .execute(&mut *tx)
        .await?;
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "privacy_link.issue",
                target: format!("notice:{}", link.notice_id),
                details: serde_json::json!({
                    "link": link.reference,
                    "subject": link.subject.as_str(),
                    "expires_at": link.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The link kept under `id_hash`, expired or not.
    pub async fn privacy_link(
        &self,
        id_hash: &str,
    ) -> Result<Option<StoredPrivacyLink>, StoreError> {
        let row = sqlx::query(
            "SELECT subject, key_version, notice_id, issued_by, issued_at, expires_at \
             FROM privacy_links WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let subject: String = row.try_get("subject")?;
        let version: i64 = row.try_get("key_version")?;
        let subject = u32::try_from(version)
            .ok()
            .and_then(|v| Pseudonym::from_stored(&subject, v))
            .ok_or_else(|| corrupt("privacy_links.subject"))?;
        Ok(Some(StoredPrivacyLink {
            subject,
            notice_id: row.try_get("notice_id")?,
            issued_by: row.try_get("issued_by")?,
            issued_at: from_micros(row.try_get("issued_at")?),
            expires_at: from_micros(row.try_get("expires_at")?),
        }))
    }
}
