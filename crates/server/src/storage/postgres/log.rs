//! [`EventLog`] on PostgreSQL: appends go to the writer task ([`super::writer`]); reads use the
//! pool. Filtered queries read the `(tenant, key, seq)` index of their first filter in sequence
//! order and stop after one row more than the page. An agent is found as the actor or through a
//! related key (`statements_by_related`, GIN), an activity likewise: one range read per source,
//! merged by seq. The statements that match through a StatementRef are read from
//! `statements_targeting` and merged in too.

use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::writer::Request;
use super::{PostgresStorage, db_err};
use crate::storage::log::{
    MAX_REFERENCE_HOPS, QueryRow, follows_references, merge_rows, page_of, reference_bound,
    with_stored,
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
        let client = self.client().await?;
        let wanted = q.limit + 1;
        // One index range read per source, each in seq order and stopping after a page; every
        // row read is checked against every filter.
        let mut lists = Vec::new();
        for source in sources(&q) {
            let mut sql = PgQuery::new(
                "SELECT seq, stored_us, json FROM statements WHERE tenant_id = $1 AND NOT voided",
                tenant,
            );
            if let Some((clause, value)) = source {
                sql.push(&clause, vec![value]);
            }
            sql.push_keys(&q);
            sql.push_window(&q);
            sql.push(
                &format!(" ORDER BY seq {} LIMIT ?", direction(&q)),
                vec![Box::new(wanted as i64)],
            );
            let rows = sql.run(&client).await?;
            lists.push(
                rows.iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
                    .collect(),
            );
        }
        let direct = merge_rows(lists, q.ascending, wanted);
        let referencing = if follows_references(&q) {
            let bound = reference_bound(&direct, q.limit);
            read_referencing(&client, tenant, &q, bound).await?
        } else {
            Vec::new()
        };
        Ok(page_of(
            merge_rows(vec![direct, referencing], q.ascending, wanted),
            q.limit,
        ))
    }

    async fn read_log(&self, after_seq: i64, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT tenant_id, seq, live, voided FROM statements WHERE seq > $1 \
                 ORDER BY seq LIMIT $2",
            )
            .await
            .map_err(db_err)?;
        let rows = client
            .query(&stmt, &[&after_seq, &(limit as i64)])
            .await
            .map_err(db_err)?;
        Ok(rows.iter().map(log_entry).collect())
    }

    async fn actor_history(
        &self,
        tenant: TenantId,
        statement: Uuid,
        through_seq: i64,
    ) -> Result<Option<(i64, Vec<LogEntry>)>, StoreError> {
        let client = self.client().await?;
        let target = client
            .query_opt(
                "SELECT seq, actor FROM statements WHERE tenant_id = $1 AND statement_id = $2",
                &[&tenant, &statement],
            )
            .await
            .map_err(db_err)?;
        let Some(target) = target else {
            return Ok(None);
        };
        let stmt = client
            .prepare_cached(
                "SELECT tenant_id, seq, live, voided FROM statements WHERE tenant_id = $1 \
                 AND actor = $2 AND seq <= $3 ORDER BY seq",
            )
            .await
            .map_err(db_err)?;
        let actor: String = target.get(1);
        let rows = client
            .query(&stmt, &[&tenant, &actor, &through_seq])
            .await
            .map_err(db_err)?;
        Ok(Some((target.get(0), rows.iter().map(log_entry).collect())))
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

type SqlValue = Box<dyn ToSql + Sync + Send>;

/// SQL text with numbered parameters, built clause by clause (each `?` becomes the next `$n`).
struct PgQuery {
    text: String,
    args: Vec<SqlValue>,
}

/// `string_to_array` over the related keys: what `statements_by_related` indexes.
const RELATED_ARRAY: &str = "string_to_array(btrim(related, E'\\n'), E'\\n')";

/// The index ranges a query reads: a driving clause each (`None`: the tenant's statements).
fn sources(q: &StatementQuery) -> Vec<Option<(String, SqlValue)>> {
    let related = |key: String| -> Option<(String, SqlValue)> {
        Some((
            format!(" AND related <> '' AND {RELATED_ARRAY} @> ?"),
            Box::new(vec![key]),
        ))
    };
    if let Some(agent) = &q.agent {
        let mut sources = vec![Some((
            " AND actor = ?".to_owned(),
            Box::new(agent.clone()) as SqlValue,
        ))];
        sources.extend(q.agent_keys().into_iter().map(related));
        sources
    } else if let Some(activity) = &q.activity {
        let mut sources = vec![Some((
            " AND activity = ?".to_owned(),
            Box::new(activity.clone()) as SqlValue,
        ))];
        sources.extend(q.activity_keys().into_iter().map(related));
        sources
    } else {
        vec![None]
    }
}

impl PgQuery {
    /// Starts with `text`, whose `$1` is the tenant.
    fn new(text: &str, tenant: TenantId) -> PgQuery {
        PgQuery {
            text: text.to_owned(),
            args: vec![Box::new(tenant)],
        }
    }

    /// Appends `clause`, numbering each `?` in it and binding `values` to them in order.
    fn push(&mut self, clause: &str, values: Vec<SqlValue>) {
        let mut parts = clause.split('?');
        self.text.push_str(parts.next().unwrap_or_default());
        let mut values = values.into_iter();
        for part in parts {
            self.args
                .push(values.next().expect("a value for every placeholder"));
            self.text.push_str(&format!("${}", self.args.len()));
            self.text.push_str(part);
        }
    }

    /// A column filter that related keys also pass: `(column = ? OR position(? in related) > 0 …)`.
    fn push_key_filter(&mut self, column: &str, value: &str, keys: Vec<String>) {
        let mut clause = format!(" AND ({column} = ?");
        let mut values: Vec<SqlValue> = vec![Box::new(value.to_owned())];
        for key in keys {
            clause.push_str(" OR position(? in related) > 0");
            values.push(Box::new(format!("\n{key}\n")));
        }
        clause.push(')');
        self.push(&clause, values);
    }

    /// The filters on agent, verb, activity and registration.
    fn push_keys(&mut self, q: &StatementQuery) {
        if let Some(agent) = &q.agent {
            self.push_key_filter("actor", agent, q.agent_keys());
        }
        if let Some(verb) = &q.verb {
            self.push(" AND verb = ?", vec![Box::new(verb.clone())]);
        }
        if let Some(activity) = &q.activity {
            self.push_key_filter("activity", activity, q.activity_keys());
        }
        if let Some(registration) = q.registration {
            self.push(" AND registration = ?", vec![Box::new(registration)]);
        }
    }

    /// Since, until and the paging cursor: the window the returned statements lie in.
    fn push_window(&mut self, q: &StatementQuery) {
        if let Some(since) = q.since_us {
            self.push(" AND stored_us > ?", vec![Box::new(since)]);
        }
        if let Some(until) = q.until_us {
            self.push(" AND stored_us <= ?", vec![Box::new(until)]);
        }
        if let Some(cursor) = q.cursor {
            let after = if q.ascending { ">" } else { "<" };
            self.push(&format!(" AND seq {after} ?"), vec![Box::new(cursor)]);
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
            "SELECT statement_id, actor, verb, activity, registration, target, related \
             FROM statements WHERE tenant_id = $1 AND statement_id = ANY($2)",
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
            sql.push(&format!(" AND seq {before} ?"), vec![Box::new(bound)]);
        }
        sql.push(
            &format!(" ORDER BY seq {} LIMIT ?", direction(q)),
            vec![Box::new(REFERENCE_BATCH)],
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
                    let passes = q.passes(
                        r.get(1),
                        r.get(2),
                        r.get(3),
                        r.get(4),
                        r.get::<_, Option<&str>>(6).unwrap_or_default(),
                    );
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

/// A log entry from a row of `tenant_id, seq, live, voided`.
fn log_entry(r: &tokio_postgres::Row) -> LogEntry {
    LogEntry {
        tenant: r.get(0),
        seq: r.get(1),
        live: r.get(2),
        legacy_json: None,
        voided: r.get(3),
    }
}
