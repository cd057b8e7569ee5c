-- The statement a StatementRef object names, so that a filtered query also returns the
-- statements that target a matching one (xAPI Communication 2.1.3). Filled in for statements
-- stored before the column existed; the index holds only the statements that have one.

ALTER TABLE statements ADD COLUMN IF NOT EXISTS target UUID;
UPDATE statements SET target = (json::jsonb #>> '{object,id}')::uuid
    WHERE strpos(json, '"StatementRef"') > 0
    AND json::jsonb #>> '{object,objectType}' = 'StatementRef';
CREATE INDEX IF NOT EXISTS statements_targeting ON statements (tenant_id, seq)
    WHERE target IS NOT NULL;
