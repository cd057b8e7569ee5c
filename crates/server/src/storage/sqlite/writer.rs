//! The single writer thread and its group commit.
//!
//! SQLite allows one writer at a time, and a commit's cost is dominated by its fixed part (the
//! WAL append and, under `Durability::Full`, one fsync). So every append request goes through a
//! channel to this one thread, which takes whatever has queued up while the previous commit ran
//! and commits it all in one transaction. Under load the batches grow by themselves; idle, a
//! lone request commits at once. Each request gets its own SAVEPOINT, so a conflict in one
//! request rolls back that request alone.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::super::{Appended, Erased, NewStatement, StoreError, TenantId, now_us};
use super::background::{CopyBack, checkpoint, empty_wal};
use super::index::IndexState;

pub(super) struct AppendRequest {
    pub tenant: TenantId,
    pub statements: Vec<NewStatement>,
    pub reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// Removes a learner's statements (theirs, and every other that names them), their actor row,
/// vault entries and index rows. Runs on the writer thread, between group commits, because
/// the writer's interned ids must forget the actor too.
pub(super) struct EraseRequest {
    pub tenant: TenantId,
    /// Strings whose presence in a statement's JSON means the statement names the learner
    /// (their pseudonyms under every key version, or quoted raw identifiers).
    pub needles: Vec<String>,
    /// Their actor identifiers as the log interns them.
    pub actor_ifis: Vec<String>,
    pub reply: oneshot::Sender<Result<Erased, StoreError>>,
}

/// Removes a tenant's statements stored before a time (retention).
pub(super) struct PurgeRequest {
    pub tenant: TenantId,
    pub before_us: i64,
    pub reply: oneshot::Sender<Result<Erased, StoreError>>,
}

pub(super) enum Request {
    Append(AppendRequest),
    Erase(EraseRequest),
    Purge(PurgeRequest),
}

const VOIDED_VERB: &str = "http://adlnet.gov/expapi/verbs/voided";

/// Interned actor / verb / activity ids, cached so that the hot path rarely asks SQLite.
#[derive(Default)]
struct Interner {
    actors: HashMap<TenantId, HashMap<String, i64>>,
    verbs: HashMap<TenantId, HashMap<String, i64>>,
    activities: HashMap<TenantId, HashMap<String, i64>>,
}

#[derive(Clone, Copy)]
enum InternTable {
    Actors,
    Verbs,
    Activities,
}

impl Interner {
    fn id(
        &mut self,
        conn: &Connection,
        table: InternTable,
        tenant: TenantId,
        key: &str,
    ) -> rusqlite::Result<i64> {
        let (map, select, insert) = match table {
            InternTable::Actors => (
                &mut self.actors,
                "SELECT id FROM actors WHERE tenant_id = ?1 AND ifi = ?2",
                "INSERT INTO actors (tenant_id, ifi) VALUES (?1, ?2)",
            ),
            InternTable::Verbs => (
                &mut self.verbs,
                "SELECT id FROM verbs WHERE tenant_id = ?1 AND iri = ?2",
                "INSERT INTO verbs (tenant_id, iri) VALUES (?1, ?2)",
            ),
            InternTable::Activities => (
                &mut self.activities,
                "SELECT id FROM activities WHERE tenant_id = ?1 AND iri = ?2",
                "INSERT INTO activities (tenant_id, iri) VALUES (?1, ?2)",
            ),
        };
        let map = map.entry(tenant).or_default();
        if let Some(id) = map.get(key) {
            return Ok(*id);
        }
        let existing: Option<i64> = conn
            .prepare_cached(select)?
            .query_row(params![tenant, key], |r| r.get(0))
            .optional()?;
        let id = match existing {
            Some(id) => id,
            None => {
                conn.prepare_cached(insert)?.execute(params![tenant, key])?;
                conn.last_insert_rowid()
            }
        };
        map.insert(key.to_owned(), id);
        Ok(id)
    }

    fn clear(&mut self) {
        *self = Interner::default();
    }
}

pub(super) struct Writer {
    conn: Connection,
    interner: Interner,
    last_stored_us: i64,
    /// The head of the log, published after each commit (followers wait on it).
    committed: watch::Sender<i64>,
    max_batch_statements: usize,
    /// The index database, attached to `conn` only while an erasure deletes its rows: appends
    /// never depend on that file, whatever state it is in.
    index: Arc<IndexState>,
    index_path: PathBuf,
    /// The checkpointer's requests to copy the WAL's last frames back between two commits.
    copy_back: Arc<CopyBack>,
}

impl Writer {
    pub fn new(
        conn: Connection,
        committed: watch::Sender<i64>,
        max_batch_statements: usize,
        index: Arc<IndexState>,
        index_path: PathBuf,
        copy_back: Arc<CopyBack>,
    ) -> rusqlite::Result<Self> {
        // `stored` increases with the sequence number, so the last row has the latest: one
        // step down the rowid b-tree, where MAX(stored_us) would read the whole table (seconds
        // at millions of statements, on every start).
        let last_stored_us: i64 = conn
            .query_row(
                "SELECT stored_us FROM statements ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        Ok(Writer {
            conn,
            interner: Interner::default(),
            last_stored_us,
            committed,
            max_batch_statements,
            index,
            index_path,
            copy_back,
        })
    }

    /// Runs until every sender is dropped, then returns (everything received has been committed).
    pub fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        while let Some(first) = rx.blocking_recv() {
            let first = match first {
                Request::Append(a) => a,
                Request::Erase(e) => {
                    self.erase(e);
                    continue;
                }
                Request::Purge(p) => {
                    self.purge(p);
                    continue;
                }
            };
            let mut size = first.statements.len();
            let mut batch = vec![first];
            let mut after_group = None;
            while size < self.max_batch_statements {
                match rx.try_recv() {
                    Ok(Request::Append(req)) => {
                        size += req.statements.len();
                        batch.push(req);
                    }
                    Ok(other) => {
                        after_group = Some(other);
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(batch, size);
            if self.copy_back.take() {
                self.copy_back_rest();
            }
            match after_group {
                Some(Request::Erase(e)) => self.erase(e),
                Some(Request::Purge(p)) => self.purge(p),
                _ => {}
            }
        }
    }

    /// Copies the WAL's last frames back into the database file (the checkpointer copied the
    /// rest). Between two of the writer's commits the WAL ends fully copied (or nearly: the
    /// read pool's connections commit audit entries, consents and documents too), and the next
    /// write transaction starts it over. PASSIVE: it waits for no reader (one still reading old
    /// frames only delays the start-over).
    fn copy_back_rest(&self) {
        let started = std::time::Instant::now();
        if let Err(e) = checkpoint(&self.conn, "PASSIVE") {
            tracing::warn!(error = %e, "WAL copy-back failed");
        }
        metrics::histogram!("learnpulse_wal_copy_back_seconds")
            .record(started.elapsed().as_secs_f64());
    }

    fn erase(&mut self, req: EraseRequest) {
        let result = self.erase_now(&req);
        if result.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.interner.clear();
        }
        let _ = req.reply.send(result);
    }

    /// Deletes statements with their vault entries and re-identification records, inside the
    /// open transaction.
    fn delete_statements(
        &self,
        tenant: TenantId,
        doomed: &[(i64, Vec<u8>)],
        erased: &mut Erased,
    ) -> Result<(), StoreError> {
        let conn = &self.conn;
        for (seq, statement_id) in doomed {
            erased.vault_entries += conn
                .prepare_cached("DELETE FROM vault WHERE tenant_id = ?1 AND statement_id = ?2")?
                .execute(params![tenant, statement_id])? as u64;
            conn.prepare_cached(
                "DELETE FROM reidentifications WHERE tenant_id = ?1 AND statement_id = ?2",
            )?
            .execute(params![tenant, statement_id])?;
            erased.statements += conn
                .prepare_cached("DELETE FROM statements WHERE seq = ?1")?
                .execute([seq])? as u64;
        }
        Ok(())
    }

    /// After the deletion's commit: removes the index rows (derived data, in their own file) and
    /// leaves no copy of the deleted rows in the files: deleted pages were zeroed
    /// (secure_delete) and the WAL is emptied.
    ///
    /// An index that cannot be written does not fail the erasure: the indexer is asked to
    /// rebuild it from the log, which no longer holds the rows.
    fn forget_copies(
        &mut self,
        doomed: &[(i64, Vec<u8>)],
        erased: &mut Erased,
    ) -> Result<(), StoreError> {
        if let Err(e) = self.forget_index_rows(doomed, erased) {
            self.index.request_rebuild(&e);
        }
        empty_wal(&self.conn, "main")
    }

    fn forget_index_rows(
        &mut self,
        doomed: &[(i64, Vec<u8>)],
        erased: &mut Erased,
    ) -> Result<(), StoreError> {
        if !self.index.usable() {
            // Being made anew from the log, which no longer holds the rows.
            return Ok(());
        }
        let conn = &self.conn;
        conn.execute(
            "ATTACH DATABASE ?1 AS idx",
            [self.index_path.to_string_lossy()],
        )?;
        let deleted = (|| -> Result<(), StoreError> {
            for table in [
                "idx.by_actor",
                "idx.by_activity",
                "idx.by_registration",
                "idx.by_related",
            ] {
                // Not cached: the statement names a database that is detached afterwards.
                let mut delete = conn.prepare(&format!("DELETE FROM {table} WHERE seq = ?1"))?;
                for (seq, _) in doomed {
                    erased.index_rows += delete.execute([seq])? as u64;
                }
            }
            empty_wal(conn, "idx")
        })();
        conn.execute_batch("DETACH DATABASE idx")?;
        deleted
    }

    fn purge(&mut self, req: PurgeRequest) {
        let result = self.purge_now(&req);
        if result.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        // Actor rows may have gone: the interned ids of the tenant are read again.
        self.interner.clear();
        let _ = req.reply.send(result);
    }

    fn purge_now(&mut self, req: &PurgeRequest) -> Result<Erased, StoreError> {
        let mut erased = Erased::default();
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let doomed: Vec<(i64, Vec<u8>)> = self
            .conn
            .prepare(
                "SELECT seq, statement_id FROM statements WHERE tenant_id = ?1 AND stored_us < ?2",
            )?
            .query_map(params![req.tenant, req.before_us], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        self.delete_statements(req.tenant, &doomed, &mut erased)?;
        // Learners with nothing left lose their actor row too.
        erased.actors = self.conn.execute(
            "DELETE FROM actors WHERE tenant_id = ?1 AND id NOT IN \
             (SELECT actor_id FROM statements WHERE tenant_id = ?1)",
            [req.tenant],
        )? as u64;
        self.conn.execute_batch("COMMIT")?;
        self.forget_copies(&doomed, &mut erased)?;
        Ok(erased)
    }

    fn erase_now(&mut self, req: &EraseRequest) -> Result<Erased, StoreError> {
        let conn = &self.conn;
        let mut erased = Erased::default();
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let mut actor_ids = Vec::new();
        for ifi in &req.actor_ifis {
            if let Some(id) = conn
                .prepare_cached("SELECT id FROM actors WHERE tenant_id = ?1 AND ifi = ?2")?
                .query_row(params![req.tenant, ifi], |r| r.get::<_, i64>(0))
                .optional()?
            {
                actor_ids.push(id);
            }
        }
        // Their statements, and any other statement that names them (as object, instructor,
        // team member, or in a previous-pseudonyms list).
        let mut doomed: Vec<(i64, Vec<u8>)> = Vec::new();
        {
            let mut stmt = conn.prepare(
                "SELECT seq, statement_id, actor_id, json FROM statements WHERE tenant_id = ?1",
            )?;
            let mut rows = stmt.query([req.tenant])?;
            while let Some(row) = rows.next()? {
                let actor: i64 = row.get(2)?;
                let json = row.get_ref(3)?.as_str().unwrap_or_default();
                if actor_ids.contains(&actor)
                    || req.needles.iter().any(|n| json.contains(n.as_str()))
                {
                    doomed.push((row.get(0)?, row.get(1)?));
                }
            }
        }
        self.delete_statements(req.tenant, &doomed, &mut erased)?;
        for id in &actor_ids {
            erased.actors += self
                .conn
                .prepare_cached("DELETE FROM actors WHERE id = ?1")?
                .execute([id])? as u64;
        }
        self.conn.execute_batch("COMMIT")?;
        self.forget_copies(&doomed, &mut erased)?;
        if let Some(actors) = self.interner.actors.get_mut(&req.tenant) {
            actors.retain(|ifi, _| !req.actor_ifis.contains(ifi));
        }
        Ok(erased)
    }

    fn commit_group(&mut self, batch: Vec<AppendRequest>, size: usize) {
        let started = std::time::Instant::now();
        let mut results: Vec<Result<Vec<i64>, StoreError>> = Vec::with_capacity(batch.len());
        let outcome = (|| -> Result<(), StoreError> {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            for req in &batch {
                results.push(self.append_one(req));
            }
            self.conn.execute_batch("COMMIT")?;
            Ok(())
        })();
        if let Err(e) = outcome {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.interner.clear();
            tracing::error!(error = %e, "group commit failed");
            for req in batch {
                let _ = req.reply.send(Err(StoreError::Internal(e.to_string())));
            }
            return;
        }
        metrics::histogram!("learnpulse_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("learnpulse_commit_batch_statements").record(size as f64);
        metrics::histogram!("learnpulse_commit_batch_requests").record(batch.len() as f64);

        // Sequence numbers are rowids given under the writer's lock, so commit order is
        // sequence order: publishing the highest one tells followers everything up to it is there.
        let head = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .flatten()
            .copied()
            .max()
            .unwrap_or(0);
        if head > 0 {
            self.committed.send_if_modified(|h| {
                let grew = head > *h;
                *h = (*h).max(head);
                grew
            });
        }
        for (req, result) in batch.into_iter().zip(results) {
            let _ = req.reply.send(result.map(|seqs| Appended {
                through_seq: seqs.into_iter().max().unwrap_or(0),
            }));
        }
    }

    /// Appends one request inside its own savepoint. Returns the sequence number of each
    /// statement; an identical re-post of an existing statement is a no-op and gets 0 (it is
    /// not in the log twice, so followers never see an event twice).
    fn append_one(&mut self, req: &AppendRequest) -> Result<Vec<i64>, StoreError> {
        self.conn.execute_batch("SAVEPOINT request")?;
        match self.insert_all(req) {
            Ok(seqs) => {
                self.conn.execute_batch("RELEASE request")?;
                Ok(seqs)
            }
            Err(e) => {
                self.conn
                    .execute_batch("ROLLBACK TO request; RELEASE request")?;
                Err(e)
            }
        }
    }

    fn insert_all(&mut self, req: &AppendRequest) -> Result<Vec<i64>, StoreError> {
        let tenant = req.tenant;
        let mut seqs = Vec::with_capacity(req.statements.len());
        for st in &req.statements {
            let actor = self
                .interner
                .id(&self.conn, InternTable::Actors, tenant, &st.actor)?;
            let verb = self
                .interner
                .id(&self.conn, InternTable::Verbs, tenant, &st.verb)?;
            let activity = match &st.activity {
                Some(a) => {
                    Some(
                        self.interner
                            .id(&self.conn, InternTable::Activities, tenant, a)?,
                    )
                }
                None => None,
            };
            self.last_stored_us = now_us().max(self.last_stored_us + 1);
            let inserted = self
                .conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO statements (tenant_id, statement_id, stored_us, actor_id, \
                     verb_id, activity_id, registration, fingerprint, json, live, target, related) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?
                .execute(params![
                    tenant,
                    st.id.as_bytes().as_slice(),
                    self.last_stored_us,
                    actor,
                    verb,
                    activity,
                    st.registration.as_ref().map(|r| r.as_bytes().to_vec()),
                    st.fingerprint.as_slice(),
                    st.json,
                    st.live.as_deref().unwrap_or(""),
                    st.target.as_ref().map(|t| t.as_bytes().as_slice()),
                    st.related,
                ])?;
            if inserted == 0 {
                self.check_same(tenant, st)?;
                seqs.push(0);
                continue;
            }
            seqs.push(self.conn.last_insert_rowid());
            if let Some(sealed) = &st.vault {
                self.conn
                    .prepare_cached(
                        "INSERT OR REPLACE INTO vault (tenant_id, statement_id, sealed) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![tenant, st.id.as_bytes().as_slice(), sealed])?;
            }
            if let Some(target) = st.voids {
                self.void(tenant, target)?;
            }
        }
        Ok(seqs)
    }

    /// An id that is already taken: a no-op if the stored statement is the same, else a conflict.
    fn check_same(&self, tenant: TenantId, st: &NewStatement) -> Result<(), StoreError> {
        let existing: Vec<u8> = self
            .conn
            .prepare_cached(
                "SELECT fingerprint FROM statements WHERE tenant_id = ?1 AND statement_id = ?2",
            )?
            .query_row(params![tenant, st.id.as_bytes().as_slice()], |r| r.get(0))?;
        if existing == st.fingerprint {
            Ok(())
        } else {
            Err(StoreError::Conflict(st.id))
        }
    }

    /// Marks the target voided, unless the target is itself a voiding statement (which the xAPI
    /// specification says cannot be voided).
    fn void(&self, tenant: TenantId, target: Uuid) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE statements SET voided = 1 WHERE tenant_id = ?1 AND statement_id = ?2 \
                 AND verb_id NOT IN (SELECT id FROM verbs WHERE tenant_id = ?1 AND iri = ?3)",
            )?
            .execute(params![tenant, target.as_bytes().as_slice(), VOIDED_VERB])?;
        Ok(())
    }
}
