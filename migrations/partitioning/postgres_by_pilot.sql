-- Partitions events and assignments by pilot on PostgreSQL (issue 25): a
-- hash of experiment_key into 16 partitions each. Every key of both tables
-- starts with experiment_key, every read of them names a pilot (results
-- read the aggregates; ingest, erasure and exports look up a pilot's rows
-- by key), so each query touches one partition, and a purged pilot's rows
-- leave one partition.
--
-- Not a numbered migration: a deployment runs it when one table outgrows a
-- comfortable size (ARCHITECTURE.md, "Growing past one PostgreSQL
-- primary"), in a maintenance window with every `pilotgate serve` stopped,
-- after `pilotgate migrate`:
--   psql "$PILOTGATE_DATABASE_URL" -v ON_ERROR_STOP=1 -f migrations/partitioning/postgres_by_pilot.sql
-- It runs in one transaction (all or nothing) and copies the rows once.
-- Later numbered migrations apply to partitioned tables as to plain ones.
-- Checked by services/store/tests/partitioning.rs: the storage stories run
-- on a database partitioned by this file.
BEGIN;

ALTER TABLE events RENAME TO events_unpartitioned;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_pkey TO events_unpartitioned_pkey;
CREATE TABLE events (LIKE events_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY HASH (experiment_key);
ALTER TABLE events ADD PRIMARY KEY (experiment_key, occurred_at, subject, event_id);
ALTER TABLE events ADD FOREIGN KEY (experiment_key) REFERENCES experiments (key);

ALTER TABLE assignments RENAME TO assignments_unpartitioned;
ALTER TABLE assignments_unpartitioned RENAME CONSTRAINT assignments_pkey TO assignments_unpartitioned_pkey;
CREATE TABLE assignments (LIKE assignments_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY HASH (experiment_key);
ALTER TABLE assignments ADD PRIMARY KEY (experiment_key, subject);
ALTER TABLE assignments ADD FOREIGN KEY (experiment_key) REFERENCES experiments (key);
ALTER TABLE assignments ADD FOREIGN KEY (consent_record_id) REFERENCES consent_records (id);

DO $$
BEGIN
    FOR i IN 0..15 LOOP
        EXECUTE format('CREATE TABLE events_p%s PARTITION OF events FOR VALUES WITH (MODULUS 16, REMAINDER %s)', i, i);
        EXECUTE format('CREATE TABLE assignments_p%s PARTITION OF assignments FOR VALUES WITH (MODULUS 16, REMAINDER %s)', i, i);
    END LOOP;
END $$;

INSERT INTO events SELECT * FROM events_unpartitioned;
INSERT INTO assignments SELECT * FROM assignments_unpartitioned;
DROP TABLE events_unpartitioned;
DROP TABLE assignments_unpartitioned;

COMMIT;
