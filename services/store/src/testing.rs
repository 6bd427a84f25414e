//! Throw-away databases for tests: a SQLite file in a temp folder, or a fresh
//! PostgreSQL database created on the server named by
//! `PILOTGATE_TEST_POSTGRES_URL` and dropped when the test ends.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{Duration, Utc};
use pilotgate_domain::audit::AuditKey;
use pilotgate_domain::consent::{Channel, ConsentDraft, ConsentStatus, NewConsent};
use pilotgate_domain::experiment::{Action, Design, ExperimentKey, Metric, MetricKind, Variant};
use pilotgate_domain::pseudonym::{KeyRing, Pseudonym, PseudonymKey};
use pilotgate_domain::purpose::{LegalBasis, Purpose, PurposeKey};
use pilotgate_domain::{Actor, Role};
use sqlx::{Connection, Executor};

use crate::{Dialect, Store};

/// The environment variable that turns the PostgreSQL runs of the tests on.
pub const POSTGRES_URL_VAR: &str = "PILOTGATE_TEST_POSTGRES_URL";

/// A migrated test database and what it takes to remove it.
#[derive(Debug)]
pub struct TestDb {
    pub store: Store,
    /// The URL the store was opened with, for a second process or instance.
    pub url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, database: String },
}

impl TestDb {
    /// A migrated database of `dialect` with the tests' keys attached
    /// ([`test_key_ring`], [`test_audit_key`]), or `None` for PostgreSQL when
    /// no server is configured.
    pub async fn new(dialect: Dialect) -> Option<TestDb> {
        TestDb::with_keys(dialect, &test_key_ring()).await
    }

    /// [`TestDb::new`] with the pseudonym key ring `ring`.
    pub async fn with_keys(dialect: Dialect, ring: &KeyRing) -> Option<TestDb> {
        let db = match dialect {
            Dialect::Sqlite => Self::unmigrated_sqlite().await,
            Dialect::Postgres => Self::unmigrated_postgres().await?,
        };
        db.store.migrate().await.expect("migrate the test database");
        db.store
            .attach_keys(ring, &test_audit_key())
            .await
            .expect("attach the tests' keys");
        Some(db)
    }

    /// Another store on the same database, with the tests' keys attached:
    /// another instance, or another process.
    pub async fn reopen(&self, ring: &KeyRing) -> Store {
        let store = Store::connect(&self.url)
            .await
            .expect("open the database again");
        store
            .attach_keys(ring, &test_audit_key())
            .await
            .expect("attach the tests' keys");
        store
    }

    /// A SQLite database file in a temp folder, not yet migrated.
    pub async fn unmigrated_sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("create a temp folder");
        let url = format!("sqlite://{}", dir.path().join("pilotgate.db").display());
        let store = Store::connect(&url)
            .await
            .expect("open the SQLite test database");
        TestDb {
            store,
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// A fresh PostgreSQL database, not yet migrated; `None` without `PILOTGATE_TEST_POSTGRES_URL`.
    pub async fn unmigrated_postgres() -> Option<TestDb> {
        let admin_url = std::env::var(POSTGRES_URL_VAR).ok()?;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let database = format!(
            "pilotgate_test_{}_{}_{}",
            std::process::id(),
            nanos % 1_000_000_000_000,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        sqlx::any::install_default_drivers();
        let mut admin = sqlx::AnyConnection::connect(&admin_url)
            .await
            .expect("connect to the PostgreSQL server of PILOTGATE_TEST_POSTGRES_URL");
        admin
            .execute(format!("CREATE DATABASE {database}").as_str())
            .await
            .expect("create a test database");
        admin.close().await.ok();
        let url = replace_database(&admin_url, &database);
        let store = Store::connect(&url)
            .await
            .expect("open the PostgreSQL test database");
        Some(TestDb {
            store,
            url,
            cleanup: Cleanup::Postgres {
                admin_url,
                database,
            },
        })
    }

    /// Runs SQL straight against the database, bypassing the store's rules
    /// (for tests that tamper with rows).
    pub async fn execute_raw(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let affected = sqlx::query(sql)
            .execute(&self.store.writer)
            .await?
            .rows_affected();
        self.store.generation.changed();
        Ok(affected)
    }

    /// Runs a script of several statements (e.g. a file of
    /// `migrations/partitioning`) straight against the database.
    pub async fn execute_script(&self, sql: &str) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(sql).execute(&self.store.writer).await?;
        self.store.generation.changed();
        Ok(())
    }

    /// The one integer a query answers, read straight from the database.
    pub async fn count_raw(&self, sql: &str) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(sql).fetch_one(&self.store.reader).await
    }

    /// The path of the SQLite file, when this is SQLite.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        match &self.cleanup {
            Cleanup::Sqlite(dir) => Some(dir.path().join("pilotgate.db")),
            Cleanup::Postgres { .. } => None,
        }
    }

    /// Makes the database unavailable to the store until [`Outage::end`]: on
    /// SQLite another connection holds the file's write lock (`BEGIN
    /// EXCLUSIVE`), as another process would; on PostgreSQL the database stops
    /// taking connections and its open ones are terminated, as in a restart.
    pub async fn outage(&self) -> Outage {
        match &self.cleanup {
            Cleanup::Sqlite(_) => {
                let mut conn = sqlx::AnyConnection::connect(&self.url)
                    .await
                    .expect("open a second connection");
                conn.execute("BEGIN EXCLUSIVE")
                    .await
                    .expect("take the write lock");
                Outage::Sqlite(conn)
            }
            Cleanup::Postgres {
                admin_url,
                database,
            } => {
                let mut admin = sqlx::AnyConnection::connect(admin_url)
                    .await
                    .expect("connect to the PostgreSQL server");
                admin
                    .execute(format!("ALTER DATABASE {database} ALLOW_CONNECTIONS false").as_str())
                    .await
                    .expect("refuse connections");
                admin
                    .execute(
                        format!(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                             WHERE datname = '{database}' AND pid <> pg_backend_pid()"
                        )
                        .as_str(),
                    )
                    .await
                    .expect("terminate the connections");
                Outage::Postgres {
                    admin,
                    database: database.clone(),
                }
            }
        }
    }

    /// Drops the PostgreSQL database now (the store stops working), to test outages.
    pub fn drop_postgres_database(&self) {
        if let Cleanup::Postgres {
            admin_url,
            database,
        } = &self.cleanup
        {
            drop_database(admin_url.clone(), database.clone());
        }
    }
}

/// A database outage made by [`TestDb::outage`].
#[derive(Debug)]
pub enum Outage {
    Sqlite(sqlx::AnyConnection),
    Postgres {
        admin: sqlx::AnyConnection,
        database: String,
    },
}

impl Outage {
    /// Gives the database back.
    pub async fn end(self) {
        match self {
            Outage::Sqlite(mut conn) => {
                conn.execute("ROLLBACK")
                    .await
                    .expect("release the write lock");
                conn.close().await.ok();
            }
            Outage::Postgres {
                mut admin,
                database,
            } => {
                admin
                    .execute(format!("ALTER DATABASE {database} ALLOW_CONNECTIONS true").as_str())
                    .await
                    .expect("take connections again");
                admin.close().await.ok();
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres {
            admin_url,
            database,
        } = &self.cleanup
        {
            drop_database(admin_url.clone(), database.clone());
        }
    }
}

/// Drops `database`, ending its connections, from a thread of its own so that
/// it works inside and outside an async runtime.
fn drop_database(admin_url: String, database: String) {
    let worker = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            if let Ok(mut admin) = sqlx::AnyConnection::connect(&admin_url).await {
                let sql = format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)");
                admin.execute(sql.as_str()).await.ok();
                admin.close().await.ok();
            }
        });
    });
    worker.join().ok();
}

/// `postgres://user@host:port/old?x` with its database replaced by `database`.
fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// The tests' pseudonym key (version 1).
pub fn test_key() -> PseudonymKey {
    PseudonymKey::new(1, vec![4; 32]).expect("a pseudonym key")
}

/// A key ring of [`test_key`] alone.
pub fn test_key_ring() -> KeyRing {
    KeyRing::new(vec![test_key()]).expect("a key ring")
}

/// The tests' audit key.
pub fn test_audit_key() -> AuditKey {
    AuditKey::new(vec![5; 32]).expect("an audit key")
}

/// `user`'s pseudonym under the tests' key.
pub fn pseudonym(user: &str) -> Pseudonym {
    test_key().pseudonymize(user)
}

/// A consent record of `user` for `personalize.content`, collected a second
/// ago under notice version 1.
pub fn consent_record(user: &str, status: ConsentStatus) -> NewConsent {
    let now = Utc::now();
    ConsentDraft {
        subject: pseudonym(user),
        purpose: PurposeKey::parse("personalize.content").expect("a purpose key"),
        basis: LegalBasis::Consent,
        status,
        notice_id: "pn".to_owned(),
        notice_version: 1,
        channel: Channel::Api,
        method: format!("{status:?}"),
        collected_at: now - Duration::seconds(1),
        effective_from: None,
        expires_at: None,
        proof_ref: None,
    }
    .finish(now)
    .expect("a valid consent record")
}

/// A purpose that allows consent alone, kept a year.
pub fn consent_purpose(key: &str, min_notice_version: u32) -> Purpose {
    Purpose {
        key: PurposeKey::parse(key).expect("a purpose key"),
        description: "d".to_owned(),
        allowed_bases: [LegalBasis::Consent].into_iter().collect(),
        min_notice_version,
        special_category: false,
        li_assessment_ref: None,
        contract_necessary: false,
        retention_days: 365,
    }
}

/// A pilot `key` of `purpose` with variants `a` and `b`, weighed alike, that
/// measures whether users `buy`.
pub fn buy_design(key: &str, purpose: &str, coverage: f64) -> Design {
    Design {
        key: ExperimentKey::parse(key).expect("an experiment key"),
        name: key.to_owned(),
        hypothesis: "h".to_owned(),
        owner: "o".to_owned(),
        purpose: PurposeKey::parse(purpose).expect("a purpose key"),
        variants: ["a", "b"]
            .map(|key| Variant {
                key: key.to_owned(),
                weight: 1.0,
            })
            .to_vec(),
        coverage,
        seed: key.to_owned(),
        primary_metric: Metric {
            event: "buy".to_owned(),
            kind: MetricKind::Binary,
        },
        guardrails: vec![],
        mde: 0.1,
        alpha: 0.05,
        power: 0.8,
        baseline_rate: None,
        attribution_window_hours: None,
        data_categories: vec!["orders".to_owned()],
        retention_days: 30,
        segments: Vec::new(),
        segment_correction: Default::default(),
    }
}

/// Creates `design` (its purpose registered already), then submits,
/// approves and starts it.
pub async fn start_pilot(store: &Store, design: &Design) {
    let mia = Actor::token("mia", Role::Marketer);
    let dana = Actor::token("dana", Role::Compliance);
    store
        .create_experiment(design, None, &mia)
        .await
        .expect("create the pilot");
    let key = design.key.as_str();
    store
        .transition_experiment(key, Action::Submit, &mia)
        .await
        .expect("submit the pilot");
    store
        .decide_experiment(key, Action::Approve, 1, "ok", &dana)
        .await
        .expect("approve the pilot");
    store
        .transition_experiment(key, Action::Start, &mia)
        .await
        .expect("start the pilot");
}

/// Declares one test per dialect running the same async story on a fresh,
/// migrated database. The PostgreSQL one passes without running when
/// `PILOTGATE_TEST_POSTGRES_URL` is not set (CI sets it).
#[macro_export]
macro_rules! storage_story {
    ($name:ident, |$db:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn story($db: $crate::testing::TestDb) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                let db = $crate::testing::TestDb::new($crate::Dialect::Sqlite).await.expect("sqlite");
                story(db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                match $crate::testing::TestDb::new($crate::Dialect::Postgres).await {
                    Some(db) => story(db).await,
                    None => eprintln!("skipped: set {} to run on PostgreSQL", $crate::testing::POSTGRES_URL_VAR),
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            replace_database("postgres://h:5432", "t1"),
            "postgres://h:5432/t1"
        );
        assert_eq!(
            replace_database("postgres://h/db?sslmode=disable", "t1"),
            "postgres://h/db?sslmode=disable".replace("/db", "/t1")
        );
    }
}
