//! [`PrivacyStore`] on SQLite. These writes are rare (settings, consents, releases) and go
//! through a pooled connection beside the log writer; the vault is written by the writer itself,
//! in each statement's transaction.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use uuid::Uuid;

use super::SqliteStorage;
use crate::storage::privacy::{
    LedgerEntry, PrivacyStore, SealedSecret, SpendError, StoredSettings,
};
use crate::storage::{StoreError, TenantId, now_us};

impl PrivacyStore for SqliteStorage {
    async fn tenant_secrets(&self, tenant: TenantId) -> Result<Vec<SealedSecret>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT purpose, version, sealed FROM tenant_secrets WHERE tenant_id = ?1 \
                 ORDER BY purpose, version",
            )?;
            let rows = stmt.query_map([tenant], |r| {
                Ok(SealedSecret {
                    purpose: r.get(0)?,
                    version: r.get(1)?,
                    sealed: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn insert_tenant_secret(
        &self,
        tenant: TenantId,
        secret: SealedSecret,
    ) -> Result<(), StoreError> {
        self.read(move |conn| {
            conn.execute(
                "INSERT INTO tenant_secrets (tenant_id, purpose, version, sealed, created_us) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    tenant,
                    secret.purpose,
                    secret.version,
                    secret.sealed,
                    now_us()
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn privacy_settings(&self, tenant: TenantId) -> Result<StoredSettings, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT policy, roster_sealed FROM privacy_settings WHERE tenant_id = ?1",
                )?
                .query_row([tenant], |r| {
                    Ok(StoredSettings {
                        policy: r.get(0)?,
                        roster_sealed: r.get(1)?,
                    })
                })
                .optional()?
                .unwrap_or_default())
        })
        .await
    }

    async fn set_policy(&self, tenant: TenantId, policy_json: String) -> Result<(), StoreError> {
        self.read(move |conn| {
            conn.execute(
                "INSERT INTO privacy_settings (tenant_id, policy, updated_us) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (tenant_id) DO UPDATE SET policy = excluded.policy, updated_us = excluded.updated_us",
                params![tenant, policy_json, now_us()],
            )?;
            Ok(())
        })
        .await
    }

    async fn set_roster(&self, tenant: TenantId, sealed: Vec<u8>) -> Result<(), StoreError> {
        self.read(move |conn| {
            conn.execute(
                "INSERT INTO privacy_settings (tenant_id, roster_sealed, updated_us) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (tenant_id) DO UPDATE SET roster_sealed = excluded.roster_sealed, updated_us = excluded.updated_us",
                params![tenant, sealed, now_us()],
            )?;
            Ok(())
        })
        .await
    }

    async fn consents(&self, tenant: TenantId) -> Result<Vec<(String, String)>, StoreError> {
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT learner, record FROM consents WHERE tenant_id = ?1")?;
            let rows = stmt.query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn set_consent(
        &self,
        tenant: TenantId,
        learner: String,
        record_json: String,
        by_key: String,
    ) -> Result<(), StoreError> {
        self.read(move |conn| {
            let tx = conn.unchecked_transaction()?;
            let now = now_us();
            tx.execute(
                "INSERT INTO consents (tenant_id, learner, record, updated_us) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (tenant_id, learner) DO UPDATE SET record = excluded.record, updated_us = excluded.updated_us",
                params![tenant, learner, record_json, now],
            )?;
            tx.execute(
                "INSERT INTO consent_changes (tenant_id, learner, record, by_key, at_us) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![tenant, learner, record_json, by_key, now],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn consent_history(
        &self,
        tenant: TenantId,
        learner: String,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT record, by_key, at_us FROM consent_changes WHERE tenant_id = ?1 AND learner = ?2 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![tenant, learner], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn erase_consents(
        &self,
        tenant: TenantId,
        learners: Vec<String>,
    ) -> Result<u64, StoreError> {
        self.read(move |conn| {
            conn.execute_batch("PRAGMA secure_delete = ON")?;
            let tx = conn.unchecked_transaction()?;
            let mut n = 0;
            for l in &learners {
                n += tx.execute(
                    "DELETE FROM consents WHERE tenant_id = ?1 AND learner = ?2",
                    params![tenant, l],
                )?;
                n += tx.execute(
                    "DELETE FROM consent_changes WHERE tenant_id = ?1 AND learner = ?2",
                    params![tenant, l],
                )?;
            }
            tx.commit()?;
            Ok(n as u64)
        })
        .await
    }

    async fn vault_entry(
        &self,
        tenant: TenantId,
        statement: Uuid,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT sealed FROM vault WHERE tenant_id = ?1 AND statement_id = ?2",
                )?
                .query_row(params![tenant, statement.as_bytes().as_slice()], |r| {
                    r.get(0)
                })
                .optional()?)
        })
        .await
    }

    async fn record_reidentification(
        &self,
        tenant: TenantId,
        statement: Uuid,
        placeholder: String,
        by_key: String,
    ) -> Result<(), StoreError> {
        self.read(move |conn| {
            conn.execute(
                "INSERT INTO reidentifications (tenant_id, statement_id, placeholder, by_key, at_us) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![tenant, statement.as_bytes().as_slice(), placeholder, by_key, now_us()],
            )?;
            Ok(())
        })
        .await
    }

    async fn spend_budget(
        &self,
        tenant: TenantId,
        analyst: String,
        epsilon: f64,
        total: f64,
        query: String,
    ) -> Result<f64, SpendError> {
        self.read(move |conn| {
            // IMMEDIATE takes the write lock before reading what was spent, so two concurrent
            // spends cannot both see the same remainder.
            let conn_tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            let spent: f64 = conn_tx
                .query_row(
                    "SELECT spent FROM dp_budgets WHERE tenant_id = ?1 AND analyst = ?2",
                    params![tenant, analyst],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0.0);
            if spent + epsilon > total + 1e-9 {
                return Ok(Err(SpendError::Exceeded { spent, total }));
            }
            conn_tx.execute(
                "INSERT INTO dp_budgets (tenant_id, analyst, spent) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (tenant_id, analyst) DO UPDATE SET spent = excluded.spent",
                params![tenant, analyst, spent + epsilon],
            )?;
            conn_tx.execute(
                "INSERT INTO dp_ledger (tenant_id, analyst, query, epsilon, at_us) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![tenant, analyst, query, epsilon, now_us()],
            )?;
            conn_tx.commit()?;
            Ok(Ok(total - spent - epsilon))
        })
        .await
        .map_err(SpendError::Store)?
    }

    async fn budget_spent(&self, tenant: TenantId, analyst: String) -> Result<f64, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT spent FROM dp_budgets WHERE tenant_id = ?1 AND analyst = ?2",
                    params![tenant, analyst],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0.0))
        })
        .await
    }

    async fn dp_spent(&self, tenant: TenantId) -> Result<Vec<(String, f64)>, StoreError> {
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT analyst, spent FROM dp_budgets WHERE tenant_id = ?1")?;
            let rows = stmt.query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn ledger(
        &self,
        tenant: TenantId,
        analyst: Option<String>,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT analyst, query, epsilon, at_us FROM dp_ledger \
                 WHERE tenant_id = ?1 AND (?2 IS NULL OR analyst = ?2) ORDER BY id DESC LIMIT 1000",
            )?;
            let rows = stmt.query_map(params![tenant, analyst], |r| {
                let query: String = r.get(1)?;
                Ok(LedgerEntry {
                    analyst: r.get(0)?,
                    query: serde_json::from_str(&query).unwrap_or(serde_json::Value::String(query)),
                    epsilon: r.get(2)?,
                    at_us: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
