//! WAL checkpoints of a long-running server on SQLite, off the commit path.
//!
//! SQLite's own checkpoint runs inside the commit that takes the WAL past
//! `wal_autocheckpoint` pages: the writer copies the WAL's pages into the
//! database file and fsyncs it before that commit returns, so every few group
//! commits of events wait for a second write and a second fsync, and the
//! single writer stalls. A server instead checkpoints from a connection of
//! its own every [`EVERY`], in PASSIVE mode, which neither waits for the
//! writer nor blocks it; the writer's automatic checkpoint stays as a
//! backstop at [`BACKSTOP_PAGES`] for when this one falls behind and for the
//! command-line tools, which never start it.
//!
//! Rare checkpoints also write less: a page that several commits changed is
//! copied into the file once per checkpoint. Ingestion changes pages of
//! B-trees keyed by random hashes (assignments, and events while they were
//! keyed by subject), so each commit rewrites many of the same pages
//! (measured with `bench/load.sh` on events keyed by subject: 8.3 KB written
//! per event with a checkpoint every 100 ms, 6.1 KB every 2 s, 18% faster). The price
//! is a WAL of up to 256 MiB beside the database file.
//!
//! Durability does not change: a commit is acknowledged once its WAL frames
//! are fsynced (`synchronous = FULL`), whoever copies them on later.

use std::time::Duration;

use sqlx::{AnyConnection, AnyPool, Executor};

/// How often the server checkpoints.
pub(crate) const EVERY: Duration = Duration::from_millis(2000);

/// WAL pages (4 KiB each) past which the writer checkpoints by itself.
pub(crate) const BACKSTOP_PAGES: u32 = 65_536;

/// Checkpoints until `pool` closes.
pub(crate) async fn run(mut conn: AnyConnection, pool: AnyPool) {
    let mut failing = false;
    while !pool.is_closed() {
        match conn.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
            Ok(_) => failing = false,
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "a WAL checkpoint failed; the writer checkpoints by itself until one succeeds");
                }
                failing = true;
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}
