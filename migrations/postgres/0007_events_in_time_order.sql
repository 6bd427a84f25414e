-- As on SQLite: events are keyed by (pilot, occurrence, subject, event id),
-- so that one commit's inserts land together in the key's index; a retry
-- carries the same occurrence. Per-user outcomes come from one pass over a
-- pilot's events (see Store::daily_outcome_sums).
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ADD PRIMARY KEY (experiment_key, occurred_at, subject, event_id);
