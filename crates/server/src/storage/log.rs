//! The event log: the durable, ordered, tenant-scoped statement log, and what its followers
//! read.
//!
//! Writers append; everything derived (the learner engines, the webhook outbox, the SSE
//! streams) *follows* the log: it keeps a watermark (the last sequence number it has applied),
//! waits on [`crate::storage::Storage::committed`], and reads [`EventLog::read_log`] past its
//! watermark. This works the same within one process and across processes sharing a
//! PostgreSQL database.

use serde::Serialize;
use uuid::Uuid;

use super::{StoreError, TenantId, keys};

/// A statement ready to be appended: validated, completed and serialised at the edge.
#[derive(Debug, Clone)]
pub struct NewStatement {
    pub id: Uuid,
    /// The statement as it will be served, without `stored` (assigned at commit).
    pub json: String,
    /// Hash of the statement's comparable form (xAPI statement comparison rules); two statements
    /// with the same id are "the same" iff their fingerprints are equal.
    pub fingerprint: [u8; 16],
    /// Canonical identifier of the actor (e.g. `mbox:mailto:a@b.c`), for the agent filter.
    pub actor: String,
    pub verb: String,
    /// Object activity id, when the object is an activity.
    pub activity: Option<String>,
    pub registration: Option<Uuid>,
    /// The statement this one voids, when its verb is `voided`.
    pub voids: Option<Uuid>,
    /// The statement this one's object refers to, when the object is a StatementRef (voiding
    /// statements included): a filtered query also returns the statements that target a
    /// matching one (xAPI Communication 2.1.3, "filter conditions").
    pub target: Option<Uuid>,
    /// The agents and activities it names besides its actor and object activity
    /// ([`super::keys::related_keys`]), for the `agent` filter and `related_agents` /
    /// `related_activities`.
    pub related: String,
    /// What the log's followers need of it (`crate::live::LiveInput` as JSON), decoded once at
    /// the edge and stored beside the statement, so that no follower parses statements again.
    /// `None` for statements that mean nothing to them.
    pub live: Option<String>,
    /// What its placeholders replaced, sealed under the tenant's vault key (when the tenant keeps
    /// a vault); stored in the statement's own transaction.
    pub vault: Option<Vec<u8>>,
}

/// What an append committed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Appended {
    /// The highest sequence number given to one of its statements; 0 when every statement was
    /// an identical re-post (nothing new for followers).
    pub through_seq: i64,
}

/// One committed statement as followers read it.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub tenant: TenantId,
    pub seq: i64,
    /// [`NewStatement::live`] as stored.
    pub live: Option<String>,
    /// The statement's JSON, only for rows stored before `live` existed (older data
    /// directories), so that followers can still decode them.
    pub legacy_json: Option<String>,
    /// Voided by a later statement (as of the read): what learns from the log's history, such
    /// as a model fit, leaves it out.
    pub voided: bool,
}

/// What an erasure removed from the event log and its satellites.
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct Erased {
    pub statements: u64,
    pub vault_entries: u64,
    pub actors: u64,
    pub index_rows: u64,
}

/// Filters of `GET /xAPI/statements`, resolved at the edge into canonical values.
#[derive(Debug, Clone, Default)]
pub struct StatementQuery {
    /// An Agent or Group's IFI: statements whose actor or object it is, or (with
    /// `related_agents`) any agent the statement names.
    pub agent: Option<String>,
    pub related_agents: bool,
    pub verb: Option<String>,
    /// An activity IRI: statements whose object it is, or (with `related_activities`) any
    /// activity the statement names.
    pub activity: Option<String>,
    pub related_activities: bool,
    pub registration: Option<Uuid>,
    /// Only statements stored strictly after this time (microseconds since the epoch).
    pub since_us: Option<i64>,
    /// Only statements stored at or before this time.
    pub until_us: Option<i64>,
    pub limit: usize,
    pub ascending: bool,
    /// Paging cursor: continue after (or before, when descending) this sequence number.
    pub cursor: Option<i64>,
}

impl StatementQuery {
    /// The related keys through which a statement passes the agent filter: the object, and with
    /// `related_agents` every other place.
    pub(crate) fn agent_keys(&self) -> Vec<String> {
        let Some(ifi) = &self.agent else {
            return Vec::new();
        };
        let mut keys = vec![keys::object_agent_key(ifi)];
        if self.related_agents {
            keys.push(keys::related_agent_key(ifi));
        }
        keys
    }

    /// The related keys through which a statement passes the activity filter: with
    /// `related_activities`, every activity besides the object.
    pub(crate) fn activity_keys(&self) -> Vec<String> {
        match &self.activity {
            Some(iri) if self.related_activities => vec![keys::related_activity_key(iri)],
            _ => Vec::new(),
        }
    }

    /// Whether a statement with these columns and related keys passes the filters on agent,
    /// verb, activity and registration.
    pub(crate) fn passes(
        &self,
        actor: &str,
        verb: &str,
        activity: Option<&str>,
        registration: Option<Uuid>,
        related: &str,
    ) -> bool {
        let related_key = |keys: Vec<String>| keys.iter().any(|k| keys::has_key(related, k));
        self.agent
            .as_deref()
            .is_none_or(|a| a == actor || related_key(self.agent_keys()))
            && self.verb.as_deref().is_none_or(|v| v == verb)
            && self
                .activity
                .as_deref()
                .is_none_or(|a| Some(a) == activity || related_key(self.activity_keys()))
            && self.registration.is_none_or(|r| Some(r) == registration)
    }
}

/// How many StatementRef hops a query follows from a statement towards one that matches its
/// filters. References can form chains (and, since a reference may name a statement stored
/// later, even cycles); ten hops is far beyond any chain a learning record holds.
pub(crate) const MAX_REFERENCE_HOPS: usize = 10;

/// Whether a query has a filter that statements can match through a reference. Without one,
/// every statement in the window is returned anyway.
pub(crate) fn follows_references(q: &StatementQuery) -> bool {
    q.agent.is_some() || q.verb.is_some() || q.activity.is_some() || q.registration.is_some()
}

/// One statement row of a query's answer: sequence number, `stored` time, JSON.
pub(crate) type QueryRow = (i64, i64, String);

/// The seq beyond which statements that match through a reference cannot make the page: when
/// the direct matches already fill it (one row more than `limit`), the last of them.
pub(crate) fn reference_bound(direct: &[QueryRow], limit: usize) -> Option<i64> {
    direct.get(limit).map(|r| r.0)
}

/// Merges lists of rows, each in the query's order, into one list in that order without
/// duplicates, at most `wanted` long: the rows of several index ranges, or the statements that
/// match directly and those that match through a reference.
pub(crate) fn merge_rows(
    lists: Vec<Vec<QueryRow>>,
    ascending: bool,
    wanted: usize,
) -> Vec<QueryRow> {
    let mut lists = lists.into_iter().filter(|l| !l.is_empty());
    let Some(mut rows) = lists.next() else {
        return Vec::new();
    };
    let mut merged = false;
    for list in lists {
        rows.extend(list);
        merged = true;
    }
    if merged {
        rows.sort_unstable_by_key(|r| if ascending { r.0 } else { -r.0 });
        rows.dedup_by_key(|r| r.0);
    }
    rows.truncate(wanted);
    rows
}

/// The page of `rows` (the query's rows in order, one more than `limit` when there is a next
/// page): the statements with `stored` spliced in, and the cursor of the next page.
pub(crate) fn page_of(mut rows: Vec<QueryRow>, limit: usize) -> StatementPage {
    let mut page = StatementPage::default();
    if rows.len() > limit {
        rows.truncate(limit);
        page.next_cursor = rows.last().map(|r| r.0);
    }
    page.statements = rows
        .into_iter()
        .map(|(_, stored, json)| with_stored(&json, stored))
        .collect();
    page
}

/// One page of statements (each a JSON text with `stored` included).
#[derive(Debug, Clone, Default)]
pub struct StatementPage {
    pub statements: Vec<String>,
    /// Cursor for the next page, when there is one.
    pub next_cursor: Option<i64>,
}

storage_trait! {
/// The durable, ordered, tenant-scoped statement log.
pub trait EventLog {
    /// Appends one request's statements atomically; resolves after the commit. Statements whose
    /// id exists with the same fingerprint are accepted as no-ops.
    async fn append(&self, tenant: TenantId, statements: Vec<NewStatement>) -> Result<Appended, StoreError>;

    /// One statement by id. `voided` selects voided statements only (the xAPI
    /// `voidedStatementId` parameter); otherwise voided statements are not returned.
    async fn statement(&self, tenant: TenantId, id: Uuid, voided: bool) -> Result<Option<String>, StoreError>;

    async fn query(&self, tenant: TenantId, query: StatementQuery) -> Result<StatementPage, StoreError>;

    /// The committed log after `after_seq`, every tenant, in sequence order, at most `limit`
    /// entries: what followers (and the start-up replay) read.
    async fn read_log(&self, after_seq: i64, limit: usize) -> Result<Vec<LogEntry>, StoreError>;

    /// The sequence number of `statement` and the entries at or below `through_seq` whose actor
    /// is its actor (voided or not), in sequence order: a learner's history, read again when
    /// one of their statements is voided. `None` when `statement` is unknown.
    async fn actor_history(&self, tenant: TenantId, statement: Uuid, through_seq: i64) -> Result<Option<(i64, Vec<LogEntry>)>, StoreError>;

    /// The highest committed sequence number (0 for an empty log).
    async fn head(&self) -> Result<i64, StoreError>;

    /// One tenant's statements that are not voided, after `after_seq`, in sequence order, at
    /// most `limit`: (sequence number, JSON). For analytics and access requests, page by page.
    async fn tenant_statements(&self, tenant: TenantId, after_seq: i64, limit: usize) -> Result<Vec<(i64, String)>, StoreError>;

    /// How many statements the tenant has (every tenant's when `None`).
    async fn count_statements(&self, tenant: Option<TenantId>) -> Result<u64, StoreError>;

    /// Removes a learner from the log: their statements and every statement whose JSON holds one
    /// of `needles`, their actor rows (`actor_ifis`), vault entries and index rows.
    async fn erase_learner(&self, tenant: TenantId, needles: Vec<String>, actor_ifis: Vec<String>) -> Result<Erased, StoreError>;

    /// Removes the tenant's statements stored before `before_us` (retention), with their vault
    /// entries and index rows, and the actor rows left without statements.
    async fn purge_before(&self, tenant: TenantId, before_us: i64) -> Result<Erased, StoreError>;

    /// How many of the tenant's statements were stored before `before_us` (retention).
    async fn count_stored_before(&self, tenant: TenantId, before_us: i64) -> Result<u64, StoreError>;
}
}

/// Every statement of one tenant (not voided), in order, read page by page.
pub async fn for_each_tenant_statement(
    log: &impl EventLog,
    tenant: TenantId,
    mut visit: impl FnMut(&str),
) -> Result<u64, StoreError> {
    let mut after = 0;
    let mut n = 0;
    loop {
        let page = log.tenant_statements(tenant, after, 5_000).await?;
        let Some(last) = page.last() else {
            return Ok(n);
        };
        after = last.0;
        for (_, json) in &page {
            visit(json);
        }
        n += page.len() as u64;
    }
}

/// Splices the commit-time `stored` property into a statement's JSON text, so that the text can
/// be stored before its `stored` value is known.
pub(crate) fn with_stored(json: &str, stored_us: i64) -> String {
    let stored = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(stored_us) * 1_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let mut out = String::with_capacity(json.len() + 48);
    out.push_str("{\"stored\":\"");
    out.push_str(&stored);
    out.push('"');
    if json.len() > 2 {
        out.push(',');
    }
    out.push_str(&json[1..]);
    out
}
