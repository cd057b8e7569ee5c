-- Learner states kept one by one (derived data), written with each engine snapshot: every
-- learner whose state changed since the previous snapshot, at the snapshot's sequence number.
-- A node loads a learner it does not hold in memory from here (or from the cache's L2).
CREATE TABLE IF NOT EXISTS learner_states (
    tenant_id   BIGINT NOT NULL,
    learner     TEXT NOT NULL,
    covers_seq  BIGINT NOT NULL,
    body        BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, learner)
);
