-- xAPI documents (state, agent profile, activity profile): opaque bytes with their content
-- type, per tenant, scope and id. `agent` is the agent's canonical identifier as the tenant
-- keeps it (pseudonymised unless it keeps raw identities); `learner` is who they are, for
-- erasure. Empty strings stand for parameters a kind does not have.
CREATE TABLE IF NOT EXISTS documents (
    tenant_id     BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    activity      TEXT NOT NULL,
    agent         TEXT NOT NULL,
    registration  TEXT NOT NULL,
    id            TEXT NOT NULL,
    learner       TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    body          BYTEA NOT NULL,
    etag          TEXT NOT NULL,
    updated_us    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind, activity, agent, registration, id)
);
CREATE INDEX IF NOT EXISTS documents_by_learner ON documents(tenant_id, learner);
