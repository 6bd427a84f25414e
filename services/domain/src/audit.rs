//! The tamper-evident audit chain: how an entry is hashed and how a chain is verified.
//!
//! `hash = HMAC-SHA256(audit key, prev_hash || canonical entry)`, as lowercase
//! hex, where the canonical entry is the JSON object of `id, at, actor,
//! action, target, details` with sorted keys and no white space. The audit key
//! is kept outside the database (like the pseudonym key), so someone who can
//! write the database cannot recompute the chain after an edit. `details` is
//! hashed as the exact text stored, so any edit to a stored row changes its
//! hash. Ids are contiguous from 1, so a removed row leaves a gap even at the
//! end of a page. Removing the newest entries (or all of them) leaves a chain
//! that still verifies on its own: an anchor, the head recorded outside the
//! database ([`ChainHead`]), catches that.

use std::fmt;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::pseudonym::{MIN_KEY_BYTES, fingerprint};

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

/// The key of the audit chain. Its bytes never appear in `Debug` output.
#[derive(Clone)]
pub struct AuditKey {
    secret: Vec<u8>,
}

/// An audit key shorter than 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an audit key must have at least {MIN_KEY_BYTES} bytes (64 hex digits)")]
pub struct AuditKeyTooShort;

impl AuditKey {
    /// A key made of `secret`, which must be at least 32 bytes.
    pub fn new(secret: Vec<u8>) -> Result<AuditKey, AuditKeyTooShort> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(AuditKeyTooShort);
        }
        Ok(AuditKey { secret })
    }

    /// An HMAC of a fixed label under this key, for the database to recognise it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.secret)
    }

    /// A key derived from this one for another purpose (HMAC of `label`),
    /// so that one secret kept outside the database serves several uses.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(b"pilotgate derived key|");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).expect("HMAC takes any key length")
    }
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey([redacted])")
    }
}

/// The head of a chain: how many entries it has and the hash of the last
/// ([`GENESIS_HASH`] when it is empty). Recorded outside the database, it is
/// an anchor: a later chain must still hold entry `entries` with this hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ChainHead {
    pub entries: u64,
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
    /// The hash of this entry under `key` when it follows an entry whose hash is `prev_hash`.
    pub fn chained_hash(&self, key: &AuditKey, prev_hash: &str) -> String {
        let mut mac = key.mac();
        mac.update(prev_hash.as_bytes());
        mac.update(self.canonical().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The unkeyed SHA-256 hash of chains written before the audit key
    /// existed; only read when such a chain is converted to the keyed one.
    pub fn legacy_chained_hash(&self, prev_hash: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(prev_hash.as_bytes());
        hasher.update(self.canonical().as_bytes());
        hex::encode(hasher.finalize())
    }

    fn canonical(&self) -> String {
        // serde_json writes object keys in the order given here, which is sorted.
        serde_json::json!({
            "action": self.action,
            "actor": self.actor,
            "at": self.at,
            "details": self.details,
            "id": self.id,
            "target": self.target,
        })
        .to_string()
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
    /// The id of the first entry that does not fit the chain (for a chain
    /// cut short of its anchor: the first missing id).
    pub first_bad_id: Option<i64>,
    /// Why that entry does not fit, for people.
    pub problem: Option<String>,
    /// The head the walk ended at.
    pub head: ChainHead,
    /// The anchor the chain was checked against, if one was given.
    pub anchor: Option<ChainHead>,
}

/// Walks entries in id order and reports the first that breaks the chain,
/// or a chain that no longer reaches its anchor.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    key: AuditKey,
    anchor: Option<ChainHead>,
    expected_id: i64,
    prev_hash: String,
    entries: u64,
    failure: Option<(i64, String)>,
    /// Whether the entry the anchor names was seen with the anchored hash.
    anchor_reached: bool,
}

impl ChainVerifier {
    /// A walk from the first entry, checked against `anchor` when given.
    pub fn new(key: &AuditKey, anchor: Option<ChainHead>) -> ChainVerifier {
        ChainVerifier::resume(
            key,
            anchor,
            &ChainHead {
                entries: 0,
                hash: GENESIS_HASH.to_owned(),
            },
        )
    }

    /// A walk that continues after `verified`, a head a former walk ended at
    /// without a failure: only later entries are read.
    pub fn resume(
        key: &AuditKey,
        anchor: Option<ChainHead>,
        verified: &ChainHead,
    ) -> ChainVerifier {
        let anchor_reached = anchor
            .as_ref()
            .is_some_and(|a| a.entries < verified.entries || *a == *verified);
        ChainVerifier {
            key: key.clone(),
            anchor,
            expected_id: i64::try_from(verified.entries).unwrap_or(i64::MAX) + 1,
            prev_hash: verified.hash.clone(),
            entries: verified.entries,
            failure: None,
            anchor_reached,
        }
    }

    /// The id the next entry must have.
    pub fn next_id(&self) -> i64 {
        self.expected_id
    }

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
        } else if entry.content().chained_hash(&self.key, &self.prev_hash) != entry.hash {
            Some(
                "its hash does not match its content under the audit key: the entry was edited, or the chain rewritten"
                    .to_owned(),
            )
        } else {
            None
        };
        if let Some(problem) = problem {
            // A gap is reported at the first id that is missing or out of place.
            let bad_id = entry.id.min(self.expected_id);
            self.failure = Some((bad_id, problem));
            return;
        }
        if let Some(anchor) = &self.anchor
            && u64::try_from(entry.id).ok() == Some(anchor.entries)
        {
            if entry.hash == anchor.hash {
                self.anchor_reached = true;
            } else {
                self.failure = Some((
                    entry.id,
                    "it does not match the anchored head: the log was rewritten".to_owned(),
                ));
                return;
            }
        }
        self.expected_id = entry.id + 1;
        self.prev_hash = entry.hash.clone();
    }

    /// The verdict on everything pushed so far.
    pub fn finish(self) -> ChainReport {
        let head = ChainHead {
            entries: u64::try_from(self.expected_id - 1).unwrap_or(0),
            hash: self.prev_hash.clone(),
        };
        let failure = self.failure.or_else(|| match &self.anchor {
            Some(anchor) if anchor.entries > 0 && !self.anchor_reached => Some((
                self.expected_id,
                format!(
                    "the log ends at entry {} but its anchor recorded {} entries: entries were removed from the end",
                    self.expected_id - 1,
                    anchor.entries
                ),
            )),
            _ => None,
        });
        let (first_bad_id, problem) = match failure {
            Some((id, problem)) => (Some(id), Some(problem)),
            None => (None, None),
        };
        ChainReport {
            ok: first_bad_id.is_none(),
            entries: self.entries,
            first_bad_id,
            problem,
            head,
            anchor: self.anchor,
        }
    }
}

/// Verifies a whole chain held in memory.
pub fn verify_chain<'a>(
    key: &AuditKey,
    anchor: Option<ChainHead>,
    entries: impl IntoIterator<Item = &'a AuditEntry>,
) -> ChainReport {
    let mut verifier = ChainVerifier::new(key, anchor);
    for entry in entries {
        verifier.push(entry);
    }
    verifier.finish()
}

/// Whether an unkeyed chain (written before the audit key) is whole; the
/// first entry that breaks it, if any.
pub fn legacy_chain_break<'a>(entries: impl IntoIterator<Item = &'a AuditEntry>) -> Option<i64> {
    let mut expected_id = 1;
    let mut prev_hash = GENESIS_HASH.to_owned();
    for entry in entries {
        if entry.id != expected_id
            || entry.prev_hash != prev_hash
            || entry.content().legacy_chained_hash(&prev_hash) != entry.hash
        {
            return Some(entry.id.min(expected_id));
        }
        expected_id = entry.id + 1;
        prev_hash = entry.hash.clone();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> AuditKey {
        AuditKey::new(vec![byte; 32]).unwrap()
    }

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
                let hash = content.chained_hash(&key(1), &prev);
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

    fn head_of(entries: &[AuditEntry]) -> ChainHead {
        ChainHead {
            entries: entries.len() as u64,
            hash: entries
                .last()
                .map_or(GENESIS_HASH.to_owned(), |e| e.hash.clone()),
        }
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let entries = chain(5);
        let report = verify_chain(&key(1), Some(head_of(&entries)), &entries);
        assert!(report.ok, "{report:?}");
        assert_eq!(report.entries, 5);
        assert_eq!(report.first_bad_id, None);
        assert_eq!(report.head, head_of(&entries));
    }

    #[test]
    fn an_empty_chain_verifies() {
        assert!(verify_chain(&key(1), None, &[]).ok);
    }

    #[test]
    fn an_edited_entry_is_named() {
        let mut entries = chain(5);
        entries[2].details = r#"{"role":"admin"}"#.to_owned();
        let report = verify_chain(&key(1), None, &entries);
        assert_eq!(report.first_bad_id, Some(3));
    }

    #[test]
    fn a_removed_entry_is_named() {
        let mut entries = chain(5);
        entries.remove(1);
        assert_eq!(verify_chain(&key(1), None, &entries).first_bad_id, Some(2));
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
        assert_eq!(verify_chain(&key(1), None, &entries).first_bad_id, Some(3));
    }

    #[test]
    fn a_chain_rewritten_without_the_key_is_found() {
        // An attacker edits entry 2 and recomputes every hash after it, but
        // can only use an unkeyed hash or a key of their own.
        let mut entries = chain(5);
        entries[1].target = "token:other".to_owned();
        let mut prev = entries[0].hash.clone();
        for entry in entries.iter_mut().skip(1) {
            entry.prev_hash = prev.clone();
            entry.hash = entry.content().chained_hash(&key(9), &prev);
            prev = entry.hash.clone();
        }
        assert_eq!(verify_chain(&key(1), None, &entries).first_bad_id, Some(2));
        let mut legacy = chain(3);
        let mut prev = GENESIS_HASH.to_owned();
        for entry in &mut legacy {
            entry.prev_hash = prev.clone();
            entry.hash = entry.content().legacy_chained_hash(&prev);
            prev = entry.hash.clone();
        }
        assert_eq!(verify_chain(&key(1), None, &legacy).first_bad_id, Some(1));
    }

    #[test]
    fn a_chain_cut_short_of_its_anchor_is_found() {
        let entries = chain(5);
        let anchor = head_of(&entries);
        let report = verify_chain(&key(1), Some(anchor.clone()), &entries[..3]);
        assert!(!report.ok);
        assert_eq!(report.first_bad_id, Some(4));
        assert!(report.problem.unwrap().contains("removed from the end"));
        let emptied = verify_chain(&key(1), Some(anchor), &[]);
        assert_eq!(emptied.first_bad_id, Some(1));
        // Entries after the anchor are fine.
        let later = verify_chain(&key(1), Some(head_of(&entries[..2])), &entries);
        assert!(later.ok);
    }

    #[test]
    fn a_chain_that_no_longer_holds_the_anchored_entry_is_found() {
        let entries = chain(5);
        let mut anchor = head_of(&entries[..3]);
        anchor.hash = "f".repeat(64);
        let report = verify_chain(&key(1), Some(anchor), &entries);
        assert_eq!(report.first_bad_id, Some(3));
        assert!(report.problem.unwrap().contains("anchored head"));
    }

    #[test]
    fn a_walk_resumes_after_a_verified_head() {
        let entries = chain(6);
        let verified = head_of(&entries[..4]);
        let mut verifier = ChainVerifier::resume(&key(1), None, &verified);
        assert_eq!(verifier.next_id(), 5);
        for entry in &entries[4..] {
            verifier.push(entry);
        }
        let report = verifier.finish();
        assert!(report.ok);
        assert_eq!(report.head, head_of(&entries));
    }

    #[test]
    fn a_legacy_chain_is_checked_with_the_unkeyed_hash() {
        let mut entries = chain(3);
        let mut prev = GENESIS_HASH.to_owned();
        for entry in &mut entries {
            entry.prev_hash = prev.clone();
            entry.hash = entry.content().legacy_chained_hash(&prev);
            prev = entry.hash.clone();
        }
        assert_eq!(legacy_chain_break(&entries), None);
        entries[1].action = "x".to_owned();
        assert_eq!(legacy_chain_break(&entries), Some(2));
    }

    #[test]
    fn the_key_never_shows_and_short_keys_are_refused() {
        assert!(!format!("{:?}", key(0xab)).contains("171"));
        assert_eq!(AuditKey::new(vec![0; 31]).unwrap_err(), AuditKeyTooShort);
        assert_ne!(key(1).derive("event ids"), key(1).derive("other"));
    }
}
