//! The checkpointer, a background thread of the SQLite backend off the commit path: it copies
//! the WAL back into the database file (the writer never does it itself, so no request waits
//! behind a checkpoint). The other one, the indexer, lives with its file in [`super::index`].

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::super::StoreError;

/// Starts a named background thread.
pub(super) fn spawn(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, StoreError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| StoreError::Internal(e.to_string()))
}

/// WAL size beyond which the checkpointer makes the writer wait for a RESTART checkpoint.
const WAL_RESTART_BYTES: u64 = 128 * 1024 * 1024;

/// Copies the WAL back into the database file: a PASSIVE checkpoint every 200 ms (it never
/// blocks the writer), and a final TRUNCATE checkpoint at shutdown.
///
/// Under continuous ingest a PASSIVE checkpoint never finds the WAL fully copied (the writer
/// keeps appending), so the WAL would never start over and would grow without bound. When it
/// passes [`WAL_RESTART_BYTES`], a RESTART checkpoint briefly holds the writer back until the
/// remaining frames are copied; the next commit then writes the WAL from its beginning again.
pub(super) struct Checkpointer {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<()>,
}

impl Checkpointer {
    /// `wal` is the path of the WAL file of `conn`'s database.
    pub fn start(conn: Connection, wal: std::path::PathBuf) -> Result<Self, StoreError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = spawn("learnpulse-checkpoint", move || {
            while let Err(RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Duration::from_millis(200))
            {
                let wal_bytes = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
                metrics::gauge!("learnpulse_wal_bytes").set(wal_bytes as f64);
                let mode = if wal_bytes > WAL_RESTART_BYTES {
                    "RESTART"
                } else {
                    "PASSIVE"
                };
                let started = std::time::Instant::now();
                if let Err(e) = conn.execute_batch(&format!("PRAGMA wal_checkpoint({mode});")) {
                    tracing::warn!(error = %e, mode, "WAL checkpoint failed");
                }
                if mode == "RESTART" {
                    metrics::histogram!("learnpulse_wal_restart_seconds")
                        .record(started.elapsed().as_secs_f64());
                }
            }
            let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
        })?;
        Ok(Checkpointer { stop, handle })
    }

    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.join();
    }
}
