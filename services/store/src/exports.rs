//! Governed exports: the registry of recipient systems (data contracts) and
//! the export requests made for them. A request is pending until compliance
//! approves or denies it (never its requester); an approved one is counted
//! down, one download at a time, each audited with the file's manifest in
//! the transaction that counts it, before the file leaves.

use chrono::{DateTime, Utc};
use pilotgate_domain::Actor;
use pilotgate_domain::audit::AuditEntry;
use pilotgate_domain::time::{from_micros, to_micros};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::AuditRecord;
use crate::core::Core;
use crate::error::{StoreError, corrupt, is_unique_violation};

/// A recipient system and what it may receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub name: String,
    pub owner: String,
    /// Purpose keys whose pilots it may receive.
    pub purposes: Vec<String>,
    /// File formats it accepts (`csv`, `parquet`).
    pub formats: Vec<String>,
    pub expires_at: DateTime<Utc>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// A new export request.
#[derive(Debug, Clone)]
pub struct NewExportRequest {
    /// Random, opaque.
    pub id: String,
    pub experiment_key: String,
    pub recipient: String,
    pub format: String,
    pub reason: String,
}

/// An export request as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    pub id: String,
    pub experiment_key: String,
    pub recipient: String,
    pub format: String,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    /// `pending`, `approved` or `denied`.
    pub state: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    /// When an approved export can no longer be downloaded.
    pub expires_at: Option<DateTime<Utc>>,
    pub downloads: i64,
    pub max_downloads: i64,
}

const REQUEST_COLUMNS: &str = "id, experiment_key, recipient, format, reason, requested_by, requested_at, state, \
     decided_by, decided_at, comment, expires_at, downloads, max_downloads";

fn request_of(row: &AnyRow) -> Result<ExportRequest, StoreError> {
    Ok(ExportRequest {
        id: row.try_get("id")?,
        experiment_key: row.try_get("experiment_key")?,
        recipient: row.try_get("recipient")?,
        format: row.try_get("format")?,
        reason: row.try_get("reason")?,
        requested_by: row.try_get("requested_by")?,
        requested_at: from_micros(row.try_get("requested_at")?),
        state: row.try_get("state")?,
        decided_by: row.try_get("decided_by")?,
        decided_at: row
            .try_get::<Option<i64>, _>("decided_at")?
            .map(from_micros),
        comment: row.try_get("comment")?,
        expires_at: row
            .try_get::<Option<i64>, _>("expires_at")?
            .map(from_micros),
        downloads: row.try_get("downloads")?,
        max_downloads: row.try_get("max_downloads")?,
    })
}

fn list_of(text: &str, column: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|_| corrupt(column))
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Core {
    /// Registers `recipient`, audited as `recipient.register`; a name taken
    /// already is a conflict.
    pub async fn register_recipient(
        &self,
        recipient: &Recipient,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO export_recipients (name, owner, purposes, formats, expires_at, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&recipient.name)
        .bind(&recipient.owner)
        .bind(serde_json::to_string(&recipient.purposes).unwrap_or_default())
        .bind(serde_json::to_string(&recipient.formats).unwrap_or_default())
        .bind(to_micros(recipient.expires_at))
        .bind(&actor.name)
        .bind(to_micros(self.now()))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(
                    "a recipient with this name is registered already".to_owned(),
                ));
            }
            other => other?,
        };
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "recipient.register",
                target: format!("recipient:{}", recipient.name),
                details: serde_json::json!({
                    "owner": recipient.owner,
                    "purposes": recipient.purposes,
                    "formats": recipient.formats,
                    "expires_at": rfc3339(recipient.expires_at),
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every recipient, by name.
    pub async fn recipients(&self) -> Result<Vec<Recipient>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, owner, purposes, formats, expires_at, created_by, created_at \
             FROM export_recipients ORDER BY name",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Recipient {
                    name: row.try_get("name")?,
                    owner: row.try_get("owner")?,
                    purposes: list_of(
                        &row.try_get::<String, _>("purposes")?,
                        "export_recipients.purposes",
                    )?,
                    formats: list_of(
                        &row.try_get::<String, _>("formats")?,
                        "export_recipients.formats",
                    )?,
                    expires_at: from_micros(row.try_get("expires_at")?),
                    created_by: row.try_get("created_by")?,
                    created_at: from_micros(row.try_get("created_at")?),
                })
            })
            .collect()
    }

    /// The recipient `name`, or `None`.
    pub async fn recipient(&self, name: &str) -> Result<Option<Recipient>, StoreError> {
        Ok(self
            .recipients()
            .await?
            .into_iter()
            .find(|r| r.name == name))
    }

    /// Keeps a pending export request made by `actor`, audited as `export.request`.
    pub async fn request_export(
        &self,
        request: &NewExportRequest,
        actor: &Actor,
        max_downloads: i64,
    ) -> Result<ExportRequest, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO export_requests (id, experiment_key, recipient, format, reason, requested_by, requested_at, state, downloads, max_downloads) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8)",
        )
        .bind(&request.id)
        .bind(&request.experiment_key)
        .bind(&request.recipient)
        .bind(&request.format)
        .bind(&request.reason)
        .bind(&actor.name)
        .bind(to_micros(self.now()))
        .bind(max_downloads)
        .execute(&mut *tx)
        .await?;
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "export.request",
                target: format!("experiment:{}", request.experiment_key),
                details: serde_json::json!({
                    "export": request.id,
                    "recipient": request.recipient,
                    "format": request.format,
                    "reason": request.reason,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        self.export_request(&request.id)
            .await?
            .ok_or_else(|| StoreError::NotFound("no export request has this id".to_owned()))
    }

    /// The export request `id`, or `None`.
    pub async fn export_request(&self, id: &str) -> Result<Option<ExportRequest>, StoreError> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM export_requests WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(request_of).transpose()
    }

    /// The export requests of pilot `experiment`, newest first.
    pub async fn export_requests_of(
        &self,
        experiment: &str,
    ) -> Result<Vec<ExportRequest>, StoreError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM export_requests WHERE experiment_key = $1 ORDER BY requested_at DESC, id"
        );
        let rows = sqlx::query(&sql)
            .bind(experiment)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(request_of).collect()
    }

    /// Every pending export request, oldest first.
    pub async fn pending_export_requests(&self) -> Result<Vec<ExportRequest>, StoreError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM export_requests WHERE state = 'pending' ORDER BY requested_at, id"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.reader).await?;
        rows.iter().map(request_of).collect()
    }

    /// Approves (with the download window `expires_at`) or denies the pending
    /// request `id`, audited as `export.approve` or `export.deny`. The
    /// requester may not decide (403); a decided request cannot be again (409).
    pub async fn decide_export(
        &self,
        id: &str,
        actor: &Actor,
        approve: bool,
        comment: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<ExportRequest, StoreError> {
        let mut tx = self.begin_write().await?;
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM export_requests WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound("no export request has this id".to_owned()))?;
        let request = request_of(&row)?;
        if request.requested_by == actor.name {
            return Err(StoreError::Forbidden(
                "the requester of an export cannot decide it (separation of duties)".to_owned(),
            ));
        }
        if request.state != "pending" {
            return Err(StoreError::Conflict(format!(
                "the export request is {} already",
                request.state
            )));
        }
        let state = if approve { "approved" } else { "denied" };
        let now = self.now();
        sqlx::query(
            "UPDATE export_requests SET state = $1, decided_by = $2, decided_at = $3, comment = $4, expires_at = $5 \
             WHERE id = $6 AND state = 'pending'",
        )
        .bind(state)
        .bind(&actor.name)
        .bind(to_micros(now))
        .bind(comment)
        .bind(approve.then(|| to_micros(expires_at)))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: if approve {
                    "export.approve"
                } else {
                    "export.deny"
                },
                target: format!("experiment:{}", request.experiment_key),
                details: serde_json::json!({
                    "export": id,
                    "recipient": request.recipient,
                    "comment": comment,
                    "expires_at": approve.then(|| rfc3339(expires_at)),
                }),
            },
        )
        .await?;
        tx.commit().await?;
        self.export_request(id)
            .await?
            .ok_or_else(|| StoreError::NotFound("no export request has this id".to_owned()))
    }

    /// Counts one download of the approved export `id` by `actor` and audits
    /// it as `export.download` with `manifest`, in one transaction, before
    /// the caller hands out any byte. Refused (409) when the request is not
    /// approved, expired or downloaded its allowed number of times already;
    /// 403 for anyone but the requester.
    /// `requester_only` is false for the operator at the host's command line.
    pub async fn record_export_download(
        &self,
        id: &str,
        actor: &Actor,
        requester_only: bool,
        manifest: serde_json::Value,
    ) -> Result<AuditEntry, StoreError> {
        let mut tx = self.begin_write().await?;
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM export_requests WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound("no export request has this id".to_owned()))?;
        let request = request_of(&row)?;
        check_downloadable(&request, requester_only.then_some(actor), self.now())?;
        let counted = sqlx::query(
            "UPDATE export_requests SET downloads = downloads + 1 WHERE id = $1 AND downloads < max_downloads",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if counted.rows_affected() != 1 {
            return Err(StoreError::Conflict(
                "the export was downloaded its allowed number of times".to_owned(),
            ));
        }
        let entry = self
            .append_audit(
                &mut tx,
                AuditRecord {
                    actor,
                    action: "export.download",
                    target: format!("experiment:{}", request.experiment_key),
                    details: manifest,
                },
            )
            .await?;
        tx.commit().await?;
        Ok(entry)
    }
}

/// Why `requester` (when given: anyone else is refused) may not download
/// `request` now, if they may not.
pub fn check_downloadable(
    request: &ExportRequest,
    requester: Option<&Actor>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if requester.is_some_and(|actor| request.requested_by != actor.name) {
        return Err(StoreError::Forbidden(
            "only the requester may download an export".to_owned(),
        ));
    }
    if request.state != "approved" {
        return Err(StoreError::Conflict(format!(
            "the export request is {}: nothing can be downloaded",
            request.state
        )));
    }
    if request.expires_at.is_none_or(|at| at <= now) {
        return Err(StoreError::Conflict(
            "the export has expired: nothing can be downloaded".to_owned(),
        ));
    }
    if request.downloads >= request.max_downloads {
        return Err(StoreError::Conflict(format!(
            "the export was downloaded {} times, its limit",
            request.max_downloads
        )));
    }
    Ok(())
}
