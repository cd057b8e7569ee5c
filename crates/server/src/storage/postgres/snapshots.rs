//! [`SnapshotStore`] on PostgreSQL: one row per tenant in `engine_snapshots`, replaced as a set.

use super::{PostgresStorage, db_err};
use crate::storage::StoreError;
use crate::storage::snapshots::{Snapshot, SnapshotStore};

impl SnapshotStore for PostgresStorage {
    async fn save_snapshots(&self, snapshots: Vec<Snapshot>) -> Result<(), StoreError> {
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

    async fn delete_snapshots(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM engine_snapshots", &[])
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
