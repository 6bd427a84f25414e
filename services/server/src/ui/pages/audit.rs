//! The audit log, a page of entries at a time, newest first, filtered by
//! actor, action and target, each entry summed up in a sentence, with the
//! chain's verdict.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;
use pilotgate_domain::audit::AuditEntry;
use pilotgate_store::{AuditCursor, AuditFilter};
use serde::Deserialize;

use super::audit_summary::summarize;
use super::when;
use crate::startup::AppState;
use crate::ui::{Session, UiError, html};

/// Entries per page.
const PAGE: i64 = 100;

/// The query of the audit page: entries before an id (older) or after one
/// (newer), and the filters, as `GET /api/v1/audit` takes them.
#[derive(Deserialize)]
pub struct AuditPageQuery {
    before: Option<i64>,
    after: Option<i64>,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
}

impl AuditPageQuery {
    fn fields(&self) -> view::AuditFilterFields {
        view::AuditFilterFields {
            actor: self.actor.trim().to_owned(),
            action: self.action.trim().to_owned(),
            target: self.target.trim().to_owned(),
        }
    }
}

fn filter_of(fields: &view::AuditFilterFields) -> AuditFilter {
    let given = |value: &str| (!value.is_empty()).then(|| value.to_owned());
    AuditFilter {
        actor: given(&fields.actor),
        action: given(&fields.action),
        target: given(&fields.target),
    }
}

/// One page, newest first: the entries, whether newer ones exist, whether older ones do.
async fn entries_of(
    state: &AppState,
    filter: &AuditFilter,
    query: &AuditPageQuery,
) -> Result<(Vec<AuditEntry>, bool, bool), pilotgate_store::StoreError> {
    let store = &state.store;
    match query.after {
        // Towards the newest: the page right after `after`, shown newest first.
        Some(after) => {
            let mut entries = store
                .filtered_audit(filter, AuditCursor::After(after.max(0)), PAGE + 1)
                .await?;
            let newer = entries.len() as i64 > PAGE;
            entries.truncate(PAGE as usize);
            entries.reverse();
            let older = match entries.last() {
                Some(oldest) => !store
                    .filtered_audit(filter, AuditCursor::Before(Some(oldest.id)), 1)
                    .await?
                    .is_empty(),
                None => false,
            };
            Ok((entries, newer, older))
        }
        None => {
            let mut entries = store
                .filtered_audit(filter, AuditCursor::Before(query.before), PAGE + 1)
                .await?;
            let older = entries.len() as i64 > PAGE;
            entries.truncate(PAGE as usize);
            let newer = match (query.before, entries.first()) {
                (None, _) => false,
                (Some(_), Some(newest)) => !store
                    .filtered_audit(filter, AuditCursor::After(newest.id), 1)
                    .await?
                    .is_empty(),
                (Some(_), None) => true,
            };
            Ok((entries, newer, older))
        }
    }
}

fn row_of(entry: &AuditEntry) -> view::AuditRow {
    let details: serde_json::Value = serde_json::from_str(&entry.details)
        .unwrap_or_else(|_| serde_json::Value::String(entry.details.clone()));
    view::AuditRow {
        id: u64::try_from(entry.id).unwrap_or(0),
        at: when(pilotgate_domain::time::from_micros(entry.at)),
        actor: entry.actor.clone(),
        action: entry.action.clone(),
        target: entry.target.clone(),
        hash: entry.hash.chars().take(12).collect(),
        summary: summarize(&entry.action, &entry.target, &details),
        details: serde_json::to_string_pretty(&details).unwrap_or_else(|_| entry.details.clone()),
    }
}

pub async fn page(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<AuditPageQuery>,
) -> Result<HttpResponse, UiError> {
    session.may_read("/api/v1/audit")?;
    let fields = query.fields();
    let (entries, more_newer, more_older) = entries_of(&state, &filter_of(&fields), &query)
        .await
        .map_err(|e| session.fail(e))?;
    let chain = state
        .audit_verification
        .verify(&state.store, &state.anchors)
        .await
        .map_err(|e| session.fail(e))?;
    let rows = entries.iter().map(row_of).collect::<Vec<_>>();
    let page = view::AuditPage {
        chrome: session.chrome("Audit log", urls::AUDIT),
        chain: match chain.first_bad_id {
            Some(id) => view::ChainStatus::Broken {
                first_bad_id: u64::try_from(id).unwrap_or(0),
            },
            None => view::ChainStatus::Valid {
                entries: chain.entries,
            },
        },
        older_before: more_older.then(|| rows.last().map(|r| r.id)).flatten(),
        newer_after: more_newer.then(|| rows.first().map(|r| r.id)).flatten(),
        entries: rows,
        filter: fields,
    };
    Ok(html(StatusCode::OK, &page))
}
