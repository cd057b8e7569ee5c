//! [`PrivacyStore`] on PostgreSQL: sealed tenant secrets, policies and rosters, consents, the
//! vault, re-identifications and differential-privacy budgets.
//!
//! A translation of `sqlite/privacy.rs`, kept to the same results, ordering and errors so that
//! one test suite runs against both. These writes are rare (settings, consents, releases) and
//! each takes a pooled connection; the vault is written by the log writer, in each statement's
//! own transaction, and only read here.
//!
//! Two SQLite features have no direct counterpart:
//! - `BEGIN IMMEDIATE` (the database's one write lock) serialises budget spends there; here a
//!   row lock does, which also holds across server processes (see `spend_budget`).
//! - `PRAGMA secure_delete` overwrites deleted rows in SQLite's file. PostgreSQL keeps a deleted
//!   or updated row's old version in its heap page (and in the WAL and its archives) until vacuum
//!   frees the space and a later write reuses it. Keeping erased data off disk is then the
//!   operator's part: autovacuum, encrypted storage, bounded WAL retention.

use uuid::Uuid;

use super::sql::{self, col};
use super::{PostgresStorage, db_err};
use crate::storage::privacy::{
    LedgerEntry, PrivacyStore, SealedSecret, SpendError, StoredSettings,
};
use crate::storage::{StoreError, TenantId, now_us};

/// The tolerance of the budget check, as on SQLite: sums of ε may overshoot by rounding.
const BUDGET_SLACK: f64 = 1e-9;

fn spend_err(e: tokio_postgres::Error) -> SpendError {
    SpendError::Store(db_err(e))
}

impl PrivacyStore for PostgresStorage {
    async fn tenant_secrets(&self, tenant: TenantId) -> Result<Vec<SealedSecret>, StoreError> {
        // COLLATE "C" orders by bytes, as SQLite's BINARY collation does, whatever collation the
        // database was created with.
        let rows = sql::rows(
            self,
            "SELECT purpose, version, sealed FROM tenant_secrets WHERE tenant_id = $1 \
             ORDER BY purpose COLLATE \"C\", version",
            &[&tenant],
        )
        .await?;
        rows.iter()
            .map(|r| {
                let version: i64 = col(r, 1)?;
                Ok(SealedSecret {
                    purpose: col(r, 0)?,
                    version: u32::try_from(version).map_err(|_| {
                        StoreError::Internal(format!(
                            "tenant secret version {version} is not a u32"
                        ))
                    })?,
                    sealed: col(r, 2)?,
                })
            })
            .collect()
    }

    async fn insert_tenant_secret(
        &self,
        tenant: TenantId,
        secret: SealedSecret,
    ) -> Result<(), StoreError> {
        // A u32 binds as PostgreSQL's OID type, not BIGINT: widen it.
        let version = i64::from(secret.version);
        sql::execute(
            self,
            "INSERT INTO tenant_secrets (tenant_id, purpose, version, sealed, created_us) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &tenant,
                &secret.purpose,
                &version,
                &secret.sealed,
                &now_us(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn privacy_settings(&self, tenant: TenantId) -> Result<StoredSettings, StoreError> {
        let row = sql::row(
            self,
            "SELECT policy, roster_sealed FROM privacy_settings WHERE tenant_id = $1",
            &[&tenant],
        )
        .await?;
        let Some(r) = row else {
            return Ok(StoredSettings::default());
        };
        Ok(StoredSettings {
            policy: col(&r, 0)?,
            roster_sealed: col(&r, 1)?,
        })
    }

    async fn set_policy(&self, tenant: TenantId, policy_json: String) -> Result<(), StoreError> {
        sql::execute(
            self,
            "INSERT INTO privacy_settings (tenant_id, policy, updated_us) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO UPDATE \
             SET policy = excluded.policy, updated_us = excluded.updated_us",
            &[&tenant, &policy_json, &now_us()],
        )
        .await?;
        Ok(())
    }

    async fn set_roster(&self, tenant: TenantId, sealed: Vec<u8>) -> Result<(), StoreError> {
        sql::execute(
            self,
            "INSERT INTO privacy_settings (tenant_id, roster_sealed, updated_us) \
             VALUES ($1, $2, $3) ON CONFLICT (tenant_id) DO UPDATE \
             SET roster_sealed = excluded.roster_sealed, updated_us = excluded.updated_us",
            &[&tenant, &sealed, &now_us()],
        )
        .await?;
        Ok(())
    }

    async fn consents(&self, tenant: TenantId) -> Result<Vec<(String, String)>, StoreError> {
        // The SQLite query has no ORDER BY and returns rows in its primary-key index order, by
        // learner. PostgreSQL promises no order without one, so it is written out (bytewise, as
        // SQLite compares).
        let rows = sql::rows(
            self,
            "SELECT learner, record FROM consents WHERE tenant_id = $1 \
             ORDER BY learner COLLATE \"C\"",
            &[&tenant],
        )
        .await?;
        rows.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?))).collect()
    }

    async fn set_consent(
        &self,
        tenant: TenantId,
        learner: String,
        record_json: String,
        by_key: String,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        // One transaction, so that the current record and its history always agree.
        let tx = client.transaction().await.map_err(db_err)?;
        let upsert = tx
            .prepare_cached(
                "INSERT INTO consents (tenant_id, learner, record, updated_us) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, learner) DO UPDATE \
                 SET record = excluded.record, updated_us = excluded.updated_us",
            )
            .await
            .map_err(db_err)?;
        let change = tx
            .prepare_cached(
                "INSERT INTO consent_changes (tenant_id, learner, record, by_key, at_us) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .await
            .map_err(db_err)?;
        let now = now_us();
        tx.execute(&upsert, &[&tenant, &learner, &record_json, &now])
            .await
            .map_err(db_err)?;
        tx.execute(&change, &[&tenant, &learner, &record_json, &by_key, &now])
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn consent_history(
        &self,
        tenant: TenantId,
        learner: String,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sql::rows(
            self,
            "SELECT record, by_key, at_us FROM consent_changes \
             WHERE tenant_id = $1 AND learner = $2 ORDER BY id",
            &[&tenant, &learner],
        )
        .await?;
        rows.iter()
            .map(|r| Ok((col(r, 0)?, col(r, 1)?, col(r, 2)?)))
            .collect()
    }

    async fn erase_consents(
        &self,
        tenant: TenantId,
        learners: Vec<String>,
    ) -> Result<u64, StoreError> {
        // Nothing replaces SQLite's `PRAGMA secure_delete` here (see the module doc). One DELETE
        // per table with `= ANY($2)` counts the rows SQLite's per-learner loop counts (a learner
        // listed twice is deleted, and counted, once).
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        let mut n = 0;
        for delete in [
            "DELETE FROM consents WHERE tenant_id = $1 AND learner = ANY($2)",
            "DELETE FROM consent_changes WHERE tenant_id = $1 AND learner = ANY($2)",
        ] {
            let stmt = tx.prepare_cached(delete).await.map_err(db_err)?;
            n += tx
                .execute(&stmt, &[&tenant, &learners])
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(n)
    }

    async fn vault_entry(
        &self,
        tenant: TenantId,
        statement: Uuid,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sql::row(
            self,
            "SELECT sealed FROM vault WHERE tenant_id = $1 AND statement_id = $2",
            &[&tenant, &statement],
        )
        .await?;
        row.as_ref().map(|r| col(r, 0)).transpose()
    }

    async fn record_reidentification(
        &self,
        tenant: TenantId,
        statement: Uuid,
        placeholder: String,
        by_key: String,
    ) -> Result<(), StoreError> {
        sql::execute(
            self,
            "INSERT INTO reidentifications (tenant_id, statement_id, placeholder, by_key, at_us) \
             VALUES ($1, $2, $3, $4, $5)",
            &[&tenant, &statement, &placeholder, &by_key, &now_us()],
        )
        .await?;
        Ok(())
    }

    async fn spend_budget(
        &self,
        tenant: TenantId,
        analyst: String,
        epsilon: f64,
        total: f64,
        query: String,
    ) -> Result<f64, SpendError> {
        // SQLite serialises spends with BEGIN IMMEDIATE. Here the analyst's budget row is the
        // lock. The row is created if missing (ON CONFLICT DO NOTHING; a concurrent creator
        // waits for the first one's transaction, then finds the row), then read FOR UPDATE,
        // which makes every other spender of that analyst, in this process or another, wait
        // until this transaction ends; under READ COMMITTED the waiter then reads the spent
        // value its predecessor committed. Spends by different analysts never wait on each other.
        let mut client = self.client().await.map_err(SpendError::Store)?;
        let tx = client.transaction().await.map_err(spend_err)?;
        let create = tx
            .prepare_cached(
                "INSERT INTO dp_budgets (tenant_id, analyst, spent) VALUES ($1, $2, 0) \
                 ON CONFLICT (tenant_id, analyst) DO NOTHING",
            )
            .await
            .map_err(spend_err)?;
        tx.execute(&create, &[&tenant, &analyst])
            .await
            .map_err(spend_err)?;
        let lock = tx
            .prepare_cached(
                "SELECT spent FROM dp_budgets WHERE tenant_id = $1 AND analyst = $2 FOR UPDATE",
            )
            .await
            .map_err(spend_err)?;
        let row = tx
            .query_one(&lock, &[&tenant, &analyst])
            .await
            .map_err(spend_err)?;
        let spent: f64 = col(&row, 0).map_err(SpendError::Store)?;
        if spent + epsilon > total + BUDGET_SLACK {
            // Dropping the transaction rolls it back (tokio-postgres queues a ROLLBACK), which
            // also removes a budget row created above: as on SQLite, a refused first spend
            // leaves no row in dp_budgets.
            return Err(SpendError::Exceeded { spent, total });
        }
        let update = tx
            .prepare_cached(
                "UPDATE dp_budgets SET spent = $3 WHERE tenant_id = $1 AND analyst = $2",
            )
            .await
            .map_err(spend_err)?;
        // The sum is computed here, not in SQL, so that it is bit for bit the f64 SQLite stores.
        tx.execute(&update, &[&tenant, &analyst, &(spent + epsilon)])
            .await
            .map_err(spend_err)?;
        let release = tx
            .prepare_cached(
                "INSERT INTO dp_ledger (tenant_id, analyst, query, epsilon, at_us) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .await
            .map_err(spend_err)?;
        tx.execute(&release, &[&tenant, &analyst, &query, &epsilon, &now_us()])
            .await
            .map_err(spend_err)?;
        tx.commit().await.map_err(spend_err)?;
        Ok(total - spent - epsilon)
    }

    async fn budget_spent(&self, tenant: TenantId, analyst: String) -> Result<f64, StoreError> {
        let row = sql::row(
            self,
            "SELECT spent FROM dp_budgets WHERE tenant_id = $1 AND analyst = $2",
            &[&tenant, &analyst],
        )
        .await?;
        row.as_ref().map_or(Ok(0.0), |r| col(r, 0))
    }

    async fn dp_spent(&self, tenant: TenantId) -> Result<Vec<(String, f64)>, StoreError> {
        // Primary-key order, as SQLite returns it (see `consents`).
        let rows = sql::rows(
            self,
            "SELECT analyst, spent FROM dp_budgets WHERE tenant_id = $1 \
             ORDER BY analyst COLLATE \"C\"",
            &[&tenant],
        )
        .await?;
        rows.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?))).collect()
    }

    async fn ledger(
        &self,
        tenant: TenantId,
        analyst: Option<String>,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        // `$2::TEXT`: a parameter's type is inferred where it is first used, and `$2 IS NULL`
        // does not constrain it.
        let rows = sql::rows(
            self,
            "SELECT analyst, query, epsilon, at_us FROM dp_ledger \
             WHERE tenant_id = $1 AND ($2::TEXT IS NULL OR analyst = $2) \
             ORDER BY id DESC LIMIT 1000",
            &[&tenant, &analyst],
        )
        .await?;
        rows.iter()
            .map(|r| {
                let query: String = col(r, 1)?;
                Ok(LedgerEntry {
                    analyst: col(r, 0)?,
                    // A query that is not JSON any more is served as text, as on SQLite.
                    query: serde_json::from_str(&query).unwrap_or(serde_json::Value::String(query)),
                    epsilon: col(r, 2)?,
                    at_us: col(r, 3)?,
                })
            })
            .collect()
    }
}
