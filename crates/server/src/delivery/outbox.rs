//! The durable outbox: webhook receivers (with their endpoints and sealed signing secrets) and
//! every message owed to them, in `learnpulse.outbox.db` beside the event log.
//!
//! Why a file of its own: deliveries are written after the events that caused them have
//! committed, off the ingest path, like the query index. Nothing is lost in the gap: the
//! outbox keeps a *watermark*, the log sequence number through which decisions have been turned
//! into messages, written in the same transaction as those messages. At start-up the replay
//! re-decides every event past the watermark and enqueues what it decides, so a crash between
//! an event's commit and its messages' insert loses none. Message ids are derived from the
//! event's sequence number and the receiver (`msg_<seq>_<receiver>`), so enqueuing twice is a
//! no-op.
//!
//! A message is pending, delivered or dead. The dispatcher *claims* due messages by moving
//! their next attempt past the attempt's time limit (a lease): they are not claimed twice while
//! in flight. One process owns the outbox, so at start no attempt is in flight and every lease
//! is released: a message whose attempt a crash or a stop cut short is due at once. Delivery is
//! at least once, never at most once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::privacy::seal::Sealer;
use crate::storage::TenantId;

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

const PENDING: i64 = 0;
const DELIVERED: i64 = 1;
const DEAD: i64 = 2;

/// A signing secret; an old one stays valid until `until_ms` after a rotation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Secret {
    pub secret: String,
    pub until_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Endpoint {
    #[serde(default)]
    pub id: i64,
    pub url: String,
    /// Share of the receiver's messages this endpoint gets while its circuit is closed.
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// One receiver: a system that takes intervention messages, at one or more endpoints.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub id: i64,
    pub tenant: TenantId,
    pub name: String,
    /// Messages per request; above 1 the body is a batch (see the README).
    pub max_batch: usize,
    /// Event types it takes: `intervention.decided`, `compliance.incident`.
    pub events: Vec<String>,
    pub kinds: Vec<String>,
    pub cognitive_data: bool,
    pub secrets: Vec<Secret>,
    pub endpoints: Vec<Endpoint>,
    pub created_ms: i64,
}

impl Receiver {
    /// Does it take decisions of this intervention kind?
    pub fn wants_decision(&self, kind: &str) -> bool {
        self.takes(crate::delivery::EVENT_DECISION)
            && (self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind))
    }

    pub fn takes(&self, event_type: &str) -> bool {
        self.events.iter().any(|e| e == event_type)
    }

    /// The secrets a message is signed with now (the current one, and old ones in their grace).
    pub fn live_secrets(&self, now_ms: i64) -> Vec<String> {
        self.secrets
            .iter()
            .filter(|s| s.until_ms.is_none_or(|u| u > now_ms))
            .map(|s| s.secret.clone())
            .collect()
    }
}

/// What a new receiver is (validated by the API).
pub struct ReceiverSpec {
    pub name: String,
    pub max_batch: usize,
    pub events: Vec<String>,
    pub kinds: Vec<String>,
    pub cognitive_data: bool,
    pub endpoints: Vec<Endpoint>,
}

/// A message to insert.
pub struct NewMessage {
    /// Derived from what the message is about, so that enqueuing it twice is a no-op.
    pub id: String,
    pub receiver: i64,
    pub tenant: TenantId,
    pub learner: String,
    pub seq: i64,
    pub payload: String,
}

/// The id of a decision's message: `msg_<log seq>_<receiver>`.
pub fn message_id(seq: i64, receiver: i64) -> String {
    format!("msg_{seq}_{receiver}")
}

/// The id of an incident's message: `msg_incident<id>_<receiver>`.
pub fn incident_message_id(incident: i64, receiver: i64) -> String {
    format!("msg_incident{incident}_{receiver}")
}

/// A claimed message, ready to send.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: String,
    pub receiver: i64,
    pub payload: String,
    pub attempts: u32,
}

/// How an attempt ended and what happens to the message next.
pub struct Finish {
    pub id: String,
    pub endpoint: Option<i64>,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// Counts as an attempt (false when the message only waited for an open circuit).
    pub attempted: bool,
    pub next: Next,
}

pub enum Next {
    Delivered,
    RetryAt(i64),
    Dead,
}

/// A message as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub id: String,
    pub seq: i64,
    pub state: &'static str,
    pub attempts: u32,
    pub next_attempt_ms: Option<i64>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub endpoint: Option<i64>,
    pub created_ms: i64,
    pub done_ms: Option<i64>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

#[derive(Debug, Default, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
}

pub struct Outbox {
    conn: Mutex<Connection>,
    sealer: Sealer,
    receivers: RwLock<HashMap<i64, Arc<Receiver>>>,
}

fn state_name(state: i64) -> &'static str {
    match state {
        PENDING => "pending",
        DELIVERED => "delivered",
        _ => "dead",
    }
}

fn state_code(name: &str) -> Option<i64> {
    match name {
        "pending" => Some(PENDING),
        "delivered" => Some(DELIVERED),
        "dead" => Some(DEAD),
        _ => None,
    }
}

impl Outbox {
    pub fn open(path: &Path, sealer: Sealer) -> anyhow::Result<Outbox> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
        )?;
        conn.execute_batch(SCHEMA)?;
        conn.execute(
            "UPDATE messages SET next_attempt_ms = min(next_attempt_ms, ?1), leased = 0 \
             WHERE leased = 1",
            [crate::delivery::now_ms()],
        )?;
        let outbox = Outbox {
            conn: Mutex::new(conn),
            sealer,
            receivers: RwLock::default(),
        };
        outbox.reload()?;
        Ok(outbox)
    }

    fn owner(id: i64) -> Vec<u8> {
        format!("webhook-receiver:{id}").into_bytes()
    }

    /// Reads every receiver into memory (after a change, and at start).
    fn reload(&self) -> anyhow::Result<()> {
        let conn = self.conn.lock().unwrap();
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
            "SELECT id, tenant, name, max_batch, kinds, cognitive_data, secrets, created_ms, events \
             FROM receivers",
        )?;
        let mut receivers = HashMap::new();
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, TenantId>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, bool>(5)?,
                r.get::<_, Vec<u8>>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, String>(8)?,
            ))
        })?;
        for row in rows {
            let (id, tenant, name, max_batch, kinds, cognitive_data, sealed, created_ms, events) =
                row?;
            let secrets = self
                .sealer
                .open(&Self::owner(id), &sealed)
                .map_err(|e| anyhow::anyhow!("webhook receiver {id}: {e}"))?;
            let receiver = Receiver {
                id,
                tenant,
                name,
                max_batch: max_batch.max(1) as usize,
                events: serde_json::from_str(&events)?,
                kinds: serde_json::from_str(&kinds)?,
                cognitive_data,
                secrets: serde_json::from_slice(&secrets)?,
                endpoints: endpoints.remove(&id).unwrap_or_default(),
                created_ms,
            };
            receivers.insert(id, Arc::new(receiver));
        }
        *self.receivers.write().unwrap() = receivers;
        Ok(())
    }

    pub fn receiver(&self, tenant: TenantId, id: i64) -> Option<Arc<Receiver>> {
        self.receivers
            .read()
            .unwrap()
            .get(&id)
            .filter(|r| r.tenant == tenant)
            .cloned()
    }

    /// Any tenant's receiver (the dispatcher's view).
    pub fn receiver_by_id(&self, id: i64) -> Option<Arc<Receiver>> {
        self.receivers.read().unwrap().get(&id).cloned()
    }

    pub fn receivers(&self, tenant: TenantId) -> Vec<Arc<Receiver>> {
        let mut list: Vec<_> = self
            .receivers
            .read()
            .unwrap()
            .values()
            .filter(|r| r.tenant == tenant)
            .cloned()
            .collect();
        list.sort_by_key(|r| r.id);
        list
    }

    /// Creates a receiver with one fresh secret; `Ok(None)` when the name is taken.
    pub fn create_receiver(
        &self,
        tenant: TenantId,
        spec: &ReceiverSpec,
        now_ms: i64,
    ) -> anyhow::Result<Option<Arc<Receiver>>> {
        let ReceiverSpec {
            name,
            max_batch,
            events,
            kinds,
            cognitive_data,
            endpoints,
        } = spec;
        let id = {
            let mut conn = self.conn.lock().unwrap();
            let tx = conn.transaction()?;
            let taken: bool = tx
                .query_row(
                    "SELECT 1 FROM receivers WHERE tenant = ?1 AND name = ?2",
                    params![tenant, name],
                    |_| Ok(true),
                )
                .optional()?
                .is_some();
            if taken {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO receivers (tenant, name, max_batch, kinds, cognitive_data, secrets, created_ms, events) \
                 VALUES (?1, ?2, ?3, ?4, ?5, x'', ?6, ?7)",
                params![tenant, name, *max_batch as i64, serde_json::to_string(kinds)?, cognitive_data, now_ms, serde_json::to_string(events)?],
            )?;
            let id = tx.last_insert_rowid();
            let secrets = vec![Secret {
                secret: super::signing::new_secret(),
                until_ms: None,
            }];
            let sealed = self
                .sealer
                .seal(&Self::owner(id), &serde_json::to_vec(&secrets)?);
            tx.execute(
                "UPDATE receivers SET secrets = ?1 WHERE id = ?2",
                params![sealed, id],
            )?;
            for e in endpoints {
                tx.execute(
                    "INSERT INTO endpoints (receiver, url, weight) VALUES (?1, ?2, ?3)",
                    params![id, e.url, e.weight],
                )?;
            }
            tx.commit()?;
            id
        };
        self.reload()?;
        Ok(self.receiver_by_id(id))
    }

    /// Deletes a receiver with its endpoints and messages.
    pub fn delete_receiver(&self, tenant: TenantId, id: i64) -> anyhow::Result<bool> {
        let deleted = self.conn.lock().unwrap().execute(
            "DELETE FROM receivers WHERE id = ?1 AND tenant = ?2",
            params![id, tenant],
        )? > 0;
        self.reload()?;
        Ok(deleted)
    }

    /// A new current secret; the previous ones stay valid until `grace_until_ms` (every message
    /// carries a signature under each live secret until then). Returns the new secret.
    pub fn rotate_secret(
        &self,
        tenant: TenantId,
        id: i64,
        now_ms: i64,
        grace_until_ms: i64,
    ) -> anyhow::Result<Option<String>> {
        let Some(receiver) = self.receiver(tenant, id) else {
            return Ok(None);
        };
        let fresh = super::signing::new_secret();
        let mut secrets: Vec<Secret> = receiver
            .secrets
            .iter()
            .filter(|s| s.until_ms.is_none_or(|u| u > now_ms))
            .map(|s| Secret {
                secret: s.secret.clone(),
                until_ms: Some(s.until_ms.unwrap_or(grace_until_ms).min(grace_until_ms)),
            })
            .collect();
        secrets.insert(
            0,
            Secret {
                secret: fresh.clone(),
                until_ms: None,
            },
        );
        let sealed = self
            .sealer
            .seal(&Self::owner(id), &serde_json::to_vec(&secrets)?);
        self.conn.lock().unwrap().execute(
            "UPDATE receivers SET secrets = ?1 WHERE id = ?2",
            params![sealed, id],
        )?;
        self.reload()?;
        Ok(Some(fresh))
    }

    /// The sequence number through which decisions have been enqueued.
    pub fn watermark(&self) -> anyhow::Result<i64> {
        Ok(self
            .conn
            .lock()
            .unwrap()
            .query_row("SELECT seq FROM watermark WHERE id = 1", [], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    /// Inserts messages (already-present ids are skipped) and, for decisions, moves the
    /// watermark to `through_seq`, in one transaction.
    pub fn enqueue(
        &self,
        messages: &[NewMessage],
        through_seq: Option<i64>,
        now_ms: i64,
    ) -> anyhow::Result<usize> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        let mut inserted = 0;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO messages (id, receiver, tenant, learner, seq, payload, created_ms, next_attempt_ms) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7 WHERE EXISTS (SELECT 1 FROM receivers WHERE id = ?2)",
            )?;
            for m in messages {
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
    }

    /// Claims up to `limit` due messages: their next attempt moves to `lease_until_ms`, so that
    /// they are not claimed again while in flight (and are due again if the process dies).
    pub fn claim_due(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<Due>> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        let due: Vec<Due> = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, receiver, payload, attempts FROM messages \
                 WHERE state = 0 AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms, seq LIMIT ?2",
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
    }

    /// When the next pending message falls due, if any is pending.
    pub fn next_due_ms(&self) -> anyhow::Result<Option<i64>> {
        Ok(self.conn.lock().unwrap().query_row(
            "SELECT min(next_attempt_ms) FROM messages WHERE state = 0",
            [],
            |r| r.get(0),
        )?)
    }

    /// Records how attempts ended, in one transaction.
    pub fn finish(&self, finished: &[Finish], now_ms: i64) -> anyhow::Result<()> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        {
            let mut update = tx.prepare_cached(
                "UPDATE messages SET state = ?2, attempts = attempts + ?3, next_attempt_ms = ?4, \
                 last_status = coalesce(?5, last_status), last_error = ?6, \
                 endpoint = coalesce(?7, endpoint), done_ms = ?8, leased = 0 WHERE id = ?1",
            )?;
            for f in finished {
                let (state, next, done) = match f.next {
                    Next::Delivered => (DELIVERED, now_ms, Some(now_ms)),
                    Next::RetryAt(at) => (PENDING, at, None),
                    Next::Dead => (DEAD, now_ms, Some(now_ms)),
                };
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
    }

    pub fn counts(&self, receiver: i64) -> anyhow::Result<Counts> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached(
            "SELECT state, count(*) FROM messages WHERE receiver = ?1 GROUP BY state",
        )?;
        let mut counts = Counts::default();
        for row in stmt.query_map([receiver], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64))
        })? {
            let (state, n) = row?;
            match state {
                PENDING => counts.pending = n,
                DELIVERED => counts.delivered = n,
                _ => counts.dead = n,
            }
        }
        Ok(counts)
    }

    /// Pending messages over every receiver (the gauge).
    pub fn pending_total(&self) -> anyhow::Result<u64> {
        Ok(self.conn.lock().unwrap().query_row(
            "SELECT count(*) FROM messages WHERE state = 0",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// A receiver's messages in one state (`pending`, `delivered`, `dead`), newest first.
    pub fn messages(
        &self,
        receiver: i64,
        state: &str,
        limit: usize,
    ) -> anyhow::Result<Option<Vec<MessageView>>> {
        let Some(code) = state_code(state) else {
            return Ok(None);
        };
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached(
            "SELECT id, seq, state, attempts, next_attempt_ms, last_status, last_error, endpoint, \
             created_ms, done_ms, payload FROM messages WHERE receiver = ?1 AND state = ?2 \
             ORDER BY seq DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![receiver, code, limit as i64], |r| {
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
        Ok(Some(rows.collect::<Result<_, _>>()?))
    }

    /// Moves dead letters back to pending, due now, with their attempts reset (all of the
    /// receiver's, or the ones named). Returns how many.
    pub fn replay_dead(
        &self,
        receiver: i64,
        ids: Option<&[String]>,
        now_ms: i64,
    ) -> anyhow::Result<usize> {
        let conn = self.conn.lock().unwrap();
        let sql = "UPDATE messages SET state = 0, attempts = 0, next_attempt_ms = ?2, done_ms = NULL \
                   WHERE receiver = ?1 AND state = 2";
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
    }

    /// Deletes delivered messages older than `before_ms`; returns how many.
    pub fn prune_delivered(&self, before_ms: i64) -> anyhow::Result<usize> {
        Ok(self.conn.lock().unwrap().execute(
            "DELETE FROM messages WHERE state = 1 AND done_ms < ?1",
            [before_ms],
        )?)
    }

    /// Deletes every message about these learners (erasure); returns how many.
    pub fn forget_learners(&self, tenant: TenantId, learners: &[String]) -> anyhow::Result<usize> {
        let conn = self.conn.lock().unwrap();
        let mut stmt =
            conn.prepare_cached("DELETE FROM messages WHERE tenant = ?1 AND learner = ?2")?;
        let mut n = 0;
        for l in learners {
            n += stmt.execute(params![tenant, l])?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> Outbox {
        Outbox::open(&dir.join("outbox.db"), Sealer::new(&[7; 32])).unwrap()
    }

    #[test]
    fn enqueuing_is_idempotent_and_leases_are_released_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = open(dir.path());
        let spec = ReceiverSpec {
            name: "lms".into(),
            max_batch: 1,
            events: vec![crate::delivery::EVENT_DECISION.into()],
            kinds: vec![],
            cognitive_data: false,
            endpoints: vec![Endpoint {
                id: 0,
                url: "http://127.0.0.1:9/".into(),
                weight: 1,
            }],
        };
        let r = outbox.create_receiver(1, &spec, 0).unwrap().unwrap();
        assert!(
            outbox.create_receiver(1, &spec, 0).unwrap().is_none(),
            "names are unique"
        );
        let message = |seq| NewMessage {
            id: message_id(seq, r.id),
            receiver: r.id,
            tenant: 1,
            learner: "p1_00".into(),
            seq,
            payload: "{}".into(),
        };
        assert_eq!(
            outbox
                .enqueue(&[message(5), message(6)], Some(6), 0)
                .unwrap(),
            2
        );
        assert_eq!(
            outbox.enqueue(&[message(6)], Some(4), 0).unwrap(),
            0,
            "same id: no-op"
        );
        assert_eq!(
            outbox.watermark().unwrap(),
            6,
            "the watermark never moves back"
        );

        let now = crate::delivery::now_ms();
        assert_eq!(outbox.claim_due(now, now + 60_000, 10).unwrap().len(), 2);
        assert!(
            outbox.claim_due(now, now + 60_000, 10).unwrap().is_empty(),
            "leased"
        );
        drop(outbox);
        let outbox = open(dir.path());
        let due = outbox
            .claim_due(crate::delivery::now_ms(), now + 60_000, 10)
            .unwrap();
        assert_eq!(due.len(), 2, "a restart releases the leases");
        assert_eq!(
            outbox.receivers(1)[0].secrets.len(),
            1,
            "secrets reopen sealed"
        );
    }
}
