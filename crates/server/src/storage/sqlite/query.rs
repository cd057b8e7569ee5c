//! `GET /xAPI/statements` queries against the log and its deferred indexes.
//!
//! A filter by agent, activity or registration is answered from the index database (`idx`, see
//! `index.rs`) up to its watermark, plus a scan of the log's tail beyond the watermark, which
//! is only what the indexer has not reached yet (a fraction of a second of ingest). An agent is
//! found as the actor (`by_actor`) or through a related key (`by_related`: the object, or with
//! `related_agents` any agent the statement names), an activity likewise; each such index range
//! is read in seq order and the ranges are merged. Every row read is checked against every
//! filter on the statement row itself (the related keys are in its `related` column). Both reads happen in one read
//! transaction, so the result is exactly the committed log as of that transaction.
//!
//! A filtered query also returns the statements that match through a reference: a StatementRef
//! (a voiding statement, say) whose target, or its target's target, matches the filters, even
//! when that target is voided. Those are read from the `statements_targeting` index (only
//! statements with a StatementRef object are in it) and merged with the direct matches by seq.

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, params};

use crate::storage::log::{
    MAX_REFERENCE_HOPS, QueryRow, follows_references, merge_rows, page_of, reference_bound,
};
use crate::storage::{LogEntry, StatementPage, StatementQuery, StoreError, TenantId};

/// Looks up an interned id; `None` means nothing was ever stored with that value.
fn interned(
    conn: &Connection,
    table: &str,
    column: &str,
    tenant: TenantId,
    value: &str,
) -> Result<Option<i64>, StoreError> {
    let sql = format!("SELECT id FROM main.{table} WHERE tenant_id = ?1 AND {column} = ?2");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![tenant, value], |r| r.get(0))
        .optional()?)
}

/// SQL text with numbered parameters, built clause by clause.
#[derive(Default)]
struct QueryBuilder {
    text: String,
    args: Vec<Sql>,
}

impl QueryBuilder {
    /// Appends `clause`, numbering each `?` in it and binding `values` to them in order.
    fn push(&mut self, clause: &str, values: impl IntoIterator<Item = Sql>) {
        let mut values = values.into_iter();
        let mut parts = clause.split('?');
        self.text.push_str(parts.next().unwrap_or_default());
        for part in parts {
            self.args
                .push(values.next().expect("a value for every placeholder"));
            self.text.push_str(&format!("?{}", self.args.len()));
            self.text.push_str(part);
        }
        debug_assert!(values.next().is_none(), "more values than placeholders");
    }
}

/// One part of the log a query reads.
enum Part {
    /// Every statement of the tenant (no deferred filter).
    All,
    /// The statements the indexer has not reached (`seq > watermark`).
    Tail,
    /// The statements found through a deferred index (`seq <= watermark`): the index table, its
    /// key predicate on alias `c`, and the key values.
    Indexed {
        table: &'static str,
        key: &'static str,
        values: Vec<Sql>,
    },
}

/// A filter that a statement passes through a column (its interned id) or a related key.
struct KeyFilter {
    /// The interned id; `None` when no statement has it in the column.
    id: Option<i64>,
    /// The related keys that pass too.
    keys: Vec<String>,
}

impl KeyFilter {
    /// `(s.column = ? OR instr(s.related, ?) > 0 …)`.
    fn push_predicate(&self, sql: &mut QueryBuilder, column: &str) {
        let mut alternatives = Vec::new();
        let mut values: Vec<Sql> = Vec::new();
        if let Some(id) = self.id {
            alternatives.push(format!("s.{column} = ?"));
            values.push(id.into());
        }
        for key in &self.keys {
            alternatives.push("instr(s.related, ?) > 0".to_owned());
            values.push(format!("\n{key}\n").into());
        }
        sql.push(&format!(" AND ({})", alternatives.join(" OR ")), values);
    }

    /// The index ranges that hold every statement passing the filter.
    fn sources(&self, tenant: TenantId, column_index: Part) -> Vec<Part> {
        let mut parts = Vec::new();
        if self.id.is_some() {
            parts.push(column_index);
        }
        for key in &self.keys {
            parts.push(Part::Indexed {
                table: "idx.by_related",
                key: "c.tenant_id = ? AND c.key = ?",
                values: vec![tenant.into(), key.clone().into()],
            });
        }
        parts
    }
}

/// The resolved filters of one query.
struct Filters {
    tenant: TenantId,
    watermark: i64,
    agent: Option<KeyFilter>,
    verb: Option<i64>,
    activity: Option<KeyFilter>,
    registration: Option<Sql>,
    since_us: Option<i64>,
    until_us: Option<i64>,
    cursor: Option<i64>,
    ascending: bool,
}

impl Filters {
    /// Appends the checks of agent, verb, activity and registration on alias `s`.
    fn push_keys(&self, sql: &mut QueryBuilder) {
        if let Some(agent) = &self.agent {
            agent.push_predicate(sql, "actor_id");
        }
        if let Some(verb) = self.verb {
            sql.push(" AND s.verb_id = ?", [verb.into()]);
        }
        if let Some(activity) = &self.activity {
            activity.push_predicate(sql, "activity_id");
        }
        if let Some(r) = &self.registration {
            sql.push(" AND s.registration = ?", [r.clone()]);
        }
    }

    /// Appends the window: since, until and the paging cursor, on the seq column `seq`.
    fn push_window(&self, sql: &mut QueryBuilder, seq: &str) {
        if let Some(since) = self.since_us {
            sql.push(" AND s.stored_us > ?", [since.into()]);
        }
        if let Some(until) = self.until_us {
            sql.push(" AND s.stored_us <= ?", [until.into()]);
        }
        if let Some(cursor) = self.cursor {
            sql.push(&format!(" AND {seq} {} ?", self.after()), [cursor.into()]);
        }
    }

    /// The comparison that means "later in the query's order".
    fn after(&self) -> &'static str {
        if self.ascending { ">" } else { "<" }
    }

    fn direction(&self) -> &'static str {
        if self.ascending { "ASC" } else { "DESC" }
    }

    /// The deferred index ranges that drive the query: those of the first filter that has
    /// one. Empty when no filter has one (or the index is not to be read).
    fn sources(&self) -> Vec<Part> {
        if let Some(agent) = &self.agent {
            agent.sources(
                self.tenant,
                Part::Indexed {
                    table: "idx.by_actor",
                    key: "c.actor_id = ?",
                    values: agent.id.into_iter().map(Sql::from).collect(),
                },
            )
        } else if let Some(activity) = &self.activity {
            activity.sources(
                self.tenant,
                Part::Indexed {
                    table: "idx.by_activity",
                    key: "c.activity_id = ?",
                    values: activity.id.into_iter().map(Sql::from).collect(),
                },
            )
        } else if let Some(r) = &self.registration {
            vec![Part::Indexed {
                table: "idx.by_registration",
                key: "c.tenant_id = ? AND c.registration = ?",
                values: vec![self.tenant.into(), r.clone()],
            }]
        } else {
            Vec::new()
        }
    }
}

type Row = QueryRow;

/// Reads up to `limit` statements of one part, in the query's order. Each part's scan follows
/// the order of the index it reads, so it stops after `limit` rows instead of sorting every match.
fn read_part(
    tx: &Connection,
    part: &Part,
    f: &Filters,
    limit: usize,
) -> Result<Vec<Row>, StoreError> {
    let mut sql = QueryBuilder::default();
    let seq = match part {
        Part::All => {
            sql.push(
                "SELECT s.seq, s.stored_us, s.json FROM main.statements AS s WHERE s.tenant_id = ?",
                [f.tenant.into()],
            );
            "s.seq"
        }
        Part::Tail => {
            sql.push(
                "SELECT s.seq, s.stored_us, s.json FROM main.statements AS s WHERE s.tenant_id = ? AND s.seq > ?",
                [f.tenant.into(), f.watermark.into()],
            );
            "s.seq"
        }
        Part::Indexed { table, key, values } => {
            sql.push(
                &format!(
                    "SELECT s.seq, s.stored_us, s.json FROM {table} AS c CROSS JOIN main.statements AS s \
                     ON s.seq = c.seq WHERE {key} AND c.seq <= ? AND s.tenant_id = ?"
                ),
                values.iter().cloned().chain([f.watermark.into(), f.tenant.into()]),
            );
            "c.seq"
        }
    };
    sql.push(" AND s.voided = 0", []);
    f.push_keys(&mut sql);
    f.push_window(&mut sql, seq);
    sql.push(
        &format!(" ORDER BY {seq} {} LIMIT ?", f.direction()),
        [(limit as i64).into()],
    );

    let mut stmt = tx.prepare_cached(&sql.text)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(sql.args), |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Answers `q` for `tenant`. With `use_index`, a filter on agent, activity or registration is
/// driven by the deferred index up to its watermark plus the log's tail; without it (while the
/// index is being rebuilt), by the log alone: the same rows, read more slowly.
pub(super) fn query_statements(
    conn: &Connection,
    tenant: TenantId,
    q: &StatementQuery,
    use_index: bool,
) -> Result<StatementPage, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let watermark: i64 = if use_index {
        tx.query_row(
            "SELECT indexed_through FROM idx.progress WHERE id = 1",
            [],
            |r| r.get(0),
        )?
    } else {
        0
    };

    let agent = match &q.agent {
        None => None,
        Some(ifi) => Some(KeyFilter {
            id: interned(&tx, "actors", "ifi", tenant, ifi)?,
            keys: q.agent_keys(),
        }),
    };
    let verb = match &q.verb {
        None => None,
        Some(iri) => match interned(&tx, "verbs", "iri", tenant, iri)? {
            Some(id) => Some(id),
            None => return Ok(StatementPage::default()),
        },
    };
    let activity = match &q.activity {
        None => None,
        Some(iri) => {
            let keys = q.activity_keys();
            let id = interned(&tx, "activities", "iri", tenant, iri)?;
            if id.is_none() && keys.is_empty() {
                return Ok(StatementPage::default());
            }
            Some(KeyFilter { id, keys })
        }
    };
    let filters = Filters {
        tenant,
        watermark,
        agent,
        verb,
        activity,
        registration: q.registration.map(|r| Sql::Blob(r.as_bytes().to_vec())),
        since_us: q.since_us,
        until_us: q.until_us,
        cursor: q.cursor,
        ascending: q.ascending,
    };
    // One row more than the page, to know whether there is a next page.
    let wanted = q.limit + 1;
    let sources = if use_index {
        filters.sources()
    } else {
        Vec::new()
    };
    let read_indexed = || -> Result<Vec<Row>, StoreError> {
        let lists = sources
            .iter()
            .map(|part| read_part(&tx, part, &filters, wanted))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(merge_rows(lists, q.ascending, wanted))
    };
    // The index holds the statements up to the watermark, the tail those after it: oldest
    // first reads the index before the tail, newest first the other way round.
    let mut rows = if sources.is_empty() {
        read_part(&tx, &Part::All, &filters, wanted)?
    } else if q.ascending {
        read_indexed()?
    } else {
        read_part(&tx, &Part::Tail, &filters, wanted)?
    };
    if !sources.is_empty() && rows.len() < wanted {
        let more = if q.ascending {
            read_part(&tx, &Part::Tail, &filters, wanted - rows.len())?
        } else {
            read_indexed()?
        };
        rows.extend(more.into_iter().take(wanted - rows.len()));
    }
    let referencing = if follows_references(q) {
        read_referencing(&tx, q, &filters, reference_bound(&rows, q.limit), wanted)?
    } else {
        Vec::new()
    };
    Ok(page_of(
        merge_rows(vec![rows, referencing], q.ascending, wanted),
        q.limit,
    ))
}

/// Up to `wanted` statements in the query's window, in its order and before `bound`, that match
/// through a reference: not voided, with a StatementRef whose chain of targets reaches a
/// statement that passes the filters of `q`.
fn read_referencing(
    tx: &Connection,
    q: &StatementQuery,
    f: &Filters,
    bound: Option<i64>,
    wanted: usize,
) -> Result<Vec<Row>, StoreError> {
    let mut sql = QueryBuilder::default();
    sql.push(
        "SELECT s.seq, s.stored_us, s.json, s.target FROM main.statements AS s \
         WHERE s.tenant_id = ? AND s.target IS NOT NULL AND s.voided = 0",
        [f.tenant.into()],
    );
    f.push_window(&mut sql, "s.seq");
    if let Some(bound) = bound {
        // Rows past the direct matches' last cannot make the page.
        let before = if f.ascending { "<" } else { ">" };
        sql.push(&format!(" AND s.seq {before} ?"), [bound.into()]);
    }
    sql.push(&format!(" ORDER BY s.seq {}", f.direction()), []);

    let mut stmt = tx.prepare_cached(&sql.text)?;
    let mut candidates = stmt.query(rusqlite::params_from_iter(sql.args))?;
    let mut found = Vec::new();
    while found.len() < wanted
        && let Some(row) = candidates.next()?
    {
        if reaches_match(tx, q, f.tenant, row.get(3)?)? {
            found.push((row.get(0)?, row.get(1)?, row.get(2)?));
        }
    }
    Ok(found)
}

/// Whether the statement `target` names, or one its own reference leads to, passes the filters
/// of `q` ([`StatementQuery::passes`], on the statement's values). Voided statements count: a
/// voiding statement is returned for what it voids.
fn reaches_match(
    tx: &Connection,
    q: &StatementQuery,
    tenant: TenantId,
    mut target: Vec<u8>,
) -> Result<bool, StoreError> {
    let mut lookup = tx.prepare_cached(
        "SELECT a.ifi, v.iri, c.iri, s.registration, s.related, s.target \
         FROM main.statements AS s JOIN main.actors AS a ON a.id = s.actor_id \
         JOIN main.verbs AS v ON v.id = s.verb_id \
         LEFT JOIN main.activities AS c ON c.id = s.activity_id \
         WHERE s.tenant_id = ?1 AND s.statement_id = ?2",
    )?;
    for _ in 0..MAX_REFERENCE_HOPS {
        let mut rows = lookup.query(params![tenant, target])?;
        let Some(row) = rows.next()? else {
            return Ok(false);
        };
        let registration = row
            .get::<_, Option<Vec<u8>>>(3)?
            .and_then(|b| uuid::Uuid::from_slice(&b).ok());
        let related: Option<String> = row.get(4)?;
        if q.passes(
            &row.get::<_, String>(0)?,
            &row.get::<_, String>(1)?,
            row.get::<_, Option<String>>(2)?.as_deref(),
            registration,
            related.as_deref().unwrap_or_default(),
        ) {
            return Ok(true);
        }
        match row.get::<_, Option<Vec<u8>>>(5)? {
            Some(next) => target = next,
            None => return Ok(false),
        }
    }
    Ok(false)
}

/// A log entry from a row of `tenant_id, seq, live, json-when-live-is-NULL, voided`.
pub(super) fn log_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<LogEntry> {
    Ok(LogEntry {
        tenant: r.get(0)?,
        seq: r.get(1)?,
        live: r.get::<_, Option<String>>(2)?.filter(|l| !l.is_empty()),
        legacy_json: r.get(3)?,
        voided: r.get(4)?,
    })
}

/// The entries through `through_seq` by the actor of `statement` ([`crate::storage::EventLog::actor_history`]):
/// from the `by_actor` index up to its watermark (with `use_index`), then the log's tail.
pub(super) fn actor_history(
    conn: &Connection,
    tenant: TenantId,
    statement: uuid::Uuid,
    through_seq: i64,
    use_index: bool,
) -> Result<Option<(i64, Vec<LogEntry>)>, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let Some((seq, actor)) = tx
        .prepare_cached(
            "SELECT seq, actor_id FROM main.statements WHERE tenant_id = ?1 AND statement_id = ?2",
        )?
        .query_row(params![tenant, statement.as_bytes().to_vec()], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })
        .optional()?
    else {
        return Ok(None);
    };
    let watermark: i64 = if use_index {
        tx.query_row(
            "SELECT indexed_through FROM idx.progress WHERE id = 1",
            [],
            |r| r.get(0),
        )?
    } else {
        0
    };
    const COLUMNS: &str =
        "s.tenant_id, s.seq, s.live, CASE WHEN s.live IS NULL THEN s.json END, s.voided";
    let mut entries = Vec::new();
    if watermark > 0 {
        let mut indexed = tx.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM idx.by_actor AS c JOIN main.statements AS s ON s.seq = c.seq \
             WHERE c.actor_id = ?1 AND c.seq <= min(?2, ?3) ORDER BY c.seq"
        ))?;
        let rows = indexed.query_map(params![actor, watermark, through_seq], log_entry)?;
        entries = rows.collect::<Result<Vec<_>, _>>()?;
    }
    let mut tail = tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM main.statements AS s WHERE s.tenant_id = ?1 AND s.seq > ?2 \
         AND s.seq <= ?3 AND s.actor_id = ?4 ORDER BY s.seq"
    ))?;
    let rows = tail.query_map(params![tenant, watermark, through_seq, actor], log_entry)?;
    for row in rows {
        entries.push(row?);
    }
    Ok(Some((seq, entries)))
}
