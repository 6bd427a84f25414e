//! Conversion and exposure events: stored only for a subject that holds an
//! assignment in a running pilot, measures one of its metrics, and is eligible
//! for the pilot's purpose when the event occurred. Event ids make retries harmless.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use pilotgate_domain::consent::ConsentRecord;
use pilotgate_domain::eligibility::{Eligibility, eligible};
use pilotgate_domain::experiment::Metric;
use pilotgate_domain::purpose::Purpose;
use pilotgate_domain::time::{from_micros, to_micros};
use serde::Serialize;
use sqlx::Row;

use crate::assignments::count_refusal_on;
use crate::consents::record_from_row;
use crate::error::corrupt;
use crate::{Store, StoreError};

/// Rows per multi-row INSERT of events (7 parameters each).
const INSERT_CHUNK: usize = 500;

/// One event of a batch, its subject already pseudonymized.
#[derive(Debug, Clone)]
pub struct EventDraft {
    pub event_id: String,
    /// The subject's pseudonyms, current key first.
    pub subjects: Vec<String>,
    pub name: String,
    pub value: Option<f64>,
    pub occurred_at: DateTime<Utc>,
}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum EventFate {
    /// Stored for at least one pilot.
    Accepted,
    /// The event id was stored before; nothing new was stored.
    Duplicate,
    /// Not stored, with the reason code.
    Refused(String),
}

/// A stored event, for export and analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    pub event_id: String,
    pub subject: String,
    pub name: String,
    pub value: Option<f64>,
    pub occurred_at: DateTime<Utc>,
    /// When the server stored it: the instant of its eligibility decision.
    pub received_at: DateTime<Utc>,
}

struct Held {
    experiment_key: String,
    subject: String,
    assigned_at: DateTime<Utc>,
    purpose: String,
    metrics: Vec<String>,
}

impl Store {
    /// Records a batch in one transaction under the subject write lock, so
    /// every decision sees every ledger change committed before it. The
    /// response may say "accepted" only after the commit.
    pub async fn record_events(&self, events: &[EventDraft]) -> Result<Vec<EventFate>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_subject_write().await?;
        let now = Utc::now();
        let list = |n: usize| self.dialect.placeholders(1, n);

        let ids: Vec<&str> = events
            .iter()
            .map(|e| e.event_id.as_str())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let sql = format!(
            "SELECT DISTINCT event_id FROM events WHERE event_id IN ({})",
            list(ids.len())
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for id in &ids {
            query = query.bind(*id);
        }
        let seen: HashSet<String> = query.fetch_all(&mut *tx).await?.into_iter().collect();

        let subjects: Vec<&str> = events
            .iter()
            .flat_map(|e| e.subjects.iter().map(String::as_str))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let held = held_assignments(&mut tx, &subjects, &list(subjects.len())).await?;
        let purposes: HashMap<String, Purpose> = self
            .list_purposes()
            .await?
            .into_iter()
            .map(|p| (p.key.to_string(), p))
            .collect();
        let (records, erased) = ledger_of(&mut tx, &subjects, &list(subjects.len())).await?;

        let mut fates = Vec::with_capacity(events.len());
        let mut rows: Vec<(&str, &EventDraft)> = Vec::new();
        let mut refusals: HashMap<(String, String), i64> = HashMap::new();
        let mut batch_ids = HashSet::new();
        for event in events {
            if seen.contains(&event.event_id) || !batch_ids.insert(event.event_id.as_str()) {
                fates.push(EventFate::Duplicate);
                continue;
            }
            let mine: Vec<&Held> = held
                .iter()
                .filter(|h| event.subjects.contains(&h.subject))
                .collect();
            if mine.is_empty() {
                fates.push(EventFate::Refused("no_assignment".to_owned()));
                continue;
            }
            let mut refusal = None;
            let mut stored = false;
            for holding in mine {
                let reason = if !holding.metrics.contains(&event.name) {
                    Some("not_a_metric".to_owned())
                } else if event.occurred_at < holding.assigned_at {
                    Some("before_assignment".to_owned())
                } else {
                    let purpose = purposes
                        .get(&holding.purpose)
                        .ok_or_else(|| corrupt("experiments.purpose"))?;
                    let theirs: Vec<ConsentRecord> = records
                        .iter()
                        .filter(|r| {
                            r.purpose == holding.purpose && event.subjects.contains(&r.subject)
                        })
                        .cloned()
                        .collect();
                    let is_erased = event.subjects.iter().any(|s| erased.contains(s));
                    match eligible(purpose, &theirs, is_erased, event.occurred_at) {
                        Eligibility::Eligible(_) => None,
                        Eligibility::Ineligible(reason) => Some(reason.as_str().to_owned()),
                    }
                };
                match reason {
                    None => {
                        rows.push((holding.experiment_key.as_str(), event));
                        stored = true;
                    }
                    Some(reason) => {
                        *refusals
                            .entry((holding.experiment_key.clone(), reason.clone()))
                            .or_default() += 1;
                        refusal.get_or_insert(reason);
                    }
                }
            }
            fates.push(if stored {
                EventFate::Accepted
            } else {
                EventFate::Refused(refusal.unwrap_or_default())
            });
        }

        for chunk in rows.chunks(INSERT_CHUNK) {
            let values = (0..chunk.len())
                .map(|r| format!("({})", self.dialect.placeholders(r * 7 + 1, 7)))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO events (experiment_key, event_id, subject, name, value, occurred_at, received_at) \
                 VALUES {values} ON CONFLICT (event_id, experiment_key) DO NOTHING"
            );
            let mut query = sqlx::query(&sql);
            for (experiment_key, event) in chunk {
                query = query
                    .bind(*experiment_key)
                    .bind(&event.event_id)
                    .bind(&event.subjects[0])
                    .bind(&event.name)
                    .bind(event.value)
                    .bind(to_micros(event.occurred_at))
                    .bind(to_micros(now));
            }
            query.execute(&mut *tx).await?;
        }
        for ((experiment_key, reason), count) in refusals {
            count_refusal_on(&mut tx, &experiment_key, "event", &reason, now, count).await?;
        }
        tx.commit().await?;
        Ok(fates)
    }

    /// The events of a pilot, for export and analysis.
    pub async fn events_of(&self, experiment_key: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query("SELECT event_id, subject, name, value, occurred_at, received_at FROM events WHERE experiment_key = $1 ORDER BY occurred_at, id")
            .bind(experiment_key)
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredEvent {
                    event_id: row.try_get("event_id")?,
                    subject: row.try_get("subject")?,
                    name: row.try_get("name")?,
                    value: row.try_get("value")?,
                    occurred_at: from_micros(row.try_get("occurred_at")?),
                    received_at: from_micros(row.try_get("received_at")?),
                })
            })
            .collect()
    }
}

async fn held_assignments(
    conn: &mut sqlx::AnyConnection,
    subjects: &[&str],
    list: &str,
) -> Result<Vec<Held>, StoreError> {
    let sql = format!(
        "SELECT a.experiment_key, a.subject, a.assigned_at, e.purpose, e.primary_event, e.guardrails \
         FROM assignments a JOIN experiments e ON e.key = a.experiment_key \
         WHERE e.state = 'running' AND a.subject IN ({list})"
    );
    let mut query = sqlx::query(&sql);
    for subject in subjects {
        query = query.bind(*subject);
    }
    query
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| {
            let guardrails: Vec<Metric> =
                serde_json::from_str(&row.try_get::<String, _>("guardrails")?)
                    .map_err(|_| corrupt("experiments.guardrails"))?;
            let mut metrics: Vec<String> = guardrails.into_iter().map(|m| m.event).collect();
            metrics.push(row.try_get("primary_event")?);
            Ok(Held {
                experiment_key: row.try_get("experiment_key")?,
                subject: row.try_get("subject")?,
                assigned_at: from_micros(row.try_get("assigned_at")?),
                purpose: row.try_get("purpose")?,
                metrics,
            })
        })
        .collect()
}

async fn ledger_of(
    conn: &mut sqlx::AnyConnection,
    subjects: &[&str],
    list: &str,
) -> Result<(Vec<ConsentRecord>, HashSet<String>), StoreError> {
    let sql = format!("SELECT * FROM consent_records WHERE subject IN ({list})");
    let mut query = sqlx::query(&sql);
    for subject in subjects {
        query = query.bind(*subject);
    }
    let records = query
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(record_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let sql = format!("SELECT subject FROM erasures WHERE subject IN ({list})");
    let mut query = sqlx::query_scalar::<_, String>(&sql);
    for subject in subjects {
        query = query.bind(*subject);
    }
    let erased = query.fetch_all(&mut *conn).await?.into_iter().collect();
    Ok((records, erased))
}

/// One kept (not withdrawn) subject of a pilot with, per metric asked for,
/// the number and the summed value of its events attributed to it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserOutcomes {
    pub subject: String,
    pub variant: String,
    /// `(events, total)` per metric, in the order the metrics were asked for.
    pub per_metric: Vec<(i64, f64)>,
}

impl Store {
    /// Per-user outcomes of a pilot for several metrics at once, aggregated in
    /// the database (the attribution rules of `pilotgate analyze`: events at or
    /// after the assignment, and before its end when a window is given).
    /// Withdrawn subjects are left out. (The unary `+` keeps SQLite from
    /// walking the events by time instead of by subject.) No stored event can
    /// belong to an unknown subject: events are stored only for assigned
    /// subjects, and erasure removes both.
    pub async fn per_user_outcomes(
        &self,
        experiment_key: &str,
        metrics: &[String],
        window_micros: Option<i64>,
    ) -> Result<Vec<UserOutcomes>, StoreError> {
        let columns = (0..metrics.len())
            .map(|i| {
                let p = i + 3;
                format!(
                    "COUNT(CASE WHEN e.name = ${p} THEN 1 END) AS c{i}, \
                     COALESCE(SUM(CASE WHEN e.name = ${p} THEN COALESCE(e.value, 0.0) ELSE 0.0 END), 0.0) AS t{i}"
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let names = placeholders_from(3, metrics.len());
        let sql = format!(
            "SELECT a.subject, a.variant, {columns} FROM assignments a \
             LEFT JOIN events e ON e.experiment_key = a.experiment_key AND e.subject = a.subject AND e.name IN ({names}) \
               AND +e.occurred_at >= a.assigned_at AND ($2 < 0 OR +e.occurred_at < a.assigned_at + $2) \
             WHERE a.experiment_key = $1 AND a.withdrawn_at IS NULL GROUP BY a.subject, a.variant"
        );
        let mut query = sqlx::query(&sql)
            .bind(experiment_key)
            .bind(window_micros.unwrap_or(-1));
        for metric in metrics {
            query = query.bind(metric);
        }
        let rows = query.fetch_all(&self.reader).await?;
        let outcomes = rows
            .iter()
            .map(|row| {
                let per_metric = (0..metrics.len())
                    .map(|i| {
                        Ok((
                            row.try_get::<i64, _>(format!("c{i}").as_str())?,
                            row.try_get::<f64, _>(format!("t{i}").as_str())?,
                        ))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                Ok(UserOutcomes {
                    subject: row.try_get("subject")?,
                    variant: row.try_get("variant")?,
                    per_metric,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(outcomes)
    }
}

fn placeholders_from(first: usize, n: usize) -> String {
    crate::consents::placeholders(first, n)
}
