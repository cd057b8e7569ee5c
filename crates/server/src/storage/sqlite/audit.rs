//! [`AuditStore`] on SQLite.

use learnpulse_compliance::audit::{Checkpoint, Entry, Event};
use rusqlite::{OptionalExtension, params};

use super::SqliteStorage;
use crate::storage::StoreError;
use crate::storage::audit::{AuditStore, Incident, SubjectRequest};

fn hash_of(bytes: Vec<u8>) -> rusqlite::Result<[u8; 32]> {
    bytes.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Blob,
            "an audit hash is 32 bytes".into(),
        )
    })
}

fn entry_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let detail: String = r.get(6)?;
    Ok(Entry {
        seq: r.get::<_, i64>(0)? as u64,
        event: Event {
            tenant: r.get(1)?,
            at_us: r.get(2)?,
            actor: r.get(3)?,
            action: r.get(4)?,
            subject: r.get(5)?,
            // A detail that is not JSON any more is kept as text, so that the
            // verifier reports the entry as changed rather than failing to read it.
            detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
        },
        prev_hash: hash_of(r.get(7)?)?,
        hash: hash_of(r.get(8)?)?,
    })
}

impl AuditStore for SqliteStorage {
    async fn incidents(&self, tenant: i64, open_only: bool) -> Result<Vec<Incident>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, tenant_id, rule, severity, opened_us, closed_us, evidence, subjects, actions \
                 FROM incidents WHERE tenant_id = ?1 AND (?2 = 0 OR closed_us IS NULL) ORDER BY id DESC",
            )?;
            let rows = stmt.query_map(params![tenant, open_only], |r| {
                let subjects: String = r.get(7)?;
                let actions: String = r.get(8)?;
                Ok(Incident {
                    id: r.get(0)?,
                    tenant: r.get(1)?,
                    rule: r.get(2)?,
                    severity: r.get(3)?,
                    opened_us: r.get(4)?,
                    closed_us: r.get(5)?,
                    evidence: r.get(6)?,
                    subjects: serde_json::from_str(&subjects).unwrap_or_default(),
                    actions: serde_json::from_str(&actions).unwrap_or_default(),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn open_incident(&self, i: Incident) -> Result<i64, StoreError> {
        self.read(move |conn| {
            conn.execute(
                "INSERT INTO incidents (tenant_id, rule, severity, opened_us, evidence, subjects, actions) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    i.tenant,
                    i.rule,
                    i.severity,
                    i.opened_us,
                    i.evidence,
                    serde_json::to_string(&i.subjects).unwrap_or_default(),
                    i.actions.to_string()
                ],
            )?;
            Ok(conn.last_insert_rowid())
        })
        .await
    }

    async fn close_incident(&self, id: i64) -> Result<(), StoreError> {
        self.read(move |conn| {
            conn.execute(
                "UPDATE incidents SET closed_us = ?2 WHERE id = ?1 AND closed_us IS NULL",
                params![id, crate::storage::now_us()],
            )?;
            Ok(())
        })
        .await
    }

    async fn set_incident_actions(
        &self,
        id: i64,
        actions: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.read(move |conn| {
            conn.execute(
                "UPDATE incidents SET actions = ?2 WHERE id = ?1",
                params![id, actions.to_string()],
            )?;
            Ok(())
        })
        .await
    }

    async fn audit_heads(
        &self,
        tenants: Vec<i64>,
    ) -> Result<(u64, std::collections::BTreeMap<i64, [u8; 32]>), StoreError> {
        self.read(move |conn| {
            // One read transaction: the heads belong to one instant.
            let tx = conn.unchecked_transaction()?;
            let seq: i64 =
                tx.query_row("SELECT coalesce(max(seq), 0) FROM audit_log", [], |r| {
                    r.get(0)
                })?;
            let mut heads = std::collections::BTreeMap::new();
            {
                let mut last = tx.prepare_cached(
                    "SELECT hash FROM audit_log WHERE tenant_id = ?1 ORDER BY seq DESC LIMIT 1",
                )?;
                for t in tenants {
                    if let Some(hash) = last.query_row([t], |r| hash_of(r.get(0)?)).optional()? {
                        heads.insert(t, hash);
                    }
                }
            }
            tx.commit()?;
            Ok((seq as u64, heads))
        })
        .await
    }

    async fn append_audit(
        &self,
        entries: Vec<Entry>,
        checkpoints: Vec<Checkpoint>,
    ) -> Result<(), StoreError> {
        self.read(move |conn| {
            let tx = conn.unchecked_transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO audit_log (seq, tenant_id, at_us, actor, action, subject, detail, prev_hash, hash) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?;
                for e in &entries {
                    insert.execute(params![
                        e.seq as i64,
                        e.event.tenant,
                        e.event.at_us,
                        e.event.actor,
                        e.event.action,
                        e.event.subject,
                        e.event.detail.to_string(),
                        e.prev_hash.as_slice(),
                        e.hash.as_slice(),
                    ])?;
                }
            }
            for c in checkpoints {
                tx.execute(
                    "INSERT OR REPLACE INTO audit_checkpoints (seq, hash, at_us, signature, tenant_id) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![c.seq as i64, c.hash.as_slice(), c.at_us, c.signature, c.tenant],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn audit_entries(
        &self,
        after_seq: u64,
        limit: usize,
        tenant: Option<i64>,
    ) -> Result<Vec<Entry>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, tenant_id, at_us, actor, action, subject, detail, prev_hash, hash FROM audit_log \
                 WHERE seq > ?1 AND (?2 IS NULL OR tenant_id = ?2) ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![after_seq as i64, tenant, limit as i64], entry_of)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn audit_entries_since(
        &self,
        tenant: i64,
        since_us: i64,
    ) -> Result<Vec<Entry>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, tenant_id, at_us, actor, action, subject, detail, prev_hash, hash FROM audit_log \
                 WHERE tenant_id = ?1 AND at_us >= ?2 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![tenant, since_us], entry_of)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, hash, at_us, signature, tenant_id FROM audit_checkpoints ORDER BY seq",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(Checkpoint {
                    tenant: r.get(4)?,
                    seq: r.get::<_, i64>(0)? as u64,
                    hash: hash_of(r.get(1)?)?,
                    at_us: r.get(2)?,
                    signature: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn audit_entries_about(
        &self,
        tenant: i64,
        subjects: Vec<String>,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut entries = crate::storage::audit::entries_after(self, 0, Some(tenant)).await?;
        entries.retain(|e| {
            e.event
                .subject
                .as_ref()
                .is_some_and(|s| subjects.contains(s))
        });
        Ok(entries)
    }

    async fn open_request(&self, r: SubjectRequest) -> Result<i64, StoreError> {
        self.read(move |conn| {
            conn.execute(
                "INSERT INTO subject_requests (tenant_id, kind, learner, received_us, deadline_us) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![r.tenant, r.kind, r.learner, r.received_us, r.deadline_us],
            )?;
            Ok(conn.last_insert_rowid())
        })
        .await
    }

    async fn complete_request(&self, id: i64, summary: String) -> Result<(), StoreError> {
        self.read(move |conn| {
            conn.execute(
                "UPDATE subject_requests SET completed_us = ?2, summary = ?3 WHERE id = ?1",
                params![id, crate::storage::now_us(), summary],
            )?;
            Ok(())
        })
        .await
    }

    async fn unname_requests(&self, tenant: i64, learners: Vec<String>) -> Result<(), StoreError> {
        self.read(move |conn| {
            conn.execute_batch("PRAGMA secure_delete = ON")?;
            for l in &learners {
                conn.execute(
                    "UPDATE subject_requests SET learner = '(erased)' WHERE tenant_id = ?1 AND learner = ?2",
                    params![tenant, l],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn requests(&self, tenant: i64) -> Result<Vec<SubjectRequest>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, tenant_id, kind, learner, received_us, deadline_us, completed_us, summary \
                 FROM subject_requests WHERE tenant_id = ?1 ORDER BY id DESC",
            )?;
            let rows = stmt.query_map([tenant], |r| {
                Ok(SubjectRequest {
                    id: r.get(0)?,
                    tenant: r.get(1)?,
                    kind: r.get(2)?,
                    learner: r.get(3)?,
                    received_us: r.get(4)?,
                    deadline_us: r.get(5)?,
                    completed_us: r.get(6)?,
                    summary: r.get(7)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn rule_overrides(&self, tenant: i64) -> Result<Option<String>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT rules FROM compliance_settings WHERE tenant_id = ?1",
                    [tenant],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    async fn set_rule_overrides(&self, tenant: i64, json: String) -> Result<(), StoreError> {
        self.read(move |conn| {
            conn.execute(
                "INSERT INTO compliance_settings (tenant_id, rules) VALUES (?1, ?2) \
                 ON CONFLICT (tenant_id) DO UPDATE SET rules = excluded.rules",
                params![tenant, json],
            )?;
            Ok(())
        })
        .await
    }

    async fn server_secret(&self, purpose: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let purpose = purpose.to_owned();
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT sealed FROM server_secrets WHERE purpose = ?1",
                    [purpose],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    async fn insert_server_secret(&self, purpose: &str, sealed: Vec<u8>) -> Result<(), StoreError> {
        let purpose = purpose.to_owned();
        self.read(move |conn| {
            conn.execute(
                "INSERT INTO server_secrets (purpose, sealed) VALUES (?1, ?2)",
                params![purpose, sealed],
            )?;
            Ok(())
        })
        .await
    }
}
