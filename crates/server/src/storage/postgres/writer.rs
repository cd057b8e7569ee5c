//! The PostgreSQL writer task and its group commit.
//!
//! As on SQLite, a commit's cost is mostly fixed (a round trip and a WAL flush), so every append
//! of this process goes through one task that takes whatever has queued up and commits it in
//! one transaction. The transaction starts by locking the `log_head` row: writers of other
//! processes wait there, so sequence numbers are handed out in commit order. Per-request
//! atomicity needs no savepoints: ids are checked against the log first (under the lock, so no
//! other writer can insert them meanwhile), and a request with a conflict is left out whole.
//! Rows go in with one multi-row `INSERT … SELECT FROM unnest(…)` per table.

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::{Client, Statement};
use uuid::Uuid;

use super::{CHANNEL, db_err};
use crate::storage::{Appended, Durability, Erased, NewStatement, StoreError, TenantId, now_us};

const VOIDED_VERB: &str = "http://adlnet.gov/expapi/verbs/voided";

pub(super) enum Request {
    Append {
        tenant: TenantId,
        statements: Vec<NewStatement>,
        reply: oneshot::Sender<Result<Appended, StoreError>>,
    },
    /// Removes a learner's statements (theirs, and every other that names them) with their
    /// vault entries; between group commits, so that no statement naming them slips in.
    Erase {
        tenant: TenantId,
        needles: Vec<String>,
        actor_ifis: Vec<String>,
        reply: oneshot::Sender<Result<Erased, StoreError>>,
    },
    Purge {
        tenant: TenantId,
        before_us: i64,
        reply: oneshot::Sender<Result<Erased, StoreError>>,
    },
}

pub(super) struct Writer {
    client: Client,
    /// The group commit's statements, prepared on `client`.
    prepared: Prepared,
    /// To reconnect when the connection drops (a PostgreSQL restart, a failover).
    config: tokio_postgres::Config,
    durability: Durability,
    committed: watch::Sender<i64>,
    max_batch_statements: usize,
}

/// The group commit's statements, prepared once per connection: a commit then sends each as
/// one Bind/Execute instead of a Parse/Describe round trip first.
#[derive(Clone)]
struct Prepared {
    lock_head: Statement,
    taken: Statement,
    insert_statements: Statement,
    insert_vault: Statement,
    void: Statement,
    advance_head: Statement,
    notify: Statement,
}

impl Prepared {
    async fn on(client: &Client) -> Result<Prepared, StoreError> {
        let prepare = |sql: String| async move { client.prepare(&sql).await.map_err(db_err) };
        Ok(Prepared {
            lock_head: prepare(
                "SELECT seq, stored_us FROM log_head WHERE id = 1 FOR UPDATE".into(),
            )
            .await?,
            taken: prepare(
                "SELECT statement_id, fingerprint FROM statements \
                 WHERE tenant_id = $1 AND statement_id = ANY($2)"
                    .into(),
            )
            .await?,
            insert_statements: prepare(
                "INSERT INTO statements (seq, tenant_id, statement_id, stored_us, actor, verb, \
                 activity, registration, fingerprint, json, live, target, related) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::uuid[], $4::bigint[], \
                 $5::text[], $6::text[], $7::text[], $8::uuid[], $9::bytea[], $10::text[], \
                 $11::text[], $12::uuid[], $13::text[])"
                    .into(),
            )
            .await?,
            insert_vault: prepare(
                "INSERT INTO vault (tenant_id, statement_id, sealed) \
                 SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::bytea[]) \
                 ON CONFLICT (tenant_id, statement_id) DO UPDATE SET sealed = excluded.sealed"
                    .into(),
            )
            .await?,
            // A voiding statement cannot itself be voided (xAPI).
            void: prepare(
                "UPDATE statements SET voided = true \
                 WHERE tenant_id = $1 AND statement_id = $2 AND verb <> $3"
                    .into(),
            )
            .await?,
            advance_head: prepare(
                "UPDATE log_head SET seq = $1, stored_us = $2 WHERE id = 1".into(),
            )
            .await?,
            notify: prepare(format!("SELECT pg_notify('{CHANNEL}', $1)")).await?,
        })
    }
}

/// The writer's own connection, set up for the configured durability.
pub(super) async fn connect(
    config: &tokio_postgres::Config,
    durability: Durability,
) -> Result<Client, StoreError> {
    let (client, connection) = super::connect(config).await?;
    tokio::spawn(connection);
    if durability == Durability::Process {
        // Acknowledged once in the server's memory and WAL buffers: survives a crash of
        // learnpulse, may lose the last commits if PostgreSQL's machine loses power.
        client
            .batch_execute("SET synchronous_commit = off")
            .await
            .map_err(db_err)?;
    }
    Ok(client)
}

/// The columns of the rows one group commit inserts, as arrays for `unnest`.
#[derive(Default)]
struct Columns {
    seq: Vec<i64>,
    tenant: Vec<i64>,
    id: Vec<Uuid>,
    stored_us: Vec<i64>,
    actor: Vec<String>,
    verb: Vec<String>,
    activity: Vec<Option<String>>,
    registration: Vec<Option<Uuid>>,
    fingerprint: Vec<Vec<u8>>,
    json: Vec<String>,
    live: Vec<Option<String>>,
    target: Vec<Option<Uuid>>,
    related: Vec<String>,
    vault_tenant: Vec<i64>,
    vault_id: Vec<Uuid>,
    vault_sealed: Vec<Vec<u8>>,
    voids: Vec<(TenantId, Uuid)>,
}

type Pending = (
    TenantId,
    Vec<NewStatement>,
    oneshot::Sender<Result<Appended, StoreError>>,
);

impl Writer {
    pub(super) async fn start(
        config: tokio_postgres::Config,
        durability: Durability,
        committed: watch::Sender<i64>,
        max_batch_statements: usize,
    ) -> Result<Writer, StoreError> {
        let client = connect(&config, durability).await?;
        let prepared = Prepared::on(&client).await?;
        Ok(Writer {
            client,
            prepared,
            config,
            durability,
            committed,
            max_batch_statements,
        })
    }

    /// Connects again when the connection has dropped. A request that was in flight when it
    /// dropped has been answered with an error (not acknowledged: its client retries, and a
    /// statement that did commit is then accepted as an identical re-post); the next request
    /// finds a new connection, or an error while PostgreSQL cannot be reached.
    async fn connected(&mut self) -> Result<(), StoreError> {
        if !self.client.is_closed() {
            return Ok(());
        }
        let client = connect(&self.config, self.durability).await?;
        self.prepared = Prepared::on(&client).await?;
        self.client = client;
        tracing::warn!("the PostgreSQL writer reconnected");
        Ok(())
    }

    /// Runs until every sender is dropped (everything received has been committed).
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        while let Some(first) = rx.recv().await {
            let mut batch: Vec<Pending> = Vec::new();
            let mut size = 0;
            let mut after = None;
            let mut next = Some(first);
            while let Some(request) = next.take() {
                match request {
                    Request::Append {
                        tenant,
                        statements,
                        reply,
                    } => {
                        size += statements.len();
                        batch.push((tenant, statements, reply));
                    }
                    other => {
                        after = Some(other);
                        break;
                    }
                }
                if size < self.max_batch_statements {
                    next = rx.try_recv().ok();
                }
            }
            let connected = self.connected().await;
            if !batch.is_empty() {
                match &connected {
                    Ok(()) => self.commit_group(batch, size).await,
                    Err(e) => {
                        for (_, _, reply) in batch {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
            }
            match after {
                Some(Request::Erase {
                    tenant,
                    needles,
                    actor_ifis,
                    reply,
                }) => {
                    let result = match &connected {
                        Ok(()) => self.erase(tenant, &needles, &actor_ifis).await,
                        Err(e) => Err(e.clone()),
                    };
                    let _ = reply.send(result);
                }
                Some(Request::Purge {
                    tenant,
                    before_us,
                    reply,
                }) => {
                    let result = match &connected {
                        Ok(()) => self.purge(tenant, before_us).await,
                        Err(e) => Err(e.clone()),
                    };
                    let _ = reply.send(result);
                }
                _ => {}
            }
        }
    }

    async fn commit_group(&mut self, batch: Vec<Pending>, size: usize) {
        let started = std::time::Instant::now();
        let requests: Vec<(TenantId, &[NewStatement])> =
            batch.iter().map(|(t, s, _)| (*t, s.as_slice())).collect();
        match self.try_commit(&requests).await {
            Ok((results, head)) => {
                metrics::histogram!("learnpulse_commit_seconds")
                    .record(started.elapsed().as_secs_f64());
                metrics::histogram!("learnpulse_commit_batch_statements").record(size as f64);
                metrics::histogram!("learnpulse_commit_batch_requests").record(batch.len() as f64);
                self.committed.send_if_modified(|h| {
                    let grew = head > *h;
                    *h = (*h).max(head);
                    grew
                });
                for ((_, _, reply), result) in batch.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "group commit failed");
                for (_, _, reply) in batch {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// One group commit: the results per request, and the new head.
    async fn try_commit(
        &mut self,
        requests: &[(TenantId, &[NewStatement])],
    ) -> Result<(Vec<Result<Appended, StoreError>>, i64), StoreError> {
        let prepared = self.prepared.clone();
        let tx = self.client.transaction().await.map_err(db_err)?;
        let head_row = tx
            .query_one(&prepared.lock_head, &[])
            .await
            .map_err(db_err)?;
        let (mut head, mut last_stored): (i64, i64) = (head_row.get(0), head_row.get(1));

        // The fingerprints of ids already taken, per tenant.
        let mut asked: HashMap<TenantId, Vec<Uuid>> = HashMap::new();
        for (tenant, statements) in requests {
            asked
                .entry(*tenant)
                .or_default()
                .extend(statements.iter().map(|s| s.id));
        }
        let mut taken: HashMap<(TenantId, Uuid), Vec<u8>> = HashMap::new();
        for (tenant, ids) in asked {
            for row in tx
                .query(&prepared.taken, &[&tenant, &ids])
                .await
                .map_err(db_err)?
            {
                taken.insert((tenant, row.get(0)), row.get(1));
            }
        }

        let mut columns = Columns::default();
        let mut results = Vec::with_capacity(requests.len());
        for (tenant, statements) in requests {
            // A conflict leaves the whole request out; duplicates of stored statements (or of
            // one earlier in the request) are no-ops.
            let mut fresh: Vec<&NewStatement> = Vec::new();
            let mut conflict = None;
            for st in statements.iter() {
                let earlier = fresh
                    .iter()
                    .find(|f| f.id == st.id)
                    .map(|f| f.fingerprint.to_vec());
                match taken.get(&(*tenant, st.id)).cloned().or(earlier) {
                    Some(fp) if fp == st.fingerprint => {}
                    Some(_) => {
                        conflict = Some(st.id);
                        break;
                    }
                    None => fresh.push(st),
                }
            }
            if let Some(id) = conflict {
                results.push(Err(StoreError::Conflict(id)));
                continue;
            }
            let mut through_seq = 0;
            for st in fresh {
                head += 1;
                last_stored = now_us().max(last_stored + 1);
                through_seq = head;
                taken.insert((*tenant, st.id), st.fingerprint.to_vec());
                columns.push(*tenant, head, last_stored, st);
            }
            results.push(Ok(Appended { through_seq }));
        }

        if !columns.seq.is_empty() {
            tx.execute(
                &prepared.insert_statements,
                &[
                    &columns.seq,
                    &columns.tenant,
                    &columns.id,
                    &columns.stored_us,
                    &columns.actor,
                    &columns.verb,
                    &columns.activity,
                    &columns.registration,
                    &columns.fingerprint,
                    &columns.json,
                    &columns.live,
                    &columns.target,
                    &columns.related,
                ],
            )
            .await
            .map_err(db_err)?;
            if !columns.vault_id.is_empty() {
                tx.execute(
                    &prepared.insert_vault,
                    &[
                        &columns.vault_tenant,
                        &columns.vault_id,
                        &columns.vault_sealed,
                    ],
                )
                .await
                .map_err(db_err)?;
            }
            for (tenant, target) in &columns.voids {
                tx.execute(&prepared.void, &[tenant, target, &VOIDED_VERB])
                    .await
                    .map_err(db_err)?;
            }
            tx.execute(&prepared.advance_head, &[&head, &last_stored])
                .await
                .map_err(db_err)?;
            // Delivered to every listener when (and only if) the transaction commits.
            tx.execute(&prepared.notify, &[&head.to_string()])
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok((results, head))
    }

    async fn erase(
        &mut self,
        tenant: TenantId,
        needles: &[String],
        actor_ifis: &[String],
    ) -> Result<Erased, StoreError> {
        let tx = self.client.transaction().await.map_err(db_err)?;
        let deleted = tx
            .query(
                "DELETE FROM statements WHERE tenant_id = $1 AND (actor = ANY($2) \
                 OR EXISTS (SELECT 1 FROM unnest($3::text[]) AS n WHERE strpos(json, n) > 0)) \
                 RETURNING statement_id, actor",
                &[&tenant, &actor_ifis, &needles],
            )
            .await
            .map_err(db_err)?;
        let mut erased = forget_satellites(&tx, tenant, &deleted).await?;
        let actors: std::collections::HashSet<String> = deleted
            .iter()
            .map(|r| r.get::<_, String>(1))
            .filter(|a| actor_ifis.contains(a))
            .collect();
        erased.actors = actors.len() as u64;
        tx.commit().await.map_err(db_err)?;
        Ok(erased)
    }

    async fn purge(&mut self, tenant: TenantId, before_us: i64) -> Result<Erased, StoreError> {
        let tx = self.client.transaction().await.map_err(db_err)?;
        let deleted = tx
            .query(
                "DELETE FROM statements WHERE tenant_id = $1 AND stored_us < $2 \
                 RETURNING statement_id, actor",
                &[&tenant, &before_us],
            )
            .await
            .map_err(db_err)?;
        let mut erased = forget_satellites(&tx, tenant, &deleted).await?;
        // Learners with nothing left.
        let actors: Vec<String> = {
            let mut a: Vec<String> = deleted.iter().map(|r| r.get(1)).collect();
            a.sort_unstable();
            a.dedup();
            a
        };
        if !actors.is_empty() {
            let still: i64 = tx
                .query_one(
                    "SELECT count(DISTINCT actor) FROM statements \
                     WHERE tenant_id = $1 AND actor = ANY($2)",
                    &[&tenant, &actors],
                )
                .await
                .map_err(db_err)?
                .get(0);
            erased.actors = actors.len() as u64 - still as u64;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(erased)
    }
}

/// Deletes the vault entries and re-identification records of deleted statements.
async fn forget_satellites(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: TenantId,
    deleted: &[tokio_postgres::Row],
) -> Result<Erased, StoreError> {
    let ids: Vec<Uuid> = deleted.iter().map(|r| r.get(0)).collect();
    let mut erased = Erased {
        statements: ids.len() as u64,
        ..Erased::default()
    };
    if ids.is_empty() {
        return Ok(erased);
    }
    erased.vault_entries = tx
        .execute(
            "DELETE FROM vault WHERE tenant_id = $1 AND statement_id = ANY($2)",
            &[&tenant, &ids],
        )
        .await
        .map_err(db_err)?;
    tx.execute(
        "DELETE FROM reidentifications WHERE tenant_id = $1 AND statement_id = ANY($2)",
        &[&tenant, &ids],
    )
    .await
    .map_err(db_err)?;
    Ok(erased)
}

impl Columns {
    fn push(&mut self, tenant: TenantId, seq: i64, stored_us: i64, st: &NewStatement) {
        self.seq.push(seq);
        self.tenant.push(tenant);
        self.id.push(st.id);
        self.stored_us.push(stored_us);
        self.actor.push(st.actor.clone());
        self.verb.push(st.verb.clone());
        self.activity.push(st.activity.clone());
        self.registration.push(st.registration);
        self.fingerprint.push(st.fingerprint.to_vec());
        self.json.push(st.json.clone());
        self.live.push(st.live.clone());
        self.target.push(st.target);
        self.related.push(st.related.clone());
        if let Some(sealed) = &st.vault {
            self.vault_tenant.push(tenant);
            self.vault_id.push(st.id);
            self.vault_sealed.push(sealed.clone());
        }
        if let Some(target) = st.voids {
            self.voids.push((tenant, target));
        }
    }
}
