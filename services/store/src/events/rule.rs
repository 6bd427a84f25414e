//! The acceptance rule of events, pure: what the ledger of one commit's
//! subjects says of each event (stored, a duplicate within the commit, or
//! refused and why).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use pilotgate_domain::eligibility::{
    Eligibility, RecordFacts, eligible, withdrawn_assignment_reason,
};
use pilotgate_domain::purpose::Purpose;
use pilotgate_domain::refusal::Refusal;

use super::EventDraft;
use crate::error::{StoreError, corrupt};

/// An assignment in a running pilot, as event ingestion reads it.
pub(crate) struct Held {
    pub(crate) experiment_key: String,
    pub(crate) subject: String,
    pub(crate) assigned_at: DateTime<Utc>,
    /// The assignment is marked withdrawn (a withdrawal, objection or denial
    /// was received): every later event is refused, whatever time it claims.
    pub(crate) withdrawn: bool,
    pub(crate) pilot: Arc<Pilot>,
}

/// What event ingestion needs of a running pilot.
pub(crate) struct Pilot {
    pub(crate) purpose: String,
    /// Its metrics (the event names it measures) and attribution window.
    pub(crate) measures: crate::aggregates::Measures,
}

/// The running pilots by key.
pub(crate) type RunningPilots = HashMap<String, Arc<Pilot>>;

/// One pseudonym's ledger facts, each with its purpose (shared with the [`Memo`]).
pub(crate) type Facts = Arc<Vec<(String, RecordFacts)>>;

/// The purposes by key.
pub(crate) type Purposes = HashMap<String, Purpose>;

pub(crate) fn purposes_by_key(purposes: Vec<Purpose>) -> Purposes {
    purposes
        .into_iter()
        .map(|p| (p.key.to_string(), p))
        .collect()
}

/// What the decision needs to know about the subjects of one commit.
#[derive(Default)]
pub(crate) struct Ledger {
    /// The assignments these subjects hold in running pilots.
    pub(crate) holdings: Vec<Arc<Held>>,
    /// Each pseudonym's assignments, as indices into `holdings`.
    pub(crate) held: HashMap<String, Vec<usize>>,
    pub(crate) records: HashMap<String, Facts>,
    pub(crate) erased: HashSet<String>,
    pub(crate) purposes: Arc<Purposes>,
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
    pub(crate) holding: usize,
    pub(crate) refusal: Option<Refusal>,
}

/// The pseudonyms of `events`, sorted, each once.
pub(crate) fn subjects_of<'e>(events: &[&'e EventDraft]) -> Vec<&'e str> {
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
    pub(crate) fn absorb(&mut self, other: Ledger) {
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
    pub(crate) fn decide_all(&self, events: &[&EventDraft]) -> Result<Vec<Decided>, StoreError> {
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

    fn refusal(&self, holding: &Held, event: &EventDraft) -> Result<Option<Refusal>, StoreError> {
        if !holding
            .pilot
            .measures
            .metrics
            .iter()
            .any(|m| m.event == event.name)
        {
            return Ok(Some(Refusal::NotAMetric));
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
            return Ok(Some(Refusal::Ineligible(withdrawn_assignment_reason(
                &theirs,
            ))));
        }
        if event.occurred_at < holding.assigned_at {
            return Ok(Some(Refusal::BeforeAssignment));
        }
        Ok(
            match eligible(purpose, &theirs, is_erased, event.occurred_at) {
                Eligibility::Eligible(_) => None,
                Eligibility::Ineligible(reason) => Some(Refusal::Ineligible(reason)),
            },
        )
    }
}
