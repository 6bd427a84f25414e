//! Re-consent remediation in aggregate: how many eligibility checks answered
//! "ask again" and how many privacy links they issued, per purpose and UTC
//! day (counters; who was asked is never kept), and, read from the ledger,
//! the consents that came back: a granted consent whose person's previous
//! record for the purpose was a consent that had expired or was given under
//! a notice below the purpose's minimum.

use chrono::{DateTime, Utc};
use pilotgate_domain::time::{from_micros, to_micros};

use crate::core::Core;
use crate::db::{AppendBatch, AppendTable, Value};
use crate::error::StoreError;

/// The asks of one purpose on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconsentAsks {
    pub purpose: String,
    /// `YYYY-MM-DD`.
    pub day: String,
    pub asked: i64,
    pub links_issued: i64,
}

impl Core {
    /// Counts one check that answered "ask again" for `purpose` at `at`, and
    /// the privacy link it issued, if any; nothing about the person is kept.
    pub async fn count_reconsent_ask(
        &self,
        purpose: &str,
        link_issued: bool,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut statements = AppendBatch::default();
        statements.push(
            AppendTable::ReconsentCounters,
            format!(
                "INSERT INTO reconsent_counters (purpose, day, asked, links_issued) VALUES ({}) \
                 ON CONFLICT (purpose, day) DO UPDATE SET \
                 asked = reconsent_counters.asked + excluded.asked, \
                 links_issued = reconsent_counters.links_issued + excluded.links_issued",
                self.dialect.placeholders(1, 4)
            ),
            vec![
                Value::Text(purpose.to_owned()),
                Value::Text(at.format("%Y-%m-%d").to_string()),
                Value::Integer(Some(1)),
                Value::Integer(Some(i64::from(link_issued))),
            ],
        )?;
        self.begin_append().await?.commit_after(statements).await
    }

    /// The ask counters of the days `from_day..=to_day` (`YYYY-MM-DD`), by purpose and day.
    pub async fn reconsent_asks(
        &self,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<ReconsentAsks>, StoreError> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT purpose, day, asked, links_issued FROM reconsent_counters \
             WHERE day >= $1 AND day <= $2 ORDER BY purpose, day",
        )
        .bind(from_day)
        .bind(to_day)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(purpose, day, asked, links_issued)| ReconsentAsks {
                purpose,
                day,
                asked,
                links_issued,
            })
            .collect())
    }

    /// Consents that came back in `[from, to)`: per such granted consent
    /// record (under a notice the purpose accepts), its purpose and when it
    /// took effect, when the same pseudonym's previous record for the
    /// purpose was a granted consent that had expired by then or was given
    /// under a notice below the purpose's (current) minimum version.
    pub async fn reconsent_returns(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "WITH ordered AS ( \
                SELECT c.purpose, c.basis, c.status, c.notice_version, c.effective_from, \
                    LAG(c.basis) OVER (PARTITION BY c.subject, c.purpose ORDER BY c.effective_from, c.id) AS prev_basis, \
                    LAG(c.status) OVER (PARTITION BY c.subject, c.purpose ORDER BY c.effective_from, c.id) AS prev_status, \
                    LAG(c.notice_version) OVER (PARTITION BY c.subject, c.purpose ORDER BY c.effective_from, c.id) AS prev_notice, \
                    LAG(c.expires_at) OVER (PARTITION BY c.subject, c.purpose ORDER BY c.effective_from, c.id) AS prev_expires \
                FROM consent_records c \
                WHERE c.subject IN (SELECT subject FROM consent_records \
                    WHERE effective_from >= $1 AND effective_from < $2)) \
             SELECT o.purpose, o.effective_from FROM ordered o JOIN purposes p ON p.key = o.purpose \
             WHERE o.effective_from >= $1 AND o.effective_from < $2 \
               AND o.basis = 'consent' AND o.status = 'granted' AND o.notice_version >= p.min_notice_version \
               AND o.prev_basis = 'consent' AND o.prev_status = 'granted' \
               AND ((o.prev_expires IS NOT NULL AND o.prev_expires <= o.effective_from) \
                    OR o.prev_notice < p.min_notice_version) \
             ORDER BY o.purpose, o.effective_from",
        )
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(purpose, at)| (purpose, from_micros(at)))
            .collect())
    }
}
