-- Notices (issue 22): versioned texts per language and the purposes they
-- ask for; the consent receipts the customer's form hands out.

-- A notice, by its slug (e.g. `shop-testing`).
CREATE TABLE notices (
    id TEXT PRIMARY KEY,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One published version of a notice: its purposes and, per language, the
-- title, body and one sentence per purpose (JSON in `content`). Versions are
-- numbered 1, 2, ... by the server and never change once published.
CREATE TABLE notice_versions (
    notice_id TEXT NOT NULL REFERENCES notices (id),
    version BIGINT NOT NULL,
    content TEXT NOT NULL,
    published_by TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    PRIMARY KEY (notice_id, version)
);

-- A signed consent receipt (JWS compact serialization) handed to the person
-- who saved choices on the form, kept so that it can be downloaded again.
-- The subject is the pseudonym, never a raw id.
CREATE TABLE consent_receipts (
    id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    key_version BIGINT NOT NULL,
    notice_id TEXT NOT NULL,
    notice_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    jws TEXT NOT NULL
);
CREATE INDEX consent_receipts_by_subject ON consent_receipts (subject);

-- A privacy link issued to a shop for one person: the link's token is 32
-- random bytes handed out once and kept here only as its SHA-256 (hex), so
-- the token itself says nothing and the database cannot give it back. The
-- subject is the pseudonym, never a raw id; issued_by names the token that
-- asked for the link, so records made through it can be traced to it.
CREATE TABLE privacy_links (
    id_hash TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    key_version BIGINT NOT NULL,
    notice_id TEXT NOT NULL,
    issued_by TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
