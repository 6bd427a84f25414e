//! The audit chain's verdict: a whole walk against the newest anchor (the
//! API and the CLI), and the audit page's walk that reuses its last verdict
//! while the chain's head and anchor stay.

use std::sync::Mutex;

use pilotgate_domain::audit::ChainReport;
use pilotgate_store::Store;

use super::ServiceError;
use crate::anchor::{Anchor, AnchorFile};

/// Walks the whole chain against the newest anchor of this database in `anchors`.
pub async fn verify_chain(
    store: &Store,
    anchors: &AnchorFile,
) -> Result<(ChainReport, Option<Anchor>), ServiceError> {
    let database = store.database_id().await?;
    let anchor = anchors.latest(&database).map_err(ServiceError::internal)?;
    let report = store
        .verify_audit_chain(anchor.as_ref().map(Anchor::chain_head))
        .await?;
    Ok((report, anchor))
}

/// The audit page's last verdict on the chain.
#[derive(Debug, Default)]
pub struct LastVerdict(Mutex<Option<ChainReport>>);

impl LastVerdict {
    /// The chain's verdict for the audit page, reused while the chain's head
    /// and its anchor stay the same; when the chain grew, only the new
    /// entries are read. (`GET /api/v1/audit/verify` and `pilotgate audit
    /// verify` always walk the whole chain: an entry edited below a head the
    /// page verified before shows there.)
    pub async fn verify(
        &self,
        store: &Store,
        anchors: &AnchorFile,
    ) -> Result<ChainReport, ServiceError> {
        let database = store.database_id().await?;
        let anchor = anchors
            .latest(&database)
            .map_err(ServiceError::internal)?
            .map(|a| a.chain_head());
        let head = store.audit_head().await?;
        let cached = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let report = match cached {
            Some(report) if report.head == head && report.anchor == anchor => return Ok(report),
            Some(report)
                if report.ok && report.anchor == anchor && report.head.entries < head.entries =>
            {
                store
                    .resume_audit_verification(anchor, &report.head)
                    .await?
            }
            _ => store.verify_audit_chain(anchor).await?,
        };
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(report.clone());
        Ok(report)
    }
}
