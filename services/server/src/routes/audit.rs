//! The audit log: paging through entries (either way, filtered by actor,
//! action and target) and verifying the hash chain.

use actix_web::{HttpResponse, get, web};
use pilotgate_domain::audit::{AuditEntry, ChainReport};
use pilotgate_domain::time::from_micros;
use pilotgate_store::{AuditCursor, AuditFilter};
use serde::{Deserialize, Serialize};

use crate::anchor::Anchor;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::service;
use crate::startup::AppState;

/// Query of `GET /api/v1/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Entries with an id greater than this one, oldest first (for paging forwards).
    pub after: Option<i64>,
    /// Entries with an id smaller than this one, newest first (for paging
    /// backwards from the newest; `before` = the smallest id of the last page).
    pub before: Option<i64>,
    /// At most this many entries (1..=1000, default 100).
    pub limit: Option<i64>,
    /// Only entries by this actor: a token's name (e.g. `dana`) or the actor
    /// as recorded (e.g. `dana (compliance)`).
    pub actor: Option<String>,
    /// Only entries of this action, e.g. `experiment.approve`.
    pub action: Option<String>,
    /// Only entries about this target, e.g. `experiment:spring-banner` or `subject:<pseudonym>`.
    pub target: Option<String>,
}

impl AuditParams {
    /// The filter the query names (empty values name nothing).
    pub fn filter(&self) -> AuditFilter {
        let given = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
        AuditFilter {
            actor: given(&self.actor),
            action: given(&self.action),
            target: given(&self.target),
        }
    }
}

/// One audit entry as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEntryView {
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// A page of audit entries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    /// The `after` value of the next page, or null at the end (when paging with `after`, or with neither).
    pub next_after: Option<i64>,
    /// The `before` value of the next (older) page, or null at the end (when paging with `before`).
    pub next_before: Option<i64>,
}

/// The result of walking the chain with the audit key, against its newest anchor.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerifyView {
    pub ok: bool,
    pub entries: u64,
    /// The first entry that was edited, inserted or removed; for a log cut
    /// short of its anchor, the first entry missing.
    pub first_bad_id: Option<i64>,
    pub problem: Option<String>,
    /// The head the walk ended at.
    pub head: HeadView,
    /// The newest anchor of this database the chain was checked against;
    /// null when none was recorded yet (then a cut tail cannot be seen).
    pub anchor: Option<AnchorView>,
}

/// A chain head: entry count and the last entry's hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HeadView {
    pub entries: u64,
    pub hash: String,
}

/// An anchor: the head recorded outside the database, and when.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnchorView {
    pub entries: u64,
    pub head: String,
    pub at: String,
}

impl From<&AuditEntry> for AuditEntryView {
    fn from(entry: &AuditEntry) -> Self {
        AuditEntryView {
            id: entry.id,
            at: from_micros(entry.at).to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            target: entry.target.clone(),
            details: serde_json::from_str(&entry.details)
                .unwrap_or(serde_json::Value::String(entry.details.clone())),
            prev_hash: entry.prev_hash.clone(),
            hash: entry.hash.clone(),
        }
    }
}

impl VerifyView {
    pub fn new(report: ChainReport, anchor: Option<Anchor>) -> VerifyView {
        VerifyView {
            ok: report.ok,
            entries: report.entries,
            first_bad_id: report.first_bad_id,
            problem: report.problem,
            head: HeadView {
                entries: report.head.entries,
                hash: report.head.hash,
            },
            anchor: anchor.map(|a| AnchorView {
                entries: a.entries,
                head: a.head,
                at: a.at,
            }),
        }
    }
}

/// Pages through the audit log: oldest first from `after` (or from the
/// start), or newest first below `before`; filtered by actor, action and target.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams), security(("bearer" = [])), responses(
    (status = 200, body = AuditPage),
    (status = 400, body = crate::error::ErrorBody),
    (status = 401, body = crate::error::ErrorBody),
    (status = 403, body = crate::error::ErrorBody),
))]
#[get("/api/v1/audit")]
pub async fn list(
    _caller: Caller,
    state: web::Data<AppState>,
    params: web::Query<AuditParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 1000".to_owned(),
        ));
    }
    let cursor = match (params.after, params.before) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "give either after (oldest first) or before (newest first), not both".to_owned(),
            ));
        }
        (None, Some(before)) => AuditCursor::Before(Some(before)),
        (after, None) => AuditCursor::After(after.unwrap_or(0)),
    };
    let entries = state
        .store
        .filtered_audit(&params.filter(), cursor, limit)
        .await?;
    let next = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    let (next_after, next_before) = match cursor {
        AuditCursor::After(_) => (next, None),
        AuditCursor::Before(_) => (None, next),
    };
    Ok(HttpResponse::Ok().json(AuditPage {
        entries: entries.iter().map(AuditEntryView::from).collect(),
        next_after,
        next_before,
    }))
}

/// Walks the whole chain with the audit key and checks it against the
/// newest anchor: names the first entry that was edited, inserted or removed,
/// or the first one missing when the newest entries were cut.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", security(("bearer" = [])), responses(
    (status = 200, body = VerifyView),
    (status = 401, body = crate::error::ErrorBody),
    (status = 403, body = crate::error::ErrorBody),
    (status = 500, description = "The anchor file cannot be read", body = crate::error::ErrorBody),
))]
#[get("/api/v1/audit/verify")]
pub async fn verify(_caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (report, anchor) = service::audit::verify_chain(&state.store, &state.anchors).await?;
    Ok(HttpResponse::Ok().json(VerifyView::new(report, anchor)))
}
