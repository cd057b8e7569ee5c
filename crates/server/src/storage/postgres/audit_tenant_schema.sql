-- One audit chain per tenant: a checkpoint signs a tenant's head (NULL: the installation-wide
-- chain older servers wrote).
ALTER TABLE audit_checkpoints ADD COLUMN IF NOT EXISTS tenant_id BIGINT;
