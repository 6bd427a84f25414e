//! Black-box tests of the `pilotgate` binary: the commands, the server process,
//! graceful shutdown, and that no token is ever written in clear text.

use std::path::Path;

use crate::support::process::{Server, pilotgate, run, text};

use pilotgate_store::Dialect;
use pilotgate_store::testing::TestDb;

fn create_token(dir: &Path, url: &str, role: &str, name: &str) -> (String, String) {
    let output =
        run(pilotgate(dir, Some(url)).args(["token", "create", "--role", role, "--name", name]));
    assert!(output.status.success(), "{}", text(&output.stderr));
    (text(&output.stdout), text(&output.stderr))
}

#[test]
fn help_lists_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(pilotgate(dir.path(), None).arg("--help"));
    assert!(output.status.success());
    let help = text(&output.stdout);
    for command in ["serve", "migrate", "token", "audit"] {
        assert!(help.contains(command), "{help}");
    }
}

#[tokio::test]
async fn token_create_prints_the_token_alone_on_stdout_and_list_and_revoke_work() {
    let db = TestDb::new(Dialect::Sqlite).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (stdout, stderr) = create_token(dir.path(), &db.url, "ingest", "crm-ingest");
    let token = stdout.trim_end();
    assert_eq!(stdout.lines().count(), 1);
    assert!(
        token.starts_with("pgt_") && token.len() == 4 + 12 + 1 + 64,
        "{token}"
    );
    assert!(stderr.contains("shown once"), "{stderr}");
    assert!(!stderr.contains(token));

    let list = run(pilotgate(dir.path(), Some(&db.url)).args(["token", "list"]));
    let listing = text(&list.stdout);
    assert!(
        listing.contains("crm-ingest") && listing.contains("ingest"),
        "{listing}"
    );
    assert!(!listing.contains(&token[17..]));

    let revoke = run(pilotgate(dir.path(), Some(&db.url)).args(["token", "revoke", "crm-ingest"]));
    assert!(revoke.status.success());
    let again = run(pilotgate(dir.path(), Some(&db.url)).args(["token", "revoke", "crm-ingest"]));
    assert_eq!(again.status.code(), Some(1));
    let error = text(&again.stderr);
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(
        error.starts_with("error: the ingest token of 'crm-ingest' is revoked already"),
        "{error}"
    );
}

#[test]
fn a_wrong_role_or_name_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let role = run(pilotgate(dir.path(), Some(&url))
        .args(["token", "create", "--role", "root", "--name", "x"]));
    assert_eq!(role.status.code(), Some(2));
    assert!(
        text(&role.stderr).contains("unknown role 'root'"),
        "{}",
        text(&role.stderr)
    );
    let name = run(pilotgate(dir.path(), Some(&url))
        .args(["token", "create", "--role", "admin", "--name", "a b"]));
    assert_eq!(name.status.code(), Some(1));
    assert!(
        text(&name.stderr).starts_with("error: the token name must be"),
        "{}",
        text(&name.stderr)
    );
    let bad_url = run(pilotgate(dir.path(), Some("mysql://x/y")).arg("migrate"));
    assert_eq!(bad_url.status.code(), Some(1));
    assert_eq!(
        text(&bad_url.stderr).trim().lines().count(),
        1,
        "{}",
        text(&bad_url.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_the_default_sqlite_file_answers_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(pilotgate(dir.path(), None));
    assert!(
        dir.path().join("pilotgate.db").exists(),
        "the default database file was not created"
    );
    let key_file = dir.path().join("pilotgate.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        server
            .lines
            .iter()
            .any(|l| l.contains("created a new random key file")),
        "{:?}",
        server.lines
    );

    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let (exit, log, _) = server.terminate();
    assert!(exit.success(), "exit {exit:?}: {log}");
    assert!(log.contains("server stopped"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_is_ever_written_in_clear_text_to_the_database_or_the_logs() {
    let db = TestDb::new(Dialect::Sqlite).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (compliance, create_log) = create_token(dir.path(), &db.url, "compliance", "dpo");
    let (ingest, _) = create_token(dir.path(), &db.url, "ingest", "crm");
    let tokens = [compliance.trim().to_owned(), ingest.trim().to_owned()];

    let mut command = pilotgate(dir.path(), Some(&db.url));
    command.env("RUST_LOG", "trace");
    let server = Server::start(command);
    let client = reqwest::Client::new();
    let audit = server.url("/api/v1/audit");
    assert_eq!(
        client
            .get(&audit)
            .bearer_auth(&tokens[0])
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(&audit)
            .bearer_auth(&tokens[1])
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let last = if tokens[0].ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &tokens[0][..tokens[0].len() - 1]);
    assert_eq!(
        client
            .get(&audit)
            .bearer_auth(&wrong)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let (exit, log, stdout) = server.terminate();
    assert!(exit.success());
    assert!(
        log.lines().count() > 5,
        "the trace log is suspiciously short: {log}"
    );

    let mut stored = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", db.sqlite_file().unwrap().display());
        if let Ok(bytes) = std::fs::read(&path) {
            stored.extend(bytes);
        }
    }
    let stored = String::from_utf8_lossy(&stored);
    for token in tokens.iter().chain(std::iter::once(&wrong)) {
        let secret = &token[17..];
        for (place, haystack) in [
            ("database", stored.as_ref()),
            ("server log", log.as_str()),
            ("server stdout", stdout.as_str()),
            ("token create log", create_log.as_str()),
        ] {
            assert!(
                !haystack.contains(secret),
                "a token secret was found in the {place}"
            );
        }
    }
}

#[tokio::test]
async fn audit_verify_passes_on_an_untouched_chain_and_names_a_tampered_entry() {
    for dialect in [Dialect::Sqlite, Dialect::Postgres] {
        let Some(db) = TestDb::new(dialect).await else {
            eprintln!("skipped {dialect:?}: set PILOTGATE_TEST_POSTGRES_URL");
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        for name in ["a", "b", "c"] {
            create_token(dir.path(), &db.url, "analyst", name);
        }
        let ok = run(pilotgate(dir.path(), Some(&db.url)).args(["audit", "verify"]));
        assert!(ok.status.success(), "{}", text(&ok.stderr));
        assert!(
            text(&ok.stdout).contains("audit chain ok: 3 entries"),
            "{}",
            text(&ok.stdout)
        );

        db.execute_raw("UPDATE audit_log SET target = 'token:z' WHERE id = 2")
            .await
            .unwrap();
        let broken = run(pilotgate(dir.path(), Some(&db.url)).args(["audit", "verify"]));
        assert_eq!(broken.status.code(), Some(1), "{dialect:?}");
        assert!(
            text(&broken.stdout).contains("broken at entry 2"),
            "{}",
            text(&broken.stdout)
        );
    }
}

#[tokio::test]
async fn migrate_leaves_the_same_tables_on_sqlite_and_postgres() {
    let sqlite = TestDb::unmigrated_sqlite().await;
    let Some(postgres) = TestDb::unmigrated_postgres().await else {
        eprintln!("skipped: set PILOTGATE_TEST_POSTGRES_URL");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for db in [&sqlite, &postgres] {
        assert!(db.store.schema_columns().await.unwrap().is_empty());
        let output = run(pilotgate(dir.path(), Some(&db.url)).arg("migrate"));
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(!text(&output.stderr).contains("password"));
    }
    let sqlite_columns = sqlite.store.schema_columns().await.unwrap();
    assert!(sqlite_columns.len() > 50);
    assert_eq!(
        sqlite_columns,
        postgres.store.schema_columns().await.unwrap()
    );
}

/// The binary in `dir` with only the key files it finds there (no key in the environment).
fn with_key_files(dir: &Path, url: &str) -> std::process::Command {
    let mut command = pilotgate(dir, Some(url));
    command
        .env_remove("PILOTGATE_PSEUDONYM_KEY")
        .env_remove("PILOTGATE_AUDIT_KEY");
    command
}

#[tokio::test]
async fn a_lost_or_wrong_key_file_is_refused_and_never_silently_replaced() {
    use pilotgate_domain::consent::ConsentStatus;
    use pilotgate_store::testing::{consent_purpose, consent_record};
    let db = TestDb::new(Dialect::Sqlite).await.unwrap();
    // The database holds a pseudonymized record, made with the tests' key (version 1).
    let operator = pilotgate_domain::Actor::operator();
    db.store
        .create_purpose(&consent_purpose("personalize.content", 1), &operator)
        .await
        .unwrap();
    db.store
        .append_consents(&[consent_record("ann", ConsentStatus::Granted)], &operator)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("pilotgate.key");

    let lost = run(with_key_files(dir.path(), &db.url).args(["token", "list"]));
    assert_eq!(lost.status.code(), Some(1));
    let error = text(&lost.stderr);
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(
        error.starts_with("error: ")
            && error.contains("pilotgate.key")
            && error.contains("key version 1")
            && error.contains("restore"),
        "{error}"
    );
    assert!(
        !key_file.exists(),
        "no new key was made for a used database"
    );
    for serve in [vec!["serve"], vec!["audit", "verify"]] {
        let refused = run(with_key_files(dir.path(), &db.url).args(&serve));
        assert_eq!(refused.status.code(), Some(1), "{serve:?}");
    }

    // Someone makes a new key by hand (and restores the audit key): refused too.
    std::fs::write(
        dir.path().join("pilotgate.audit.key"),
        format!("{}\n", "05".repeat(32)),
    )
    .unwrap();
    std::fs::write(&key_file, format!("1:{}\n", "77".repeat(32))).unwrap();
    let wrong = run(with_key_files(dir.path(), &db.url).args(["token", "list"]));
    assert_eq!(wrong.status.code(), Some(1));
    let error = text(&wrong.stderr);
    assert!(
        error.contains("pseudonym key version 1 is not the key this database was used with"),
        "{error}"
    );
    assert!(!error.contains("7777"), "{error}");

    // The right keys restored: it works; a second version (a rotation) is recorded.
    std::fs::write(&key_file, format!("1:{}\n", "04".repeat(32))).unwrap();
    let restored = run(with_key_files(dir.path(), &db.url).args(["token", "list"]));
    assert!(restored.status.success(), "{}", text(&restored.stderr));
    std::fs::write(
        &key_file,
        format!("1:{}\n2:{}\n", "04".repeat(32), "42".repeat(32)),
    )
    .unwrap();
    let rotated = run(with_key_files(dir.path(), &db.url).args(["token", "list"]));
    assert!(rotated.status.success(), "{}", text(&rotated.stderr));
    assert_eq!(
        db.store.key_state().await.unwrap().pseudonym_versions,
        [1, 2]
    );
}

#[tokio::test]
async fn a_new_database_gets_new_private_key_files_and_an_anchor() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    create_token_without_env(dir.path(), &url);
    for name in [
        "pilotgate.key",
        "pilotgate.audit.key",
        "pilotgate.anchor",
        "fresh.db",
    ] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    let anchor = run(with_key_files(dir.path(), &url).args(["audit", "anchor"]));
    assert!(anchor.status.success(), "{}", text(&anchor.stderr));
    let line: serde_json::Value = serde_json::from_str(text(&anchor.stdout).trim()).unwrap();
    assert_eq!(line["entries"], 1);
    let verify = run(with_key_files(dir.path(), &url).args(["audit", "verify"]));
    assert!(verify.status.success());
    assert!(
        text(&verify.stdout).contains("reaches its anchor"),
        "{}",
        text(&verify.stdout)
    );
}

fn create_token_without_env(dir: &Path, url: &str) {
    let output =
        run(with_key_files(dir, url).args(["token", "create", "--role", "analyst", "--name", "a"]));
    assert!(output.status.success(), "{}", text(&output.stderr));
}
