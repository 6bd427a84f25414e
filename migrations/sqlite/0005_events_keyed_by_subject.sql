-- Events become one B-tree keyed by (pilot, subject, event id) that holds the
-- whole row. An insert used to update three: the rowid table, the unique
-- index on (event id, pilot), and the covering index by pilot and subject,
-- two of them at random places, so each event dirtied two pages to write to
-- the WAL. The key still serves every reader: per-user outcomes and erasure
-- seek by (pilot, subject); export and purge scan by pilot. An event id is
-- now unique per subject within a pilot: a retry always carries the same user.
CREATE TABLE events_keyed (
    experiment_key TEXT NOT NULL REFERENCES experiments (key),
    subject TEXT NOT NULL,
    event_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    occurred_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (experiment_key, subject, event_id)
) WITHOUT ROWID;
INSERT INTO events_keyed (experiment_key, subject, event_id, name, value, occurred_at, received_at)
    SELECT experiment_key, subject, event_id, name, value, occurred_at, received_at FROM events
    ORDER BY experiment_key, subject, event_id;
DROP TABLE events;
ALTER TABLE events_keyed RENAME TO events;
