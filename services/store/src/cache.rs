//! Read caches of one server process on SQLite (token credentials, pilots as
//! assignment sees them, sticky assignments and subjects' ledgers, each kept
//! by the feature that reads it): the generation they are tagged with, the
//! map that keeps an entry only for its generation, and the watcher. They
//! make a repeat assignment cost no database round trip.
//!
//! Correctness rests on one generation counter. Every entry is stored with the
//! generation read *before* the database read that produced it, and is valid
//! only while the counter still has that value. The counter moves:
//! - after every commit of this process that may change a cached row (every
//!   write transaction except the append-only ones: first-time assignments,
//!   events, refusal counters), before the writing request answers;
//! - when another process commits a change to the file, e.g. `pilotgate
//!   consents import` or `token revoke` run beside the server: every write
//!   transaction but the appends moves the one-row `change_epoch`, which the
//!   watcher polls every [`WATCH_EVERY`]. (`PRAGMA data_version` would also
//!   move on this process's own appends, and drop the caches every few
//!   milliseconds under ingestion.)
//!
//! On PostgreSQL the caches are off: several instances share the database and
//! each must see the others' changes at once, so every read goes to it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::{AnyConnection, AnyPool};

/// How often the SQLite file is checked for commits of other processes.
pub(crate) const WATCH_EVERY: Duration = Duration::from_millis(2);

/// Entries per cache; a full cache starts over empty.
pub(crate) const CAPACITY: usize = 200_000;

/// The generation every cached entry is tagged with, and whether caching is on.
#[derive(Debug, Default)]
pub(crate) struct Generation {
    enabled: AtomicBool,
    generation: AtomicU64,
}

impl Generation {
    /// The generation to tag a read with, or `None` when caching is off.
    pub(crate) fn current(&self) -> Option<u64> {
        self.enabled
            .load(Ordering::Acquire)
            .then(|| self.generation.load(Ordering::Acquire))
    }

    /// Something cached may have changed: every entry is stale from now on.
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn enable(&self) {
        self.changed();
        self.enabled.store(true, Ordering::Release);
    }

    fn disable(&self) {
        self.enabled.store(false, Ordering::Release);
    }
}

/// A map whose entries hold only for the generation they were read in.
pub(crate) struct Generational<K, V>(RwLock<(u64, HashMap<K, V>)>);

impl<K, V> Default for Generational<K, V> {
    fn default() -> Self {
        Generational(RwLock::new((0, HashMap::new())))
    }
}

impl<K: Eq + Hash, V: Clone> Generational<K, V> {
    /// The entry for `key` if it was read in generation `generation`.
    pub(crate) fn get(&self, generation: Option<u64>, key: &K) -> Option<V> {
        let generation = generation?;
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        (map.0 == generation).then(|| map.1.get(key).cloned())?
    }

    /// Keeps `value`, read from the database in generation `generation`.
    pub(crate) fn put(&self, generation: Option<u64>, key: K, value: V) {
        let Some(generation) = generation else {
            return;
        };
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        if map.0 < generation || map.1.len() >= CAPACITY {
            map.0 = generation;
            map.1.clear();
        }
        if map.0 == generation {
            map.1.insert(key, value);
        }
    }
}

/// Turns the caches on, then moves the generation whenever another connection
/// commits to the SQLite file. Runs until `pool` closes. While the file does
/// not answer, the caches are off (every read goes to the file); they come
/// back on, with a new generation, once it answers again.
pub(crate) async fn watch(mut conn: AnyConnection, pool: AnyPool, generation: &Generation) {
    let mut last: Option<i64> = None;
    while !pool.is_closed() {
        match sqlx::query_scalar::<_, i64>("SELECT n FROM change_epoch WHERE id = 1")
            .fetch_one(&mut conn)
            .await
        {
            Ok(version) => {
                match last {
                    // The baseline is known only now: nothing read before can be trusted.
                    None => generation.enable(),
                    Some(previous) if previous != version => generation.changed(),
                    Some(_) => {}
                }
                last = Some(version);
            }
            Err(error) => {
                if last.is_some() {
                    tracing::warn!(%error, "the cache watcher cannot read the database; caches off until it can");
                }
                generation.disable();
                last = None;
            }
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
    generation.disable();
}
