-- Per-user outcomes (the results endpoint) read every event of a pilot by
-- subject: a covering index answers that without touching the table, and
-- erasure finds a subject's events through it too (pilot by pilot). The three
-- older secondary indexes go: every insert now updates two B-trees fewer.
DROP INDEX events_by_experiment;
DROP INDEX events_by_experiment_subject;
DROP INDEX events_by_subject;
CREATE INDEX events_by_experiment_subject_time ON events (experiment_key, subject, name, occurred_at, value);
