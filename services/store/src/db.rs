//! The connection pools, migrations, readiness and the dialect differences.

use std::path::PathBuf;
use std::sync::Arc;

use crate::assignments::PendingAssignment;
use crate::cache::{self, Caches};
use crate::checkpoint;
use crate::clock::Clock;
use crate::events::{Memo, PendingEvents};
use crate::group::Queue;
use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Executor, Transaction};

use crate::StoreError;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// How long a request waits for a connection before the store calls the database unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

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

/// The SQL dialect behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// An aggregate that packs the text `fields` of every row into one value:
    /// fields joined by the unit separator (U+001F), rows by the record
    /// separator (U+001E). A read of thousands of small rows then crosses the
    /// driver once instead of once per row. The fields must never hold either
    /// separator (keys, hashes and numbers do not) and must not be NULL.
    pub(crate) fn packed_rows(self, fields: &[&str]) -> String {
        let (unit, record, aggregate) = match self {
            Dialect::Sqlite => ("char(31)", "char(30)", "group_concat"),
            Dialect::Postgres => ("chr(31)", "chr(30)", "string_agg"),
        };
        let row = fields
            .iter()
            .map(|f| format!("CAST({f} AS TEXT)"))
            .collect::<Vec<_>>()
            .join(&format!(" || {unit} || "));
        format!("{aggregate}({row}, {record})")
    }

    /// `rows` parenthesized rows of `width` placeholders each, numbered from 1,
    /// for a multi-row `VALUES` list.
    pub(crate) fn value_rows(self, rows: usize, width: usize) -> String {
        (0..rows)
            .map(|r| format!("({})", self.placeholders(r * width + 1, width)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Placeholders for `n` parameters bound in order, numbered from `first`.
    /// SQLite gets anonymous `?`: it looks named parameters up by a linear
    /// scan, which makes a statement with thousands of `$n` quadratic to bind.
    pub(crate) fn placeholders(self, first: usize, n: usize) -> String {
        match self {
            Dialect::Sqlite => vec!["?"; n].join(", "),
            Dialect::Postgres => (first..first + n)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// The handle to pilotgate's database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// Reads, and on PostgreSQL writes too.
    pub(crate) reader: AnyPool,
    /// Large aggregations (the results): on SQLite two connections that read
    /// the file through a memory map; on PostgreSQL the reader pool.
    pub(crate) analytics: AnyPool,
    /// Writes on PostgreSQL; on SQLite, migrations and tests' raw SQL only.
    pub(crate) writer: AnyPool,
    /// On SQLite, the one connection that writes, so that writers queue in
    /// the process instead of spinning on the file lock (see [`HeldWriter`]).
    held_writer: Option<Arc<tokio::sync::Mutex<Option<HeldWriter>>>>,
    /// On SQLite, two connections that read the ledger for the next group of
    /// events while the writer commits the group before (see `events.rs`).
    pub(crate) lookahead: Option<AnyPool>,
    pub(crate) dialect: Dialect,
    sqlite_file: Option<PathBuf>,
    /// The group commit of first-time assignments, started by
    /// [`Store::start_server_tasks`] or on first use.
    pub(crate) assign_queue: Queue<PendingAssignment>,
    /// The group commit of event batches, started like `assign_queue`.
    pub(crate) event_queue: Queue<PendingEvents>,
    /// What the events' reads ahead learned at the current change epoch (SQLite only).
    pub(crate) memo: Arc<Memo>,
    /// Read caches, off until [`Store::start_server_tasks`] and always off on PostgreSQL.
    pub(crate) caches: Arc<Caches>,
    /// The instants the store stamps; see [`Store::simulate_time`].
    pub(crate) clock: Arc<Clock>,
    /// The key audit entries are chained with, once `Store::attach_keys` checked it.
    pub(crate) audit_key: Arc<std::sync::RwLock<Option<pilotgate_domain::audit::AuditKey>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never print it.
        f.debug_struct("Store")
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database named by `url`: `sqlite://FILE` (created if missing) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = pool_options(16, Dialect::Postgres, Tuning::default())
                .connect(url)
                .await?;
            return Ok(Store {
                reader: pool.clone(),
                analytics: pool.clone(),
                writer: pool,
                held_writer: None,
                lookahead: None,
                dialect: Dialect::Postgres,
                sqlite_file: None,
                assign_queue: Queue::default(),
                event_queue: Queue::default(),
                memo: Arc::default(),
                caches: Arc::default(),
                clock: Arc::default(),
                audit_key: Arc::default(),
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
        Ok(Store {
            reader,
            analytics,
            writer,
            held_writer: Some(Arc::new(tokio::sync::Mutex::new(Some(held_writer)))),
            lookahead: Some(lookahead),
            dialect: Dialect::Sqlite,
            sqlite_file: Some(PathBuf::from(file)),
            assign_queue: Queue::default(),
            event_queue: Queue::default(),
            memo: Arc::default(),
            caches: Arc::default(),
            clock: Arc::default(),
            audit_key: Arc::default(),
        })
    }

    /// The caches' generation (`None` while they are off), for tests.
    #[cfg(feature = "testing")]
    pub fn cache_generation(&self) -> Option<u64> {
        self.caches.generation()
    }

    /// The current instant as the store stamps it: the system clock, unless a
    /// simulation moved it.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Replays time for a simulation (`pilotgate demo`): from now on every
    /// instant this store and the server over it stamp starts from `at` and
    /// runs on in real time; `None` returns to the system clock. Only code in
    /// the same process can call it: no route or setting reaches it.
    pub fn simulate_time(&self, at: Option<chrono::DateTime<chrono::Utc>>) {
        self.clock.set(at);
    }

    /// The dialect of this store.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Starts what a long-running server runs beside its requests, on the
    /// current Tokio runtime (the server's own, not an HTTP worker's): the
    /// group commits (see `group.rs`) and, on SQLite only, the read caches
    /// (see `cache.rs`), which make repeat reads free and follow every commit,
    /// of this process at once and of others within milliseconds, and the WAL
    /// checkpoints off the commit path (see `checkpoint.rs`). On PostgreSQL
    /// the caches stay off, because other instances write too. The caches
    /// turn on once the watcher has its first reading.
    pub fn start_server_tasks(&self) {
        self.assign_queue.start(self);
        self.event_queue.start(self);
        if self.dialect == Dialect::Sqlite {
            let (pool, caches) = (self.reader.clone(), Arc::clone(&self.caches));
            tokio::spawn(async move {
                if let Ok(conn) = pool.acquire().await {
                    cache::watch(conn.detach(), pool, caches).await;
                }
            });
            let pool = self.reader.clone();
            tokio::spawn(async move {
                if let Ok(conn) = pool.acquire().await {
                    checkpoint::run(conn.detach(), pool).await;
                }
            });
        }
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

    /// Begins a transaction that will write. On SQLite it takes the write lock
    /// at once (`BEGIN IMMEDIATE`), so a read-then-write cannot fail half-way
    /// when another process wrote in between.
    /// Its commit makes every cached read stale.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let tx = match &self.held_writer {
            Some(held) => Writing::Held(HeldWriter::begin(held).await?),
            None => Writing::Pooled(self.writer.begin().await?),
        };
        Ok(WriteTx {
            tx,
            caches: Some(Arc::clone(&self.caches)),
            moves_epoch: self.dialect == Dialect::Sqlite,
            unopened: false,
        })
    }

    /// A write transaction that only adds rows no cache holds (first-time
    /// assignments, events, refusal counters): its commit leaves the caches be.
    pub(crate) async fn begin_append(&self) -> Result<WriteTx, StoreError> {
        let mut tx = self.begin_write().await?;
        tx.caches = None;
        tx.moves_epoch = false;
        Ok(tx)
    }

    /// Begins a transaction that changes what may be done with subjects: the
    /// ledger, assignments, events, erasures. On PostgreSQL these take one
    /// table lock, so every eligibility decision made inside such a transaction
    /// sees every ledger change committed before it, across instances. SQLite's
    /// write transactions are serial already. Take this lock before the audit lock.
    pub(crate) async fn begin_subject_write(&self) -> Result<WriteTx, StoreError> {
        let tx = self.begin_write().await?;
        self.lock_subjects(tx).await
    }

    /// [`Store::begin_subject_append`] whose `BEGIN` waits for the
    /// transaction's first statement, which must start with
    /// [`WriteTx::opening`]: on SQLite's held writer both go in one round
    /// trip to the driver's thread instead of two.
    pub(crate) async fn begin_subject_append_with_first_statement(
        &self,
    ) -> Result<WriteTx, StoreError> {
        let Some(held) = &self.held_writer else {
            return self.begin_subject_append().await;
        };
        Ok(WriteTx {
            tx: Writing::Held(HeldWriter::take(held).await?),
            caches: None,
            moves_epoch: false,
            unopened: true,
        })
    }

    /// [`Store::begin_subject_write`] for a transaction that only appends
    /// (see [`Store::begin_append`]).
    pub(crate) async fn begin_subject_append(&self) -> Result<WriteTx, StoreError> {
        let tx = self.begin_append().await?;
        self.lock_subjects(tx).await
    }

    async fn lock_subjects(&self, mut tx: WriteTx) -> Result<WriteTx, StoreError> {
        if self.dialect == Dialect::Postgres {
            tx.execute("LOCK TABLE assignments IN SHARE ROW EXCLUSIVE MODE")
                .await?;
        }
        Ok(tx)
    }

    /// Serializes appends to the audit chain until the transaction ends.
    /// SQLite's write transactions are serial already.
    pub(crate) async fn lock_audit_chain(
        &self,
        conn: &mut AnyConnection,
    ) -> Result<(), StoreError> {
        if self.dialect == Dialect::Postgres {
            // SHARE ROW EXCLUSIVE conflicts with itself but not with readers.
            conn.execute("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")
                .await?;
        }
        Ok(())
    }
}

/// On SQLite, the write connection, and whether a transaction is open on it.
///
/// It is held by the store, not lent by a pool: sqlx returns a connection to
/// its pool only after a ping round trip on a task of its own, and the next
/// commit waited for that (about half a millisecond of every group commit
/// under load). A [`WriteTx`] dropped uncommitted hands the connection to a
/// task that rolls back before anyone else may begin; if that task cannot
/// run, the next `begin` rolls back first.
struct HeldWriter {
    conn: AnyConnection,
    in_transaction: bool,
}

type HeldGuard = tokio::sync::OwnedMappedMutexGuard<Option<HeldWriter>, HeldWriter>;

impl HeldWriter {
    /// Waits for the connection and begins a write transaction on it.
    async fn begin(
        slot: &Arc<tokio::sync::Mutex<Option<HeldWriter>>>,
    ) -> Result<HeldGuard, StoreError> {
        let mut held = HeldWriter::take(slot).await?;
        held.conn.execute("BEGIN IMMEDIATE").await?;
        Ok(held)
    }

    /// Waits for the connection, ready for a `BEGIN`: counted as in a
    /// transaction from here on, so that one begun by a statement that then
    /// failed is rolled back (a rollback outside a transaction fails harmlessly).
    async fn take(
        slot: &Arc<tokio::sync::Mutex<Option<HeldWriter>>>,
    ) -> Result<HeldGuard, StoreError> {
        // As long as a request waits for a pooled connection, then unavailable.
        let guard = tokio::time::timeout(ACQUIRE_TIMEOUT, Arc::clone(slot).lock_owned())
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut))?;
        let mut held = tokio::sync::OwnedMutexGuard::try_map(guard, Option::as_mut)
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))?;
        if held.in_transaction {
            // Left open by a transaction dropped uncommitted. If the rollback
            // fails, SQLite had ended the transaction already (or the begin
            // that follows will say what is wrong).
            let _ = held.conn.execute("ROLLBACK").await;
        }
        held.in_transaction = true;
        Ok(held)
    }
}

/// The connection a write transaction runs on.
enum Writing {
    Pooled(Transaction<'static, Any>),
    Held(HeldGuard),
    /// Committed.
    Done,
}

/// A write transaction; see [`Store::begin_write`].
pub(crate) struct WriteTx {
    tx: Writing,
    /// Told of the commit, unless the transaction only appends.
    caches: Option<Arc<Caches>>,
    /// Moves the change epoch that servers on the same SQLite file watch
    /// (not for appends, and not on PostgreSQL, where caches are off).
    moves_epoch: bool,
    /// `BEGIN` not sent yet: it goes with the first statement (see
    /// [`Store::begin_subject_append_with_first_statement`]).
    unopened: bool,
}

/// Statements a write transaction runs just before its commit (see
/// [`WriteTx::commit_after`]).
#[derive(Debug, Default)]
pub(crate) struct Batch {
    statements: Vec<(String, Vec<Value>)>,
}

/// A value bound to a statement of a [`Batch`].
#[derive(Debug)]
pub(crate) enum Value {
    Text(String),
    Integer(Option<i64>),
}

impl Batch {
    /// Adds `sql`, its placeholders filled by `values` in order. On SQLite the
    /// placeholders must be anonymous (`?`, as [`Dialect::placeholders`]
    /// writes them): statements sent together fill theirs from one list.
    pub(crate) fn push(&mut self, sql: String, values: Vec<Value>) {
        self.statements.push((sql, values));
    }
}

/// `sql` with `values` bound in order.
fn bound(
    sql: &str,
    values: Vec<Value>,
) -> sqlx::query::Query<'_, Any, sqlx::any::AnyArguments<'_>> {
    values
        .into_iter()
        .fold(sqlx::query(sql), |query, value| match value {
            Value::Text(text) => query.bind(text),
            Value::Integer(number) => query.bind(number),
        })
}

impl WriteTx {
    /// What the transaction's first statement must start with: the `BEGIN`
    /// not sent yet (on SQLite's held writer, see
    /// [`Store::begin_subject_append_with_first_statement`]), or nothing.
    pub(crate) fn opening(&mut self) -> &'static str {
        if std::mem::take(&mut self.unopened) {
            "BEGIN IMMEDIATE; "
        } else {
            ""
        }
    }

    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.commit_after(Batch::default()).await
    }

    /// Runs `batch` and commits. On SQLite's held writer the statements, the
    /// epoch's move and the `COMMIT` go to the driver's thread in one call,
    /// which runs them one after the other and stops at the first error (the
    /// transaction is then rolled back, see `HeldWriter`): each call costs two
    /// thread switches, which under load cost more than the statements. (The
    /// SQLite driver of sqlx 0.8 runs every statement of a query; its
    /// maintainers mean to drop that some day, see launchbadge/sqlx#3108:
    /// `a_batch_commits_in_one_call_or_not_at_all` in this file's tests would
    /// fail then.) On PostgreSQL, one statement at a time.
    pub(crate) async fn commit_after(mut self, mut batch: Batch) -> Result<(), sqlx::Error> {
        if self.moves_epoch {
            batch.push(
                "UPDATE change_epoch SET n = n + 1 WHERE id = 1".to_owned(),
                Vec::new(),
            );
        }
        let caches = self.caches.take();
        let opening = self.opening();
        match std::mem::replace(&mut self.tx, Writing::Done) {
            Writing::Pooled(mut tx) => {
                for (sql, values) in batch.statements {
                    bound(&sql, values).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            Writing::Held(mut held) => {
                let mut sql = opening.to_owned();
                let mut all = Vec::new();
                for (statement, values) in batch.statements {
                    sql.push_str(&statement);
                    sql.push_str("; ");
                    all.extend(values);
                }
                sql.push_str("COMMIT");
                if let Err(error) = bound(&sql, all).execute(&mut held.conn).await {
                    // Rolled back on drop (see `HeldWriter`).
                    self.tx = Writing::Held(held);
                    return Err(error);
                }
                held.in_transaction = false;
            }
            Writing::Done => {}
        }
        if let Some(caches) = caches {
            caches.changed();
        }
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let Writing::Held(mut held) = std::mem::replace(&mut self.tx, Writing::Done) else {
            return;
        };
        if !held.in_transaction {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if held.conn.execute("ROLLBACK").await.is_ok() {
                    held.in_transaction = false;
                }
            });
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match &self.tx {
            Writing::Pooled(tx) => tx,
            Writing::Held(held) => &held.conn,
            Writing::Done => unreachable!("a write transaction is used after its commit"),
        }
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        debug_assert!(
            !self.unopened,
            "a statement before the transaction's opening"
        );
        match &mut self.tx {
            Writing::Pooled(tx) => tx,
            Writing::Held(held) => &mut held.conn,
            Writing::Done => unreachable!("a write transaction is used after its commit"),
        }
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
    use super::*;
    use crate::testing::TestDb;

    async fn epoch(store: &Store) -> i64 {
        sqlx::query_scalar("SELECT n FROM change_epoch WHERE id = 1")
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
            let slot = store.held_writer.as_ref().expect("SQLite holds its writer");
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

    #[tokio::test]
    async fn a_transaction_begun_with_its_first_statement_is_one_transaction() {
        let db = TestDb::new(Dialect::Sqlite).await.unwrap();
        let store = &db.store;
        let before = epoch(store).await;
        // Opened by its first statement.
        let mut tx = store
            .begin_subject_append_with_first_statement()
            .await
            .unwrap();
        let sql = format!(
            "{}UPDATE change_epoch SET n = n + 5 WHERE id = 1",
            tx.opening()
        );
        tx.execute(sql.as_str()).await.unwrap();
        drop(tx);
        // The statement ran inside the transaction: the drop rolled it back.
        store.begin_write().await.unwrap().commit().await.unwrap();
        assert_eq!(epoch(store).await, before + 1);
        // Opened by the commit, when no statement came before it.
        let mut batch = Batch::default();
        add_to_epoch(&mut batch, 20);
        let tx = store
            .begin_subject_append_with_first_statement()
            .await
            .unwrap();
        tx.commit_after(batch).await.unwrap();
        assert_eq!(epoch(store).await, before + 21);
    }
}
