//! Conversion and exposure events: stored only for a subject that holds an
//! assignment in a running pilot, measures one of its metrics, and is eligible
//! for the pilot's purpose when the event occurred. An event is identified by
//! its id, user and occurrence, so a retry stores nothing new.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use pilotgate_domain::eligibility::{
    Eligibility, RecordFacts, eligible, withdrawn_assignment_reason,
};
use pilotgate_domain::experiment::{Metric, MetricKind};
use pilotgate_domain::purpose::Purpose;
use pilotgate_domain::time::{from_micros, to_micros};
use serde::Serialize;
use sqlx::{Executor, Row};

use crate::assignments::push_refusal_count;
use crate::cache::CAPACITY;
use crate::consents::ledger_facts_of;
use crate::db::Batch;
use crate::error::corrupt;
use crate::group::Grouped;
use crate::purposes::purposes_on;
use crate::{Store, StoreError};

/// Rows per multi-row INSERT of events (7 parameters each).
pub(crate) const INSERT_CHUNK: usize = 500;

/// Keys per `IN (...)` lookup: well below both engines' parameter limits.
pub(crate) const LOOKUP_CHUNK: usize = 1000;

/// Pseudonyms a read ahead reads on one connection; from twice as many, it
/// reads half on each of two.
const ONE_CONNECTION_READS: usize = 64;

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
    /// Not stored, with the reason code.
    Refused(String),
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

struct Held {
    experiment_key: String,
    subject: String,
    assigned_at: DateTime<Utc>,
    /// The assignment is marked withdrawn (a withdrawal, objection or denial
    /// was received): every later event is refused, whatever time it claims.
    withdrawn: bool,
    pilot: Arc<Pilot>,
}

/// What event ingestion needs of a running pilot.
struct Pilot {
    purpose: String,
    /// The event names it measures.
    metrics: Vec<String>,
}

/// One request's batch, waiting for the next group commit.
pub(crate) struct PendingEvents(Vec<EventDraft>);

impl Grouped for PendingEvents {
    type Out = Vec<EventFate>;
    /// Events per group commit: several requests' batches share one transaction.
    const MAX: usize = 10_000;
    type Ahead = Option<Foresight>;

    fn weight(&self) -> usize {
        self.0.len()
    }

    /// On SQLite (see [`Foresight`]).
    fn reads_ahead(store: &Store) -> bool {
        store.lookahead.is_some()
    }

    async fn ahead(store: &Store, jobs: &[Self]) -> Option<Foresight> {
        let all: Vec<&EventDraft> = jobs.iter().flat_map(|job| &job.0).collect();
        store.foresee(&all).await
    }

    async fn commit(
        store: &Store,
        jobs: &[Self],
        ahead: Option<Foresight>,
    ) -> Result<Vec<Vec<EventFate>>, StoreError> {
        let all: Vec<&EventDraft> = jobs.iter().flat_map(|job| &job.0).collect();
        let mut fates = store.record_events_now(&all, ahead).await?.into_iter();
        Ok(jobs
            .iter()
            .map(|job| fates.by_ref().take(job.0.len()).collect())
            .collect())
    }
}

/// A group's decisions, made ahead of its commit from a snapshot of the
/// ledger (SQLite only). They hold if no change that may alter a decision
/// committed since: the change epoch (migration 0004), which every write but
/// the appends moves in its own transaction, still reads the same under the
/// write lock. Appends alter no decision already made: a first-time
/// assignment answered before an event was sent is in the snapshot.
pub(crate) struct Foresight {
    epoch: i64,
    /// The assignments the verdicts of `decided` point into.
    holdings: Vec<Arc<Held>>,
    decided: Vec<Decided>,
}

/// What the reads ahead learned at one change epoch (SQLite only): the
/// running pilots, the purposes and, per pseudonym, its assignments in the
/// running pilots, its ledger facts and whether it was erased. A write that
/// may change any of these moves the epoch (see [`Foresight`]), except one:
/// first-time assignments are appended without moving it. So a pseudonym is
/// recalled only while it holds an assignment in every running pilot (at most
/// one each: the key is (pilot, subject)), which no append can change; any
/// other is read again. A subject who keeps sending events costs no read
/// until the next change of the ledger.
#[derive(Default)]
pub(crate) struct Memo(Mutex<Recalled>);

#[derive(Default)]
struct Recalled {
    /// The epoch everything below was read at; `None` before the first read.
    epoch: Option<i64>,
    pilots: Arc<RunningPilots>,
    purposes: Arc<Purposes>,
    known: HashMap<String, Known>,
}

/// One pseudonym, as read at the memo's epoch.
struct Known {
    holdings: Vec<Arc<Held>>,
    facts: Option<Facts>,
    erased: bool,
}

impl Memo {
    fn lock(&self) -> std::sync::MutexGuard<'_, Recalled> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pilots and purposes read at `epoch`, if this memo holds that epoch.
    fn context(&self, epoch: i64) -> Option<(Arc<RunningPilots>, Arc<Purposes>)> {
        let memo = self.lock();
        (memo.epoch == Some(epoch)).then(|| (Arc::clone(&memo.pilots), Arc::clone(&memo.purposes)))
    }

    /// Starts over at `epoch`, with what was read at it.
    fn restart(&self, epoch: i64, pilots: &Arc<RunningPilots>, purposes: &Arc<Purposes>) {
        *self.lock() = Recalled {
            epoch: Some(epoch),
            pilots: Arc::clone(pilots),
            purposes: Arc::clone(purposes),
            known: HashMap::new(),
        };
    }

    /// What is known at `epoch` of `subjects`, and the subjects to read.
    fn recall<'s>(&self, epoch: i64, subjects: &[&'s str]) -> (Ledger, Vec<&'s str>) {
        let memo = self.lock();
        let mut ledger = Ledger::default();
        if memo.epoch != Some(epoch) {
            return (ledger, subjects.to_vec());
        }
        let mut unknown = Vec::new();
        for &subject in subjects {
            let Some(known) = memo.known.get(subject) else {
                unknown.push(subject);
                continue;
            };
            let first = ledger.holdings.len();
            ledger.holdings.extend(known.holdings.iter().cloned());
            ledger
                .held
                .insert(subject.to_owned(), (first..ledger.holdings.len()).collect());
            if let Some(facts) = &known.facts {
                ledger.records.insert(subject.to_owned(), Arc::clone(facts));
            }
            if known.erased {
                ledger.erased.insert(subject.to_owned());
            }
        }
        (ledger, unknown)
    }

    /// Keeps what `read` (read at `epoch`) says of the pseudonyms that hold an
    /// assignment in every running pilot.
    fn learn(&self, epoch: i64, read: &Ledger) {
        let mut memo = self.lock();
        if memo.epoch != Some(epoch) || memo.pilots.is_empty() {
            return;
        }
        for (subject, holdings) in &read.held {
            if holdings.len() != memo.pilots.len() {
                continue;
            }
            if memo.known.len() >= CAPACITY {
                memo.known.clear();
            }
            let known = Known {
                holdings: holdings
                    .iter()
                    .map(|&i| Arc::clone(&read.holdings[i]))
                    .collect(),
                facts: read.records.get(subject).cloned(),
                erased: read.erased.contains(subject),
            };
            memo.known.insert(subject.clone(), known);
        }
    }
}

impl Store {
    /// Records a batch. Concurrent batches are stored together in one
    /// transaction under the subject write lock, and every decision holds for
    /// the ledger as it is under that lock (made there, or made ahead and
    /// confirmed there: see [`Foresight`]); the answer comes only after the
    /// commit.
    pub async fn record_events(
        &self,
        events: Vec<EventDraft>,
    ) -> Result<Vec<EventFate>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.event_queue.submit(self, PendingEvents(events)).await
    }

    /// Decides `events` from a snapshot read on the look-ahead connections
    /// while the writer commits the group before them. `None` on PostgreSQL
    /// (several instances write; no epoch moves there), if the snapshots of
    /// the two connections differ, or if a read fails: the commit then reads
    /// under the lock.
    async fn foresee(&self, events: &[&EventDraft]) -> Option<Foresight> {
        let pool = self.lookahead.as_ref()?;
        let read = async {
            let Some((epoch, ledger)) = self.read_ahead(pool, &subjects_of(events)).await? else {
                return Ok(None);
            };
            let decided = ledger.decide_all(events)?;
            Ok::<_, StoreError>(Some(Foresight {
                epoch,
                holdings: ledger.holdings,
                decided,
            }))
        };
        match read.await {
            Ok(foresight) => foresight,
            Err(error) => {
                tracing::debug!(%error, "events read ahead failed; the commit reads under the lock");
                None
            }
        }
    }

    /// The change epoch and the ledger of `subjects` at that epoch: what the
    /// [`Memo`] knows of it, and the rest read in a read transaction whose
    /// first read is the epoch (half of them in a second one on the other
    /// look-ahead connection, when there are many). `None` if the two
    /// transactions read different epochs.
    async fn read_ahead(
        &self,
        pool: &sqlx::AnyPool,
        subjects: &[&str],
    ) -> Result<Option<(i64, Ledger)>, StoreError> {
        let mut first = pool.begin().await?;
        // The first read fixes the snapshot every later read of `first` sees.
        let epoch = change_epoch(&mut first).await?;
        let (pilots, purposes) = match self.memo.context(epoch) {
            Some(context) => context,
            None => {
                let pilots = Arc::new(running_pilots(&mut first).await?);
                let purposes = Arc::new(purposes_by_key(purposes_on(&mut first).await?));
                self.memo.restart(epoch, &pilots, &purposes);
                (pilots, purposes)
            }
        };
        let (mut ledger, unknown) = self.memo.recall(epoch, subjects);
        let (mine, theirs) = if unknown.len() < 2 * ONE_CONNECTION_READS {
            (&unknown[..], &[][..])
        } else {
            unknown.split_at(unknown.len() / 2)
        };
        let other = async {
            if theirs.is_empty() {
                return Ok(None);
            }
            let mut second = pool.begin().await?;
            let other_epoch = change_epoch(&mut second).await?;
            let read = self.read_ledger(&mut second, &pilots, theirs).await?;
            second.rollback().await?;
            Ok::<_, StoreError>(Some((other_epoch, read)))
        };
        let (read, other) = tokio::try_join!(self.read_ledger(&mut first, &pilots, mine), other)?;
        first.rollback().await?;
        let mut reads = vec![read];
        if let Some((other_epoch, read)) = other {
            if other_epoch != epoch {
                return Ok(None);
            }
            reads.push(read);
        }
        for read in reads {
            self.memo.learn(epoch, &read);
            ledger.absorb(read);
        }
        ledger.purposes = purposes;
        Ok(Some((epoch, ledger)))
    }

    /// The assignments of `subjects` in the running `pilots`, their ledger
    /// facts and their erasures (sorted: SQLite builds each `IN (…)` list and
    /// walks the B-trees faster in key order). The purposes are left empty.
    async fn read_ledger(
        &self,
        conn: &mut sqlx::AnyConnection,
        pilots: &RunningPilots,
        subjects: &[&str],
    ) -> Result<Ledger, StoreError> {
        let mut ledger = Ledger::default();
        for chunk in subjects.chunks(LOOKUP_CHUNK) {
            let list = self.dialect.placeholders(1, chunk.len());
            for holding in held_assignments(&mut *conn, self.dialect, pilots, chunk, &list).await? {
                ledger
                    .held
                    .entry(holding.subject.clone())
                    .or_default()
                    .push(ledger.holdings.len());
                ledger.holdings.push(Arc::new(holding));
            }
            let (facts, gone) = ledger_facts_of(&mut *conn, self.dialect, chunk).await?;
            ledger.records.extend(
                facts
                    .into_iter()
                    .map(|(subject, facts)| (subject, Arc::new(facts))),
            );
            ledger.erased.extend(gone);
        }
        Ok(ledger)
    }

    async fn record_events_now(
        &self,
        events: &[&EventDraft],
        ahead: Option<Foresight>,
    ) -> Result<Vec<EventFate>, StoreError> {
        let mut tx = self.begin_subject_append().await?;
        let now = self.now();
        let (holdings, decided) = match ahead {
            Some(foresight) if change_epoch(&mut tx).await? == foresight.epoch => {
                (foresight.holdings, foresight.decided)
            }
            _ => {
                let pilots = running_pilots(&mut tx).await?;
                let mut ledger = self
                    .read_ledger(&mut tx, &pilots, &subjects_of(events))
                    .await?;
                ledger.purposes = Arc::new(purposes_by_key(purposes_on(&mut tx).await?));
                let decided = ledger.decide_all(events)?;
                (ledger.holdings, decided)
            }
        };
        let holdings = &holdings;
        let verdicts = || {
            events.iter().zip(&decided).flat_map(|(&event, decided)| {
                let verdicts = match decided {
                    Decided::Verdicts(verdicts) => verdicts.as_slice(),
                    Decided::Again | Decided::Unassigned => &[],
                };
                verdicts
                    .iter()
                    .map(move |verdict| (verdict, &*holdings[verdict.holding], event))
            })
        };

        // Store what the ledger allows, in key order. A key stored before is
        // a retry: a duplicate. Retries are rare, so each chunk is inserted
        // first and looked up only if some of its keys were there already.
        let mut rows: Vec<(&Held, &EventDraft)> = verdicts()
            .filter(|(verdict, _, _)| verdict.refusal.is_none())
            .map(|(_, holding, event)| (holding, event))
            .collect();
        rows.sort_unstable_by(|(a, x), (b, y)| key_parts(a, x).cmp(&key_parts(b, y)));
        let mut stored_before = HashSet::new();
        for chunk in rows.chunks(INSERT_CHUNK) {
            stored_before.extend(insert_new(&mut tx, self.dialect, chunk, now).await?);
        }
        // A refused event may be the retry of one stored while its subject
        // was still eligible (a retry after a withdrawal): a duplicate too.
        let refused: Vec<(&Held, &EventDraft)> = verdicts()
            .filter(|(verdict, _, _)| verdict.refusal.is_some())
            .map(|(_, holding, event)| (holding, event))
            .collect();
        for chunk in refused.chunks(LOOKUP_CHUNK) {
            stored_before.extend(stored_keys(&mut tx, self.dialect, chunk).await?);
        }
        // An event of no running pilot may be the retry of one stored before
        // its pilot stopped: a duplicate too.
        let unassigned: Vec<&EventDraft> = events
            .iter()
            .zip(&decided)
            .filter(|(_, decided)| matches!(decided, Decided::Unassigned))
            .map(|(&event, _)| event)
            .collect();
        let mut stored_elsewhere = HashSet::new();
        for chunk in unassigned.chunks(LOOKUP_CHUNK / 4) {
            stored_elsewhere.extend(stored_in_stopped_pilots(&mut tx, self.dialect, chunk).await?);
        }

        let mut refusals: HashMap<(&str, &str), i64> = HashMap::new();
        let mut fates = Vec::with_capacity(events.len());
        for (&event, decided) in events.iter().zip(&decided) {
            let verdicts = match decided {
                Decided::Again => {
                    fates.push(EventFate::Duplicate);
                    continue;
                }
                Decided::Unassigned => {
                    let retry = event
                        .subjects
                        .iter()
                        .any(|subject| stored_elsewhere.contains(&unpiloted_key(event, subject)));
                    fates.push(if retry {
                        EventFate::Duplicate
                    } else {
                        EventFate::Refused("no_assignment".to_owned())
                    });
                    continue;
                }
                Decided::Verdicts(verdicts) => verdicts,
            };
            let (mut accepted, mut duplicate, mut reasons) = (false, false, Vec::new());
            for verdict in verdicts {
                let holding = &holdings[verdict.holding];
                if !stored_before.is_empty() && stored_before.contains(&event_key(holding, event)) {
                    duplicate = true;
                } else if let Some(why) = verdict.refusal {
                    reasons.push((holding.experiment_key.as_str(), why));
                } else {
                    accepted = true;
                }
            }
            // A retry counts no refusal: its first sending did.
            if !duplicate {
                for &pair in &reasons {
                    *refusals.entry(pair).or_default() += 1;
                }
            }
            let reason = reasons.first().map(|&(_, why)| why);
            fates.push(if accepted {
                EventFate::Accepted
            } else if duplicate {
                EventFate::Duplicate
            } else {
                EventFate::Refused(reason.unwrap_or_default().to_owned())
            });
        }
        let mut statements = Batch::default();
        for ((experiment_key, reason), count) in refusals {
            push_refusal_count(
                &mut statements,
                self.dialect,
                experiment_key,
                "event",
                reason,
                now,
                count,
            );
        }
        tx.commit_after(statements).await?;
        Ok(fates)
    }

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

/// One pseudonym's ledger facts, each with its purpose (shared with the [`Memo`]).
type Facts = Arc<Vec<(String, RecordFacts)>>;

/// The purposes by key.
type Purposes = HashMap<String, Purpose>;

fn purposes_by_key(purposes: Vec<Purpose>) -> Purposes {
    purposes
        .into_iter()
        .map(|p| (p.key.to_string(), p))
        .collect()
}

/// What the decision needs to know about the subjects of one commit.
#[derive(Default)]
pub(crate) struct Ledger {
    /// The assignments these subjects hold in running pilots.
    holdings: Vec<Arc<Held>>,
    /// Each pseudonym's assignments, as indices into `holdings`.
    held: HashMap<String, Vec<usize>>,
    records: HashMap<String, Facts>,
    erased: HashSet<String>,
    purposes: Arc<Purposes>,
}

/// What the ledger says about one event.
pub(crate) enum Decided {
    /// Its id came earlier in the same commit for the same user.
    Again,
    /// Its subject holds no assignment in a running pilot.
    Unassigned,
    /// One verdict per pilot its subject is assigned in.
    Verdicts(Vec<Verdict>),
}

/// Whether one event may be stored for one assignment, and if not, why.
pub(crate) struct Verdict {
    /// Index into [`Ledger::holdings`].
    holding: usize,
    refusal: Option<&'static str>,
}

/// The pseudonyms of `events`, sorted, each once.
fn subjects_of<'e>(events: &[&'e EventDraft]) -> Vec<&'e str> {
    let mut subjects: Vec<&str> = events
        .iter()
        .flat_map(|e| e.subjects.iter().map(String::as_str))
        .collect();
    subjects.sort_unstable();
    subjects.dedup();
    subjects
}

impl Ledger {
    /// Adds what `other` read of other subjects.
    fn absorb(&mut self, other: Ledger) {
        let offset = self.holdings.len();
        for (subject, holdings) in other.held {
            self.held
                .entry(subject)
                .or_default()
                .extend(holdings.into_iter().map(|i| i + offset));
        }
        self.holdings.extend(other.holdings);
        self.records.extend(other.records);
        self.erased.extend(other.erased);
    }

    /// Decides every event of a commit, in order.
    fn decide_all(&self, events: &[&EventDraft]) -> Result<Vec<Decided>, StoreError> {
        let mut batch_ids = HashSet::new();
        events
            .iter()
            .map(|&event| {
                // A retry within one commit: the same id, user and occurrence.
                if !batch_ids.insert((
                    event.event_id.as_str(),
                    event.subjects.first(),
                    event.occurred_at,
                )) {
                    Ok(Decided::Again)
                } else {
                    self.decide(event)
                }
            })
            .collect()
    }

    fn decide(&self, event: &EventDraft) -> Result<Decided, StoreError> {
        let mine: Vec<usize> = event
            .subjects
            .iter()
            .filter_map(|s| self.held.get(s))
            .flatten()
            .copied()
            .collect();
        if mine.is_empty() {
            return Ok(Decided::Unassigned);
        }
        let verdicts = mine
            .into_iter()
            .map(|holding| {
                Ok(Verdict {
                    holding,
                    refusal: self.refusal(&self.holdings[holding], event)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Decided::Verdicts(verdicts))
    }

    fn refusal(
        &self,
        holding: &Held,
        event: &EventDraft,
    ) -> Result<Option<&'static str>, StoreError> {
        if !holding.pilot.metrics.contains(&event.name) {
            return Ok(Some("not_a_metric"));
        }
        let purpose = self
            .purposes
            .get(&holding.pilot.purpose)
            .ok_or_else(|| corrupt("experiments.purpose"))?;
        let theirs: Vec<RecordFacts> = event
            .subjects
            .iter()
            .filter_map(|s| self.records.get(s))
            .flat_map(|facts| facts.iter())
            .filter(|(for_purpose, _)| *for_purpose == holding.pilot.purpose)
            .map(|(_, facts)| *facts)
            .collect();
        let is_erased = event.subjects.iter().any(|s| self.erased.contains(s));
        if holding.withdrawn && !is_erased {
            // Received after a withdrawal, objection or denial: refused
            // whatever time the event claims.
            return Ok(Some(withdrawn_assignment_reason(&theirs).as_str()));
        }
        if event.occurred_at < holding.assigned_at {
            return Ok(Some("before_assignment"));
        }
        Ok(
            match eligible(purpose, &theirs, is_erased, event.occurred_at) {
                Eligibility::Eligible(_) => None,
                Eligibility::Ineligible(reason) => Some(reason.as_str()),
            },
        )
    }
}

/// The change epoch (migration 0004), read in `conn`'s transaction.
async fn change_epoch(conn: &mut sqlx::AnyConnection) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT n FROM change_epoch WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// An event's key as one string: pilot, occurrence (µs), subject and event
/// id, none of which can hold the separator (control characters are refused
/// on arrival).
fn event_key(holding: &Held, event: &EventDraft) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}",
        holding.experiment_key,
        to_micros(event.occurred_at),
        holding.subject,
        event.event_id
    )
}

/// An event's key without its pilot, under one of its subject's pseudonyms.
fn unpiloted_key(event: &EventDraft, subject: &str) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}",
        to_micros(event.occurred_at),
        subject,
        event.event_id
    )
}

/// Which of `events` (under any of their pseudonyms) are stored in a pilot
/// that is not running, as [`unpiloted_key`]s, packed in one row.
async fn stored_in_stopped_pilots(
    conn: &mut sqlx::AnyConnection,
    dialect: crate::Dialect,
    events: &[&EventDraft],
) -> Result<Vec<String>, StoreError> {
    let keys: Vec<(i64, &str, &str)> = events
        .iter()
        .flat_map(|e| {
            e.subjects
                .iter()
                .map(|s| (to_micros(e.occurred_at), s.as_str(), e.event_id.as_str()))
        })
        .collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let values = dialect.value_rows(keys.len(), 3);
    let packed = dialect.packed_rows(&["e.occurred_at", "e.subject", "e.event_id"]);
    let sql = format!(
        "SELECT {packed} FROM (VALUES {values}) AS k JOIN experiments x ON x.state <> 'running' \
         JOIN events e ON e.experiment_key = x.key AND e.occurred_at = k.column1 \
         AND e.subject = k.column2 AND e.event_id = k.column3"
    );
    let mut query = sqlx::query_scalar::<_, Option<String>>(&sql);
    for (occurred_at, subject, event_id) in keys {
        query = query.bind(occurred_at).bind(subject).bind(event_id);
    }
    Ok(unpack(query.fetch_one(&mut *conn).await?))
}

/// The key's order: the table's, so that one commit's inserts land together.
fn key_parts<'r>(holding: &'r Held, event: &'r EventDraft) -> (&'r str, i64, &'r str, &'r str) {
    (
        &holding.experiment_key,
        to_micros(event.occurred_at),
        &holding.subject,
        &event.event_id,
    )
}

/// Stores those of `rows` (at most [`INSERT_CHUNK`]) whose key is new and
/// returns the keys that were stored before. Inside a savepoint: if the
/// insert stored fewer rows than it was given, it is undone, the stored keys
/// are looked up, and only the new rows are inserted.
async fn insert_new(
    conn: &mut sqlx::AnyConnection,
    dialect: crate::Dialect,
    rows: &[(&Held, &EventDraft)],
    now: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    conn.execute("SAVEPOINT new_events").await?;
    if insert_events(conn, dialect, rows, now).await? == rows.len() as u64 {
        conn.execute("RELEASE SAVEPOINT new_events").await?;
        return Ok(Vec::new());
    }
    conn.execute("ROLLBACK TO SAVEPOINT new_events").await?;
    let stored = stored_keys(conn, dialect, rows).await?;
    let known: HashSet<&str> = stored.iter().map(String::as_str).collect();
    let fresh: Vec<(&Held, &EventDraft)> = rows
        .iter()
        .filter(|(h, e)| !known.contains(event_key(h, e).as_str()))
        .copied()
        .collect();
    if !fresh.is_empty() {
        insert_events(conn, dialect, &fresh, now).await?;
    }
    conn.execute("RELEASE SAVEPOINT new_events").await?;
    Ok(stored)
}

/// Inserts `rows` and returns how many were new; the transaction holds the
/// subject write lock, so no other commit can store one of them meanwhile.
async fn insert_events(
    conn: &mut sqlx::AnyConnection,
    dialect: crate::Dialect,
    rows: &[(&Held, &EventDraft)],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let values = dialect.value_rows(rows.len(), 7);
    let sql = format!(
        "INSERT INTO events (experiment_key, subject, event_id, name, value, occurred_at, received_at) \
         VALUES {values} ON CONFLICT (experiment_key, occurred_at, subject, event_id) DO NOTHING"
    );
    let mut query = sqlx::query(&sql);
    for (holding, event) in rows {
        // Under the assignment's pseudonym, which may be of an older key.
        query = query
            .bind(&holding.experiment_key)
            .bind(&holding.subject)
            .bind(&event.event_id)
            .bind(&event.name)
            .bind(event.value)
            .bind(to_micros(event.occurred_at))
            .bind(to_micros(now));
    }
    Ok(query.execute(&mut *conn).await?.rows_affected())
}

/// Which of `rows` are stored, as [`event_key`]s, packed in one row
/// ([`crate::db::Dialect::packed_rows`]). Joining a list of values, not
/// `(…) IN (VALUES …)`, which SQLite answers by scanning the table.
async fn stored_keys(
    conn: &mut sqlx::AnyConnection,
    dialect: crate::Dialect,
    rows: &[(&Held, &EventDraft)],
) -> Result<Vec<String>, StoreError> {
    let values = dialect.value_rows(rows.len(), 4);
    let packed = dialect.packed_rows(&[
        "e.experiment_key",
        "e.occurred_at",
        "e.subject",
        "e.event_id",
    ]);
    let sql = format!(
        "SELECT {packed} FROM (VALUES {values}) AS k JOIN events e ON e.experiment_key = k.column1 \
         AND e.occurred_at = k.column2 AND e.subject = k.column3 AND e.event_id = k.column4"
    );
    let mut query = sqlx::query_scalar::<_, Option<String>>(&sql);
    for (holding, event) in rows {
        let (pilot, occurred_at, subject, event_id) = key_parts(holding, event);
        query = query
            .bind(pilot)
            .bind(occurred_at)
            .bind(subject)
            .bind(event_id);
    }
    Ok(unpack(query.fetch_one(&mut *conn).await?))
}

/// The records of a packed row ([`crate::db::Dialect::packed_rows`]), each
/// still holding its fields joined by the unit separator.
fn unpack(packed: Option<String>) -> Vec<String> {
    packed.map_or_else(Vec::new, |rows| {
        rows.split('\u{1e}').map(str::to_owned).collect()
    })
}

/// The running pilots by key.
type RunningPilots = HashMap<String, Arc<Pilot>>;

async fn running_pilots(conn: &mut sqlx::AnyConnection) -> Result<RunningPilots, StoreError> {
    let mut pilots = HashMap::new();
    for row in sqlx::query(
        "SELECT key, purpose, primary_event, guardrails FROM experiments WHERE state = 'running'",
    )
    .fetch_all(&mut *conn)
    .await?
    {
        let guardrails: Vec<Metric> =
            serde_json::from_str(&row.try_get::<String, _>("guardrails")?)
                .map_err(|_| corrupt("experiments.guardrails"))?;
        let mut metrics: Vec<String> = guardrails.into_iter().map(|m| m.event).collect();
        metrics.push(row.try_get("primary_event")?);
        let pilot = Pilot {
            purpose: row.try_get("purpose")?,
            metrics,
        };
        pilots.insert(row.try_get("key")?, Arc::new(pilot));
    }
    Ok(pilots)
}

/// The assignments `subjects` hold in `pilots`, packed in one row per chunk
/// ([`crate::db::Dialect::packed_rows`]).
async fn held_assignments(
    conn: &mut sqlx::AnyConnection,
    dialect: crate::Dialect,
    pilots: &RunningPilots,
    subjects: &[&str],
    list: &str,
) -> Result<Vec<Held>, StoreError> {
    if pilots.is_empty() {
        return Ok(Vec::new());
    }
    let packed = dialect.packed_rows(&[
        "a.experiment_key",
        "a.subject",
        "a.assigned_at",
        "CASE WHEN a.withdrawn_at IS NULL THEN 0 ELSE 1 END",
    ]);
    let sql = format!(
        "SELECT {packed} FROM assignments a JOIN experiments e ON e.key = a.experiment_key \
         WHERE e.state = 'running' AND a.subject IN ({list})"
    );
    let mut query = sqlx::query_scalar::<_, Option<String>>(&sql);
    for subject in subjects {
        query = query.bind(*subject);
    }
    let Some(rows) = query.fetch_one(&mut *conn).await? else {
        return Ok(Vec::new());
    };
    rows.split('\u{1e}')
        .map(|row| {
            let mut fields = row.split('\u{1f}');
            let mut next = || fields.next().ok_or_else(|| corrupt("assignments"));
            let (experiment_key, subject, assigned_at, withdrawn) =
                (next()?, next()?, next()?, next()?);
            let pilot = pilots
                .get(experiment_key)
                .ok_or_else(|| corrupt("assignments.experiment_key"))?;
            Ok(Held {
                experiment_key: experiment_key.to_owned(),
                subject: subject.to_owned(),
                assigned_at: from_micros(
                    assigned_at
                        .parse()
                        .map_err(|_| corrupt("assignments.assigned_at"))?,
                ),
                withdrawn: withdrawn == "1",
                pilot: Arc::clone(pilot),
            })
        })
        .collect()
}

/// What one assignment day of a pilot adds up to in one variant: the kept
/// (not withdrawn) subjects assigned that day and, per metric asked for, the
/// sum and the sum of squares of their per-user outcomes (converted 0/1 for
/// a binary metric, the summed event values for a sum metric).
#[derive(Debug, Clone, PartialEq)]
pub struct DailySums {
    pub variant: String,
    /// The UTC day of the assignments, counted from the epoch.
    pub day: i64,
    pub users: i64,
    /// `(sum, sum of squares)` per metric, in the order the metrics were asked for.
    pub per_metric: Vec<(f64, f64)>,
}

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;

impl Store {
    /// The sufficient statistics of a pilot's metrics per variant and
    /// assignment day, aggregated in the database (as GrowthBook aggregates
    /// in the warehouse): per-user outcomes under the attribution rules of
    /// `pilotgate analyze` (events at or after the assignment, and before its
    /// end when a window is given), then their sums per variant and day.
    /// Withdrawn subjects are left out; a user without events counts as 0.
    /// The events are stored in time order, so the per-user outcomes come
    /// from one pass over the pilot's events, each looked up in the
    /// assignments by its key, grouped by subject; then every kept assignment
    /// joins its outcome. No stored event can belong to an unknown subject:
    /// events are stored only for assigned subjects, and erasure removes both.
    pub async fn daily_outcome_sums(
        &self,
        experiment_key: &str,
        metrics: &[Metric],
        window_micros: Option<i64>,
    ) -> Result<Vec<DailySums>, StoreError> {
        let per_user = metrics
            .iter()
            .enumerate()
            .map(|(i, metric)| {
                let p = i + 3;
                match metric.kind {
                    MetricKind::Binary => format!(
                        "CAST(CASE WHEN COUNT(CASE WHEN e.name = ${p} THEN 1 END) > 0 THEN 1 ELSE 0 END AS DOUBLE PRECISION) AS y{i}"
                    ),
                    MetricKind::Sum => format!(
                        "COALESCE(SUM(CASE WHEN e.name = ${p} THEN COALESCE(e.value, 0.0) ELSE 0.0 END), 0.0) AS y{i}"
                    ),
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sums = (0..metrics.len())
            .map(|i| {
                format!(
                    "SUM(COALESCE(o.y{i}, 0.0)) AS s{i}, SUM(COALESCE(o.y{i}, 0.0) * COALESCE(o.y{i}, 0.0)) AS q{i}"
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let names = placeholders_from(3, metrics.len());
        let sql = format!(
            "SELECT a.variant AS variant, a.assigned_at / {DAY_MICROS} AS day, COUNT(*) AS users, {sums} \
             FROM assignments a LEFT JOIN (\
               SELECT e.subject AS subject, {per_user} FROM events e \
               JOIN assignments b ON b.experiment_key = e.experiment_key AND b.subject = e.subject \
               WHERE e.experiment_key = $1 AND e.name IN ({names}) \
                 AND e.occurred_at >= b.assigned_at AND ($2 < 0 OR e.occurred_at < b.assigned_at + $2) \
               GROUP BY e.subject\
             ) o ON o.subject = a.subject \
             WHERE a.experiment_key = $1 AND a.withdrawn_at IS NULL \
             GROUP BY a.variant, a.assigned_at / {DAY_MICROS} ORDER BY day, variant"
        );
        let mut query = sqlx::query(&sql)
            .bind(experiment_key)
            .bind(window_micros.unwrap_or(-1));
        for metric in metrics {
            query = query.bind(&metric.event);
        }
        let rows = query.fetch_all(&self.analytics).await?;
        rows.iter()
            .map(|row| {
                let per_metric = (0..metrics.len())
                    .map(|i| {
                        Ok((
                            row.try_get::<f64, _>(format!("s{i}").as_str())?,
                            row.try_get::<f64, _>(format!("q{i}").as_str())?,
                        ))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                Ok(DailySums {
                    variant: row.try_get("variant")?,
                    day: row.try_get("day")?,
                    users: row.try_get("users")?,
                    per_metric,
                })
            })
            .collect()
    }
}

fn placeholders_from(first: usize, n: usize) -> String {
    crate::consents::placeholders(first, n)
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use chrono::Utc;
    use pilotgate_domain::Actor;
    use pilotgate_domain::consent::ConsentStatus;

    use super::*;
    use crate::testing::{
        TestDb, buy_design, consent_purpose, consent_record as record, pseudonym, start_pilot,
    };
    use crate::{Dialect, Store};

    /// A running pilot that measures `buy`, and `user` granted and assigned in it.
    async fn assigned(store: &Store, user: &str) -> EventDraft {
        let operator = Actor::operator();
        let purpose = consent_purpose("personalize.content", 1);
        store.create_purpose(&purpose, &operator).await.unwrap();
        start_pilot(store, &buy_design("ahead", "personalize.content", 1.0)).await;
        store
            .append_consents(&[record(user, ConsentStatus::Granted)], &operator)
            .await
            .unwrap();
        let subject = pseudonym(user);
        let target = store.assignment_target("ahead").await.unwrap().unwrap();
        store
            .assign(&target, std::slice::from_ref(&subject), Utc::now())
            .await
            .unwrap();
        EventDraft {
            event_id: "e1".to_owned(),
            subjects: vec![subject.as_str().to_owned()],
            name: "buy".to_owned(),
            value: None,
            occurred_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn a_decision_read_ahead_is_made_again_if_the_ledger_moved_before_the_commit() {
        let db = TestDb::new(Dialect::Sqlite).await.unwrap();
        let store = &db.store;
        let event = assigned(store, "u1").await;
        let foresight = store
            .foresee(&[&event])
            .await
            .expect("read ahead on SQLite");
        assert!(matches!(&foresight.decided[..], [Decided::Verdicts(v)] if v[0].refusal.is_none()));
        // The subject objects after the read ahead and before the commit.
        store
            .append_consents(&[record("u1", ConsentStatus::Objected)], &Actor::operator())
            .await
            .unwrap();
        let fates = store
            .record_events_now(&[&event], Some(foresight))
            .await
            .unwrap();
        assert!(
            matches!(&fates[..], [EventFate::Refused(_)]),
            "decided on the ledger at the commit, not on the read ahead: {fates:?}"
        );
        assert!(store.events_of("ahead").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_decision_read_ahead_holds_across_appends() {
        let db = TestDb::new(Dialect::Sqlite).await.unwrap();
        let store = &db.store;
        let event = assigned(store, "u1").await;
        let mut foresight = store
            .foresee(&[&event])
            .await
            .expect("read ahead on SQLite");
        // An append (another subject's first-time assignment) moves no epoch.
        store
            .append_consents(&[record("u2", ConsentStatus::Granted)], &Actor::operator())
            .await
            .unwrap();
        foresight = store.foresee(&[&event]).await.unwrap_or(foresight);
        let target = store.assignment_target("ahead").await.unwrap().unwrap();
        store
            .assign(&target, &[pseudonym("u2")], Utc::now())
            .await
            .unwrap();
        // Were the read ahead not trusted, the commit would read the ledger
        // again and accept the event: a refusal planted in the read ahead
        // shows which one decided.
        if let Decided::Verdicts(verdicts) = &mut foresight.decided[0] {
            verdicts[0].refusal = Some("planted");
        }
        let fates = store
            .record_events_now(&[&event], Some(foresight))
            .await
            .unwrap();
        assert_eq!(fates, vec![EventFate::Refused("planted".to_owned())]);
    }

    /// The verdicts a read ahead gives the event: whether each holding may store it.
    async fn foreseen(store: &Store, event: &EventDraft) -> Vec<Option<&'static str>> {
        let foresight = store.foresee(&[event]).await.expect("read ahead on SQLite");
        match &foresight.decided[..] {
            [Decided::Verdicts(verdicts)] => verdicts.iter().map(|v| v.refusal).collect(),
            _ => Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_subject_read_ahead_is_recalled_only_until_the_ledger_moves() {
        let db = TestDb::new(Dialect::Sqlite).await.unwrap();
        let store = &db.store;
        let event = assigned(store, "u1").await;
        assert_eq!(foreseen(store, &event).await, vec![None]);
        assert!(
            store.memo.lock().known.contains_key(&event.subjects[0]),
            "learned"
        );
        assert_eq!(foreseen(store, &event).await, vec![None], "recalled");
        // An objection moves the epoch: the memo is not trusted any more.
        store
            .append_consents(&[record("u1", ConsentStatus::Objected)], &Actor::operator())
            .await
            .unwrap();
        assert_eq!(foreseen(store, &event).await, vec![Some("objected")]);
    }

    #[tokio::test]
    async fn a_subject_without_an_assignment_in_every_running_pilot_is_read_again() {
        let db = TestDb::new(Dialect::Sqlite).await.unwrap();
        let store = &db.store;
        let mut event = assigned(store, "u1").await;
        start_pilot(store, &buy_design("second", "personalize.content", 1.0)).await;
        assert_eq!(foreseen(store, &event).await, vec![None]);
        assert!(!store.memo.lock().known.contains_key(&event.subjects[0]));
        // A first-time assignment is an append: it moves no epoch.
        let target = store.assignment_target("second").await.unwrap().unwrap();
        store
            .assign(&target, &[pseudonym("u1")], Utc::now())
            .await
            .unwrap();
        // The event occurs after both assignments.
        event.occurred_at = Utc::now();
        assert_eq!(
            foreseen(store, &event).await,
            vec![None, None],
            "both pilots"
        );
        assert_eq!(foreseen(store, &event).await, vec![None, None], "recalled");
    }
}
