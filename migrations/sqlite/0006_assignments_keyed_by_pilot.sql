-- Assignments become one B-tree keyed by (pilot, subject) that holds the
-- whole row, and the index by subject alone goes: a first-time assignment
-- used to update a rowid table and two indexes keyed by random hashes, so
-- each one dirtied two pages to write to the WAL. Every reader knows the
-- pilot or can list the pilots (erasure and withdrawal try each pilot's key
-- with the subject), so the primary key serves them all.
CREATE TABLE assignments_keyed (
    experiment_key TEXT NOT NULL REFERENCES experiments (key),
    subject TEXT NOT NULL,
    key_version INTEGER NOT NULL,
    variant TEXT NOT NULL,
    assigned_at INTEGER NOT NULL,
    basis TEXT NOT NULL,
    consent_record_id INTEGER REFERENCES consent_records (id),
    notice_version INTEGER,
    withdrawn_at INTEGER,
    PRIMARY KEY (experiment_key, subject)
) WITHOUT ROWID;
INSERT INTO assignments_keyed
    SELECT experiment_key, subject, key_version, variant, assigned_at, basis, consent_record_id, notice_version, withdrawn_at
    FROM assignments ORDER BY experiment_key, subject;
DROP TABLE assignments;
ALTER TABLE assignments_keyed RENAME TO assignments;
