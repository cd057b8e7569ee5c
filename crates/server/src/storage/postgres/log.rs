//! [`EventLog`] on PostgreSQL: appends go to the writer task ([`super::writer`]); reads use the
//! pool. Filtered queries read the `(tenant, key, seq)` index of their first filter in sequence
//! order and stop after one row more than the page; the statements that match through a
//! StatementRef are read from `statements_targeting` and merged in by seq.

use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::writer::Request;
use super::{PostgresStorage, db_err};
use crate::storage::log::{
    MAX_REFERENCE_HOPS, QueryRow, follows_references, merged_page, reference_bound, with_stored,
};
use crate::storage::{
    Appended, Erased, EventLog, LogEntry, NewStatement, StatementPage, StatementQuery, StoreError,
    TenantId,
};

impl EventLog for PostgresStorage {
    async fn append(
        &self,
        tenant: TenantId,
        statements: Vec<NewStatement>,
    ) -> Result<Appended, StoreError> {
        self.ask_writer(|reply| Request::Append {
            tenant,
            statements,
            reply,
        })
        .await
    }

    async fn statement(
        &self,
        tenant: TenantId,
        id: Uuid,
        voided: bool,
    ) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT stored_us, json FROM statements \
                 WHERE tenant_id = $1 AND statement_id = $2 AND voided = $3",
            )
            .await
            .map_err(db_err)?;
        let row = client
            .query_opt(&stmt, &[&tenant, &id, &voided])
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| with_stored(r.get(1), r.get(0))))
    }

    async fn query(
        &self,
        tenant: TenantId,
        q: StatementQuery,
    ) -> Result<StatementPage, StoreError> {
        let mut sql = PgQuery::new(
            "SELECT seq, stored_us, json FROM statements WHERE tenant_id = $1 AND NOT voided",
            tenant,
        );
        if let Some(agent) = &q.agent {
            sql.push(" AND actor = ?", Box::new(agent.clone()));
        }
        if let Some(verb) = &q.verb {
            sql.push(" AND verb = ?", Box::new(verb.clone()));
        }
        if let Some(activity) = &q.activity {
            sql.push(" AND activity = ?", Box::new(activity.clone()));
        }
        if let Some(registration) = q.registration {
            sql.push(" AND registration = ?", Box::new(registration));
        }
        sql.push_window(&q);
        sql.push(
            &format!(" ORDER BY seq {} LIMIT ?", direction(&q)),
            Box::new(q.limit as i64 + 1),
        );
        let client = self.client().await?;
        let direct: Vec<QueryRow> = sql
            .run(&client)
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let referencing = if follows_references(&q) {
            let bound = reference_bound(&direct, q.limit);
            read_referencing(&client, tenant, &q, bound).await?
        } else {
            Vec::new()
        };
        Ok(merged_page(direct, referencing, q.limit, q.ascending))
    }

    async fn read_log(&self, after_seq: i64, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT tenant_id, seq, live FROM statements WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .await
            .map_err(db_err)?;
        let rows = client
            .query(&stmt, &[&after_seq, &(limit as i64)])
            .await
            .map_err(db_err)?;
        Ok(rows
            .iter()
            .map(|r| LogEntry {
                tenant: r.get(0),
                seq: r.get(1),
                live: r.get(2),
                legacy_json: None,
            })
            .collect())
    }

    async fn head(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT seq FROM log_head WHERE id = 1", &[])
            .await
            .map_err(db_err)?;
        Ok(row.get(0))
    }

    async fn tenant_statements(
        &self,
        tenant: TenantId,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT seq, json FROM statements WHERE tenant_id = $1 AND seq > $2 \
                 AND NOT voided ORDER BY seq LIMIT $3",
            )
            .await
            .map_err(db_err)?;
        let rows = client
            .query(&stmt, &[&tenant, &after_seq, &(limit as i64)])
            .await
            .map_err(db_err)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn count_statements(&self, tenant: Option<TenantId>) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = match tenant {
            Some(t) => {
                client
                    .query_one(
                        "SELECT count(*) FROM statements WHERE tenant_id = $1",
                        &[&t],
                    )
                    .await
            }
            None => {
                client
                    .query_one("SELECT count(*) FROM statements", &[])
                    .await
            }
        }
        .map_err(db_err)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn erase_learner(
        &self,
        tenant: TenantId,
        needles: Vec<String>,
        actor_ifis: Vec<String>,
    ) -> Result<Erased, StoreError> {
        self.ask_writer(|reply| Request::Erase {
            tenant,
            needles,
            actor_ifis,
            reply,
        })
        .await
    }

    async fn purge_before(&self, tenant: TenantId, before_us: i64) -> Result<Erased, StoreError> {
        self.ask_writer(|reply| Request::Purge {
            tenant,
            before_us,
            reply,
        })
        .await
    }

    async fn count_stored_before(
        &self,
        tenant: TenantId,
        before_us: i64,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*) FROM statements WHERE tenant_id = $1 AND stored_us < $2",
                &[&tenant, &before_us],
            )
            .await
            .map_err(db_err)?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}

/// SQL text with numbered parameters, built clause by clause (`?` becomes the next `$n`).
struct PgQuery {
    text: String,
    args: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl PgQuery {
    /// Starts with `text`, whose `$1` is the tenant.
    fn new(text: &str, tenant: TenantId) -> PgQuery {
        PgQuery {
            text: text.to_owned(),
            args: vec![Box::new(tenant)],
        }
    }

    fn push(&mut self, clause: &str, value: Box<dyn ToSql + Sync + Send>) {
        self.args.push(value);
        self.text
            .push_str(&clause.replace('?', &format!("${}", self.args.len())));
    }

    /// Since, until and the paging cursor: the window the returned statements lie in.
    fn push_window(&mut self, q: &StatementQuery) {
        if let Some(since) = q.since_us {
            self.push(" AND stored_us > ?", Box::new(since));
        }
        if let Some(until) = q.until_us {
            self.push(" AND stored_us <= ?", Box::new(until));
        }
        if let Some(cursor) = q.cursor {
            let after = if q.ascending { ">" } else { "<" };
            self.push(&format!(" AND seq {after} ?"), Box::new(cursor));
        }
    }

    async fn run(
        &self,
        client: &deadpool_postgres::Object,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let stmt = client.prepare_cached(&self.text).await.map_err(db_err)?;
        let params: Vec<&(dyn ToSql + Sync)> = self
            .args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .collect();
        client.query(&stmt, &params).await.map_err(db_err)
    }
}

fn direction(q: &StatementQuery) -> &'static str {
    if q.ascending { "ASC" } else { "DESC" }
}

/// Candidates read at a time when looking for statements that match through a reference.
const REFERENCE_BATCH: i64 = 256;

/// Up to `limit + 1` statements in the query's window, in its order and before `bound`, that
/// match through a reference: not voided, with a StatementRef whose chain of targets reaches a
/// statement (voided or not) that passes the filters. Candidates are read in batches and their
/// chains followed a hop at a time for the whole batch, one round trip per hop.
async fn read_referencing(
    client: &deadpool_postgres::Object,
    tenant: TenantId,
    q: &StatementQuery,
    bound: Option<i64>,
) -> Result<Vec<QueryRow>, StoreError> {
    let wanted = q.limit + 1;
    let lookup = client
        .prepare_cached(
            "SELECT statement_id, actor, verb, activity, registration, target FROM statements \
             WHERE tenant_id = $1 AND statement_id = ANY($2)",
        )
        .await
        .map_err(db_err)?;
    let mut found = Vec::new();
    let mut window = q.clone();
    loop {
        let mut sql = PgQuery::new(
            "SELECT seq, stored_us, json, target FROM statements \
             WHERE tenant_id = $1 AND target IS NOT NULL AND NOT voided",
            tenant,
        );
        sql.push_window(&window);
        if let Some(bound) = bound {
            let before = if q.ascending { "<" } else { ">" };
            sql.push(&format!(" AND seq {before} ?"), Box::new(bound));
        }
        sql.push(
            &format!(" ORDER BY seq {} LIMIT ?", direction(q)),
            Box::new(REFERENCE_BATCH),
        );
        let batch = sql.run(client).await?;
        let Some(last) = batch.last() else {
            return Ok(found);
        };
        window.cursor = Some(last.get(0));

        // For each candidate, the statement its chain has reached; `None` once decided.
        let mut reached: Vec<Option<Uuid>> = batch.iter().map(|r| r.get(3)).collect();
        let mut accepted = vec![false; batch.len()];
        for _ in 0..MAX_REFERENCE_HOPS {
            let ids: Vec<Uuid> = reached.iter().flatten().copied().collect();
            if ids.is_empty() {
                break;
            }
            let rows = client
                .query(&lookup, &[&tenant, &ids])
                .await
                .map_err(db_err)?;
            let next: std::collections::HashMap<Uuid, (bool, Option<Uuid>)> = rows
                .iter()
                .map(|r| {
                    let passes = q.agent.as_deref().is_none_or(|a| a == r.get::<_, &str>(1))
                        && q.verb.as_deref().is_none_or(|v| v == r.get::<_, &str>(2))
                        && q.activity
                            .as_deref()
                            .is_none_or(|a| Some(a) == r.get::<_, Option<&str>>(3))
                        && q.registration
                            .is_none_or(|g| Some(g) == r.get::<_, Option<Uuid>>(4));
                    (r.get(0), (passes, r.get(5)))
                })
                .collect();
            for (slot, accept) in reached.iter_mut().zip(accepted.iter_mut()) {
                let Some(id) = *slot else { continue };
                *slot = match next.get(&id) {
                    Some((true, _)) => {
                        *accept = true;
                        None
                    }
                    Some((false, further)) => *further,
                    None => None,
                };
            }
        }
        for (row, _) in batch.iter().zip(&accepted).filter(|(_, a)| **a) {
            found.push((row.get(0), row.get(1), row.get(2)));
            if found.len() == wanted {
                return Ok(found);
            }
        }
        if (batch.len() as i64) < REFERENCE_BATCH {
            return Ok(found);
        }
    }
}
