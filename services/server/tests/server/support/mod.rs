//! A spawned application on a fresh database, with a token for every role.

pub mod certs;
pub mod chromium;
pub mod process;
pub mod web;

use std::collections::HashMap;

use pilotgate_domain::pseudonym::KeyRing;
use pilotgate_domain::{Actor, Role};
use pilotgate_server::config::Config;
use pilotgate_server::service::tokens::issue_token;
use pilotgate_server::startup::Application;
use pilotgate_store::testing::TestDb;
use pilotgate_store::{Dialect, NewToken};

/// A running server on port 0 and what a test needs to talk to it.
pub struct TestApp {
    pub address: String,
    pub db: TestDb,
    pub client: reqwest::Client,
    pub tokens: HashMap<Role, String>,
    /// The pseudonym key ring the server runs with.
    pub keys: KeyRing,
    /// Holds the audit anchor file (`anchor_file`).
    pub files: tempfile::TempDir,
}

impl TestApp {
    /// Spawns the app on a fresh database of `dialect`; `None` when PostgreSQL is not configured.
    pub async fn spawn(dialect: Dialect) -> Option<TestApp> {
        TestApp::spawn_with_keys(dialect, test_keys()).await
    }

    /// Spawns the app with the pseudonym key ring `keys`.
    pub async fn spawn_with_keys(dialect: Dialect, keys: KeyRing) -> Option<TestApp> {
        TestApp::spawn_with(dialect, keys, |_| {}).await
    }

    /// Spawns the app with the pseudonym key ring `keys` and a configuration
    /// changed by `configure` (binding, body limit and anchor file are set first).
    pub async fn spawn_with(
        dialect: Dialect,
        keys: KeyRing,
        configure: impl FnOnce(&mut Config),
    ) -> Option<TestApp> {
        let db = TestDb::with_keys(dialect, &keys).await?;
        let files = tempfile::tempdir().expect("a temp folder");
        let mut config = test_config(&files);
        configure(&mut config);
        let address = serve(db.store.clone(), keys.clone(), &config);
        let mut tokens = HashMap::new();
        for role in Role::ALL {
            let token = issue_token();
            let name = format!("{role}-token");
            let new = NewToken {
                name: &name,
                role,
                token_id: &token.token_id,
                secret_hash: &token.secret_hash,
            };
            db.store
                .create_token(&new, &Actor::operator())
                .await
                .expect("create a token");
            tokens.insert(role, token.reveal().to_owned());
        }
        Some(TestApp {
            address,
            db,
            client: reqwest::Client::new(),
            tokens,
            keys,
            files,
        })
    }

    /// The audit anchor file the server writes.
    pub fn anchor_file(&self) -> std::path::PathBuf {
        self.files.path().join("pilotgate.anchor")
    }

    /// The address of a second server on the same database, with its own
    /// connections (and caches): another instance, or another process.
    pub async fn second_instance(&self) -> String {
        let store = self.db.reopen(&self.keys).await;
        serve(store, self.keys.clone(), &test_config(&self.files))
    }

    /// The address of another server on the same database with the pseudonym
    /// key ring `keys` (a key rotation: the ring must hold every version the
    /// database has seen).
    pub async fn instance_with_keys(&self, keys: KeyRing) -> String {
        let store = self.db.reopen(&keys).await;
        serve(store, keys, &test_config(&self.files))
    }

    /// Creates one more token, for `name` with `role`, and returns it.
    pub async fn add_token(&self, name: &str, role: Role) -> String {
        let token = issue_token();
        let new = NewToken {
            name,
            role,
            token_id: &token.token_id,
            secret_hash: &token.secret_hash,
        };
        self.db
            .store
            .create_token(&new, &Actor::operator())
            .await
            .expect("create a token");
        token.reveal().to_owned()
    }

    /// Registers the consent-only purpose `personalize.content` (notice
    /// version 1 or later, kept 365 days), which [`Design`]s name.
    pub async fn register_purpose(&self) {
        let purpose = serde_json::json!({"key": "personalize.content", "description": "d", "allowed_bases": ["consent"],
            "min_notice_version": 1, "retention_days": 365});
        self.post_ok("/api/v1/purposes", Role::Compliance, purpose)
            .await;
    }

    /// Registers the purpose (`register_purpose`) and takes the pilot
    /// `design` (a JSON design on that purpose) from draft to running.
    pub async fn start_pilot(&self, design: serde_json::Value) {
        let key = design["key"]
            .as_str()
            .expect("the design names its key")
            .to_owned();
        self.register_purpose().await;
        let steps = [
            ("/api/v1/experiments".to_owned(), Role::Marketer, design),
            (
                format!("/api/v1/experiments/{key}/submit"),
                Role::Marketer,
                serde_json::json!({}),
            ),
            (
                format!("/api/v1/experiments/{key}/approve"),
                Role::Compliance,
                serde_json::json!({"design_version": 1, "comment": "ok"}),
            ),
            (
                format!("/api/v1/experiments/{key}/start"),
                Role::Marketer,
                serde_json::json!({}),
            ),
        ];
        for (path, role, body) in steps {
            self.post_ok(&path, role, body).await;
        }
    }

    /// Asks for `user`'s assignment to `experiment` as the ingest role and
    /// expects an answer (assigned or refused, both 200).
    pub async fn assign(&self, experiment: &str, user: &str) -> serde_json::Value {
        let body = serde_json::json!({"experiment": experiment, "user_id": user});
        let response = self.post("/api/v1/assign", Role::Ingest, body).await;
        assert_eq!(response.status(), 200, "assign");
        response.json().await.expect("a JSON body")
    }

    /// A request to `path` with the token of `role` (or none).
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        role: Option<Role>,
    ) -> reqwest::RequestBuilder {
        let builder = self
            .client
            .request(method, format!("{}{path}", self.address));
        match role {
            Some(role) => builder.bearer_auth(&self.tokens[&role]),
            None => builder,
        }
    }

    /// `POST path` of the JSON `body` as `role`.
    pub async fn post(&self, path: &str, role: Role, body: serde_json::Value) -> reqwest::Response {
        self.post_at(&self.address, path, role, body).await
    }

    /// `POST path` of `body` as `role` to the server at `base` (this one, or
    /// another instance on the same database).
    pub async fn post_at(
        &self,
        base: &str,
        path: &str,
        role: Role,
        body: serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .post(format!("{base}{path}"))
            .bearer_auth(&self.tokens[&role])
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    /// `POST path` of `body` as `role`, which must succeed; the JSON answer.
    pub async fn post_ok(
        &self,
        path: &str,
        role: Role,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let response = self.post(path, role, body).await;
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("a JSON body")
    }

    /// Signs in to the dashboards with `token`; the session cookie to send.
    pub async fn sign_in(&self, token: &str) -> String {
        web::sign_in(&self.address, token).await.pair
    }

    /// The dashboard page `path` with `cookie`: its status and HTML.
    pub async fn page(&self, cookie: &str, path: &str) -> (u16, String) {
        web::page(&self.address, cookie, path).await
    }

    /// `GET path` as `role`, which must answer 200; the JSON answer.
    pub async fn get_json(&self, path: &str, role: Option<Role>) -> serde_json::Value {
        let response = self.get(path, role).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("a JSON body")
    }

    /// Creates the pilot `design` as the marketer and submits it (the
    /// purpose it names must be registered).
    pub async fn submit_pilot(&self, design: serde_json::Value) {
        let key = design["key"].as_str().expect("a key").to_owned();
        self.post_ok("/api/v1/experiments", Role::Marketer, design)
            .await;
        let submit = format!("/api/v1/experiments/{key}/submit");
        self.post_ok(&submit, Role::Marketer, serde_json::json!({}))
            .await;
    }

    /// `GET path` as `role`.
    pub async fn get(&self, path: &str, role: Option<Role>) -> reqwest::Response {
        self.request(reqwest::Method::GET, path, role)
            .send()
            .await
            .expect("request")
    }
}

/// A pilot design to start or send: on the purpose `personalize.content`
/// (which [`TestApp::start_pilot`] registers), variants `control` and `v1`
/// at equal weight, full coverage, `purchase` as a binary primary metric,
/// MDE 10 %, α 5 %, power 80 %. The methods change one part each.
pub struct Design(serde_json::Value);

impl Design {
    pub fn new(key: &str) -> Design {
        Design(
            serde_json::json!({"key": key, "name": "Hero", "hypothesis": "h", "purpose": "personalize.content",
            "variants": [{"key": "control", "weight": 1}, {"key": "v1", "weight": 1}], "coverage": 1.0,
            "primary_metric": {"event": "purchase", "kind": "binary"},
            "mde": 0.1, "alpha": 0.05, "power": 0.8, "data_categories": ["orders"], "retention_days": 90}),
        )
    }

    /// Sets the top-level `field` to `value`.
    pub fn with(mut self, field: &str, value: serde_json::Value) -> Design {
        self.0[field] = value;
        self
    }

    /// Variants of equal weight named `keys`.
    pub fn variants(self, keys: &[&str]) -> Design {
        let variants: Vec<_> = keys
            .iter()
            .map(|key| serde_json::json!({"key": key, "weight": 1}))
            .collect();
        self.with("variants", serde_json::json!(variants))
    }

    /// `purchase` as a primary metric of `kind` (`binary` or `sum`).
    pub fn purchase(self, kind: &str) -> Design {
        self.with(
            "primary_metric",
            serde_json::json!({"event": "purchase", "kind": kind}),
        )
    }

    /// Guardrail metrics, each an `(event, kind)`.
    pub fn guardrails(self, metrics: &[(&str, &str)]) -> Design {
        let guardrails: Vec<_> = metrics
            .iter()
            .map(|(event, kind)| serde_json::json!({"event": event, "kind": kind}))
            .collect();
        self.with("guardrails", serde_json::json!(guardrails))
    }

    pub fn json(self) -> serde_json::Value {
        self.0
    }
}

/// The pseudonym key ring of [`TestApp::spawn`]: the one `TestDb` attaches.
fn test_keys() -> KeyRing {
    pilotgate_store::testing::test_key_ring()
}

/// The configuration of a test server: port 0, a 64 KiB body limit, the
/// anchor file in `files`, and a minimum cell size of 1 (the stories use a
/// handful of people; `small_cells` sets the production default of 10).
fn test_config(files: &tempfile::TempDir) -> Config {
    Config {
        bind: "127.0.0.1:0".to_owned(),
        max_body_bytes: 64 * 1024,
        audit_anchor_file: Some(files.path().join("pilotgate.anchor")),
        min_cell: pilotgate_analysis::disclosure::MinCell::new(1).expect("1 is a valid k"),
        ..Config::default()
    }
}

/// Starts a server on `store` on port 0; returns its address.
fn serve(store: pilotgate_store::Store, keys: KeyRing, config: &Config) -> String {
    let application = Application::with_store(config, store, keys).expect("build the app");
    let address = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());
    address
}

/// `user`'s pseudonym under the tests' key (version 1), as the store holds it.
pub fn pseudonym(user: &str) -> String {
    pilotgate_store::testing::pseudonym(user).to_string()
}

/// The stored form of the client event id `raw` (see `pilotgate_domain::event_id`).
pub fn stored_event_id(store: &pilotgate_store::Store, raw: &str) -> String {
    store
        .event_id_key()
        .expect("the audit key is attached")
        .key(raw)
}

/// Asserts that `response` is an error with `status` and a JSON `{error, message}` body; returns the body.
pub async fn assert_json_error(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    assert!(body["error"].is_string(), "{body}");
    assert!(
        !body["message"].as_str().unwrap_or_default().is_empty(),
        "{body}"
    );
    body
}

/// Declares one test per dialect running the same story against a spawned app.
#[macro_export]
macro_rules! api_story {
    ($name:ident, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn story($app: $crate::support::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                let app = $crate::support::TestApp::spawn(pilotgate_store::Dialect::Sqlite).await.expect("sqlite");
                story(app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                match $crate::support::TestApp::spawn(pilotgate_store::Dialect::Postgres).await {
                    Some(app) => story(app).await,
                    None => eprintln!("skipped: set PILOTGATE_TEST_POSTGRES_URL to run on PostgreSQL"),
                }
            }
        }
    };
}
