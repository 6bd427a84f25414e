//! The consent ledger: append-only records, lookups by subject, eligibility,
//! and the legal-basis map.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use pilotgate_domain::Actor;
use pilotgate_domain::consent::{ConsentRecord, ConsentStatus, NewConsent};
use pilotgate_domain::eligibility::{Eligibility, RecordFacts, eligible};
use pilotgate_domain::purpose::Purpose;
use pilotgate_domain::time::{from_micros, to_micros};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::AuditRecord;
use crate::core::Core;
use crate::db::Dialect;
use crate::db::{AppendBatch, Packed, Reads, numbered};
use crate::error::StoreError;
use crate::error::corrupt;

/// Rows per multi-row INSERT: 16 parameters each keeps well under both dialects' limits.
const INSERT_CHUNK: usize = 400;

/// What happened to one appended record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Appended {
    pub id: i64,
    pub subject: String,
    /// The same record (same content hash) was in the ledger already.
    pub duplicate: bool,
}

/// Subjects per purpose, basis and status, as of one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BasisCount {
    pub purpose: String,
    pub basis: String,
    pub status: String,
    pub subjects: i64,
}

/// Subjects of a purpose whose consent no longer holds and must be asked again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReconsentNeed {
    pub purpose: String,
    pub expired: i64,
    pub stale_notice: i64,
}

/// The legal-basis map: who may be used for what, and who must be asked again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LegalBasisMap {
    pub counts: Vec<BasisCount>,
    pub reconsent: Vec<ReconsentNeed>,
}

impl Core {
    /// Appends records in one transaction with one audit entry. A record whose
    /// content is in the ledger already is not stored again: its existing id is returned.
    pub async fn append_consents(
        &self,
        records: &[NewConsent],
        actor: &Actor,
    ) -> Result<Vec<Appended>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let recorded_by = actor.to_string();
        let mut tx = self.begin_subject_write().await?;
        refuse_grants_for_retired(&mut tx, records).await?;
        // Taken under the lock, so the ledger's order is the order of decisions.
        let recorded_at = to_micros(self.now());
        let mut ids: HashMap<String, (i64, bool)> = HashMap::with_capacity(records.len());
        for chunk in records.chunks(INSERT_CHUNK) {
            let sql = insert_sql(self.dialect, chunk.len());
            let mut query = sqlx::query(&sql);
            for r in chunk {
                query = query
                    .bind(&r.content_hash)
                    .bind(&r.subject)
                    .bind(i64::from(r.key_version))
                    .bind(r.purpose.as_str())
                    .bind(r.basis.as_str())
                    .bind(r.status.as_str())
                    .bind(&r.notice_id)
                    .bind(i64::from(r.notice_version))
                    .bind(r.channel.as_str())
                    .bind(&r.method)
                    .bind(to_micros(r.collected_at))
                    .bind(to_micros(r.effective_from))
                    .bind(r.expires_at.map(to_micros))
                    .bind(r.proof_ref.as_deref())
                    .bind(&recorded_by)
                    .bind(recorded_at);
            }
            let inserted = query.fetch_all(&mut *tx).await?;
            for row in &inserted {
                ids.insert(row.try_get("content_hash")?, (row.try_get("id")?, false));
            }
            let missing: Vec<&str> = chunk
                .iter()
                .map(|r| r.content_hash.as_str())
                .filter(|h| !ids.contains_key(*h))
                .collect();
            if !missing.is_empty() {
                let placeholders = (1..=missing.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "SELECT id, content_hash FROM consent_records WHERE content_hash IN ({placeholders})"
                );
                let mut query = sqlx::query(&sql);
                for hash in &missing {
                    query = query.bind(*hash);
                }
                for row in query.fetch_all(&mut *tx).await? {
                    ids.insert(row.try_get("content_hash")?, (row.try_get("id")?, true));
                }
            }
        }
        // A withdrawal, objection or denial marks the person's assignments in
        // pilots of that purpose as withdrawn from the time it takes effect,
        // under every pseudonym of the person (each key version).
        for record in records
            .iter()
            .filter(|r| r.status != ConsentStatus::Granted)
        {
            let names: Vec<&str> = std::iter::once(record.subject.as_str())
                .chain(record.aliases.iter().map(|a| a.as_str()))
                .collect();
            // The results' aggregates lose the subject first (from the
            // assignments this marks).
            crate::aggregates::leaving::leave(
                &mut tx,
                self.dialect,
                &names,
                crate::aggregates::leaving::Leaving::Withdrawn {
                    purpose: record.purpose.as_str(),
                    at: to_micros(record.effective_from),
                    status: record.status.as_str(),
                },
            )
            .await?;
            let sql = format!(
                "UPDATE assignments SET withdrawn_at = $1, withdrawn_as = $3 WHERE experiment_key IN \
                 (SELECT key FROM experiments WHERE purpose = $2) AND subject IN ({}) AND withdrawn_at IS NULL",
                numbered(4, names.len())
            );
            // The status is kept so that attrition tells objections apart.
            let mut query = sqlx::query(&sql)
                .bind(to_micros(record.effective_from))
                .bind(record.purpose.as_str())
                .bind(record.status.as_str());
            for name in names {
                query = query.bind(name);
            }
            query.execute(&mut *tx).await?;
        }
        let mut links = AppendBatch::default();
        crate::links::push_links(
            &mut tx,
            self.dialect,
            &mut links,
            records
                .iter()
                .map(|r| ((r.subject.clone(), r.key_version), r.aliases.as_slice())),
        )
        .await?;
        let mut seen = std::collections::HashSet::with_capacity(records.len());
        let outcomes = records
            .iter()
            .map(|r| {
                let (id, stored_before) = ids
                    .get(&r.content_hash)
                    .copied()
                    .ok_or_else(|| corrupt("consent_records.content_hash"))?;
                // The same record twice in one batch is stored once; the second is a duplicate.
                let repeated_in_batch = !seen.insert(r.content_hash.as_str());
                Ok(Appended {
                    id,
                    subject: r.subject.clone(),
                    duplicate: stored_before || repeated_in_batch,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let stored = outcomes.iter().filter(|o| !o.duplicate).count();
        let mut per_purpose: BTreeMap<&str, usize> = BTreeMap::new();
        for record in records {
            *per_purpose.entry(record.purpose.as_str()).or_default() += 1;
        }
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "consent.record",
                target: "consents".to_owned(),
                details: serde_json::json!({
                    "stored": stored,
                    "duplicates": outcomes.len() - stored,
                    "first_id": outcomes.iter().filter(|o| !o.duplicate).map(|o| o.id).min(),
                    "last_id": outcomes.iter().filter(|o| !o.duplicate).map(|o| o.id).max(),
                    "purposes": per_purpose,
                }),
            },
        )
        .await?;
        tx.commit_after(links.into()).await?;
        Ok(outcomes)
    }

    /// Every record of any of `subjects` (one person's pseudonyms under each key version), oldest first.
    pub async fn consent_history(
        &self,
        subjects: &[String],
    ) -> Result<Vec<ConsentRecord>, StoreError> {
        let placeholders = numbered(1, subjects.len());
        let sql =
            format!("SELECT * FROM consent_records WHERE subject IN ({placeholders}) ORDER BY id");
        let mut query = sqlx::query(&sql);
        for subject in subjects {
            query = query.bind(subject);
        }
        query
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(record_from_row)
            .collect()
    }

    /// Those of `subjects` that have at least one ledger record, in the order given.
    pub async fn subjects_with_records(
        &self,
        subjects: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let sql = format!(
            "SELECT DISTINCT subject FROM consent_records WHERE subject IN ({})",
            numbered(1, subjects.len())
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for subject in subjects {
            query = query.bind(subject);
        }
        let known = query.fetch_all(&self.reader).await?;
        Ok(subjects
            .iter()
            .filter(|s| known.contains(s))
            .cloned()
            .collect())
    }

    /// True when any of `subjects` has an erasure.
    pub async fn is_erased(&self, subjects: &[String]) -> Result<bool, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM erasures WHERE subject IN ({})",
            numbered(1, subjects.len())
        );
        let mut query = sqlx::query_scalar::<_, i64>(&sql);
        for subject in subjects {
            query = query.bind(subject);
        }
        Ok(query.fetch_one(&self.reader).await? > 0)
    }

    /// Whether the person behind `subjects` may be used for `purpose` at `at`,
    /// answered by one query: the erasure count joined with the subject's
    /// records for the purpose, both found through their indexes.
    pub async fn eligibility(
        &self,
        subjects: &[String],
        purpose: &Purpose,
        at: DateTime<Utc>,
    ) -> Result<Eligibility, StoreError> {
        let mut conn = self.reader.acquire().await?;
        eligibility_on(&mut conn, subjects, purpose, at).await
    }

    /// Subjects per purpose, basis and status of the record in force at `at`,
    /// and per purpose how many granted consents expired or predate the
    /// minimum notice (erased subjects left out: nobody may ask them again).
    pub async fn legal_basis_map(&self, at: DateTime<Utc>) -> Result<LegalBasisMap, StoreError> {
        let rows = sqlx::query(
            "WITH ranked AS ( \
                SELECT c.purpose, c.basis, c.status, c.expires_at, c.notice_version, \
                       CASE WHEN EXISTS (SELECT 1 FROM erasures e WHERE e.subject = c.subject) THEN 0 ELSE 1 END AS askable, \
                       ROW_NUMBER() OVER (PARTITION BY c.subject, c.purpose ORDER BY c.effective_from DESC, c.id DESC) AS rn \
                FROM consent_records c WHERE c.effective_from <= $1) \
             SELECT r.purpose, r.basis, r.status, COUNT(*) AS subjects, \
                SUM(CASE WHEN r.basis = 'consent' AND r.status = 'granted' AND r.askable = 1 AND r.expires_at IS NOT NULL AND r.expires_at <= $1 THEN 1 ELSE 0 END) AS expired, \
                SUM(CASE WHEN r.basis = 'consent' AND r.status = 'granted' AND r.askable = 1 AND r.notice_version < p.min_notice_version THEN 1 ELSE 0 END) AS stale \
             FROM ranked r JOIN purposes p ON p.key = r.purpose \
             WHERE r.rn = 1 GROUP BY r.purpose, r.basis, r.status ORDER BY r.purpose, r.basis, r.status",
        )
        .bind(to_micros(at))
        .fetch_all(&self.reader)
        .await?;
        let mut counts = Vec::with_capacity(rows.len());
        let mut reconsent: BTreeMap<String, ReconsentNeed> = BTreeMap::new();
        for row in &rows {
            let purpose: String = row.try_get("purpose")?;
            let need = reconsent
                .entry(purpose.clone())
                .or_insert_with(|| ReconsentNeed {
                    purpose: purpose.clone(),
                    expired: 0,
                    stale_notice: 0,
                });
            need.expired += row.try_get::<i64, _>("expired")?;
            need.stale_notice += row.try_get::<i64, _>("stale")?;
            counts.push(BasisCount {
                purpose,
                basis: row.try_get("basis")?,
                status: row.try_get("status")?,
                subjects: row.try_get("subjects")?,
            });
        }
        Ok(LegalBasisMap {
            counts,
            reconsent: reconsent.into_values().collect(),
        })
    }
}

/// `eligible` for the person behind `subjects`, read on `conn` (inside a
/// transaction when the answer must hold for a write that follows).
pub(crate) async fn eligibility_on(
    conn: &mut AnyConnection,
    subjects: &[String],
    purpose: &Purpose,
    at: DateTime<Utc>,
) -> Result<Eligibility, StoreError> {
    let (records, erased) = ledger_on(conn, subjects, purpose).await?;
    Ok(eligible(purpose, &records, erased, at))
}

/// The records of the person known by `subjects` for `purpose`, and whether it was erased.
pub(crate) async fn ledger_on(
    conn: &mut AnyConnection,
    subjects: &[String],
    purpose: &Purpose,
) -> Result<(Vec<ConsentRecord>, bool), StoreError> {
    let n = subjects.len();
    let sql = format!(
        "SELECT e.erased, c.* FROM (SELECT COUNT(*) AS erased FROM erasures WHERE subject IN ({})) e \
         LEFT JOIN consent_records c ON c.purpose = $1 AND c.subject IN ({})",
        numbered(2, n),
        numbered(2 + n, n)
    );
    let mut query = sqlx::query(&sql).bind(purpose.key.as_str());
    for subject in subjects.iter().chain(subjects) {
        query = query.bind(subject);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    let erased = match rows.first() {
        Some(row) => row.try_get::<i64, _>("erased")? > 0,
        None => false,
    };
    let mut records = Vec::with_capacity(rows.len());
    for row in &rows {
        if row.try_get::<Option<i64>, _>("id")?.is_some() {
            records.push(record_from_row(row)?);
        }
    }
    Ok((records, erased))
}

/// Erased subjects, packed (see [`ledger_facts_columns`]).
const ERASED: Packed<1> = Packed {
    fields: ["subject"],
    what: "erasures",
};

/// The facts the eligibility rule reads of one ledger record, packed.
const FACTS: Packed<8> = Packed {
    fields: [
        "subject",
        "purpose",
        "id",
        "basis",
        "status",
        "notice_version",
        "effective_from",
        "COALESCE(CAST(expires_at AS TEXT), '')",
    ],
    what: "consent_records",
};

/// Records of subjects, by subject, each with its purpose: the facts the eligibility rule reads.
pub(crate) type FactsBySubject = HashMap<String, Vec<(String, RecordFacts)>>;

/// The facts the eligibility rule reads of every ledger record of `subjects`
/// (by subject and purpose), packed into one row ([`Dialect::packed_rows`]),
/// and which of the subjects are erased. For event ingestion, which decides
/// thousands of events per commit and needs no more of the records.
pub(crate) async fn ledger_facts_of(
    conn: &mut impl Reads,
    dialect: Dialect,
    subjects: &[&str],
) -> Result<(FactsBySubject, HashSet<String>), StoreError> {
    let (sql, conn) = conn.reading(&format!(
        "SELECT {}",
        ledger_facts_columns(dialect, 1, subjects.len())
    ))?;
    let mut query = sqlx::query_as::<_, (Option<String>, Option<String>)>(&sql);
    for subject in subjects.iter().chain(subjects) {
        query = query.bind(*subject);
    }
    let (records, erased) = query.fetch_one(&mut *conn).await?;
    unpack_ledger_facts(records.as_deref(), erased.as_deref())
}

/// The facts of the records `subjects` (one person's pseudonyms) hold for
/// `purpose`, out of what [`ledger_facts_of`] read.
pub(crate) fn facts_for<'s>(
    facts: &FactsBySubject,
    subjects: impl IntoIterator<Item = &'s str>,
    purpose: &str,
) -> Vec<RecordFacts> {
    subjects
        .into_iter()
        .filter_map(|subject| facts.get(subject))
        .flatten()
        .filter(|(for_purpose, _)| for_purpose == purpose)
        .map(|(_, record)| *record)
        .collect()
}

/// Two columns for a `SELECT` (see [`ledger_facts_of`]): the facts of the
/// records of `n` subjects, packed, and which of them are erased, packed.
/// The subjects are bound twice, from placeholder `first` on.
pub(crate) fn ledger_facts_columns(dialect: Dialect, first: usize, n: usize) -> String {
    format!(
        "(SELECT {} FROM consent_records WHERE subject IN ({})), (SELECT {} FROM erasures WHERE subject IN ({}))",
        FACTS.select(dialect),
        dialect.placeholders(first, n),
        ERASED.select(dialect),
        dialect.placeholders(first + n, n)
    )
}

/// The two columns of [`ledger_facts_columns`], unpacked.
pub(crate) fn unpack_ledger_facts(
    records: Option<&str>,
    erased: Option<&str>,
) -> Result<(FactsBySubject, HashSet<String>), StoreError> {
    let number = |text: &str, column: &str| -> Result<i64, StoreError> {
        text.parse().map_err(|_| corrupt(column))
    };
    let mut facts: FactsBySubject = HashMap::new();
    for row in FACTS.rows(records) {
        let [
            subject,
            purpose,
            id,
            basis,
            status,
            notice_version,
            effective_from,
            expires_at,
        ] = row?;
        let record = RecordFacts {
            id: number(id, "consent_records.id")?,
            basis: basis
                .parse()
                .map_err(|_| corrupt("consent_records.basis"))?,
            status: status
                .parse()
                .map_err(|_| corrupt("consent_records.status"))?,
            notice_version: u32::try_from(number(
                notice_version,
                "consent_records.notice_version",
            )?)
            .map_err(|_| corrupt("consent_records.notice_version"))?,
            effective_from: from_micros(number(effective_from, "consent_records.effective_from")?),
            expires_at: match expires_at {
                "" => None,
                text => Some(from_micros(number(text, "consent_records.expires_at")?)),
            },
        };
        facts
            .entry(subject.to_owned())
            .or_default()
            .push((purpose.to_owned(), record));
    }
    let erased = ERASED
        .rows(erased)
        .map(|row| row.map(|[subject]| subject.to_owned()))
        .collect::<Result<_, _>>()?;
    Ok((facts, erased))
}

fn insert_sql(dialect: Dialect, rows: usize) -> String {
    const COLUMNS: usize = 16;
    let values = dialect.value_rows(rows, COLUMNS);
    format!(
        "INSERT INTO consent_records (content_hash, subject, key_version, purpose, basis, status, notice_id, \
         notice_version, source_channel, source_method, collected_at, effective_from, expires_at, proof_ref, \
         recorded_by, recorded_at) VALUES {values} ON CONFLICT (content_hash) DO NOTHING RETURNING id, content_hash"
    )
}

pub(crate) fn record_from_row(row: &AnyRow) -> Result<ConsentRecord, StoreError> {
    let facts = facts_from_row(row)?;
    Ok(ConsentRecord {
        id: facts.id,
        subject: row.try_get("subject")?,
        key_version: u32::try_from(row.try_get::<i64, _>("key_version")?)
            .map_err(|_| corrupt("key_version"))?,
        purpose: row.try_get("purpose")?,
        basis: facts.basis,
        status: facts.status,
        notice_id: row.try_get("notice_id")?,
        notice_version: facts.notice_version,
        source_channel: row.try_get("source_channel")?,
        source_method: row.try_get("source_method")?,
        collected_at: from_micros(row.try_get("collected_at")?),
        effective_from: facts.effective_from,
        expires_at: facts.expires_at,
        proof_ref: row.try_get("proof_ref")?,
        recorded_by: row.try_get("recorded_by")?,
        recorded_at: from_micros(row.try_get("recorded_at")?),
    })
}

/// The facts the rule reads, from a row with the ledger's own column names.
pub(crate) fn facts_from_row(row: &AnyRow) -> Result<RecordFacts, StoreError> {
    Ok(RecordFacts {
        id: row.try_get("id")?,
        basis: row
            .try_get::<String, _>("basis")?
            .parse()
            .map_err(|_| corrupt("consent_records.basis"))?,
        status: row
            .try_get::<String, _>("status")?
            .parse()
            .map_err(|_| corrupt("consent_records.status"))?,
        notice_version: u32::try_from(row.try_get::<i64, _>("notice_version")?)
            .map_err(|_| corrupt("consent_records.notice_version"))?,
        effective_from: from_micros(row.try_get("effective_from")?),
        expires_at: row
            .try_get::<Option<i64>, _>("expires_at")?
            .map(from_micros),
    })
}

/// A retired purpose takes no new grant (a denial, withdrawal or objection
/// is still recorded: a person can always say no).
async fn refuse_grants_for_retired(
    tx: &mut sqlx::AnyConnection,
    records: &[NewConsent],
) -> Result<(), StoreError> {
    let mut granted: Vec<&str> = records
        .iter()
        .filter(|r| r.status == pilotgate_domain::consent::ConsentStatus::Granted)
        .map(|r| r.purpose.as_str())
        .collect();
    granted.sort_unstable();
    granted.dedup();
    if granted.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT key FROM purposes WHERE retired_at IS NOT NULL AND key IN ({}) ORDER BY key",
        crate::db::numbered(1, granted.len())
    );
    let mut query = sqlx::query_scalar::<_, String>(&sql);
    for key in &granted {
        query = query.bind(*key);
    }
    if let Some(key) = query.fetch_all(&mut *tx).await?.into_iter().next() {
        return Err(StoreError::Conflict(format!(
            "the purpose '{key}' is retired: it takes no new consent"
        )));
    }
    Ok(())
}
