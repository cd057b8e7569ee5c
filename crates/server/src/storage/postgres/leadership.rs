//! Duties on PostgreSQL: a session-level advisory lock per duty, each on a connection of its
//! own (see `storage::leadership`).

use std::time::Duration;

use super::{PostgresStorage, db_err};
use crate::storage::StoreError;
use crate::storage::leadership::Duty;

/// How often a process that does not lead a duty tries to take it, and how often the leader
/// checks that its lock's connection is alive.
const RETRY: Duration = Duration::from_secs(1);

/// An advisory lock this process holds; dropping it closes its connection, which releases it.
pub struct HeldLock {
    client: tokio_postgres::Client,
    connection: tokio::task::JoinHandle<()>,
}

impl PostgresStorage {
    /// Waits until this process holds `duty`'s lock.
    pub(crate) async fn lead(&self, duty: Duty) -> Result<HeldLock, StoreError> {
        let (client, connection) = super::connect(&self.config).await?;
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        loop {
            let row = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&duty.lock_key()])
                .await
                .map_err(db_err)?;
            if row.get::<_, bool>(0) {
                return Ok(HeldLock { client, connection });
            }
            tokio::time::sleep(RETRY).await;
        }
    }
}

impl HeldLock {
    /// Resolves when the lock's connection has ended or stops answering.
    pub async fn lost(&mut self) {
        let mut tick = tokio::time::interval(RETRY);
        loop {
            tokio::select! {
                _ = &mut self.connection => return,
                _ = tick.tick() => {
                    if self.client.simple_query("SELECT 1").await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        self.connection.abort();
    }
}
