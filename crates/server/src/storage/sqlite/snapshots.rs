//! [`SnapshotStore`] on SQLite: one row per tenant in `engine_snapshots`, replaced as a set, and
//! the kept learner states in `learner_states`.

use rusqlite::{OptionalExtension, params};

use super::SqliteStorage;
use crate::storage::snapshots::{KeptLearner, Snapshot, SnapshotStore};
use crate::storage::{StoreError, TenantId};

impl SnapshotStore for SqliteStorage {
    async fn save_snapshots(
        &self,
        snapshots: Vec<Snapshot>,
        learners: Vec<KeptLearner>,
    ) -> Result<(), StoreError> {
        self.read(move |conn| {
            let tx = conn.unchecked_transaction()?;
            tx.execute("DELETE FROM engine_snapshots", [])?;
            for s in &snapshots {
                tx.execute(
                    "INSERT INTO engine_snapshots (tenant_id, covers_seq, body, created_us) \
                     VALUES (?1, ?2, ?3, ?4)",
                    params![s.tenant, s.covers_seq, s.body, s.created_us],
                )?;
            }
            {
                let mut upsert = tx.prepare(
                    "INSERT INTO learner_states (tenant_id, learner, covers_seq, body) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant_id, learner) DO UPDATE \
                     SET covers_seq = excluded.covers_seq, body = excluded.body \
                     WHERE excluded.covers_seq >= learner_states.covers_seq",
                )?;
                for l in &learners {
                    upsert.execute(params![l.tenant, l.learner, l.covers_seq, l.body])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn latest_snapshots(&self) -> Result<Vec<Snapshot>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT tenant_id, covers_seq, body, created_us FROM engine_snapshots \
                 ORDER BY tenant_id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(Snapshot {
                    tenant: r.get(0)?,
                    covers_seq: r.get(1)?,
                    body: r.get(2)?,
                    created_us: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn latest_snapshot_covers(&self) -> Result<i64, StoreError> {
        self.read(|conn| {
            let covers: Option<i64> = conn
                .query_row("SELECT max(covers_seq) FROM engine_snapshots", [], |r| {
                    r.get(0)
                })
                .optional()?
                .flatten();
            Ok(covers.unwrap_or(0))
        })
        .await
    }

    async fn kept_learners(
        &self,
        tenant: TenantId,
        learners: Vec<String>,
    ) -> Result<Vec<KeptLearner>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT covers_seq, body FROM learner_states \
                 WHERE tenant_id = ?1 AND learner = ?2",
            )?;
            let mut kept = Vec::new();
            for learner in learners {
                let row = stmt
                    .query_row(params![tenant, learner], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
                    })
                    .optional()?;
                if let Some((covers_seq, body)) = row {
                    kept.push(KeptLearner {
                        tenant,
                        learner,
                        covers_seq,
                        body,
                    });
                }
            }
            Ok(kept)
        })
        .await
    }

    async fn scrub_snapshot(
        &self,
        snapshot: Option<Snapshot>,
        tenant: TenantId,
        erased: Vec<String>,
    ) -> Result<(), StoreError> {
        self.read(move |conn| {
            let tx = conn.unchecked_transaction()?;
            if let Some(s) = &snapshot {
                tx.execute(
                    "UPDATE engine_snapshots SET body = ?2 WHERE tenant_id = ?1",
                    params![s.tenant, s.body],
                )?;
            }
            for learner in &erased {
                tx.execute(
                    "DELETE FROM learner_states WHERE tenant_id = ?1 AND learner = ?2",
                    params![tenant, learner],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn delete_snapshots(&self) -> Result<(), StoreError> {
        self.read(|conn| {
            conn.execute("DELETE FROM engine_snapshots", [])?;
            Ok(())
        })
        .await
    }
}
