-- The per-user aggregation of a pilot's events joins them on (pilot, subject).
CREATE INDEX events_by_experiment_subject ON events (experiment_key, subject, name);
