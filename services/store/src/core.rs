//! What every feature of the store works with: the database, the clock, the
//! caches' generation and the attached audit key. Features implement their
//! operations on `Core` (one file each); state of one feature only (a group
//! commit's queue, a cache of its rows) lives in that feature's handle, which
//! the `Store` facade holds. `Core` knows no feature.

use std::sync::{Arc, RwLock};

use pilotgate_domain::audit::AuditKey;

use crate::cache::Generation;
use crate::clock::Clock;
use crate::db::{CommitHook, Db, Dialect, WriteTx};
use crate::error::StoreError;

/// The database and what every feature shares. Cheap to clone.
#[derive(Clone)]
pub struct Core {
    pub(crate) db: Db,
    /// The instants the store stamps; see [`Core::simulate_time`].
    pub(crate) clock: Arc<Clock>,
    /// The generation of every cached read (see `cache.rs`).
    pub(crate) generation: Arc<Generation>,
    /// The key audit entries are chained with, once `Core::attach_keys` checked it.
    pub(crate) audit_key: Arc<RwLock<Option<AuditKey>>>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for Core {
    type Target = Db;
    fn deref(&self) -> &Db {
        &self.db
    }
}

impl Core {
    pub(crate) fn new(db: Db) -> Core {
        Core {
            db,
            clock: Arc::default(),
            generation: Arc::default(),
            audit_key: Arc::default(),
        }
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
        self.db.dialect
    }

    /// The caches' generation (`None` while they are off), for tests.
    #[cfg(feature = "testing")]
    pub fn cache_generation(&self) -> Option<u64> {
        self.generation.current()
    }

    /// Begins a transaction that may change any table: its commit makes
    /// every cached read stale.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        self.db.begin_write(self.commit_hook()).await
    }

    /// [`Core::begin_write`] under the subject lock (see `db::Lock`).
    pub(crate) async fn begin_subject_write(&self) -> Result<WriteTx, StoreError> {
        self.db.begin_subject_write(self.commit_hook()).await
    }

    fn commit_hook(&self) -> CommitHook {
        let generation = Arc::clone(&self.generation);
        Arc::new(move || generation.changed())
    }
}
