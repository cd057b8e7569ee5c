-- The related keys of statements (storage/keys.rs): an agent object, other agents, other
-- activities, one per line, for the agent filter and related_agents / related_activities.
-- NULL in rows stored before the column existed, until the server computes them at start
-- (`statements_unkeyed` finds those); '' for a statement that has none.

ALTER TABLE statements ADD COLUMN IF NOT EXISTS related TEXT;
CREATE INDEX IF NOT EXISTS statements_unkeyed ON statements (seq) WHERE related IS NULL;
CREATE INDEX IF NOT EXISTS statements_by_related ON statements
    USING gin (string_to_array(btrim(related, E'\n'), E'\n'))
    WHERE related <> '';
