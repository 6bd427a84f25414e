//! The `pilotgate` command line: one subcommand per job, errors as one line on stderr.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pilotgate_domain::{Actor, Role};
use pilotgate_store::NewToken;

use crate::anchor::{Anchor, AnchorFile};
use crate::config::{Config, redact_url};
use crate::demo::DemoOptions;
use crate::export::export_experiment_with;
use crate::import::import_consents;
use crate::service::tokens::issue_token;
use crate::startup::{Application, open_store, open_store_with_keys};
use crate::telemetry;
use pilotgate_analysis::export::FileFormat;

/// pilotgate: personalization pilots on exactly the people you may lawfully use, with the proof.
#[derive(Debug, Parser)]
#[command(name = "pilotgate", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API (migrates the database first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create, list or revoke API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Work with the consent ledger.
    #[command(subcommand)]
    Consents(ConsentsCommand),
    /// Export a pilot's assignments and events, pseudonymized, in the
    /// `pilotgate analyze` input format (withdrawn and erased subjects left out).
    Export {
        /// The pilot's key.
        #[arg(long)]
        experiment: String,
        /// The folder to write assignments.EXT and events.EXT into (created if missing).
        #[arg(long)]
        out: std::path::PathBuf,
        /// csv or parquet.
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
        /// An approved export request of the pilot (counts as one of its downloads).
        #[arg(
            long,
            required_unless_present = "break_glass",
            conflicts_with = "break_glass"
        )]
        export_id: Option<String>,
        /// Export without an approved request, for this reason: audited
        /// first and shown in red to compliance.
        #[arg(long, value_name = "REASON")]
        break_glass: Option<String>,
        /// Also write covariate.EXT: the primary metric over each subject's
        /// events in this many days before its assignment (in the other
        /// pilots of the purpose), the results' CUPED covariate, for
        /// `pilotgate analyze --covariate`.
        #[arg(long, value_name = "DAYS")]
        covariate_days: Option<u32>,
    },
    /// Write a pilot's scale-decision memo (the page `/ui/experiments/KEY/memo`)
    /// to an HTML file, audited first.
    Memo {
        /// The pilot's key.
        #[arg(long)]
        experiment: String,
        /// The HTML file to create (an existing file is never replaced).
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Analyse an export offline: per-variant statistics, SRM, and each variant
    /// against the control (the contract is shared/design/ANALYZE.md).
    Analyze(AnalyzeArgs),
    /// Check the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Run a whole pilot end to end through the HTTP API of a server it starts:
    /// consent inventory, design, approval, simulated days of traffic with a
    /// known true lift, withdrawals, an erasure; then print the dashboard
    /// address, sign-in tokens, the estimate beside the true lift, the
    /// decision and who was eligible. Keeps serving until Ctrl-C unless --exit.
    Demo(DemoArgs),
    /// Check consent receipts that the consent form handed out.
    #[command(subcommand)]
    Receipt(ReceiptCommand),
    /// Purge the raw data of pilots stopped longer ago than their retention, keeping their results.
    Purge(crate::purge_job::PurgeArgs),
    /// The aggregates results are read from (maintained as data is written).
    #[command(subcommand)]
    Aggregates(AggregatesCommand),
}

#[derive(Debug, Subcommand)]
enum AggregatesCommand {
    /// Recompute every pilot's aggregates from its raw assignments and
    /// events (after rows were written around pilotgate, e.g. a restore).
    Rebuild,
    /// Compare a pilot's maintained aggregates with a recomputation; exit 1
    /// and print each row that differs.
    Check {
        /// The pilot's key.
        #[arg(long)]
        experiment: String,
    },
}

#[derive(Debug, Subcommand)]
enum ReceiptCommand {
    /// Verify a receipt file (JWS) against the pseudonym key ring; exit 1 when it does not verify.
    Verify {
        /// The receipt file, e.g. consent-receipt-<id>.jws.
        file: std::path::PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct DemoArgs {
    /// People in the consent inventory.
    #[arg(long, default_value_t = 50_000)]
    subjects: usize,
    /// Seeds the simulated population (the same seed gives the same people).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The treatment's true relative lift of the purchase rate (0.2 is +20%).
    #[arg(
        long = "true-lift",
        default_value_t = 0.2,
        allow_negative_numbers = true
    )]
    true_lift: f64,
    /// Simulated days of the pilot.
    #[arg(long, default_value_t = 14)]
    days: u32,
    /// The database: created if missing, reused (with a new pilot) if present.
    #[arg(long, default_value = "sqlite://pilotgate-demo.db")]
    db: String,
    /// Where the server listens (default: PILOTGATE_BIND or 127.0.0.1:8080).
    #[arg(long)]
    bind: Option<String>,
    /// Stop the server and exit once the summary is printed.
    #[arg(long)]
    exit: bool,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it once on stdout (only its hash is stored).
    Create {
        /// admin, marketer, analyst, compliance or ingest.
        #[arg(long)]
        role: Role,
        /// Who holds it, e.g. `crm-ingest` or `dana`; a name holds at most one token per role,
        /// and separation of duties compares names.
        #[arg(long)]
        name: String,
    },
    /// List tokens (names, roles, dates; never the tokens).
    List,
    /// Revoke a token by name; it stops working at once.
    Revoke {
        /// The token's name.
        name: String,
        /// Which of the name's tokens, when it holds tokens for several roles.
        #[arg(long)]
        role: Option<Role>,
    },
}

#[derive(Debug, clap::Args)]
struct AnalyzeArgs {
    /// Assignments: subject,variant,assigned_at (.csv or .parquet).
    #[arg(long)]
    assignments: std::path::PathBuf,
    /// Events: subject,event,value,occurred_at (.csv or .parquet).
    #[arg(long)]
    events: std::path::PathBuf,
    /// The event name of the metric.
    #[arg(long)]
    metric: String,
    #[arg(long, value_enum, default_value_t = KindArg::Binary)]
    kind: KindArg,
    #[arg(long, value_enum, default_value_t = MethodArg::Frequentist)]
    method: MethodArg,
    /// The control variant.
    #[arg(long, default_value = "control")]
    control: String,
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// The sequential method's tuning parameter N*.
    #[arg(long, default_value_t = 5000.0)]
    tuning: f64,
    /// CUPED pre-period value per subject: subject,value (a missing subject has 0).
    #[arg(long)]
    covariate: Option<std::path::PathBuf>,
    /// Expected split for the SRM check, e.g. control=1,v1=1 (default: equal).
    #[arg(long)]
    weights: Option<String>,
    /// Attribution window in hours after the assignment (default: none).
    #[arg(long = "window-hours")]
    window_hours: Option<f64>,
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    format: FormatArg,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum KindArg {
    Binary,
    Sum,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum MethodArg {
    Frequentist,
    Sequential,
    Bayesian,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    Json,
    Table,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    Csv,
    Parquet,
}

#[derive(Debug, Subcommand)]
enum ConsentsCommand {
    /// Import a CSV consent inventory (header row; columns user_id, purpose,
    /// basis, status, notice_id, notice_version, collected_at and optionally
    /// source_channel, source_method, effective_from, expires_at, proof_ref).
    /// Bad rows are reported and skipped; importing the same file again adds nothing.
    Import {
        /// The CSV file.
        file: std::path::PathBuf,
        /// Exit with status 1 when any row was invalid (good rows are still stored).
        #[arg(long)]
        strict: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Walk the chain with the audit key and check it against its newest
    /// anchor; exit 1 and name the first bad (or first missing) entry.
    Verify {
        /// The anchor file to check against (default: the configured one,
        /// `pilotgate.anchor` beside the audit key).
        #[arg(long)]
        anchor: Option<std::path::PathBuf>,
    },
    /// Record the chain's head in the anchor file now and print the anchor
    /// line on stdout (to keep a copy elsewhere too).
    Anchor,
}

/// Parses the command line, runs the command and turns any error into one line and exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The demo makes tens of thousands of requests: one log line each would bury its output.
    let default_level = match cli.command {
        Command::Demo(_) => "warn",
        _ => "info",
    };
    telemetry::init(config.log_format, default_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> Result<ExitCode, String> {
    match command {
        Command::Serve => {
            let purge_every = crate::purge_job::interval_from_env()?;
            let proof_days = crate::purge_job::proof_keeping_days_from_env()?;
            let application = Application::build(&config)
                .await
                .map_err(|e| e.to_string())?;
            application.schedule_purge(purge_every, proof_days);
            let host = config
                .bind
                .rsplit_once(':')
                .map_or(config.bind.as_str(), |(host, _)| host);
            tracing::info!(
                database = %redact_url(&config.database_url),
                address = %format!(
                    "{}://{host}:{}",
                    if config.serves_https() { "https" } else { "http" },
                    application.port()
                ),
                port = application.port(),
                "pilotgate is serving"
            );
            application
                .run_until_stopped()
                .await
                .map_err(|e| format!("the server failed: {e}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Aggregates(command) => {
            let store = open_store(&config.database_url)
                .await
                .map_err(|e| e.to_string())?;
            match command {
                AggregatesCommand::Rebuild => {
                    let started = std::time::Instant::now();
                    let pilots = store
                        .rebuild_aggregates()
                        .await
                        .map_err(|e| e.to_string())?;
                    eprintln!(
                        "rebuilt the aggregates of {pilots} pilots in {:.1} s",
                        started.elapsed().as_secs_f64()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                AggregatesCommand::Check { experiment } => {
                    let drift = store
                        .aggregate_drift(&experiment)
                        .await
                        .map_err(|e| e.to_string())?;
                    if drift.is_empty() {
                        eprintln!("the aggregates of {experiment} equal a recomputation");
                        return Ok(ExitCode::SUCCESS);
                    }
                    for line in &drift {
                        println!("{line}");
                    }
                    eprintln!(
                        "{} rows of {experiment} differ from a recomputation",
                        drift.len()
                    );
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Migrate => {
            open_store(&config.database_url)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("migrations applied to {}", redact_url(&config.database_url));
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(command) => {
            let (store, _) = open_store_with_keys(&config)
                .await
                .map_err(|e| e.to_string())?;
            let outcome = run_token(command, &store).await;
            anchor_after(&config, &store).await;
            outcome
        }
        Command::Consents(ConsentsCommand::Import { file, strict }) => {
            let (store, keys) = open_store_with_keys(&config)
                .await
                .map_err(|e| e.to_string())?;
            let summary = import_consents(&file, &store, &keys, &mut std::io::stderr()).await;
            anchor_after(&config, &store).await;
            let summary = summary.map_err(|e| e.to_string())?;
            eprintln!(
                "imported {}: {} rows, {} stored, {} already present, {} invalid (skipped)",
                file.display(),
                summary.rows,
                summary.stored,
                summary.duplicates,
                summary.invalid
            );
            Ok(if strict && summary.invalid > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Export {
            experiment,
            out,
            format,
            export_id,
            break_glass,
            covariate_days,
        } => {
            let authority = match (export_id, break_glass) {
                (Some(id), _) => crate::export::ExportAuthority::Approved(id),
                (None, Some(reason)) => crate::export::ExportAuthority::BreakGlass(reason),
                (None, None) => return Err("--export-id or --break-glass is needed".to_owned()),
            };
            let (store, keys) = open_store_with_keys(&config)
                .await
                .map_err(|e| e.to_string())?;
            let format = match format {
                ExportFormat::Csv => FileFormat::Csv,
                ExportFormat::Parquet => FileFormat::Parquet,
            };
            let summary = export_experiment_with(
                &store,
                &keys,
                &experiment,
                &out,
                format,
                &authority,
                crate::export::ExportOptions {
                    covariate_days,
                    min_cell: config.min_cell,
                },
            )
            .await;
            anchor_after(&config, &store).await;
            let summary = summary?;
            eprintln!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Memo { experiment, out } => {
            let (store, _) = open_store_with_keys(&config)
                .await
                .map_err(|e| e.to_string())?;
            let summary =
                crate::export::write_memo(&store, &experiment, &out, config.min_cell).await;
            anchor_after(&config, &store).await;
            eprintln!("{}", summary?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Analyze(args) => {
            let report = tokio::task::spawn_blocking(move || run_analysis(&args))
                .await
                .map_err(|e| format!("the analysis was interrupted: {e}"))??;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            let options = DemoOptions {
                subjects: args.subjects,
                seed: args.seed,
                true_lift: args.true_lift,
                days: args.days,
                database_url: args.db,
                bind: args.bind.unwrap_or_else(|| config.bind.clone()),
            };
            let demo = crate::demo::run(&options, &config).await?;
            print!("{}", demo.report);
            if args.exit {
                demo.stop().await;
            } else {
                println!();
                println!("serving on {}; press Ctrl-C to stop", demo.report.dashboard);
                demo.serve_until_stopped().await?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(AuditCommand::Verify { anchor }) => {
            let (store, _) = open_store_with_keys(&config)
                .await
                .map_err(|e| e.to_string())?;
            let anchors = AnchorFile::new(anchor.unwrap_or_else(|| config.audit_anchor_path()));
            let database = store.database_id().await.map_err(|e| e.to_string())?;
            let latest = anchors.latest(&database)?;
            let report = store
                .verify_audit_chain(latest.as_ref().map(Anchor::chain_head))
                .await
                .map_err(|e| e.to_string())?;
            let anchored = match &latest {
                Some(a) => format!(
                    "; it reaches its anchor of {} ({} entries, {})",
                    a.at,
                    a.entries,
                    anchors.path().display()
                ),
                None => format!(
                    "; no anchor of this database in {} yet, so a cut tail cannot be seen",
                    anchors.path().display()
                ),
            };
            match report.first_bad_id {
                None => {
                    println!(
                        "audit chain ok: {} entries verified with the audit key{anchored}",
                        report.entries
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Some(id) => {
                    println!(
                        "audit chain broken at entry {id}: {} ({} entries read)",
                        report.problem.unwrap_or_default(),
                        report.entries
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Purge(args) => crate::purge_job::run_cli(args, &config).await,
        Command::Receipt(ReceiptCommand::Verify { file }) => {
            // Read only: no database, and no key file made where none is.
            let keys = crate::keys::read_key_ring(&config).map_err(|e| e.to_string())?;
            println!("{}", crate::receipts::verify_file(&file, &keys)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(AuditCommand::Anchor) => {
            let (store, _) = open_store_with_keys(&config)
                .await
                .map_err(|e| e.to_string())?;
            let anchors = AnchorFile::new(config.audit_anchor_path());
            let anchor = match anchors.anchor_now(&store).await? {
                Some(anchor) => anchor,
                None => {
                    let database = store.database_id().await.map_err(|e| e.to_string())?;
                    anchors.latest(&database)?.ok_or_else(|| {
                        "the anchor file holds no anchor of this database".to_owned()
                    })?
                }
            };
            println!(
                "{}",
                serde_json::to_string(&anchor).map_err(|e| e.to_string())?
            );
            eprintln!(
                "anchored {} audit entries in {}",
                anchor.entries,
                anchors.path().display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Anchors the audit chain after a command that wrote to it; a failure is a
/// warning (the command itself succeeded).
pub(crate) async fn anchor_after(config: &Config, store: &pilotgate_store::Store) {
    if let Err(error) = AnchorFile::new(config.audit_anchor_path())
        .anchor_now(store)
        .await
    {
        eprintln!("warning: {error}");
    }
}

async fn run_token(
    command: TokenCommand,
    store: &pilotgate_store::Store,
) -> Result<ExitCode, String> {
    match command {
        TokenCommand::Create { role, name } => {
            if name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(
                    "the token name must be 1 to 64 letters, digits, '-', '_' or '.'".to_owned(),
                );
            }
            let token = issue_token();
            let new = NewToken {
                name: &name,
                role,
                token_id: &token.token_id,
                secret_hash: &token.secret_hash,
            };
            store
                .create_token(&new, &Actor::operator())
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "created token '{name}' with role {role}; it is shown once, below: store it now"
            );
            println!("{}", token.reveal());
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::List => {
            let tokens = store.list_tokens().await.map_err(|e| e.to_string())?;
            println!("{:<32} {:<11} {:<25} revoked", "name", "role", "created");
            for token in tokens {
                let revoked = token
                    .revoked_at
                    .map_or_else(|| "-".to_owned(), |at| at.to_rfc3339());
                println!(
                    "{:<32} {:<11} {:<25} {revoked}",
                    token.name,
                    token.role,
                    token.created_at.to_rfc3339()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { name, role } => {
            let revoked = store
                .revoke_token(&name, role, &Actor::operator())
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("revoked the {} token of '{name}'", revoked.role);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs `pilotgate analyze` and returns what to print.
fn run_analysis(args: &AnalyzeArgs) -> Result<String, String> {
    use pilotgate_analysis::pipeline::{Outcome, PipelineSpec};
    use pilotgate_analysis::report::{AnalyzeOptions, analyze};
    use pilotgate_analysis::stats::{Method, Prior};

    if args
        .window_hours
        .is_some_and(|h| !(h.is_finite() && h > 0.0))
    {
        return Err("--window-hours must be a positive number of hours".to_owned());
    }
    if !(args.tuning.is_finite() && args.tuning > 0.0) {
        return Err("--tuning must be a positive number".to_owned());
    }
    let weights = match &args.weights {
        None => Vec::new(),
        Some(text) => text
            .split(',')
            .map(|pair| {
                let (name, weight) = pair.split_once('=').ok_or(())?;
                Ok((
                    name.trim().to_owned(),
                    weight.trim().parse::<f64>().map_err(|_| ())?,
                ))
            })
            .collect::<Result<Vec<_>, ()>>()
            .map_err(|_| {
                "--weights: expected NAME=WEIGHT pairs separated by commas, e.g. control=1,v1=1"
                    .to_owned()
            })?,
    };
    let spec = PipelineSpec {
        assignments: &args.assignments,
        events: &args.events,
        covariate: args.covariate.as_deref(),
        metric: &args.metric,
        outcome: match args.kind {
            KindArg::Binary => Outcome::Binary,
            KindArg::Sum => Outcome::Sum,
        },
        window_hours: args.window_hours,
    };
    let options = AnalyzeOptions {
        method: match args.method {
            MethodArg::Frequentist => Method::Frequentist,
            MethodArg::Sequential => Method::Sequential {
                tuning: args.tuning,
            },
            MethodArg::Bayesian => Method::Bayesian { prior: Prior::Flat },
        },
        control: args.control.clone(),
        alpha: args.alpha,
        weights,
    };
    let report = analyze(&spec, &options).map_err(|e| e.to_string())?;
    Ok(match args.format {
        FormatArg::Json => serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?,
        FormatArg::Table => report.table(),
    })
}
