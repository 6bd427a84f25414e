//! Links between the pseudonyms of one person under different key versions.
//!
//! After a key rotation a person's data can sit under an old pseudonym (the
//! ledger, assignments made before) and the current one (records and
//! assignments made since). A pseudonym cannot be turned into another, so
//! whenever the raw id arrives with the key ring at hand (a consent record, a
//! first-time assignment, a lookup by compliance) and an older pseudonym of
//! the person holds data, the pair is stored: two pseudonyms, never the raw
//! id. An erasure by any one of them reaches all (`linked_pseudonyms`).

use std::collections::{BTreeMap, BTreeSet};

use pilotgate_domain::pseudonym::Pseudonym;
use sqlx::{AnyConnection, Row};

use crate::core::Core;
use crate::db::{AppendBatch, AppendTable, Dialect, LOOKUP_CHUNK, Reads, Value};
use crate::error::StoreError;

/// A pseudonym and the version of the key that made it.
pub(crate) type Named = (String, u32);

/// Those of `pseudonyms` that hold a ledger record, an assignment or an erasure.
pub(crate) async fn holding_data(
    conn: &mut impl Reads,
    dialect: Dialect,
    pseudonyms: &[&str],
) -> Result<BTreeSet<String>, StoreError> {
    let mut found = BTreeSet::new();
    for chunk in pseudonyms.chunks(LOOKUP_CHUNK) {
        let n = chunk.len();
        let sql = format!(
            "SELECT subject FROM consent_records WHERE subject IN ({}) \
             UNION SELECT subject FROM erasures WHERE subject IN ({}) \
             UNION SELECT subject FROM assignments WHERE experiment_key IN (SELECT key FROM experiments) AND subject IN ({})",
            dialect.placeholders(1, n),
            dialect.placeholders(n + 1, n),
            dialect.placeholders(2 * n + 1, n),
        );
        let (sql, conn) = conn.reading(&sql)?;
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for _ in 0..3 {
            for pseudonym in chunk {
                query = query.bind(*pseudonym);
            }
        }
        found.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(found)
}

/// Adds to `statements` the links (both ways) between each `current`
/// pseudonym and those of its `aliases` that hold data.
pub(crate) async fn push_links<'a>(
    conn: &mut impl Reads,
    dialect: Dialect,
    statements: &mut AppendBatch,
    people: impl IntoIterator<Item = (Named, &'a [Pseudonym])>,
) -> Result<(), StoreError> {
    let people: Vec<(Named, &[Pseudonym])> = people
        .into_iter()
        .filter(|(_, aliases)| !aliases.is_empty())
        .collect();
    if people.is_empty() {
        return Ok(());
    }
    let all: Vec<&str> = people
        .iter()
        .flat_map(|(_, aliases)| aliases.iter().map(Pseudonym::as_str))
        .collect();
    let with_data = holding_data(conn, dialect, &all).await?;
    push_link_rows(
        statements,
        dialect,
        people.iter().map(|(current, aliases)| {
            (
                current.clone(),
                aliases
                    .iter()
                    .filter(|a| with_data.contains(a.as_str()))
                    .collect::<Vec<_>>(),
            )
        }),
    )
}

/// Adds to `statements` the links (both ways) between each current
/// pseudonym and the aliases given with it, known to hold data.
pub(crate) fn push_link_rows<'a>(
    statements: &mut AppendBatch,
    dialect: Dialect,
    people: impl IntoIterator<Item = (Named, Vec<&'a Pseudonym>)>,
) -> Result<(), StoreError> {
    let mut pairs: BTreeMap<(String, String), (u32, u32)> = BTreeMap::new();
    for ((subject, version), aliases) in people {
        for alias in aliases {
            pairs.insert(
                (subject.clone(), alias.to_string()),
                (version, alias.key_version()),
            );
            pairs.insert(
                (alias.to_string(), subject.clone()),
                (alias.key_version(), version),
            );
        }
    }
    let rows: Vec<_> = pairs.into_iter().collect();
    for chunk in rows.chunks(200) {
        statements.push(
            AppendTable::SubjectLinks,
            format!(
                "INSERT INTO subject_links (subject, key_version, alias, alias_key_version) VALUES {} \
                 ON CONFLICT (subject, alias) DO NOTHING",
                dialect.value_rows(chunk.len(), 4)
            ),
            chunk
                .iter()
                .flat_map(|((subject, alias), (version, alias_version))| {
                    [
                        Value::Text(subject.clone()),
                        Value::Integer(Some(i64::from(*version))),
                        Value::Text(alias.clone()),
                        Value::Integer(Some(i64::from(*alias_version))),
                    ]
                })
                .collect(),
        )?;
    }
    Ok(())
}

/// `subject` and every pseudonym linked to it, directly or through others,
/// with their key versions (`subject` first, with `key_version`).
pub(crate) async fn linked_pseudonyms(
    conn: &mut AnyConnection,
    subject: &str,
    key_version: u32,
) -> Result<Vec<Named>, StoreError> {
    let mut found: Vec<Named> = vec![(subject.to_owned(), key_version)];
    let mut next = 0;
    while next < found.len() {
        let rows = sqlx::query(
            "SELECT alias, alias_key_version FROM subject_links WHERE subject = $1 ORDER BY alias",
        )
        .bind(&found[next].0)
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            let alias: String = row.try_get("alias")?;
            if found.iter().all(|(known, _)| *known != alias) {
                let version = u32::try_from(row.try_get::<i64, _>("alias_key_version")?)
                    .map_err(|_| crate::error::corrupt("subject_links.alias_key_version"))?;
                found.push((alias, version));
            }
        }
        next += 1;
    }
    Ok(found)
}

impl Core {
    /// Those of `pseudonyms` that hold a ledger record, an assignment or an erasure, in the order given.
    pub async fn subjects_holding_data(
        &self,
        pseudonyms: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let names: Vec<&str> = pseudonyms.iter().map(String::as_str).collect();
        let mut conn = self.reader.acquire().await?;
        let found = holding_data(&mut *conn, self.dialect, &names).await?;
        Ok(pseudonyms
            .iter()
            .filter(|p| found.contains(p.as_str()))
            .cloned()
            .collect())
    }

    /// Links `current` to those of `aliases` (the person's pseudonyms under
    /// older key versions) that hold data; for lookups by compliance, which
    /// see the raw id.
    pub async fn link_pseudonyms(
        &self,
        current: &Pseudonym,
        aliases: &[Pseudonym],
    ) -> Result<(), StoreError> {
        if aliases.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_subject_append().await?;
        let mut statements = AppendBatch::default();
        push_links(
            &mut tx,
            self.dialect,
            &mut statements,
            [((current.to_string(), current.key_version()), aliases)],
        )
        .await?;
        tx.commit_after(statements).await?;
        Ok(())
    }
}
