-- learnpulse secondary indexes (SQLite, WAL), in their own file beside the log.
--
-- Derived data: the indexer thread fills them from the log in large batches sorted by key, so
-- each leaf page is written once per batch instead of once per statement. `progress` says how
-- far they are complete; queries read the tail of the log beyond it directly. Deleting this
-- file is safe: it is rebuilt from the log.

CREATE TABLE IF NOT EXISTS by_actor (
    actor_id  INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (actor_id, seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS by_activity (
    activity_id  INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    PRIMARY KEY (activity_id, seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS by_registration (
    tenant_id     INTEGER NOT NULL,
    registration  BLOB NOT NULL,
    seq           INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, registration, seq)
) WITHOUT ROWID;

-- The related keys of statements (storage/keys.rs): an agent object, other agents, other
-- activities, for the agent filter and related_agents / related_activities.
CREATE TABLE IF NOT EXISTS by_related (
    tenant_id  INTEGER NOT NULL,
    key        TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key, seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS progress (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    log_id           TEXT NOT NULL,
    indexed_through  INTEGER NOT NULL
);
