-- Governed exports (issue 23): the systems that may receive a pilot's data
-- (data contracts) and the export requests made for them.

-- A recipient system, kept by compliance: its owner, the purposes whose
-- pilots it may receive and the formats it accepts (JSON arrays of text),
-- and the contract's end.
CREATE TABLE export_recipients (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    purposes TEXT NOT NULL,
    formats TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- A request to export a pilot to a recipient: pending, then approved or
-- denied by compliance (never by the requester). An approved export may be
-- downloaded by its requester `max_downloads` times before `expires_at`.
-- The id is random and says nothing; no subject id is kept here.
CREATE TABLE export_requests (
    id TEXT PRIMARY KEY,
    experiment_key TEXT NOT NULL REFERENCES experiments (key),
    recipient TEXT NOT NULL REFERENCES export_recipients (name),
    format TEXT NOT NULL,
    reason TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    comment TEXT,
    expires_at BIGINT,
    downloads BIGINT NOT NULL,
    max_downloads BIGINT NOT NULL
);
CREATE INDEX export_requests_by_experiment ON export_requests (experiment_key);
