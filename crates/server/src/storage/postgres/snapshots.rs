//! [`SnapshotStore`] on PostgreSQL: one row per tenant in `engine_snapshots`, replaced as a set,
//! and the kept learner states in `learner_states`.

use super::{PostgresStorage, db_err};
use crate::storage::snapshots::{KeptLearner, Snapshot, SnapshotStore};
use crate::storage::{StoreError, TenantId};

impl SnapshotStore for PostgresStorage {
    async fn save_snapshots(
        &self,
        snapshots: Vec<Snapshot>,
        learners: Vec<KeptLearner>,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        tx.execute("DELETE FROM engine_snapshots", &[])
            .await
            .map_err(db_err)?;
        for s in &snapshots {
            tx.execute(
                "INSERT INTO engine_snapshots (tenant_id, covers_seq, body, created_us) \
                 VALUES ($1, $2, $3, $4)",
                &[&s.tenant, &s.covers_seq, &s.body, &s.created_us],
            )
            .await
            .map_err(db_err)?;
        }
        // In pages, each one statement of arrays: a snapshot may carry many learners.
        for page in learners.chunks(5_000) {
            let tenants: Vec<i64> = page.iter().map(|l| l.tenant).collect();
            let names: Vec<&str> = page.iter().map(|l| l.learner.as_str()).collect();
            let covers: Vec<i64> = page.iter().map(|l| l.covers_seq).collect();
            let bodies: Vec<&[u8]> = page.iter().map(|l| l.body.as_slice()).collect();
            tx.execute(
                "INSERT INTO learner_states (tenant_id, learner, covers_seq, body) \
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bytea[]) \
                 ON CONFLICT (tenant_id, learner) DO UPDATE \
                 SET covers_seq = excluded.covers_seq, body = excluded.body \
                 WHERE excluded.covers_seq >= learner_states.covers_seq",
                &[&tenants, &names, &covers, &bodies],
            )
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn latest_snapshots(&self) -> Result<Vec<Snapshot>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT tenant_id, covers_seq, body, created_us FROM engine_snapshots \
                 ORDER BY tenant_id",
                &[],
            )
            .await
            .map_err(db_err)?;
        Ok(rows
            .iter()
            .map(|r| Snapshot {
                tenant: r.get(0),
                covers_seq: r.get(1),
                body: r.get(2),
                created_us: r.get(3),
            })
            .collect())
    }

    async fn latest_snapshot_covers(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT max(covers_seq) FROM engine_snapshots", &[])
            .await
            .map_err(db_err)?;
        Ok(row.get::<_, Option<i64>>(0).unwrap_or(0))
    }

    async fn kept_learners(
        &self,
        tenant: TenantId,
        learners: Vec<String>,
    ) -> Result<Vec<KeptLearner>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT learner, covers_seq, body FROM learner_states \
                 WHERE tenant_id = $1 AND learner = ANY($2)",
                &[&tenant, &learners],
            )
            .await
            .map_err(db_err)?;
        Ok(rows
            .iter()
            .map(|r| KeptLearner {
                tenant,
                learner: r.get(0),
                covers_seq: r.get(1),
                body: r.get(2),
            })
            .collect())
    }

    async fn scrub_snapshot(
        &self,
        snapshot: Option<Snapshot>,
        tenant: TenantId,
        erased: Vec<String>,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        if let Some(s) = &snapshot {
            tx.execute(
                "UPDATE engine_snapshots SET body = $2 WHERE tenant_id = $1",
                &[&s.tenant, &s.body],
            )
            .await
            .map_err(db_err)?;
        }
        tx.execute(
            "DELETE FROM learner_states WHERE tenant_id = $1 AND learner = ANY($2)",
            &[&tenant, &erased],
        )
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn delete_snapshots(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM engine_snapshots", &[])
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
