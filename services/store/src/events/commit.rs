//! The group commit of events: decide (under the write lock, or confirm a
//! decision made ahead), store what the ledger allows in key order, tell
//! retries apart, and count refusals, in one transaction.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use pilotgate_domain::refusal::{Refusal, Stage};
use pilotgate_domain::time::{from_micros, to_micros};
use sqlx::Row;

use super::memo::Foresight;
use super::rule::{Decided, Held, Ledger, Pilot, RunningPilots, purposes_by_key, subjects_of};
use super::{EventDraft, EventFate, EventsContext};
use crate::consents::ledger_facts_of;
use crate::db::{
    AppendBatch, AppendTable, AppendTx, Dialect, INSERT_CHUNK, LOOKUP_CHUNK, Packed, Reads,
};
use crate::error::{StoreError, corrupt};
use crate::purposes::purposes_on;
use crate::refusals::push_refusal_count;

/// Pseudonyms a read ahead reads on one connection; from twice as many, it
/// reads half on each of two.
const ONE_CONNECTION_READS: usize = 64;

impl EventsContext {
    /// Decides `events` from a snapshot read on the look-ahead connections
    /// while the writer commits the group before them. `None` on PostgreSQL
    /// (several instances write; no epoch moves there), if the snapshots of
    /// the two connections differ, or if a read fails: the commit then reads
    /// under the lock.
    pub(crate) async fn foresee(&self, events: &[&EventDraft]) -> Option<Foresight> {
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
        let epoch = change_epoch(&mut *first).await?;
        let (pilots, purposes) = match self.memo.context(epoch) {
            Some(context) => context,
            None => {
                let pilots = Arc::new(running_pilots(&mut *first).await?);
                let purposes = Arc::new(purposes_by_key(purposes_on(&mut *first).await?));
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
            let other_epoch = change_epoch(&mut *second).await?;
            let read = self.read_ledger(&mut *second, &pilots, theirs).await?;
            second.rollback().await?;
            Ok::<_, StoreError>(Some((other_epoch, read)))
        };
        let (read, other) = tokio::try_join!(self.read_ledger(&mut *first, &pilots, mine), other)?;
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
        conn: &mut impl Reads,
        pilots: &RunningPilots,
        subjects: &[&str],
    ) -> Result<Ledger, StoreError> {
        let mut ledger = Ledger::default();
        for chunk in subjects.chunks(LOOKUP_CHUNK) {
            for holding in held_assignments(&mut *conn, self.dialect, pilots, chunk).await? {
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

    pub(crate) async fn record_events_now(
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

        let mut refusals: HashMap<(&str, Refusal), i64> = HashMap::new();
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
                        EventFate::Refused(Refusal::NoAssignment)
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
                EventFate::Refused(reason.unwrap_or(Refusal::NoAssignment))
            });
        }
        // The results' aggregates move by the events stored now for the first
        // time (a key twice in the group is one event).
        let mut seen = HashSet::new();
        let fresh: Vec<(&Held, &EventDraft)> = rows
            .iter()
            .filter(|(holding, event)| {
                let key = event_key(holding, event);
                !stored_before.contains(&key) && seen.insert(key)
            })
            .copied()
            .collect();
        let mut statements = AppendBatch::default();
        crate::aggregates::events::push_outcomes(&mut statements, self.dialect, &fresh)?;
        for ((experiment_key, refusal), count) in refusals {
            push_refusal_count(
                &mut statements,
                self.dialect,
                experiment_key,
                Stage::Event,
                refusal,
                now,
                count,
            )?;
        }
        tx.commit_after(statements).await?;
        Ok(fates)
    }
}

/// The change epoch (migration 0004), read in `conn`'s transaction.
async fn change_epoch(conn: &mut impl Reads) -> Result<i64, StoreError> {
    let (sql, conn) = conn.reading("SELECT n FROM change_epoch WHERE id = 1")?;
    Ok(sqlx::query_scalar::<_, i64>(&sql).fetch_one(conn).await?)
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
    conn: &mut impl Reads,
    dialect: Dialect,
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
    let (sql, conn) = conn.reading(&format!(
        "SELECT {} FROM (VALUES {values}) AS k JOIN experiments x ON x.state <> 'running' \
         JOIN events e ON e.experiment_key = x.key AND e.occurred_at = k.column1 \
         AND e.subject = k.column2 AND e.event_id = k.column3",
        UNPILOTED_KEYS.select(dialect)
    ))?;
    let mut query = sqlx::query_scalar::<_, Option<String>>(&sql);
    for (occurred_at, subject, event_id) in keys {
        query = query.bind(occurred_at).bind(subject).bind(event_id);
    }
    keys_of(&UNPILOTED_KEYS, query.fetch_one(conn).await?)
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
    tx: &mut AppendTx,
    dialect: Dialect,
    rows: &[(&Held, &EventDraft)],
    now: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let savepoint = tx.savepoint("new_events").await?;
    if insert_events(tx, dialect, rows, now).await? == rows.len() as u64 {
        tx.release(savepoint).await?;
        return Ok(Vec::new());
    }
    tx.roll_back_to(&savepoint).await?;
    let stored = stored_keys(tx, dialect, rows).await?;
    let known: HashSet<&str> = stored.iter().map(String::as_str).collect();
    let fresh: Vec<(&Held, &EventDraft)> = rows
        .iter()
        .filter(|(h, e)| !known.contains(event_key(h, e).as_str()))
        .copied()
        .collect();
    if !fresh.is_empty() {
        insert_events(tx, dialect, &fresh, now).await?;
    }
    tx.release(savepoint).await?;
    Ok(stored)
}

/// Inserts `rows` and returns how many were new; the transaction holds the
/// subject write lock, so no other commit can store one of them meanwhile.
async fn insert_events(
    tx: &mut AppendTx,
    dialect: Dialect,
    rows: &[(&Held, &EventDraft)],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    // PostgreSQL: an absent value is bound as NaN and turned into NULL by
    // the statement, so the parameter is a float8 in every row of every
    // batch. A NULL binds with another type, and a cached statement prepared
    // for one mix of NULLs and numbers refused the next mix ("incorrect
    // binary data format", a 500). JSON has no NaN, so no value is lost.
    let values = match dialect {
        Dialect::Sqlite => dialect.value_rows(rows.len(), 7),
        Dialect::Postgres => (0..rows.len())
            .map(|r| {
                let n = r * 7;
                format!(
                    "(${}, ${}, ${}, ${}, NULLIF(${}, 'NaN'::float8), ${}, ${})",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5,
                    n + 6,
                    n + 7
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    };
    let (sql, conn) = tx.append(
        AppendTable::Events,
        &format!(
            "INSERT INTO events (experiment_key, subject, event_id, name, value, occurred_at, received_at) \
             VALUES {values} ON CONFLICT (experiment_key, occurred_at, subject, event_id) DO NOTHING"
        ),
    )?;
    let mut query = sqlx::query(&sql);
    for (holding, event) in rows {
        // Under the assignment's pseudonym, which may be of an older key.
        query = query
            .bind(&holding.experiment_key)
            .bind(&holding.subject)
            .bind(&event.event_id)
            .bind(&event.name)
            .bind(match dialect {
                Dialect::Sqlite => event.value,
                Dialect::Postgres => Some(event.value.unwrap_or(f64::NAN)),
            })
            .bind(to_micros(event.occurred_at))
            .bind(to_micros(now));
    }
    Ok(query.execute(conn).await?.rows_affected())
}

/// Which of `rows` are stored, as [`event_key`]s, packed in one row
/// ([`crate::db::Dialect::packed_rows`]). Joining a list of values, not
/// `(…) IN (VALUES …)`, which SQLite answers by scanning the table.
async fn stored_keys(
    conn: &mut impl Reads,
    dialect: Dialect,
    rows: &[(&Held, &EventDraft)],
) -> Result<Vec<String>, StoreError> {
    let values = dialect.value_rows(rows.len(), 4);
    let (sql, conn) = conn.reading(&format!(
        "SELECT {} FROM (VALUES {values}) AS k JOIN events e ON e.experiment_key = k.column1 \
         AND e.occurred_at = k.column2 AND e.subject = k.column3 AND e.event_id = k.column4",
        EVENT_KEYS.select(dialect)
    ))?;
    let mut query = sqlx::query_scalar::<_, Option<String>>(&sql);
    for (holding, event) in rows {
        let (pilot, occurred_at, subject, event_id) = key_parts(holding, event);
        query = query
            .bind(pilot)
            .bind(occurred_at)
            .bind(subject)
            .bind(event_id);
    }
    keys_of(&EVENT_KEYS, query.fetch_one(conn).await?)
}

/// An event's key, packed: pilot, occurrence, subject, event id.
const EVENT_KEYS: Packed<4> = Packed {
    fields: [
        "e.experiment_key",
        "e.occurred_at",
        "e.subject",
        "e.event_id",
    ],
    what: "events",
};

/// An event's key without its pilot, packed: occurrence, subject, event id.
const UNPILOTED_KEYS: Packed<3> = Packed {
    fields: ["e.occurred_at", "e.subject", "e.event_id"],
    what: "events",
};

/// The keys of a packed value, each as one string (see [`event_key`]).
fn keys_of<const N: usize>(
    codec: &Packed<N>,
    packed: Option<String>,
) -> Result<Vec<String>, StoreError> {
    codec
        .rows(packed.as_deref())
        .map(|row| row.map(|fields| fields.join("\u{1f}")))
        .collect()
}

async fn running_pilots(conn: &mut impl Reads) -> Result<RunningPilots, StoreError> {
    let mut pilots = HashMap::new();
    let (sql, conn) = conn.reading(
        "SELECT key, purpose, primary_event, primary_kind, guardrails, attribution_window_hours \
         FROM experiments WHERE state = 'running'",
    )?;
    for row in sqlx::query(&sql).fetch_all(conn).await? {
        let pilot = Pilot {
            purpose: row.try_get("purpose")?,
            measures: crate::aggregates::measures_in(&row)?,
        };
        pilots.insert(row.try_get("key")?, Arc::new(pilot));
    }
    Ok(pilots)
}

/// A held assignment, packed: pilot, subject, assignment time, withdrawn (0/1).
const HELD: Packed<4> = Packed {
    fields: [
        "a.experiment_key",
        "a.subject",
        "a.assigned_at",
        "CASE WHEN a.withdrawn_at IS NULL THEN 0 ELSE 1 END",
    ],
    what: "assignments",
};

/// The assignments `subjects` hold in the running `pilots`, packed in one row.
async fn held_assignments(
    conn: &mut impl Reads,
    dialect: Dialect,
    pilots: &RunningPilots,
    subjects: &[&str],
) -> Result<Vec<Held>, StoreError> {
    if pilots.is_empty() {
        return Ok(Vec::new());
    }
    let (sql, conn) = conn.reading(&format!(
        "SELECT {} FROM assignments a JOIN experiments e ON e.key = a.experiment_key \
         WHERE e.state = 'running' AND a.subject IN ({})",
        HELD.select(dialect),
        dialect.placeholders(1, subjects.len())
    ))?;
    let mut query = sqlx::query_scalar::<_, Option<String>>(&sql);
    for subject in subjects {
        query = query.bind(*subject);
    }
    let packed = query.fetch_one(conn).await?;
    HELD.rows(packed.as_deref())
        .map(|row| {
            let [experiment_key, subject, assigned_at, withdrawn] = row?;
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

#[cfg(all(test, feature = "testing"))]
mod tests;
