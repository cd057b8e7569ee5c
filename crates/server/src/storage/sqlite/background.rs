//! The two background threads of the SQLite backend, both off the commit path:
//!
//! - the [`Checkpointer`] copies the WAL back into the database file (the writer never does it
//!   itself, so no request waits behind a checkpoint);
//! - the [`Indexer`] maintains the secondary indexes by actor, activity and registration in their
//!   own database file, in large batches sorted by key. Queries read the index up to its
//!   watermark and the log's tail beyond it, so results are complete the moment a statement is
//!   acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::super::StoreError;

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, StoreError> {
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

/// Statements the indexer takes from the log in one batch.
const INDEX_BATCH: i64 = 200_000;
/// How often the indexer looks for new statements when it has caught up.
const INDEX_INTERVAL: Duration = Duration::from_millis(250);

/// Maintains `learnpulse.index.db` from the log.
pub(super) struct Indexer {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<()>,
}

/// Where the index stands: every statement with `seq <=` this is in the index.
pub(super) type Watermark = Arc<AtomicI64>;

impl Indexer {
    /// `log` reads the event log; `index` writes the index database.
    pub fn start(
        log: Connection,
        index: Connection,
        watermark: Watermark,
    ) -> Result<Self, StoreError> {
        let mut through = resume_point(&log, &index)?;
        watermark.store(through, Ordering::Release);
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = spawn("learnpulse-indexer", move || {
            let catch_up = |through: &mut i64| loop {
                match index_batch(&log, &index, *through) {
                    Ok(Some((last, full))) => {
                        *through = last;
                        watermark.store(last, Ordering::Release);
                        if !full {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "indexing failed; will retry");
                        break;
                    }
                }
            };
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INDEX_INTERVAL) {
                catch_up(&mut through);
            }
            catch_up(&mut through);
        })?;
        Ok(Indexer { stop, handle })
    }

    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.join();
    }
}

/// Where to continue: the stored watermark, unless the index belongs to another log or claims
/// more than the log holds (then it is rebuilt from the start).
fn resume_point(log: &Connection, index: &Connection) -> Result<i64, StoreError> {
    let log_id: String =
        log.query_row("SELECT log_id FROM log_identity WHERE id = 1", [], |r| {
            r.get(0)
        })?;
    let last_seq: i64 = log.query_row("SELECT COALESCE(MAX(seq), 0) FROM statements", [], |r| {
        r.get(0)
    })?;
    let progress: Option<(String, i64)> = index
        .query_row(
            "SELECT log_id, indexed_through FROM progress WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match progress {
        Some((id, through)) if id == log_id && through <= last_seq => Ok(through),
        stale => {
            if stale.is_some() {
                tracing::warn!("the index file does not match the event log; rebuilding it");
            }
            index.execute_batch(
                "BEGIN; DELETE FROM by_actor; DELETE FROM by_activity; DELETE FROM by_registration;",
            )?;
            index.execute(
                "INSERT OR REPLACE INTO progress (id, log_id, indexed_through) VALUES (1, ?1, 0)",
                [&log_id],
            )?;
            index.execute_batch("COMMIT;")?;
            Ok(0)
        }
    }
}

/// Indexes the next batch of statements after `through`, sorted by key so that each index page
/// is written once. Returns the last sequence number indexed and whether the batch was full.
fn index_batch(
    log: &Connection,
    index: &Connection,
    through: i64,
) -> Result<Option<(i64, bool)>, StoreError> {
    let mut actors = Vec::new();
    let mut activities = Vec::new();
    let mut registrations = Vec::new();
    let mut last = through;
    let mut count = 0;
    {
        let mut stmt = log.prepare_cached(
            "SELECT seq, tenant_id, actor_id, activity_id, registration FROM statements \
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![through, INDEX_BATCH])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            actors.push((row.get::<_, i64>(2)?, seq));
            if let Some(activity) = row.get::<_, Option<i64>>(3)? {
                activities.push((activity, seq));
            }
            if let Some(registration) = row.get::<_, Option<Vec<u8>>>(4)? {
                registrations.push((row.get::<_, i64>(1)?, registration, seq));
            }
            last = seq;
            count += 1;
        }
    }
    if count == 0 {
        return Ok(None);
    }
    actors.sort_unstable();
    activities.sort_unstable();
    registrations.sort_unstable();
    index.execute_batch("BEGIN")?;
    let result = (|| -> Result<(), StoreError> {
        let mut insert = index
            .prepare_cached("INSERT OR IGNORE INTO by_actor (actor_id, seq) VALUES (?1, ?2)")?;
        for (actor, seq) in &actors {
            insert.execute(params![actor, seq])?;
        }
        let mut insert = index.prepare_cached(
            "INSERT OR IGNORE INTO by_activity (activity_id, seq) VALUES (?1, ?2)",
        )?;
        for (activity, seq) in &activities {
            insert.execute(params![activity, seq])?;
        }
        let mut insert = index.prepare_cached(
            "INSERT OR IGNORE INTO by_registration (tenant_id, registration, seq) VALUES (?1, ?2, ?3)",
        )?;
        for (tenant, registration, seq) in &registrations {
            insert.execute(params![tenant, registration, seq])?;
        }
        index.execute(
            "UPDATE progress SET indexed_through = ?1 WHERE id = 1",
            [last],
        )?;
        Ok(())
    })();
    match result {
        Ok(()) => index.execute_batch("COMMIT")?,
        Err(e) => {
            let _ = index.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    metrics::histogram!("learnpulse_index_batch_statements").record(count as f64);
    let log_last: i64 = log.query_row("SELECT COALESCE(MAX(seq), 0) FROM statements", [], |r| {
        r.get(0)
    })?;
    metrics::gauge!("learnpulse_index_lag_statements").set((log_last - last) as f64);
    Ok(Some((last, count == INDEX_BATCH as usize)))
}
