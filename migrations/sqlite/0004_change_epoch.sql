-- One row counting the commits that may change a cached row (every write but
-- the appends: first-time assignments, events, refusal counters). A server on
-- SQLite polls it to drop its caches when another process changed something,
-- without mistaking its own appends for changes (see services/store/src/cache.rs).
CREATE TABLE change_epoch (id INTEGER PRIMARY KEY CHECK (id = 1), n BIGINT NOT NULL);
INSERT INTO change_epoch (id, n) VALUES (1, 0);
