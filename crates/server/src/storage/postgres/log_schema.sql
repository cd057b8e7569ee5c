-- learnpulse PostgreSQL schema, part 2: the event log, the webhook outbox, engine snapshots.
--
-- The log is one table keyed by a sequence number that the writers allocate from `log_head`
-- under its row lock, inside the group commit's transaction: commit order is sequence order
-- across every process (a bigserial would not promise that). Actor, verb and activity are kept
-- as text (no interning: nothing to keep consistent between processes); the query indexes are
-- (tenant, key, seq), so a filtered page is one index range read in sequence order.

CREATE TABLE IF NOT EXISTS log_head (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    seq        BIGINT NOT NULL,      -- the highest sequence number committed
    stored_us  BIGINT NOT NULL       -- its `stored` time: later statements are stored after it
);
INSERT INTO log_head (id, seq, stored_us) VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING;

CREATE TABLE IF NOT EXISTS statements (
    seq           BIGINT PRIMARY KEY,
    tenant_id     BIGINT NOT NULL,
    statement_id  UUID NOT NULL,
    stored_us     BIGINT NOT NULL,     -- increases with seq
    actor         TEXT NOT NULL,       -- canonical actor IFI
    verb          TEXT NOT NULL,
    activity      TEXT,
    registration  UUID,
    voided        BOOLEAN NOT NULL DEFAULT false,
    fingerprint   BYTEA NOT NULL,
    json          TEXT NOT NULL,       -- the statement as served, without "stored"
    live          TEXT                 -- what followers need of it (JSON); NULL: nothing
);
CREATE UNIQUE INDEX IF NOT EXISTS statements_by_id ON statements (tenant_id, statement_id);
CREATE INDEX IF NOT EXISTS statements_by_tenant ON statements (tenant_id, seq);
CREATE INDEX IF NOT EXISTS statements_by_actor ON statements (tenant_id, actor, seq);
CREATE INDEX IF NOT EXISTS statements_by_verb ON statements (tenant_id, verb, seq);
CREATE INDEX IF NOT EXISTS statements_by_activity ON statements (tenant_id, activity, seq)
    WHERE activity IS NOT NULL;
CREATE INDEX IF NOT EXISTS statements_by_registration ON statements (tenant_id, registration, seq)
    WHERE registration IS NOT NULL;

-- The webhook outbox (storage/outbox.rs): receivers with sealed secrets, their endpoints, the
-- messages owed to them, and the watermark (log seq through which decisions are enqueued).
CREATE TABLE IF NOT EXISTS webhook_receivers (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant          BIGINT NOT NULL,
    name            TEXT NOT NULL,
    max_batch       BIGINT NOT NULL,
    events          TEXT NOT NULL,     -- JSON array of event types
    kinds           TEXT NOT NULL,     -- JSON array of intervention kinds; empty: every kind
    cognitive_data  BOOLEAN NOT NULL,
    secrets         BYTEA NOT NULL,    -- sealed JSON [{secret, until_ms}]
    created_ms      BIGINT NOT NULL,
    UNIQUE (tenant, name)
);
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    receiver  BIGINT NOT NULL REFERENCES webhook_receivers (id) ON DELETE CASCADE,
    url       TEXT NOT NULL,
    weight    BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_messages (
    id               TEXT PRIMARY KEY,
    receiver         BIGINT NOT NULL REFERENCES webhook_receivers (id) ON DELETE CASCADE,
    tenant           BIGINT NOT NULL,
    learner          TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    payload          TEXT NOT NULL,
    created_ms       BIGINT NOT NULL,
    state            BIGINT NOT NULL DEFAULT 0,   -- 0 pending, 1 delivered, 2 dead
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT NOT NULL,
    last_status      BIGINT,
    last_error       TEXT,
    endpoint         BIGINT,
    done_ms          BIGINT,
    leased           BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS webhook_messages_due ON webhook_messages (state, next_attempt_ms);
CREATE INDEX IF NOT EXISTS webhook_messages_by_receiver ON webhook_messages (receiver, state, seq);
CREATE INDEX IF NOT EXISTS webhook_messages_by_learner ON webhook_messages (tenant, learner);
CREATE TABLE IF NOT EXISTS webhook_watermark (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL
);

-- Engine snapshots (derived data): one row per tenant, replaced as a set.
CREATE TABLE IF NOT EXISTS engine_snapshots (
    tenant_id   BIGINT PRIMARY KEY,
    covers_seq  BIGINT NOT NULL,
    body        BYTEA NOT NULL,
    created_us  BIGINT NOT NULL
);
