//! The connection and transaction machinery: one `Db` over sqlx's `Any`
//! driver, chosen at runtime by the URL's scheme, with its pools, the
//! migrations, readiness, and how write transactions begin. It knows no
//! feature of pilotgate (features depend on it, never the reverse).
//!
//! On SQLite: one write connection held by the store (see `write_tx`), eight
//! readers, two analytics connections that read the file through a memory
//! map (the results' aggregations), and two look-ahead connections for the
//! events' reads ahead. Page caches are 8 MiB per connection, the writer's
//! included (SQLite walks the writer's whole page cache at the end of every
//! write transaction; measured with 64 MiB it was a fifth of the writer's
//! time), 64 MiB for the look-ahead connections (they walk B-trees keyed by
//! random hashes). On PostgreSQL one pool of sixteen serves everything.

pub(crate) mod checkpoint;
mod dialect;
mod write_tx;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

pub use dialect::Dialect;
pub(crate) use dialect::{Packed, numbered};
use write_tx::{ACQUIRE_TIMEOUT, Begin, HeldWriter, WriterSlot};
pub(crate) use write_tx::{
    AppendBatch, AppendTable, AppendTx, CommitHook, Lock, Reads, Value, WriteTx, bound, take_lock,
};

use crate::error::StoreError;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// Rows per multi-row INSERT (7 parameters each at most).
pub(crate) const INSERT_CHUNK: usize = 500;

/// Keys per `IN (...)` lookup: well below both engines' parameter limits.
pub(crate) const LOOKUP_CHUNK: usize = 1000;

/// The database: pools and the write connection. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    /// Reads, and on PostgreSQL writes too.
    pub(crate) reader: AnyPool,
    /// Large aggregations (the results): on SQLite two connections that read
    /// the file through a memory map; on PostgreSQL the reader pool.
    pub(crate) analytics: AnyPool,
    /// Writes on PostgreSQL; on SQLite, migrations and tests' raw SQL only.
    pub(crate) writer: AnyPool,
    /// On SQLite, the one connection that writes (see `write_tx`).
    held_writer: Option<WriterSlot>,
    /// On SQLite, two connections that read the ledger for the next group of
    /// events while the writer commits the group before (see `events`).
    pub(crate) lookahead: Option<AnyPool>,
    pub(crate) dialect: Dialect,
    sqlite_file: Option<PathBuf>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never print it.
        f.debug_struct("Db")
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens the database named by `url`: `sqlite://FILE` (created if missing) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = pool_options(16, Dialect::Postgres, Tuning::default())
                .connect(url)
                .await?;
            return Ok(Db {
                reader: pool.clone(),
                analytics: pool.clone(),
                writer: pool,
                held_writer: None,
                lookahead: None,
                dialect: Dialect::Postgres,
                sqlite_file: None,
            });
        }
        let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        else {
            return Err(StoreError::BadUrl(
                "the database URL must start with sqlite:// or postgres://".to_owned(),
            ));
        };
        let (file, query) = rest.split_once('?').unwrap_or((rest, ""));
        if file.is_empty() || file.contains(":memory:") {
            return Err(StoreError::BadUrl(
                "the SQLite URL must name a file, e.g. sqlite://pilotgate.db".to_owned(),
            ));
        }
        if !query
            .split('&')
            .any(|p| p.starts_with("mode=") && p != "mode=rwc")
        {
            create_private_file(file)?;
        }
        let url = if query.split('&').any(|p| p.starts_with("mode=")) {
            format!("sqlite://{rest}")
        } else if query.is_empty() {
            format!("sqlite://{file}?mode=rwc")
        } else {
            format!("sqlite://{file}?{query}&mode=rwc")
        };
        // Page caches: 8 MiB per connection instead of SQLite's 2 MiB. Not
        // more for the writer: at the end of every write transaction SQLite
        // walks its whole page cache (`pcache1TruncateUnsafe`, a fifth of the
        // writer's time under `perf` with 64 MiB), and the writer's reads are
        // few (events are stored in time order; the reads of a group of
        // assignments are one statement). Measured: first-time assignments
        // 4,146/s with 64 MiB, 5,486/s with 8 MiB; events no slower (see
        // `bench/results/load.md`).
        let writer = pool_options(
            1,
            Dialect::Sqlite,
            Tuning {
                autocheckpoint_pages: checkpoint::BACKSTOP_PAGES,
                ..Tuning::default()
            },
        )
        .connect(&url)
        .await?;
        let held_writer = HeldWriter {
            conn: writer.acquire().await?.detach(),
            in_transaction: false,
        };
        let reader = pool_options(8, Dialect::Sqlite, Tuning::default())
            .connect(&url)
            .await?;
        // As large a cache as the writer's: it walks the same B-trees.
        let lookahead = pool_options(
            2,
            Dialect::Sqlite,
            Tuning {
                cache_kib: 65_536,
                ..Tuning::default()
            },
        )
        .connect_lazy(&url)?;
        let analytics = pool_options(
            2,
            Dialect::Sqlite,
            Tuning {
                memory_map: true,
                ..Tuning::default()
            },
        )
        .connect(&url)
        .await?;
        Ok(Db {
            reader,
            analytics,
            writer,
            held_writer: Some(Arc::new(tokio::sync::Mutex::new(Some(held_writer)))),
            lookahead: Some(lookahead),
            dialect: Dialect::Sqlite,
            sqlite_file: Some(PathBuf::from(file)),
        })
    }

    /// Applies every pending migration of this dialect.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.dialect {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.writer).await?;
        Ok(())
    }

    /// Ok when the database answers a query on the migrated schema right now.
    pub async fn ping(&self) -> Result<(), StoreError> {
        if let Some(file) = &self.sqlite_file {
            // An open SQLite connection keeps answering after its file is deleted,
            // but nothing written then would survive: that is not ready.
            if !file.exists() {
                return Err(StoreError::Unavailable(sqlx::Error::Io(
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the SQLite database file is gone",
                    ),
                )));
            }
        }
        let probe = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&self.reader);
        match tokio::time::timeout(Duration::from_secs(2), probe).await {
            Ok(result) => result.map(|_| ()).map_err(StoreError::from),
            Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
        }
    }

    /// Every `(table, column)` of the schema, sorted, leaving out each engine's own tables.
    pub async fn schema_columns(&self) -> Result<Vec<(String, String)>, StoreError> {
        let sql = match self.dialect {
            Dialect::Sqlite => {
                "SELECT m.name AS table_name, p.name AS column_name FROM sqlite_master m \
                 JOIN pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'"
            }
            Dialect::Postgres => {
                "SELECT CAST(table_name AS TEXT) AS table_name, CAST(column_name AS TEXT) AS column_name \
                 FROM information_schema.columns WHERE table_schema = current_schema()"
            }
        };
        let mut columns: Vec<(String, String)> =
            sqlx::query_as(sql).fetch_all(&self.reader).await?;
        columns.sort();
        Ok(columns)
    }

    /// Closes every connection; pending work finishes first.
    pub async fn close(&self) {
        if let Some(slot) = &self.held_writer
            && let Some(held) = slot.lock().await.take()
        {
            let _ = sqlx::Connection::close(held.conn).await;
        }
        self.writer.close().await;
        self.reader.close().await;
        self.analytics.close().await;
        if let Some(lookahead) = &self.lookahead {
            lookahead.close().await;
        }
    }

    /// Begins a transaction that may change any table; on SQLite it takes the
    /// write lock at once (`BEGIN IMMEDIATE`), so a read-then-write cannot
    /// fail half-way when another process wrote in between. Its commit moves
    /// the change epoch (SQLite) and runs `on_commit`.
    pub(crate) async fn begin_write(&self, on_commit: CommitHook) -> Result<WriteTx, StoreError> {
        WriteTx::begin(self.begin(), on_commit, self.dialect == Dialect::Sqlite).await
    }

    /// [`Db::begin_write`] for a change to what may be done with subjects:
    /// the ledger, assignments, events, erasures ([`Lock::Subjects`]).
    pub(crate) async fn begin_subject_write(
        &self,
        on_commit: CommitHook,
    ) -> Result<WriteTx, StoreError> {
        let mut tx = self.begin_write(on_commit).await?;
        if self.dialect == Dialect::Postgres {
            take_lock(&mut tx, Lock::Subjects).await?;
        }
        Ok(tx)
    }

    /// Begins a transaction that only adds to tables no cache holds.
    pub(crate) async fn begin_append(&self) -> Result<AppendTx, StoreError> {
        AppendTx::begin(self.begin()).await
    }

    /// [`Db::begin_append`] under [`Lock::Subjects`].
    pub(crate) async fn begin_subject_append(&self) -> Result<AppendTx, StoreError> {
        let mut tx = self.begin_append().await?;
        if self.dialect == Dialect::Postgres {
            tx.lock(Lock::Subjects).await?;
        }
        Ok(tx)
    }

    /// [`Db::begin_subject_append`] whose `BEGIN` waits for the transaction's
    /// first statement: on SQLite's held writer both go in one round trip to
    /// the driver's thread instead of two.
    pub(crate) async fn begin_subject_append_with_first_statement(
        &self,
    ) -> Result<AppendTx, StoreError> {
        match &self.held_writer {
            Some(slot) => AppendTx::begin(Begin::HeldWithFirstStatement(slot)).await,
            None => self.begin_subject_append().await,
        }
    }

    /// Serializes appends to the audit chain until the transaction of
    /// `conn` ends (PostgreSQL; SQLite's write transactions are serial already).
    pub(crate) async fn lock_audit_chain(
        &self,
        conn: &mut sqlx::AnyConnection,
    ) -> Result<(), StoreError> {
        if self.dialect == Dialect::Postgres {
            take_lock(conn, Lock::AuditChain).await?;
        }
        Ok(())
    }

    fn begin(&self) -> Begin<'_> {
        match &self.held_writer {
            Some(slot) => Begin::Held(slot),
            None => Begin::Pooled(&self.writer),
        }
    }
}

/// Creates the SQLite database file `file` readable by its owner only when it
/// does not exist yet (SQLite gives its WAL and shared-memory files the same
/// mode); a file that exists is left as it is, with a warning when others
/// may read it.
fn create_private_file(file: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            if let Ok(metadata) = std::fs::metadata(file)
                && metadata.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(
                    mode = format!("{:o}", metadata.permissions().mode() & 0o777),
                    "the SQLite database file may be read by other users; consider chmod 600"
                );
            }
            Ok(())
        }
        Err(error) => Err(StoreError::Unavailable(sqlx::Error::Io(error))),
    }
}

/// How the connections of one SQLite pool are tuned.
#[derive(Clone, Copy)]
struct Tuning {
    /// SQLite reads the file through a memory map instead of a read() and a
    /// copy per page, which pays for aggregations over large B-trees (the
    /// results read tens of MiB per query) but not for the short reads and
    /// writes of ingestion: a connection remaps the file each time it sees it
    /// grown, and remapping stalls every core (measured: first-time
    /// assignments 12% slower with mapped readers).
    memory_map: bool,
    /// The page cache, per connection.
    cache_kib: u32,
    /// WAL pages after which a committing connection checkpoints (see
    /// `checkpoint.rs`).
    autocheckpoint_pages: u32,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            memory_map: false,
            cache_kib: 8_192,
            autocheckpoint_pages: 1_000,
        }
    }
}

fn pool_options(max_connections: u32, dialect: Dialect, tuning: Tuning) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // A PostgreSQL connection can go stale (server restart); a SQLite one
        // cannot, and the ping would cost a round trip on every query.
        .test_before_acquire(dialect == Dialect::Postgres)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if dialect == Dialect::Sqlite {
                    // WAL for concurrent readers; FULL so that a commit is on disk
                    // before it is acknowledged; wait on a locked file rather than fail.
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = FULL",
                        "PRAGMA foreign_keys = ON",
                        "PRAGMA busy_timeout = 5000",
                    ] {
                        conn.execute(pragma).await?;
                    }
                    let Tuning {
                        memory_map,
                        cache_kib,
                        autocheckpoint_pages,
                    } = tuning;
                    conn.execute(format!("PRAGMA cache_size = -{cache_kib}").as_str())
                        .await?;
                    conn.execute(
                        format!("PRAGMA wal_autocheckpoint = {autocheckpoint_pages}").as_str(),
                    )
                    .await?;
                    if memory_map {
                        conn.execute("PRAGMA mmap_size = 1073741824").await?;
                    }
                }
                Ok(())
            })
        })
}

#[cfg(test)]
mod tests {
    use super::write_tx::Batch;
    use super::*;
    use crate::Store;
    use crate::testing::TestDb;

    async fn epoch(store: &Store) -> i64 {
        sqlx::query_scalar("SELECT n FROM change_epoch WHERE id = 1")
            .fetch_one(&store.reader)
            .await
            .unwrap()
    }

    async fn counters(store: &Store) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM refusal_counters")
            .fetch_one(&store.reader)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_write_dropped_uncommitted_is_rolled_back_before_the_next_begins() {
        let db = TestDb::new(Dialect::Sqlite).await.unwrap();
        let store = &db.store;
        let before = epoch(store).await;
        let mut dropped = store.begin_write().await.unwrap();
        dropped
            .execute("UPDATE change_epoch SET n = n + 100 WHERE id = 1")
            .await
            .unwrap();
        drop(dropped);
        // The next transaction begins after the rollback, and commits.
        store.begin_write().await.unwrap().commit().await.unwrap();
        assert_eq!(epoch(store).await, before + 1);
    }

    #[tokio::test]
    async fn a_write_that_waits_too_long_for_the_held_writer_is_told_the_database_is_unavailable() {
        let db = TestDb::new(Dialect::Sqlite).await.unwrap();
        let store = &db.store;
        let open = store.begin_write().await.unwrap();
        let waited = std::time::Instant::now();
        let second = store.begin_write().await;
        assert!(matches!(second, Err(StoreError::Unavailable(_))));
        assert!(waited.elapsed() >= ACQUIRE_TIMEOUT);
        open.commit().await.unwrap();
        store.begin_write().await.unwrap().commit().await.unwrap();
    }

    #[tokio::test]
    async fn a_transaction_left_open_on_the_held_writer_is_rolled_back_by_the_next_begin() {
        let db = TestDb::new(Dialect::Sqlite).await.unwrap();
        let store = &db.store;
        let before = epoch(store).await;
        {
            // As if a dropped transaction's rollback task never ran.
            let slot = store
                .db
                .held_writer
                .as_ref()
                .expect("SQLite holds its writer");
            let mut slot = slot.lock().await;
            let held = slot.as_mut().unwrap();
            held.conn.execute("BEGIN IMMEDIATE").await.unwrap();
            held.conn
                .execute("UPDATE change_epoch SET n = n + 100 WHERE id = 1")
                .await
                .unwrap();
            held.in_transaction = true;
        }
        store.begin_write().await.unwrap().commit().await.unwrap();
        assert_eq!(epoch(store).await, before + 1);
    }

    fn add_to_epoch(batch: &mut Batch, by: i64) {
        batch.push(
            "UPDATE change_epoch SET n = n + ? WHERE id = ?".to_owned(),
            vec![Value::Integer(Some(by)), Value::Integer(Some(1))],
        );
    }

    #[tokio::test]
    async fn a_batch_commits_in_one_call_or_not_at_all() {
        let db = TestDb::new(Dialect::Sqlite).await.unwrap();
        let store = &db.store;
        let before = epoch(store).await;
        let mut batch = Batch::default();
        add_to_epoch(&mut batch, 10);
        add_to_epoch(&mut batch, 100);
        store
            .begin_write()
            .await
            .unwrap()
            .commit_after(batch)
            .await
            .unwrap();
        // Both statements, and the epoch's own move.
        assert_eq!(epoch(store).await, before + 111);

        let mut failing = Batch::default();
        add_to_epoch(&mut failing, 1000);
        failing.push(
            "INSERT INTO change_epoch (id, n) VALUES (?, ?)".to_owned(),
            vec![Value::Integer(Some(1)), Value::Integer(Some(0))],
        );
        let write = store.begin_write().await.unwrap();
        assert!(write.commit_after(failing).await.is_err());
        assert_eq!(
            epoch(store).await,
            before + 111,
            "nothing of a failed batch stays"
        );
        store.begin_write().await.unwrap().commit().await.unwrap();
        assert_eq!(epoch(store).await, before + 112);
    }

    fn counter_insert(day: &str) -> (String, Vec<Value>) {
        (
            "INSERT INTO refusal_counters (experiment_key, stage, reason, day, count) VALUES (?, ?, ?, ?, ?)"
                .to_owned(),
            ["p", "assign", "no_record", day]
                .into_iter()
                .map(|t| Value::Text(t.to_owned()))
                .chain([Value::Integer(Some(1))])
                .collect(),
        )
    }

    #[tokio::test]
    async fn a_transaction_begun_with_its_first_statement_is_one_transaction() {
        let db = TestDb::new(Dialect::Sqlite).await.unwrap();
        let store = &db.store;
        // Opened by its first statement (a read).
        let mut tx = store
            .begin_subject_append_with_first_statement()
            .await
            .unwrap();
        let (sql, conn) = tx.read("SELECT COUNT(*) FROM refusal_counters").unwrap();
        assert!(sql.starts_with("BEGIN IMMEDIATE; "), "{sql}");
        let _: Vec<i64> = sqlx::query_scalar(&sql).fetch_all(conn).await.unwrap();
        let (insert, values) = counter_insert("2026-01-01");
        let (sql, conn) = tx.append(AppendTable::RefusalCounters, &insert).unwrap();
        assert_eq!(sql, insert, "opened once");
        bound(&sql, values).execute(conn).await.unwrap();
        drop(tx);
        // The insert ran inside the transaction: the drop rolled it back.
        store.begin_write().await.unwrap().commit().await.unwrap();
        assert_eq!(counters(store).await, 0);
        // Opened by the commit, when no statement came before it.
        let mut batch = AppendBatch::default();
        let (insert, values) = counter_insert("2026-01-02");
        batch
            .push(AppendTable::RefusalCounters, insert, values)
            .unwrap();
        let tx = store
            .begin_subject_append_with_first_statement()
            .await
            .unwrap();
        tx.commit_after(batch).await.unwrap();
        assert_eq!(counters(store).await, 1);
    }

    #[tokio::test]
    async fn an_append_only_transaction_refuses_to_write_a_cached_table() {
        let db = TestDb::new(Dialect::Sqlite).await.unwrap();
        let store = &db.store;
        let mut tx = store.begin_append().await.unwrap();
        assert!(
            tx.append(
                AppendTable::Events,
                "UPDATE experiments SET state = 'running'"
            )
            .is_err()
        );
        assert!(tx.read("DELETE FROM purposes").is_err());
        let mut batch = AppendBatch::default();
        assert!(
            batch
                .push(
                    AppendTable::RefusalCounters,
                    "UPDATE api_tokens SET revoked_at = NULL".to_owned(),
                    Vec::new()
                )
                .is_err()
        );
        tx.commit().await.unwrap();
    }
}
