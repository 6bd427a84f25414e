//! Governed exports (data contracts): the registry of recipient systems,
//! export requests, their approval by compliance (never by the requester),
//! and the download of an approved export by its requester, a bounded
//! number of times before its expiry.
//!
//! The file is one CSV or Parquet table, made in memory: columns
//! `subject,variant,assigned_at,event,value,occurred_at`, one row per kept
//! assignment (event columns empty), then one row per event of those
//! subjects (variant of its subject). Instants are RFC 3339. Withdrawn
//! subjects are left out, erased ones have no rows. The subject column is
//! not pilotgate's pseudonym but HMAC-SHA256 of it under a key derived for
//! the recipient (`export recipient <name> v1`), so two recipients' files
//! cannot be joined with each other nor with pilotgate's own ids.
//! The download is audited (`export.download`, with the manifest and the
//! file's SHA-256) in the transaction that counts it, before any byte leaves.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use pilotgate_analysis::export::{DeliveryColumns, FileFormat};
use pilotgate_domain::Actor;
use pilotgate_domain::pseudonym::KeyRing;
use pilotgate_domain::text::PlainText;
use pilotgate_domain::time::to_micros;
use pilotgate_store::{ExportRequest, NewExportRequest, Recipient, Store, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ServiceError;

/// How many times an approved export may be downloaded.
pub const MAX_DOWNLOADS: i64 = 3;
/// How long an approved export may be downloaded, in days from its approval.
pub const DOWNLOAD_DAYS: i64 = 7;
/// The formats a recipient may accept.
pub const FORMATS: &[&str] = &["csv", "parquet"];

/// A recipient system to register.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientInput {
    /// Its name: a key of lowercase letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// Who answers for it.
    pub owner: String,
    /// The purpose keys whose pilots it may receive.
    pub purposes: Vec<String>,
    /// `csv` and/or `parquet`.
    pub formats: Vec<String>,
    /// The end of the contract (RFC 3339).
    pub expires_at: DateTime<Utc>,
}

/// A recipient as the registry shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecipientView {
    pub name: String,
    pub owner: String,
    pub purposes: Vec<String>,
    pub formats: Vec<String>,
    pub expires_at: DateTime<Utc>,
    pub expired: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

fn recipient_view(r: Recipient, now: DateTime<Utc>) -> RecipientView {
    RecipientView {
        expired: r.expires_at <= now,
        name: r.name,
        owner: r.owner,
        purposes: r.purposes,
        formats: r.formats,
        expires_at: r.expires_at,
        created_by: r.created_by,
        created_at: r.created_at,
    }
}

/// An export request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportInput {
    /// A registered recipient's name.
    pub recipient: String,
    /// A format the recipient accepts.
    pub format: String,
    /// Why the data must leave.
    pub reason: String,
}

/// A decision on an export request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    pub comment: String,
}

/// An export request as the API answers it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExportView {
    pub id: String,
    pub experiment: String,
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
    pub expires_at: Option<DateTime<Utc>>,
    pub downloads: i64,
    pub max_downloads: i64,
}

impl From<ExportRequest> for ExportView {
    fn from(r: ExportRequest) -> Self {
        ExportView {
            id: r.id,
            experiment: r.experiment_key,
            recipient: r.recipient,
            format: r.format,
            reason: r.reason,
            requested_by: r.requested_by,
            requested_at: r.requested_at,
            state: r.state,
            decided_by: r.decided_by,
            decided_at: r.decided_at,
            comment: r.comment,
            expires_at: r.expires_at,
            downloads: r.downloads,
            max_downloads: r.max_downloads,
        }
    }
}

fn text(field: &str, value: &str, max: usize) -> Result<String, ServiceError> {
    let value = PlainText::line(value, max).map_err(|e| ServiceError::invalid(field, e))?;
    if value.as_str().trim().is_empty() {
        return Err(ServiceError::invalid(field, "must not be empty"));
    }
    Ok(value.into_string())
}

fn is_key(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

/// Registers a recipient system (compliance), audited.
pub async fn register_recipient(
    store: &Store,
    actor: &Actor,
    input: RecipientInput,
) -> Result<RecipientView, ServiceError> {
    if !is_key(&input.name) {
        return Err(ServiceError::invalid(
            "name",
            "must be 1 to 64 lowercase letters, digits, '-', '_' or '.'",
        ));
    }
    let owner = text("owner", &input.owner, 200)?;
    if input.purposes.is_empty() {
        return Err(ServiceError::invalid("purposes", "must name a purpose"));
    }
    let mut purposes = Vec::new();
    for key in &input.purposes {
        if store.purpose(key).await?.is_none() {
            return Err(ServiceError::invalid(
                "purposes",
                "names an unknown purpose",
            ));
        }
        if !purposes.contains(key) {
            purposes.push(key.clone());
        }
    }
    if input.formats.is_empty() || input.formats.iter().any(|f| !FORMATS.contains(&f.as_str())) {
        return Err(ServiceError::invalid(
            "formats",
            "must be one or more of csv, parquet",
        ));
    }
    let mut formats = input.formats.clone();
    formats.dedup();
    if input.expires_at <= store.now() {
        return Err(ServiceError::invalid("expires_at", "must be in the future"));
    }
    let recipient = Recipient {
        name: input.name,
        owner,
        purposes,
        formats,
        expires_at: input.expires_at,
        created_by: actor.name.clone(),
        created_at: store.now(),
    };
    store.register_recipient(&recipient, actor).await?;
    let stored = store
        .recipient(&recipient.name)
        .await?
        .ok_or_else(|| ServiceError::internal("a registered recipient is missing"))?;
    Ok(recipient_view(stored, store.now()))
}

/// The registry.
pub async fn recipients(store: &Store) -> Result<Vec<RecipientView>, ServiceError> {
    let now = store.now();
    Ok(store
        .recipients()
        .await?
        .into_iter()
        .map(|r| recipient_view(r, now))
        .collect())
}

/// An analyst asks to export pilot `key` to a recipient; refused (422) when
/// the recipient is unknown, may not receive the pilot's purpose or format,
/// or its contract has expired.
pub async fn request(
    store: &Store,
    actor: &Actor,
    key: &str,
    input: ExportInput,
) -> Result<ExportView, ServiceError> {
    let experiment = store
        .experiment(key)
        .await?
        .ok_or_else(|| StoreError::NotFound("no pilot has this key".to_owned()))?;
    let recipient = store
        .recipient(&input.recipient)
        .await?
        .ok_or_else(|| ServiceError::invalid("recipient", "is not a registered recipient"))?;
    let purpose = experiment.design.purpose.as_str();
    if !recipient.purposes.iter().any(|p| p == purpose) {
        return Err(ServiceError::invalid(
            "recipient",
            "may not receive data of this pilot's purpose",
        ));
    }
    if !recipient.formats.contains(&input.format) {
        return Err(ServiceError::invalid(
            "format",
            "is not a format this recipient accepts",
        ));
    }
    if recipient.expires_at <= store.now() {
        return Err(ServiceError::invalid(
            "recipient",
            "its data contract has expired",
        ));
    }
    let reason = text("reason", &input.reason, 500)?;
    let id = hex::encode(rand::random::<[u8; 12]>());
    let new = NewExportRequest {
        id,
        experiment_key: key.to_owned(),
        recipient: recipient.name,
        format: input.format,
        reason,
    };
    Ok(store
        .request_export(&new, actor, MAX_DOWNLOADS)
        .await?
        .into())
}

/// The export requests of pilot `key`, newest first.
pub async fn list_of(store: &Store, key: &str) -> Result<Vec<ExportView>, ServiceError> {
    Ok(store
        .export_requests_of(key)
        .await?
        .into_iter()
        .map(ExportView::from)
        .collect())
}

/// Every pending export request, oldest first.
pub async fn pending(store: &Store) -> Result<Vec<ExportView>, ServiceError> {
    Ok(store
        .pending_export_requests()
        .await?
        .into_iter()
        .map(ExportView::from)
        .collect())
}

/// Compliance approves or denies a pending request (never its requester).
pub async fn decide(
    store: &Store,
    actor: &Actor,
    id: &str,
    approve: bool,
    input: DecisionInput,
) -> Result<ExportView, ServiceError> {
    let comment = text("comment", &input.comment, 500)?;
    let expires_at = store.now() + chrono::Duration::days(DOWNLOAD_DAYS);
    Ok(store
        .decide_export(id, actor, approve, &comment, expires_at)
        .await?
        .into())
}

/// The file of an approved export, ready to send.
#[derive(Debug)]
pub struct ExportFile {
    pub body: Vec<u8>,
    pub filename: String,
    pub content_type: &'static str,
    /// The id of its `export.download` audit entry.
    pub audit_id: i64,
}

/// The subject id `pseudonym` gets in files for `recipient`.
pub fn recipient_subject(keys: &KeyRing, recipient: &str, pseudonym: &str) -> String {
    let key = keys
        .current()
        .derive(&format!("export recipient {recipient} v1"));
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(pseudonym.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// The requester downloads approved export `id`: made in memory, hashed,
/// counted and audited with its manifest, then handed back.
pub async fn download(
    store: &Store,
    keys: &KeyRing,
    actor: &Actor,
    id: &str,
    k: pilotgate_analysis::disclosure::MinCell,
) -> Result<ExportFile, ServiceError> {
    let request = store
        .export_request(id)
        .await?
        .ok_or_else(|| StoreError::NotFound("no export request has this id".to_owned()))?;
    pilotgate_store::check_downloadable(&request, Some(actor), store.now())?;
    let experiment = store
        .experiment(&request.experiment_key)
        .await?
        .ok_or_else(|| StoreError::NotFound("no pilot has this key".to_owned()))?;
    let assignments = store.assignments_of(&request.experiment_key).await?;
    let events = store.events_of(&request.experiment_key).await?;
    let withdrawn = assignments
        .iter()
        .filter(|a| a.withdrawn_at.is_some())
        .count();
    let mut ids: HashMap<String, (String, String)> = HashMap::new();
    let mut bases: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut table = DeliveryColumns::default();
    for a in assignments.iter().filter(|a| a.withdrawn_at.is_none()) {
        let subject = recipient_subject(keys, &request.recipient, &a.subject);
        *bases.entry(a.basis.as_str()).or_default() += 1;
        table.push_assignment(subject.clone(), a.variant.clone(), to_micros(a.assigned_at));
        ids.insert(a.subject.clone(), (subject, a.variant.clone()));
    }
    let mut event_rows = 0u64;
    for e in &events {
        let Some((subject, variant)) = ids.get(&e.subject) else {
            continue;
        };
        table.push_event(
            subject.clone(),
            variant.clone(),
            e.name.clone(),
            e.value,
            to_micros(e.occurred_at),
        );
        event_rows += 1;
    }
    // The request's format was checked against `FORMATS` when it was made.
    let format = FileFormat::of_name(&request.format)
        .ok_or_else(|| ServiceError::internal("an export request names an unknown format"))?;
    let body = tokio::task::spawn_blocking(move || table.encode(format))
        .await
        .map_err(ServiceError::internal)?
        .map_err(ServiceError::internal)?;
    let sha256 = hex::encode(Sha256::digest(&body));
    // The manifest is read in the audit log by more people than the
    // recipient: its counts of people are released under k, as the pilot's
    // other views release them.
    let ManifestCounts {
        basis_counts: bases,
        assignments: assignment_rows,
        withdrawn,
        suppressed,
    } = manifest_counts(store, &request.experiment_key, &bases, withdrawn as u64, k).await?;
    let manifest = serde_json::json!({
        "export": request.id,
        "pilot": request.experiment_key,
        "purpose": experiment.design.purpose.as_str(),
        "recipient": request.recipient,
        "format": request.format,
        "basis_counts": bases,
        "rows": {"assignments": assignment_rows, "events": event_rows},
        "withdrawn_left_out": withdrawn,
        "min_cell": k.get(),
        "suppressed": suppressed,
        "sha256": sha256,
        "bytes": body.len(),
        "expires_at": request.expires_at.map(rfc3339),
        "download": request.downloads + 1,
        "max_downloads": request.max_downloads,
    });
    let entry = store
        .record_export_download(id, actor, true, manifest)
        .await?;
    Ok(ExportFile {
        body,
        filename: format!(
            "{}-{}-{}.{}",
            request.experiment_key,
            request.recipient,
            request.id,
            format.extension()
        ),
        content_type: match format {
            FileFormat::Csv => "text/csv; charset=utf-8",
            FileFormat::Parquet => "application/vnd.apache.parquet",
        },
        audit_id: entry.id,
    })
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// An export manifest's counts of people, as released under `k`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestCounts {
    /// Assignment rows per legal basis.
    pub basis_counts: BTreeMap<String, Option<u64>>,
    /// Assignment rows (the analysed subjects).
    pub assignments: Option<u64>,
    /// Withdrawn subjects left out.
    pub withdrawn: Option<u64>,
    pub suppressed: bool,
}

/// The counts of an export of pilot `key` (`bases`: its assignment rows per
/// legal basis; `withdrawn`: the subjects left out) as a manifest may
/// release them: the manifest is read in the audit log by more people than
/// the recipient, so its counts are released under `k` as the pilot's other
/// views release them. The API download and the CLI export both use it.
pub async fn manifest_counts(
    store: &Store,
    key: &str,
    bases: &BTreeMap<&str, u64>,
    withdrawn: u64,
    k: pilotgate_analysis::disclosure::MinCell,
) -> Result<ManifestCounts, ServiceError> {
    let cells = super::disclosure::pilot_cells(store, key, k).await?;
    let (parts, assignments) = super::disclosure::release_parts(
        &bases.values().copied().collect::<Vec<_>>(),
        cells.analysed_total.is_none(),
        k,
    );
    let basis_counts: BTreeMap<String, Option<u64>> = bases
        .keys()
        .map(|basis| (*basis).to_owned())
        .zip(parts)
        .collect();
    let withdrawn = cells.withdrawn_total.filter(|w| *w == withdrawn);
    let suppressed =
        assignments.is_none() || withdrawn.is_none() || basis_counts.values().any(Option::is_none);
    Ok(ManifestCounts {
        basis_counts,
        assignments,
        withdrawn,
        suppressed,
    })
}
