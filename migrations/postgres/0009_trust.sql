-- Trust holes of the attack review (issue 19).

-- A revoked token's name may be given again: a name holds at most one
-- *active* token per role.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_name_role_key;
CREATE UNIQUE INDEX api_tokens_active_name_role ON api_tokens (name, role) WHERE revoked_at IS NULL;

-- Dashboard sessions: only the SHA-256 of the cookie's random id is kept,
-- with the token it was opened with (a revoked token ends its sessions).
CREATE TABLE ui_sessions (
    id_hash TEXT PRIMARY KEY,
    token_id TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX ui_sessions_by_token ON ui_sessions (token_id);

-- Who created, edited or submitted each version of a pilot's design: none of
-- them may approve or deny it (separation of duties per person). Filled from
-- the audit log for pilots made before this migration.
CREATE TABLE design_contributors (
    experiment_key TEXT NOT NULL REFERENCES experiments (key),
    design_version BIGINT NOT NULL,
    person TEXT NOT NULL,
    action TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (experiment_key, design_version, person, action)
);
INSERT INTO design_contributors (experiment_key, design_version, person, action, at)
    SELECT key, 1, created_by, 'create', created_at FROM experiments
    ON CONFLICT DO NOTHING;
INSERT INTO design_contributors (experiment_key, design_version, person, action, at)
    SELECT substr(a.target, 12), (a.details::json ->> 'design_version')::bigint,
           split_part(a.actor, ' (', 1),
           CASE a.action WHEN 'experiment.update' THEN 'edit' ELSE 'submit' END, a.at
    FROM audit_log a JOIN experiments e ON e.key = substr(a.target, 12)
    WHERE a.action IN ('experiment.update', 'experiment.submit') AND strpos(a.actor, ' (') > 1
    ON CONFLICT DO NOTHING;

-- What this database knows of the keys kept outside it: per key (kind
-- 'pseudonym' with its version, or 'audit' with version 0) an HMAC of a fixed
-- label under the key, never the key. A key ring that does not match is refused.
CREATE TABLE key_fingerprints (
    kind TEXT NOT NULL,
    version BIGINT NOT NULL,
    fingerprint TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (kind, version)
);

-- A random id of this database, written into the audit anchors so that one
-- anchor file may serve several databases.
CREATE TABLE database_identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    database_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO database_identity (id, database_id, created_at)
    VALUES (1, replace(gen_random_uuid()::text, '-', ''), (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);

-- Pseudonyms of one person under different key versions, seen together when
-- the person's raw id arrived (pairs of pseudonyms, never the raw id): an
-- erasure by one pseudonym erases them all.
CREATE TABLE subject_links (
    subject TEXT NOT NULL,
    key_version BIGINT NOT NULL,
    alias TEXT NOT NULL,
    alias_key_version BIGINT NOT NULL,
    PRIMARY KEY (subject, alias)
);
