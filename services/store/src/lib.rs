//! sqlx storage of pilotgate, on SQLite (the default) or PostgreSQL, chosen at
//! runtime from the URL scheme. All SQL of the project lives in this crate.
//!
//! Queries are written once, in the subset of SQL both dialects share, and
//! run through sqlx's `Any` driver. Every instant is stored as microseconds
//! since the Unix epoch and every flag as 0/1, so no dialect-specific type is
//! needed; the few real dialect differences live in `db`.
//!
//! Layers, each depending only on those above it: `db` (connections,
//! transactions, dialect; knows no feature) and the shared `cache`, `clock`,
//! `group`; `core` (what every feature works with); one module per resource
//! (`audit`, `tokens`, `sessions`, `purposes`, `keys`, `links`, `consents`,
//! `experiments`, `erasure`, `refusals`, `assignments`, `events`) and
//! `reports` (the aggregations that feed analysis). `Store`, here, is the
//! facade: it holds the core and the features' own state (group commits,
//! caches) and is what the rest of pilotgate uses.
#![forbid(unsafe_code)]

mod access;
mod aggregates;
mod assignments;
mod audit;
mod cache;
mod clock;
mod consents;
mod core;
mod db;
mod eligible_share;
mod erasure;
mod error;
mod events;
mod experiments;
mod exports;
mod group;
mod inventory;
mod keys;
mod links;
mod notices;
mod privacy_links;
mod purge;
mod purposes;
mod reconsent;
mod refusals;
mod reports;
mod sessions;
mod tokens;

#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use pilotgate_domain::eligibility::Signals;
use pilotgate_domain::inventory::segments::Attributes;
use pilotgate_domain::pseudonym::Pseudonym;

pub use access::{ErasureRecord, EventCount};
pub use assignments::{AssignOutcome, Assignment, AssignmentTarget};
pub use audit::AuditQuery;
pub use audit::{AuditCursor, AuditFilter};
pub use consents::{Appended, BasisCount, LegalBasisMap, ReconsentNeed};
pub use core::Core;
pub use db::{Db, Dialect};
pub use eligible_share::PurposeEligibility;
pub use erasure::{Deleted, ErasedVersion, ErasureReceipt};
pub use error::StoreError;
pub use events::{EventDraft, EventFate, StoredEvent};
pub use experiments::{ApprovalRecord, Experiment, ReturnedToDraft};
pub use exports::{ExportRequest, NewExportRequest, Recipient, check_downloadable};
pub use keys::KeyState;
pub use notices::{NewReceipt, NoticeVersion, StoredNotice};
pub use privacy_links::{NewPrivacyLink, StoredPrivacyLink};
pub use purge::{LedgerSubject, PurgeCandidate, RawCounts, StoredSummary};
pub use purposes::{PurposeRecord, PurposeUpdate, PurposeVersion, RecordedAssessment};
pub use reconsent::ReconsentAsks;
pub use reports::{AttritionDay, CovariateSums, DailySums, SegmentOf};
pub use sessions::StoredSession;
pub use tokens::{NewToken, StoredCredential, TokenRecord};

/// The handle to pilotgate's database. Cheap to clone. Every operation that
/// needs no feature state is a method of [`Core`], reached through `Deref`.
#[derive(Clone)]
pub struct Store {
    pub(crate) core: Core,
    pub(crate) assigner: assignments::Assigner,
    pub(crate) ingest: events::Ingest,
    pub(crate) credentials: Arc<tokens::Credentials>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never print it.
        f.debug_struct("Store")
            .field("dialect", &self.core.dialect())
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for Store {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl Store {
    /// Opens the database named by `url`: `sqlite://FILE` (created if missing,
    /// readable by its owner only) or `postgres://…`.
    /// Applies every pending migration, then builds the results'
    /// aggregates of rows stored before migration 0018 (once).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.core.db.migrate().await?;
        self.core.build_pending_aggregates().await
    }

    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Ok(Store {
            core: Core::new(Db::connect(url).await?),
            assigner: assignments::Assigner::default(),
            ingest: events::Ingest::default(),
            credentials: Arc::default(),
        })
    }

    /// Starts what a long-running server runs beside its requests, on the
    /// current Tokio runtime (the server's own, not an HTTP worker's): the
    /// group commits (see `group.rs`) and, on SQLite only, the read caches
    /// (see `cache.rs`), which make repeat reads free and follow every commit,
    /// of this process at once and of others within milliseconds, and the WAL
    /// checkpoints off the commit path (see `db/checkpoint.rs`). On PostgreSQL
    /// the caches stay off, because other instances write too. The caches
    /// turn on once the watcher has its first reading.
    pub fn start_server_tasks(&self) {
        self.assigner.start(&self.core);
        self.ingest.start(&self.core);
        // The results' aggregates fold the events' queued outcome changes.
        let core = self.core.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(aggregates::fold::FOLD_INTERVAL).await;
                if let Err(error) = core.fold_outcomes().await {
                    tracing::warn!(%error, "folding the queued outcome changes failed; the next fold retries");
                }
            }
        });
        if self.core.dialect() == Dialect::Sqlite {
            let (pool, generation) = (self.core.reader.clone(), Arc::clone(&self.core.generation));
            tokio::spawn(async move {
                if let Ok(conn) = pool.acquire().await {
                    cache::watch(conn.detach(), pool, &generation).await;
                }
            });
            let pool = self.core.reader.clone();
            tokio::spawn(async move {
                if let Ok(conn) = pool.acquire().await {
                    db::checkpoint::run(conn.detach(), pool).await;
                }
            });
        }
    }

    /// The stored hash and role of the token with public id `token_id`
    /// (cached on SQLite: a revocation makes the entry stale).
    pub async fn credential(&self, token_id: &str) -> Result<Option<StoredCredential>, StoreError> {
        self.credentials.get(&self.core, token_id).await
    }

    /// The pilot `key` with its purpose and variants, or `None`.
    pub async fn assignment_target(
        &self,
        key: &str,
    ) -> Result<Option<AssignmentTarget>, StoreError> {
        self.assigner.target(&self.core, key).await
    }

    /// Assigns the person known by `candidates` (current key first) to a
    /// variant of `target`, if eligible now; sticky once assigned.
    pub async fn assign(
        &self,
        target: &AssignmentTarget,
        candidates: &[Pseudonym],
        now: DateTime<Utc>,
    ) -> Result<AssignOutcome, StoreError> {
        self.assign_with(target, candidates, now, Signals::default())
            .await
    }

    /// [`Store::assign`] with what the request said besides the ledger
    /// (`signals`: a Global Privacy Control signal refuses subjects whose
    /// basis is legitimate interest as `objected`, for this call only).
    pub async fn assign_with(
        &self,
        target: &AssignmentTarget,
        candidates: &[Pseudonym],
        now: DateTime<Utc>,
        signals: Signals,
    ) -> Result<AssignOutcome, StoreError> {
        self.assign_with_attributes(target, candidates, now, signals, &Attributes::default())
            .await
    }

    /// [`Store::assign_with`] that keeps, with a first assignment, the
    /// segment `attributes` the shop sent (parsed against the pilot's
    /// declared segments: nothing else can be stored).
    pub async fn assign_with_attributes(
        &self,
        target: &AssignmentTarget,
        candidates: &[Pseudonym],
        now: DateTime<Utc>,
        signals: Signals,
        attributes: &Attributes,
    ) -> Result<AssignOutcome, StoreError> {
        let outcome = self
            .assigner
            .assign(&self.core, target, candidates, now, signals, attributes)
            .await?;
        if let (AssignOutcome::Ineligible(_), Some(current)) = (&outcome, candidates.first()) {
            self.core.count_refused_bucket(target, current, now).await?;
        }
        Ok(outcome)
    }

    /// Records a batch. Concurrent batches are stored together in one
    /// transaction under the subject write lock, and every decision holds for
    /// the ledger as it is under that lock; the answer comes only after the
    /// commit.
    pub async fn record_events(
        &self,
        events: Vec<EventDraft>,
    ) -> Result<Vec<EventFate>, StoreError> {
        self.ingest.record(&self.core, events).await
    }
}
