//! Consent-gated assignment: a subject gets a variant only while eligible for
//! the pilot's purpose, once (sticky), with the proof stored beside it. An
//! ineligible call stores nothing about the subject, only a counter
//! (`refusals`). First-time assignments are decided and stored by a group
//! commit (`commit.rs`); on SQLite, repeats the caches know cost no query.

mod commit;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use pilotgate_domain::bucketing::{choose_variant, hash_v2};
use pilotgate_domain::eligibility::{Eligibility, Reason, Signals, eligible_under};
use pilotgate_domain::experiment::{State, Variant};
use pilotgate_domain::inventory::segments::{Attributes, Dimension};
use pilotgate_domain::pseudonym::Pseudonym;
use pilotgate_domain::purpose::{LegalBasis, Purpose};
use pilotgate_domain::refusal::{Refusal, Stage};
use pilotgate_domain::time::from_micros;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::cache::Generational;
use crate::core::Core;
use crate::db::{Dialect, Packed};
use crate::error::{StoreError, corrupt};
use crate::group::Queue;
use commit::{Cached, Ledger, PendingAssignment, Ruling, read_holdings, rule};

/// What assignment needs to know of a pilot, read in one query.
#[derive(Debug, Clone)]
pub struct AssignmentTarget {
    pub key: String,
    pub state: State,
    pub purpose: Purpose,
    pub seed: String,
    pub coverage: f64,
    pub variants: Vec<Variant>,
    /// The purpose is retired: people assigned before keep their variant,
    /// nobody new is assigned.
    pub purpose_retired: bool,
    /// The segments the design declared: the only attributes an assignment takes.
    pub segments: Vec<Dimension>,
}

impl AssignmentTarget {
    /// The variant `subject` falls into by the pilot's hash, or `None` when
    /// out of its traffic (GrowthBook's bucketing).
    pub(crate) fn bucket(&self, subject: &Pseudonym) -> Option<&Variant> {
        let weights: Vec<f64> = self.variants.iter().map(|v| v.weight).collect();
        choose_variant(
            hash_v2(&self.seed, subject.as_str()),
            self.coverage,
            &weights,
        )
        .map(|index| &self.variants[index])
    }
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
    /// Not assigned before, and the pilot's purpose is retired.
    PurposeRetired,
    /// The subject's variant; `first_time` when this call made the assignment.
    Assigned {
        assignment: Assignment,
        first_time: bool,
    },
}

/// An assignment, packed (see `db::Packed`), in the order of [`Assignment`]'s fields.
pub(crate) const PACKED: Packed<9> = Packed {
    fields: [
        "experiment_key",
        "subject",
        "key_version",
        "variant",
        "assigned_at",
        "basis",
        "COALESCE(CAST(consent_record_id AS TEXT), '')",
        "COALESCE(CAST(notice_version AS TEXT), '')",
        "COALESCE(CAST(withdrawn_at AS TEXT), '')",
    ],
    what: "assignments",
};

/// What assignment keeps of what it read (SQLite only, see `cache.rs`).
#[derive(Default)]
pub(crate) struct AssignCaches {
    pub(crate) targets: Generational<String, AssignmentTarget>,
    /// Keyed by pilot and the subject's pseudonyms (current key first).
    pub(crate) assignments: Generational<(String, Vec<String>), Assignment>,
    /// Keyed by purpose and the subject's pseudonyms: the records and whether
    /// erased, shared (a hit costs no copy of the records).
    pub(crate) ledgers: Generational<(String, Vec<String>), Arc<Ledger>>,
}

/// The assignment feature: its group commit and its caches.
#[derive(Clone, Default)]
pub(crate) struct Assigner {
    queue: Queue<PendingAssignment>,
    caches: Arc<AssignCaches>,
}

/// What the group commit of assignments works with.
#[derive(Clone)]
pub(crate) struct AssignContext {
    core: Core,
    caches: Arc<AssignCaches>,
}

impl Assigner {
    pub(crate) fn context(&self, core: &Core) -> AssignContext {
        AssignContext {
            core: core.clone(),
            caches: Arc::clone(&self.caches),
        }
    }

    /// Starts the group commit on the current runtime.
    pub(crate) fn start(&self, core: &Core) {
        self.queue.start(&self.context(core));
    }

    /// The pilot `key` with its purpose and variants, or `None`.
    pub(crate) async fn target(
        &self,
        core: &Core,
        key: &str,
    ) -> Result<Option<AssignmentTarget>, StoreError> {
        // A malformed key names no pilot (see `Core::experiment`).
        if pilotgate_domain::experiment::ExperimentKey::parse(key).is_err() {
            return Ok(None);
        }
        let generation = core.generation.current();
        if let Some(target) = self.caches.targets.get(generation, &key.to_owned()) {
            return Ok(Some(target));
        }
        let rows = sqlx::query(
            "SELECT e.key, e.state, e.seed, e.coverage, e.segments, v.variant_key, v.weight, p.key AS purpose_key, p.description, \
             p.allowed_bases, p.min_notice_version, p.special_category, p.li_assessment_ref, p.contract_necessary, p.retention_days, p.retired_at \
             FROM experiments e JOIN purposes p ON p.key = e.purpose \
             JOIN experiment_variants v ON v.experiment_key = e.key WHERE e.key = $1 ORDER BY v.position",
        )
        .bind(key)
        .fetch_all(&core.reader)
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
            purpose_retired: first.try_get::<Option<i64>, _>("retired_at")?.is_some(),
            segments: serde_json::from_str(&first.try_get::<String, _>("segments")?)
                .map_err(|_| corrupt("experiments.segments"))?,
        };
        self.caches
            .targets
            .put(generation, key.to_owned(), target.clone());
        Ok(Some(target))
    }

    /// Assigns the person known by `candidates` (current key first) to a
    /// variant of `target`; a first assignment keeps `attributes` (checked
    /// against the pilot's segments by the caller), a repeat keeps those
    /// of the first.
    pub(crate) async fn assign(
        &self,
        core: &Core,
        target: &AssignmentTarget,
        candidates: &[Pseudonym],
        now: DateTime<Utc>,
        signals: Signals,
        attributes: &Attributes,
    ) -> Result<AssignOutcome, StoreError> {
        if target.state != State::Running {
            core.count_refusal(&target.key, Stage::Assign, Refusal::NotRunning, now)
                .await?;
            return Ok(AssignOutcome::NotRunning);
        }
        let subjects: Vec<String> = candidates.iter().map(|p| p.as_str().to_owned()).collect();
        let generation = core.generation.current();
        if generation.is_some() {
            // SQLite with caches on: a repeat the caches know costs no query.
            let key = (target.key.clone(), subjects.clone());
            let ledger_key = (target.purpose.key.to_string(), subjects.clone());
            let known = self.caches.assignments.get(generation, &key);
            let ledger = self.caches.ledgers.get(generation, &ledger_key);
            if let (Some(assignment), Some(ledger)) = (known, ledger) {
                let (records, erased) = &*ledger;
                return match eligible_under(&target.purpose, records, *erased, now, signals) {
                    Eligibility::Eligible(_) => Ok(AssignOutcome::Assigned {
                        assignment,
                        first_time: false,
                    }),
                    Eligibility::Ineligible(reason) => {
                        core.count_refusal(
                            &target.key,
                            Stage::Assign,
                            Refusal::Ineligible(reason),
                            now,
                        )
                        .await?;
                        Ok(AssignOutcome::Ineligible(reason))
                    }
                };
            }
        }
        let pending = PendingAssignment {
            target: target.clone(),
            candidates: candidates.to_vec(),
            signals,
            attributes: attributes.stored(),
        };
        let context = self.context(core);
        if core.dialect == Dialect::Sqlite {
            // SQLite: every call the caches cannot answer goes to the group
            // commit, first-time or not; a group of repeats costs a read and
            // an empty commit (measured: first-time assignments 15-20% faster
            // than with a read of their own on the way; see `bench/results/load.md`).
            return self.queue.submit(&context, pending).await;
        }
        // PostgreSQL: a call is decided from one read on a reader, as the
        // group would decide it; only one that would store a new assignment
        // goes to the group commit, which decides it again under the table
        // lock. Repeats there would queue on the lock every instance takes.
        let names: Vec<&str> = subjects.iter().map(String::as_str).collect();
        let mut holdings = {
            let mut conn = core.reader.acquire().await?;
            read_holdings(&mut *conn, core.dialect, &names, &[&target.key]).await?
        };
        let mut refusals = HashMap::new();
        let outcome = match rule(&pending, &mut holdings, now, &mut Cached::default()) {
            Ruling::New(..) => return self.queue.submit(&context, pending).await,
            ruling => ruling.answer(&mut refusals, &pending),
        };
        for ((experiment_key, refusal), _) in refusals {
            core.count_refusal(experiment_key, Stage::Assign, refusal, now)
                .await?;
        }
        Ok(outcome)
    }
}

impl Core {
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
}

/// One assignment of [`PACKED`].
pub(crate) fn unpack_assignment(fields: [&str; 9]) -> Result<Assignment, StoreError> {
    let [
        experiment_key,
        subject,
        key_version,
        variant,
        assigned_at,
        basis,
        record_id,
        notice,
        withdrawn,
    ] = fields;
    let number = |text: &str, column: &'static str| -> Result<i64, StoreError> {
        text.parse().map_err(|_| corrupt(column))
    };
    let optional = |text: &str, column: &'static str| -> Result<Option<i64>, StoreError> {
        (!text.is_empty()).then(|| number(text, column)).transpose()
    };
    Ok(Assignment {
        experiment_key: experiment_key.to_owned(),
        subject: subject.to_owned(),
        key_version: u32::try_from(number(key_version, "assignments.key_version")?)
            .map_err(|_| corrupt("assignments.key_version"))?,
        variant: variant.to_owned(),
        assigned_at: from_micros(number(assigned_at, "assignments.assigned_at")?),
        basis: basis.parse().map_err(|_| corrupt("assignments.basis"))?,
        consent_record_id: optional(record_id, "assignments.consent_record_id")?,
        notice_version: optional(notice, "assignments.notice_version")?
            .map(|v| u32::try_from(v).map_err(|_| corrupt("assignments.notice_version")))
            .transpose()?,
        withdrawn_at: optional(withdrawn, "assignments.withdrawn_at")?.map(from_micros),
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
