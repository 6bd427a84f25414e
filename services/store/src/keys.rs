//! What the database remembers of the keys kept outside it: a fingerprint
//! per pseudonym key version and of the audit key (an HMAC of a fixed label,
//! never a key). A key ring that does not match is refused before anything is
//! read or written with it: a lost key file silently replaced by a new key
//! would give everyone new pseudonyms, re-admitting erased people.

use pilotgate_domain::Actor;
use pilotgate_domain::audit::{AuditEntry, AuditKey, GENESIS_HASH, legacy_chain_break};
use pilotgate_domain::pseudonym::KeyRing;
use pilotgate_domain::time::to_micros;
use sqlx::Row;

use crate::audit::{AuditRecord, entry_from_row};
use crate::core::Core;
use crate::error::StoreError;

/// What the database knows before any key is attached: enough to tell an
/// empty database (where new keys may be made) from one that needs its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    /// Pseudonym key versions with a recorded fingerprint.
    pub pseudonym_versions: Vec<u32>,
    /// Whether the audit key's fingerprint is recorded.
    pub audit_key_known: bool,
    /// Whether any pseudonymized row exists (ledger, assignments, erasures).
    pub holds_pseudonyms: bool,
    /// How many audit entries exist.
    pub audit_entries: i64,
}

impl KeyState {
    /// Whether new pseudonym keys may be made: nothing was ever pseudonymized
    /// here and no key is remembered.
    pub fn may_make_pseudonym_key(&self) -> bool {
        self.pseudonym_versions.is_empty() && !self.holds_pseudonyms
    }

    /// Whether a new audit key may be made: none is remembered (a chain
    /// written before audit keys existed is converted to the new key).
    pub fn may_make_audit_key(&self) -> bool {
        !self.audit_key_known
    }
}

impl Core {
    /// What the database knows of keys, read before any key is loaded.
    pub async fn key_state(&self) -> Result<KeyState, StoreError> {
        let versions: Vec<i64> = sqlx::query_scalar(
            "SELECT version FROM key_fingerprints WHERE kind = 'pseudonym' ORDER BY version",
        )
        .fetch_all(&self.reader)
        .await?;
        let audit: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM key_fingerprints WHERE kind = 'audit'")
                .fetch_one(&self.reader)
                .await?;
        let holds: i64 = sqlx::query_scalar(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM consent_records) OR EXISTS (SELECT 1 FROM assignments) \
             OR EXISTS (SELECT 1 FROM erasures) THEN 1 ELSE 0 END",
        )
        .fetch_one(&self.reader)
        .await?;
        let audit_entries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(&self.reader)
            .await?;
        Ok(KeyState {
            pseudonym_versions: versions
                .into_iter()
                .map(|v| {
                    u32::try_from(v).map_err(|_| crate::error::corrupt("key_fingerprints.version"))
                })
                .collect::<Result<_, _>>()?,
            audit_key_known: audit > 0,
            holds_pseudonyms: holds == 1,
            audit_entries,
        })
    }

    /// Checks `ring` and `audit` against the fingerprints this database
    /// remembers, records those it does not know yet (a first start, or a new
    /// pseudonym key version after a rotation; audited), and from then on
    /// chains audit entries with `audit`. A chain written before audit keys
    /// existed is checked with its old unkeyed hash and rehashed under the key
    /// in the same transaction, with an entry saying whether it was whole.
    /// Refused with [`StoreError::Keys`] when a remembered key is missing from
    /// `ring` or differs from it.
    pub async fn attach_keys(&self, ring: &KeyRing, audit: &AuditKey) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        self.lock_audit_chain(&mut tx).await?;
        let rows = sqlx::query("SELECT kind, version, fingerprint FROM key_fingerprints")
            .fetch_all(&mut *tx)
            .await?;
        let mut known_audit = None;
        let mut known_versions = Vec::new();
        for row in &rows {
            let kind: String = row.try_get("kind")?;
            let version: i64 = row.try_get("version")?;
            let fingerprint: String = row.try_get("fingerprint")?;
            if kind == "audit" {
                known_audit = Some(fingerprint);
                continue;
            }
            known_versions.push(version);
            let Some(key) = ring
                .keys()
                .iter()
                .find(|k| i64::from(k.version()) == version)
            else {
                return Err(StoreError::Keys(format!(
                    "this database was used with pseudonym key version {version}, which the key ring lacks; \
                     add that key back to the key file (or PILOTGATE_PSEUDONYM_KEY)"
                )));
            };
            if key.fingerprint() != fingerprint {
                return Err(StoreError::Keys(format!(
                    "pseudonym key version {version} is not the key this database was used with \
                     (fingerprint {}…); restore the key file it was used with: a new key would give \
                     everyone new pseudonyms and re-admit erased people",
                    &fingerprint[..12.min(fingerprint.len())]
                )));
            }
        }
        if let Some(fingerprint) = &known_audit
            && audit.fingerprint() != *fingerprint
        {
            return Err(StoreError::Keys(format!(
                "the audit key is not the key this database's audit chain was written with \
                 (fingerprint {}…); restore the audit key file it was used with",
                &fingerprint[..12.min(fingerprint.len())]
            )));
        }
        self.set_audit_key(audit.clone());
        let new_versions: Vec<u32> = ring
            .keys()
            .iter()
            .map(|k| k.version())
            .filter(|v| !known_versions.contains(&i64::from(*v)))
            .collect();
        if new_versions.is_empty() && known_audit.is_some() {
            return Ok(());
        }
        let now = to_micros(self.now());
        for key in ring
            .keys()
            .iter()
            .filter(|k| new_versions.contains(&k.version()))
        {
            record_fingerprint(
                &mut tx,
                "pseudonym",
                i64::from(key.version()),
                &key.fingerprint(),
                now,
            )
            .await?;
        }
        let operator = Actor::operator();
        // The first start of an empty database records its keys silently;
        // a key added later (a rotation, or the audit key of an older chain) is audited.
        let chain_was_empty = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_log")
            .fetch_one(&mut *tx)
            .await?
            == 0;
        if known_audit.is_none() {
            record_fingerprint(&mut tx, "audit", 0, &audit.fingerprint(), now).await?;
            let entries = sqlx::query("SELECT * FROM audit_log ORDER BY id")
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(entry_from_row)
                .collect::<Result<Vec<AuditEntry>, _>>()?;
            if !entries.is_empty() {
                let broken_at = legacy_chain_break(&entries);
                rehash(&mut tx, audit, &entries).await?;
                self.append_audit(
                    &mut tx,
                    AuditRecord {
                        actor: &operator,
                        action: "audit.chain_keyed",
                        target: "audit".to_owned(),
                        details: serde_json::json!({
                            "entries": entries.len(),
                            "unkeyed_chain_whole": broken_at.is_none(),
                            "unkeyed_chain_first_bad_id": broken_at,
                        }),
                    },
                )
                .await?;
            }
        }
        if !new_versions.is_empty() && !chain_was_empty {
            self.append_audit(
                &mut tx,
                AuditRecord {
                    actor: &operator,
                    action: "keys.recorded",
                    target: "keys".to_owned(),
                    details: serde_json::json!({
                        "pseudonym_versions": new_versions,
                        "audit_key": known_audit.is_none(),
                    }),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The random id of this database, written into audit anchors.
    pub async fn database_id(&self) -> Result<String, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT database_id FROM database_identity WHERE id = 1")
                .fetch_one(&self.reader)
                .await?,
        )
    }
}

async fn record_fingerprint(
    tx: &mut sqlx::AnyConnection,
    kind: &str,
    version: i64,
    fingerprint: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO key_fingerprints (kind, version, fingerprint, recorded_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(kind)
    .bind(version)
    .bind(fingerprint)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Rewrites every hash of `entries` (the whole chain, in id order) under `key`.
async fn rehash(
    tx: &mut sqlx::AnyConnection,
    key: &AuditKey,
    entries: &[AuditEntry],
) -> Result<(), StoreError> {
    let mut prev = GENESIS_HASH.to_owned();
    for entry in entries {
        let hash = entry.content().chained_hash(key, &prev);
        sqlx::query("UPDATE audit_log SET prev_hash = $1, hash = $2 WHERE id = $3")
            .bind(&prev)
            .bind(&hash)
            .bind(entry.id)
            .execute(&mut *tx)
            .await?;
        prev = hash;
    }
    Ok(())
}
