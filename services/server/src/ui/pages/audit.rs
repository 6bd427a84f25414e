//! The audit log, a page of entries at a time, newest first, with the
//! chain's verdict.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use pilotgate_dashboards as view;
use pilotgate_dashboards::urls;
use pilotgate_store::AuditQuery;
use serde::Deserialize;

use super::when;
use crate::startup::AppState;
use crate::ui::{Session, UiError, html};

/// The query of the audit page: entries before an id (older) or after one (newer).
#[derive(Deserialize)]
pub struct AuditPageQuery {
    before: Option<i64>,
    after: Option<i64>,
}

pub async fn page(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<AuditPageQuery>,
) -> Result<HttpResponse, UiError> {
    session.may_read("/api/v1/audit")?;
    const PAGE: i64 = 100;
    // Newest first; `after` pages towards the newest, `before` towards the oldest.
    let (entries, more_newer, more_older) = match query.after {
        Some(after) => {
            let entries = state
                .store
                .list_audit(&AuditQuery {
                    after: Some(after.max(0)),
                    limit: PAGE + 1,
                    target: None,
                })
                .await;
            match entries {
                Ok(mut entries) => {
                    let more = entries.len() as i64 > PAGE;
                    entries.truncate(PAGE as usize);
                    entries.reverse();
                    let older = entries.last().is_some_and(|e| e.id > 1);
                    (Ok(entries), more, older)
                }
                Err(error) => (Err(error), false, false),
            }
        }
        None => match state.store.list_audit_before(query.before, PAGE + 1).await {
            Ok(mut entries) => {
                let more = entries.len() as i64 > PAGE;
                entries.truncate(PAGE as usize);
                (Ok(entries), query.before.is_some(), more)
            }
            Err(error) => (Err(error), false, false),
        },
    };
    let entries = entries.map_err(|e| session.fail(e))?;
    let chain = state
        .audit_verification
        .verify(&state.store, &state.anchors)
        .await
        .map_err(|e| session.fail(e))?;
    let rows = entries
        .iter()
        .map(|e| view::AuditRow {
            id: u64::try_from(e.id).unwrap_or(0),
            at: when(pilotgate_domain::time::from_micros(e.at)),
            actor: e.actor.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            hash: e.hash.chars().take(12).collect(),
        })
        .collect::<Vec<_>>();
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
    };
    Ok(html(StatusCode::OK, &page))
}
