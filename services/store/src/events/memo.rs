//! What the events' reads ahead learned at one change epoch, and the
//! decisions a group makes ahead of its commit (SQLite only).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::rule::{Decided, Facts, Held, Ledger, Purposes, RunningPilots};
use crate::cache::CAPACITY;

/// A group's decisions, made ahead of its commit from a snapshot of the
/// ledger (SQLite only). They hold if no change that may alter a decision
/// committed since: the change epoch (migration 0004), which every write but
/// the appends moves in its own transaction, still reads the same under the
/// write lock. Appends alter no decision already made: a first-time
/// assignment answered before an event was sent is in the snapshot.
pub(crate) struct Foresight {
    pub(crate) epoch: i64,
    /// The assignments the verdicts of `decided` point into.
    pub(crate) holdings: Vec<Arc<Held>>,
    pub(crate) decided: Vec<Decided>,
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

    /// Whether the memo holds what it read of `subject`.
    #[cfg(test)]
    pub(crate) fn knows(&self, subject: &str) -> bool {
        self.lock().known.contains_key(subject)
    }

    /// The pilots and purposes read at `epoch`, if this memo holds that epoch.
    pub(crate) fn context(&self, epoch: i64) -> Option<(Arc<RunningPilots>, Arc<Purposes>)> {
        let memo = self.lock();
        (memo.epoch == Some(epoch)).then(|| (Arc::clone(&memo.pilots), Arc::clone(&memo.purposes)))
    }

    /// Starts over at `epoch`, with what was read at it.
    pub(crate) fn restart(
        &self,
        epoch: i64,
        pilots: &Arc<RunningPilots>,
        purposes: &Arc<Purposes>,
    ) {
        *self.lock() = Recalled {
            epoch: Some(epoch),
            pilots: Arc::clone(pilots),
            purposes: Arc::clone(purposes),
            known: HashMap::new(),
        };
    }

    /// What is known at `epoch` of `subjects`, and the subjects to read.
    pub(crate) fn recall<'s>(&self, epoch: i64, subjects: &[&'s str]) -> (Ledger, Vec<&'s str>) {
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
    pub(crate) fn learn(&self, epoch: i64, read: &Ledger) {
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
