//! The group commit of assignment calls: one transaction under the subject
//! write lock decides every call of the group from one read of the people's
//! assignments, ledger facts and erasures, and stores the new assignments,
//! the refusal counts and the links between pseudonyms in one statement list.
//!
//! The read is sent with the `BEGIN` (`begin_subject_append_with_first_statement`)
//! and the writes with the `COMMIT`: two round trips to the driver's thread
//! a group, each of which costs more than the work (measured: a read of its
//! own on the way, or a read ahead on a look-ahead connection, made
//! first-time assignments 15-25% slower). The insert is a plain `INSERT`:
//! under the lock nothing else can store a key between the read and the
//! insert, and if something did, the key's uniqueness would fail the whole
//! group. Assignments are keyed by (pilot, subject) and have no other index
//! (on SQLite one `WITHOUT ROWID` B-tree, so an insert dirties one page).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use pilotgate_domain::eligibility::{
    Eligibility, Proof, Reason, RecordFacts, Signals, eligible_under,
};
use pilotgate_domain::pseudonym::Pseudonym;
use pilotgate_domain::refusal::{Refusal, Stage};
use pilotgate_domain::time::{from_micros, to_micros};

use super::{
    AssignCaches, AssignContext, AssignOutcome, Assignment, AssignmentTarget, PACKED,
    unpack_assignment,
};
use crate::consents::{FactsBySubject, facts_for, ledger_facts_columns, unpack_ledger_facts};
use crate::db::{AppendBatch, AppendTable, Dialect, INSERT_CHUNK, LOOKUP_CHUNK, Reads, Value};
use crate::error::{StoreError, corrupt};
use crate::group::Grouped;
use crate::links::{Named, push_link_rows};
use crate::refusals::push_refusal_count;

/// The facts of a subject's records for one purpose, and whether it was erased.
pub(crate) type Ledger = (Vec<RecordFacts>, bool);

/// The insert of `rows` assignments (see [`assignment_values`]).
fn insert_assignments_sql(dialect: Dialect, rows: usize) -> String {
    format!(
        "INSERT INTO assignments (experiment_key, subject, key_version, variant, assigned_at, basis, consent_record_id, notice_version, segments) \
         VALUES {}",
        dialect.value_rows(rows, 9)
    )
}

/// The values of `rows` for [`insert_assignments_sql`]: each assignment with
/// its stored segment attributes.
fn assignment_values(rows: &[(Assignment, Option<String>)]) -> Vec<Value> {
    rows.iter()
        .flat_map(|(a, segments)| {
            [
                Value::Text(a.experiment_key.clone()),
                Value::Text(a.subject.clone()),
                Value::Integer(Some(i64::from(a.key_version))),
                Value::Text(a.variant.clone()),
                Value::Integer(Some(to_micros(a.assigned_at))),
                Value::Text(a.basis.as_str().to_owned()),
                Value::Integer(a.consent_record_id),
                Value::Integer(a.notice_version.map(i64::from)),
                Value::OptionalText(segments.clone()),
            ]
        })
        .collect()
}

/// What a group knows of its people: their assignments in the group's
/// pilots by `(pilot, pseudonym)`, their ledger facts and their erasures.
#[derive(Default)]
pub(crate) struct Holdings {
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
/// chunk of subjects (the driver's round trip costs more than the reads). In
/// a transaction not open yet, the first statement opens it (see `db::Begin`).
pub(crate) async fn read_holdings(
    conn: &mut impl Reads,
    dialect: Dialect,
    subjects: &[&str],
    pilots: &[&str],
) -> Result<Holdings, StoreError> {
    let mut holdings = Holdings::default();
    for chunk in subjects.chunks(LOOKUP_CHUNK) {
        // SQLite's `?` are filled in the order of the text, as bound.
        let (sql, conn) = conn.reading(&format!(
            "SELECT (SELECT {} FROM assignments WHERE subject IN ({}) AND experiment_key IN ({})), {}",
            PACKED.select(dialect),
            dialect.placeholders(1, chunk.len()),
            dialect.placeholders(chunk.len() + 1, pilots.len()),
            ledger_facts_columns(dialect, chunk.len() + pilots.len() + 1, chunk.len())
        ))?;
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
        for row in PACKED.rows(assignments.as_deref()) {
            let assignment = unpack_assignment(row?)?;
            let key = (
                assignment.experiment_key.clone(),
                assignment.subject.clone(),
            );
            holdings.held.insert(key, assignment);
        }
        let (facts, gone) = unpack_ledger_facts(facts.as_deref(), gone.as_deref())?;
        holdings.records.extend(facts);
        holdings.erased.extend(gone);
    }
    Ok(holdings)
}

/// How one assignment call is decided from [`Holdings`].
pub(crate) enum Ruling {
    Ineligible(Reason),
    NotInTraffic,
    /// Not assigned before, and the purpose is retired.
    Retired,
    /// The person's assignment, stored before.
    Holds(Assignment),
    /// An assignment to store, under the current pseudonym, and the person's
    /// pseudonyms under older key versions whose ledger made them eligible
    /// (to be linked to it, see `links.rs`).
    New(Assignment, Vec<Pseudonym>),
}

impl Ruling {
    /// The call's answer, counting a refusal in `refusals`.
    pub(crate) fn answer<'b>(
        self,
        refusals: &mut HashMap<(&'b str, Refusal), i64>,
        pending: &'b PendingAssignment,
    ) -> AssignOutcome {
        let mut refused = |refusal: Refusal| {
            *refusals.entry((&pending.target.key, refusal)).or_default() += 1;
        };
        match self {
            Ruling::Ineligible(reason) => {
                refused(Refusal::Ineligible(reason));
                AssignOutcome::Ineligible(reason)
            }
            Ruling::NotInTraffic => {
                refused(Refusal::NotInTraffic);
                AssignOutcome::NotInTraffic
            }
            Ruling::Retired => {
                refused(Refusal::PurposeRetired);
                AssignOutcome::PurposeRetired
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
pub(crate) struct Cached {
    assignments: Vec<((String, Vec<String>), Assignment)>,
    ledgers: Vec<((String, Vec<String>), Ledger)>,
}

impl Cached {
    fn keep(self, caches: &AssignCaches, generation: Option<u64>) {
        for (key, assignment) in self.assignments {
            caches.assignments.put(generation, key, assignment);
        }
        for (key, ledger) in self.ledgers {
            caches.ledgers.put(generation, key, Arc::new(ledger));
        }
    }
}

/// Decides `pending` at `now` from `holdings`: eligibility first, then the
/// oldest assignment under any of the person's pseudonyms, then the bucket.
/// A new assignment goes into `holdings`, where a later call of the group for
/// the same person finds it.
pub(crate) fn rule(
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
    let decision = eligible_under(&target.purpose, &theirs, is_erased, now, pending.signals);
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
    if target.purpose_retired {
        return Ruling::Retired;
    }
    let current = &pending.candidates[0];
    let Some(variant) = target.bucket(current) else {
        return Ruling::NotInTraffic;
    };
    let assignment = Assignment {
        experiment_key: target.key.clone(),
        subject: current.to_string(),
        key_version: current.key_version(),
        variant: variant.key.clone(),
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
    pub(crate) target: AssignmentTarget,
    pub(crate) candidates: Vec<Pseudonym>,
    /// What the request said besides the ledger (a GPC signal), for this call only.
    pub(crate) signals: Signals,
    /// The segment attributes to store with a first assignment (`Attributes::stored`).
    pub(crate) attributes: Option<String>,
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
    type Context = AssignContext;
    type Ahead = ();

    /// Nothing: a group is decided under the write lock. (Measured: reading
    /// a group ahead on a look-ahead connection, to answer repeats without
    /// the lock, made first-time assignments 25% slower; the extra step per
    /// group cost more than the read it took off the writer.)
    fn reads_ahead(_context: &AssignContext) -> bool {
        false
    }

    async fn ahead(_context: &AssignContext, _jobs: &[Self]) {}

    fn commit(
        context: &AssignContext,
        jobs: &[Self],
        (): (),
    ) -> impl Future<Output = Result<Vec<AssignOutcome>, StoreError>> + Send {
        context.commit_assignments(jobs)
    }
}

impl AssignContext {
    /// Decides a group of assignment calls under the subject write lock and
    /// stores each new assignment once (the first stored assignment wins, on
    /// any instance), counting refusals in the same transaction: on SQLite one
    /// transaction and two round trips to the driver for the whole group.
    pub(crate) async fn commit_assignments(
        &self,
        batch: &[PendingAssignment],
    ) -> Result<Vec<AssignOutcome>, StoreError> {
        let core = &self.core;
        let mut refusals: HashMap<(&str, Refusal), i64> = HashMap::new();
        let mut tx = core.begin_subject_append_with_first_statement().await?;
        // Read under the write lock: what this transaction reads is at least as
        // new as this generation, so it may be cached under it.
        let generation = core.generation.current();
        // To the microsecond, as stored: an answer equals the stored row.
        let now = from_micros(to_micros(core.now()));
        let subjects: Vec<&str> = batch
            .iter()
            .flat_map(|p| p.candidates.iter().map(Pseudonym::as_str))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut holdings =
            read_holdings(&mut tx, core.dialect, &subjects, &pilots_of(batch)).await?;
        let mut cached = Cached::default();
        let mut new_rows: Vec<(Assignment, Option<String>)> = Vec::new();
        let mut links: Vec<(Named, Vec<Pseudonym>)> = Vec::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        for pending in batch {
            let ruling = rule(pending, &mut holdings, now, &mut cached);
            if let Ruling::New(assignment, older) = &ruling {
                new_rows.push((assignment.clone(), pending.attributes.clone()));
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
        let mut statements = AppendBatch::default();
        for chunk in new_rows.chunks(INSERT_CHUNK) {
            statements.push(
                AppendTable::Assignments,
                insert_assignments_sql(core.dialect, chunk.len()),
                assignment_values(chunk),
            )?;
        }
        // Each new assignment counts in its cell of the results' aggregates.
        let mut cells = crate::aggregates::Deltas::default();
        for (a, segments) in &new_rows {
            cells.assigned(crate::aggregates::Cell::of(
                &a.experiment_key,
                &a.variant,
                to_micros(a.assigned_at),
                a.basis.as_str(),
                a.notice_version.map(i64::from),
                segments.as_deref(),
            ));
        }
        cells.push_to(&mut statements, core.dialect)?;
        for ((experiment_key, refusal), count) in refusals {
            push_refusal_count(
                &mut statements,
                core.dialect,
                experiment_key,
                Stage::Assign,
                refusal,
                now,
                count,
            )?;
        }
        push_link_rows(
            &mut statements,
            core.dialect,
            links
                .iter()
                .map(|(current, older)| (current.clone(), older.iter().collect())),
        )?;
        tx.commit_after(statements).await?;
        // Cached only once committed.
        cached.keep(&self.caches, generation);
        Ok(outcomes)
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

    /// Commits `batch` as one group, as the group commit would.
    async fn commit(
        store: &crate::Store,
        batch: &[PendingAssignment],
    ) -> Result<Vec<AssignOutcome>, StoreError> {
        store
            .assigner
            .context(&store.core)
            .commit_assignments(batch)
            .await
    }

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
                signals: Default::default(),
                attributes: None,
            };
            let bob = match commit(store, &[call("bob")]).await.unwrap()[..] {
                [
                    AssignOutcome::Assigned {
                        ref assignment,
                        first_time: true,
                    },
                ] => assignment.clone(),
                ref other => panic!("{dialect:?}: bob is assigned first: {other:?}"),
            };

            let outcomes = commit(store, &[call("ann"), call("ann"), call("bob"), call("cy")])
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
