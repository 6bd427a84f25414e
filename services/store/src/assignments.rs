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
use crate::consents::{
    FactsBySubject, facts_for, ledger_facts_columns, ledger_facts_of, placeholders,
    unpack_ledger_facts,
};
use crate::error::corrupt;
use crate::events::{INSERT_CHUNK, LOOKUP_CHUNK};
use crate::group::Grouped;
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
        // Otherwise a repeat only reads (and fills the caches): the sticky
        // assignment, and eligibility now. A subject without one goes straight
        // to the group commit, which decides eligibility under the write lock
        // anyway (and counts a refusal in the same transaction). (Sending
        // every cache miss there would be 5% faster for first-time subjects
        // but would put all repeats on the write lock after each ledger change.)
        let Some(assignment) = self.sticky_assignment(&target.key, &subjects).await? else {
            return self.assign_first_time(target, candidates).await;
        };
        let ledger = self.ledger(&target.purpose, &subjects).await?;
        let (records, erased) = &*ledger;
        match eligible(&target.purpose, records, *erased, now) {
            Eligibility::Ineligible(reason) => {
                self.count_refusal(&target.key, "assign", reason.as_str(), now)
                    .await?;
                Ok(AssignOutcome::Ineligible(reason))
            }
            Eligibility::Eligible(_) => Ok(AssignOutcome::Assigned {
                assignment,
                first_time: false,
            }),
        }
    }

    /// The subject's stored assignment in the pilot, if any (cached once found).
    async fn sticky_assignment(
        &self,
        experiment_key: &str,
        subjects: &[String],
    ) -> Result<Option<Assignment>, StoreError> {
        let generation = self.caches.generation();
        let key = (experiment_key.to_owned(), subjects.to_vec());
        if let Some(found) = self.caches.assignments.get(generation, &key) {
            return Ok(Some(found));
        }
        let mut conn = self.reader.acquire().await?;
        let found = existing_assignment(&mut conn, experiment_key, subjects).await?;
        if let Some(found) = &found {
            self.caches.assignments.put(generation, key, found.clone());
        }
        Ok(found)
    }

    /// The subject's ledger records for `purpose` and whether it was erased (cached).
    async fn ledger(
        &self,
        purpose: &Purpose,
        subjects: &[String],
    ) -> Result<Arc<Ledger>, StoreError> {
        let generation = self.caches.generation();
        let key = (purpose.key.to_string(), subjects.to_vec());
        if let Some(found) = self.caches.ledgers.get(generation, &key) {
            return Ok(found);
        }
        let mut conn = self.reader.acquire().await?;
        let names: Vec<&str> = subjects.iter().map(String::as_str).collect();
        let (facts, erased) = ledger_facts_of(&mut conn, self.dialect, &names).await?;
        let records = facts_for(&facts, names, purpose.key.as_str());
        let found = Arc::new((records, !erased.is_empty()));
        self.caches.ledgers.put(generation, key, Arc::clone(&found));
        Ok(found)
    }

    /// Hands a first-time assignment to the group commit and waits for its
    /// outcome: concurrent first-time assignments share one transaction and
    /// one durable commit instead of one each.
    async fn assign_first_time(
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

    /// Decides every pending assignment again under the subject write lock and
    /// stores each once (the first stored assignment wins, on any instance), in
    /// one transaction and a handful of statements for the whole group.
    async fn commit_assignments(
        &self,
        batch: &[PendingAssignment],
    ) -> Result<Vec<AssignOutcome>, StoreError> {
        let mut tx = self.begin_subject_append().await?;
        // Read under the write lock: what this transaction reads is at least as
        // new as this generation, so it may be cached under it.
        let generation = self.caches.generation();
        let now = self.now();
        let subjects: Vec<&str> = batch
            .iter()
            .flat_map(|p| p.candidates.iter().map(Pseudonym::as_str))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        // Only the pilots asked for: the assignments' key is (pilot, subject).
        let pilots: Vec<&str> = batch
            .iter()
            .map(|p| p.target.key.as_str())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut held: HashMap<(String, String), Assignment> = HashMap::new();
        let mut records: FactsBySubject = HashMap::new();
        let mut erased: HashSet<String> = HashSet::new();
        for chunk in subjects.chunks(LOOKUP_CHUNK) {
            // One statement: the driver's round trip costs more than the reads.
            let packed = self.dialect.packed_rows(&[
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
            // SQLite's `?` are filled in the order of the text, as bound.
            let sql = format!(
                "SELECT (SELECT {packed} FROM assignments WHERE subject IN ({}) AND experiment_key IN ({})), {}",
                self.dialect.placeholders(1, chunk.len()),
                self.dialect.placeholders(chunk.len() + 1, pilots.len()),
                ledger_facts_columns(self.dialect, chunk.len() + pilots.len() + 1, chunk.len())
            );
            let mut query =
                sqlx::query_as::<_, (Option<String>, Option<String>, Option<String>)>(&sql);
            for subject in chunk {
                query = query.bind(*subject);
            }
            for pilot in &pilots {
                query = query.bind(*pilot);
            }
            for subject in chunk.iter().chain(chunk) {
                query = query.bind(*subject);
            }
            let (assignments, facts, gone) = query.fetch_one(&mut *tx).await?;
            for row in assignments.iter().flat_map(|rows| rows.split('\u{1e}')) {
                let assignment = unpack_assignment(row)?;
                let key = (
                    assignment.experiment_key.clone(),
                    assignment.subject.clone(),
                );
                held.insert(key, assignment);
            }
            let (facts, gone) = unpack_ledger_facts(facts, gone)?;
            records.extend(facts);
            erased.extend(gone);
        }

        let mut outcomes: Vec<Option<AssignOutcome>> = Vec::with_capacity(batch.len());
        let mut new_rows: Vec<(usize, Assignment)> = Vec::new();
        let mut refusals: HashMap<(&str, &str), i64> = HashMap::new();
        let mut ledgers = Vec::new();
        for (position, pending) in batch.iter().enumerate() {
            let target = &pending.target;
            let names: Vec<String> = pending.candidates.iter().map(|p| p.to_string()).collect();
            let theirs = facts_for(
                &records,
                names.iter().map(String::as_str),
                target.purpose.key.as_str(),
            );
            let is_erased = names.iter().any(|s| erased.contains(s));
            let decision = eligible(&target.purpose, &theirs, is_erased, now);
            ledgers.push((
                (target.purpose.key.to_string(), names.clone()),
                (theirs, is_erased),
            ));
            let proof: Proof = match decision {
                Eligibility::Eligible(proof) => proof,
                Eligibility::Ineligible(reason) => {
                    *refusals.entry((&target.key, reason.as_str())).or_default() += 1;
                    outcomes.push(Some(AssignOutcome::Ineligible(reason)));
                    continue;
                }
            };
            // The oldest assignment under any of the person's pseudonyms holds.
            let existing = names
                .iter()
                .filter_map(|s| held.get(&(target.key.clone(), s.clone())))
                .min_by_key(|a| a.assigned_at);
            if let Some(assignment) = existing {
                outcomes.push(Some(AssignOutcome::Assigned {
                    assignment: assignment.clone(),
                    first_time: false,
                }));
                continue;
            }
            let current = &pending.candidates[0];
            let weights: Vec<f64> = target.variants.iter().map(|v| v.weight).collect();
            let Some(index) = choose_variant(
                hash_v2(&target.seed, current.as_str()),
                target.coverage,
                &weights,
            ) else {
                *refusals.entry((&target.key, "not_in_traffic")).or_default() += 1;
                outcomes.push(Some(AssignOutcome::NotInTraffic));
                continue;
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
            // A later request of this group for the same person finds it.
            held.insert(
                (target.key.clone(), assignment.subject.clone()),
                assignment.clone(),
            );
            new_rows.push((position, assignment));
            outcomes.push(None);
        }

        let mut stored: HashSet<(String, String)> = HashSet::new();
        for chunk in new_rows.chunks(INSERT_CHUNK) {
            let rows: Vec<&Assignment> = chunk.iter().map(|(_, a)| a).collect();
            stored.extend(insert_new_assignments(&mut tx, self.dialect, &rows).await?);
        }
        let mut known = Vec::new();
        for (position, assignment) in new_rows {
            let subjects: Vec<String> = batch[position]
                .candidates
                .iter()
                .map(|p| p.to_string())
                .collect();
            let key = (
                assignment.experiment_key.clone(),
                assignment.subject.clone(),
            );
            let (assignment, first_time) = if stored.contains(&key) {
                (assignment, true)
            } else {
                // Another instance stored one first (or this group did, for
                // the same person twice): the stored one holds.
                let holding = existing_assignment(&mut tx, &assignment.experiment_key, &subjects)
                    .await?
                    .ok_or_else(|| corrupt("assignments"))?;
                (holding, false)
            };
            known.push((
                (assignment.experiment_key.clone(), subjects),
                assignment.clone(),
            ));
            outcomes[position] = Some(AssignOutcome::Assigned {
                assignment,
                first_time,
            });
        }
        for ((experiment_key, reason), count) in refusals {
            count_refusal_on(&mut tx, experiment_key, "assign", reason, now, count).await?;
        }
        tx.commit().await?;
        // Cached only once committed.
        for (key, assignment) in known {
            self.caches.assignments.put(generation, key, assignment);
        }
        for (key, ledger) in ledgers {
            self.caches.ledgers.put(generation, key, Arc::new(ledger));
        }
        outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| corrupt("assignments")))
            .collect()
    }

    /// Counts one refused call; nothing about the subject is kept.
    pub async fn count_refusal(
        &self,
        experiment_key: &str,
        stage: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_append().await?;
        count_refusal_on(&mut tx, experiment_key, stage, reason, at, 1).await?;
        tx.commit().await?;
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

/// Adds `by` to the refusal counter of `(experiment, stage, reason)` for the day of `at`.
pub(crate) async fn count_refusal_on(
    conn: &mut AnyConnection,
    experiment_key: &str,
    stage: &str,
    reason: &str,
    at: DateTime<Utc>,
    by: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refusal_counters (experiment_key, stage, reason, day, count) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (experiment_key, stage, reason, day) DO UPDATE SET count = refusal_counters.count + $5",
    )
    .bind(experiment_key)
    .bind(stage)
    .bind(reason)
    .bind(day_of(at))
    .bind(by)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn existing_assignment(
    conn: &mut AnyConnection,
    experiment_key: &str,
    subjects: &[String],
) -> Result<Option<Assignment>, StoreError> {
    let sql = format!(
        "SELECT * FROM assignments WHERE experiment_key = $1 AND subject IN ({}) ORDER BY assigned_at LIMIT 1",
        placeholders(2, subjects.len())
    );
    let mut query = sqlx::query(&sql).bind(experiment_key);
    for subject in subjects {
        query = query.bind(subject);
    }
    query
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(assignment_from_row)
        .transpose()
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

/// Stores those of `rows` whose key (pilot, subject) is not stored yet and
/// returns their keys. If the insert stored fewer rows than it was given
/// (another instance stored one first), the stored rows are read back: a row
/// is this insert's if it holds everything this one does. (Not `RETURNING`,
/// nor a savepoint: the driver hands each returned row, and each statement,
/// over between threads, which costs more than the insert.)
async fn insert_new_assignments(
    conn: &mut AnyConnection,
    dialect: crate::Dialect,
    rows: &[&Assignment],
) -> Result<Vec<(String, String)>, StoreError> {
    let key = |a: &Assignment| (a.experiment_key.clone(), a.subject.clone());
    if insert_assignments(conn, dialect, rows).await? == rows.len() as u64 {
        return Ok(rows.iter().map(|a| key(a)).collect());
    }
    let sql = format!(
        "SELECT * FROM assignments WHERE subject IN ({})",
        dialect.placeholders(1, rows.len())
    );
    let mut query = sqlx::query(&sql);
    for row in rows {
        query = query.bind(&row.subject);
    }
    let mut stored = HashMap::new();
    for row in query.fetch_all(&mut *conn).await? {
        let assignment = assignment_from_row(&row)?;
        stored.insert(key(&assignment), assignment);
    }
    Ok(rows
        .iter()
        .filter(|a| stored.get(&key(a)) == Some(**a))
        .map(|a| key(a))
        .collect())
}

/// Inserts `rows` (those whose key is new) and returns how many were new.
async fn insert_assignments(
    conn: &mut AnyConnection,
    dialect: crate::Dialect,
    rows: &[&Assignment],
) -> Result<u64, StoreError> {
    let values = dialect.value_rows(rows.len(), 8);
    let sql = format!(
        "INSERT INTO assignments (experiment_key, subject, key_version, variant, assigned_at, basis, consent_record_id, notice_version) \
         VALUES {values} ON CONFLICT (experiment_key, subject) DO NOTHING"
    );
    let mut query = sqlx::query(&sql);
    for a in rows {
        query = query
            .bind(&a.experiment_key)
            .bind(&a.subject)
            .bind(i64::from(a.key_version))
            .bind(&a.variant)
            .bind(to_micros(a.assigned_at))
            .bind(a.basis.as_str())
            .bind(a.consent_record_id)
            .bind(a.notice_version.map(i64::from));
    }
    Ok(query.execute(&mut *conn).await?.rows_affected())
}

/// A first-time assignment waiting for the next group commit.
pub(crate) struct PendingAssignment {
    target: AssignmentTarget,
    candidates: Vec<Pseudonym>,
}

impl Grouped for PendingAssignment {
    type Out = AssignOutcome;
    const MAX: usize = 512;
    type Ahead = ();

    /// Nothing: a first-time assignment is decided under the write lock.
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
