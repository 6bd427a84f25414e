//! `pilotgate consents import`, black-box: bad rows reported and skipped, good
//! rows stored, re-import adds nothing; and raw ids never reach the database or logs.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use pilotgate_domain::Actor;
use pilotgate_domain::purpose::{LegalBasis, Purpose, PurposeKey};
use pilotgate_store::Dialect;
use pilotgate_store::testing::TestDb;

const BINARY: &str = env!("CARGO_BIN_EXE_pilotgate");
/// The keys `TestDb` attaches (`pilotgate_store::testing`).
const KEY: &str = "1:0404040404040404040404040404040404040404040404040404040404040404";
const AUDIT_KEY: &str = "0505050505050505050505050505050505050505050505050505050505050505";

fn pilotgate(dir: &Path, url: &str) -> Command {
    let mut command = Command::new(BINARY);
    command.current_dir(dir).stdin(Stdio::null());
    for (name, _) in std::env::vars() {
        if name.starts_with("PILOTGATE_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
        .env("PILOTGATE_DATABASE_URL", url)
        .env("PILOTGATE_PSEUDONYM_KEY", KEY)
        .env("PILOTGATE_AUDIT_KEY", AUDIT_KEY);
    command
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn register_purposes(db: &TestDb) {
    for (key, bases) in [
        ("personalize.content", vec![LegalBasis::Consent]),
        (
            "analytics.reporting.ab_testing",
            vec![LegalBasis::Consent, LegalBasis::LegitimateInterest],
        ),
    ] {
        let purpose = Purpose {
            key: PurposeKey::parse(key).unwrap(),
            description: "test".to_owned(),
            allowed_bases: bases.into_iter().collect(),
            min_notice_version: 1,
            special_category: false,
            li_assessment_ref: Some("LIA-1".to_owned()),
            contract_necessary: false,
            retention_days: 90,
        };
        db.store
            .create_purpose(&purpose, &Actor::operator())
            .await
            .unwrap();
    }
}

/// `rows` rows, every hundredth one bad in one of five ways; returns the CSV and the bad line numbers.
fn inventory(rows: usize) -> (String, Vec<(usize, &'static str)>) {
    let mut csv = String::from(
        "user_id,purpose,basis,status,notice_id,notice_version,source_channel,source_method,collected_at,proof_ref\n",
    );
    let mut bad = Vec::new();
    for i in 0..rows {
        let line = i + 2;
        let user = format!("user{i}@example.com");
        let (purpose, basis) = if i % 3 == 0 {
            ("analytics.reporting.ab_testing", "legitimate_interest")
        } else {
            ("personalize.content", "consent")
        };
        let row = if i % 100 == 99 {
            match (i / 100) % 5 {
                0 => {
                    bad.push((line, "collected_at"));
                    format!("{user},{purpose},{basis},granted,pn,2,banner,click,not-a-time,\n")
                }
                1 => {
                    bad.push((line, "purpose"));
                    format!(
                        "{user},no.such_purpose,{basis},granted,pn,2,banner,click,2026-01-08T20:50:59Z,\n"
                    )
                }
                2 => {
                    bad.push((line, "status"));
                    format!(
                        "{user},{purpose},{basis},perhaps,pn,2,banner,click,2026-01-08T20:50:59Z,\n"
                    )
                }
                3 => {
                    bad.push((line, "notice_version"));
                    format!(
                        "{user},{purpose},{basis},granted,pn,two,banner,click,2026-01-08T20:50:59Z,\n"
                    )
                }
                _ => {
                    bad.push((line, "fields"));
                    format!("{user},{purpose},{basis},granted\n")
                }
            }
        } else {
            format!(
                "{user},{purpose},{basis},granted,pn,2,banner,click,2026-01-08T20:{:02}:{:02}Z,cmp://r/{i}\n",
                (i / 60) % 60,
                i % 60
            )
        };
        csv.push_str(&row);
    }
    (csv, bad)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200000_row_inventory_with_one_percent_bad_rows_imports_every_good_row_once() {
    import_story(Dialect::Sqlite, 200_000).await;
}

/// The same story on PostgreSQL, smaller to keep CI short (bench/import.sh runs the full size).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inventory_imports_the_same_way_on_postgres() {
    import_story(Dialect::Postgres, 20_000).await;
}

async fn import_story(dialect: Dialect, rows: usize) {
    let Some(db) = TestDb::new(dialect).await else {
        eprintln!("skipped: set PILOTGATE_TEST_POSTGRES_URL to run on PostgreSQL");
        return;
    };
    register_purposes(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let (csv, bad) = inventory(rows);
    let (bad_count, good_count) = (bad.len(), rows - bad.len());
    let file = dir.path().join("inventory.csv");
    std::fs::write(&file, csv).unwrap();

    let first = pilotgate(dir.path(), &db.url)
        .args(["consents", "import"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    let report = stderr(&first);
    let expected =
        format!("{rows} rows, {good_count} stored, 0 already present, {bad_count} invalid");
    assert!(
        report.contains(&expected),
        "{}",
        report.lines().last().unwrap_or_default()
    );
    for (line, column) in &bad {
        let prefix = format!("{}:{line}: ", file.display());
        let reported = report
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("line {line} was not reported"));
        if *column == "fields" {
            assert!(
                reported.contains("the row has 4 fields; the header has 10"),
                "{reported}"
            );
        } else {
            assert!(
                reported.contains(&format!("column '{column}'")),
                "{reported}"
            );
        }
        assert!(
            !reported.contains("example.com"),
            "a raw id was echoed: {reported}"
        );
    }
    assert_eq!(
        report
            .lines()
            .filter(|l| l.starts_with(&format!("{}:", file.display())))
            .count(),
        bad_count
    );

    let map = db.store.legal_basis_map(chrono::Utc::now()).await.unwrap();
    assert_eq!(
        map.counts.iter().map(|c| c.subjects).sum::<i64>(),
        good_count as i64
    );

    let again = pilotgate(dir.path(), &db.url)
        .args(["consents", "import", "--strict"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(1),
        "--strict fails on invalid rows"
    );
    let expected =
        format!("{rows} rows, 0 stored, {good_count} already present, {bad_count} invalid");
    assert!(
        stderr(&again).contains(&expected),
        "{}",
        stderr(&again).lines().last().unwrap_or_default()
    );
    assert!(db.store.verify_audit_chain(None).await.unwrap().ok);
}

#[tokio::test]
async fn a_file_that_cannot_be_imported_is_refused_in_one_line() {
    let db = TestDb::new(Dialect::Sqlite).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let missing = pilotgate(dir.path(), &db.url)
        .args(["consents", "import", "nope.csv"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        stderr(&missing).trim().lines().count(),
        1,
        "{}",
        stderr(&missing)
    );
    assert!(
        stderr(&missing).starts_with("error: nope.csv: cannot read the file"),
        "{}",
        stderr(&missing)
    );

    let file = dir.path().join("typo.csv");
    std::fs::write(
        &file,
        "user_id,purpose,basis,status,notice_id,notice_version,colected_at\n",
    )
    .unwrap();
    let typo = pilotgate(dir.path(), &db.url)
        .args(["consents", "import"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(typo.status.code(), Some(1));
    assert!(
        stderr(&typo).contains("line 1: unknown column 'colected_at'"),
        "{}",
        stderr(&typo)
    );
}

/// Raw ids sent through the importer and the API appear nowhere in the
/// database file or in a trace-level log of the server and the importer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_ids_never_reach_the_database_or_the_logs() {
    use std::io::{BufRead, BufReader};
    let db = TestDb::new(Dialect::Sqlite).await.unwrap();
    register_purposes(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let imported = ["alice@example.com", "+49 170 1234567", "customer-4711"];
    let mut csv =
        String::from("user_id,purpose,basis,status,notice_id,notice_version,collected_at\n");
    for id in imported {
        let _ = writeln!(
            csv,
            "{id},personalize.content,consent,granted,pn,2,2026-01-08T20:50:59Z"
        );
    }
    let _ = writeln!(
        csv,
        "bad-row-user@example.com,personalize.content,consent,granted,pn,2,yesterday"
    );
    std::fs::write(dir.path().join("inventory.csv"), csv).unwrap();
    let import = pilotgate(dir.path(), &db.url)
        .env("RUST_LOG", "trace")
        .args(["consents", "import", "inventory.csv"])
        .output()
        .unwrap();
    assert!(import.status.success());
    let mut logs = stderr(&import);

    let mut server = pilotgate(dir.path(), &db.url)
        .env("RUST_LOG", "trace")
        .env("PILOTGATE_BIND", "127.0.0.1:0")
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let port: u16 = loop {
        let line = lines.next().expect("the server wrote nothing").unwrap();
        logs.push_str(&line);
        logs.push('\n');
        if let Some(rest) = line.split("port=").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    let reader =
        std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));

    let token = pilotgate_server::service::tokens::issue_token();
    db.store
        .create_token(
            &pilotgate_store::NewToken {
                name: "dpo",
                role: pilotgate_domain::Role::Compliance,
                token_id: &token.token_id,
                secret_hash: &token.secret_hash,
            },
            &Actor::operator(),
        )
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let sent_by_api = [
        "bob@example.com",
        "Bob Smith 1970-01-01",
        "alice@example.com",
    ];
    for id in sent_by_api {
        let record = serde_json::json!({"user_id": id, "purpose": "personalize.content", "basis": "consent", "status": "granted",
            "notice_id": "pn", "notice_version": 2, "source": {"channel": "app", "method": "tap"}, "collected_at": "2026-02-01T10:00:00Z"});
        let response = client
            .post(format!("{base}/consents"))
            .bearer_auth(token.reveal())
            .json(&record)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let resolved: serde_json::Value = client
            .post(format!("{base}/subjects/resolve"))
            .bearer_auth(token.reveal())
            .json(&serde_json::json!({"user_id": id}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let subject = resolved["subject"].as_str().unwrap();
        let view = client
            .get(format!("{base}/subjects/{subject}/consents"))
            .bearer_auth(token.reveal())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!view.contains(id));
    }
    // Bad input that carries a raw id must not echo it either.
    let bad = serde_json::json!({"user_id": "mallory@example.com", "purpose": "personalize.content", "basis": "consent", "status": 7});
    let refused = client
        .post(format!("{base}/consents"))
        .bearer_auth(token.reveal())
        .json(&bad)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!refused.contains("mallory"), "{refused}");
    let wrong_type = client
        .post(format!("{base}/subjects/resolve"))
        .bearer_auth(token.reveal())
        .json(&serde_json::json!({"user_id": ["mallory@example.com"]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!wrong_type.contains("mallory"), "{wrong_type}");

    std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(server.wait().unwrap().success());
    logs.push_str(&reader.join().unwrap());
    assert!(
        logs.lines().count() > 20,
        "the trace log is suspiciously short"
    );

    let mut stored = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        stored.extend(
            std::fs::read(format!("{}{suffix}", db.sqlite_file().unwrap().display()))
                .unwrap_or_default(),
        );
    }
    let stored = String::from_utf8_lossy(&stored);
    for id in imported
        .iter()
        .chain(sent_by_api.iter())
        .chain(["bad-row-user@example.com", "mallory@example.com"].iter())
    {
        assert!(!stored.contains(id), "a raw id is in the database file");
        assert!(!logs.contains(id), "a raw id is in the logs");
    }
}

/// Kills an import with SIGKILL once some of it is committed, then runs it
/// again: every good row ends up stored exactly once.
async fn killed_import_story(dialect: Dialect, rows: usize) {
    let Some(db) = TestDb::new(dialect).await else {
        eprintln!("skipped: set PILOTGATE_TEST_POSTGRES_URL to run on PostgreSQL");
        return;
    };
    register_purposes(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let (csv, bad) = inventory(rows);
    let good_count = (rows - bad.len()) as i64;
    let file = dir.path().join("inventory.csv");
    std::fs::write(&file, csv).unwrap();
    let stored = async || -> i64 {
        let map = db.store.legal_basis_map(chrono::Utc::now()).await.unwrap();
        map.counts.iter().map(|c| c.subjects).sum()
    };

    let mut child = pilotgate(dir.path(), &db.url)
        .args(["consents", "import"])
        .arg(&file)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let before_kill = loop {
        let now = stored().await;
        if now > 0 {
            break now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the import stored nothing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let at_kill = stored().await;
    assert!(
        before_kill > 0 && at_kill < good_count,
        "the kill landed mid-import ({at_kill} of {good_count} stored)"
    );

    let rerun = pilotgate(dir.path(), &db.url)
        .args(["consents", "import"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    let expected = format!(
        "{rows} rows, {} stored, {at_kill} already present, {} invalid",
        good_count - at_kill,
        bad.len()
    );
    assert!(stderr(&rerun).contains(&expected), "{}", stderr(&rerun));
    assert_eq!(stored().await, good_count);
    assert!(db.store.verify_audit_chain(None).await.unwrap().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_midway_and_run_again_stores_every_row_once_on_sqlite() {
    killed_import_story(Dialect::Sqlite, 100_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_midway_and_run_again_stores_every_row_once_on_postgres() {
    killed_import_story(Dialect::Postgres, 40_000).await;
}
