//! Re-consent remediation. For the shop: whether a person may be used for a
//! purpose and whether it may ask them again, and then a privacy link to
//! show them (`POST /api/v1/eligibility/check`). For compliance: per
//! purpose and day, the people needing re-consent, the asks and the
//! consents that came back (`GET /api/v1/legal-basis-map/reconsent` and the
//! consents page).
//!
//! `ask_again` is true only when the consent in force expired or was given
//! under a notice older than the purpose's minimum: re-consent is asked of
//! people who consented before. A person with no record at all is answered
//! `ask_again: false` like a refusal, a withdrawal, an objection or an
//! erasure, so ingest learns nothing that tells those apart (a first ask
//! goes through the shop's banner or `POST /api/v1/privacy-links`). Asking is
//! itself processing: only counts per purpose and day are kept, never who
//! was asked; "came back" is read from the ledger (a granted consent after
//! a lapsed one, by any channel).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use pilotgate_analysis::disclosure::{MinCell, release_levels};
use pilotgate_domain::Actor;
use pilotgate_domain::eligibility::{Eligibility, Reason};
use pilotgate_store::StoreError;

use super::ServiceError;
use super::notices::clip;
use super::privacy::{IssuedLink, issue_link};
use crate::consent_input::check_user_id;
use crate::startup::AppState;

/// The days a report covers by default, and at most.
pub const DEFAULT_DAYS: u32 = 14;
pub const MAX_DAYS: u32 = 90;

/// What a check answers: nothing else about the person's state.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CheckAnswer {
    /// The person may be used for the purpose now.
    pub eligible: bool,
    /// The person's consent expired or was given under a notice older than
    /// the purpose needs: the shop may ask again. False in every other case.
    pub ask_again: bool,
    /// A privacy link to show the person, when `ask_again` and the request named a notice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privacy_link: Option<IssuedLink>,
}

/// Whether the ledger's answer lets the shop ask the person again.
pub fn asks_again(eligibility: &Eligibility) -> bool {
    matches!(
        eligibility.reason(),
        Some(Reason::Expired | Reason::StaleNotice)
    )
}

/// Checks the person `user_id` (raw, pseudonymized here under every key
/// version) for `purpose`; when they may be asked again and `notice` is
/// given, issues a privacy link to it (audited by `issue_link`). Each "ask
/// again" answer is counted for the purpose and day.
pub async fn check(
    state: &AppState,
    actor: &Actor,
    user_id: &str,
    purpose: &str,
    notice: Option<&str>,
) -> Result<CheckAnswer, ServiceError> {
    check_user_id(user_id).map_err(|e| ServiceError::invalid("user_id", e))?;
    let record = state
        .store
        .purpose_record(purpose)
        .await?
        .ok_or_else(|| not_found(format!("no purpose is called '{}'", clip(purpose))))?;
    // Checked before the person is: the answer to a bad notice never depends on them.
    if let Some(notice) = notice
        && state.store.notice(notice).await?.is_none()
    {
        return Err(not_found(format!("no notice is called '{}'", clip(notice))));
    }
    if record.retired_at.is_some() {
        return Ok(CheckAnswer {
            eligible: false,
            ask_again: false,
            privacy_link: None,
        });
    }
    let candidates: Vec<String> = state
        .keys
        .candidates(user_id)
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect();
    let now = state.store.now();
    let eligibility = state
        .store
        .eligibility(&candidates, &record.purpose, now)
        .await?;
    let ask_again = asks_again(&eligibility);
    let privacy_link = match (ask_again, notice) {
        (true, Some(notice)) => Some(issue_link(state, actor, user_id, notice).await?),
        _ => None,
    };
    if ask_again {
        state
            .store
            .count_reconsent_ask(purpose, privacy_link.is_some(), now)
            .await?;
    }
    Ok(CheckAnswer {
        eligible: eligibility.is_eligible(),
        ask_again,
        privacy_link,
    })
}

fn not_found(message: String) -> ServiceError {
    ServiceError::Store(StoreError::NotFound(message))
}

/// One purpose on one UTC day. A count is `null` when small-cell
/// suppression withholds it: a count of fewer than `k` people (but some),
/// or a level whose change to the next day shown would be.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ReconsentDay {
    pub purpose: String,
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// People whose consent in force at the end of the day (or now, today) had expired.
    pub expired: Option<i64>,
    /// People whose consent in force then was given under a notice below the purpose's minimum.
    pub stale_notice: Option<i64>,
    /// Checks that answered `ask_again` that day.
    pub asked: Option<i64>,
    /// Privacy links those checks issued.
    pub links_issued: Option<i64>,
    /// Consents granted that day after a lapsed one (expired or stale notice), by any channel.
    pub came_back: Option<i64>,
    /// Whether a count of the day is withheld.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

/// The re-consent picture over the last `days` days.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ReconsentReport {
    /// The first and last day covered.
    pub from: String,
    pub to: String,
    /// Per purpose (by key), per day (oldest first).
    pub days: Vec<ReconsentDay>,
    /// The minimum cell size `k` the counts were released under.
    pub min_cell: u64,
}

/// One purpose's day with every count, before small-cell suppression.
#[derive(Debug, Clone, Default)]
struct DayCounts {
    expired: i64,
    stale_notice: i64,
    asked: i64,
    links_issued: i64,
    came_back: i64,
}

/// The days of one purpose, oldest first, as released under `k`. The
/// levels (expired, stale notice) are released walking back from today so
/// that no two released days differ by fewer than `k` people (today's is
/// the legal-basis map's, released on its own); the flows (asks, links,
/// returns) each day on its own. The same days are released whatever the
/// window asked for, so two windows tell nothing one does not.
fn release_days(purpose: &str, days: Vec<(String, DayCounts)>, k: MinCell) -> Vec<ReconsentDay> {
    let levels = |pick: fn(&DayCounts) -> i64| -> Vec<bool> {
        let values: Vec<u64> = days.iter().map(|(_, c)| count(pick(c))).collect();
        release_levels(&values, k)
    };
    let expired = levels(|c| c.expired);
    let stale = levels(|c| c.stale_notice);
    let flow = |value: i64| k.allows(count(value)).then_some(value);
    days.into_iter()
        .enumerate()
        .map(|(index, (day, c))| {
            let row = ReconsentDay {
                purpose: purpose.to_owned(),
                day,
                expired: expired[index].then_some(c.expired),
                stale_notice: stale[index].then_some(c.stale_notice),
                asked: flow(c.asked),
                links_issued: flow(c.links_issued),
                came_back: flow(c.came_back),
                suppressed: false,
            };
            let suppressed = [
                row.expired,
                row.stale_notice,
                row.asked,
                row.links_issued,
                row.came_back,
            ]
            .iter()
            .any(Option::is_none);
            ReconsentDay { suppressed, ..row }
        })
        .collect()
}

/// The report of the last `days` days (today included), every registered
/// purpose with every day, zeros included.
pub async fn report(state: &AppState, days: u32) -> Result<ReconsentReport, ServiceError> {
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ServiceError::invalid(
            "days",
            format!("must be between 1 and {MAX_DAYS}"),
        ));
    }
    let now = state.store.now();
    let today = now.date_naive();
    let first = today - Duration::days(i64::from(days) - 1);
    let dates: Vec<NaiveDate> = first.iter_days().take(days as usize).collect();
    let start_of = |day: NaiveDate| -> DateTime<Utc> { day.and_time(NaiveTime::MIN).and_utc() };
    let label = |day: NaiveDate| day.format("%Y-%m-%d").to_string();

    let purposes: Vec<String> = state
        .store
        .list_purposes()
        .await?
        .into_iter()
        .map(|p| p.key.to_string())
        .collect();
    let mut table: BTreeMap<(String, String), DayCounts> = BTreeMap::new();
    for purpose in &purposes {
        for day in &dates {
            table.insert((purpose.clone(), label(*day)), DayCounts::default());
        }
    }
    for day in &dates {
        let end = (start_of(*day) + Duration::days(1) - Duration::microseconds(1)).min(now);
        for need in state.store.legal_basis_map(end).await?.reconsent {
            if let Some(row) = table.get_mut(&(need.purpose, label(*day))) {
                row.expired = need.expired;
                row.stale_notice = need.stale_notice;
            }
        }
    }
    for asks in state
        .store
        .reconsent_asks(&label(first), &label(today))
        .await?
    {
        if let Some(row) = table.get_mut(&(asks.purpose, asks.day)) {
            row.asked = asks.asked;
            row.links_issued = asks.links_issued;
        }
    }
    let window_end = start_of(today) + Duration::days(1);
    for (purpose, at) in state
        .store
        .reconsent_returns(start_of(first), window_end)
        .await?
    {
        if let Some(row) = table.get_mut(&(purpose, label(at.date_naive()))) {
            row.came_back += 1;
        }
    }
    let mut by_purpose: BTreeMap<String, Vec<(String, DayCounts)>> = BTreeMap::new();
    for ((purpose, day), counts) in table {
        by_purpose.entry(purpose).or_default().push((day, counts));
    }
    Ok(ReconsentReport {
        from: label(first),
        to: label(today),
        days: by_purpose
            .into_iter()
            .flat_map(|(purpose, days)| release_days(&purpose, days, state.min_cell))
            .collect(),
        min_cell: state.min_cell.get(),
    })
}

/// The report as CSV (one line per purpose and day), as both the API and the page hand it out.
pub fn csv(report: &ReconsentReport) -> String {
    let rows: Vec<pilotgate_dashboards::ReconsentRow> = report
        .days
        .iter()
        .map(|d| pilotgate_dashboards::ReconsentRow {
            purpose: d.purpose.clone(),
            day: d.day.clone(),
            expired: released(d.expired),
            stale_notice: released(d.stale_notice),
            asked: released(d.asked),
            links_issued: released(d.links_issued),
            came_back: released(d.came_back),
        })
        .collect();
    pilotgate_dashboards::reconsent_csv(&rows)
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A released count as the page and the CSV show it.
pub fn released(value: Option<i64>) -> pilotgate_dashboards::Count {
    pilotgate_dashboards::Count::released(value.map(count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_expiry_or_a_stale_notice_asks_again() {
        for reason in Reason::ALL {
            assert_eq!(
                asks_again(&Eligibility::Ineligible(reason)),
                matches!(reason, Reason::Expired | Reason::StaleNotice),
                "{reason:?}"
            );
        }
    }
}
