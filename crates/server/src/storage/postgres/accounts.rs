//! [`AccountStore`] on PostgreSQL: tenants, API keys and small per-tenant settings.
//!
//! A translation of the SQLite implementation (`sqlite/mod.rs`), kept to the same results and
//! errors so that one test suite runs against both. Every method is one statement on a pooled
//! connection (the helpers in [`super::sql`]); nothing here needs a transaction.

use tokio_postgres::Row;

use super::sql::{self, col};
use super::{PostgresStorage, db_err, is_unique_violation};
use crate::storage::{AccountStore, ApiKeyRecord, Role, StoreError, Tenant, TenantId, now_us};

/// The columns of an [`ApiKeyRecord`], in the order [`key_from_row`] reads them.
const KEY_COLUMNS: &str = "key_id, tenant_id, role, secret_sha256, label, created_us, revoked_us, \
                           expires_us, last_used_us, groups";

fn key_from_row(r: &Row) -> Result<ApiKeyRecord, StoreError> {
    let role: String = col(r, 2)?;
    let hash: Vec<u8> = col(r, 3)?;
    let groups: Option<String> = col(r, 9)?;
    Ok(ApiKeyRecord {
        key_id: col(r, 0)?,
        tenant_id: col(r, 1)?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Internal(format!("unknown role {role:?} in api_keys")))?,
        // As on SQLite: a hash of the wrong length matches no secret rather than failing the read.
        secret_sha256: hash.try_into().unwrap_or([0; 32]),
        label: col(r, 4)?,
        created_us: col(r, 5)?,
        revoked_us: col(r, 6)?,
        expires_us: col(r, 7)?,
        last_used_us: col(r, 8)?,
        // As on SQLite, unreadable groups read as none (which means the whole tenant).
        groups: groups.and_then(|json| serde_json::from_str(&json).ok()),
    })
}

impl AccountStore for PostgresStorage {
    async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("INSERT INTO tenants (name, created_us) VALUES ($1, $2) RETURNING id")
            .await
            .map_err(db_err)?;
        let created_us = now_us();
        let row = client
            .query_one(&stmt, &[&name, &created_us])
            .await
            .map_err(|e| {
                // The same message as SQLite. UNIQUE (name) is the only constraint an insert of
                // a name and a time can break.
                if is_unique_violation(&e) {
                    StoreError::Internal(format!("a tenant named {name:?} already exists"))
                } else {
                    db_err(e)
                }
            })?;
        Ok(Tenant {
            id: col(&row, 0)?,
            name: name.to_owned(),
            created_us,
        })
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = sql::rows(
            self,
            "SELECT id, name, created_us FROM tenants ORDER BY id",
            &[],
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Tenant {
                    id: col(r, 0)?,
                    name: col(r, 1)?,
                    created_us: col(r, 2)?,
                })
            })
            .collect()
    }

    async fn insert_key(&self, key: ApiKeyRecord) -> Result<(), StoreError> {
        let groups = key
            .groups
            .as_ref()
            .map(|g| serde_json::to_string(g).expect("strings serialise"));
        sql::execute(
            self,
            &format!(
                "INSERT INTO api_keys ({KEY_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ),
            &[
                &key.key_id,
                &key.tenant_id,
                &key.role.as_str(),
                &key.secret_sha256.as_slice(),
                &key.label,
                &key.created_us,
                &key.revoked_us,
                &key.expires_us,
                &key.last_used_us,
                &groups,
            ],
        )
        .await?;
        Ok(())
    }

    async fn key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row = sql::row(
            self,
            &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = $1"),
            &[&key_id],
        )
        .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn keys(&self, tenant: TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        // Keys created in the same microsecond come back in no particular order on either
        // backend (SQLite happens to keep insertion order; PostgreSQL has no rowid to match).
        let rows = sql::rows(
            self,
            &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_us"),
            &[&tenant],
        )
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn set_key_expiry(
        &self,
        tenant: TenantId,
        key_id: &str,
        expires_us: Option<i64>,
    ) -> Result<bool, StoreError> {
        let n = sql::execute(
            self,
            "UPDATE api_keys SET expires_us = $3 WHERE tenant_id = $1 AND key_id = $2",
            &[&tenant, &key_id, &expires_us],
        )
        .await?;
        Ok(n > 0)
    }

    async fn tenant_setting(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sql::row(
            self,
            "SELECT value FROM tenant_settings WHERE tenant_id = $1 AND name = $2",
            &[&tenant, &name],
        )
        .await?;
        row.as_ref().map(|r| col(r, 0)).transpose()
    }

    async fn set_tenant_setting(
        &self,
        tenant: TenantId,
        name: &str,
        value: String,
    ) -> Result<(), StoreError> {
        sql::execute(
            self,
            "INSERT INTO tenant_settings (tenant_id, name, value) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET value = excluded.value",
            &[&tenant, &name, &value],
        )
        .await?;
        Ok(())
    }

    async fn touch_key(&self, key_id: &str, at_us: i64) -> Result<(), StoreError> {
        sql::execute(
            self,
            "UPDATE api_keys SET last_used_us = $2 WHERE key_id = $1",
            &[&key_id, &at_us],
        )
        .await?;
        Ok(())
    }

    async fn revoke_key(&self, tenant: TenantId, key_id: &str) -> Result<bool, StoreError> {
        // `revoked_us IS NULL`: revoking twice keeps the first time and reports false.
        let n = sql::execute(
            self,
            "UPDATE api_keys SET revoked_us = $3 \
             WHERE tenant_id = $1 AND key_id = $2 AND revoked_us IS NULL",
            &[&tenant, &key_id, &now_us()],
        )
        .await?;
        Ok(n > 0)
    }
}
