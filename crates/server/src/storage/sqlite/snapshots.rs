//! [`SnapshotStore`] on SQLite: one row per tenant in `engine_snapshots`, replaced as a set.

use rusqlite::params;

use super::SqliteStorage;
use crate::storage::StoreError;
use crate::storage::snapshots::{Snapshot, SnapshotStore};

impl SnapshotStore for SqliteStorage {
    async fn save_snapshots(&self, snapshots: Vec<Snapshot>) -> Result<(), StoreError> {
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

    async fn delete_snapshots(&self) -> Result<(), StoreError> {
        self.read(|conn| {
            conn.execute("DELETE FROM engine_snapshots", [])?;
            Ok(())
        })
        .await
    }
}
