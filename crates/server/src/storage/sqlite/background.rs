//! The checkpointer, a background thread of the SQLite backend off the commit path: it copies
//! the WAL back into the database file (the writer never does it itself, so no request waits
//! behind a checkpoint). The other one, the indexer, lives with its file in [`super::index`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// WAL in use (frames not yet started over) beyond which the copy-back aims to start it over.
const WAL_RESTART_BYTES: i64 = 128 * 1024 * 1024;

/// WAL frames (pages) left to copy under which the writer is asked to copy the rest itself.
const HANDOVER_FRAMES: i64 = 2_048;

/// Asks the writer, between two of its commits, to copy the last frames of the WAL back (see
/// [`Checkpointer`]).
#[derive(Default)]
pub(super) struct CopyBack {
    due: AtomicBool,
}

impl CopyBack {
    /// Whether the checkpointer asked for the rest to be copied (and the request is taken).
    pub fn take(&self) -> bool {
        self.due.swap(false, Ordering::AcqRel)
    }
}

/// Copies the WAL back into the database file, off the commit path, and has the WAL start over
/// before it grows without bound; a final TRUNCATE checkpoint at shutdown.
///
/// A PASSIVE checkpoint every 200 ms copies what is committed and never blocks the writer.
/// Under continuous ingest it never finds the WAL fully copied (the writer keeps appending),
/// and SQLite starts a WAL over only when a write transaction begins on a fully copied one. A
/// RESTART checkpoint forces that, but it holds the writer back while it waits for the lock,
/// copies and waits for readers: measured, about 0.3 s each time, every second or two under
/// ingest. So the copy-back is scheduled instead:
/// - past [`WAL_RESTART_BYTES`] in use, PASSIVE checkpoints follow each other without a pause
///   until fewer than [`HANDOVER_FRAMES`] are left;
/// - then the writer is asked ([`CopyBack`]) to copy the rest itself between two of its commits,
///   where no other write can slip in: a PASSIVE checkpoint of a few MiB, waiting for nothing.
///   Its next transaction starts the WAL over (SQLite does so on a fully copied WAL that no
///   reader still needs);
/// - a WAL four times the size (a long reader holding old frames, a copy that cannot catch up)
///   gets a RESTART as the last resort.
pub(super) struct Checkpointer {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<()>,
}

/// What a checkpoint of `conn`'s main database says: whether it could not finish (busy), the
/// frames in the WAL, and the frames copied back.
pub(super) fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<(bool, i64, i64)> {
    checkpoint_of(conn, "main", mode)
}

fn checkpoint_of(
    conn: &Connection,
    schema: &str,
    mode: &str,
) -> rusqlite::Result<(bool, i64, i64)> {
    conn.query_row(
        &format!("PRAGMA {schema}.wal_checkpoint({mode});"),
        [],
        |r| Ok((r.get::<_, i64>(0)? != 0, r.get(1)?, r.get(2)?)),
    )
}

/// Copies the WAL of `schema` (`main`, or an attached database) back and empties it, so that no
/// copy of erased rows is left in it. SQLite does not wait for a checkpoint another connection
/// is running (the checkpointer's): it answers "busy" in the result, not with an error, so this
/// tries again for up to five seconds and fails the erasure rather than report a WAL emptied
/// that is not.
pub(super) fn empty_wal(conn: &Connection, schema: &str) -> Result<(), StoreError> {
    for _ in 0..500 {
        let (busy, _, _) = checkpoint_of(conn, schema, "TRUNCATE")?;
        if !busy {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(StoreError::Internal(format!(
        "the {schema} database's WAL could not be emptied in 5 s (a reader or a checkpoint held it)"
    )))
}

impl Checkpointer {
    /// `wal` is the path of the WAL file of `conn`'s database.
    pub fn start(
        conn: Connection,
        wal: std::path::PathBuf,
        copy_back: Arc<CopyBack>,
    ) -> Result<Self, StoreError> {
        let page_bytes: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = spawn("learnpulse-checkpoint", move || {
            let mut pause = Duration::from_millis(200);
            let mut copied_before = 0;
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(pause) {
                let wal_bytes = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
                metrics::gauge!("learnpulse_wal_bytes").set(wal_bytes as f64);
                pause = Duration::from_millis(200);
                let (log, copied) = match checkpoint(&conn, "PASSIVE") {
                    Ok((_, log, copied)) => (log, copied),
                    Err(e) => {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                        continue;
                    }
                };
                let progressed = copied > copied_before;
                copied_before = copied;
                let in_use = log * page_bytes;
                if in_use <= WAL_RESTART_BYTES || log == copied {
                    // Small, or all copied: the next write transaction starts the WAL over once
                    // no reader needs it.
                    continue;
                }
                if in_use > 4 * WAL_RESTART_BYTES {
                    let started = std::time::Instant::now();
                    if let Err(e) = checkpoint(&conn, "RESTART") {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                    metrics::histogram!("learnpulse_wal_restart_seconds")
                        .record(started.elapsed().as_secs_f64());
                } else if log - copied > HANDOVER_FRAMES {
                    // Still catching up: copy again at once, unless a reader's snapshot stopped
                    // the copy (then at the usual pace, not in a spin).
                    if progressed {
                        pause = Duration::ZERO;
                    }
                } else {
                    copy_back.due.store(true, Ordering::Release);
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
