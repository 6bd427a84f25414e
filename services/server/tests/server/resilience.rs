//! The server as processes: two instances on one PostgreSQL agree and honour
//! each other's withdrawals at once; a server killed mid-stream loses no
//! acknowledged event and stores none twice.

use std::collections::HashMap;
use std::time::Duration;

use crate::support::process::{Server, pilotgate};
use pilotgate_domain::{Actor, Role};
use pilotgate_server::service::tokens::issue_token;
use pilotgate_store::testing::{TestDb, buy_design, consent_purpose, start_pilot};
use pilotgate_store::{Dialect, NewToken};
use serde_json::{Value, json};

/// A running pilot `p` on a consent-only purpose, and an ingest token.
async fn prepare(db: &TestDb) -> String {
    let actor = Actor::operator();
    let purpose = consent_purpose("personalize.content", 1);
    db.store.create_purpose(&purpose, &actor).await.unwrap();
    start_pilot(&db.store, &buy_design("p", "personalize.content", 1.0)).await;
    let token = issue_token();
    let new = NewToken {
        name: "crm",
        role: Role::Ingest,
        token_id: &token.token_id,
        secret_hash: &token.secret_hash,
    };
    db.store.create_token(&new, &actor).await.unwrap();
    token.reveal().to_owned()
}

fn serve(dir: &std::path::Path, url: &str) -> Server {
    Server::start(pilotgate(dir, Some(url)))
}

fn consent(user: &str, status: &str) -> Value {
    json!({"user_id": user, "purpose": "personalize.content", "basis": "consent", "status": status, "notice_id": "pn",
        "notice_version": 1, "source": {"channel": "app", "method": "tap"},
        "collected_at": (chrono::Utc::now() - chrono::Duration::milliseconds(10)).to_rfc3339()})
}

async fn post(
    client: &reqwest::Client,
    url: String,
    token: &str,
    body: Value,
) -> Result<Value, reqwest::Error> {
    client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .timeout(Duration::from_secs(10))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_agree_and_honour_each_others_withdrawals() {
    let Some(db) = TestDb::new(Dialect::Postgres).await else {
        eprintln!("skipped: set PILOTGATE_TEST_POSTGRES_URL to run on PostgreSQL");
        return;
    };
    let token = prepare(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (serve(dir.path(), &db.url), serve(dir.path(), &db.url));
    let client = reqwest::Client::new();
    // Consents go to A; both instances race to assign each subject at once.
    let users: Vec<String> = (0..40).map(|i| format!("user{i}@example.com")).collect();
    let grants: Vec<Value> = users.iter().map(|u| consent(u, "granted")).collect();
    post(
        &client,
        a.url("/api/v1/consents"),
        &token,
        json!({"records": grants}),
    )
    .await
    .unwrap();
    // The consent API is for ingest and compliance: the ingest token serves both here.
    let mut variants: HashMap<String, String> = HashMap::new();
    for user in &users {
        let body = json!({"experiment": "p", "user_id": user});
        let (from_a, from_b) = tokio::join!(
            post(&client, a.url("/api/v1/assign"), &token, body.clone()),
            post(&client, b.url("/api/v1/assign"), &token, body.clone())
        );
        let (from_a, from_b) = (from_a.unwrap(), from_b.unwrap());
        assert_eq!(
            from_a["variant"], from_b["variant"],
            "the two instances disagree for one subject"
        );
        assert_eq!(from_a["eligible"], from_b["eligible"]);
        variants.insert(user.clone(), from_a["variant"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        db.store.assignments_of("p").await.unwrap().len(),
        users.len(),
        "each subject was stored once"
    );

    // A withdrawal through B is honoured by A on the very next request, and the other way round.
    for (withdraw_at, ask) in [(&b, &a), (&a, &b)] {
        let user = if std::ptr::eq(withdraw_at, &b) {
            &users[0]
        } else {
            &users[1]
        };
        post(
            &client,
            withdraw_at.url("/api/v1/consents"),
            &token,
            consent(user, "withdrawn"),
        )
        .await
        .unwrap();
        let answer = post(
            &client,
            ask.url("/api/v1/assign"),
            &token,
            json!({"experiment": "p", "user_id": user}),
        )
        .await
        .unwrap();
        assert_eq!(
            (answer["eligible"].clone(), answer["ask_again"].clone()),
            (json!(false), json!(false))
        );
        let event = json!({"events": [{"event_id": format!("after-withdrawal-{user}"), "user_id": user, "name": "buy", "occurred_at": chrono::Utc::now().to_rfc3339()}]});
        let refused = post(&client, ask.url("/api/v1/events"), &token, event)
            .await
            .unwrap();
        assert_eq!(refused["refused"][0]["reason"], "withdrawn");
    }
    let (status_a, _, _) = a.terminate();
    let (status_b, _, _) = b.terminate();
    assert!(status_a.success() && status_b.success());
}

/// Streams batches of events; kills the server with SIGKILL mid-stream,
/// restarts it, retries every batch that was not acknowledged.
async fn crash_story(dialect: Dialect) {
    let Some(db) = TestDb::new(dialect).await else {
        eprintln!("skipped: set PILOTGATE_TEST_POSTGRES_URL to run on PostgreSQL");
        return;
    };
    let token = prepare(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let users: Vec<String> = (0..50).map(|i| format!("u{i}")).collect();
    let mut server = serve(dir.path(), &db.url);
    let grants: Vec<Value> = users.iter().map(|u| consent(u, "granted")).collect();
    post(
        &client,
        server.url("/api/v1/consents"),
        &token,
        json!({"records": grants}),
    )
    .await
    .unwrap();
    for user in &users {
        post(
            &client,
            server.url("/api/v1/assign"),
            &token,
            json!({"experiment": "p", "user_id": user}),
        )
        .await
        .unwrap();
    }
    // The client streams until the kill stops the server (at most this many
    // batches), then a few more attempts that fail.
    const MAX_BATCHES: usize = 20_000;
    const PER_BATCH: usize = 100;
    let batch = |b: usize| {
        let events: Vec<Value> = (0..PER_BATCH)
            .map(|i| json!({"event_id": format!("b{b}-e{i}"), "user_id": users[(b * PER_BATCH + i) % users.len()], "name": "buy",
                "value": 1.0, "occurred_at": chrono::Utc::now().to_rfc3339()}))
            .collect();
        json!({"events": events})
    };
    // A retry resends the batch as first sent: same ids, users and occurrences.
    let mut sent: Vec<Value> = Vec::new();
    let mut acknowledged: Vec<bool> = Vec::new();
    // Kill the server while the client is streaming.
    let pid = server.child.id();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
    });
    let mut failures = 0;
    while acknowledged.len() < MAX_BATCHES && failures < 3 {
        let b = acknowledged.len();
        sent.push(batch(b));
        match post(
            &client,
            server.url("/api/v1/events"),
            &token,
            sent[b].clone(),
        )
        .await
        {
            Ok(outcome) => {
                assert_eq!(
                    outcome["accepted"].as_u64().unwrap() + outcome["duplicates"].as_u64().unwrap(),
                    PER_BATCH as u64
                );
                acknowledged.push(true);
            }
            Err(_) => {
                failures += 1;
                acknowledged.push(false);
            }
        }
    }
    killer.join().unwrap();
    let batches = acknowledged.len();
    let before_crash = acknowledged.iter().filter(|a| **a).count();
    assert!(
        before_crash > 0 && before_crash < batches,
        "the kill landed mid-stream ({before_crash} of {batches} acknowledged)"
    );
    let _ = server.child.wait();
    let acknowledged_ids: Vec<String> = (0..batches)
        .filter(|b| acknowledged[*b])
        .flat_map(|b| (0..PER_BATCH).map(move |i| format!("b{b}-e{i}")))
        .collect();

    server = serve(dir.path(), &db.url);
    for (b, done) in acknowledged.iter_mut().enumerate() {
        if !*done {
            post(
                &client,
                server.url("/api/v1/events"),
                &token,
                sent[b].clone(),
            )
            .await
            .expect("the restarted server accepts the retry");
            *done = true;
        }
    }
    let stored = db.store.events_of("p").await.unwrap();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for event in &stored {
        *counts.entry(event.event_id.as_str()).or_default() += 1;
    }
    for id in &acknowledged_ids {
        // Event ids are stored keyed (see `pilotgate_domain::event_id`).
        let id = db.store.event_id_key().unwrap().key(id);
        assert_eq!(
            counts.get(id.as_str()),
            Some(&1),
            "an acknowledged event is missing or doubled"
        );
    }
    assert_eq!(
        stored.len(),
        batches * PER_BATCH,
        "every event is stored exactly once after the retries"
    );
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_stream_loses_no_acknowledged_event_on_sqlite() {
    crash_story(Dialect::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_stream_loses_no_acknowledged_event_on_postgres() {
    crash_story(Dialect::Postgres).await;
}
