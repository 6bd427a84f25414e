//! `pilotgate demo` end to end with a small population: the real server on a
//! fresh database, driven through its HTTP API over simulated days. Every
//! answer the server gives is checked against what the simulated population
//! implies; here the test asserts that none differed, that no subject without
//! a legal basis was assigned, and that the interval covers the true lift.

use pilotgate_server::config::Config;
use pilotgate_server::demo::{self, DemoOptions, DemoReport};
use pilotgate_store::Dialect;
use pilotgate_store::testing::TestDb;

/// The keys of the tests' databases (`TestDb`), given inline, and the anchor
/// file in a temp folder kept for the whole test run.
fn config() -> Config {
    static ANCHORS: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let anchors = ANCHORS.get_or_init(|| tempfile::tempdir().expect("a temp folder"));
    Config {
        pseudonym_key: Some(format!("1:{}", "04".repeat(32))),
        audit_key: Some("05".repeat(32)),
        audit_anchor_file: Some(anchors.path().join("pilotgate.anchor")),
        ..Config::default()
    }
}

async fn play(database_url: &str, seed: u64) -> DemoReport {
    let options = DemoOptions {
        subjects: 3_000,
        seed,
        true_lift: 0.5,
        days: 7,
        database_url: database_url.to_owned(),
        bind: "127.0.0.1:0".to_owned(),
    };
    let demo = demo::run(&options, &config()).await.expect("the demo runs");
    let report = demo.report.clone();
    demo.stop().await;
    report
}

fn assert_sound(report: &DemoReport) {
    let shown = report.to_string();
    assert_eq!(report.ineligible_assigned, 0, "{shown}");
    assert_eq!(report.mismatches, 0, "{shown}");
    assert!(report.covers_true_lift(), "{shown}");
    for reason in [
        "no_record",
        "denied",
        "withdrawn",
        "objected",
        "expired",
        "stale_notice",
    ] {
        assert!(
            report.refusals.get(reason).is_some_and(|n| *n > 0),
            "no refusal for {reason}: {shown}"
        );
    }
    assert!(report.assigned_by_basis.contains_key("consent"), "{shown}");
    assert!(
        report.assigned_by_basis.contains_key("legitimate_interest"),
        "{shown}"
    );
    assert!(report.withdrawals > 0, "{shown}");
    assert_eq!(report.erased, 1, "{shown}");
    assert!(
        report
            .events_refused
            .get("no_assignment")
            .is_some_and(|n| *n > 0),
        "{shown}"
    );
    assert!(
        shown.contains("the CI covers the true lift: yes"),
        "{shown}"
    );
    assert!(shown.contains("/ui"), "{shown}");
    assert!(
        !shown.contains("-user0"),
        "a raw user id was printed: {shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_assigns_only_eligible_subjects_and_its_interval_covers_the_true_lift() {
    let folder = tempfile::tempdir().expect("a temp folder");
    let url = format!("sqlite://{}", folder.path().join("demo.db").display());
    let first = play(&url, 11).await;
    assert_eq!(first.experiment, "demo-pilot-1");
    assert_sound(&first);

    // A run that failed after making its tokens leaves only them behind.
    let store = pilotgate_store::Store::connect(&url).await.unwrap();
    store
        .attach_keys(
            &pilotgate_store::testing::test_key_ring(),
            &pilotgate_store::testing::test_audit_key(),
        )
        .await
        .unwrap();
    let token = pilotgate_server::service::tokens::issue_token();
    store
        .create_token(
            &pilotgate_store::NewToken {
                name: "demo2-mia",
                role: pilotgate_domain::Role::Marketer,
                token_id: &token.token_id,
                secret_hash: &token.secret_hash,
            },
            &pilotgate_domain::Actor::operator(),
        )
        .await
        .unwrap();
    store.close().await;
    // The same database again: another pilot beside the first, with new people.
    let second = play(&url, 12).await;
    assert_eq!(second.experiment, "demo-pilot-3");
    assert_eq!(second.ineligible_assigned, 0, "{second}");
    assert_eq!(second.mismatches, 0, "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_on_postgres_too() {
    let Some(db) = TestDb::new(Dialect::Postgres).await else {
        eprintln!("skipped: set PILOTGATE_TEST_POSTGRES_URL to run on PostgreSQL");
        return;
    };
    let report = play(&db.url, 11).await;
    assert_sound(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_refuses_options_it_cannot_simulate() {
    let options = DemoOptions {
        subjects: 10,
        seed: 1,
        true_lift: 0.2,
        days: 14,
        database_url: "sqlite:///nonexistent/demo.db".to_owned(),
        bind: "127.0.0.1:0".to_owned(),
    };
    let error = demo::run(&options, &config()).await.unwrap_err();
    assert!(error.contains("--subjects"), "{error}");
    let options = DemoOptions {
        subjects: 1_000,
        true_lift: -1.5,
        ..options
    };
    let error = demo::run(&options, &config()).await.unwrap_err();
    assert!(error.contains("--true-lift"), "{error}");
}
