-- xAPI attachments: raw bytes by SHA-256, per tenant and the actor whose statements sent them
-- (an erasure removes the actor's; an identical file of another actor stays).
CREATE TABLE IF NOT EXISTS attachments (
    tenant_id     BIGINT NOT NULL,
    sha2          TEXT NOT NULL,
    actor         TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    body          BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, sha2, actor)
);
CREATE INDEX IF NOT EXISTS attachments_by_actor ON attachments(tenant_id, actor);
