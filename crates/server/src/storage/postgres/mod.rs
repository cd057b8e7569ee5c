//! The PostgreSQL backend, for when one machine is not enough: every store in one database that
//! any number of learnpulse processes can share.
//!
//! - Reads and small writes go through a pool of connections (deadpool), each with its own
//!   cache of prepared statements.
//! - Appends go through one writer task per process with a connection of its own, which
//!   group-commits whatever has queued up, as the SQLite writer does ([`writer`]). Sequence
//!   numbers are allocated under a row lock on `log_head` inside the commit's transaction, so
//!   across processes commit order is sequence order: a follower that has read through `n`
//!   never later finds a statement below `n` (PostgreSQL's own sequences do not promise that).
//! - After each commit the writer sends `NOTIFY learnpulse_log, '<head>'`; a listener task on
//!   another dedicated connection turns notifications (from every process) into
//!   [`PostgresStorage::committed`], which followers wait on.
//! - The schema is a list of numbered migrations ([`MIGRATIONS`]), applied at start under an
//!   advisory lock (and by `learnpulse migrate`); `learnpulse_migrations` records which ran.

mod accounts;
mod attachments;
mod audit;
mod documents;
mod leadership;
mod log;
mod outbox;
mod privacy;
mod snapshots;
mod sql;
mod transfer;
mod writer;

pub use leadership::HeldLock;

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, NoTls};

use super::{Durability, StoreError};

/// The schema, in order. A migration never changes once released: later changes are new
/// entries.
pub const MIGRATIONS: [(i64, &str, &str); 8] = [
    (1, "accounts, privacy, audit", include_str!("schema.sql")),
    (
        2,
        "event log, outbox, snapshots",
        include_str!("log_schema.sql"),
    ),
    (
        3,
        "learner states kept one by one",
        include_str!("learner_states_schema.sql"),
    ),
    (
        4,
        "one audit chain per tenant",
        include_str!("audit_tenant_schema.sql"),
    ),
    (5, "xAPI documents", include_str!("documents_schema.sql")),
    (
        6,
        "xAPI attachments",
        include_str!("attachments_schema.sql"),
    ),
    (
        7,
        "targets of StatementRef statements",
        include_str!("targets_schema.sql"),
    ),
    (
        8,
        "related keys of statements",
        include_str!("related_schema.sql"),
    ),
];

/// The channel the writers notify after each commit.
const CHANNEL: &str = "learnpulse_log";
/// The channel changes to cached state are announced on (`storage::changes`).
const CHANGES_CHANNEL: &str = "learnpulse_changes";

#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// `postgres://user[:password]@host[:port]/database`
    pub url: String,
    /// Pooled connections for reads and small writes.
    pub pool_size: usize,
    /// Upper bound of statements in one group commit.
    pub max_batch_statements: usize,
    pub durability: Durability,
}

pub struct PostgresStorage {
    /// To open the connections of their own that duties' locks need.
    config: tokio_postgres::Config,
    pool: Pool,
    committed: watch::Sender<i64>,
    /// Changes announced by other processes (`storage::changes`), from the listener.
    changes: tokio::sync::broadcast::Sender<crate::storage::Change>,
    /// Tags this process's announcements, so that its listener skips them.
    origin: u64,
    sender: Mutex<Option<mpsc::Sender<writer::Request>>>,
    writer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    listener: tokio::task::JoinHandle<()>,
}

/// Maps a driver error to [`StoreError`]: a lost connection is `Unavailable`, the rest
/// `Internal` (with the server's message, which names the constraint or column).
pub(super) fn db_err(e: tokio_postgres::Error) -> StoreError {
    // Class 08 (connection exception) and 57 (operator intervention: a shutdown, a terminated
    // backend) mean the server went away, not that the request was wrong.
    let gone = e
        .code()
        .is_some_and(|c| c.code().starts_with("08") || c.code().starts_with("57"));
    if e.is_closed() || gone {
        return StoreError::Unavailable(format!("PostgreSQL connection lost: {e}"));
    }
    match e.as_db_error() {
        Some(db) => StoreError::Internal(format!("PostgreSQL: {}", db.message())),
        None => StoreError::Internal(format!("PostgreSQL: {e}")),
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Unavailable(format!("PostgreSQL pool: {e}"))
}

/// True when the error is a unique-constraint violation (SQLSTATE 23505).
pub(super) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// The URL without its password, for logs and errors.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

fn parse(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    tokio_postgres::Config::from_str(url)
        .map_err(|e| StoreError::Internal(format!("invalid PostgreSQL URL {}: {e}", redacted(url))))
}

/// Connects one dedicated connection (the writer's, the listener's); its I/O runs on a task.
async fn connect(
    config: &tokio_postgres::Config,
) -> Result<
    (
        tokio_postgres::Client,
        tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
    ),
    StoreError,
> {
    // Whatever the reason (refused, unknown database, connections not allowed), a process that
    // cannot connect cannot serve: unavailable, not a failed request.
    config
        .connect(NoTls)
        .await
        .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))
}

/// Drops the database `url` names, connections and all (the counterpart of the creation at
/// open; the bench's cluster suite drops the database it ran on).
pub async fn drop_database(url: &str) -> Result<(), StoreError> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Internal(format!("{url}: {e}")))?;
    let name = config.get_dbname().unwrap_or("postgres").to_owned();
    let mut admin = config.clone();
    admin.dbname("postgres");
    let (client, connection) = connect(&admin).await?;
    tokio::spawn(connection);
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        .await
        .map_err(|e| StoreError::Internal(e.to_string()))
}

/// Creates the database when it does not exist yet (connecting to the server's `postgres`
/// database to do so), so that `--storage postgres://…/newdb` works on a fresh server.
async fn ensure_database(config: &tokio_postgres::Config) -> Result<(), StoreError> {
    let name = config.get_dbname().unwrap_or("postgres").to_owned();
    match connect(config).await {
        Ok(_) => return Ok(()),
        Err(_) if name == "postgres" => return Ok(()),
        Err(_) => {}
    }
    let mut admin = config.clone();
    admin.dbname("postgres");
    let (client, connection) = connect(&admin).await?;
    tokio::spawn(connection);
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    match client
        .batch_execute(&format!("CREATE DATABASE {quoted}"))
        .await
    {
        Ok(()) => {
            tracing::info!(database = %name, "PostgreSQL database created");
            Ok(())
        }
        // Another process created it meanwhile (caught by the check, or, when both passed it,
        // by the catalog's unique index).
        Err(e)
            if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE)
                || is_unique_violation(&e) =>
        {
            Ok(())
        }
        Err(e) => Err(db_err(e)),
    }
}

/// Applies the migrations this database has not seen, one transaction each, under an advisory
/// lock so that processes starting together do not race. Returns how many ran.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<usize, StoreError> {
    let tx = client.transaction().await.map_err(db_err)?;
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(1819308900);
         CREATE TABLE IF NOT EXISTS learnpulse_migrations (
             version     BIGINT PRIMARY KEY,
             name        TEXT NOT NULL,
             applied_us  BIGINT NOT NULL
         );",
    )
    .await
    .map_err(db_err)?;
    let done: Vec<i64> = tx
        .query("SELECT version FROM learnpulse_migrations", &[])
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut applied = 0;
    for (version, name, sql) in MIGRATIONS {
        if done.contains(&version) {
            continue;
        }
        tx.batch_execute(sql).await.map_err(|e| {
            StoreError::Internal(format!("migration {version} ({name}): {}", db_err(e)))
        })?;
        tx.execute(
            "INSERT INTO learnpulse_migrations (version, name, applied_us) VALUES ($1, $2, $3)",
            &[&version, &name, &super::now_us()],
        )
        .await
        .map_err(db_err)?;
        tracing::info!(version, name, "PostgreSQL migration applied");
        applied += 1;
    }
    tx.commit().await.map_err(db_err)?;
    fill_related_keys(client).await?;
    Ok(applied)
}

/// Computes the related keys of the statements stored before they existed (an upgrade), in
/// batches. New statements always have them, so after that this finds nothing, at once.
async fn fill_related_keys(client: &tokio_postgres::Client) -> Result<(), StoreError> {
    let mut filled = 0usize;
    loop {
        let rows = client
            .query(
                "SELECT seq, json FROM statements WHERE related IS NULL ORDER BY seq LIMIT 5000",
                &[],
            )
            .await
            .map_err(db_err)?;
        if rows.is_empty() {
            break;
        }
        let seqs: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let keys: Vec<String> = rows
            .iter()
            .map(|r| {
                serde_json::from_str(r.get::<_, &str>(1))
                    .map(|v| super::keys::related_keys(&v))
                    .unwrap_or_default()
            })
            .collect();
        client
            .execute(
                "UPDATE statements AS s SET related = u.related \
                 FROM unnest($1::bigint[], $2::text[]) AS u (seq, related) WHERE s.seq = u.seq",
                &[&seqs, &keys],
            )
            .await
            .map_err(db_err)?;
        filled += rows.len();
    }
    if filled > 0 {
        tracing::info!(
            filled,
            "related keys computed for statements stored before them"
        );
    }
    Ok(())
}

impl PostgresStorage {
    /// Connects (creating the database if needed), migrates the schema, and starts the writer
    /// and the listener.
    pub async fn open(options: &PostgresOptions) -> Result<PostgresStorage, StoreError> {
        let mut config = parse(&options.url)?;
        if config.get_application_name().is_none() {
            config.application_name("learnpulse");
        }
        config.connect_timeout(Duration::from_secs(10));
        ensure_database(&config).await?;

        let (mut client, connection) = connect(&config).await?;
        let io = tokio::spawn(connection);
        migrate(&mut client).await?;
        drop(client);
        let _ = io.await;

        let pool = Pool::builder(Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        ))
        .max_size(options.pool_size.max(2))
        .build()
        .map_err(|e| StoreError::Internal(format!("PostgreSQL pool: {e}")))?;

        let head = {
            let client = pool.get().await.map_err(pool_err)?;
            let row = client
                .query_one("SELECT seq FROM log_head WHERE id = 1", &[])
                .await
                .map_err(db_err)?;
            row.get::<_, i64>(0)
        };
        let committed = watch::Sender::new(head);
        let changes = tokio::sync::broadcast::Sender::new(crate::storage::changes::BACKLOG);
        let origin: u64 = rand::random();
        let listener = tokio::spawn(listen(
            config.clone(),
            committed.clone(),
            changes.clone(),
            origin,
        ));

        let (tx, rx) = mpsc::channel(4_096);
        let writer = writer::Writer::start(
            config.clone(),
            options.durability,
            committed.clone(),
            options.max_batch_statements,
        )
        .await?;
        let handle = tokio::spawn(writer.run(rx));
        Ok(PostgresStorage {
            config,
            pool,
            committed,
            changes,
            origin,
            sender: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            listener,
        })
    }

    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<crate::storage::Change> {
        self.changes.subscribe()
    }

    /// `NOTIFY learnpulse_changes` with `<origin> <change>`: every other process's listener
    /// passes it on.
    pub(crate) async fn announce(&self, change: &crate::storage::Change) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "SELECT pg_notify($1, $2)",
                &[
                    &CHANGES_CHANNEL,
                    &format!("{:016x} {}", self.origin, change.encode()),
                ],
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// The migrations this database has applied, oldest first.
    pub async fn migrations(&self) -> Result<Vec<super::Migration>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT version, name, applied_us FROM learnpulse_migrations ORDER BY version",
                &[],
            )
            .await
            .map_err(db_err)?;
        Ok(rows
            .iter()
            .map(|r| super::Migration {
                version: r.get(0),
                name: r.get(1),
                applied_us: r.get(2),
            })
            .collect())
    }

    /// A pooled connection.
    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_err)
    }

    /// The head of the log, as this process and every other has committed it.
    pub fn committed(&self) -> watch::Receiver<i64> {
        self.committed.subscribe()
    }

    /// Sends a request to the writer task and waits for its answer.
    async fn ask_writer<T>(
        &self,
        request: impl FnOnce(tokio::sync::oneshot::Sender<Result<T, StoreError>>) -> writer::Request,
    ) -> Result<T, StoreError> {
        let sender = self.sender.lock().unwrap().clone();
        let sender =
            sender.ok_or_else(|| StoreError::Unavailable("the writer is not running".into()))?;
        let (reply, wait) = tokio::sync::oneshot::channel();
        sender
            .send(request(reply))
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        wait.await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?
    }

    /// Stops the writer after it has committed everything queued.
    pub async fn shutdown(&self) {
        self.sender.lock().unwrap().take();
        let handle = self.writer.lock().unwrap().take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
        self.listener.abort();
    }
}

/// Turns `NOTIFY learnpulse_log` from any process into the local head; reconnects when the
/// connection drops, and reads the head itself after every (re)connection and once a second,
/// so that a lost notification delays followers by a second at most. `NOTIFY
/// learnpulse_changes` from any other process becomes `changes`; announcements sent while the
/// listener was reconnecting are lost, so after a reconnection it announces
/// [`Change::Everything`](crate::storage::Change::Everything).
async fn listen(
    config: tokio_postgres::Config,
    committed: watch::Sender<i64>,
    changes: tokio::sync::broadcast::Sender<crate::storage::Change>,
    origin: u64,
) {
    let own = format!("{origin:016x}");
    let advance = |head: i64| {
        committed.send_if_modified(|h| {
            let grew = head > *h;
            *h = (*h).max(head);
            grew
        });
    };
    let mut first = true;
    loop {
        let Ok((client, mut connection)) = connect(&config).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let (notes_tx, mut notes) = mpsc::unbounded_channel();
        let io = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(message)) = messages.next().await {
                if let AsyncMessage::Notification(n) = message {
                    let _ = notes_tx.send((n.channel().to_owned(), n.payload().to_owned()));
                }
            }
        });
        if client
            .batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {CHANGES_CHANNEL}"))
            .await
            .is_err()
        {
            io.abort();
            continue;
        }
        if !first {
            let _ = changes.send(crate::storage::Change::Everything);
        }
        first = false;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                note = notes.recv() => match note {
                    Some((channel, payload)) if channel == CHANNEL => {
                        if let Ok(head) = payload.parse::<i64>() {
                            advance(head);
                        }
                    }
                    Some((_, payload)) => {
                        let (from, change) = payload.split_once(' ').unwrap_or(("", &payload));
                        if from != own
                            && let Some(change) = crate::storage::Change::decode(change)
                        {
                            let _ = changes.send(change);
                        }
                    }
                    None => break, // the connection ended
                },
                _ = tick.tick() => match client.query_one("SELECT seq FROM log_head WHERE id = 1", &[]).await {
                    Ok(row) => advance(row.get(0)),
                    Err(_) => break,
                },
            }
        }
        io.abort();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
