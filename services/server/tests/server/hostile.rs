//! Hostile input, route by route: malformed JSON, wrong types, missing and
//! unknown fields, oversized bodies and batches, control characters and
//! SQL-looking strings, impossible timestamps, non-finite numbers, negative
//! weights, duplicate variants. Each gets its documented 4xx with a JSON
//! `{error, message}` body that does not echo the input, and nothing is
//! stored: the audit chain, the pilot, its assignments and events are the
//! same afterwards. On SQLite and PostgreSQL.

use crate::support::{Design, TestApp};
use pilotgate_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

const PILOT: &str = "hostile";

/// One hostile request and the statuses its documentation allows.
struct Case {
    name: &'static str,
    method: Method,
    path: String,
    role: Role,
    body: Vec<u8>,
    allowed: &'static [u16],
}

fn case(
    name: &'static str,
    method: Method,
    path: &str,
    role: Role,
    body: impl Into<Vec<u8>>,
    allowed: &'static [u16],
) -> Case {
    Case {
        name,
        method,
        path: path.to_owned(),
        role,
        body: body.into(),
        allowed,
    }
}

fn json_of(value: Value) -> Vec<u8> {
    serde_json::to_vec(&value).unwrap()
}

fn design(key: &str) -> Value {
    Design::new(key).json()
}

fn with(mut value: Value, field: &str, new: Value) -> Value {
    value[field] = new;
    value
}

fn consent(collected_at: &str) -> Value {
    json!({"user_id": "u-1", "purpose": "personalize.content", "basis": "consent", "status": "granted",
        "notice_id": "n", "notice_version": 1, "source": {"channel": "api", "method": "click"},
        "collected_at": collected_at})
}

fn cases() -> Vec<Case> {
    use Role::{Compliance, Ingest, Marketer};
    let malformed = b"{,\"".to_vec();
    let pilot = format!("/api/v1/experiments/{PILOT}");
    let mut all = Vec::new();
    // Malformed JSON on every route that takes a body.
    for (path, role) in [
        ("/api/v1/purposes".to_owned(), Compliance),
        ("/api/v1/consents".to_owned(), Ingest),
        ("/api/v1/subjects/resolve".to_owned(), Compliance),
        ("/api/v1/experiments".to_owned(), Marketer),
        (format!("{pilot}/approve"), Compliance),
        ("/api/v1/assign".to_owned(), Ingest),
        ("/api/v1/events".to_owned(), Ingest),
    ] {
        all.push(case(
            "malformed JSON",
            Method::POST,
            &path,
            role,
            malformed.clone(),
            &[400],
        ));
    }
    all.push(case(
        "malformed JSON",
        Method::PUT,
        &pilot,
        Marketer,
        malformed.clone(),
        &[400],
    ));
    all.push(case(
        "a JSON string instead of an object",
        Method::POST,
        "/api/v1/assign",
        Ingest,
        b"\"assign me\"".to_vec(),
        &[400, 422],
    ));
    all.push(case(
        "an empty body",
        Method::POST,
        "/api/v1/experiments",
        Marketer,
        Vec::new(),
        &[400],
    ));
    // Wrong types.
    all.push(case("a number as a purpose key", Method::POST, "/api/v1/purposes", Compliance,
        json_of(json!({"key": 5, "description": "d", "allowed_bases": ["consent"], "min_notice_version": 1, "retention_days": 1})), &[400, 422]));
    all.push(case(
        "text as coverage",
        Method::POST,
        "/api/v1/experiments",
        Marketer,
        json_of(with(design("typed"), "coverage", json!("all"))),
        &[400, 422],
    ));
    all.push(case(
        "numbers as ids",
        Method::POST,
        "/api/v1/assign",
        Ingest,
        json_of(json!({"experiment": 1, "user_id": true})),
        &[400, 422],
    ));
    all.push(case(
        "text as the events list",
        Method::POST,
        "/api/v1/events",
        Ingest,
        json_of(json!({"events": "many"})),
        &[400, 422],
    ));
    all.push(case(
        "a negative notice version",
        Method::POST,
        "/api/v1/consents",
        Ingest,
        json_of(with(
            consent("2026-01-01T00:00:00Z"),
            "notice_version",
            json!(-1),
        )),
        &[400, 422],
    ));
    // Missing and unknown fields.
    all.push(case(
        "an empty purpose",
        Method::POST,
        "/api/v1/purposes",
        Compliance,
        json_of(json!({})),
        &[400, 422],
    ));
    all.push(case(
        "no user id",
        Method::POST,
        "/api/v1/assign",
        Ingest,
        json_of(json!({"experiment": PILOT})),
        &[400, 422],
    ));
    all.push(case(
        "an empty consent record",
        Method::POST,
        "/api/v1/consents",
        Ingest,
        json_of(json!({"records": [{}]})),
        &[400, 422],
    ));
    all.push(case(
        "an unknown field",
        Method::POST,
        "/api/v1/assign",
        Ingest,
        json_of(json!({"experiment": PILOT, "user_id": "u", "variant": "v1"})),
        &[400, 422],
    ));
    all.push(case(
        "an unknown design field",
        Method::POST,
        "/api/v1/experiments",
        Marketer,
        json_of(with(design("unknown"), "state", json!("running"))),
        &[400, 422],
    ));
    // Sizes.
    let huge = format!(
        "{{\"experiment\": \"{PILOT}\", \"user_id\": \"{}\"}}",
        "x".repeat(10 * 1024 * 1024)
    );
    all.push(case(
        "a 10 MB body",
        Method::POST,
        "/api/v1/assign",
        Ingest,
        huge,
        &[413],
    ));
    all.push(case(
        "1001 events",
        Method::POST,
        "/api/v1/events",
        Ingest,
        json_of(json!({"events": vec![json!({}); 1001]})),
        &[422],
    ));
    all.push(case(
        "1001 consent records",
        Method::POST,
        "/api/v1/consents",
        Ingest,
        json_of(json!({"records": vec![json!({}); 1001]})),
        &[422],
    ));
    all.push(case(
        "an empty batch",
        Method::POST,
        "/api/v1/events",
        Ingest,
        json_of(json!({"events": []})),
        &[422],
    ));
    // Odd characters and SQL-looking strings where keys are expected.
    all.push(case(
        "control characters in a pilot key",
        Method::POST,
        "/api/v1/experiments",
        Marketer,
        json_of(with(design("x"), "key", json!("hé\u{0}llo\u{202e}"))),
        &[422],
    ));
    all.push(case(
        "SQL in a pilot key",
        Method::POST,
        "/api/v1/experiments",
        Marketer,
        json_of(with(
            design("x"),
            "key",
            json!("x'; DROP TABLE experiments; --"),
        )),
        &[422],
    ));
    all.push(case("SQL in a purpose key", Method::POST, "/api/v1/purposes", Compliance,
        json_of(json!({"key": "a.b' OR '1'='1", "description": "d", "allowed_bases": ["consent"], "min_notice_version": 1, "retention_days": 1})), &[422]));
    all.push(case(
        "SQL as the pilot to assign to",
        Method::POST,
        "/api/v1/assign",
        Ingest,
        json_of(json!({"experiment": "' OR 1=1 --", "user_id": "u"})),
        &[404, 422],
    ));
    all.push(case(
        "an empty user id",
        Method::POST,
        "/api/v1/assign",
        Ingest,
        json_of(json!({"experiment": PILOT, "user_id": ""})),
        &[422],
    ));
    all.push(case(
        "SQL in a query",
        Method::GET,
        "/api/v1/audit?after=1%20OR%201=1",
        Compliance,
        Vec::new(),
        &[400],
    ));
    all.push(case(
        "a NUL in a path",
        Method::GET,
        "/api/v1/experiments/%00",
        Marketer,
        Vec::new(),
        &[404],
    ));
    // Timestamps.
    all.push(case(
        "a consent from year 1",
        Method::POST,
        "/api/v1/consents",
        Ingest,
        json_of(consent("0001-01-01T00:00:00Z")),
        &[422],
    ));
    all.push(case(
        "a consent from year 9999",
        Method::POST,
        "/api/v1/consents",
        Ingest,
        json_of(consent("9999-12-31T23:59:59Z")),
        &[422],
    ));
    all.push(case(
        "a consent at no time",
        Method::POST,
        "/api/v1/consents",
        Ingest,
        json_of(consent("yesterday")),
        &[422],
    ));
    // Non-finite and out-of-range numbers.
    all.push(case(
        "an infinite MDE",
        Method::POST,
        "/api/v1/experiments",
        Marketer,
        b"{\"key\": \"inf\", \"mde\": 1e999}".to_vec(),
        &[400, 422],
    ));
    all.push(case(
        "an alpha of 2",
        Method::POST,
        "/api/v1/experiments",
        Marketer,
        json_of(with(design("alpha"), "alpha", json!(2.0))),
        &[422],
    ));
    all.push(case(
        "NaN as alpha of the results",
        Method::GET,
        &format!("{pilot}/results?alpha=NaN"),
        Marketer,
        Vec::new(),
        &[400, 422],
    ));
    all.push(case(
        "infinite alpha of the results",
        Method::GET,
        &format!("{pilot}/results?alpha=inf"),
        Marketer,
        Vec::new(),
        &[400, 422],
    ));
    // Designs the rules refuse.
    all.push(case(
        "a negative weight",
        Method::POST,
        "/api/v1/experiments",
        Marketer,
        json_of(with(
            design("neg"),
            "variants",
            json!([{"key": "control", "weight": -1}, {"key": "v1", "weight": 2}]),
        )),
        &[422],
    ));
    all.push(case(
        "duplicate variant keys",
        Method::POST,
        "/api/v1/experiments",
        Marketer,
        json_of(with(
            design("dup"),
            "variants",
            json!([{"key": "control", "weight": 1}, {"key": "control", "weight": 1}]),
        )),
        &[422],
    ));
    all.push(case(
        "a coverage above 1",
        Method::POST,
        "/api/v1/experiments",
        Marketer,
        json_of(with(design("cov"), "coverage", json!(1.5))),
        &[422],
    ));
    all
}

/// Events a running pilot must refuse one by one (200, every event refused as invalid).
fn invalid_events() -> Vec<(&'static str, Value)> {
    let event = |id: &str, user: &str, at: &str| json!({"event_id": id, "user_id": user, "name": "purchase", "occurred_at": at});
    vec![
        (
            "an event in year 9999",
            event("e1", "u-1", "9999-01-01T00:00:00Z"),
        ),
        (
            "an event before 2000",
            event("e2", "u-1", "1970-01-01T00:00:00Z"),
        ),
        ("an event at no time", event("e3", "u-1", "soon")),
        (
            "an event id with control characters",
            event("\u{0}\u{7}\u{1b}[2J", "u-1", "2026-01-01T00:00:00Z"),
        ),
        (
            "an event without a user",
            json!({"event_id": "e5", "name": "purchase", "occurred_at": "2026-01-01T00:00:00Z"}),
        ),
        (
            "an event with text as value",
            json!({"event_id": "e6", "user_id": "u-1", "name": "purchase", "value": "ten", "occurred_at": "2026-01-01T00:00:00Z"}),
        ),
    ]
}

/// What must not change: the audit chain, the pilot and its data.
async fn stored(app: &TestApp) -> (Value, Value, usize, usize) {
    let audit: Value = app
        .get_json("/api/v1/audit/verify", Some(Role::Compliance))
        .await;
    let mut pilot: Value = app
        .get(
            &format!("/api/v1/experiments/{PILOT}"),
            Some(Role::Marketer),
        )
        .await
        .json()
        .await
        .unwrap();
    // The plan says when it applied the eligibility rule; the rest of it
    // (the eligible share and its reasons) must not change either.
    pilot["plan"]["eligible"]
        .as_object_mut()
        .expect("a plan with its eligible share")
        .remove("at");
    let assignments = app.db.store.assignments_of(PILOT).await.unwrap().len();
    let events = app.db.store.events_of(PILOT).await.unwrap().len();
    (audit["entries"].clone(), pilot, assignments, events)
}

/// What `POST /api/v1/events` answers to `body`.
async fn post_events(app: &TestApp, body: String) -> Value {
    app.request(Method::POST, "/api/v1/events", Some(Role::Ingest))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

api_story!(hostile_requests_get_a_json_4xx_and_store_nothing, |app| {
    app.start_pilot(design(PILOT)).await;
    let user = app.assign(PILOT, "u-1").await;
    assert_eq!(user["eligible"], false);
    let before = stored(&app).await;

    for case in cases() {
        let response = app
            .request(case.method.clone(), &case.path, Some(case.role))
            .header("content-type", "application/json")
            .body(case.body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!(
            case.allowed.contains(&status),
            "{}: {} {} answered {status}",
            case.name,
            case.method,
            case.path
        );
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|_| panic!("{}: the error is not JSON", case.name));
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{}: {body}",
            case.name
        );
        let message = body["message"].as_str().unwrap();
        for echoed in ["DROP TABLE", "OR 1=1", "\u{0}", "\u{202e}", "xxxxxxxx"] {
            assert!(
                !message.contains(echoed),
                "{}: the error echoes the input: {message}",
                case.name
            );
        }
    }

    let events: Vec<Value> = invalid_events().into_iter().map(|(_, e)| e).collect();
    let answer = post_events(&app, json!({"events": events}).to_string()).await;
    assert_eq!(answer["accepted"], 0, "{answer}");
    // A number JSON cannot hold as a float is one more invalid event, not a bad batch.
    let infinite = post_events(&app, "{\"events\": [{\"event_id\": \"e\", \"user_id\": \"u\", \"name\": \"purchase\", \"value\": 1e999, \"occurred_at\": \"2026-01-01T00:00:00Z\"}]}".to_owned()).await;
    assert_eq!(
        (
            infinite["accepted"].clone(),
            infinite["refused"][0]["reason"].clone()
        ),
        (json!(0), json!("invalid")),
        "{infinite}"
    );
    let refused = answer["refused"].as_array().unwrap();
    for (index, (name, _)) in invalid_events().iter().enumerate() {
        let fate = refused
            .iter()
            .find(|r| r["index"] == index)
            .unwrap_or_else(|| panic!("{name} was not refused: {answer}"));
        assert_eq!(fate["reason"], "invalid", "{name}: {fate}");
    }

    assert_eq!(
        stored(&app).await,
        before,
        "a hostile request changed what is stored"
    );
    // The database answers as before.
    assert_eq!(app.get("/readyz", None).await.status().as_u16(), 200);
});
