//! The retention purge (`pilotgate purge`, and the same job inside `serve`):
//! every pilot stopped longer ago than its retention period keeps only the
//! aggregates its results need (per variant and assignment day: users, sums
//! and sums of squares of every metric, the CUPED sums at the default
//! pre-period, the assignment and withdrawal counts, the eligibility
//! breakdown) and loses its raw assignments and events. Each pilot is purged
//! in one transaction with its audit entry (`experiment.purge`), so a purge
//! killed at any point leaves every pilot either untouched or wholly purged,
//! and running it again finishes the rest.

use chrono::{DateTime, Utc};
use pilotgate_domain::Actor;
use pilotgate_domain::experiment::Metric;
use pilotgate_store::{CovariateSums, DailySums, RawCounts, Store, StoreError};
use serde::{Deserialize, Serialize};

use super::ServiceError;
use super::results::DEFAULT_LOOKBACK_DAYS;

const DAY_MICROS: i64 = 86_400_000_000;

/// What a purged pilot keeps (stored as JSON in `result_summaries`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeptAggregates {
    /// The metrics' event names, in the order of `daily[..].per_metric`.
    pub metrics: Vec<String>,
    pub daily: Vec<DailySums>,
    /// Per variant: `(variant, assigned, withdrawn)`.
    pub counts: Vec<(String, u64, u64)>,
    /// Per variant, basis and notice version: how many subjects were assigned.
    pub eligibility: Vec<(String, String, Option<i64>, i64)>,
    /// The CUPED pre-period the covariate sums were kept for, in days.
    pub lookback_days: u32,
    /// Per metric (event name): the CUPED sums over that pre-period.
    pub covariate: Vec<(String, Vec<CovariateSums>)>,
    /// The raw rows the purge deleted.
    pub deleted: RawCounts,
    /// The attrition per day and variant at the purge (absent from
    /// aggregates kept before it was added).
    #[serde(default)]
    pub attrition: Vec<pilotgate_store::AttritionDay>,
}

/// What the purge did (or, dry, would do) to one pilot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PilotPurge {
    pub key: String,
    pub stopped_at: DateTime<Utc>,
    pub retention_days: u32,
    pub counts: RawCounts,
    /// False in a dry run, or when another purge got there first.
    pub purged: bool,
}

/// The aggregates a purged pilot's results read, and when it was purged;
/// `None` while its raw data is stored.
pub async fn kept_aggregates(
    store: &Store,
    key: &str,
) -> Result<Option<(DateTime<Utc>, KeptAggregates)>, StoreError> {
    match store.result_summary(key).await? {
        None => Ok(None),
        Some(stored) => Ok(Some((stored.purged_at, stored.parse()?))),
    }
}

/// Per variant: `(variant, assigned, withdrawn)`, from the raw assignments
/// or, once purged, from the counts kept.
pub async fn assignment_counts(
    store: &Store,
    key: &str,
) -> Result<Vec<(String, u64, u64)>, StoreError> {
    match kept_aggregates(store, key).await? {
        Some((_, kept)) => Ok(kept.counts),
        None => store.assignment_counts(key).await,
    }
}

/// The eligibility breakdown (per variant, basis and notice version), from
/// the raw assignments or, once purged, from the breakdown kept.
pub async fn eligibility_breakdown(
    store: &Store,
    key: &str,
) -> Result<Vec<(String, String, Option<i64>, i64)>, StoreError> {
    match kept_aggregates(store, key).await? {
        Some((_, kept)) => Ok(kept.eligibility),
        None => store.eligibility_breakdown(key).await,
    }
}

/// Purges every pilot stopped longer ago than its retention at `as_of`
/// (`dry_run`: only counts), calling `progress` after each pilot.
pub async fn purge_expired(
    store: &Store,
    actor: &Actor,
    as_of: DateTime<Utc>,
    dry_run: bool,
    mut progress: impl FnMut(&PilotPurge),
) -> Result<Vec<PilotPurge>, ServiceError> {
    let pause = test_pause();
    let mut done = Vec::new();
    for candidate in store.purge_candidates(as_of).await? {
        let counts = store.raw_counts(&candidate.key).await?;
        let mut outcome = PilotPurge {
            key: candidate.key.clone(),
            stopped_at: candidate.stopped_at,
            retention_days: candidate.retention_days,
            counts,
            purged: false,
        };
        if !dry_run {
            if let Some(pause) = pause {
                tokio::time::sleep(pause).await;
            }
            let kept = aggregates(store, &candidate.key, counts).await?;
            let summary = serde_json::to_string(&kept).map_err(ServiceError::internal)?;
            let details = serde_json::json!({
                "stopped_at": candidate.stopped_at.to_rfc3339(),
                "retention_days": candidate.retention_days,
                "as_of": as_of.to_rfc3339(),
            });
            if let Some(deleted) = store
                .purge_pilot(&candidate.key, &summary, actor, details)
                .await?
            {
                outcome.counts = deleted;
                outcome.purged = true;
            }
        }
        progress(&outcome);
        done.push(outcome);
    }
    Ok(done)
}

/// Test-only: `PILOTGATE_TEST_PURGE_PAUSE_MS` pauses before each pilot's
/// purge, so a test can kill the process between pilots.
fn test_pause() -> Option<std::time::Duration> {
    std::env::var("PILOTGATE_TEST_PURGE_PAUSE_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(std::time::Duration::from_millis)
}

async fn aggregates(
    store: &Store,
    key: &str,
    deleted: RawCounts,
) -> Result<KeptAggregates, ServiceError> {
    let experiment = store
        .experiment(key)
        .await?
        .ok_or_else(|| ServiceError::internal(format!("pilot {key} vanished during the purge")))?;
    let design = &experiment.design;
    let metrics: Vec<Metric> = std::iter::once(design.primary_metric.clone())
        .chain(design.guardrails.iter().cloned())
        .collect();
    let window = design
        .attribution_window_hours
        .map(|h| i64::from(h) * 3_600_000_000);
    let daily = store.daily_outcome_sums(key, &metrics).await?;
    let mut covariate = Vec::with_capacity(metrics.len());
    for metric in &metrics {
        let sums = store
            .daily_covariate_sums(
                key,
                design.purpose.as_str(),
                metric,
                window,
                i64::from(DEFAULT_LOOKBACK_DAYS) * DAY_MICROS,
            )
            .await?;
        covariate.push((metric.event.clone(), sums));
    }
    Ok(KeptAggregates {
        metrics: metrics.iter().map(|m| m.event.clone()).collect(),
        daily,
        counts: store.assignment_counts(key).await?,
        eligibility: store.eligibility_breakdown(key).await?,
        lookback_days: DEFAULT_LOOKBACK_DAYS,
        covariate,
        deleted,
        attrition: store.attrition_by_day(key).await?,
    })
}

/// What a ledger reduction did (or, dry, would do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LedgerReduction {
    pub subjects: u64,
    pub records: u64,
}

/// Reduces the consent records of every subject with no purpose left whose
/// last record is older than `proof_keeping_days` at `as_of` (see
/// `pilotgate_domain::ledger_reduction`), in one audited transaction
/// (`ledger.reduce`, counts only); `dry_run` only counts.
pub async fn reduce_ledger(
    store: &Store,
    actor: &Actor,
    as_of: DateTime<Utc>,
    proof_keeping_days: u32,
    dry_run: bool,
) -> Result<LedgerReduction, ServiceError> {
    use pilotgate_domain::ledger_reduction::reducible;
    let before = as_of - chrono::Duration::days(i64::from(proof_keeping_days));
    let due: Vec<_> = store
        .ledger_reduction_candidates(before)
        .await?
        .into_iter()
        .filter(|s| reducible(&s.latest, s.last_recorded, as_of, proof_keeping_days))
        .collect();
    let mut done = LedgerReduction {
        subjects: due.len() as u64,
        records: due.iter().map(|s| s.records).sum(),
    };
    if !dry_run && !due.is_empty() {
        let subjects: Vec<String> = due.into_iter().map(|s| s.subject).collect();
        let details = serde_json::json!({
            "as_of": as_of.to_rfc3339(),
            "proof_keeping_days": proof_keeping_days,
        });
        done.records = store.reduce_ledger(&subjects, actor, details).await?;
    }
    Ok(done)
}
