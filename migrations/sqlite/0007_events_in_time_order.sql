-- Events are keyed by (pilot, occurrence, subject, event id): most events
-- arrive soon after they occur, so a commit's inserts land together at the
-- end of the pilot's range instead of one per page all over a B-tree keyed
-- by random hashes (measured with bench/events_layout.py: over ten times
-- fewer bytes written per event). A retry carries the same occurrence, so the key
-- still tells it apart. Per-user outcomes come from one pass over a pilot's
-- events (see Store::daily_outcome_sums); erasure scans the pilots it needs.
CREATE TABLE events_in_time (
    experiment_key TEXT NOT NULL REFERENCES experiments (key),
    occurred_at INTEGER NOT NULL,
    subject TEXT NOT NULL,
    event_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (experiment_key, occurred_at, subject, event_id)
) WITHOUT ROWID;
INSERT INTO events_in_time (experiment_key, occurred_at, subject, event_id, name, value, received_at)
    SELECT experiment_key, occurred_at, subject, event_id, name, value, received_at FROM events
    ORDER BY experiment_key, occurred_at, subject, event_id;
DROP TABLE events;
ALTER TABLE events_in_time RENAME TO events;
