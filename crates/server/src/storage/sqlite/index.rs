//! The deferred index database, `learnpulse.index.db`: what it holds, who keeps it up to date,
//! and how it is rebuilt when it is lost.
//!
//! The file holds the log's secondary indexes by actor, activity, registration and related key
//! (`storage/keys.rs`). Keeping them in the commit would make every append update four
//! random-key B-trees; instead the [`Indexer`] thread copies new rows' keys into this file in
//! large batches sorted by key, and records how far it got (`progress.indexed_through`). Queries read the index up to that
//! watermark and the log's tail beyond it, so results are complete the moment a statement is
//! acknowledged.
//!
//! The file is derived data: everything in it can be recomputed from the log. So nothing that
//! happens to it may stop the server or fail a query. At start an unreadable file is set aside
//! ([`open_or_replace`]); while running, the indexer checks every round that the file it writes
//! is still the one at the path and still starts with SQLite's header, and a failed index write
//! or a query that could not read the index ([`IndexState::request_rebuild`]) also leads to a
//! rebuild. While the file is being replaced, queries read the log alone (slower, same answers);
//! connections that had the old file attached notice the new [`IndexState::generation`] and
//! attach the new one.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::super::{Durability, StoreError};
use super::{INDEX_SCHEMA, open_connection};

/// Statements the indexer takes from the log in one batch.
const INDEX_BATCH: i64 = 200_000;
/// How often the indexer looks for new statements (and checks its file) when it has caught up.
const INDEX_INTERVAL: Duration = Duration::from_millis(250);
/// Failed index writes in a row after which the file is rebuilt instead of retried.
const FAILURES_BEFORE_REBUILD: u32 = 3;

/// The index database beside the log: `learnpulse.db` -> `learnpulse.index.db`.
pub(super) fn index_path(log: &Path) -> PathBuf {
    log.with_extension("index.db")
}

/// What the other threads know of the index, shared with the indexer.
#[derive(Default)]
pub(super) struct IndexState {
    /// Every statement with `seq <=` this is in the index.
    watermark: AtomicI64,
    /// Counts rebuilds: a connection that attached the file under an older generation has the
    /// old (deleted) file attached and must attach the new one.
    generation: AtomicU64,
    /// The file is being replaced: read the log alone.
    rebuilding: AtomicBool,
    /// Someone could not read the index: rebuild it at the indexer's next round.
    rebuild_wanted: AtomicBool,
}

impl IndexState {
    pub fn watermark(&self) -> i64 {
        self.watermark.load(Ordering::Acquire)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether queries may read the index (it is not being replaced).
    pub fn usable(&self) -> bool {
        !self.rebuilding.load(Ordering::Acquire)
    }

    /// A reader (or the writer) failed on the index while the log itself read fine.
    pub fn request_rebuild(&self, error: &StoreError) {
        if !self.rebuild_wanted.swap(true, Ordering::AcqRel) {
            tracing::error!(error = %error, "the index database could not be read; rebuilding it from the log, queries read the log meanwhile");
        }
    }
}

/// Opens the index database, creating its schema, and checks that its tables read.
fn open_index(path: &Path) -> Result<Connection, StoreError> {
    let index = open_connection(path, Durability::Process, false)?;
    index.execute_batch("PRAGMA journal_mode = WAL;")?;
    let table_exists = |name: &str| -> Result<bool, StoreError> {
        Ok(index.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get(0),
        )?)
    };
    // An index made before related keys were indexed is made again from the log.
    let predates_related = table_exists("progress")? && !table_exists("by_related")?;
    index.execute_batch(INDEX_SCHEMA)?;
    if predates_related {
        tracing::info!("the index predates related keys; rebuilding it from the log");
        index.execute_batch("DELETE FROM progress")?;
    }
    index.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
        [],
        |r| r.get::<_, i64>(0),
    )?;
    Ok(index)
}

/// Removes the index file and its WAL and shared-memory files.
fn remove_index_files(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.to_path_buf().into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(file));
    }
}

/// Opens the index database at start. A file that does not open as it should (a corrupt header,
/// a foreign file) is set aside and made anew: the server must not refuse to start over derived
/// data.
pub(super) fn open_or_replace(path: &Path) -> Result<(), StoreError> {
    if let Err(e) = open_index(path) {
        tracing::error!(error = %e, path = %path.display(), "the index database is unreadable; rebuilding it from the log");
        metrics::counter!("learnpulse_index_rebuilds_total", "reason" => "unreadable at start")
            .increment(1);
        remove_index_files(path);
        open_index(path)?;
    }
    Ok(())
}

/// Which file a path names, to notice that it was deleted or replaced under us.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Why the file at `path` is no longer the index the indexer writes, if it is not.
fn damage(path: &Path, opened: Option<(u64, u64)>) -> Option<&'static str> {
    use std::io::Read;
    match identity(path) {
        None => return Some("deleted"),
        Some(now) if Some(now) != opened => return Some("replaced"),
        Some(_) => {}
    }
    let mut header = [0u8; 16];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut header));
    match read {
        Ok(()) if &header == b"SQLite format 3\0" => None,
        // An empty file is what SQLite leaves before its first write; anything else is not ours.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
        _ => Some("header overwritten"),
    }
}

/// Maintains `learnpulse.index.db` from the log.
pub(super) struct Indexer {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<()>,
}

/// The indexer thread's own state: its connections and the file it writes.
struct IndexerThread {
    log: Connection,
    index: Option<Connection>,
    path: PathBuf,
    opened: Option<(u64, u64)>,
    through: i64,
    failures: u32,
    state: Arc<IndexState>,
}

impl Indexer {
    /// `log` reads the event log; the index database at `path` has been opened (or replaced) by
    /// [`open_or_replace`].
    pub fn start(
        log: Connection,
        path: PathBuf,
        state: Arc<IndexState>,
    ) -> Result<Self, StoreError> {
        let index = open_connection(&path, Durability::Process, false)?;
        let mut thread = IndexerThread {
            opened: identity(&path),
            log,
            index: Some(index),
            path,
            through: 0,
            failures: 0,
            state,
        };
        if let Err(e) = thread.resume() {
            thread.state.request_rebuild(&e);
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = super::background::spawn("learnpulse-indexer", move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INDEX_INTERVAL) {
                thread.round();
            }
            thread.catch_up();
        })?;
        Ok(Indexer { stop, handle })
    }

    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.join();
    }
}

impl IndexerThread {
    /// One round: rebuild the file if it is lost or someone asked, then index what is new.
    fn round(&mut self) {
        let wanted = self.state.rebuild_wanted.swap(false, Ordering::AcqRel);
        let reason = if self.index.is_none() {
            Some("previous rebuild failed")
        } else if let Some(reason) = damage(&self.path, self.opened) {
            Some(reason)
        } else if self.failures >= FAILURES_BEFORE_REBUILD {
            Some("indexing keeps failing")
        } else if wanted {
            Some("a read failed")
        } else {
            None
        };
        if let Some(reason) = reason {
            self.rebuild(reason);
        }
        self.catch_up();
    }

    /// Indexes batches until the log's end (or an error, retried next round).
    fn catch_up(&mut self) {
        let Some(index) = &self.index else { return };
        loop {
            match index_batch(&self.log, index, self.through) {
                Ok(Some((last, full))) => {
                    self.through = last;
                    self.failures = 0;
                    self.state.watermark.store(last, Ordering::Release);
                    if !full {
                        break;
                    }
                }
                Ok(None) => {
                    self.failures = 0;
                    break;
                }
                Err(e) => {
                    self.failures += 1;
                    tracing::error!(error = %e, failures = self.failures, "indexing failed; will retry");
                    break;
                }
            }
        }
    }

    /// Where to continue: the stored watermark, unless the index belongs to another log or
    /// claims more than the log holds (then it starts again from the beginning).
    fn resume(&mut self) -> Result<(), StoreError> {
        let Some(index) = &self.index else {
            return Ok(());
        };
        self.through = resume_point(&self.log, index)?;
        self.state.watermark.store(self.through, Ordering::Release);
        Ok(())
    }

    /// Replaces the file by an empty index and starts indexing the log from its beginning.
    /// Meanwhile queries read the log alone; if the new file cannot be made (a full disk), they
    /// go on doing so and the next round tries again.
    fn rebuild(&mut self, reason: &'static str) {
        tracing::error!(reason, path = %self.path.display(), "rebuilding the index database from the log");
        metrics::counter!("learnpulse_index_rebuilds_total", "reason" => reason).increment(1);
        self.state.rebuilding.store(true, Ordering::Release);
        self.state.watermark.store(0, Ordering::Release);
        self.index = None;
        remove_index_files(&self.path);
        match open_index(&self.path) {
            Ok(index) => {
                self.index = Some(index);
                self.opened = identity(&self.path);
                self.failures = 0;
                if let Err(e) = self.resume() {
                    tracing::error!(error = %e, "the new index database does not read");
                    self.index = None;
                    return;
                }
                self.state.generation.fetch_add(1, Ordering::AcqRel);
                self.state.rebuilding.store(false, Ordering::Release);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot make a new index database; queries read the log meanwhile")
            }
        }
    }
}

/// The stored watermark of `index` if it belongs to this log and claims no more than the log
/// holds; otherwise the index is emptied and 0 is returned.
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
                "BEGIN; DELETE FROM by_actor; DELETE FROM by_activity; DELETE FROM by_registration; \
                 DELETE FROM by_related;",
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
    let mut related = Vec::new();
    let mut last = through;
    let mut count = 0;
    {
        let mut stmt = log.prepare_cached(
            "SELECT seq, tenant_id, actor_id, activity_id, registration, related FROM statements \
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
            if let Some(keys) = row.get::<_, Option<String>>(5)? {
                let tenant: i64 = row.get(1)?;
                for key in keys.split('\n').filter(|k| !k.is_empty()) {
                    related.push((tenant, key.to_owned(), seq));
                }
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
    related.sort_unstable();
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
        let mut insert = index.prepare_cached(
            "INSERT OR IGNORE INTO by_related (tenant_id, key, seq) VALUES (?1, ?2, ?3)",
        )?;
        for (tenant, key, seq) in &related {
            insert.execute(params![tenant, key, seq])?;
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
