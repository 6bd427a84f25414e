-- Purposes as versions, legitimate-interest assessments as records, and
-- retirement (issue 22).

-- The version in force and, once retired, when.
ALTER TABLE purposes ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE purposes ADD COLUMN retired_at BIGINT;

-- Every version of every purpose, as compliance wrote it: the history the
-- registry page shows. The purposes table holds the version in force.
CREATE TABLE purpose_versions (
    purpose TEXT NOT NULL REFERENCES purposes (key),
    version BIGINT NOT NULL,
    description TEXT NOT NULL,
    allowed_bases TEXT NOT NULL,
    min_notice_version BIGINT NOT NULL,
    special_category BIGINT NOT NULL,
    contract_necessary BIGINT NOT NULL,
    retention_days BIGINT NOT NULL,
    retired BIGINT NOT NULL,
    -- What the version changed and what followed (pilots sent back to draft), as JSON.
    change TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    changed_at BIGINT NOT NULL,
    PRIMARY KEY (purpose, version)
);
INSERT INTO purpose_versions (purpose, version, description, allowed_bases, min_notice_version,
    special_category, contract_necessary, retention_days, retired, change, changed_by, changed_at)
    SELECT key, 1, description, allowed_bases, min_notice_version, special_category,
           contract_necessary, retention_days, 0, '{"created":true}', 'migration', created_at
    FROM purposes;

-- Legitimate-interest assessments (Art. 6(1)(f)): the three tests, the
-- outcome, who reviewed it and when; versioned per purpose. The purpose's
-- li_assessment_ref names the newest one when its outcome is positive.
CREATE TABLE li_assessments (
    purpose TEXT NOT NULL REFERENCES purposes (key),
    version BIGINT NOT NULL,
    purpose_test TEXT NOT NULL,
    necessity_test TEXT NOT NULL,
    interests TEXT NOT NULL,
    expectations TEXT NOT NULL,
    safeguards TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    reviewed_on TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (purpose, version)
);
-- A free-text reference given before assessments were records becomes
-- version 1, positive, saying where it came from.
INSERT INTO li_assessments (purpose, version, purpose_test, necessity_test, interests,
    expectations, safeguards, outcome, reviewer, reviewed_on, recorded_by, recorded_at)
    SELECT key, 1, 'Recorded before assessments were records: ' || li_assessment_ref,
           'See the reference.', 'See the reference.', 'See the reference.', 'See the reference.',
           'positive', 'unknown (migrated)', to_char(to_timestamp(created_at / 1000000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 'migration', created_at
    FROM purposes WHERE li_assessment_ref IS NOT NULL;
UPDATE purposes SET li_assessment_ref = 'LIA v1' WHERE li_assessment_ref IS NOT NULL;

-- Why a pilot was sent back to draft by a change of its purpose; shown on
-- the pilot's page until it is submitted again.
ALTER TABLE experiments ADD COLUMN returned_at BIGINT;
ALTER TABLE experiments ADD COLUMN returned_reason TEXT;
