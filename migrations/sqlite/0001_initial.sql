-- The whole pilotgate domain (SQLite dialect; migrations/postgres holds the same tables).
-- Every instant is an INTEGER of microseconds since the Unix epoch, UTC.
-- Flags are INTEGER 0/1. Subjects are pseudonyms (HMAC-SHA256 hex), never raw ids.

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    token_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    -- A name is a person or system; it may hold one token per role.
    UNIQUE (name, role)
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_by_target ON audit_log (target, id);

CREATE TABLE purposes (
    key TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    allowed_bases TEXT NOT NULL,
    min_notice_version INTEGER NOT NULL,
    special_category INTEGER NOT NULL CHECK (special_category IN (0, 1)),
    li_assessment_ref TEXT,
    contract_necessary INTEGER NOT NULL CHECK (contract_necessary IN (0, 1)),
    retention_days INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE consent_records (
    id INTEGER PRIMARY KEY,
    content_hash TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    key_version INTEGER NOT NULL,
    purpose TEXT NOT NULL REFERENCES purposes (key),
    basis TEXT NOT NULL,
    status TEXT NOT NULL,
    notice_id TEXT NOT NULL,
    notice_version INTEGER NOT NULL,
    source_channel TEXT NOT NULL,
    source_method TEXT NOT NULL,
    collected_at INTEGER NOT NULL,
    effective_from INTEGER NOT NULL,
    expires_at INTEGER,
    proof_ref TEXT,
    recorded_by TEXT NOT NULL,
    recorded_at INTEGER NOT NULL
);
CREATE INDEX consent_records_latest ON consent_records (subject, purpose, effective_from, id);
CREATE INDEX consent_records_by_purpose ON consent_records (purpose, basis, status);

CREATE TABLE erasures (
    id INTEGER PRIMARY KEY,
    subject TEXT NOT NULL UNIQUE,
    key_version INTEGER NOT NULL,
    requested_at INTEGER NOT NULL,
    executed_at INTEGER,
    deleted_assignments INTEGER NOT NULL,
    deleted_events INTEGER NOT NULL,
    audit_id INTEGER
);

CREATE TABLE experiments (
    key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hypothesis TEXT NOT NULL,
    owner TEXT NOT NULL,
    purpose TEXT NOT NULL REFERENCES purposes (key),
    state TEXT NOT NULL,
    coverage REAL NOT NULL,
    seed TEXT NOT NULL,
    primary_event TEXT NOT NULL,
    primary_kind TEXT NOT NULL,
    guardrails TEXT NOT NULL,
    mde REAL NOT NULL,
    alpha REAL NOT NULL,
    power REAL NOT NULL,
    baseline_rate REAL,
    planned_sample_size INTEGER,
    attribution_window_hours INTEGER,
    data_categories TEXT NOT NULL,
    retention_days INTEGER NOT NULL,
    design_version INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    started_at INTEGER,
    stopped_at INTEGER
);

CREATE TABLE experiment_variants (
    experiment_key TEXT NOT NULL REFERENCES experiments (key),
    position INTEGER NOT NULL,
    variant_key TEXT NOT NULL,
    weight REAL NOT NULL,
    PRIMARY KEY (experiment_key, variant_key)
);

CREATE TABLE approvals (
    id INTEGER PRIMARY KEY,
    experiment_key TEXT NOT NULL REFERENCES experiments (key),
    design_version INTEGER NOT NULL,
    decision TEXT NOT NULL,
    comment TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    decided_at INTEGER NOT NULL,
    voided_at INTEGER
);
CREATE INDEX approvals_by_experiment ON approvals (experiment_key, id);

-- assigned_at is the instant of the eligibility decision that the proof columns describe.
CREATE TABLE assignments (
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
);
CREATE INDEX assignments_by_subject ON assignments (subject);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    experiment_key TEXT NOT NULL REFERENCES experiments (key),
    event_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    occurred_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (event_id, experiment_key)
);
CREATE INDEX events_by_subject ON events (subject);
CREATE INDEX events_by_experiment ON events (experiment_key, name, occurred_at);

-- Ineligible assignment calls and refused events leave only a count, never a subject.
CREATE TABLE refusal_counters (
    experiment_key TEXT NOT NULL,
    stage TEXT NOT NULL,
    reason TEXT NOT NULL,
    day TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (experiment_key, stage, reason, day)
);

-- Aggregates kept after raw events are purged.
CREATE TABLE result_summaries (
    id INTEGER PRIMARY KEY,
    experiment_key TEXT NOT NULL REFERENCES experiments (key),
    computed_at INTEGER NOT NULL,
    summary TEXT NOT NULL
);
