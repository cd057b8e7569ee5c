-- learnpulse embedded schema (SQLite, WAL). Applied idempotently at every start.
--
-- The event log is one append-only table keyed by a sequence number. Actor, verb and activity
-- are interned to integers per tenant, so the secondary indexes are (small integer, seq) pairs:
-- each new row lands at the right-hand end of its key's range, which keeps index maintenance
-- cheap as the log grows. The only random-key index is the unique statement id.

CREATE TABLE IF NOT EXISTS tenants (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_us  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS api_keys (
    key_id         TEXT PRIMARY KEY,
    tenant_id      INTEGER NOT NULL REFERENCES tenants(id),
    role           TEXT NOT NULL,
    secret_sha256  BLOB NOT NULL,
    label          TEXT,
    created_us     INTEGER NOT NULL,
    revoked_us     INTEGER
);
CREATE INDEX IF NOT EXISTS api_keys_by_tenant ON api_keys(tenant_id);

CREATE TABLE IF NOT EXISTS actors (
    id         INTEGER PRIMARY KEY,
    tenant_id  INTEGER NOT NULL,
    ifi        TEXT NOT NULL,
    UNIQUE (tenant_id, ifi)
);
CREATE TABLE IF NOT EXISTS verbs (
    id         INTEGER PRIMARY KEY,
    tenant_id  INTEGER NOT NULL,
    iri        TEXT NOT NULL,
    UNIQUE (tenant_id, iri)
);
CREATE TABLE IF NOT EXISTS activities (
    id         INTEGER PRIMARY KEY,
    tenant_id  INTEGER NOT NULL,
    iri        TEXT NOT NULL,
    UNIQUE (tenant_id, iri)
);

CREATE TABLE IF NOT EXISTS statements (
    seq           INTEGER PRIMARY KEY,
    tenant_id     INTEGER NOT NULL,
    statement_id  BLOB NOT NULL,        -- 16-byte UUID
    stored_us     INTEGER NOT NULL,     -- increases with seq
    actor_id      INTEGER NOT NULL,
    verb_id       INTEGER NOT NULL,
    activity_id   INTEGER,
    registration  BLOB,
    voided        INTEGER NOT NULL DEFAULT 0,
    fingerprint   BLOB NOT NULL,
    json          TEXT NOT NULL         -- the statement as served, without "stored"
);
CREATE UNIQUE INDEX IF NOT EXISTS statements_by_id ON statements(tenant_id, statement_id);
CREATE INDEX IF NOT EXISTS statements_by_tenant ON statements(tenant_id, seq);
CREATE INDEX IF NOT EXISTS statements_by_actor ON statements(actor_id, seq);
CREATE INDEX IF NOT EXISTS statements_by_verb ON statements(verb_id, seq);
CREATE INDEX IF NOT EXISTS statements_by_activity ON statements(activity_id, seq)
    WHERE activity_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS statements_by_registration ON statements(tenant_id, registration, seq)
    WHERE registration IS NOT NULL;
