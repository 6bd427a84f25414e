//! The tamper-evident audit chain: how an entry is hashed and how a chain is verified.
//!
//! `hash = SHA-256(prev_hash || canonical entry)`, both as lowercase hex, where
//! the canonical entry is the JSON object of `id, at, actor, action, target,
//! details` with sorted keys and no white space. `details` is hashed as the
//! exact text stored, so any edit to a stored row changes its hash. Ids are
//! contiguous from 1, so a removed row leaves a gap even at the end of a page.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An audit entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Microseconds since the Unix epoch.
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// Canonical JSON text.
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The fields of an entry that its hash covers.
#[derive(Debug, Clone, Copy)]
pub struct EntryContent<'a> {
    pub id: i64,
    pub at: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub details: &'a str,
}

impl EntryContent<'_> {
    /// The hash of this entry when it follows an entry whose hash is `prev_hash`.
    pub fn chained_hash(&self, prev_hash: &str) -> String {
        // serde_json writes object keys in the order given here, which is sorted.
        let canonical = serde_json::json!({
            "action": self.action,
            "actor": self.actor,
            "at": self.at,
            "details": self.details,
            "id": self.id,
            "target": self.target,
        });
        let mut hasher = Sha256::new();
        hasher.update(prev_hash.as_bytes());
        hasher.update(canonical.to_string().as_bytes());
        hex::encode(hasher.finalize())
    }
}

impl AuditEntry {
    /// The part of the entry that its hash covers.
    pub fn content(&self) -> EntryContent<'_> {
        EntryContent {
            id: self.id,
            at: self.at,
            actor: &self.actor,
            action: &self.action,
            target: &self.target,
            details: &self.details,
        }
    }
}

/// Canonical JSON text for a details value (sorted keys, no white space).
pub fn canonical_details(details: &serde_json::Value) -> String {
    // serde_json's default map is a BTreeMap, so keys come out sorted.
    details.to_string()
}

/// What a walk of the chain found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub ok: bool,
    /// How many entries were read.
    pub entries: u64,
    /// The id of the first entry that does not fit the chain.
    pub first_bad_id: Option<i64>,
    /// Why that entry does not fit, for people.
    pub problem: Option<String>,
}

/// Walks entries in id order and reports the first that breaks the chain.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_id: i64,
    prev_hash: String,
    entries: u64,
    failure: Option<(i64, String)>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            expected_id: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            entries: 0,
            failure: None,
        }
    }
}

impl ChainVerifier {
    /// Feeds the next entry in id order. After the first failure, entries are only counted.
    pub fn push(&mut self, entry: &AuditEntry) {
        self.entries += 1;
        if self.failure.is_some() {
            return;
        }
        let problem = if entry.id != self.expected_id {
            Some(format!(
                "expected entry {} but found entry {}: an entry was removed or inserted",
                self.expected_id, entry.id
            ))
        } else if entry.prev_hash != self.prev_hash {
            Some("its prev_hash does not match the previous entry's hash".to_owned())
        } else if entry.content().chained_hash(&self.prev_hash) != entry.hash {
            Some("its hash does not match its content: the entry was edited".to_owned())
        } else {
            None
        };
        if let Some(problem) = problem {
            // A gap is reported at the first id that is missing or out of place.
            let bad_id = entry.id.min(self.expected_id);
            self.failure = Some((bad_id, problem));
            return;
        }
        self.expected_id = entry.id + 1;
        self.prev_hash = entry.hash.clone();
    }

    /// The verdict on everything pushed so far.
    pub fn finish(self) -> ChainReport {
        let (first_bad_id, problem) = match self.failure {
            Some((id, problem)) => (Some(id), Some(problem)),
            None => (None, None),
        };
        ChainReport {
            ok: first_bad_id.is_none(),
            entries: self.entries,
            first_bad_id,
            problem,
        }
    }
}

/// Verifies a whole chain held in memory.
pub fn verify_chain<'a>(entries: impl IntoIterator<Item = &'a AuditEntry>) -> ChainReport {
    let mut verifier = ChainVerifier::default();
    for entry in entries {
        verifier.push(entry);
    }
    verifier.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|id| {
                let content = EntryContent {
                    id,
                    at: 1_000 + id,
                    actor: "dana (compliance)",
                    action: "token.create",
                    target: "token:t",
                    details: r#"{"role":"ingest"}"#,
                };
                let hash = content.chained_hash(&prev);
                let entry = AuditEntry {
                    id,
                    at: content.at,
                    actor: content.actor.to_owned(),
                    action: content.action.to_owned(),
                    target: content.target.to_owned(),
                    details: content.details.to_owned(),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                entry
            })
            .collect()
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let report = verify_chain(&chain(5));
        assert!(report.ok);
        assert_eq!(report.entries, 5);
        assert_eq!(report.first_bad_id, None);
    }

    #[test]
    fn an_empty_chain_verifies() {
        assert!(verify_chain(&[]).ok);
    }

    #[test]
    fn an_edited_entry_is_named() {
        let mut entries = chain(5);
        entries[2].details = r#"{"role":"admin"}"#.to_owned();
        let report = verify_chain(&entries);
        assert_eq!(report.first_bad_id, Some(3));
    }

    #[test]
    fn a_removed_entry_is_named() {
        let mut entries = chain(5);
        entries.remove(1);
        assert_eq!(verify_chain(&entries).first_bad_id, Some(2));
    }

    #[test]
    fn an_inserted_entry_is_named() {
        let mut entries = chain(5);
        let mut forged = entries[1].clone();
        forged.id = 3;
        forged.action = "token.revoke".to_owned();
        for entry in entries.iter_mut().skip(2) {
            entry.id += 1;
        }
        entries.insert(2, forged);
        assert_eq!(verify_chain(&entries).first_bad_id, Some(3));
    }

    #[test]
    fn a_rehashed_edit_still_breaks_the_next_link() {
        let mut entries = chain(5);
        entries[1].target = "token:other".to_owned();
        entries[1].hash = entries[1].content().chained_hash(&entries[1].prev_hash);
        assert_eq!(verify_chain(&entries).first_bad_id, Some(3));
    }
}
