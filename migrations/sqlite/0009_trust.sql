-- Trust holes of the attack review (issue 19).

-- A revoked token's name may be given again: a name holds at most one
-- *active* token per role. (SQLite cannot drop a table constraint, so the
-- table is rebuilt without UNIQUE (name, role).)
CREATE TABLE api_tokens_active_names (
    id INTEGER PRIMARY KEY,
    token_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
INSERT INTO api_tokens_active_names (id, token_id, name, role, secret_hash, created_at, revoked_at)
    SELECT id, token_id, name, role, secret_hash, created_at, revoked_at FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_active_names RENAME TO api_tokens;
CREATE UNIQUE INDEX api_tokens_active_name_role ON api_tokens (name, role) WHERE revoked_at IS NULL;

-- Dashboard sessions: only the SHA-256 of the cookie's random id is kept,
-- with the token it was opened with (a revoked token ends its sessions).
CREATE TABLE ui_sessions (
    id_hash TEXT PRIMARY KEY,
    token_id TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    ended_at INTEGER
);
CREATE INDEX ui_sessions_by_token ON ui_sessions (token_id);

-- Who created, edited or submitted each version of a pilot's design: none of
-- them may approve or deny it (separation of duties per person). Filled from
-- the audit log for pilots made before this migration.
CREATE TABLE design_contributors (
    experiment_key TEXT NOT NULL REFERENCES experiments (key),
    design_version INTEGER NOT NULL,
    person TEXT NOT NULL,
    action TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (experiment_key, design_version, person, action)
);
INSERT OR IGNORE INTO design_contributors (experiment_key, design_version, person, action, at)
    SELECT key, 1, created_by, 'create', created_at FROM experiments;
INSERT OR IGNORE INTO design_contributors (experiment_key, design_version, person, action, at)
    SELECT substr(a.target, 12), CAST(json_extract(a.details, '$.design_version') AS INTEGER),
           substr(a.actor, 1, instr(a.actor, ' (') - 1),
           CASE a.action WHEN 'experiment.update' THEN 'edit' ELSE 'submit' END, a.at
    FROM audit_log a JOIN experiments e ON e.key = substr(a.target, 12)
    WHERE a.action IN ('experiment.update', 'experiment.submit') AND instr(a.actor, ' (') > 1;

-- What this database knows of the keys kept outside it: per key (kind
-- 'pseudonym' with its version, or 'audit' with version 0) an HMAC of a fixed
-- label under the key, never the key. A key ring that does not match is refused.
CREATE TABLE key_fingerprints (
    kind TEXT NOT NULL,
    version INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (kind, version)
);

-- A random id of this database, written into the audit anchors so that one
-- anchor file may serve several databases.
CREATE TABLE database_identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    database_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
INSERT INTO database_identity (id, database_id, created_at)
    VALUES (1, lower(hex(randomblob(16))), CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));

-- Pseudonyms of one person under different key versions, seen together when
-- the person's raw id arrived (pairs of pseudonyms, never the raw id): an
-- erasure by one pseudonym erases them all.
CREATE TABLE subject_links (
    subject TEXT NOT NULL,
    key_version INTEGER NOT NULL,
    alias TEXT NOT NULL,
    alias_key_version INTEGER NOT NULL,
    PRIMARY KEY (subject, alias)
);
