//! The storage story: the same tests on SQLite and, when configured, PostgreSQL.

use pilotgate_domain::eligibility::Reason;
use pilotgate_domain::refusal::{Refusal, Stage};
use pilotgate_domain::{Actor, Role};
use pilotgate_store::testing::TestDb;
use pilotgate_store::{AuditQuery, Dialect, NewToken, StoreError, storage_story};

fn operator() -> Actor {
    Actor::operator()
}

async fn create_token(db: &TestDb, name: &str, role: Role) {
    let token_id = format!(
        "{:0>12}",
        name.len() * 7 + name.bytes().map(usize::from).sum::<usize>()
    );
    let token = NewToken {
        name,
        role,
        token_id: &token_id,
        secret_hash: "ab",
    };
    db.store
        .create_token(&token, &operator())
        .await
        .expect("create token");
}

storage_story!(
    tokens_are_created_listed_and_revoked_with_an_audit_trail,
    |db| {
        let token = NewToken {
            name: "ingest-1",
            role: Role::Ingest,
            token_id: "0a0b0c0d0e0f",
            secret_hash: "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
        };
        db.store.create_token(&token, &operator()).await.unwrap();

        let credential = db
            .store
            .credential("0a0b0c0d0e0f")
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(credential.role, Role::Ingest);
        assert_eq!(credential.secret_hash, token.secret_hash);
        assert!(!credential.revoked);
        assert!(db.store.credential("ffffffffffff").await.unwrap().is_none());

        let duplicate = db.store.create_token(&token, &operator()).await;
        assert!(
            matches!(duplicate, Err(StoreError::Conflict(_))),
            "{duplicate:?}"
        );

        let revoked = db
            .store
            .revoke_token("ingest-1", None, &operator())
            .await
            .unwrap();
        assert!(revoked.revoked_at.is_some());
        assert!(
            db.store
                .credential("0a0b0c0d0e0f")
                .await
                .unwrap()
                .unwrap()
                .revoked
        );
        assert!(matches!(
            db.store.revoke_token("ingest-1", None, &operator()).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            db.store.revoke_token("nobody", None, &operator()).await,
            Err(StoreError::NotFound(_))
        ));

        let listed = db.store.list_tokens().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, "ingest-1");

        let trail = db
            .store
            .list_audit(&AuditQuery {
                target: Some("token:ingest-1".into()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["token.create", "token.revoke"]);
        assert_eq!(trail[0].actor, "operator (cli)");
        assert!(db.store.verify_audit_chain(None).await.unwrap().ok);
    }
);

storage_story!(audit_pages_follow_ids, |db| {
    for i in 0..5 {
        create_token(&db, &format!("t{i}"), Role::Analyst).await;
    }
    let first = db
        .store
        .list_audit(&AuditQuery {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(first.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2]);
    let next = db
        .store
        .list_audit(&AuditQuery {
            after: Some(2),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(next.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 4, 5]);
    assert_eq!(next[0].prev_hash, first[1].hash);
});

storage_story!(an_edited_audit_row_is_named_by_verify, |db| {
    for i in 0..4 {
        create_token(&db, &format!("t{i}"), Role::Analyst).await;
    }
    assert!(db.store.verify_audit_chain(None).await.unwrap().ok);
    db.execute_raw("UPDATE audit_log SET details = '{\"role\":\"admin\"}' WHERE id = 3")
        .await
        .unwrap();
    let report = db.store.verify_audit_chain(None).await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.first_bad_id, Some(3));
    assert_eq!(report.entries, 4);
});

storage_story!(a_deleted_audit_row_is_named_by_verify, |db| {
    for i in 0..4 {
        create_token(&db, &format!("t{i}"), Role::Analyst).await;
    }
    db.execute_raw("DELETE FROM audit_log WHERE id = 2")
        .await
        .unwrap();
    let report = db.store.verify_audit_chain(None).await.unwrap();
    assert_eq!(report.first_bad_id, Some(2));
});

storage_story!(an_inserted_audit_row_is_named_by_verify, |db| {
    for i in 0..3 {
        create_token(&db, &format!("t{i}"), Role::Analyst).await;
    }
    // A forged entry at the end that copies the look of a real one.
    db.execute_raw(
        "INSERT INTO audit_log (id, at, actor, action, target, details, prev_hash, hash) \
         SELECT 4, at, actor, 'token.create', 'token:intruder', details, hash, hash FROM audit_log WHERE id = 3",
    )
    .await
    .unwrap();
    let report = db.store.verify_audit_chain(None).await.unwrap();
    assert_eq!(report.first_bad_id, Some(4));
    // And one squeezed in before the others, under a negative id.
    db.execute_raw("DELETE FROM audit_log WHERE id = 4")
        .await
        .unwrap();
    assert!(db.store.verify_audit_chain(None).await.unwrap().ok);
    db.execute_raw(
        "INSERT INTO audit_log (id, at, actor, action, target, details, prev_hash, hash) \
         SELECT -1, at, actor, action, target, details, prev_hash, hash FROM audit_log WHERE id = 1",
    )
    .await
    .unwrap();
    assert_eq!(
        db.store
            .verify_audit_chain(None)
            .await
            .unwrap()
            .first_bad_id,
        Some(-1)
    );
});

storage_story!(eight_concurrent_writers_leave_a_valid_chain, |db| {
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = db.store.clone();
            tokio::spawn(async move {
                for i in 0..10 {
                    let name = format!("w{w}-{i}");
                    let token_id = format!("{w:06}{i:06}");
                    let token = NewToken {
                        name: &name,
                        role: Role::Ingest,
                        token_id: &token_id,
                        secret_hash: "00",
                    };
                    store
                        .create_token(&token, &Actor::operator())
                        .await
                        .expect("concurrent create");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let report = db.store.verify_audit_chain(None).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.entries, 80);
});

storage_story!(migrating_twice_changes_nothing, |db| {
    let before = db.store.schema_columns().await.unwrap();
    db.store.migrate().await.unwrap();
    assert_eq!(db.store.schema_columns().await.unwrap(), before);
    let tables: std::collections::BTreeSet<&str> = before.iter().map(|(t, _)| t.as_str()).collect();
    for table in [
        "api_tokens",
        "audit_log",
        "purposes",
        "consent_records",
        "experiments",
        "experiment_variants",
        "approvals",
        "assignments",
        "events",
        "refusal_counters",
        "erasures",
        "result_summaries",
    ] {
        assert!(tables.contains(table), "missing table {table}");
    }
});

storage_story!(the_database_answers_ping_until_it_goes_away, |db| {
    db.store.ping().await.unwrap();
    match db.sqlite_file() {
        Some(file) => std::fs::remove_file(file).unwrap(),
        None => db.drop_postgres_database(),
    }
    let outcome = db.store.ping().await;
    assert!(
        matches!(outcome, Err(StoreError::Unavailable(_))),
        "{outcome:?}"
    );
});

#[tokio::test]
async fn both_dialects_migrate_to_the_same_tables_and_columns() {
    let sqlite = TestDb::new(Dialect::Sqlite).await.unwrap();
    let Some(postgres) = TestDb::new(Dialect::Postgres).await else {
        eprintln!("skipped: set PILOTGATE_TEST_POSTGRES_URL to compare with PostgreSQL");
        return;
    };
    let sqlite_columns = sqlite.store.schema_columns().await.unwrap();
    let postgres_columns = postgres.store.schema_columns().await.unwrap();
    assert!(sqlite_columns.len() > 50);
    assert_eq!(sqlite_columns, postgres_columns);
}

#[tokio::test]
async fn a_url_of_another_database_is_refused_clearly() {
    let error = pilotgate_store::Store::connect("mysql://localhost/db")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("sqlite:// or postgres://"));
}

/// The caches of a server on SQLite survive its own appends (first-time
/// assignments, events, refusal counters) and are dropped within a poll when
/// another process changes something.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_survive_appends_and_follow_other_processes_changes() {
    use std::time::Duration;
    let db = TestDb::new(Dialect::Sqlite).await.expect("sqlite");
    db.store.start_server_tasks();
    let mut first = None;
    for _ in 0..500 {
        first = db.store.cache_generation();
        if first.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let first = first.expect("the caches turn on");
    for _ in 0..5 {
        db.store
            .count_refusal(
                "pilot",
                Stage::Assign,
                Refusal::Ineligible(Reason::NoRecord),
                chrono::Utc::now(),
            )
            .await
            .expect("count a refusal");
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(
        db.store.cache_generation(),
        Some(first),
        "appends keep the caches"
    );

    let other = db.reopen(&pilotgate_store::testing::test_key_ring()).await;
    let token = NewToken {
        name: "elsewhere",
        role: Role::Analyst,
        token_id: "000000000042",
        secret_hash: "ab",
    };
    other
        .create_token(&token, &operator())
        .await
        .expect("create a token elsewhere");
    tokio::time::sleep(Duration::from_millis(30)).await;
    let now = db.store.cache_generation();
    assert!(
        now.is_some_and(|g| g != first),
        "another process's change moves the generation ({now:?})"
    );
}

/// How many refusal counters the database file itself holds, WAL aside
/// (`immutable=1` reads the file as it is on disk; before the first
/// checkpoint it may not even hold the tables). `None` while a checkpoint is
/// halfway through writing it.
async fn counters_in_the_file(file: &std::path::Path) -> Option<i64> {
    use sqlx::Connection;
    let url = format!("sqlite://{}?immutable=1", file.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.ok()?;
    let tables: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'refusal_counters'")
            .fetch_one(&mut conn)
            .await
            .ok()?;
    if tables == 0 {
        return Some(0);
    }
    sqlx::query_scalar("SELECT COUNT(*) FROM refusal_counters")
        .fetch_one(&mut conn)
        .await
        .ok()
}

/// A server on SQLite copies its commits from the WAL into the database file
/// by itself, off the commit path; a store that is no server (the CLI) leaves
/// that to SQLite's own checkpoint, at its backstop size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_checkpoints_the_wal_in_the_background() {
    use std::time::{Duration, Instant};
    let server = TestDb::new(Dialect::Sqlite).await.expect("sqlite");
    let tool = TestDb::new(Dialect::Sqlite).await.expect("sqlite");
    server.store.start_server_tasks();
    for db in [&server, &tool] {
        db.store
            .count_refusal(
                "pilot",
                Stage::Assign,
                Refusal::Ineligible(Reason::NoRecord),
                chrono::Utc::now(),
            )
            .await
            .expect("count a refusal");
    }
    let started = Instant::now();
    let file = server.sqlite_file().expect("a file");
    while counters_in_the_file(&file).await.unwrap_or(0) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the server never checkpointed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        counters_in_the_file(&tool.sqlite_file().expect("a file")).await,
        Some(0),
        "without a server, the commit stays in the WAL"
    );
}

storage_story!(
    filtered_audit_pages_either_way_by_actor_action_and_target,
    |db| {
        use pilotgate_store::{AuditCursor, AuditFilter};
        for i in 0..5 {
            create_token(&db, &format!("t{i}"), Role::Analyst).await;
        }
        db.store
            .revoke_token("t3", None, &Actor::token("dana", Role::Admin))
            .await
            .unwrap();
        let ids = |entries: Vec<pilotgate_domain::audit::AuditEntry>| {
            entries.iter().map(|e| e.id).collect::<Vec<_>>()
        };
        let all = AuditFilter::default();
        let newest = db
            .store
            .filtered_audit(&all, AuditCursor::Before(None), 4)
            .await
            .unwrap();
        assert_eq!(ids(newest), [6, 5, 4, 3]);
        let older = db
            .store
            .filtered_audit(&all, AuditCursor::Before(Some(3)), 4)
            .await
            .unwrap();
        assert_eq!(ids(older), [2, 1]);
        let forwards = db
            .store
            .filtered_audit(&all, AuditCursor::After(4), 4)
            .await
            .unwrap();
        assert_eq!(ids(forwards), [5, 6]);
        // A token's name finds its entries under any role; actions and targets match exactly.
        let by = |actor: Option<&str>, action: Option<&str>, target: Option<&str>| AuditFilter {
            actor: actor.map(str::to_owned),
            action: action.map(str::to_owned),
            target: target.map(str::to_owned),
        };
        for filter in [
            by(Some("dana"), None, None),
            by(Some("dana (admin)"), None, None),
            by(None, Some("token.revoke"), None),
            by(None, None, Some("token:t3")),
        ] {
            let found = db
                .store
                .filtered_audit(&filter, AuditCursor::Before(None), 100)
                .await
                .unwrap();
            let expected = if filter.target.is_some() {
                vec![6, 4]
            } else {
                vec![6]
            };
            assert_eq!(ids(found), expected, "{filter:?}");
        }
        let none = db
            .store
            .filtered_audit(
                &by(Some("dan"), Some("token.revoke"), None),
                AuditCursor::After(0),
                100,
            )
            .await
            .unwrap();
        assert!(none.is_empty(), "a name matches whole, not as a prefix");
        let operator_creations = db
            .store
            .filtered_audit(
                &by(Some("operator"), Some("token.create"), None),
                AuditCursor::After(0),
                100,
            )
            .await
            .unwrap();
        assert_eq!(ids(operator_creations), [1, 2, 3, 4, 5]);
    }
);

storage_story!(
    the_data_inventory_is_seeded_added_to_and_edited_with_an_audit_trail,
    |db| {
        use pilotgate_domain::inventory::{CategoryKey, DataCategory, Measures, Sensitivity};
        let seeded = db.store.list_data_categories().await.unwrap();
        assert_eq!(seeded.len(), 11);
        let special = db
            .store
            .data_category("special_category")
            .await
            .unwrap()
            .expect("seeded");
        assert!(special.prohibited && special.sensitivity == Sensitivity::Special);
        assert_eq!(special.measures.retention_ceiling_days, None);
        assert!(seeded.iter().all(|c| c.validate().is_ok()), "{seeded:?}");

        let mut loyalty = DataCategory {
            key: CategoryKey::parse("loyalty").unwrap(),
            name: "Loyalty points".to_owned(),
            description: "Points balance.".to_owned(),
            sensitivity: Sensitivity::Low,
            prohibited: false,
            measures: Measures {
                pseudonymised: true,
                retention_ceiling_days: Some(30),
                ..Measures::default()
            },
        };
        db.store
            .create_data_category(&loyalty, &operator())
            .await
            .unwrap();
        let again = db.store.create_data_category(&loyalty, &operator()).await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        loyalty.measures.retention_ceiling_days = None;
        loyalty.measures.dpo_sign_off = true;
        db.store
            .update_data_category(&loyalty, &operator())
            .await
            .unwrap();
        assert_eq!(
            db.store.data_category("loyalty").await.unwrap(),
            Some(loyalty.clone())
        );
        loyalty.key = CategoryKey::parse("nothing_here").unwrap();
        let unknown = db.store.update_data_category(&loyalty, &operator()).await;
        assert!(
            matches!(unknown, Err(StoreError::NotFound(_))),
            "{unknown:?}"
        );

        let trail = db
            .store
            .list_audit(&AuditQuery {
                after: None,
                limit: 10,
                target: Some("data_category:loyalty".to_owned()),
            })
            .await
            .unwrap();
        let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["data_category.create", "data_category.update"]);
    }
);
