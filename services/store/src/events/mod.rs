//! Conversion and exposure events: stored only for a subject that holds an
//! assignment in a running pilot, measures one of its metrics, and is
//! eligible for the pilot's purpose when the event occurred (and has not
//! withdrawn since). An event is identified by its id, user and occurrence,
//! so a retry stores nothing new. Batches are stored by a group commit
//! (`commit.rs`) whose decisions the pure rule makes (`rule.rs`), on SQLite
//! from a snapshot read ahead and remembered per change epoch (`memo.rs`).
//!
//! Events are keyed by (pilot, occurrence, subject, event id), on SQLite one
//! `WITHOUT ROWID` B-tree holding the whole row: events mostly arrive soon
//! after they occur, so one commit's inserts land together at the end of the
//! pilot's range instead of one dirty page per event all over a tree keyed by
//! random hashes (`bench/events_layout.py`: 636 instead of 7,983 bytes
//! written per event, 4.6× the insert rate). The price is paid by the
//! results' aggregation, which must look each event's subject up in the
//! assignments (`reports`: 1.37 s instead of 0.52 s for 100,000 subjects and
//! 1,000,000 events, `bench/results.sh` on both layouts side by side).
//! Erasure scans the events of the subject's pilots.
//!
//! On SQLite, while the writer commits one group, the next group's
//! assignments, ledger facts and erasures are read on two look-ahead
//! connections, each in a read transaction that also reads the one-row
//! `change_epoch`, and decided. The commit reads the epoch again under the
//! write lock: if it still reads the same, no change that may alter a
//! decision committed since (every write but the appends moves it), and the
//! decisions stand; otherwise it reads and decides again under the lock.
//! Appends alter no decision already made: an assignment answered before an
//! event was sent is in the snapshot. On PostgreSQL every decision is made
//! under the lock.

mod commit;
mod memo;
pub(crate) mod rule;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use pilotgate_domain::refusal::Refusal;
use pilotgate_domain::time::from_micros;
use serde::Serialize;
use sqlx::Row;

use crate::core::Core;
use crate::error::StoreError;
use crate::group::{Grouped, Queue};
use memo::{Foresight, Memo};

/// One event of a batch, its subject already pseudonymized.
#[derive(Debug, Clone)]
pub struct EventDraft {
    pub event_id: String,
    /// The subject's pseudonyms, current key first.
    pub subjects: Vec<String>,
    pub name: String,
    pub value: Option<f64>,
    pub occurred_at: DateTime<Utc>,
}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum EventFate {
    /// Stored for at least one pilot.
    Accepted,
    /// The same event (id, user, occurrence) was stored before; nothing new was stored.
    Duplicate,
    /// Not stored, and why.
    Refused(Refusal),
}

/// A stored event, for export and analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    pub event_id: String,
    pub subject: String,
    pub name: String,
    pub value: Option<f64>,
    pub occurred_at: DateTime<Utc>,
    /// When the server stored it: the instant of its eligibility decision.
    pub received_at: DateTime<Utc>,
}

/// The event feature: its group commit and what its reads ahead remember.
#[derive(Clone, Default)]
pub(crate) struct Ingest {
    queue: Queue<PendingEvents>,
    pub(crate) memo: Arc<Memo>,
}

/// What the group commit of events works with.
#[derive(Clone)]
pub(crate) struct EventsContext {
    pub(crate) core: Core,
    pub(crate) memo: Arc<Memo>,
}

impl std::ops::Deref for EventsContext {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl Ingest {
    pub(crate) fn context(&self, core: &Core) -> EventsContext {
        EventsContext {
            core: core.clone(),
            memo: Arc::clone(&self.memo),
        }
    }

    /// Starts the group commit on the current runtime.
    pub(crate) fn start(&self, core: &Core) {
        self.queue.start(&self.context(core));
    }

    /// Records a batch. Concurrent batches are stored together in one
    /// transaction under the subject write lock, and every decision holds for
    /// the ledger as it is under that lock (made there, or made ahead and
    /// confirmed there: see [`Foresight`]); the answer comes only after the
    /// commit.
    pub(crate) async fn record(
        &self,
        core: &Core,
        events: Vec<EventDraft>,
    ) -> Result<Vec<EventFate>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.queue
            .submit(&self.context(core), PendingEvents(events))
            .await
    }
}

impl Core {
    /// The events of a pilot, for export and analysis.
    pub async fn events_of(&self, experiment_key: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query("SELECT event_id, subject, name, value, occurred_at, received_at FROM events WHERE experiment_key = $1 ORDER BY occurred_at, received_at, event_id")
            .bind(experiment_key)
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredEvent {
                    event_id: row.try_get("event_id")?,
                    subject: row.try_get("subject")?,
                    name: row.try_get("name")?,
                    value: row.try_get("value")?,
                    occurred_at: from_micros(row.try_get("occurred_at")?),
                    received_at: from_micros(row.try_get("received_at")?),
                })
            })
            .collect()
    }
}

/// One request's batch, waiting for the next group commit.
pub(crate) struct PendingEvents(Vec<EventDraft>);

impl Grouped for PendingEvents {
    type Out = Vec<EventFate>;
    /// Events per group commit: several requests' batches share one transaction.
    const MAX: usize = 10_000;
    type Context = EventsContext;
    type Ahead = Option<Foresight>;

    fn weight(&self) -> usize {
        self.0.len()
    }

    /// On SQLite (see [`Foresight`]).
    fn reads_ahead(context: &EventsContext) -> bool {
        context.core.lookahead.is_some()
    }

    async fn ahead(context: &EventsContext, jobs: &[Self]) -> Option<Foresight> {
        let all: Vec<&EventDraft> = jobs.iter().flat_map(|job| &job.0).collect();
        context.foresee(&all).await
    }

    async fn commit(
        context: &EventsContext,
        jobs: &[Self],
        ahead: Option<Foresight>,
    ) -> Result<Vec<Vec<EventFate>>, StoreError> {
        let all: Vec<&EventDraft> = jobs.iter().flat_map(|job| &job.0).collect();
        let mut fates = context.record_events_now(&all, ahead).await?.into_iter();
        Ok(jobs
            .iter()
            .map(|job| fates.by_ref().take(job.0.len()).collect())
            .collect())
    }
}
