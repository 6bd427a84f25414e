//! The keys kept outside the database, as the database remembers them: a
//! pseudonym key ring or audit key that does not match is refused, a rotation
//! is recorded, and a chain written before audit keys existed is keyed once.

use pilotgate_domain::audit::{AuditKey, EntryContent, GENESIS_HASH};
use pilotgate_domain::pseudonym::{KeyRing, PseudonymKey};
use pilotgate_domain::{Actor, Role};
use pilotgate_store::testing::{TestDb, test_audit_key, test_key, test_key_ring};
use pilotgate_store::{AuditQuery, NewToken, StoreError, storage_story};

fn ring(keys: &[(u32, u8)]) -> KeyRing {
    KeyRing::new(
        keys.iter()
            .map(|(version, byte)| PseudonymKey::new(*version, vec![*byte; 32]).unwrap())
            .collect(),
    )
    .unwrap()
}

async fn keys_error(db: &TestDb, ring: &KeyRing, audit: &AuditKey) -> String {
    let other = pilotgate_store::Store::connect(&db.url).await.unwrap();
    match other.attach_keys(ring, audit).await {
        Err(StoreError::Keys(message)) => message,
        other => panic!("the keys must be refused: {other:?}"),
    }
}

storage_story!(
    a_key_ring_that_does_not_match_the_database_is_refused,
    |db| {
        // The database was used with the tests' key as version 1 (TestDb attached it).
        let replaced = ring(&[(1, 0x77)]);
        let message = keys_error(&db, &replaced, &test_audit_key()).await;
        assert!(
            message.contains("pseudonym key version 1 is not the key this database was used with")
                && message.contains("restore"),
            "{message}"
        );
        assert!(
            !message.contains("7777"),
            "no key in the message: {message}"
        );

        let only_v2 = KeyRing::new(vec![PseudonymKey::new(2, vec![4; 32]).unwrap()]).unwrap();
        let message = keys_error(&db, &only_v2, &test_audit_key()).await;
        assert!(
            message.contains("key version 1, which the key ring lacks"),
            "{message}"
        );

        let message = keys_error(&db, &test_key_ring(), &AuditKey::new(vec![6; 32]).unwrap()).await;
        assert!(
            message.contains("the audit key is not the key"),
            "{message}"
        );
        assert_eq!(
            db.store.key_state().await.unwrap().pseudonym_versions,
            [1],
            "nothing was recorded"
        );
    }
);

storage_story!(a_rotation_adds_a_version_and_is_audited, |db| {
    let state = db.store.key_state().await.unwrap();
    assert_eq!(state.pseudonym_versions, [1]);
    assert!(state.audit_key_known && !state.may_make_pseudonym_key());
    let token = NewToken {
        name: "someone",
        role: Role::Analyst,
        token_id: "000000000001",
        secret_hash: "00",
    };
    db.store
        .create_token(&token, &Actor::operator())
        .await
        .unwrap();
    let rotated =
        KeyRing::new(vec![test_key(), PseudonymKey::new(2, vec![8; 32]).unwrap()]).unwrap();
    let other = db.reopen(&rotated).await;
    assert_eq!(other.key_state().await.unwrap().pseudonym_versions, [1, 2]);
    let entries = other
        .list_audit(&AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let recorded = entries
        .iter()
        .find(|e| e.action == "keys.recorded")
        .unwrap();
    assert!(
        recorded.details.contains("\"pseudonym_versions\":[2]"),
        "{}",
        recorded.details
    );
    assert!(other.verify_audit_chain(None).await.unwrap().ok);
    // Version 2 is remembered now: a ring without it is refused.
    let message = keys_error(&db, &test_key_ring(), &test_audit_key()).await;
    assert!(
        message.contains("key version 2, which the key ring lacks"),
        "{message}"
    );
});

/// A chain written by an older pilotgate (unkeyed SHA-256) is checked and
/// rehashed under the audit key when the key is first attached.
async fn legacy_chain_story(db: TestDb) {
    let mut prev = GENESIS_HASH.to_owned();
    for id in 1..=3i64 {
        let content = EntryContent {
            id,
            at: 1_000 + id,
            actor: "operator (cli)",
            action: "token.create",
            target: "token:old",
            details: r#"{"role":"analyst"}"#,
        };
        let hash = content.legacy_chained_hash(&prev);
        db.execute_raw(&format!(
            "INSERT INTO audit_log (id, at, actor, action, target, details, prev_hash, hash) VALUES \
             ({id}, {}, 'operator (cli)', 'token.create', 'token:old', '{{\"role\":\"analyst\"}}', '{prev}', '{hash}')",
            1_000 + id
        ))
        .await
        .unwrap();
        prev = hash;
    }
    let state = db.store.key_state().await.unwrap();
    assert!(state.may_make_audit_key() && state.may_make_pseudonym_key());
    assert_eq!(state.audit_entries, 3);
    db.store
        .attach_keys(&test_key_ring(), &test_audit_key())
        .await
        .unwrap();
    let report = db.store.verify_audit_chain(None).await.unwrap();
    assert!(report.ok, "{report:?}");
    let added = db
        .store
        .list_audit(&AuditQuery {
            after: Some(3),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = added.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["audit.chain_keyed", "keys.recorded"]);
    assert!(added[0].details.contains("\"unkeyed_chain_whole\":true"));
    assert_eq!(report.entries, 5);
}

#[tokio::test]
async fn an_unkeyed_chain_is_keyed_once_on_sqlite() {
    let db = TestDb::unmigrated_sqlite().await;
    db.store.migrate().await.unwrap();
    legacy_chain_story(db).await;
}

#[tokio::test]
async fn an_unkeyed_chain_is_keyed_once_on_postgres() {
    let Some(db) = TestDb::unmigrated_postgres().await else {
        return;
    };
    db.store.migrate().await.unwrap();
    legacy_chain_story(db).await;
}
