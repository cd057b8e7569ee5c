//! [`AuditStore`] on PostgreSQL: the audit hash chain and its signed checkpoints, server-wide
//! secrets, compliance rule overrides, incidents and data-subject requests.
//!
//! A translation of `sqlite/audit.rs`, kept to the same results, ordering and errors so that one
//! test suite runs against both. The chain's sequence numbers are assigned by the application
//! (they are hashed into the chain), so `audit_log.seq` is a plain key: when two processes
//! append the same seq, the second transaction fails on it rather than fork the chain, and the
//! caller (`crate::audit`) retries on the new head.

use futures_util::future::try_join_all;
use learnpulse_compliance::audit::{Checkpoint, Entry, Event};
use tokio_postgres::Row;

use super::sql::{self, col};
use super::{PostgresStorage, db_err};
use crate::storage::audit::{AuditStore, Incident, SubjectRequest};
use crate::storage::{StoreError, now_us};

/// The columns of an [`Entry`], in the order [`entry_of`] reads them.
const ENTRY_COLUMNS: &str =
    "seq, tenant_id, at_us, actor, action, subject, detail, prev_hash, hash";

fn hash_of(bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Internal("an audit hash is 32 bytes".into()))
}

fn entry_of(r: &Row) -> Result<Entry, StoreError> {
    let seq: i64 = col(r, 0)?;
    let detail: String = col(r, 6)?;
    Ok(Entry {
        seq: seq as u64,
        event: Event {
            tenant: col(r, 1)?,
            at_us: col(r, 2)?,
            actor: col(r, 3)?,
            action: col(r, 4)?,
            subject: col(r, 5)?,
            // A detail that is not JSON any more is kept as text, so that the
            // verifier reports the entry as changed rather than failing to read it.
            detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
        },
        prev_hash: hash_of(col(r, 7)?)?,
        hash: hash_of(col(r, 8)?)?,
    })
}

fn incident_of(r: &Row) -> Result<Incident, StoreError> {
    let subjects: String = col(r, 7)?;
    let actions: String = col(r, 8)?;
    Ok(Incident {
        id: col(r, 0)?,
        tenant: col(r, 1)?,
        rule: col(r, 2)?,
        severity: col(r, 3)?,
        opened_us: col(r, 4)?,
        closed_us: col(r, 5)?,
        evidence: col(r, 6)?,
        subjects: serde_json::from_str(&subjects).unwrap_or_default(),
        actions: serde_json::from_str(&actions).unwrap_or_default(),
    })
}

fn request_of(r: &Row) -> Result<SubjectRequest, StoreError> {
    Ok(SubjectRequest {
        id: col(r, 0)?,
        tenant: col(r, 1)?,
        kind: col(r, 2)?,
        learner: col(r, 3)?,
        received_us: col(r, 4)?,
        deadline_us: col(r, 5)?,
        completed_us: col(r, 6)?,
        summary: col(r, 7)?,
    })
}

impl AuditStore for PostgresStorage {
    async fn incidents(&self, tenant: i64, open_only: bool) -> Result<Vec<Incident>, StoreError> {
        let rows = sql::rows(
            self,
            "SELECT id, tenant_id, rule, severity, opened_us, closed_us, evidence, subjects, \
             actions FROM incidents WHERE tenant_id = $1 AND (NOT $2 OR closed_us IS NULL) \
             ORDER BY id DESC",
            &[&tenant, &open_only],
        )
        .await?;
        rows.iter().map(incident_of).collect()
    }

    async fn open_incident(&self, i: Incident) -> Result<i64, StoreError> {
        let subjects = serde_json::to_string(&i.subjects).unwrap_or_default();
        sql::one(
            self,
            "INSERT INTO incidents \
             (tenant_id, rule, severity, opened_us, evidence, subjects, actions) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &i.tenant,
                &i.rule,
                &i.severity,
                &i.opened_us,
                &i.evidence,
                &subjects,
                &i.actions.to_string(),
            ],
        )
        .await
    }

    async fn close_incident(&self, id: i64) -> Result<(), StoreError> {
        // `closed_us IS NULL`: closing twice keeps the first closing time.
        sql::execute(
            self,
            "UPDATE incidents SET closed_us = $2 WHERE id = $1 AND closed_us IS NULL",
            &[&id, &now_us()],
        )
        .await?;
        Ok(())
    }

    async fn set_incident_actions(
        &self,
        id: i64,
        actions: serde_json::Value,
    ) -> Result<(), StoreError> {
        sql::execute(
            self,
            "UPDATE incidents SET actions = $2 WHERE id = $1",
            &[&id, &actions.to_string()],
        )
        .await?;
        Ok(())
    }

    async fn audit_heads(
        &self,
        tenants: Vec<i64>,
    ) -> Result<(u64, std::collections::BTreeMap<i64, [u8; 32]>), StoreError> {
        // One statement, so one snapshot: the heads belong to one instant.
        let rows = sql::rows(
            self,
            "SELECT g.seq, t.tenant, \
                    (SELECT hash FROM audit_log WHERE tenant_id = t.tenant ORDER BY seq DESC LIMIT 1) \
             FROM (SELECT coalesce(max(seq), 0) AS seq FROM audit_log) g \
             LEFT JOIN unnest($1::bigint[]) AS t(tenant) ON true",
            &[&tenants],
        )
        .await?;
        let mut seq = 0u64;
        let mut heads = std::collections::BTreeMap::new();
        for r in &rows {
            seq = col::<i64>(r, 0)? as u64;
            let tenant: Option<i64> = col(r, 1)?;
            let hash: Option<Vec<u8>> = col(r, 2)?;
            if let (Some(t), Some(h)) = (tenant, hash) {
                heads.insert(t, hash_of(h)?);
            }
        }
        Ok((seq, heads))
    }

    async fn append_audit(
        &self,
        entries: Vec<Entry>,
        checkpoints: Vec<Checkpoint>,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        let insert = tx
            .prepare_cached(&format!(
                "INSERT INTO audit_log ({ENTRY_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ))
            .await
            .map_err(db_err)?;
        // The inserts are pipelined: tokio-postgres sends the queries of futures polled together
        // without waiting for each answer, so a batch costs about one round trip rather than one
        // per entry. They share the transaction: if one fails, the transaction is aborted, the
        // rest fail too, and dropping `tx` rolls back all of them, as on SQLite.
        let (txr, insert) = (&tx, &insert);
        try_join_all(entries.iter().map(|e| async move {
            let seq = e.seq as i64;
            let detail = e.event.detail.to_string();
            txr.execute(
                insert,
                &[
                    &seq,
                    &e.event.tenant,
                    &e.event.at_us,
                    &e.event.actor,
                    &e.event.action,
                    &e.event.subject,
                    &detail,
                    &e.prev_hash.as_slice(),
                    &e.hash.as_slice(),
                ],
            )
            .await
        }))
        .await
        .map_err(db_err)?;
        for c in checkpoints {
            // SQLite's INSERT OR REPLACE: a new checkpoint of a seq replaces the old one.
            let upsert = tx
                .prepare_cached(
                    "INSERT INTO audit_checkpoints (seq, hash, at_us, signature, tenant_id) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO UPDATE SET hash = excluded.hash, \
                     at_us = excluded.at_us, signature = excluded.signature, tenant_id = excluded.tenant_id",
                )
                .await
                .map_err(db_err)?;
            tx.execute(
                &upsert,
                &[
                    &(c.seq as i64),
                    &c.hash.as_slice(),
                    &c.at_us,
                    &c.signature,
                    &c.tenant,
                ],
            )
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn audit_entries(
        &self,
        after_seq: u64,
        limit: usize,
        tenant: Option<i64>,
    ) -> Result<Vec<Entry>, StoreError> {
        // SQLite reads a negative LIMIT (what `usize::MAX as i64` gives) as no limit; PostgreSQL
        // rejects it, so a limit beyond i64 is clamped instead, which means the same.
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // `$2::BIGINT`: `$2 IS NULL` alone does not tell PostgreSQL the parameter's type.
        let rows = sql::rows(
            self,
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM audit_log \
                 WHERE seq > $1 AND ($2::BIGINT IS NULL OR tenant_id = $2) ORDER BY seq LIMIT $3"
            ),
            &[&(after_seq as i64), &tenant, &limit],
        )
        .await?;
        rows.iter().map(entry_of).collect()
    }

    async fn audit_entries_since(
        &self,
        tenant: i64,
        since_us: i64,
    ) -> Result<Vec<Entry>, StoreError> {
        let rows = sql::rows(
            self,
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM audit_log \
                 WHERE tenant_id = $1 AND at_us >= $2 ORDER BY seq"
            ),
            &[&tenant, &since_us],
        )
        .await?;
        rows.iter().map(entry_of).collect()
    }

    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let rows = sql::rows(
            self,
            "SELECT seq, hash, at_us, signature, tenant_id FROM audit_checkpoints ORDER BY seq",
            &[],
        )
        .await?;
        rows.iter()
            .map(|r| {
                let seq: i64 = col(r, 0)?;
                Ok(Checkpoint {
                    tenant: col(r, 4)?,
                    seq: seq as u64,
                    hash: hash_of(col(r, 1)?)?,
                    at_us: col(r, 2)?,
                    signature: col(r, 3)?,
                })
            })
            .collect()
    }

    async fn audit_entries_about(
        &self,
        tenant: i64,
        subjects: Vec<String>,
    ) -> Result<Vec<Entry>, StoreError> {
        // SQLite reads the tenant's whole chain page by page and filters it in Rust; here the
        // database filters. The answer is the same: entries are numbered from 1, so SQLite's
        // start after seq 0 skips none, and a NULL subject matches no `= ANY`.
        let rows = sql::rows(
            self,
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM audit_log \
                 WHERE tenant_id = $1 AND subject = ANY($2) ORDER BY seq"
            ),
            &[&tenant, &subjects],
        )
        .await?;
        rows.iter().map(entry_of).collect()
    }

    async fn open_request(&self, r: SubjectRequest) -> Result<i64, StoreError> {
        sql::one(
            self,
            "INSERT INTO subject_requests (tenant_id, kind, learner, received_us, deadline_us) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[
                &r.tenant,
                &r.kind,
                &r.learner,
                &r.received_us,
                &r.deadline_us,
            ],
        )
        .await
    }

    async fn complete_request(&self, id: i64, summary: String) -> Result<(), StoreError> {
        sql::execute(
            self,
            "UPDATE subject_requests SET completed_us = $2, summary = $3 WHERE id = $1",
            &[&id, &now_us(), &summary],
        )
        .await?;
        Ok(())
    }

    async fn unname_requests(&self, tenant: i64, learners: Vec<String>) -> Result<(), StoreError> {
        // One UPDATE for all the learners (SQLite runs one autocommitted UPDATE each: the same
        // end state, reached atomically here). SQLite's `PRAGMA secure_delete` has no PostgreSQL
        // counterpart: the old row versions, which name the learner, stay on disk until vacuum
        // frees their space and it is reused (see the module doc of privacy.rs).
        sql::execute(
            self,
            "UPDATE subject_requests SET learner = '(erased)' \
             WHERE tenant_id = $1 AND learner = ANY($2)",
            &[&tenant, &learners],
        )
        .await?;
        Ok(())
    }

    async fn requests(&self, tenant: i64) -> Result<Vec<SubjectRequest>, StoreError> {
        let rows = sql::rows(
            self,
            "SELECT id, tenant_id, kind, learner, received_us, deadline_us, completed_us, \
             summary FROM subject_requests WHERE tenant_id = $1 ORDER BY id DESC",
            &[&tenant],
        )
        .await?;
        rows.iter().map(request_of).collect()
    }

    async fn rule_overrides(&self, tenant: i64) -> Result<Option<String>, StoreError> {
        let row = sql::row(
            self,
            "SELECT rules FROM compliance_settings WHERE tenant_id = $1",
            &[&tenant],
        )
        .await?;
        row.as_ref().map(|r| col(r, 0)).transpose()
    }

    async fn set_rule_overrides(&self, tenant: i64, json: String) -> Result<(), StoreError> {
        sql::execute(
            self,
            "INSERT INTO compliance_settings (tenant_id, rules) VALUES ($1, $2) \
             ON CONFLICT (tenant_id) DO UPDATE SET rules = excluded.rules",
            &[&tenant, &json],
        )
        .await?;
        Ok(())
    }

    async fn server_secret(&self, purpose: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sql::row(
            self,
            "SELECT sealed FROM server_secrets WHERE purpose = $1",
            &[&purpose],
        )
        .await?;
        row.as_ref().map(|r| col(r, 0)).transpose()
    }

    async fn insert_server_secret(&self, purpose: &str, sealed: Vec<u8>) -> Result<(), StoreError> {
        // A second secret for the same purpose is an error (the primary key), as on SQLite: of
        // two servers creating the signing key at once, the loser fails rather than replace the
        // key the winner already signs with.
        sql::execute(
            self,
            "INSERT INTO server_secrets (purpose, sealed) VALUES ($1, $2)",
            &[&purpose, &sealed],
        )
        .await?;
        Ok(())
    }
}
