//! Dashboard sessions: the hash of each session's secret id, the token it was
//! opened with and its times. No cache holds them, so their writes leave the
//! caches be: their writes are appends (`db::AppendTable::UiSessions`).

use chrono::{DateTime, Utc};
use pilotgate_domain::session::SessionTimes;
use pilotgate_domain::time::{from_micros, to_micros};
use sqlx::Row;

use crate::core::Core;
use crate::db::AppendTable;
use crate::error::StoreError;

/// A stored session, found by the hash of its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The public id of the token the session was opened with.
    pub token_id: String,
    pub times: SessionTimes,
}

/// Sessions whose last request is older than this are deleted when someone signs in.
const FORGET_AFTER_DAYS: i64 = 7;

impl Core {
    /// Stores a new session opened with the token `token_id` at `now`; sessions
    /// idle for a week are forgotten on the way.
    pub async fn open_session(
        &self,
        id_hash: &str,
        token_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let at = to_micros(now);
        let forget_before = to_micros(now - chrono::Duration::days(FORGET_AFTER_DAYS));
        let mut tx = self.begin_append().await?;
        let (sql, conn) = tx.append(
            AppendTable::UiSessions,
            "DELETE FROM ui_sessions WHERE last_seen_at < $1",
        )?;
        sqlx::query(&sql).bind(forget_before).execute(conn).await?;
        let (sql, conn) = tx.append(
            AppendTable::UiSessions,
            "INSERT INTO ui_sessions (id_hash, token_id, issued_at, last_seen_at) VALUES ($1, $2, $3, $3)",
        )?;
        sqlx::query(&sql)
            .bind(id_hash)
            .bind(token_id)
            .bind(at)
            .execute(conn)
            .await?;
        tx.commit().await
    }

    /// The session whose id hashes to `id_hash`, if any.
    pub async fn session(&self, id_hash: &str) -> Result<Option<StoredSession>, StoreError> {
        let row = sqlx::query(
            "SELECT token_id, issued_at, last_seen_at, ended_at FROM ui_sessions WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| {
            Ok(StoredSession {
                token_id: row.try_get("token_id")?,
                times: SessionTimes {
                    issued_at: from_micros(row.try_get("issued_at")?),
                    last_seen_at: from_micros(row.try_get("last_seen_at")?),
                    ended_at: row.try_get::<Option<i64>, _>("ended_at")?.map(from_micros),
                },
            })
        })
        .transpose()
    }

    /// Records a request of the session at `now`.
    pub async fn touch_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.update_session(
            "UPDATE ui_sessions SET last_seen_at = $1 WHERE id_hash = $2 AND last_seen_at < $1",
            id_hash,
            now,
        )
        .await
    }

    /// Ends the session (sign-out); it cannot be used again.
    pub async fn end_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.update_session(
            "UPDATE ui_sessions SET ended_at = $1 WHERE id_hash = $2 AND ended_at IS NULL",
            id_hash,
            now,
        )
        .await
    }

    /// Runs `sql` (binding the instant `now`, then the session's `id_hash`) and commits.
    async fn update_session(
        &self,
        sql: &str,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_append().await?;
        let (sql, conn) = tx.append(AppendTable::UiSessions, sql)?;
        sqlx::query(&sql)
            .bind(to_micros(now))
            .bind(id_hash)
            .execute(conn)
            .await?;
        tx.commit().await
    }
}
