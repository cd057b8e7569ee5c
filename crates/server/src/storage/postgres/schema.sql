-- learnpulse PostgreSQL schema: accounts, privacy, audit and compliance (the tables behind
-- AccountStore, PrivacyStore and AuditStore). Applied idempotently at every start, like the
-- SQLite schema (sqlite/schema.sql), of which this is a translation; the event log, its interned
-- actors/verbs/activities and the webhook outbox have their own DDL beside this file.
--
-- Translation rules, so that both backends answer the same test suite identically:
-- - INTEGER PRIMARY KEY (SQLite's rowid alias) -> BIGINT GENERATED ALWAYS AS IDENTITY; the code
--   reads the new id with INSERT ... RETURNING id. Unlike SQLite, a failed insert still uses up
--   an identity value, so ids can have gaps; nothing relies on them being dense.
-- - Other integers -> BIGINT (the code binds i64 everywhere), REAL -> DOUBLE PRECISION,
--   BLOB -> BYTEA, 16-byte statement ids -> UUID.
-- - Foreign keys are declared where the SQLite schema declares them (it runs with
--   PRAGMA foreign_keys = ON, so they are enforced there too).
--
-- Several servers may start at once against one database, and concurrent CREATE ... IF NOT
-- EXISTS of the same table can fail on the catalog's unique index. The advisory lock serialises
-- schema setup; it is released when the transaction that runs this script ends (a multi-statement
-- batch_execute is one implicit transaction). The key is arbitrary but fixed: "lpsc" in ASCII.
SELECT pg_advisory_xact_lock(1819308899);
-- Every start finds the tables there: no NOTICE "relation ... already exists" for each (LOCAL:
-- for this transaction only, not the pooled session).
SET LOCAL client_min_messages = warning;

CREATE TABLE IF NOT EXISTS tenants (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_us  BIGINT NOT NULL
);

-- API keys: the secret only as its SHA-256. expires_us, last_used_us and groups were added to
-- the SQLite table later (sqlite/mod.rs adds them to old files); a PostgreSQL database has no
-- older layout, so they are part of the table from the start.
CREATE TABLE IF NOT EXISTS api_keys (
    key_id         TEXT PRIMARY KEY,
    tenant_id      BIGINT NOT NULL REFERENCES tenants(id),
    role           TEXT NOT NULL,           -- Role::as_str
    secret_sha256  BYTEA NOT NULL,          -- 32 bytes
    label          TEXT,
    created_us     BIGINT NOT NULL,
    revoked_us     BIGINT,
    expires_us     BIGINT,                  -- after this the key no longer authenticates
    last_used_us   BIGINT,
    groups         TEXT                     -- JSON array of group names; NULL: the whole tenant
);
CREATE INDEX IF NOT EXISTS api_keys_by_tenant ON api_keys(tenant_id);

-- Small per-tenant settings by name (the intervention policies, as TOML).
CREATE TABLE IF NOT EXISTS tenant_settings (
    tenant_id  BIGINT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- Privacy (crate::privacy). Secrets are sealed (ChaCha20-Poly1305) under the master key, which is
-- kept outside the database (<data_dir>/master.key or LEARNPULSE_MASTER_KEY).
CREATE TABLE IF NOT EXISTS tenant_secrets (
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    purpose     TEXT NOT NULL,              -- 'pseudonym' | 'vault'
    version     BIGINT NOT NULL,            -- SealedSecret::version, a u32
    sealed      BYTEA NOT NULL,
    created_us  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, purpose, version)
);

CREATE TABLE IF NOT EXISTS privacy_settings (
    tenant_id      BIGINT PRIMARY KEY REFERENCES tenants(id),
    policy         TEXT,                    -- learnpulse_privacy::pipeline::Policy as JSON
    roster_sealed  BYTEA,                   -- the roster's names, sealed under the vault key
    updated_us     BIGINT NOT NULL
);

-- Consents by learner pseudonym: the current record, and every change.
CREATE TABLE IF NOT EXISTS consents (
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    learner     TEXT NOT NULL,
    record      TEXT NOT NULL,              -- JSON
    updated_us  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, learner)
);
CREATE TABLE IF NOT EXISTS consent_changes (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   BIGINT NOT NULL,
    learner     TEXT NOT NULL,
    record      TEXT NOT NULL,
    by_key      TEXT NOT NULL,
    at_us       BIGINT NOT NULL
);
-- SQLite scans consent_changes for one learner's history; here an index serves the history and
-- the erasure, which both select by (tenant, learner).
CREATE INDEX IF NOT EXISTS consent_changes_by_learner ON consent_changes(tenant_id, learner, id);

-- What the placeholders of one statement replaced, sealed under the tenant's vault key. Written
-- by the log writer in the statement's own transaction (bind the id as uuid::Uuid).
CREATE TABLE IF NOT EXISTS vault (
    tenant_id     BIGINT NOT NULL,
    statement_id  UUID NOT NULL,
    sealed        BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, statement_id)
);
-- Every time a placeholder was turned back into what it replaced, and by which key.
CREATE TABLE IF NOT EXISTS reidentifications (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     BIGINT NOT NULL,
    statement_id  UUID NOT NULL,
    placeholder   TEXT NOT NULL,
    by_key        TEXT NOT NULL,
    at_us         BIGINT NOT NULL
);

-- Differential privacy: what each analyst has spent, and every release. spend_budget locks the
-- analyst's dp_budgets row (SELECT ... FOR UPDATE) to keep concurrent spends within the budget.
CREATE TABLE IF NOT EXISTS dp_budgets (
    tenant_id  BIGINT NOT NULL,
    analyst    TEXT NOT NULL,
    spent      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant_id, analyst)
);
CREATE TABLE IF NOT EXISTS dp_ledger (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  BIGINT NOT NULL,
    analyst    TEXT NOT NULL,
    query      TEXT NOT NULL,               -- the query as the analyst sent it (JSON)
    epsilon    DOUBLE PRECISION NOT NULL,
    at_us      BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS dp_ledger_by_analyst ON dp_ledger(tenant_id, analyst, id);

-- The audit chain (learnpulse_compliance::audit): one chain for the whole server, appended by
-- the auditor task; signed checkpoints of its head; server-wide secrets sealed under the master
-- key. seq is assigned by the application (it is hashed into the chain), so it is a plain key,
-- not an identity column.
CREATE TABLE IF NOT EXISTS audit_log (
    seq        BIGINT PRIMARY KEY,
    tenant_id  BIGINT NOT NULL,
    at_us      BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT,
    detail     TEXT NOT NULL,               -- JSON, kept as written: the hash covers it
    prev_hash  BYTEA NOT NULL,              -- 32 bytes
    hash       BYTEA NOT NULL               -- 32 bytes
);
CREATE INDEX IF NOT EXISTS audit_by_tenant ON audit_log(tenant_id, seq);
CREATE INDEX IF NOT EXISTS audit_by_tenant_time ON audit_log(tenant_id, at_us);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    seq        BIGINT PRIMARY KEY,
    hash       BYTEA NOT NULL,
    at_us      BIGINT NOT NULL,
    signature  TEXT NOT NULL                -- Ed25519, hex
);
CREATE TABLE IF NOT EXISTS server_secrets (
    purpose  TEXT PRIMARY KEY,
    sealed   BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS compliance_settings (
    tenant_id  BIGINT PRIMARY KEY,
    rules      TEXT NOT NULL        -- rule id -> override, as JSON (learnpulse_compliance::rules)
);

-- Data-subject requests (GDPR Art. 15 access, Art. 17 erasure): recorded when received, completed
-- when answered; the answer itself is never stored (an access archive would be a copy of the data).
CREATE TABLE IF NOT EXISTS subject_requests (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     BIGINT NOT NULL,
    kind          TEXT NOT NULL,      -- 'access' | 'erasure'
    learner       TEXT NOT NULL,      -- pseudonym, '(erased)' after the learner's erasure
    received_us   BIGINT NOT NULL,
    deadline_us   BIGINT NOT NULL,
    completed_us  BIGINT,
    summary       TEXT
);
CREATE INDEX IF NOT EXISTS subject_requests_by_tenant ON subject_requests(tenant_id, id);

-- Incidents: a rule that started failing, until it passes again; with what was done about it.
CREATE TABLE IF NOT EXISTS incidents (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   BIGINT NOT NULL,
    rule        TEXT NOT NULL,
    severity    TEXT NOT NULL,
    opened_us   BIGINT NOT NULL,
    closed_us   BIGINT,
    evidence    TEXT NOT NULL,
    subjects    TEXT NOT NULL,     -- JSON array
    actions     TEXT NOT NULL      -- JSON array of remediation records
);
CREATE INDEX IF NOT EXISTS incidents_by_tenant ON incidents(tenant_id, closed_us);
