//! [`OutboxStore`] on SQLite, in `learnpulse.outbox.db` beside the log.
//!
//! A file of its own because SQLite has one writer per database: the enqueuer and the
//! dispatcher write here all the time, and in the log's file they would queue behind (and
//! hold up) the group commits. Its connection follows the configured durability like every
//! other connection of the backend.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStorage, open_connection};
use crate::storage::outbox::{
    Counts, Due, Endpoint, Finish, MessageView, NewMessage, OutboxStore, PENDING, ReceiverRow,
    SealFor, json, parse_list, state_name,
};
use crate::storage::{Durability, StoreError, TenantId};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS receivers (
    id             INTEGER PRIMARY KEY,
    tenant         INTEGER NOT NULL,
    name           TEXT NOT NULL,
    max_batch      INTEGER NOT NULL,
    events         TEXT NOT NULL,     -- JSON array of event types (intervention.decided, ...)
    kinds          TEXT NOT NULL,     -- JSON array of intervention kinds; empty: every kind
    cognitive_data INTEGER NOT NULL,  -- send the decisions' reasons (they name load signals)
    secrets        BLOB NOT NULL,     -- sealed JSON [{secret, until_ms}]
    created_ms     INTEGER NOT NULL,
    UNIQUE (tenant, name)
);
CREATE TABLE IF NOT EXISTS endpoints (
    id       INTEGER PRIMARY KEY,
    receiver INTEGER NOT NULL REFERENCES receivers(id) ON DELETE CASCADE,
    url      TEXT NOT NULL,
    weight   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id              TEXT PRIMARY KEY,
    receiver        INTEGER NOT NULL REFERENCES receivers(id) ON DELETE CASCADE,
    tenant          INTEGER NOT NULL,
    learner         TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    payload         TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    state           INTEGER NOT NULL DEFAULT 0,  -- 0 pending, 1 delivered, 2 dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    endpoint        INTEGER,
    done_ms         INTEGER,
    leased          INTEGER NOT NULL DEFAULT 0  -- claimed by an attempt in flight
);
CREATE INDEX IF NOT EXISTS messages_due ON messages (state, next_attempt_ms);
CREATE INDEX IF NOT EXISTS messages_by_receiver ON messages (receiver, state, seq);
CREATE TABLE IF NOT EXISTS watermark (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
";

/// The outbox database's one connection (its writes are small and serialised anyway).
pub(super) struct OutboxDb(Arc<Mutex<Connection>>);

impl OutboxDb {
    pub(super) fn open(path: &Path, durability: Durability) -> Result<OutboxDb, StoreError> {
        let conn = open_connection(path, durability, false)?;
        conn.execute_batch("PRAGMA journal_mode = WAL;")?;
        conn.execute_batch(SCHEMA)?;
        Ok(OutboxDb(Arc::new(Mutex::new(conn))))
    }
}

impl SqliteStorage {
    /// Runs `f` on the outbox connection, on a blocking thread.
    pub(super) async fn outbox<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.outbox.0.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock().unwrap()))
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?
    }
}

impl OutboxStore for SqliteStorage {
    async fn receiver_rows(&self) -> Result<Vec<ReceiverRow>, StoreError> {
        self.outbox(|conn| {
            let mut endpoints: HashMap<i64, Vec<Endpoint>> = HashMap::new();
            let mut stmt =
                conn.prepare("SELECT id, receiver, url, weight FROM endpoints ORDER BY id")?;
            for row in stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(1)?,
                    Endpoint {
                        id: r.get(0)?,
                        url: r.get(2)?,
                        weight: r.get(3)?,
                    },
                ))
            })? {
                let (receiver, endpoint) = row?;
                endpoints.entry(receiver).or_default().push(endpoint);
            }
            let mut stmt = conn.prepare(
                "SELECT id, tenant, name, max_batch, kinds, cognitive_data, secrets, created_ms, \
                 events FROM receivers ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                let id: i64 = r.get(0)?;
                Ok(ReceiverRow {
                    id,
                    tenant: r.get(1)?,
                    name: r.get(2)?,
                    max_batch: r.get::<_, i64>(3)?.max(1) as usize,
                    kinds: parse_list(&r.get::<_, String>(4)?),
                    cognitive_data: r.get(5)?,
                    sealed_secrets: r.get(6)?,
                    created_ms: r.get(7)?,
                    events: parse_list(&r.get::<_, String>(8)?),
                    endpoints: Vec::new(),
                })
            })?;
            let mut out: Vec<ReceiverRow> = rows.collect::<Result<_, _>>()?;
            for r in &mut out {
                r.endpoints = endpoints.remove(&r.id).unwrap_or_default();
            }
            Ok(out)
        })
        .await
    }

    async fn insert_receiver(
        &self,
        row: ReceiverRow,
        seal: SealFor,
    ) -> Result<Option<i64>, StoreError> {
        self.outbox(move |conn| {
            let tx = conn.transaction()?;
            let taken = tx
                .query_row(
                    "SELECT 1 FROM receivers WHERE tenant = ?1 AND name = ?2",
                    params![row.tenant, row.name],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if taken {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO receivers (tenant, name, max_batch, kinds, cognitive_data, secrets, \
                 created_ms, events) VALUES (?1, ?2, ?3, ?4, ?5, x'', ?6, ?7)",
                params![
                    row.tenant,
                    row.name,
                    row.max_batch as i64,
                    json(&row.kinds),
                    row.cognitive_data,
                    row.created_ms,
                    json(&row.events)
                ],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "UPDATE receivers SET secrets = ?1 WHERE id = ?2",
                params![seal(id), id],
            )?;
            for e in &row.endpoints {
                tx.execute(
                    "INSERT INTO endpoints (receiver, url, weight) VALUES (?1, ?2, ?3)",
                    params![id, e.url, e.weight],
                )?;
            }
            tx.commit()?;
            Ok(Some(id))
        })
        .await
    }

    async fn delete_receiver(&self, tenant: TenantId, id: i64) -> Result<bool, StoreError> {
        self.outbox(move |conn| {
            Ok(conn.execute(
                "DELETE FROM receivers WHERE id = ?1 AND tenant = ?2",
                params![id, tenant],
            )? > 0)
        })
        .await
    }

    async fn set_receiver_secrets(&self, id: i64, sealed: Vec<u8>) -> Result<(), StoreError> {
        self.outbox(move |conn| {
            conn.execute(
                "UPDATE receivers SET secrets = ?1 WHERE id = ?2",
                params![sealed, id],
            )?;
            Ok(())
        })
        .await
    }

    async fn outbox_watermark(&self) -> Result<i64, StoreError> {
        self.outbox(|conn| {
            Ok(conn
                .query_row("SELECT seq FROM watermark WHERE id = 1", [], |r| r.get(0))
                .optional()?
                .unwrap_or(0))
        })
        .await
    }

    async fn enqueue(
        &self,
        messages: Vec<NewMessage>,
        through_seq: Option<i64>,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        self.outbox(move |conn| {
            let tx = conn.transaction()?;
            let mut inserted = 0;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO messages (id, receiver, tenant, learner, seq, payload, \
                     created_ms, next_attempt_ms) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7 \
                     WHERE EXISTS (SELECT 1 FROM receivers WHERE id = ?2)",
                )?;
                for m in &messages {
                    inserted += insert.execute(params![
                        m.id, m.receiver, m.tenant, m.learner, m.seq, m.payload, now_ms
                    ])?;
                }
            }
            if let Some(through_seq) = through_seq {
                tx.execute(
                    "INSERT INTO watermark (id, seq) VALUES (1, ?1) \
                     ON CONFLICT (id) DO UPDATE SET seq = max(seq, excluded.seq)",
                    params![through_seq],
                )?;
            }
            tx.commit()?;
            Ok(inserted)
        })
        .await
    }

    async fn release_leases(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.outbox(move |conn| {
            Ok(conn.execute(
                "UPDATE messages SET next_attempt_ms = min(next_attempt_ms, ?1), leased = 0 \
                 WHERE leased = 1",
                [now_ms],
            )? as u64)
        })
        .await
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        self.outbox(move |conn| {
            let tx = conn.transaction()?;
            let due: Vec<Due> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT id, receiver, payload, attempts FROM messages \
                     WHERE state = 0 AND next_attempt_ms <= ?1 \
                     ORDER BY next_attempt_ms, seq LIMIT ?2",
                )?;
                stmt.query_map(params![now_ms, limit as i64], |r| {
                    Ok(Due {
                        id: r.get(0)?,
                        receiver: r.get(1)?,
                        payload: r.get(2)?,
                        attempts: r.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?
            };
            {
                let mut lease = tx.prepare_cached(
                    "UPDATE messages SET next_attempt_ms = ?1, leased = 1 WHERE id = ?2",
                )?;
                for d in &due {
                    lease.execute(params![lease_until_ms, d.id])?;
                }
            }
            tx.commit()?;
            Ok(due)
        })
        .await
    }

    async fn next_due_ms(&self) -> Result<Option<i64>, StoreError> {
        self.outbox(|conn| {
            Ok(conn.query_row(
                "SELECT min(next_attempt_ms) FROM messages WHERE state = 0",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn finish(&self, finished: Vec<Finish>, now_ms: i64) -> Result<(), StoreError> {
        self.outbox(move |conn| {
            let tx = conn.transaction()?;
            {
                let mut update = tx.prepare_cached(
                    "UPDATE messages SET state = ?2, attempts = attempts + ?3, \
                     next_attempt_ms = ?4, last_status = coalesce(?5, last_status), \
                     last_error = ?6, endpoint = coalesce(?7, endpoint), done_ms = ?8, \
                     leased = 0 WHERE id = ?1",
                )?;
                for f in &finished {
                    let (state, next, done) = f.next.columns(now_ms);
                    update.execute(params![
                        f.id,
                        state,
                        f.attempted as i64,
                        next,
                        f.status,
                        f.error,
                        f.endpoint,
                        done
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn counts(&self, receiver: i64) -> Result<Counts, StoreError> {
        self.outbox(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT state, count(*) FROM messages WHERE receiver = ?1 GROUP BY state",
            )?;
            let mut counts = Counts::default();
            for row in stmt.query_map([receiver], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64))
            })? {
                let (state, n) = row?;
                counts.add(state, n);
            }
            Ok(counts)
        })
        .await
    }

    async fn pending_total(&self) -> Result<u64, StoreError> {
        self.outbox(|conn| {
            Ok(
                conn.query_row("SELECT count(*) FROM messages WHERE state = 0", [], |r| {
                    r.get::<_, i64>(0)
                })? as u64,
            )
        })
        .await
    }

    async fn messages(
        &self,
        receiver: i64,
        state: i64,
        limit: usize,
    ) -> Result<Vec<MessageView>, StoreError> {
        self.outbox(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, seq, state, attempts, next_attempt_ms, last_status, last_error, \
                 endpoint, created_ms, done_ms, payload FROM messages \
                 WHERE receiver = ?1 AND state = ?2 ORDER BY seq DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![receiver, state, limit as i64], |r| {
                let state: i64 = r.get(2)?;
                Ok(MessageView {
                    id: r.get(0)?,
                    seq: r.get(1)?,
                    state: state_name(state),
                    attempts: r.get(3)?,
                    next_attempt_ms: (state == PENDING).then(|| r.get(4)).transpose()?,
                    last_status: r.get(5)?,
                    last_error: r.get(6)?,
                    endpoint: r.get(7)?,
                    created_ms: r.get(8)?,
                    done_ms: r.get(9)?,
                    payload: serde_json::from_str(&r.get::<_, String>(10)?).unwrap_or_default(),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn replay_dead(
        &self,
        receiver: i64,
        ids: Option<Vec<String>>,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        self.outbox(move |conn| {
            let sql = "UPDATE messages SET state = 0, attempts = 0, next_attempt_ms = ?2, \
                       done_ms = NULL WHERE receiver = ?1 AND state = 2";
            Ok(match ids {
                None => conn.execute(sql, params![receiver, now_ms])?,
                Some(ids) => {
                    let mut stmt = conn.prepare_cached(&format!("{sql} AND id = ?3"))?;
                    let mut n = 0;
                    for id in ids {
                        n += stmt.execute(params![receiver, now_ms, id])?;
                    }
                    n
                }
            })
        })
        .await
    }

    async fn prune_delivered(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.outbox(move |conn| {
            Ok(conn.execute(
                "DELETE FROM messages WHERE state = 1 AND done_ms < ?1",
                [before_ms],
            )?)
        })
        .await
    }

    async fn forget_learners(
        &self,
        tenant: TenantId,
        learners: Vec<String>,
    ) -> Result<usize, StoreError> {
        self.outbox(move |conn| {
            let mut stmt =
                conn.prepare_cached("DELETE FROM messages WHERE tenant = ?1 AND learner = ?2")?;
            let mut n = 0;
            for l in &learners {
                n += stmt.execute(params![tenant, l])?;
            }
            drop(stmt);
            // `secure_delete` zeroes the rows in the pages written now, but the WAL still holds
            // the earlier versions of those pages: copy the pages back and empty it.
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
            Ok(n)
        })
        .await
    }
}
