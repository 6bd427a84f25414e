//! What the subject-rights desk answers, as the API shows it (and the desk
//! page reads): subjects only by pseudonym, never by raw id.

use chrono::{DateTime, Utc};
use pilotgate_domain::consent::ConsentRecord;
use pilotgate_store::Assignment;
use serde::Serialize;

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A subject's pseudonym under the current key, and every pseudonym of the
/// same person (current key first, then older versions) that the ledger holds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Resolved {
    pub subject: String,
    pub key_version: u32,
    pub known_as: Vec<KnownPseudonym>,
}

/// A pseudonym under one key version.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KnownPseudonym {
    pub subject: String,
    pub key_version: u32,
}

/// The state in force for one purpose.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CurrentState {
    pub purpose: String,
    /// Basis and status of the record in force now; null when none is in force yet.
    pub basis: Option<String>,
    pub status: Option<String>,
    pub eligible: bool,
    /// The reason code when not eligible.
    pub reason: Option<String>,
}

/// One record of the ledger as shown to compliance.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecordView {
    pub id: i64,
    pub purpose: String,
    pub basis: String,
    pub status: String,
    pub notice_id: String,
    pub notice_version: u32,
    pub source: SourceView,
    pub collected_at: String,
    pub effective_from: String,
    pub expires_at: Option<String>,
    pub proof_ref: Option<String>,
    pub recorded_by: String,
    pub key_version: u32,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SourceView {
    pub channel: String,
    pub method: String,
}

/// A subject's current states and full history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubjectConsents {
    pub subject: String,
    pub current: Vec<CurrentState>,
    pub history: Vec<RecordView>,
}

/// What an erasure deleted, in total and per pseudonym of the person.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErasureView {
    pub subject: String,
    pub erased_at: String,
    pub deleted: DeletedView,
    /// One entry per pseudonym of the person (per key version) that was erased now.
    pub versions: Vec<ErasedVersionView>,
    pub audit_id: i64,
}

/// What one pseudonym of the person lost.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErasedVersionView {
    pub subject: String,
    pub key_version: u32,
    pub deleted: DeletedView,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeletedView {
    pub assignments: u64,
    pub events: u64,
}

/// Everything held about a person (GDPR Art. 15): per pseudonym (one per
/// key version) the ledger, the assignments with their legal proof, the
/// events per pilot (counts only) and the erasure; over all of them, the
/// state in force per purpose.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PersonAccess {
    /// The pseudonym asked about (by lookup: the one under the current key).
    pub subject: String,
    pub key_version: u32,
    /// When this document was made (RFC 3339).
    pub generated_at: String,
    /// Every pseudonym of the person covered here, the one asked about first.
    pub known_as: Vec<KnownPseudonym>,
    /// Whether any pseudonym of the person was erased.
    pub erased: bool,
    /// Per purpose of the registry: the record in force now over all the
    /// person's pseudonyms, and whether the person may be used for it.
    pub current: Vec<CurrentState>,
    /// What each pseudonym holds, in the order of `known_as`.
    pub versions: Vec<AccessDocument>,
}

/// What one pseudonym holds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccessDocument {
    pub subject: String,
    pub key_version: u32,
    /// Every ledger record, oldest first.
    pub ledger: Vec<RecordView>,
    /// Every assignment, with its proof, oldest first.
    pub assignments: Vec<AssignmentProof>,
    /// Events per pilot (counts only; pilots without one are left out).
    pub events: Vec<PilotEvents>,
    /// The erasure, when this pseudonym was erased.
    pub erasure: Option<ErasureStatus>,
}

/// An assignment and the legal proof stored with it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AssignmentProof {
    pub experiment: String,
    pub variant: String,
    pub key_version: u32,
    /// The legal basis the assignment was made on.
    pub basis: String,
    /// The ledger record in force when it was decided (null for a basis without one).
    pub consent_record_id: Option<i64>,
    pub notice_version: Option<u32>,
    /// When eligibility was decided (RFC 3339).
    pub decided_at: String,
    /// Whether a later withdrawal or objection ended it, and when.
    pub withdrawn: bool,
    pub withdrawn_at: Option<String>,
    /// The segment attributes the shop sent with it (`device_type=mobile;…`),
    /// when the pilot declared segments and the shop sent any.
    pub segment_attributes: Option<String>,
}

/// How many events one pilot holds of the pseudonym.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PilotEvents {
    pub experiment: String,
    pub events: u64,
}

/// An executed erasure: when, what it deleted, and its audit entry.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErasureStatus {
    pub erased_at: String,
    pub deleted: DeletedView,
    pub audit_id: Option<i64>,
}

impl From<ConsentRecord> for RecordView {
    fn from(r: ConsentRecord) -> Self {
        RecordView {
            id: r.id,
            purpose: r.purpose,
            basis: r.basis.as_str().to_owned(),
            status: r.status.as_str().to_owned(),
            notice_id: r.notice_id,
            notice_version: r.notice_version,
            source: SourceView {
                channel: r.source_channel,
                method: r.source_method,
            },
            collected_at: rfc3339(r.collected_at),
            effective_from: rfc3339(r.effective_from),
            expires_at: r.expires_at.map(rfc3339),
            proof_ref: r.proof_ref,
            recorded_by: r.recorded_by,
            key_version: r.key_version,
        }
    }
}

impl From<&Assignment> for AssignmentProof {
    fn from(a: &Assignment) -> Self {
        AssignmentProof {
            experiment: a.experiment_key.clone(),
            variant: a.variant.clone(),
            key_version: a.key_version,
            basis: a.basis.as_str().to_owned(),
            consent_record_id: a.consent_record_id,
            notice_version: a.notice_version,
            decided_at: rfc3339(a.assigned_at),
            withdrawn: a.withdrawn_at.is_some(),
            withdrawn_at: a.withdrawn_at.map(rfc3339),
            segment_attributes: None,
        }
    }
}
