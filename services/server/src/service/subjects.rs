//! The subject-rights desk: what is held about a person (Art. 15 access) by
//! pseudonym or by raw id across every key version, the ledger with the
//! state in force per purpose, and erasure (Art. 17). The API's
//! `routes/subjects.rs` and the desk page `ui/pages/subjects.rs` both call
//! these, so they cannot disagree. A raw id is turned into pseudonyms here
//! and goes no further: not into the audit log, a log line or an answer.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use pilotgate_domain::Actor;
use pilotgate_domain::consent::ConsentRecord;
use pilotgate_domain::eligibility::eligible;
use pilotgate_domain::pseudonym::{KeyRing, Pseudonym};
use pilotgate_domain::purpose::Purpose;
use pilotgate_store::Store;

use super::ServiceError;
use crate::consent_input::check_user_id;

pub use views::*;

mod views;

/// Whether `text` is a pseudonym: 64 lowercase hex digits.
pub fn is_pseudonym(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The state in force now for each purpose of `purposes` that `records`
/// (one person's, under any of its pseudonyms) speak of; with `every_purpose`,
/// for every purpose of the registry (those without a record: `no_record`).
fn current_states(
    purposes: &[Purpose],
    records: &[ConsentRecord],
    erased: bool,
    now: DateTime<Utc>,
    every_purpose: bool,
) -> Vec<CurrentState> {
    let mut by_purpose: BTreeMap<&str, Vec<ConsentRecord>> = BTreeMap::new();
    if every_purpose {
        for purpose in purposes {
            by_purpose.entry(purpose.key.as_str()).or_default();
        }
    }
    for record in records {
        by_purpose
            .entry(record.purpose.as_str())
            .or_default()
            .push(record.clone());
    }
    by_purpose
        .into_iter()
        .filter_map(|(key, records)| {
            let purpose = purposes.iter().find(|p| p.key.as_str() == key)?;
            let in_force = records
                .iter()
                .filter(|r| r.effective_from <= now)
                .max_by_key(|r| (r.effective_from, r.id));
            let decision = eligible(purpose, &records, erased, now);
            Some(CurrentState {
                purpose: key.to_owned(),
                basis: in_force.map(|r| r.basis.as_str().to_owned()),
                status: in_force.map(|r| r.status.as_str().to_owned()),
                eligible: decision.is_eligible(),
                reason: decision.reason().map(|r| r.as_str().to_owned()),
            })
        })
        .collect()
}

/// The subject's state per purpose now, and every record of the ledger
/// (`GET /api/v1/subjects/{subject}/consents`).
pub async fn consents(store: &Store, subject: &str) -> Result<SubjectConsents, ServiceError> {
    let subjects = [subject.to_owned()];
    let history = store.consent_history(&subjects).await?;
    let erased = store.is_erased(&subjects).await?;
    let purposes = store.list_purposes().await?;
    let current = current_states(&purposes, &history, erased, store.now(), false);
    Ok(SubjectConsents {
        subject: subject.to_owned(),
        current,
        history: history.into_iter().map(RecordView::from).collect(),
    })
}

/// The key version `subject` was made with, as its data says (its ledger,
/// assignments or erasure); the current key's when it holds nothing.
async fn key_version_of(store: &Store, keys: &KeyRing, subject: &str) -> Result<u32, ServiceError> {
    let subjects = [subject.to_owned()];
    if let Some(record) = store.consent_history(&subjects).await?.first() {
        return Ok(record.key_version);
    }
    if let Some(assignment) = store.assignments_of_subjects(&subjects).await?.first() {
        return Ok(assignment.key_version);
    }
    if let Some(erasure) = store.erasures_of_subjects(&subjects).await?.first() {
        return Ok(erasure.key_version);
    }
    Ok(keys.current().version())
}

/// Everything held about the person known as `pseudonyms` (the first is the
/// one asked about): one document per pseudonym, and the state in force per
/// purpose over all of them.
async fn document(
    store: &Store,
    pseudonyms: &[(String, u32)],
) -> Result<PersonAccess, ServiceError> {
    let (subject, key_version) = pseudonyms
        .first()
        .cloned()
        .ok_or_else(|| ServiceError::internal("a person without a pseudonym"))?;
    let names: Vec<String> = pseudonyms.iter().map(|(p, _)| p.clone()).collect();
    let ledger = store.consent_history(&names).await?;
    let assignments = store.assignments_of_subjects(&names).await?;
    let events = store.event_counts_of_subjects(&names).await?;
    let attributes = store.segment_attributes_of_subjects(&names).await?;
    let erasures = store.erasures_of_subjects(&names).await?;
    let purposes = store.list_purposes().await?;
    let now = store.now();
    let versions = pseudonyms
        .iter()
        .map(|(pseudonym, version)| {
            let erasure = erasures.iter().find(|e| &e.subject == pseudonym);
            AccessDocument {
                subject: pseudonym.clone(),
                key_version: *version,
                ledger: ledger
                    .iter()
                    .filter(|r| &r.subject == pseudonym)
                    .cloned()
                    .map(RecordView::from)
                    .collect(),
                assignments: assignments
                    .iter()
                    .filter(|a| &a.subject == pseudonym)
                    .map(|a| AssignmentProof {
                        segment_attributes: attributes
                            .iter()
                            .find(|(pilot, subject, _)| {
                                *pilot == a.experiment_key && *subject == a.subject
                            })
                            .map(|(_, _, held)| held.clone()),
                        ..AssignmentProof::from(a)
                    })
                    .collect(),
                events: events
                    .iter()
                    .filter(|e| &e.subject == pseudonym)
                    .map(|e| PilotEvents {
                        experiment: e.experiment_key.clone(),
                        events: e.events,
                    })
                    .collect(),
                erasure: erasure.map(|e| ErasureStatus {
                    erased_at: rfc3339(e.erased_at),
                    deleted: DeletedView {
                        assignments: e.deleted_assignments,
                        events: e.deleted_events,
                    },
                    audit_id: e.audit_id,
                }),
            }
        })
        .collect();
    let erased = !erasures.is_empty();
    Ok(PersonAccess {
        subject,
        key_version,
        generated_at: rfc3339(now),
        known_as: pseudonyms
            .iter()
            .map(|(subject, key_version)| KnownPseudonym {
                subject: subject.clone(),
                key_version: *key_version,
            })
            .collect(),
        erased,
        current: current_states(&purposes, &ledger, erased, now, true),
        versions,
    })
}

/// Art. 15 access by pseudonym: what is held under `subject` and under every
/// pseudonym linked to it (the same person under other key versions, linked
/// when the raw id was seen). Audited as `subject.access`.
pub async fn access(
    store: &Store,
    keys: &KeyRing,
    actor: &Actor,
    subject: &str,
) -> Result<PersonAccess, ServiceError> {
    let version = key_version_of(store, keys, subject).await?;
    let person = store.person_of(subject, version).await?;
    let document = document(store, &person).await?;
    store
        .record_audit(
            actor,
            "subject.access",
            format!("subject:{subject}"),
            serde_json::json!({ "versions": person.iter().map(|(_, v)| v).collect::<Vec<_>>() }),
        )
        .await?;
    Ok(document)
}

/// The pseudonyms of the raw id `user_id` under every key of `keys` (current
/// first) and those of them that hold data, linked to the current one so that
/// an erasure by any reaches all.
async fn pseudonyms_of(
    store: &Store,
    keys: &KeyRing,
    user_id: &str,
) -> Result<(Pseudonym, Vec<(String, u32)>), ServiceError> {
    check_user_id(user_id).map_err(|e| ServiceError::Unprocessable(e.to_string()))?;
    let candidates = keys.candidates(user_id);
    let current = candidates
        .first()
        .cloned()
        .ok_or_else(|| ServiceError::internal("a key ring without keys"))?;
    let texts: Vec<String> = candidates.iter().map(|p| p.as_str().to_owned()).collect();
    let known = store.subjects_holding_data(&texts).await?;
    // Seen together now: an erasure by any of them reaches the others.
    store.link_pseudonyms(&current, &candidates[1..]).await?;
    let known_as = candidates
        .iter()
        .filter(|p| known.iter().any(|k| k == p.as_str()))
        .map(|p| (p.to_string(), p.key_version()))
        .collect();
    Ok((current, known_as))
}

/// Turns a raw id into its pseudonym under the current key and lists the
/// person's pseudonyms that hold data (`POST /api/v1/subjects/resolve`).
/// Audited as `subject.resolve`.
pub async fn resolve(
    store: &Store,
    keys: &KeyRing,
    actor: &Actor,
    user_id: &str,
) -> Result<Resolved, ServiceError> {
    let (current, known_as) = pseudonyms_of(store, keys, user_id).await?;
    store
        .record_audit(
            actor,
            "subject.resolve",
            format!("subject:{current}"),
            serde_json::json!({}),
        )
        .await?;
    Ok(Resolved {
        subject: current.to_string(),
        key_version: current.key_version(),
        known_as: known_as
            .into_iter()
            .map(|(subject, key_version)| KnownPseudonym {
                subject,
                key_version,
            })
            .collect(),
    })
}

/// The desk's lookup by raw id: every pseudonym of the person under every
/// key version that holds data, each with what it holds, and the state in
/// force per purpose over all of them. Audited as `subject.lookup` under the
/// current pseudonym; the raw id is not kept.
pub async fn lookup(
    store: &Store,
    keys: &KeyRing,
    actor: &Actor,
    user_id: &str,
) -> Result<PersonAccess, ServiceError> {
    let (current, mut known_as) = pseudonyms_of(store, keys, user_id).await?;
    if known_as.first().is_none_or(|(p, _)| p != current.as_str()) {
        known_as.insert(0, (current.to_string(), current.key_version()));
    }
    let document = document(store, &known_as).await?;
    store
        .record_audit(
            actor,
            "subject.lookup",
            format!("subject:{current}"),
            serde_json::json!({ "versions": known_as.iter().map(|(_, v)| v).collect::<Vec<_>>() }),
        )
        .await?;
    Ok(document)
}

/// Erases the person known as `subject` and every pseudonym linked to it
/// (Art. 17): assignments and events go, the ledger stays as proof, future
/// assignment is blocked; the receipt per key version. The store audits it
/// (`subject.erase`) in the erasure's transaction.
pub async fn erase(
    store: &Store,
    keys: &KeyRing,
    actor: &Actor,
    subject: &str,
) -> Result<ErasureView, ServiceError> {
    let key_version = key_version_of(store, keys, subject).await?;
    let receipt = store.erase_subject(subject, key_version, actor).await?;
    Ok(ErasureView {
        subject: receipt.subject,
        erased_at: rfc3339(receipt.erased_at),
        deleted: DeletedView {
            assignments: receipt.deleted.assignments,
            events: receipt.deleted.events,
        },
        versions: receipt
            .versions
            .into_iter()
            .map(|v| ErasedVersionView {
                subject: v.subject,
                key_version: v.key_version,
                deleted: DeletedView {
                    assignments: v.deleted.assignments,
                    events: v.deleted.events,
                },
            })
            .collect(),
        audit_id: receipt.audit_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lowercase_hex_of_64_digits_is_a_pseudonym() {
        assert!(is_pseudonym(&"a1".repeat(32)));
        assert!(!is_pseudonym(&"A1".repeat(32)));
        assert!(!is_pseudonym("alice@example.com"));
        assert!(!is_pseudonym(&"a".repeat(63)));
    }
}
