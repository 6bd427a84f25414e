//! The purpose registry: each purpose's version in force, its history, its
//! legitimate-interest assessments, and retirement. A change that narrows
//! who may be used or for how long (a higher minimum notice, a basis
//! removed, a shorter retention, a negative assessment) sends the purpose's
//! submitted and approved pilots back to draft in the same transaction;
//! running pilots go on under the new rule, which every later decision reads.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use pilotgate_domain::Actor;
use pilotgate_domain::assessment::{Assessment, Balancing};
use pilotgate_domain::purpose::{LegalBasis, Purpose, PurposeKey, narrowing};
use pilotgate_domain::time::{from_micros, to_micros};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::AuditRecord;
use crate::core::Core;
use crate::db::Reads;
use crate::error::StoreError;
use crate::error::{corrupt, unless_taken};

impl Core {
    /// Registers a purpose and audits it; a key registered already is a conflict.
    pub async fn create_purpose(&self, purpose: &Purpose, actor: &Actor) -> Result<(), StoreError> {
        let now = to_micros(self.now());
        let bases: Vec<&str> = purpose.allowed_bases.iter().map(|b| b.as_str()).collect();
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO purposes (key, description, allowed_bases, min_notice_version, special_category, \
             li_assessment_ref, contract_necessary, retention_days, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
        )
        .bind(purpose.key.as_str())
        .bind(&purpose.description)
        .bind(bases.join(","))
        .bind(i64::from(purpose.min_notice_version))
        .bind(i64::from(purpose.special_category))
        .bind(purpose.li_assessment_ref.as_deref())
        .bind(i64::from(purpose.contract_necessary))
        .bind(i64::from(purpose.retention_days))
        .bind(now)
        .execute(&mut *tx)
        .await;
        unless_taken(inserted, || {
            format!("the purpose '{}' is registered already", purpose.key)
        })?;
        insert_version(
            &mut tx,
            purpose,
            1,
            false,
            &serde_json::json!({"created": true}),
            actor,
            now,
        )
        .await?;
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "purpose.create",
                target: format!("purpose:{}", purpose.key),
                details: serde_json::to_value(purpose).unwrap_or_default(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every registered purpose, by key.
    pub async fn list_purposes(&self) -> Result<Vec<Purpose>, StoreError> {
        purposes_on(&mut *self.reader.acquire().await?).await
    }

    /// The purpose registered under `key`.
    pub async fn purpose(&self, key: &str) -> Result<Option<Purpose>, StoreError> {
        let row = sqlx::query("SELECT * FROM purposes WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(purpose_from_row).transpose()
    }
}

/// Every registered purpose, by key, read on `conn` (in its transaction, if any).
pub(crate) async fn purposes_on(conn: &mut impl Reads) -> Result<Vec<Purpose>, StoreError> {
    let (sql, conn) = conn.reading("SELECT * FROM purposes ORDER BY key")?;
    let rows = sqlx::query(&sql).fetch_all(conn).await?;
    rows.iter().map(purpose_from_row).collect()
}

fn purpose_from_row(row: &AnyRow) -> Result<Purpose, StoreError> {
    purpose_from_row_with_key(row, "key")
}

/// A purpose from a row whose key column is called `key_column` (in joins).
pub(crate) fn purpose_from_row_with_key(
    row: &AnyRow,
    key_column: &str,
) -> Result<Purpose, StoreError> {
    let key: String = row.try_get(key_column)?;
    let bases: String = row.try_get("allowed_bases")?;
    let allowed_bases = bases
        .split(',')
        .filter(|b| !b.is_empty())
        .map(|b| {
            b.parse::<LegalBasis>()
                .map_err(|_| corrupt("purposes.allowed_bases"))
        })
        .collect::<Result<BTreeSet<_>, _>>()?;
    Ok(Purpose {
        key: PurposeKey::parse(&key).map_err(|_| corrupt("purposes.key"))?,
        description: row.try_get("description")?,
        allowed_bases,
        min_notice_version: u32::try_from(row.try_get::<i64, _>("min_notice_version")?)
            .map_err(|_| corrupt("purposes.min_notice_version"))?,
        special_category: row.try_get::<i64, _>("special_category")? != 0,
        li_assessment_ref: row.try_get("li_assessment_ref")?,
        contract_necessary: row.try_get::<i64, _>("contract_necessary")? != 0,
        retention_days: u32::try_from(row.try_get::<i64, _>("retention_days")?)
            .map_err(|_| corrupt("purposes.retention_days"))?,
    })
}

/// A purpose as the registry holds it now: the rule, its version, and when it
/// was retired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PurposeRecord {
    #[serde(flatten)]
    pub purpose: Purpose,
    pub version: u32,
    pub retired_at: Option<DateTime<Utc>>,
}

/// One version of a purpose in its history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PurposeVersion {
    pub version: u32,
    pub description: String,
    pub allowed_bases: Vec<LegalBasis>,
    pub min_notice_version: u32,
    pub special_category: bool,
    pub contract_necessary: bool,
    pub retention_days: u32,
    pub retired: bool,
    /// What this version changed and what followed from it.
    pub change: serde_json::Value,
    pub changed_by: String,
    pub changed_at: DateTime<Utc>,
}

/// What a change of a purpose did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PurposeUpdate {
    pub record: PurposeRecord,
    /// Why the change narrows who may be used (empty when it does not).
    pub narrowing: Vec<String>,
    /// The submitted or approved pilots it sent back to draft.
    pub returned_to_draft: Vec<String>,
}

/// A legitimate-interest assessment as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedAssessment {
    pub version: u32,
    #[serde(flatten)]
    pub assessment: Assessment,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

impl Core {
    /// The purpose `key` with its version and retirement, if registered.
    pub async fn purpose_record(&self, key: &str) -> Result<Option<PurposeRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM purposes WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// Every purpose with its version and retirement, by key.
    pub async fn list_purpose_records(&self) -> Result<Vec<PurposeRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM purposes ORDER BY key")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Every version of the purpose `key`, newest first.
    pub async fn purpose_history(&self, key: &str) -> Result<Vec<PurposeVersion>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM purpose_versions WHERE purpose = $1 ORDER BY version DESC")
                .bind(key)
                .fetch_all(&self.reader)
                .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// Every legitimate-interest assessment of the purpose `key`, newest first.
    pub async fn assessments(&self, key: &str) -> Result<Vec<RecordedAssessment>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM li_assessments WHERE purpose = $1 ORDER BY version DESC")
                .bind(key)
                .fetch_all(&self.reader)
                .await?;
        rows.iter().map(assessment_from_row).collect()
    }

    /// Replaces the rule of purpose `key` by `after` as a new version, seen
    /// as `seen_version` (a conflict when another change came first). The
    /// assessment reference stays the registry's. When the change narrows
    /// who may be used, the purpose's submitted and approved pilots go back
    /// to draft, each audited and noted for its marketer.
    pub async fn update_purpose(
        &self,
        after: &Purpose,
        seen_version: Option<u32>,
        actor: &Actor,
    ) -> Result<PurposeUpdate, StoreError> {
        let key = after.key.as_str();
        let mut tx = self.begin_subject_write().await?;
        let now = to_micros(self.now());
        let before = locked_purpose(&mut tx, self.dialect.for_update(), key).await?;
        if before.retired_at.is_some() {
            return Err(StoreError::Conflict(format!(
                "the purpose '{key}' is retired: it cannot change"
            )));
        }
        if let Some(seen) = seen_version
            && seen != before.version
        {
            return Err(StoreError::Conflict(format!(
                "the purpose '{key}' changed since version {seen} was read (it is at version {}); read it again",
                before.version
            )));
        }
        let mut after = after.clone();
        after.li_assessment_ref = before.purpose.li_assessment_ref.clone();
        let version = before.version + 1;
        let bases: Vec<&str> = after.allowed_bases.iter().map(|b| b.as_str()).collect();
        sqlx::query(
            "UPDATE purposes SET description = $1, allowed_bases = $2, min_notice_version = $3, special_category = $4, \
             contract_necessary = $5, retention_days = $6, version = $7, updated_at = $8 WHERE key = $9",
        )
        .bind(&after.description)
        .bind(bases.join(","))
        .bind(i64::from(after.min_notice_version))
        .bind(i64::from(after.special_category))
        .bind(i64::from(after.contract_necessary))
        .bind(i64::from(after.retention_days))
        .bind(i64::from(version))
        .bind(now)
        .bind(key)
        .execute(&mut *tx)
        .await?;
        let reasons = narrowing(&before.purpose, &after);
        let returned = if reasons.is_empty() {
            Vec::new()
        } else {
            let why = format!(
                "its purpose {key} changed (version {version}): {}",
                reasons.join("; ")
            );
            self.return_pilots_to_draft(&mut tx, key, &why, actor, now)
                .await?
        };
        let change = serde_json::json!({
            "narrowing": reasons,
            "returned_to_draft": returned,
        });
        insert_version(&mut tx, &after, version, false, &change, actor, now).await?;
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "purpose.update",
                target: format!("purpose:{key}"),
                details: serde_json::json!({
                    "version": version,
                    "before": before.purpose,
                    "after": after,
                    "narrowing": reasons,
                    "returned_to_draft": returned,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(PurposeUpdate {
            record: PurposeRecord {
                purpose: after,
                version,
                retired_at: None,
            },
            narrowing: reasons,
            returned_to_draft: returned,
        })
    }

    /// Retires purpose `key` as a new version: no new assignment or consent
    /// for it from now on; pilots not yet running go back to draft; running
    /// pilots keep the people they hold.
    pub async fn retire_purpose(
        &self,
        key: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<PurposeUpdate, StoreError> {
        let mut tx = self.begin_subject_write().await?;
        let now = to_micros(self.now());
        let before = locked_purpose(&mut tx, self.dialect.for_update(), key).await?;
        if before.retired_at.is_some() {
            return Err(StoreError::Conflict(format!(
                "the purpose '{key}' is retired already"
            )));
        }
        let version = before.version + 1;
        sqlx::query(
            "UPDATE purposes SET version = $1, retired_at = $2, updated_at = $2 WHERE key = $3",
        )
        .bind(i64::from(version))
        .bind(now)
        .bind(key)
        .execute(&mut *tx)
        .await?;
        let why = format!("its purpose {key} was retired (version {version}): {reason}");
        let returned = self
            .return_pilots_to_draft(&mut tx, key, &why, actor, now)
            .await?;
        let change = serde_json::json!({"retired": reason, "returned_to_draft": returned});
        insert_version(&mut tx, &before.purpose, version, true, &change, actor, now).await?;
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "purpose.retire",
                target: format!("purpose:{key}"),
                details: serde_json::json!({
                    "version": version,
                    "reason": reason,
                    "returned_to_draft": returned,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(PurposeUpdate {
            record: PurposeRecord {
                purpose: before.purpose,
                version,
                retired_at: Some(from_micros(now)),
            },
            narrowing: vec![format!("retired: {reason}")],
            returned_to_draft: returned,
        })
    }

    /// Records a legitimate-interest assessment of purpose `key` as its next
    /// version. The purpose may rely on `legitimate_interest` while its newest
    /// assessment is positive; a negative one that replaces a positive one
    /// sends the purpose's submitted and approved pilots back to draft when
    /// the purpose allows that basis.
    pub async fn record_assessment(
        &self,
        key: &str,
        assessment: &Assessment,
        actor: &Actor,
    ) -> Result<RecordedAssessment, StoreError> {
        let mut tx = self.begin_subject_write().await?;
        let now = to_micros(self.now());
        let before = locked_purpose(&mut tx, self.dialect.for_update(), key).await?;
        if before.retired_at.is_some() {
            return Err(StoreError::Conflict(format!(
                "the purpose '{key}' is retired: it takes no new assessment"
            )));
        }
        let newest: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM li_assessments WHERE purpose = $1")
                .bind(key)
                .fetch_one(&mut *tx)
                .await?;
        let version = u32::try_from(newest.unwrap_or(0) + 1)
            .map_err(|_| corrupt("li_assessments.version"))?;
        sqlx::query(
            "INSERT INTO li_assessments (purpose, version, purpose_test, necessity_test, interests, expectations, \
             safeguards, outcome, reviewer, reviewed_on, recorded_by, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(key)
        .bind(i64::from(version))
        .bind(&assessment.purpose_test)
        .bind(&assessment.necessity_test)
        .bind(&assessment.balancing.interests)
        .bind(&assessment.balancing.expectations)
        .bind(&assessment.balancing.safeguards)
        .bind(assessment.outcome.as_str())
        .bind(&assessment.reviewer)
        .bind(&assessment.reviewed_on)
        .bind(actor.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let reference = assessment.reference(version);
        sqlx::query("UPDATE purposes SET li_assessment_ref = $1, updated_at = $2 WHERE key = $3")
            .bind(reference.as_deref())
            .bind(now)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        let lost_basis = reference.is_none()
            && before.purpose.li_assessment_ref.is_some()
            && before
                .purpose
                .allowed_bases
                .contains(&LegalBasis::LegitimateInterest);
        let returned = if lost_basis {
            let why = format!(
                "the legitimate-interest assessment v{version} of its purpose {key} is negative"
            );
            self.return_pilots_to_draft(&mut tx, key, &why, actor, now)
                .await?
        } else {
            Vec::new()
        };
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "purpose.assess",
                target: format!("purpose:{key}"),
                details: serde_json::json!({
                    "version": version,
                    "outcome": assessment.outcome,
                    "reviewer": assessment.reviewer,
                    "reviewed_on": assessment.reviewed_on,
                    "returned_to_draft": returned,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(RecordedAssessment {
            version,
            assessment: assessment.clone(),
            recorded_by: actor.to_string(),
            recorded_at: from_micros(now),
        })
    }

    /// Sends every submitted or approved pilot of `purpose` back to draft
    /// with `why` ([`Core::return_to_draft`]).
    async fn return_pilots_to_draft(
        &self,
        tx: &mut AnyConnection,
        purpose: &str,
        why: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let keys: Vec<String> = sqlx::query_scalar(
            "SELECT key FROM experiments WHERE purpose = $1 AND state IN ('submitted', 'approved')",
        )
        .bind(purpose)
        .fetch_all(&mut *tx)
        .await?;
        self.return_to_draft(tx, &keys, why, actor, now).await
    }
}

/// The purpose `key` read in `tx`, its row locked (`lock` is the dialect's
/// `FOR UPDATE`), or not found.
async fn locked_purpose(
    tx: &mut AnyConnection,
    lock: &str,
    key: &str,
) -> Result<PurposeRecord, StoreError> {
    let row = sqlx::query(&format!("SELECT * FROM purposes WHERE key = $1{lock}"))
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no purpose has the key '{key}'")))?;
    record_from_row(&row)
}

/// Writes version `version` of `purpose` into its history.
async fn insert_version(
    tx: &mut AnyConnection,
    purpose: &Purpose,
    version: u32,
    retired: bool,
    change: &serde_json::Value,
    actor: &Actor,
    now: i64,
) -> Result<(), StoreError> {
    let bases: Vec<&str> = purpose.allowed_bases.iter().map(|b| b.as_str()).collect();
    sqlx::query(
        "INSERT INTO purpose_versions (purpose, version, description, allowed_bases, min_notice_version, \
         special_category, contract_necessary, retention_days, retired, change, changed_by, changed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(purpose.key.as_str())
    .bind(i64::from(version))
    .bind(&purpose.description)
    .bind(bases.join(","))
    .bind(i64::from(purpose.min_notice_version))
    .bind(i64::from(purpose.special_category))
    .bind(i64::from(purpose.contract_necessary))
    .bind(i64::from(purpose.retention_days))
    .bind(i64::from(retired))
    .bind(change.to_string())
    .bind(actor.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn record_from_row(row: &AnyRow) -> Result<PurposeRecord, StoreError> {
    Ok(PurposeRecord {
        purpose: purpose_from_row(row)?,
        version: u32::try_from(row.try_get::<i64, _>("version")?)
            .map_err(|_| corrupt("purposes.version"))?,
        retired_at: row
            .try_get::<Option<i64>, _>("retired_at")?
            .map(from_micros),
    })
}

fn parse_bases(text: &str, column: &'static str) -> Result<Vec<LegalBasis>, StoreError> {
    text.split(',')
        .filter(|b| !b.is_empty())
        .map(|b| b.parse::<LegalBasis>().map_err(|_| corrupt(column)))
        .collect()
}

fn version_from_row(row: &AnyRow) -> Result<PurposeVersion, StoreError> {
    let number = |column: &'static str| -> Result<u32, StoreError> {
        u32::try_from(row.try_get::<i64, _>(column)?).map_err(|_| corrupt(column))
    };
    Ok(PurposeVersion {
        version: number("version")?,
        description: row.try_get("description")?,
        allowed_bases: parse_bases(
            &row.try_get::<String, _>("allowed_bases")?,
            "purpose_versions.allowed_bases",
        )?,
        min_notice_version: number("min_notice_version")?,
        special_category: row.try_get::<i64, _>("special_category")? != 0,
        contract_necessary: row.try_get::<i64, _>("contract_necessary")? != 0,
        retention_days: number("retention_days")?,
        retired: row.try_get::<i64, _>("retired")? != 0,
        change: serde_json::from_str(&row.try_get::<String, _>("change")?)
            .map_err(|_| corrupt("purpose_versions.change"))?,
        changed_by: row.try_get("changed_by")?,
        changed_at: from_micros(row.try_get("changed_at")?),
    })
}

fn assessment_from_row(row: &AnyRow) -> Result<RecordedAssessment, StoreError> {
    let text = |column: &str| -> Result<String, StoreError> { Ok(row.try_get(column)?) };
    Ok(RecordedAssessment {
        version: u32::try_from(row.try_get::<i64, _>("version")?)
            .map_err(|_| corrupt("li_assessments.version"))?,
        assessment: Assessment {
            purpose_test: text("purpose_test")?,
            necessity_test: text("necessity_test")?,
            balancing: Balancing {
                interests: text("interests")?,
                expectations: text("expectations")?,
                safeguards: text("safeguards")?,
            },
            outcome: text("outcome")?
                .parse()
                .map_err(|_| corrupt("li_assessments.outcome"))?,
            reviewer: text("reviewer")?,
            reviewed_on: text("reviewed_on")?,
        },
        recorded_by: text("recorded_by")?,
        recorded_at: from_micros(row.try_get("recorded_at")?),
    })
}
