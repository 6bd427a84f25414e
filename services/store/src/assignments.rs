//! Consent-gated assignment: a subject gets a variant only while eligible for
//! the pilot's purpose, once (sticky), with the proof stored beside it. An
//! ineligible call stores nothing about the subject, only a counter.

use chrono::{DateTime, Utc};
use pilotgate_domain::bucketing::{choose_variant, hash_v2};
use pilotgate_domain::eligibility::{Eligibility, Proof, Reason};
use pilotgate_domain::experiment::{State, Variant};
use pilotgate_domain::pseudonym::Pseudonym;
use pilotgate_domain::purpose::{LegalBasis, Purpose};
use pilotgate_domain::time::{from_micros, to_micros};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use tokio::sync::{mpsc, oneshot};

use crate::consents::{eligibility_on, placeholders};
use crate::error::corrupt;
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
        Ok(Some(AssignmentTarget {
            key: first.try_get("key")?,
            state: first
                .try_get::<String, _>("state")?
                .parse()
                .map_err(|_| corrupt("experiments.state"))?,
            purpose: crate::purposes::purpose_from_row_with_key(first, "purpose_key")?,
            seed: first.try_get("seed")?,
            coverage: first.try_get("coverage")?,
            variants,
        }))
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
        // The repeat path only reads: the sticky assignment, and eligibility now.
        let (existing, decision) = {
            let mut conn = self.reader.acquire().await?;
            let existing = existing_assignment(&mut conn, &target.key, &subjects).await?;
            let decision = eligibility_on(&mut conn, &subjects, &target.purpose, now).await?;
            (existing, decision)
        };
        match (existing, decision) {
            (_, Eligibility::Ineligible(reason)) => {
                self.count_refusal(&target.key, "assign", reason.as_str(), now)
                    .await?;
                Ok(AssignOutcome::Ineligible(reason))
            }
            (Some(assignment), Eligibility::Eligible(_)) => Ok(AssignOutcome::Assigned {
                assignment,
                first_time: false,
            }),
            (None, Eligibility::Eligible(_)) => self.assign_first_time(target, candidates).await,
        }
    }

    /// Hands a first-time assignment to the group-commit worker and waits for
    /// its outcome: concurrent first-time assignments share one transaction
    /// and one durable commit instead of one each.
    async fn assign_first_time(
        &self,
        target: &AssignmentTarget,
        candidates: &[Pseudonym],
    ) -> Result<AssignOutcome, StoreError> {
        let queue = self.assign_queue.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(group_commit_worker(self.clone(), receiver));
            sender
        });
        let (reply, answer) = oneshot::channel();
        let pending = PendingAssignment {
            target: target.clone(),
            candidates: candidates.to_vec(),
            reply,
        };
        let stopped = || StoreError::Unavailable(sqlx::Error::PoolClosed);
        queue.send(pending).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Decides every pending assignment again under the subject write lock and
    /// stores each once (the first stored assignment wins, on any instance), in
    /// one transaction.
    async fn commit_assignments(
        &self,
        batch: &[PendingAssignment],
    ) -> Result<Vec<AssignOutcome>, StoreError> {
        let mut tx = self.begin_subject_write().await?;
        let now = Utc::now();
        let mut outcomes = Vec::with_capacity(batch.len());
        for pending in batch {
            let target = &pending.target;
            let subjects: Vec<String> = pending
                .candidates
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect();
            let proof: Proof =
                match eligibility_on(&mut tx, &subjects, &target.purpose, now).await? {
                    Eligibility::Eligible(proof) => proof,
                    Eligibility::Ineligible(reason) => {
                        count_refusal_on(&mut tx, &target.key, "assign", reason.as_str(), now, 1)
                            .await?;
                        outcomes.push(AssignOutcome::Ineligible(reason));
                        continue;
                    }
                };
            let current = &pending.candidates[0];
            let weights: Vec<f64> = target.variants.iter().map(|v| v.weight).collect();
            let Some(index) = choose_variant(
                hash_v2(&target.seed, current.as_str()),
                target.coverage,
                &weights,
            ) else {
                count_refusal_on(&mut tx, &target.key, "assign", "not_in_traffic", now, 1).await?;
                outcomes.push(AssignOutcome::NotInTraffic);
                continue;
            };
            let inserted = sqlx::query(
                "INSERT INTO assignments (experiment_key, subject, key_version, variant, assigned_at, basis, consent_record_id, notice_version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (experiment_key, subject) DO NOTHING",
            )
            .bind(&target.key)
            .bind(current.as_str())
            .bind(i64::from(current.key_version()))
            .bind(&target.variants[index].key)
            .bind(to_micros(now))
            .bind(proof.basis.as_str())
            .bind(proof.record_id)
            .bind(i64::from(proof.notice_version))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let assignment = existing_assignment(&mut tx, &target.key, &subjects)
                .await?
                .ok_or_else(|| corrupt("assignments"))?;
            outcomes.push(AssignOutcome::Assigned {
                assignment,
                first_time: inserted == 1,
            });
        }
        tx.commit().await?;
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
        let mut tx = self.begin_write().await?;
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

    /// Refusal counts of a pilot: `(stage, reason, day, count)`.
    pub async fn refusal_counts(
        &self,
        experiment_key: &str,
    ) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT stage, reason, day, count FROM refusal_counters WHERE experiment_key = $1 ORDER BY day, stage, reason")
            .bind(experiment_key)
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("stage")?,
                    row.try_get("reason")?,
                    row.try_get("day")?,
                    row.try_get("count")?,
                ))
            })
            .collect()
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

/// A first-time assignment waiting for the next group commit.
pub(crate) struct PendingAssignment {
    target: AssignmentTarget,
    candidates: Vec<Pseudonym>,
    reply: oneshot::Sender<Result<AssignOutcome, StoreError>>,
}

/// The most assignments one group commit takes.
const GROUP_COMMIT_MAX: usize = 512;

/// Commits whatever first-time assignments are waiting, together: under load
/// many requests share one transaction; alone, a request waits for nothing.
async fn group_commit_worker(store: Store, mut queue: mpsc::UnboundedReceiver<PendingAssignment>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < GROUP_COMMIT_MAX {
            match queue.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        match store.commit_assignments(&batch).await {
            Ok(outcomes) => {
                for (pending, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = pending.reply.send(Ok(outcome));
                }
            }
            Err(error) => {
                let unavailable = matches!(error, StoreError::Unavailable(_));
                let message = error.to_string();
                for pending in batch {
                    let shared = if unavailable {
                        StoreError::Unavailable(sqlx::Error::PoolTimedOut)
                    } else {
                        StoreError::Database(sqlx::Error::Protocol(message.clone()))
                    };
                    let _ = pending.reply.send(Err(shared));
                }
            }
        }
    }
}
