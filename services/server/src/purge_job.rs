//! `pilotgate purge` and the same job scheduled inside `serve`: both call
//! [`crate::service::purge::purge_expired`].

use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pilotgate_domain::Actor;
use pilotgate_store::Store;

use crate::config::Config;
use crate::service::purge::{LedgerReduction, PilotPurge, purge_expired, reduce_ledger};
use crate::startup::open_store_with_keys;

/// Arguments of `pilotgate purge`.
#[derive(Debug, clap::Args)]
pub struct PurgeArgs {
    /// Purge as if it were this instant (RFC 3339; default now).
    #[arg(long = "as-of")]
    as_of: Option<String>,
    /// Print what would be purged (per pilot: assignments, events) and change nothing.
    #[arg(long = "dry-run")]
    dry_run: bool,
}

fn line(outcome: &PilotPurge, dry_run: bool) -> String {
    let verb = if dry_run {
        "would purge"
    } else if outcome.purged {
        "purged"
    } else {
        "skipped (purged meanwhile)"
    };
    format!(
        "{verb} {}: {} assignments, {} events (stopped {}, retention {} days)",
        outcome.key,
        outcome.counts.assignments,
        outcome.counts.events,
        outcome.stopped_at.format("%Y-%m-%d"),
        outcome.retention_days
    )
}

fn ledger_line(ledger: &LedgerReduction, dry_run: bool, proof_days: u32) -> String {
    format!(
        "{} the consent records of {} subjects with no purpose left, last recorded over {proof_days} days ago: {} records",
        if dry_run { "would reduce" } else { "reduced" },
        ledger.subjects,
        ledger.records
    )
}

/// `PILOTGATE_PROOF_KEEPING_DAYS`: how long after a subject's last record
/// its full consent records are kept once no purpose is left (default 1095).
pub fn proof_keeping_days_from_env() -> Result<u32, String> {
    match std::env::var("PILOTGATE_PROOF_KEEPING_DAYS") {
        Ok(text) if !text.trim().is_empty() => text
            .trim()
            .parse()
            .map_err(|_| "PILOTGATE_PROOF_KEEPING_DAYS must be a whole number of days".to_owned()),
        _ => Ok(pilotgate_domain::ledger_reduction::DEFAULT_PROOF_KEEPING_DAYS),
    }
}

/// Runs `pilotgate purge`: one line per pilot on stdout, then a total on stderr.
pub async fn run_cli(args: PurgeArgs, config: &Config) -> Result<ExitCode, String> {
    let as_of = match &args.as_of {
        None => Utc::now(),
        Some(text) => DateTime::parse_from_rfc3339(text.trim())
            .map_err(|_| "--as-of must be an RFC 3339 instant, e.g. 2027-01-01T00:00:00Z")?
            .with_timezone(&Utc),
    };
    let (store, _) = open_store_with_keys(config)
        .await
        .map_err(|e| e.to_string())?;
    let dry_run = args.dry_run;
    let outcome = purge_expired(&store, &Actor::operator(), as_of, dry_run, |p| {
        println!("{}", line(p, dry_run));
    })
    .await;
    let proof_days = proof_keeping_days_from_env()?;
    let ledger = match outcome {
        Ok(_) => Some(reduce_ledger(&store, &Actor::operator(), as_of, proof_days, dry_run).await),
        Err(_) => None,
    };
    if !dry_run {
        crate::cli::anchor_after(config, &store).await;
    }
    let done = outcome.map_err(|e| e.to_string())?;
    if let Some(ledger) = ledger {
        let ledger = ledger.map_err(|e| e.to_string())?;
        if ledger.subjects > 0 {
            println!("{}", ledger_line(&ledger, dry_run, proof_days));
        }
    }
    eprintln!(
        "{} {} pilot(s) stopped past their retention as of {}",
        if dry_run { "would purge" } else { "purged" },
        done.len(),
        as_of.to_rfc3339()
    );
    Ok(ExitCode::SUCCESS)
}

/// `PILOTGATE_PURGE_INTERVAL`: how often `serve` purges, as seconds or with
/// a unit (`30s`, `15m`, `6h`, `1d`; default `1d`); `off` or `0` never.
pub fn interval_from_env() -> Result<Option<Duration>, String> {
    match std::env::var("PILOTGATE_PURGE_INTERVAL") {
        Ok(text) if !text.trim().is_empty() => parse_interval(&text),
        _ => Ok(Some(Duration::from_secs(86_400))),
    }
}

fn parse_interval(text: &str) -> Result<Option<Duration>, String> {
    let text = text.trim();
    if text == "off" {
        return Ok(None);
    }
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let error =
        || format!("PILOTGATE_PURGE_INTERVAL must be like 30s, 15m, 6h, 1d or off, not '{text}'");
    let n: u64 = number.parse().map_err(|_| error())?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3_600,
        "d" => n * 86_400,
        _ => return Err(error()),
    };
    Ok((seconds > 0).then(|| Duration::from_secs(seconds)))
}

/// How long `serve` waits after start-up before its first purge.
const START_DELAY: Duration = Duration::from_secs(60);

/// Purges every `interval` inside `serve`, the first time `START_DELAY`
/// (or the interval, when shorter) after start-up.
pub fn spawn_purging(store: Store, interval: Duration, proof_days: u32) {
    tokio::spawn(async move {
        tokio::time::sleep(START_DELAY.min(interval)).await;
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let outcome = purge_expired(&store, &Actor::retention_job(), store.now(), false, |p| {
                tracing::info!(
                    experiment = %p.key,
                    assignments = p.counts.assignments,
                    events = p.counts.events,
                    purged = p.purged,
                    "retention purge"
                );
            })
            .await;
            if let Err(error) = outcome {
                tracing::error!(%error, "the retention purge failed");
                continue;
            }
            match reduce_ledger(
                &store,
                &Actor::retention_job(),
                store.now(),
                proof_days,
                false,
            )
            .await
            {
                Ok(done) if done.subjects > 0 => tracing::info!(
                    subjects = done.subjects,
                    records = done.records,
                    "ledger reduction"
                ),
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "the ledger reduction failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_with_their_units() {
        assert_eq!(parse_interval("90").unwrap(), Some(Duration::from_secs(90)));
        assert_eq!(
            parse_interval("15m").unwrap(),
            Some(Duration::from_secs(900))
        );
        assert_eq!(
            parse_interval("1d").unwrap(),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(parse_interval("off").unwrap(), None);
        assert_eq!(parse_interval("0").unwrap(), None);
        assert!(parse_interval("1w").is_err());
        assert!(parse_interval("h").is_err());
    }
}
