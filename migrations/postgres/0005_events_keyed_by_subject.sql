-- Events are keyed by (pilot, subject, event id), as on SQLite, where they
-- became one B-tree holding the whole row: an event id is now unique per
-- subject within a pilot (a retry always carries the same user). Here the
-- primary key's index also covers the per-user outcomes, so it replaces the
-- surrogate id and both older indexes.
ALTER TABLE events DROP CONSTRAINT events_event_id_experiment_key_key;
DROP INDEX events_by_experiment_subject_time;
ALTER TABLE events DROP COLUMN id;
ALTER TABLE events ADD PRIMARY KEY (experiment_key, subject, event_id) INCLUDE (name, occurred_at, value);
