//! The planner's eligible share: the eligibility rule applied to every
//! known subject of a purpose, streamed one subject at a time.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use pilotgate_domain::eligibility::{Eligibility, RecordFacts, eligible};
use pilotgate_domain::purpose::Purpose;
use serde::Serialize;
use sqlx::Row;

use crate::consents::facts_from_row;
use crate::core::Core;
use crate::error::StoreError;

/// How the known subjects of a purpose (every pseudonym with a ledger record
/// for it) stand at one instant under the eligibility rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurposeEligibility {
    /// Pseudonyms with at least one record for the purpose.
    pub known: u64,
    /// Of those, the ones the rule lets the purpose use now.
    pub eligible: u64,
    /// The others, per reason code of the rule.
    pub ineligible: BTreeMap<String, u64>,
}

impl PurposeEligibility {
    fn count(&mut self, answer: &Eligibility) {
        self.known += 1;
        match answer.reason() {
            None => self.eligible += 1,
            Some(reason) => {
                *self
                    .ineligible
                    .entry(reason.as_str().to_owned())
                    .or_default() += 1
            }
        }
    }
}

impl Core {
    /// The eligibility rule applied at `at` to every known subject of
    /// `purpose`, counted per answer. The purpose's records are read once,
    /// streamed in subject order, so memory holds one subject's records.
    pub async fn purpose_eligibility(
        &self,
        purpose: &Purpose,
        at: DateTime<Utc>,
    ) -> Result<PurposeEligibility, StoreError> {
        use futures_util::TryStreamExt;
        let mut rows = sqlx::query(
            "SELECT c.subject, c.id, c.basis, c.status, c.notice_version, c.effective_from, c.expires_at, \
                    CASE WHEN EXISTS (SELECT 1 FROM erasures e WHERE e.subject = c.subject) THEN 1 ELSE 0 END AS erased \
             FROM consent_records c WHERE c.purpose = $1 ORDER BY c.subject, c.id",
        )
        .bind(purpose.key.as_str())
        .fetch(&self.reader);
        let mut tally = PurposeEligibility::default();
        let mut current: Option<(String, bool)> = None;
        let mut records: Vec<RecordFacts> = Vec::new();
        while let Some(row) = rows.try_next().await? {
            let subject: String = row.try_get("subject")?;
            if current.as_ref().is_some_and(|(s, _)| *s != subject) {
                let (_, erased) = current.take().unwrap_or_default();
                tally.count(&eligible(purpose, &records, erased, at));
                records.clear();
            }
            if current.is_none() {
                current = Some((subject, row.try_get::<i64, _>("erased")? > 0));
            }
            records.push(facts_from_row(&row)?);
        }
        if let Some((_, erased)) = current {
            tally.count(&eligible(purpose, &records, erased, at));
        }
        Ok(tally)
    }
}
