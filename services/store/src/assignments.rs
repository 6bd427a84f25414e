//! Consent-gated assignment: a subject gets a variant only while eligible for
//! the pilot's purpose, once (sticky), with the proof stored beside it. An
//! ineligible call stores nothing about the subject, only a counter.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use pilotgate_domain::bucketing::{choose_variant, hash_v2};
use pilotgate_domain::eligibility::{Eligibility, Proof, Reason, eligible};
use pilotgate_domain::experiment::{State, Variant};
use pilotgate_domain::pseudonym::Pseudonym;
use pilotgate_domain::purpose::{LegalBasis, Purpose};
use pilotgate_domain::time::{from_micros, to_micros};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::cache::Ledger;
use crate::consents::{FactsBySubject, facts_for, ledger_facts_columns, unpack_ledger_facts};
use crate::db::{Batch, Dialect, Value};
use crate::error::corrupt;
use crate::events::{INSERT_CHUNK, LOOKUP_CHUNK};
use crate::group::Grouped;
use crate::links::{Named, push_link_rows};
use crate::{Store, StoreError};

/// What assignment needs to know of a pilot, read in one query.
#[derive(Debug, Clone)]
pub struct AssignmentTarget {
    pub key: String,
    pub state: State,
    pub purpose: Purpose,
    pub seed: String,
    pub coverage: f64,
    pub variants: Vec<Variant>,
}

/// A stored assignment and its proof.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment {
    pub experiment_key: String,
    pub subject: String,
    pub key_version: u32,
    pub variant: String,
    /// The instant of the eligibility decision the proof describes.
    pub assigned_at: DateTime<Utc>,
    pub basis: LegalBasis,
    pub consent_record_id: Option<i64>,
    pub notice_version: Option<u32>,
    pub withdrawn_at: Option<DateTime<Utc>>,
}

/// The answer to an assignment call.
#[derive(Debug, Clone, PartialEq)]
pub enum AssignOutcome {
    /// The pilot is not running.
    NotRunning,
    /// The subject may not be used for the pilot's purpose now.
    Ineligible(Reason),
    /// Eligible, but outside the pilot's coverage.
    NotInTraffic,
    /// The subject's variant; `first_time` when this call made the assignment.
    Assigned {
        assignment: Assignment,
        first_time: bool,
    },
}

impl Store {
    /// The pilot `key` with its purpose and variants, or `None`.
    pub async fn assignment_target(
        &self,
        key: &str,
    ) -> Result<Option<AssignmentTarget>, StoreError> {
        // A malformed key names no pilot (see `Store::experiment`).
        if pilotgate_domain::experiment::ExperimentKey::parse(key).is_err() {
            return Ok(None);
        }
        let generation = self.caches.generation();
        if let Some(target) = self.caches.targets.get(generation, &key.to_owned()) {
            return Ok(Some(target));
        }
        let rows = sqlx::query(
            "SELECT e.key, e.state, e.seed, e.coverage, v.variant_key, v.weight, p.key AS purpose_key, p.description, \
             p.allowed_bases, p.min_notice_version, p.special_category, p.li_assessment_ref, p.contract_necessary, p.retention_days \
             FROM experiments e JOIN purposes p ON p.key = e.purpose \
             JOIN experiment_variants v ON v.experiment_key = e.key WHERE e.key = $1 ORDER BY v.position",
        )
        .bind(key)
        .fetch_all(&self.reader)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let variants = rows
            .iter()
            .map(|row| {
                Ok(Variant {
                    key: row.try_get("variant_key")?,
                    weight: row.try_get("weight")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let target = AssignmentTarget {
            key: first.try_get("key")?,
            state: first
                .try_get::<String, _>("state")?
                .parse()
                .map_err(|_| corrupt("experiments.state"))?,
            purpose: crate::purposes::purpose_from_row_with_key(first, "purpose_key")?,
            seed: first.try_get("seed")?,
            coverage: first.try_get("coverage")?,
            variants,
        };
        self.caches
            .targets
            .put(generation, key.to_owned(), target.clone());
        Ok(Some(target))
    }

    /// Assigns the person known by `candidates` (current key first) to a variant of `target`.
    pub async fn assign(
        &self,
        target: &AssignmentTarget,
        candidates: &[Pseudonym],
        now: DateTime<Utc>,
    ) -> Result<AssignOutcome, StoreError> {
        if target.state != State::Running {
            self.count_refusal(&target.key, "assign", "not_running", now)
                .await?;
            return Ok(AssignOutcome::NotRunning);
        }
        let subjects: Vec<String> = candidates.iter().map(|p| p.as_str().to_owned()).collect();
        let generation = self.caches.generation();
        if generation.is_some() {
            // SQLite with caches on: a repeat the caches know costs no query.
            let key = (target.key.clone(), subjects.clone());
            let ledger_key = (target.purpose.key.to_string(), subjects.clone());
            let known = self.caches.assignments.get(generation, &key);
            let ledger = self.caches.ledgers.get(generation, &ledger_key);
            if let (Some(assignment), Some(ledger)) = (known, ledger) {
                let (records, erased) = &*ledger;
                return match eligible(&target.purpose, records, *erased, now) {
                    Eligibility::Eligible(_) => Ok(AssignOutcome::Assigned {
                        assignment,
                        first_time: false,
                    }),
                    Eligibility::Ineligible(reason) => {
                        self.count_refusal(&target.key, "assign", reason.as_str(), now)
                            .await?;
                        Ok(AssignOutcome::Ineligible(reason))
                    }
                };
            }
        }
        if self.dialect == Dialect::Sqlite {
            // SQLite: every call the caches cannot answer goes to the group
            // commit, first-time or not; a group of repeats costs a read and
            // an empty commit (measured: first-time assignments 15-20% faster
            // than with a read of their own on the way; see `bench/results/load.md`).
            return self.assign_in_group(target, candidates).await;
        }
        // PostgreSQL: a call is decided from one read on a reader, as the
        // group would decide it; only one that would store a new assignment
        // goes to the group commit, which decides it again under the table
        // lock. Repeats there would queue on the lock every instance takes.
        let pending = PendingAssignment {
            target: target.clone(),
            candidates: candidates.to_vec(),
        };
        let names: Vec<&str> = subjects.iter().map(String::as_str).collect();
        let mut holdings = {
            let mut conn = self.reader.acquire().await?;
            read_holdings(&mut conn, self.dialect, "", &names, &[&target.key]).await?
        };
        let mut refusals = HashMap::new();
        let outcome = match rule(&pending, &mut holdings, now, &mut Cached::default()) {
            Ruling::New(..) => return self.assign_queue.submit(self, pending).await,
            ruling => ruling.answer(&mut refusals, &pending),
        };
        for ((experiment_key, reason), _) in refusals {
            self.count_refusal(experiment_key, "assign", reason, now)
                .await?;
        }
        Ok(outcome)
    }

    /// Hands an assignment call to the group commit and waits for its
    /// outcome: concurrent calls share one transaction and one durable commit
    /// instead of one each.
    async fn assign_in_group(
        &self,
        target: &AssignmentTarget,
        candidates: &[Pseudonym],
    ) -> Result<AssignOutcome, StoreError> {
        let job = PendingAssignment {
            target: target.clone(),
            candidates: candidates.to_vec(),
        };
        self.assign_queue.submit(self, job).await
    }

    /// Decides a group of assignment calls under the subject write lock and
    /// stores each new assignment once (the first stored assignment wins, on
    /// any instance), counting refusals in the same transaction: on SQLite one
    /// transaction and two round trips to the driver for the whole group.
    async fn commit_assignments(
        &self,
        batch: &[PendingAssignment],
    ) -> Result<Vec<AssignOutcome>, StoreError> {
        let mut refusals: HashMap<(&str, &'static str), i64> = HashMap::new();
        let mut tx = self.begin_subject_append_with_first_statement().await?;
        // Read under the write lock: what this transaction reads is at least as
        // new as this generation, so it may be cached under it.
        let generation = self.caches.generation();
        // To the microsecond, as stored: an answer equals the stored row.
        let now = from_micros(to_micros(self.now()));
        let subjects: Vec<&str> = batch
            .iter()
            .flat_map(|p| p.candidates.iter().map(Pseudonym::as_str))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let opening = tx.opening();
        let mut holdings =
            read_holdings(&mut tx, self.dialect, opening, &subjects, &pilots_of(batch)).await?;
        let mut cached = Cached::default();
        let mut new_rows: Vec<Assignment> = Vec::new();
        let mut links: Vec<(Named, Vec<Pseudonym>)> = Vec::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        for pending in batch {
            let ruling = rule(pending, &mut holdings, now, &mut cached);
            if let Ruling::New(assignment, older) = &ruling {
                new_rows.push(assignment.clone());
                if !older.is_empty() {
                    links.push((
                        (assignment.subject.clone(), assignment.key_version),
                        older.clone(),
                    ));
                }
            }
            outcomes.push(ruling.answer(&mut refusals, pending));
        }

        // Under the write lock nothing else stores an assignment between the
        // read above and this insert (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's
        // table lock), so every new row is stored; if one were not, the key's
        // uniqueness would fail the whole group, storing nothing of it.
        let mut statements = Batch::default();
        for chunk in new_rows.chunks(INSERT_CHUNK) {
            let rows: Vec<&Assignment> = chunk.iter().collect();
            statements.push(
                insert_assignments_sql(self.dialect, rows.len()),
                assignment_values(&rows),
            );
        }
        for ((experiment_key, reason), count) in refusals {
            push_refusal_count(
                &mut statements,
                self.dialect,
                experiment_key,
                "assign",
                reason,
                now,
                count,
            );
        }
        push_link_rows(
            &mut statements,
            self.dialect,
            links
                .iter()
                .map(|(current, older)| (current.clone(), older.iter().collect())),
        );
        tx.commit_after(statements).await?;
        // Cached only once committed.
        cached.keep(self, generation);
        Ok(outcomes)
    }

    /// Counts one refused call; nothing about the subject is kept.
    pub async fn count_refusal(
        &self,
        experiment_key: &str,
        stage: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut statements = Batch::default();
        push_refusal_count(
            &mut statements,
            self.dialect,
            experiment_key,
            stage,
            reason,
            at,
            1,
        );
        self.begin_append().await?.commit_after(statements).await?;
        Ok(())
    }

    /// The assignments of a pilot, for export and analysis.
    pub async fn assignments_of(
        &self,
        experiment_key: &str,
    ) -> Result<Vec<Assignment>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM assignments WHERE experiment_key = $1 ORDER BY assigned_at, subject",
        )
        .bind(experiment_key)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(assignment_from_row).collect()
    }

    /// Per variant: `(variant, assigned, withdrawn)`.
    pub async fn assignment_counts(
        &self,
        experiment_key: &str,
    ) -> Result<Vec<(String, u64, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT variant, COUNT(*) AS assigned, COUNT(withdrawn_at) AS withdrawn FROM assignments \
             WHERE experiment_key = $1 GROUP BY variant ORDER BY variant",
        )
        .bind(experiment_key)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let count = |column: &str| -> Result<u64, StoreError> {
                    Ok(u64::try_from(row.try_get::<i64, _>(column)?).unwrap_or(0))
                };
                Ok((
                    row.try_get("variant")?,
                    count("assigned")?,
                    count("withdrawn")?,
                ))
            })
            .collect()
    }

    /// Per pilot of `keys`: how many subjects it assigned, and how many of those withdrew.
    pub async fn assignment_totals(
        &self,
        keys: &[String],
    ) -> Result<std::collections::HashMap<String, (u64, u64)>, StoreError> {
        let mut totals = std::collections::HashMap::new();
        for chunk in keys.chunks(100) {
            let sql = format!(
                "SELECT experiment_key, COUNT(*) AS assigned, COUNT(withdrawn_at) AS withdrawn FROM assignments \
                 WHERE experiment_key IN ({}) GROUP BY experiment_key",
                crate::consents::placeholders(1, chunk.len())
            );
            let mut query = sqlx::query_as::<_, (String, i64, i64)>(&sql);
            for key in chunk {
                query = query.bind(key);
            }
            for (key, assigned, withdrawn) in query.fetch_all(&self.reader).await? {
                totals.insert(
                    key,
                    (
                        u64::try_from(assigned).unwrap_or(0),
                        u64::try_from(withdrawn).unwrap_or(0),
                    ),
                );
            }
        }
        Ok(totals)
    }

    /// The eligibility report of a pilot: per variant, legal basis and notice
    /// version, how many subjects hold an assignment.
    pub async fn eligibility_breakdown(
        &self,
        experiment_key: &str,
    ) -> Result<Vec<(String, String, Option<i64>, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT variant, basis, notice_version, COUNT(*) AS subjects FROM assignments \
             WHERE experiment_key = $1 GROUP BY variant, basis, notice_version \
             ORDER BY variant, basis, notice_version",
        )
        .bind(experiment_key)
        .fetch_all(&self.reader)
        .await?)
    }

    /// Refusal counts of a pilot: `(stage, reason, day, count)`.
    pub async fn refusal_counts(
        &self,
        experiment_key: &str,
    ) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT stage, reason, day, count FROM refusal_counters WHERE experiment_key = $1 \
             ORDER BY day, stage, reason",
        )
        .bind(experiment_key)
        .fetch_all(&self.reader)
        .await?)
    }
}

/// The UTC day of `at`, as the counters key it.
fn day_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// Adds `by` to the refusal counter of `(experiment, stage, reason)` for
/// the day of `at`, in `statements`.
pub(crate) fn push_refusal_count(
    statements: &mut Batch,
    dialect: Dialect,
    experiment_key: &str,
    stage: &str,
    reason: &str,
    at: DateTime<Utc>,
    by: i64,
) {
    statements.push(
        format!(
            "INSERT INTO refusal_counters (experiment_key, stage, reason, day, count) VALUES ({}) \
             ON CONFLICT (experiment_key, stage, reason, day) DO UPDATE SET count = refusal_counters.count + excluded.count",
            dialect.placeholders(1, 5)
        ),
        vec![
            Value::Text(experiment_key.to_owned()),
            Value::Text(stage.to_owned()),
            Value::Text(reason.to_owned()),
            Value::Text(day_of(at)),
            Value::Integer(Some(by)),
        ],
    );
}

/// One assignment packed by [`crate::db::Dialect::packed_rows`], in the
/// order `commit_assignments` packs its fields.
fn unpack_assignment(row: &str) -> Result<Assignment, StoreError> {
    let mut fields = row.split('\u{1f}');
    let mut next = || fields.next().ok_or_else(|| corrupt("assignments"));
    let number = |text: &str, column: &'static str| -> Result<i64, StoreError> {
        text.parse().map_err(|_| corrupt(column))
    };
    let optional = |text: &str, column: &'static str| -> Result<Option<i64>, StoreError> {
        (!text.is_empty()).then(|| number(text, column)).transpose()
    };
    Ok(Assignment {
        experiment_key: next()?.to_owned(),
        subject: next()?.to_owned(),
        key_version: u32::try_from(number(next()?, "assignments.key_version")?)
            .map_err(|_| corrupt("assignments.key_version"))?,
        variant: next()?.to_owned(),
        assigned_at: from_micros(number(next()?, "assignments.assigned_at")?),
        basis: next()?.parse().map_err(|_| corrupt("assignments.basis"))?,
        consent_record_id: optional(next()?, "assignments.consent_record_id")?,
        notice_version: optional(next()?, "assignments.notice_version")?
            .map(|v| u32::try_from(v).map_err(|_| corrupt("assignments.notice_version")))
            .transpose()?,
        withdrawn_at: optional(next()?, "assignments.withdrawn_at")?.map(from_micros),
    })
}

pub(crate) fn assignment_from_row(row: &AnyRow) -> Result<Assignment, StoreError> {
    Ok(Assignment {
        experiment_key: row.try_get("experiment_key")?,
        subject: row.try_get("subject")?,
        key_version: u32::try_from(row.try_get::<i64, _>("key_version")?)
            .map_err(|_| corrupt("assignments.key_version"))?,
        variant: row.try_get("variant")?,
        assigned_at: from_micros(row.try_get("assigned_at")?),
        basis: row
            .try_get::<String, _>("basis")?
            .parse()
            .map_err(|_| corrupt("assignments.basis"))?,
        consent_record_id: row.try_get("consent_record_id")?,
        notice_version: row
            .try_get::<Option<i64>, _>("notice_version")?
            .map(|v| u32::try_from(v).map_err(|_| corrupt("assignments.notice_version")))
            .transpose()?,
        withdrawn_at: row
            .try_get::<Option<i64>, _>("withdrawn_at")?
            .map(from_micros),
    })
}

/// The insert of `rows` assignments (see [`assignment_values`]).
fn insert_assignments_sql(dialect: Dialect, rows: usize) -> String {
    format!(
        "INSERT INTO assignments (experiment_key, subject, key_version, variant, assigned_at, basis, consent_record_id, notice_version) \
         VALUES {}",
        dialect.value_rows(rows, 8)
    )
}

/// The values of `rows` for [`insert_assignments_sql`].
fn assignment_values(rows: &[&Assignment]) -> Vec<Value> {
    rows.iter()
        .flat_map(|a| {
            [
                Value::Text(a.experiment_key.clone()),
                Value::Text(a.subject.clone()),
                Value::Integer(Some(i64::from(a.key_version))),
                Value::Text(a.variant.clone()),
                Value::Integer(Some(to_micros(a.assigned_at))),
                Value::Text(a.basis.as_str().to_owned()),
                Value::Integer(a.consent_record_id),
                Value::Integer(a.notice_version.map(i64::from)),
            ]
        })
        .collect()
}

/// What a group knows of its people: their assignments in the group's
/// pilots by `(pilot, pseudonym)`, their ledger facts and their erasures.
#[derive(Default)]
struct Holdings {
    held: HashMap<(String, String), Assignment>,
    records: FactsBySubject,
    erased: HashSet<String>,
}

/// The pilots `batch` asks for (the assignments' key is (pilot, subject)).
fn pilots_of(batch: &[PendingAssignment]) -> Vec<&str> {
    batch
        .iter()
        .map(|p| p.target.key.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect()
}

/// Reads what [`Holdings`] holds of `subjects` in `pilots`, one statement per
/// chunk of subjects (the driver's round trip costs more than the reads). The
/// first statement starts with `opening` (see [`crate::db::WriteTx::opening`]).
async fn read_holdings(
    conn: &mut AnyConnection,
    dialect: Dialect,
    opening: &str,
    subjects: &[&str],
    pilots: &[&str],
) -> Result<Holdings, StoreError> {
    let mut holdings = Holdings::default();
    let packed = dialect.packed_rows(&[
        "experiment_key",
        "subject",
        "key_version",
        "variant",
        "assigned_at",
        "basis",
        "COALESCE(CAST(consent_record_id AS TEXT), '')",
        "COALESCE(CAST(notice_version AS TEXT), '')",
        "COALESCE(CAST(withdrawn_at AS TEXT), '')",
    ]);
    for (index, chunk) in subjects.chunks(LOOKUP_CHUNK).enumerate() {
        // SQLite's `?` are filled in the order of the text, as bound.
        let sql = format!(
            "{}SELECT (SELECT {packed} FROM assignments WHERE subject IN ({}) AND experiment_key IN ({})), {}",
            if index == 0 { opening } else { "" },
            dialect.placeholders(1, chunk.len()),
            dialect.placeholders(chunk.len() + 1, pilots.len()),
            ledger_facts_columns(dialect, chunk.len() + pilots.len() + 1, chunk.len())
        );
        let mut query = sqlx::query_as::<_, (Option<String>, Option<String>, Option<String>)>(&sql);
        for subject in chunk {
            query = query.bind(*subject);
        }
        for pilot in pilots {
            query = query.bind(*pilot);
        }
        for subject in chunk.iter().chain(chunk) {
            query = query.bind(*subject);
        }
        // All rows, not one: a `BEGIN` sent with the statement answers first.
        let mut answers = query.fetch_all(&mut *conn).await?;
        let (assignments, facts, gone) = answers.pop().ok_or_else(|| corrupt("assignments"))?;
        for row in assignments.iter().flat_map(|rows| rows.split('\u{1e}')) {
            let assignment = unpack_assignment(row)?;
            let key = (
                assignment.experiment_key.clone(),
                assignment.subject.clone(),
            );
            holdings.held.insert(key, assignment);
        }
        let (facts, gone) = unpack_ledger_facts(facts, gone)?;
        holdings.records.extend(facts);
        holdings.erased.extend(gone);
    }
    Ok(holdings)
}

/// How one assignment call is decided from [`Holdings`].
enum Ruling {
    Ineligible(Reason),
    NotInTraffic,
    /// The person's assignment, stored before.
    Holds(Assignment),
    /// An assignment to store, under the current pseudonym, and the person's
    /// pseudonyms under older key versions whose ledger made them eligible
    /// (to be linked to it, see `links.rs`).
    New(Assignment, Vec<Pseudonym>),
}

impl Ruling {
    /// The call's answer, counting a refusal in `refusals`.
    fn answer<'b>(
        self,
        refusals: &mut HashMap<(&'b str, &'static str), i64>,
        pending: &'b PendingAssignment,
    ) -> AssignOutcome {
        let mut refused = |reason: &'static str| {
            *refusals.entry((&pending.target.key, reason)).or_default() += 1;
        };
        match self {
            Ruling::Ineligible(reason) => {
                refused(reason.as_str());
                AssignOutcome::Ineligible(reason)
            }
            Ruling::NotInTraffic => {
                refused("not_in_traffic");
                AssignOutcome::NotInTraffic
            }
            Ruling::Holds(assignment) => AssignOutcome::Assigned {
                assignment,
                first_time: false,
            },
            Ruling::New(assignment, _) => AssignOutcome::Assigned {
                assignment,
                first_time: true,
            },
        }
    }
}

/// What a group read and decided, for the caches once it is committed.
#[derive(Default)]
struct Cached {
    assignments: Vec<((String, Vec<String>), Assignment)>,
    ledgers: Vec<((String, Vec<String>), Ledger)>,
}

impl Cached {
    fn keep(self, store: &Store, generation: Option<u64>) {
        for (key, assignment) in self.assignments {
            store.caches.assignments.put(generation, key, assignment);
        }
        for (key, ledger) in self.ledgers {
            store.caches.ledgers.put(generation, key, Arc::new(ledger));
        }
    }
}

/// Decides `pending` at `now` from `holdings`: eligibility first, then the
/// oldest assignment under any of the person's pseudonyms, then the bucket.
/// A new assignment goes into `holdings`, where a later call of the group for
/// the same person finds it.
fn rule(
    pending: &PendingAssignment,
    holdings: &mut Holdings,
    now: DateTime<Utc>,
    cached: &mut Cached,
) -> Ruling {
    let target = &pending.target;
    let names = pending.names();
    let theirs = facts_for(
        &holdings.records,
        names.iter().map(String::as_str),
        target.purpose.key.as_str(),
    );
    let is_erased = names.iter().any(|s| holdings.erased.contains(s));
    let decision = eligible(&target.purpose, &theirs, is_erased, now);
    cached.ledgers.push((
        (target.purpose.key.to_string(), names.clone()),
        (theirs, is_erased),
    ));
    let proof: Proof = match decision {
        Eligibility::Eligible(proof) => proof,
        Eligibility::Ineligible(reason) => return Ruling::Ineligible(reason),
    };
    let existing = names
        .iter()
        .filter_map(|s| holdings.held.get(&(target.key.clone(), s.clone())))
        .min_by_key(|a| a.assigned_at);
    if let Some(assignment) = existing {
        cached
            .assignments
            .push(((target.key.clone(), names), assignment.clone()));
        return Ruling::Holds(assignment.clone());
    }
    let current = &pending.candidates[0];
    let weights: Vec<f64> = target.variants.iter().map(|v| v.weight).collect();
    let Some(index) = choose_variant(
        hash_v2(&target.seed, current.as_str()),
        target.coverage,
        &weights,
    ) else {
        return Ruling::NotInTraffic;
    };
    let assignment = Assignment {
        experiment_key: target.key.clone(),
        subject: current.to_string(),
        key_version: current.key_version(),
        variant: target.variants[index].key.clone(),
        assigned_at: now,
        basis: proof.basis,
        consent_record_id: Some(proof.record_id),
        notice_version: Some(proof.notice_version),
        withdrawn_at: None,
    };
    holdings.held.insert(
        (target.key.clone(), assignment.subject.clone()),
        assignment.clone(),
    );
    let older = pending.candidates[1..]
        .iter()
        .filter(|alias| holdings.records.contains_key(alias.as_str()))
        .cloned()
        .collect();
    cached
        .assignments
        .push(((target.key.clone(), names), assignment.clone()));
    Ruling::New(assignment, older)
}

/// An assignment call waiting for the next group commit.
pub(crate) struct PendingAssignment {
    target: AssignmentTarget,
    candidates: Vec<Pseudonym>,
}

impl PendingAssignment {
    /// The person's pseudonyms, current key first.
    fn names(&self) -> Vec<String> {
        self.candidates.iter().map(|p| p.to_string()).collect()
    }
}

impl Grouped for PendingAssignment {
    type Out = AssignOutcome;
    const MAX: usize = 512;
    type Ahead = ();

    /// Nothing: a group is decided under the write lock. (Measured: reading
    /// a group ahead on a look-ahead connection, to answer repeats without
    /// the lock, made first-time assignments 25% slower; the extra step per
    /// group cost more than the read it took off the writer.)
    fn reads_ahead(_store: &Store) -> bool {
        false
    }

    async fn ahead(_store: &Store, _jobs: &[Self]) {}

    fn commit(
        store: &Store,
        jobs: &[Self],
        (): (),
    ) -> impl Future<Output = Result<Vec<AssignOutcome>, StoreError>> + Send {
        store.commit_assignments(jobs)
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use pilotgate_domain::Actor;
    use pilotgate_domain::consent::ConsentStatus;
    use pilotgate_domain::eligibility::Reason;

    use super::*;
    use crate::testing::{
        TestDb, buy_design, consent_purpose, consent_record, pseudonym, start_pilot,
    };

    /// One group: a person asked for twice, a person assigned before, and a
    /// person without consent.
    #[tokio::test]
    async fn a_group_stores_a_new_person_once_keeps_the_stored_one_and_counts_refusals() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let Some(db) = TestDb::new(dialect).await else {
                continue;
            };
            let store = &db.store;
            let operator = Actor::operator();
            store
                .create_purpose(&consent_purpose("personalize.content", 1), &operator)
                .await
                .unwrap();
            start_pilot(store, &buy_design("group", "personalize.content", 1.0)).await;
            let granted = ["ann", "bob"].map(|u| consent_record(u, ConsentStatus::Granted));
            store.append_consents(&granted, &operator).await.unwrap();
            let target = store.assignment_target("group").await.unwrap().unwrap();
            let call = |user: &str| PendingAssignment {
                target: target.clone(),
                candidates: vec![pseudonym(user)],
            };
            let bob = match store.commit_assignments(&[call("bob")]).await.unwrap()[..] {
                [
                    AssignOutcome::Assigned {
                        ref assignment,
                        first_time: true,
                    },
                ] => assignment.clone(),
                ref other => panic!("{dialect:?}: bob is assigned first: {other:?}"),
            };

            let outcomes = store
                .commit_assignments(&[call("ann"), call("ann"), call("bob"), call("cy")])
                .await
                .unwrap();
            let AssignOutcome::Assigned {
                assignment: ann,
                first_time: true,
            } = &outcomes[0]
            else {
                panic!("{dialect:?}: ann's first call assigns her: {outcomes:?}");
            };
            assert_eq!(
                outcomes[1..],
                [
                    AssignOutcome::Assigned {
                        assignment: ann.clone(),
                        first_time: false
                    },
                    AssignOutcome::Assigned {
                        assignment: bob.clone(),
                        first_time: false
                    },
                    AssignOutcome::Ineligible(Reason::NoRecord),
                ],
                "{dialect:?}"
            );
            let mut stored = store.assignments_of("group").await.unwrap();
            stored.sort_by(|a, b| a.subject.cmp(&b.subject));
            let mut expected = vec![ann.clone(), bob];
            expected.sort_by(|a, b| a.subject.cmp(&b.subject));
            assert_eq!(stored, expected, "{dialect:?}: each person stored once");
            let refusals = store.refusal_counts("group").await.unwrap();
            assert_eq!(
                refusals
                    .iter()
                    .map(|r| (r.0.as_str(), r.1.as_str(), r.3))
                    .collect::<Vec<_>>(),
                [("assign", "no_record", 1)],
                "{dialect:?}"
            );
        }
    }
}
