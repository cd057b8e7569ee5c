//! The embedded backend: SQLite in WAL mode, in the data directory.
//!
//! Three files: `learnpulse.db` (the event log and every table), `learnpulse.index.db` (the
//! log's secondary indexes, derived data kept off the commit path) and `learnpulse.outbox.db`
//! (webhook messages, written off the ingest path so that they never wait for the log's
//! writer). One writer thread owns the only connection that appends to the log (see
//! [`writer`]); reads use a small pool of connections on tokio's blocking threads, which WAL
//! lets run beside the writer. After each group commit the writer publishes the new head on a
//! watch channel: that is how followers in this process learn that the log has grown.

mod attachments;
mod audit;
mod background;
mod documents;
mod index;
mod outbox;
mod privacy;
mod query;
mod snapshots;
mod transfer;
mod upgrade;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::log::with_stored;
use super::{
    AccountStore, ApiKeyRecord, Appended, Durability, Erased, EventLog, LogEntry, NewStatement,
    Role, StatementPage, StatementQuery, StoreError, Tenant, TenantId, now_us,
};
use background::{Checkpointer, CopyBack};
use index::{IndexState, Indexer, index_path};
use writer::{AppendRequest, EraseRequest, PurgeRequest, Request, Writer};

const SCHEMA: &str = include_str!("schema.sql");
const INDEX_SCHEMA: &str = include_str!("index_schema.sql");
/// Pending append requests before callers wait for room (backpressure, not unbounded memory).
const QUEUE_DEPTH: usize = 4_096;

/// Options of the SQLite backend.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The data directory; created when missing.
    pub dir: PathBuf,
    pub durability: Durability,
    /// Upper bound of statements in one group commit.
    pub max_batch_statements: usize,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Internal(e.to_string())
    }
}

/// The event log's file in a data directory.
pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("learnpulse.db")
}

pub struct SqliteStorage {
    options: SqliteOptions,
    path: PathBuf,
    committed: watch::Sender<i64>,
    /// Changes announced by other processes (`storage::changes`): there are none.
    changes: tokio::sync::broadcast::Sender<crate::storage::Change>,
    outbox: outbox::OutboxDb,
    sender: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    checkpointer: Mutex<Option<Checkpointer>>,
    indexer: Mutex<Option<Indexer>>,
    index: Arc<IndexState>,
    readers: Arc<ReadPool>,
}

/// Opens a connection with the settings every connection of ours uses.
fn open_connection(
    path: &Path,
    durability: Durability,
    read_only: bool,
) -> rusqlite::Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Process => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536; \
         PRAGMA secure_delete = ON;"
    ))?;
    Ok(conn)
}

impl SqliteStorage {
    /// Opens (creating if needed) the data directory, its databases and their schemas, and
    /// starts the writer and its background threads.
    pub fn open(options: &SqliteOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(&options.dir)
            .map_err(|e| StoreError::Internal(format!("{}: {e}", options.dir.display())))?;
        let path = log_path(&options.dir);
        let conn = open_connection(&path, options.durability, false)?;
        conn.execute_batch("PRAGMA journal_mode = WAL;")?;
        conn.execute_batch(SCHEMA)?;
        upgrade::add_missing_columns(&conn)?;
        let head: i64 =
            conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM statements", [], |r| {
                r.get(0)
            })?;
        drop(conn);
        // The index is derived data (rebuilt from the log if lost), so it never needs fsync.
        index::open_or_replace(&index_path(&path))?;
        let index = Arc::new(IndexState::default());
        let readers = ReadPool {
            path: path.clone(),
            durability: options.durability,
            index: index.clone(),
            idle: Mutex::new(Vec::new()),
        };
        let first = readers.open()?;
        readers.idle.lock().unwrap().push(first);
        let storage = SqliteStorage {
            options: options.clone(),
            outbox: outbox::OutboxDb::open(
                &options.dir.join("learnpulse.outbox.db"),
                options.durability,
            )?,
            path,
            committed: watch::Sender::new(head),
            changes: tokio::sync::broadcast::Sender::new(crate::storage::changes::BACKLOG),
            sender: Mutex::new(None),
            writer: Mutex::new(None),
            checkpointer: Mutex::new(None),
            indexer: Mutex::new(None),
            index,
            readers: Arc::new(readers),
        };
        storage.start_writer()?;
        Ok(storage)
    }

    /// Starts the writer thread and the background threads beside it.
    fn start_writer(&self) -> Result<(), StoreError> {
        let options = &self.options;
        let path = &self.path;
        let conn = open_connection(path, options.durability, false)?;
        // The writer never checkpoints (copies the WAL back into the database file) on its own
        // account: that I/O would stall every request queued behind it. A second thread does
        // it, and hands the writer only the last few MiB (`background::CopyBack`).
        // When the WAL starts over, a file past 512 MiB is cut back to that (not smaller: cutting
        // a file the checkpointer keeps at ~130 MiB back on every start-over cost the writer
        // ~85 ms each time, measured).
        // A request's SAVEPOINT journal stays in memory: past 64 KiB it went to a temporary
        // file, opened and closed on every group commit.
        conn.execute_batch(
            "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 536870912; \
             PRAGMA temp_store = MEMORY;",
        )?;
        // Erasures run on this connection: deleted content is overwritten rather than left in
        // free pages.
        conn.execute_batch("PRAGMA secure_delete = ON;")?;
        let copy_back = Arc::new(CopyBack::default());
        let writer = Writer::new(
            conn,
            self.committed.clone(),
            options.max_batch_statements,
            self.index.clone(),
            index_path(path),
            copy_back.clone(),
        )?;
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        *self.checkpointer.lock().unwrap() = Some(Checkpointer::start(
            open_connection(path, options.durability, false)?,
            PathBuf::from(wal),
            copy_back,
        )?);
        *self.indexer.lock().unwrap() = Some(Indexer::start(
            open_connection(path, options.durability, false)?,
            index_path(path),
            self.index.clone(),
        )?);
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let handle = std::thread::Builder::new()
            .name("learnpulse-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        *self.sender.lock().unwrap() = Some(tx);
        *self.writer.lock().unwrap() = Some(handle);
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The head of the log, updated by the writer after every commit.
    pub fn committed(&self) -> watch::Receiver<i64> {
        self.committed.subscribe()
    }

    /// Nothing is ever sent: no other process shares this storage.
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<crate::storage::Change> {
        self.changes.subscribe()
    }

    /// Stops the writer after it has committed everything queued, then its helpers.
    pub async fn shutdown(&self) {
        // Dropping the sender ends the writer's loop once the queue is drained.
        self.sender.lock().unwrap().take();
        if let Some(handle) = self.writer.lock().unwrap().take() {
            let _ = handle.join();
        }
        if let Some(indexer) = self.indexer.lock().unwrap().take() {
            indexer.stop();
        }
        if let Some(checkpointer) = self.checkpointer.lock().unwrap().take() {
            checkpointer.stop();
        }
        // The outbox's connection closes (and SQLite removes its WAL) only when the last
        // handle to the storage is dropped, which tasks still winding down may delay: leave
        // its WAL empty now.
        let emptied = self
            .outbox(|conn| Ok(conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?))
            .await;
        if let Err(e) = emptied {
            tracing::warn!(error = %e, "cannot checkpoint the outbox at shutdown");
        }
    }

    /// Every statement with a sequence number up to this one is in the deferred indexes.
    pub fn indexed_through(&self) -> i64 {
        self.index.watermark()
    }

    /// How many times the index file was rebuilt while this store was open (it was deleted,
    /// replaced, overwritten or failed to read).
    pub fn index_rebuilds(&self) -> u64 {
        self.index.generation()
    }

    /// Sends a request to the writer thread and waits for its answer.
    async fn ask_writer<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Request,
    ) -> Result<T, StoreError> {
        let sender = self.sender.lock().unwrap().clone();
        let sender =
            sender.ok_or_else(|| StoreError::Unavailable("the writer is not running".into()))?;
        let (reply, wait) = oneshot::channel();
        sender
            .send(request(reply))
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        wait.await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || pool.with(f))
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?
    }
}

/// Idle connections, reused across reads. Grows to the number of concurrent readers.
struct ReadPool {
    path: PathBuf,
    durability: Durability,
    index: Arc<IndexState>,
    /// Each with the index generation it attached: after a rebuild, older ones are replaced.
    idle: Mutex<Vec<(Connection, u64)>>,
}

impl ReadPool {
    /// A connection to the log with the index database attached as `idx`. An index file that
    /// cannot be attached does not keep the log from being read: the connection goes without
    /// it (its queries read the log alone) until the indexer has made a new file.
    fn open(&self) -> Result<(Connection, u64), StoreError> {
        let generation = self.index.generation();
        let conn = open_connection(&self.path, self.durability, false)?;
        // What these connections write (audit entries, consents, documents) commits to the same
        // WAL as the writer's appends. With SQLite's default, the commit that finds the WAL past
        // 1,000 pages copies it back itself, so under ingest every such commit did the
        // checkpointer's work (a tenth of the server's time, measured): only the checkpointer
        // copies the WAL back.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
        let index = index_path(&self.path);
        if let Err(e) = conn.execute("ATTACH DATABASE ?1 AS idx", [index.to_string_lossy()]) {
            self.index.request_rebuild(&e.into());
        }
        Ok((conn, generation))
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self.idle.lock().unwrap().pop();
        let (conn, generation) = match idle {
            Some((conn, generation)) if generation == self.index.generation() => (conn, generation),
            _ => self.open()?,
        };
        let result = f(&conn);
        self.idle.lock().unwrap().push((conn, generation));
        result
    }
}

fn role_of(s: String) -> rusqlite::Result<Role> {
    Role::parse(&s)
        .ok_or_else(|| rusqlite::Error::InvalidColumnType(0, s, rusqlite::types::Type::Text))
}

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    let hash: Vec<u8> = r.get(3)?;
    Ok(ApiKeyRecord {
        key_id: r.get(0)?,
        tenant_id: r.get(1)?,
        role: role_of(r.get(2)?)?,
        secret_sha256: hash.try_into().unwrap_or([0; 32]),
        label: r.get(4)?,
        created_us: r.get(5)?,
        revoked_us: r.get(6)?,
        expires_us: r.get(7)?,
        last_used_us: r.get(8)?,
        groups: r
            .get::<_, Option<String>>(9)?
            .and_then(|json| serde_json::from_str(&json).ok()),
    })
}

const KEY_COLUMNS: &str = "key_id, tenant_id, role, secret_sha256, label, created_us, revoked_us, expires_us, last_used_us, groups";

impl EventLog for SqliteStorage {
    async fn append(
        &self,
        tenant: TenantId,
        statements: Vec<NewStatement>,
    ) -> Result<Appended, StoreError> {
        self.ask_writer(|reply| {
            Request::Append(AppendRequest {
                tenant,
                statements,
                reply,
            })
        })
        .await
    }

    async fn statement(
        &self,
        tenant: TenantId,
        id: Uuid,
        voided: bool,
    ) -> Result<Option<String>, StoreError> {
        self.read(move |conn| {
            let row: Option<(i64, String)> = conn
                .prepare_cached(
                    "SELECT stored_us, json FROM statements WHERE tenant_id = ?1 AND statement_id = ?2 AND voided = ?3",
                )?
                .query_row(params![tenant, id.as_bytes().as_slice(), voided], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            Ok(row.map(|(stored, json)| with_stored(&json, stored)))
        })
        .await
    }

    async fn query(
        &self,
        tenant: TenantId,
        q: StatementQuery,
    ) -> Result<StatementPage, StoreError> {
        let index = self.index.clone();
        self.read(move |conn| {
            // The index is derived data: if it cannot be read, the log answers alone (slower,
            // the same rows) and the indexer is asked to rebuild it.
            if index.usable() {
                match query::query_statements(conn, tenant, &q, true) {
                    Ok(page) => return Ok(page),
                    Err(index_error) => {
                        let page = query::query_statements(conn, tenant, &q, false)?;
                        index.request_rebuild(&index_error);
                        return Ok(page);
                    }
                }
            }
            query::query_statements(conn, tenant, &q, false)
        })
        .await
    }

    async fn read_log(&self, after_seq: i64, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT tenant_id, seq, live, CASE WHEN live IS NULL THEN json END, voided \
                 FROM statements WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after_seq, limit as i64], query::log_entry)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn actor_history(
        &self,
        tenant: TenantId,
        statement: Uuid,
        through_seq: i64,
    ) -> Result<Option<(i64, Vec<LogEntry>)>, StoreError> {
        let index = self.index.clone();
        self.read(move |conn| {
            // As for queries: the deferred index when it can be read, else the log alone.
            if index.usable()
                && let Ok(found) = query::actor_history(conn, tenant, statement, through_seq, true)
            {
                return Ok(found);
            }
            query::actor_history(conn, tenant, statement, through_seq, false)
        })
        .await
    }

    async fn head(&self) -> Result<i64, StoreError> {
        self.read(|conn| {
            Ok(
                conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM statements", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
    }

    async fn tenant_statements(
        &self,
        tenant: TenantId,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, json FROM statements WHERE tenant_id = ?1 AND seq > ?2 AND voided = 0 \
                 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![tenant, after_seq, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn count_statements(&self, tenant: Option<TenantId>) -> Result<u64, StoreError> {
        self.read(move |conn| {
            let n: i64 = match tenant {
                Some(t) => conn.query_row(
                    "SELECT count(*) FROM statements WHERE tenant_id = ?1",
                    [t],
                    |r| r.get(0),
                )?,
                None => conn.query_row("SELECT count(*) FROM statements", [], |r| r.get(0))?,
            };
            Ok(n as u64)
        })
        .await
    }

    async fn erase_learner(
        &self,
        tenant: TenantId,
        needles: Vec<String>,
        actor_ifis: Vec<String>,
    ) -> Result<Erased, StoreError> {
        self.ask_writer(|reply| {
            Request::Erase(EraseRequest {
                tenant,
                needles,
                actor_ifis,
                reply,
            })
        })
        .await
    }

    async fn purge_before(&self, tenant: TenantId, before_us: i64) -> Result<Erased, StoreError> {
        self.ask_writer(|reply| {
            Request::Purge(PurgeRequest {
                tenant,
                before_us,
                reply,
            })
        })
        .await
    }

    async fn count_stored_before(
        &self,
        tenant: TenantId,
        before_us: i64,
    ) -> Result<u64, StoreError> {
        self.read(move |conn| {
            // stored_us grows with seq, so the (tenant, seq) index bounds the scan.
            let n: i64 = conn.query_row(
                "SELECT count(*) FROM statements WHERE tenant_id = ?1 AND stored_us < ?2",
                params![tenant, before_us],
                |r| r.get(0),
            )?;
            Ok(n as u64)
        })
        .await
    }
}

impl AccountStore for SqliteStorage {
    async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        let name = name.to_owned();
        self.read(move |conn| {
            let created_us = now_us();
            conn.execute(
                "INSERT INTO tenants (name, created_us) VALUES (?1, ?2)",
                params![name, created_us],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    StoreError::Internal(format!("a tenant named {name:?} already exists"))
                }
                e => e.into(),
            })?;
            Ok(Tenant {
                id: conn.last_insert_rowid(),
                name,
                created_us,
            })
        })
        .await
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT id, name, created_us FROM tenants ORDER BY id")?;
            let rows = stmt.query_map([], |r| {
                Ok(Tenant {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created_us: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn insert_key(&self, key: ApiKeyRecord) -> Result<(), StoreError> {
        self.read(move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ),
                params![
                    key.key_id,
                    key.tenant_id,
                    key.role.as_str(),
                    key.secret_sha256.as_slice(),
                    key.label,
                    key.created_us,
                    key.revoked_us,
                    key.expires_us,
                    key.last_used_us,
                    key.groups.as_ref().map(|g| serde_json::to_string(g).expect("strings serialise"))
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let key_id = key_id.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = ?1"
                ))?
                .query_row([key_id], key_from_row)
                .optional()?)
        })
        .await
    }

    async fn keys(&self, tenant: TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = ?1 ORDER BY created_us"
            ))?;
            let rows = stmt.query_map([tenant], key_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn set_key_expiry(
        &self,
        tenant: TenantId,
        key_id: &str,
        expires_us: Option<i64>,
    ) -> Result<bool, StoreError> {
        let key_id = key_id.to_owned();
        self.read(move |conn| {
            let n = conn.execute(
                "UPDATE api_keys SET expires_us = ?3 WHERE tenant_id = ?1 AND key_id = ?2",
                params![tenant, key_id, expires_us],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn tenant_setting(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        let name = name.to_owned();
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT value FROM tenant_settings WHERE tenant_id = ?1 AND name = ?2",
                    params![tenant, name],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    async fn set_tenant_setting(
        &self,
        tenant: TenantId,
        name: &str,
        value: String,
    ) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.read(move |conn| {
            conn.execute(
                "INSERT INTO tenant_settings (tenant_id, name, value) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (tenant_id, name) DO UPDATE SET value = excluded.value",
                params![tenant, name, value],
            )?;
            Ok(())
        })
        .await
    }

    async fn touch_key(&self, key_id: &str, at_us: i64) -> Result<(), StoreError> {
        let key_id = key_id.to_owned();
        self.read(move |conn| {
            conn.execute(
                "UPDATE api_keys SET last_used_us = ?2 WHERE key_id = ?1",
                params![key_id, at_us],
            )?;
            Ok(())
        })
        .await
    }

    async fn revoke_key(&self, tenant: TenantId, key_id: &str) -> Result<bool, StoreError> {
        let key_id = key_id.to_owned();
        self.read(move |conn| {
            let n = conn.execute(
                "UPDATE api_keys SET revoked_us = ?3 WHERE tenant_id = ?1 AND key_id = ?2 AND revoked_us IS NULL",
                params![tenant, key_id, now_us()],
            )?;
            Ok(n > 0)
        })
        .await
    }
}
