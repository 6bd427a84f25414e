//! Errors of the store, sorted by what a caller can do about them.

/// What went wrong in the store. Messages never contain row values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is too busy right now; retrying later may work.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The URL does not name a database pilotgate supports.
    #[error("{0}")]
    BadUrl(String),
    /// A row with the same identity exists already.
    #[error("{0}")]
    Conflict(String),
    /// The keys given do not match the keys this database was used with.
    #[error("{0}")]
    Keys(String),
    /// The actor may not do this (separation of duties).
    #[error("{0}")]
    Forbidden(String),
    /// The row asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Applying the migrations failed.
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if is_unavailable(&error) {
            StoreError::Unavailable(error)
        } else {
            StoreError::Database(error)
        }
    }
}

/// True for failures that say "not now" rather than "never": lost connections,
/// pool time-outs, a locked SQLite file, a PostgreSQL server shutting down.
fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // SQLite: 5 SQLITE_BUSY, 6 SQLITE_LOCKED, 10 SQLITE_IOERR, 14 SQLITE_CANTOPEN
            // (extended codes keep the primary code in the low byte).
            // PostgreSQL: class 08 connection exceptions, 57P0x operator intervention, 3D000 no such database.
            let sqlite_primary = code.parse::<i64>().ok().map(|c| c & 0xff);
            matches!(sqlite_primary, Some(5 | 6 | 10 | 14))
                || code.starts_with("08")
                || code.starts_with("57P")
                || code == "3D000"
                // The database refuses connections for now (ALLOW_CONNECTIONS false during maintenance).
                || code == "55000"
        }
        _ => false,
    }
}

/// A stored value that the domain cannot read back: a bug or a hand-edited row.
pub(crate) fn corrupt(column: &str) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(
        format!("unreadable value in {column}").into(),
    ))
}

/// True when a database error is a unique-constraint violation.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// `result` of an insert, a uniqueness violation read as `Conflict(conflict())`.
pub(crate) fn unless_taken<T>(
    result: Result<T, sqlx::Error>,
    conflict: impl FnOnce() -> String,
) -> Result<T, StoreError> {
    match result {
        Err(error) if is_unique_violation(&error) => Err(StoreError::Conflict(conflict())),
        other => Ok(other?),
    }
}
