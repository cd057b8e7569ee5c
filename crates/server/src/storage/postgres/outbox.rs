//! [`OutboxStore`] on PostgreSQL (`webhook_*` tables). Claims take their rows with
//! `FOR UPDATE SKIP LOCKED`, so that two dispatchers never claim the same message.

use std::collections::HashMap;

use super::{PostgresStorage, db_err, is_unique_violation};
use crate::storage::outbox::{
    Counts, Due, Endpoint, Finish, MessageView, NewMessage, OutboxStore, PENDING, ReceiverRow,
    SealFor, json, parse_list, state_name,
};
use crate::storage::{StoreError, TenantId};

impl OutboxStore for PostgresStorage {
    async fn receiver_rows(&self) -> Result<Vec<ReceiverRow>, StoreError> {
        let client = self.client().await?;
        let mut endpoints: HashMap<i64, Vec<Endpoint>> = HashMap::new();
        for r in client
            .query(
                "SELECT id, receiver, url, weight FROM webhook_endpoints ORDER BY id",
                &[],
            )
            .await
            .map_err(db_err)?
        {
            endpoints.entry(r.get(1)).or_default().push(Endpoint {
                id: r.get(0),
                url: r.get(2),
                weight: r.get::<_, i64>(3) as u32,
            });
        }
        let rows = client
            .query(
                "SELECT id, tenant, name, max_batch, kinds, cognitive_data, secrets, created_ms, \
                 events FROM webhook_receivers ORDER BY id",
                &[],
            )
            .await
            .map_err(db_err)?;
        Ok(rows
            .iter()
            .map(|r| {
                let id: i64 = r.get(0);
                ReceiverRow {
                    id,
                    tenant: r.get(1),
                    name: r.get(2),
                    max_batch: r.get::<_, i64>(3).max(1) as usize,
                    kinds: parse_list(r.get(4)),
                    cognitive_data: r.get(5),
                    sealed_secrets: r.get(6),
                    created_ms: r.get(7),
                    events: parse_list(r.get(8)),
                    endpoints: endpoints.remove(&id).unwrap_or_default(),
                }
            })
            .collect())
    }

    async fn insert_receiver(
        &self,
        row: ReceiverRow,
        seal: SealFor,
    ) -> Result<Option<i64>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        let inserted = tx
            .query_one(
                "INSERT INTO webhook_receivers (tenant, name, max_batch, kinds, cognitive_data, \
                 secrets, created_ms, events) VALUES ($1, $2, $3, $4, $5, '', $6, $7) RETURNING id",
                &[
                    &row.tenant,
                    &row.name,
                    &(row.max_batch as i64),
                    &json(&row.kinds),
                    &row.cognitive_data,
                    &row.created_ms,
                    &json(&row.events),
                ],
            )
            .await;
        let id: i64 = match inserted {
            Ok(r) => r.get(0),
            Err(e) if is_unique_violation(&e) => return Ok(None),
            Err(e) => return Err(db_err(e)),
        };
        tx.execute(
            "UPDATE webhook_receivers SET secrets = $1 WHERE id = $2",
            &[&seal(id), &id],
        )
        .await
        .map_err(db_err)?;
        for e in &row.endpoints {
            tx.execute(
                "INSERT INTO webhook_endpoints (receiver, url, weight) VALUES ($1, $2, $3)",
                &[&id, &e.url, &i64::from(e.weight)],
            )
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(Some(id))
    }

    async fn delete_receiver(&self, tenant: TenantId, id: i64) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        // The cascade deletes the receiver's messages; lock them first, in id order, the order
        // in which `finish` updates them, so that a dispatcher settling attempts meanwhile
        // waits for us (or we for it) instead of deadlocking.
        tx.execute(
            "SELECT 1 FROM webhook_messages WHERE receiver = $1 AND tenant = $2 \
             ORDER BY id FOR UPDATE",
            &[&id, &tenant],
        )
        .await
        .map_err(db_err)?;
        let deleted = tx
            .execute(
                "DELETE FROM webhook_receivers WHERE id = $1 AND tenant = $2",
                &[&id, &tenant],
            )
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(deleted > 0)
    }

    async fn set_receiver_secrets(&self, id: i64, sealed: Vec<u8>) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE webhook_receivers SET secrets = $1 WHERE id = $2",
                &[&sealed, &id],
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn outbox_watermark(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT seq FROM webhook_watermark WHERE id = 1", &[])
            .await
            .map_err(db_err)?;
        Ok(row.map_or(0, |r| r.get(0)))
    }

    async fn enqueue(
        &self,
        messages: Vec<NewMessage>,
        through_seq: Option<i64>,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        let mut inserted = 0;
        if !messages.is_empty() {
            let column = |f: fn(&NewMessage) -> String| messages.iter().map(f).collect::<Vec<_>>();
            let ids = column(|m| m.id.clone());
            let learners = column(|m| m.learner.clone());
            let payloads = column(|m| m.payload.clone());
            let receivers: Vec<i64> = messages.iter().map(|m| m.receiver).collect();
            let tenants: Vec<i64> = messages.iter().map(|m| m.tenant).collect();
            let seqs: Vec<i64> = messages.iter().map(|m| m.seq).collect();
            inserted = tx
                .execute(
                    "INSERT INTO webhook_messages (id, receiver, tenant, learner, seq, payload, \
                     created_ms, next_attempt_ms) \
                     SELECT m.id, m.receiver, m.tenant, m.learner, m.seq, m.payload, $7, $7 \
                     FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[], \
                     $6::text[]) AS m(id, receiver, tenant, learner, seq, payload) \
                     WHERE EXISTS (SELECT 1 FROM webhook_receivers r WHERE r.id = m.receiver) \
                     ON CONFLICT (id) DO NOTHING",
                    &[
                        &ids, &receivers, &tenants, &learners, &seqs, &payloads, &now_ms,
                    ],
                )
                .await
                .map_err(db_err)? as usize;
        }
        if let Some(through_seq) = through_seq {
            tx.execute(
                "INSERT INTO webhook_watermark (id, seq) VALUES (1, $1) \
                 ON CONFLICT (id) DO UPDATE SET seq = GREATEST(webhook_watermark.seq, excluded.seq)",
                &[&through_seq],
            )
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(inserted)
    }

    async fn release_leases(&self, now_ms: i64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE webhook_messages SET next_attempt_ms = LEAST(next_attempt_ms, $1), \
                 leased = false WHERE leased",
                &[&now_ms],
            )
            .await
            .map_err(db_err)
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "UPDATE webhook_messages SET next_attempt_ms = $2, leased = true WHERE id IN \
                 (SELECT id FROM webhook_messages WHERE state = 0 AND next_attempt_ms <= $1 \
                  ORDER BY next_attempt_ms, seq LIMIT $3 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, receiver, payload, attempts, seq",
                &[&now_ms, &lease_until_ms, &(limit as i64)],
            )
            .await
            .map_err(db_err)?;
        let mut due: Vec<(i64, Due)> = rows
            .iter()
            .map(|r| {
                (
                    r.get(4),
                    Due {
                        id: r.get(0),
                        receiver: r.get(1),
                        payload: r.get(2),
                        attempts: r.get::<_, i64>(3) as u32,
                    },
                )
            })
            .collect();
        due.sort_by_key(|(seq, _)| *seq);
        Ok(due.into_iter().map(|(_, d)| d).collect())
    }

    async fn next_due_ms(&self) -> Result<Option<i64>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT min(next_attempt_ms) FROM webhook_messages WHERE state = 0",
                &[],
            )
            .await
            .map_err(db_err)?;
        Ok(row.get(0))
    }

    async fn finish(&self, mut finished: Vec<Finish>, now_ms: i64) -> Result<(), StoreError> {
        // In id order, as `delete_receiver` locks them: no deadlock between the two.
        finished.sort_by(|a, b| a.id.cmp(&b.id));
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        let stmt = tx
            .prepare(
                "UPDATE webhook_messages SET state = $2, attempts = attempts + $3, \
                 next_attempt_ms = $4, last_status = coalesce($5, last_status), last_error = $6, \
                 endpoint = coalesce($7, endpoint), done_ms = $8, leased = false WHERE id = $1",
            )
            .await
            .map_err(db_err)?;
        for f in &finished {
            let (state, next, done) = f.next.columns(now_ms);
            tx.execute(
                &stmt,
                &[
                    &f.id,
                    &state,
                    &(f.attempted as i64),
                    &next,
                    &f.status.map(i64::from),
                    &f.error,
                    &f.endpoint,
                    &done,
                ],
            )
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn counts(&self, receiver: i64) -> Result<Counts, StoreError> {
        let client = self.client().await?;
        let mut counts = Counts::default();
        for r in client
            .query(
                "SELECT state, count(*) FROM webhook_messages WHERE receiver = $1 GROUP BY state",
                &[&receiver],
            )
            .await
            .map_err(db_err)?
        {
            counts.add(r.get(0), r.get::<_, i64>(1) as u64);
        }
        Ok(counts)
    }

    async fn pending_total(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT count(*) FROM webhook_messages WHERE state = 0", &[])
            .await
            .map_err(db_err)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn messages(
        &self,
        receiver: i64,
        state: i64,
        limit: usize,
    ) -> Result<Vec<MessageView>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, seq, state, attempts, next_attempt_ms, last_status, last_error, \
                 endpoint, created_ms, done_ms, payload FROM webhook_messages \
                 WHERE receiver = $1 AND state = $2 ORDER BY seq DESC LIMIT $3",
                &[&receiver, &state, &(limit as i64)],
            )
            .await
            .map_err(db_err)?;
        Ok(rows
            .iter()
            .map(|r| {
                let state: i64 = r.get(2);
                MessageView {
                    id: r.get(0),
                    seq: r.get(1),
                    state: state_name(state),
                    attempts: r.get::<_, i64>(3) as u32,
                    next_attempt_ms: (state == PENDING).then(|| r.get(4)),
                    last_status: r.get::<_, Option<i64>>(5).map(|s| s as u16),
                    last_error: r.get(6),
                    endpoint: r.get(7),
                    created_ms: r.get(8),
                    done_ms: r.get(9),
                    payload: serde_json::from_str(r.get(10)).unwrap_or_default(),
                }
            })
            .collect())
    }

    async fn replay_dead(
        &self,
        receiver: i64,
        ids: Option<Vec<String>>,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let sql = "UPDATE webhook_messages SET state = 0, attempts = 0, next_attempt_ms = $2, \
                   done_ms = NULL WHERE receiver = $1 AND state = 2";
        let n = match ids {
            None => client.execute(sql, &[&receiver, &now_ms]).await,
            Some(ids) => {
                client
                    .execute(
                        &format!("{sql} AND id = ANY($3)"),
                        &[&receiver, &now_ms, &ids],
                    )
                    .await
            }
        }
        .map_err(db_err)?;
        Ok(n as usize)
    }

    async fn prune_delivered(&self, before_ms: i64) -> Result<usize, StoreError> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "DELETE FROM webhook_messages WHERE state = 1 AND done_ms < $1",
                &[&before_ms],
            )
            .await
            .map_err(db_err)? as usize)
    }

    async fn forget_learners(
        &self,
        tenant: TenantId,
        learners: Vec<String>,
    ) -> Result<usize, StoreError> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "DELETE FROM webhook_messages WHERE tenant = $1 AND learner = ANY($2)",
                &[&tenant, &learners],
            )
            .await
            .map_err(db_err)? as usize)
    }
}
