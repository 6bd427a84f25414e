//! `pilotgate demo`: a whole pilot on the embedded default, end to end. It
//! opens (or reuses) a database, starts the real server on it, and drives its
//! HTTP API like the company's systems and people would: compliance registers
//! the purpose, the CRM imports a consent inventory, a marketer designs a
//! pilot, a compliance officer approves it, the website assigns visitors and
//! sends their purchases over simulated days with a known true lift, some
//! subjects withdraw, one asks for erasure. Then it reads the results and the
//! eligibility report through the API and checks every answer the server gave
//! against what the simulated population implies.
//!
//! The days are simulated by moving the store's clock (`Store::simulate_time`);
//! at the end it is back on the system clock, so the pilot's data end today.

mod client;
mod pilot;
mod population;
mod summary;

use actix_web::dev::ServerHandle;
use chrono::{TimeDelta, Utc};
use pilotgate_domain::{Actor, Role};
use pilotgate_store::{NewToken, Store};

use crate::config::{Config, redact_url};
use crate::service::tokens::issue_token;
use crate::startup::{Application, open_store_with_keys};

pub use summary::{DemoReport, Estimate};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// People in the consent inventory (each visits once, some come back to buy).
    pub subjects: usize,
    /// Seeds the simulated population.
    pub seed: u64,
    /// The treatment's true relative lift of the purchase rate.
    pub true_lift: f64,
    /// Simulated days of the pilot.
    pub days: u32,
    /// The database: `sqlite://FILE` (created if missing) or `postgres://…`.
    pub database_url: String,
    /// Where the server listens.
    pub bind: String,
}

impl DemoOptions {
    /// The largest population the demo simulates.
    pub const MAX_SUBJECTS: usize = 1_000_000;

    fn check(&self) -> Result<(), String> {
        if !(100..=Self::MAX_SUBJECTS).contains(&self.subjects) {
            return Err(format!(
                "--subjects must be between 100 and {}",
                Self::MAX_SUBJECTS
            ));
        }
        if !(self.true_lift.is_finite() && self.true_lift > -1.0 && self.true_lift <= 5.0) {
            return Err(
                "--true-lift must be a relative lift above -1 and at most 5 (0.2 is +20%)"
                    .to_owned(),
            );
        }
        // Every consent in the inventory stays valid for at least 36 days.
        if !(2..=30).contains(&self.days) {
            return Err("--days must be between 2 and 30".to_owned());
        }
        Ok(())
    }
}

/// The tokens the demo created, one per role, shown once.
#[derive(Clone)]
pub struct DemoTokens {
    pub marketer: String,
    pub compliance: String,
    pub analyst: String,
    pub ingest: String,
    pub admin: String,
}

impl std::fmt::Debug for DemoTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DemoTokens([redacted])")
    }
}

/// A demo whose pilot has run and whose server is still serving.
#[derive(Debug)]
pub struct RunningDemo {
    pub report: DemoReport,
    server: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningDemo {
    /// Stops the server gracefully and closes the database.
    pub async fn stop(self) {
        self.server.stop(true).await;
        let _ = self.task.await;
    }

    /// Serves until Ctrl-C (or SIGTERM), then closes the database.
    pub async fn serve_until_stopped(self) -> Result<(), String> {
        match self.task.await {
            Ok(outcome) => outcome.map_err(|e| format!("the server failed: {e}")),
            Err(e) => Err(format!("the server failed: {e}")),
        }
    }
}

/// Runs the whole pilot against a server it starts, and returns with the
/// server still running. Progress goes to stderr, one line per simulated day.
pub async fn run(options: &DemoOptions, config: &Config) -> Result<RunningDemo, String> {
    options.check()?;
    let mut server_config = config.clone();
    server_config.database_url = options.database_url.clone();
    server_config.bind = options.bind.clone();
    let (store, keys) = open_store_with_keys(&server_config)
        .await
        .map_err(|e| e.to_string())?;
    let run = next_run(&store).await?;
    eprintln!(
        "demo run {run}: {} subjects over {} simulated days (seed {}, true lift {:+.1}%) on {}",
        options.subjects,
        options.days,
        options.seed,
        options.true_lift * 100.0,
        redact_url(&options.database_url)
    );
    // Bound before anything is written, so that a busy port leaves nothing behind.
    let application =
        Application::with_store(&server_config, store.clone(), keys).map_err(|e| e.to_string())?;
    let tokens = create_tokens(&store, run).await?;
    let host = options
        .bind
        .rsplit_once(':')
        .map_or("127.0.0.1", |(host, _)| host);
    let host = if host == "0.0.0.0" { "127.0.0.1" } else { host };
    let base = format!("http://{host}:{}", application.port());
    let server = application.handle();
    let task = tokio::spawn(application.run_until_stopped());

    let outcome = pilot::Pilot::new(options, run, &store, &tokens, &base)
        .run()
        .await;
    store.simulate_time(None);
    match outcome {
        Ok(report) => Ok(RunningDemo {
            report: DemoReport {
                dashboard: format!("{base}/ui"),
                tokens: Some(tokens),
                database: redact_url(&options.database_url),
                ..report
            },
            server,
            task,
        }),
        Err(error) => {
            server.stop(true).await;
            let _ = task.await;
            Err(error)
        }
    }
}

/// The number of this demo run in the database: one more than any earlier
/// run left behind, as a pilot `demo-pilot-N` or tokens `demoN-…` (a run that
/// failed half-way may have left only its tokens). Earlier runs stay as they were.
async fn next_run(store: &Store) -> Result<u32, String> {
    let experiments = store.list_experiments().await.map_err(|e| e.to_string())?;
    let tokens = store.list_tokens().await.map_err(|e| e.to_string())?;
    let pilots = experiments.iter().filter_map(|e| {
        e.design
            .key
            .as_str()
            .strip_prefix("demo-pilot-")?
            .parse::<u32>()
            .ok()
    });
    let holders = tokens.iter().filter_map(|t| {
        let (run, _) = t.name.strip_prefix("demo")?.split_once('-')?;
        run.parse::<u32>().ok()
    });
    Ok(pilots.chain(holders).max().unwrap_or(0) + 1)
}

/// One token per role, made the way `pilotgate token create` makes them; the
/// names carry the run so that a reused database takes new ones.
async fn create_tokens(store: &Store, run: u32) -> Result<DemoTokens, String> {
    let issue = async |role: Role, person: &str| -> Result<String, String> {
        let token = issue_token();
        let name = format!("demo{run}-{person}");
        store
            .create_token(
                &NewToken {
                    name: &name,
                    role,
                    token_id: &token.token_id,
                    secret_hash: &token.secret_hash,
                },
                &Actor::operator(),
            )
            .await
            .map_err(|e| format!("cannot create the demo's {role} token: {e}"))?;
        Ok(token.reveal().to_owned())
    };
    Ok(DemoTokens {
        marketer: issue(Role::Marketer, "mia").await?,
        compliance: issue(Role::Compliance, "dana").await?,
        analyst: issue(Role::Analyst, "ari").await?,
        ingest: issue(Role::Ingest, "shop").await?,
        admin: issue(Role::Admin, "admin").await?,
    })
}

/// Midnight (UTC) `days` days before today: the pilot's first simulated day,
/// so that its last day is yesterday.
fn first_day(days: u32) -> chrono::DateTime<Utc> {
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or_else(Utc::now);
    today - TimeDelta::days(i64::from(days))
}
