//! Write transactions, the only place that writes `BEGIN`, `COMMIT` or
//! `ROLLBACK`. Two kinds, chosen when a transaction begins, so that the
//! caches stay right by construction:
//!
//! - [`WriteTx`] may change any table. Its commit moves the change epoch (on
//!   SQLite, in the same transaction: other processes' servers watch it) and
//!   runs the store's commit hook (which makes this process's cached reads
//!   stale).
//! - [`AppendTx`] may only add to the tables no cache holds ([`AppendTable`])
//!   and read anything; its commit leaves the caches be. It hands out no
//!   connection for arbitrary SQL: a statement goes through [`AppendTx::read`]
//!   (it must read) or [`AppendTx::append`] (it must write only the table it
//!   names), and its batch is an [`AppendBatch`].
//!
//! On SQLite one connection writes, held by the store behind a first-come,
//! first-served lock ([`HeldWriter`]), not lent by a pool: sqlx returns a
//! pooled connection only after a ping round trip on a task of its own, and
//! the next group commit waited for that (about half a millisecond of every
//! one under load). A transaction dropped uncommitted hands the connection to
//! a task that rolls back before anyone else may begin; if that task cannot
//! run, the next begin rolls back first.

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyArguments;
use sqlx::{Any, AnyConnection, Executor, Transaction};

use crate::error::StoreError;

/// How long a writer waits for the write connection before the store calls
/// the database unavailable (as long as for a pooled connection).
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a committed [`WriteTx`] tells the rest of the store (the caches).
pub(crate) type CommitHook = Arc<dyn Fn() + Send + Sync>;

/// On SQLite, the write connection, and whether a transaction is open on it.
pub(crate) struct HeldWriter {
    pub(crate) conn: AnyConnection,
    pub(crate) in_transaction: bool,
}

/// The slot the write connection is held in.
pub(crate) type WriterSlot = Arc<tokio::sync::Mutex<Option<HeldWriter>>>;

type HeldGuard = tokio::sync::OwnedMappedMutexGuard<Option<HeldWriter>, HeldWriter>;

impl HeldWriter {
    /// Waits for the connection and begins a write transaction on it.
    async fn begin(slot: &WriterSlot) -> Result<HeldGuard, StoreError> {
        let mut held = HeldWriter::take(slot).await?;
        held.conn.execute("BEGIN IMMEDIATE").await?;
        Ok(held)
    }

    /// Waits for the connection, ready for a `BEGIN`: counted as in a
    /// transaction from here on, so that one begun by a statement that then
    /// failed is rolled back (a rollback outside a transaction fails harmlessly).
    async fn take(slot: &WriterSlot) -> Result<HeldGuard, StoreError> {
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

/// How a write transaction begins.
pub(crate) enum Begin<'a> {
    /// On this pool's connection.
    Pooled(&'a sqlx::AnyPool),
    /// On SQLite's held writer, at once.
    Held(&'a WriterSlot),
    /// On SQLite's held writer, with the transaction's first statement (one
    /// call to the driver's thread instead of two; see [`AppendTx::read`]).
    HeldWithFirstStatement(&'a WriterSlot),
}

/// What a transaction does before and at its commit.
struct Core {
    tx: Writing,
    /// Told of the commit (the caches); none for appends.
    on_commit: Option<CommitHook>,
    /// Moves the change epoch that servers on the same SQLite file watch.
    moves_epoch: bool,
    /// `BEGIN` not sent yet: the first statement carries it.
    unopened: bool,
}

impl Core {
    async fn begin(how: Begin<'_>) -> Result<Core, StoreError> {
        let (tx, unopened) = match how {
            Begin::Pooled(pool) => (Writing::Pooled(pool.begin().await?), false),
            Begin::Held(slot) => (Writing::Held(HeldWriter::begin(slot).await?), false),
            Begin::HeldWithFirstStatement(slot) => {
                (Writing::Held(HeldWriter::take(slot).await?), true)
            }
        };
        Ok(Core {
            tx,
            on_commit: None,
            moves_epoch: false,
            unopened,
        })
    }

    fn conn(&mut self) -> &mut AnyConnection {
        match &mut self.tx {
            Writing::Pooled(tx) => tx,
            Writing::Held(held) => &mut held.conn,
            Writing::Done => unreachable!("a write transaction is used after its commit"),
        }
    }

    /// `sql`, preceded by the `BEGIN` when the transaction is not open yet.
    fn opened(&mut self, sql: &str) -> String {
        if std::mem::take(&mut self.unopened) {
            one_call(&["BEGIN IMMEDIATE", sql])
        } else {
            sql.to_owned()
        }
    }

    /// Runs `statements` and commits. On SQLite's held writer the statements,
    /// the epoch's move and the `COMMIT` go to the driver's thread in one call
    /// ([`one_call`]): each call costs two thread switches, which under load
    /// cost more than the statements. On PostgreSQL, one statement at a time.
    async fn commit(mut self, mut statements: Vec<(String, Vec<Value>)>) -> Result<(), StoreError> {
        if self.moves_epoch {
            statements.push((
                "UPDATE change_epoch SET n = n + 1 WHERE id = 1".to_owned(),
                Vec::new(),
            ));
        }
        let on_commit = self.on_commit.take();
        let begin = if std::mem::take(&mut self.unopened) {
            Some("BEGIN IMMEDIATE")
        } else {
            None
        };
        match std::mem::replace(&mut self.tx, Writing::Done) {
            Writing::Pooled(mut tx) => {
                for (sql, values) in statements {
                    bound(&sql, values).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            Writing::Held(mut held) => {
                let mut parts: Vec<&str> = begin.into_iter().collect();
                let mut all = Vec::new();
                for (statement, values) in &statements {
                    parts.push(statement);
                    all.extend(values.iter().cloned());
                }
                parts.push("COMMIT");
                let sql = one_call(&parts);
                if let Err(error) = bound(&sql, all).execute(&mut held.conn).await {
                    // Rolled back on drop (see `HeldWriter`).
                    self.tx = Writing::Held(held);
                    return Err(error.into());
                }
                held.in_transaction = false;
            }
            Writing::Done => {}
        }
        if let Some(on_commit) = on_commit {
            on_commit();
        }
        Ok(())
    }
}

impl Drop for Core {
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

/// Statements joined to go to SQLite's driver in one call. The SQLite
/// driver of sqlx 0.8 runs every statement of a query, one after the other,
/// and stops at the first error; its maintainers mean to drop that some day
/// (launchbadge/sqlx#3108), and this is the one place that relies on it
/// (`db`'s tests `a_batch_commits_in_one_call_or_not_at_all` and
/// `a_transaction_begun_with_its_first_statement_is_one_transaction` would
/// fail then).
fn one_call(statements: &[&str]) -> String {
    statements.join("; ")
}

/// A value bound to a statement of a batch.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Text(String),
    Integer(Option<i64>),
    /// Text, or NULL.
    OptionalText(Option<String>),
    Real(f64),
}

/// `sql` with `values` bound in order.
pub(crate) fn bound(
    sql: &str,
    values: Vec<Value>,
) -> sqlx::query::Query<'_, Any, AnyArguments<'_>> {
    values
        .into_iter()
        .fold(sqlx::query(sql), |query, value| match value {
            Value::Text(text) => query.bind(text),
            Value::Integer(number) => query.bind(number),
            Value::OptionalText(text) => query.bind(text),
            Value::Real(number) => query.bind(number),
        })
}

/// Statements a [`WriteTx`] runs at its commit. On SQLite the placeholders
/// must be anonymous (`?`, as `Dialect::placeholders` writes them):
/// statements sent together fill theirs from one list.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    statements: Vec<(String, Vec<Value>)>,
}

impl Batch {
    /// Adds `sql`, its placeholders filled by `values` in order.
    #[cfg(test)]
    pub(crate) fn push(&mut self, sql: String, values: Vec<Value>) {
        self.statements.push((sql, values));
    }
}

impl From<AppendBatch> for Batch {
    fn from(appends: AppendBatch) -> Batch {
        Batch {
            statements: appends.statements,
        }
    }
}

/// The tables an [`AppendTx`] may write: no cache holds a row of them, and a
/// row added to them changes no decision made before (new assignments,
/// events, refusal counters), or no decision at all (sessions, links
/// between pseudonyms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppendTable {
    Assignments,
    Events,
    RefusalCounters,
    RefusalBuckets,
    SubjectLinks,
    UiSessions,
    ReconsentCounters,
    /// The results' aggregates (`aggregates.rs`): read by no cache and by
    /// no decision, only by results.
    AssignmentCells,
    WithdrawalCells,
    OutcomeCells,
    SubjectOutcomes,
    OutcomeQueue,
}

impl AppendTable {
    fn name(self) -> &'static str {
        match self {
            AppendTable::Assignments => "assignments",
            AppendTable::Events => "events",
            AppendTable::RefusalCounters => "refusal_counters",
            AppendTable::RefusalBuckets => "refusal_buckets",
            AppendTable::SubjectLinks => "subject_links",
            AppendTable::UiSessions => "ui_sessions",
            AppendTable::ReconsentCounters => "reconsent_counters",
            AppendTable::AssignmentCells => "assignment_cells",
            AppendTable::WithdrawalCells => "withdrawal_cells",
            AppendTable::OutcomeCells => "outcome_cells",
            AppendTable::SubjectOutcomes => "subject_outcomes",
            AppendTable::OutcomeQueue => "outcome_queue",
        }
    }

    /// Whether `sql` is one statement that writes this table and no other:
    /// `INSERT INTO t`, `UPDATE t` or `DELETE FROM t` (an upsert's `ON
    /// CONFLICT … DO UPDATE` updates the same table).
    fn written_by(self, sql: &str) -> bool {
        let words: Vec<&str> = sql.split_whitespace().take(3).collect();
        let table = match words.as_slice() {
            [insert, into, table, ..]
                if insert.eq_ignore_ascii_case("INSERT") && into.eq_ignore_ascii_case("INTO") =>
            {
                table
            }
            [delete, from, table, ..]
                if delete.eq_ignore_ascii_case("DELETE") && from.eq_ignore_ascii_case("FROM") =>
            {
                table
            }
            [update, table, ..] if update.eq_ignore_ascii_case("UPDATE") => table,
            _ => return false,
        };
        let table = table.split('(').next().unwrap_or_default();
        table == self.name() && !sql.contains(';')
    }
}

/// Whether `sql` is one statement that only reads.
fn reads_only(sql: &str) -> bool {
    let first = sql.split_whitespace().next().unwrap_or_default();
    (first.eq_ignore_ascii_case("SELECT") || first.eq_ignore_ascii_case("WITH"))
        && !sql.contains(';')
}

/// The statement was refused by the transaction's kind: a bug, not a
/// database failure.
fn misuse(what: &str) -> StoreError {
    StoreError::Database(sqlx::Error::Protocol(format!(
        "an append-only transaction was given {what}"
    )))
}

/// Statements an [`AppendTx`] runs at its commit, each writing one
/// [`AppendTable`].
#[derive(Debug, Default)]
pub(crate) struct AppendBatch {
    statements: Vec<(String, Vec<Value>)>,
}

impl AppendBatch {
    /// Adds `sql`, which must write `table` only, with `values` bound in order.
    pub(crate) fn push(
        &mut self,
        table: AppendTable,
        sql: String,
        values: Vec<Value>,
    ) -> Result<(), StoreError> {
        if !table.written_by(&sql) {
            return Err(misuse("a statement that writes another table"));
        }
        self.statements.push((sql, values));
        Ok(())
    }

    /// Runs the statements now, in order, on `conn` (a [`WriteTx`]'s, which
    /// may write any table).
    pub(crate) async fn run_on(self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        for (sql, values) in self.statements {
            bound(&sql, values).execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// A write transaction that may change any table (see the module's doc).
pub(crate) struct WriteTx(Core);

impl WriteTx {
    pub(crate) async fn begin(
        how: Begin<'_>,
        on_commit: CommitHook,
        moves_epoch: bool,
    ) -> Result<WriteTx, StoreError> {
        let mut core = Core::begin(how).await?;
        core.on_commit = Some(on_commit);
        core.moves_epoch = moves_epoch;
        Ok(WriteTx(core))
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        self.0.commit(Vec::new()).await
    }

    /// Runs `batch`, then commits.
    pub(crate) async fn commit_after(self, batch: Batch) -> Result<(), StoreError> {
        self.0.commit(batch.statements).await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match &self.0.tx {
            Writing::Pooled(tx) => tx,
            Writing::Held(held) => &held.conn,
            Writing::Done => unreachable!("a write transaction is used after its commit"),
        }
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.0.conn()
    }
}

/// A write transaction that only adds to tables no cache holds (see the
/// module's doc).
pub(crate) struct AppendTx(Core);

impl AppendTx {
    pub(crate) async fn begin(how: Begin<'_>) -> Result<AppendTx, StoreError> {
        Ok(AppendTx(Core::begin(how).await?))
    }

    /// The connection for `sql`, which must only read, and the text to run:
    /// `sql` itself, or `BEGIN` and `sql` in one call when the transaction
    /// is not open yet (see [`Begin::HeldWithFirstStatement`]).
    pub(crate) fn read(&mut self, sql: &str) -> Result<(String, &mut AnyConnection), StoreError> {
        if !reads_only(sql) {
            return Err(misuse("a statement that writes"));
        }
        let sql = self.0.opened(sql);
        Ok((sql, self.0.conn()))
    }

    /// The connection for `sql`, which must write `table` only.
    pub(crate) fn append(
        &mut self,
        table: AppendTable,
        sql: &str,
    ) -> Result<(String, &mut AnyConnection), StoreError> {
        if !table.written_by(sql) {
            return Err(misuse("a statement that writes another table"));
        }
        let sql = self.0.opened(sql);
        Ok((sql, self.0.conn()))
    }

    /// Opens savepoint `name`, to release or roll back to later.
    pub(crate) async fn savepoint(&mut self, name: &'static str) -> Result<Savepoint, StoreError> {
        let sql = self.0.opened(&format!("SAVEPOINT {name}"));
        self.0.conn().execute(sql.as_str()).await?;
        Ok(Savepoint(name))
    }

    /// Releases `savepoint`: what was done since it stays.
    pub(crate) async fn release(&mut self, savepoint: Savepoint) -> Result<(), StoreError> {
        let sql = format!("RELEASE SAVEPOINT {}", savepoint.0);
        self.0.conn().execute(sql.as_str()).await?;
        Ok(())
    }

    /// Undoes what was done since `savepoint` (which stays open).
    pub(crate) async fn roll_back_to(&mut self, savepoint: &Savepoint) -> Result<(), StoreError> {
        let sql = format!("ROLLBACK TO SAVEPOINT {}", savepoint.0);
        self.0.conn().execute(sql.as_str()).await?;
        Ok(())
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        self.0.commit(Vec::new()).await
    }

    /// Runs `batch`, then commits.
    pub(crate) async fn commit_after(self, batch: AppendBatch) -> Result<(), StoreError> {
        self.0.commit(batch.statements).await
    }
}

/// A table lock a write transaction takes on PostgreSQL (SQLite's write
/// transactions are serial already).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lock {
    /// Every change to what may be done with subjects (the ledger,
    /// assignments, events, erasures), so that each eligibility decision made
    /// under it sees every ledger change committed before it, on any
    /// instance. Taken before [`Lock::AuditChain`].
    Subjects,
    /// Appends to the audit chain (conflicts with itself, not with readers).
    AuditChain,
}

impl Lock {
    fn statement(self) -> &'static str {
        match self {
            Lock::Subjects => "LOCK TABLE assignments IN SHARE ROW EXCLUSIVE MODE",
            Lock::AuditChain => "LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE",
        }
    }
}

/// Takes `lock` on `conn` (a PostgreSQL transaction's connection).
pub(crate) async fn take_lock(conn: &mut AnyConnection, lock: Lock) -> Result<(), StoreError> {
    conn.execute(lock.statement()).await?;
    Ok(())
}

impl AppendTx {
    /// Takes `lock` (PostgreSQL only; see [`Lock`]).
    pub(crate) async fn lock(&mut self, lock: Lock) -> Result<(), StoreError> {
        take_lock(self.0.conn(), lock).await
    }
}

/// Where a read may run: a plain connection (a reader's, a read
/// transaction's), a [`WriteTx`], or an [`AppendTx`] (which checks that the
/// statement reads and opens itself with it when it is not open yet). Read
/// helpers take `&mut impl Reads`, so that one helper serves every kind.
pub(crate) trait Reads {
    /// The connection to run `sql` on, and the text to run.
    fn reading(&mut self, sql: &str) -> Result<(String, &mut AnyConnection), StoreError>;
}

impl Reads for AnyConnection {
    fn reading(&mut self, sql: &str) -> Result<(String, &mut AnyConnection), StoreError> {
        Ok((sql.to_owned(), self))
    }
}

impl Reads for WriteTx {
    fn reading(&mut self, sql: &str) -> Result<(String, &mut AnyConnection), StoreError> {
        Ok((sql.to_owned(), self.0.conn()))
    }
}

impl Reads for AppendTx {
    fn reading(&mut self, sql: &str) -> Result<(String, &mut AnyConnection), StoreError> {
        self.read(sql)
    }
}

/// An open savepoint of an [`AppendTx`].
#[derive(Debug)]
pub(crate) struct Savepoint(&'static str);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_append_may_write_only_the_table_it_names() {
        let events = AppendTable::Events;
        assert!(events.written_by("INSERT INTO events (a) VALUES (?)"));
        assert!(events.written_by("insert into events(a) values (?)"));
        assert!(!events.written_by("INSERT INTO experiments (a) VALUES (?)"));
        assert!(!events.written_by("UPDATE events_x SET a = 1"));
        assert!(!events.written_by("INSERT INTO events (a) VALUES (1); DELETE FROM purposes"));
        assert!(AppendTable::UiSessions.written_by("UPDATE ui_sessions SET x = 1"));
        assert!(AppendTable::UiSessions.written_by("DELETE FROM ui_sessions WHERE x < 1"));
        assert!(
            !AppendTable::Assignments.written_by("UPDATE assignments SET withdrawn_at = 1 ; x")
        );
        assert!(reads_only("SELECT 1"));
        assert!(reads_only("  with x as (select 1) select * from x"));
        assert!(!reads_only("SELECT 1; DELETE FROM purposes"));
        assert!(!reads_only("DELETE FROM purposes"));
    }

    #[test]
    fn statements_for_one_call_are_joined_in_order() {
        assert_eq!(
            one_call(&["BEGIN IMMEDIATE", "SELECT 1", "COMMIT"]),
            "BEGIN IMMEDIATE; SELECT 1; COMMIT"
        );
    }
}
