//! Storage: everything learnpulse keeps, behind one trait per concern.
//!
//! Only the implementations under this module write SQL, and nothing outside it names a
//! backend. The rest of the server holds a [`Storage`], the enum of backends (the svix-server
//! pattern), opened by [`open`] from the configuration:
//!
//! - [`sqlite`]: the embedded default, SQLite in WAL mode in the data directory;
//! - [`postgres`]: PostgreSQL, when one machine is not enough (`storage = "postgres://…"`).
//!
//! The concerns, each a trait written once in its own file with [`storage_trait!`], which also
//! writes the enum's dispatch:
//!
//! - [`log::EventLog`]: the durable, ordered statement log; followers read it from a sequence
//!   number on ([`Storage::committed`] tells them when it has grown); [`keys`] computes what
//!   queries find a statement by;
//! - [`accounts::AccountStore`]: tenants, API keys, per-tenant settings;
//! - [`privacy::PrivacyStore`]: sealed tenant secrets, policies, consents, vault, DP budgets;
//! - [`audit::AuditStore`]: the audit chain, incidents, subject requests;
//! - [`outbox::OutboxStore`]: webhook receivers and the messages owed to them;
//! - [`documents::DocumentStore`]: the xAPI state, agent profile and activity profile documents;
//! - [`attachments::AttachmentStore`]: statement attachments by SHA-256;
//! - [`snapshots::SnapshotStore`]: engine snapshots (derived data, for fast restarts);
//! - [`transfer::TransferStore`]: every table read out and written in, to move an installation
//!   between backends (`learnpulse storage copy`).
//!
//! The contract every backend keeps, tested by one suite run against each
//! (`tests/storage.rs`):
//!
//! - [`log::EventLog::append`] returns only after the statements are committed under the
//!   configured [`Durability`]; concurrent appends are group-committed.
//! - One append is atomic: all of its statements are stored, or none (a conflict rolls back that
//!   request only, never the other requests that share its transaction).
//! - Sequence numbers are commit order: a follower that has read through `n` never later finds a
//!   committed statement below `n`. `stored` timestamps increase with the sequence number.
//! - Every read is scoped to one tenant.

use tokio::sync::watch;

pub use crate::config::Durability;

/// Runs `$e` with `$s` bound to the backend inside `$storage` (one place lists the backends).
macro_rules! each_backend {
    ($storage:expr, $s:ident => $e:expr) => {
        match $storage {
            $crate::storage::Storage::Sqlite($s) => $e,
            $crate::storage::Storage::Postgres($s) => $e,
        }
    };
}

/// Declares a storage trait of async methods and implements it for [`Storage`] by dispatching
/// each method to the backend, so that a method is written once in the trait and once per
/// backend, never a third time in the enum.
macro_rules! storage_trait {
    (
        $(#[$trait_meta:meta])*
        pub trait $trait:ident {
            $(
                $(#[$meta:meta])*
                async fn $name:ident(&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty;
            )*
        }
    ) => {
        $(#[$trait_meta])*
        pub trait $trait: Send + Sync {
            $(
                $(#[$meta])*
                fn $name(&self $(, $arg: $ty)*)
                    -> impl std::future::Future<Output = $ret> + Send;
            )*
        }

        impl $trait for $crate::storage::Storage {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    each_backend!(self, s => s.$name($($arg),*).await)
                }
            )*
        }
    };
}

pub mod accounts;
pub mod attachments;
pub mod audit;
pub mod changes;
pub mod documents;
pub mod keys;
pub mod leadership;
pub mod log;
pub mod outbox;
pub mod postgres;
pub mod privacy;
pub mod snapshots;
pub mod sqlite;
pub mod transfer;

pub use accounts::{AccountStore, ApiKeyRecord, Role, Tenant};
pub use attachments::AttachmentStore;
pub use audit::{AuditStore, Incident, SubjectRequest};
pub use changes::Change;
pub use documents::DocumentStore;
pub use leadership::{Duty, Leadership};
pub use log::{Appended, Erased, EventLog, LogEntry, NewStatement, StatementPage, StatementQuery};
pub use outbox::OutboxStore;
pub use privacy::{LedgerEntry, PrivacyStore, SealedSecret, SpendError, StoredSettings};
pub use snapshots::{KeptLearner, Snapshot, SnapshotStore};
pub use transfer::TransferStore;

use crate::config::Config;

pub type TenantId = i64;

/// The storage backends. The rest of the server holds a `Storage` and never names a backend.
pub enum Storage {
    Sqlite(sqlite::SqliteStorage),
    Postgres(postgres::PostgresStorage),
}

/// Where the configuration says the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The embedded backend's files in this directory.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL connection URL (`postgres://user@host:port/database`).
    Postgres(String),
}

impl Location {
    /// `postgres://…` / `postgresql://…` select PostgreSQL; `sqlite://DIR` or a plain
    /// directory select the embedded backend in that directory.
    pub fn parse(url: &str) -> Location {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Location::Postgres(url.to_owned())
        } else {
            let dir = url.strip_prefix("sqlite://").unwrap_or(url);
            Location::Sqlite(dir.into())
        }
    }

    /// The configured location: `storage.url` when set, else the data directory.
    pub fn of(config: &Config) -> Location {
        match &config.storage.url {
            Some(url) => Location::parse(url),
            None => Location::Sqlite(config.data_dir.clone()),
        }
    }

    /// For logs and errors: never prints a password.
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(dir) => format!("SQLite in {}", dir.display()),
            Location::Postgres(url) => format!("PostgreSQL at {}", postgres::redacted(url)),
        }
    }

    /// The location as `--storage` takes it, without a password.
    pub fn to_url(&self) -> String {
        match self {
            Location::Sqlite(dir) => dir.display().to_string(),
            Location::Postgres(url) => postgres::redacted(url),
        }
    }

    /// Why there is certainly nothing to read here (an embedded directory without a log), for
    /// commands that read an existing installation; `None` when there may be (a database is
    /// only known by connecting).
    pub fn missing_data(&self) -> Option<String> {
        match self {
            Location::Sqlite(dir) => {
                let log = sqlite::log_path(dir);
                (!log.exists()).then(|| {
                    format!(
                        "no learnpulse data in {} (no {})",
                        dir.display(),
                        log.display()
                    )
                })
            }
            Location::Postgres(_) => None,
        }
    }
}

/// Opens the configured backend (creating its schema or running its migrations) and starts
/// its writer: the one way the server, the CLI and the benchmarks get a [`Storage`].
pub async fn open(config: &Config) -> Result<Storage, StoreError> {
    open_at(&Location::of(config), config).await
}

/// Opens the backend at `location` with the rest of `config`'s storage settings.
pub async fn open_at(location: &Location, config: &Config) -> Result<Storage, StoreError> {
    let settings = &config.storage;
    Ok(match location {
        Location::Sqlite(dir) => {
            Storage::Sqlite(sqlite::SqliteStorage::open(&sqlite::SqliteOptions {
                dir: dir.clone(),
                durability: settings.durability,
                max_batch_statements: settings.max_group_commit,
            })?)
        }
        Location::Postgres(url) => Storage::Postgres(
            postgres::PostgresStorage::open(&postgres::PostgresOptions {
                url: url.clone(),
                pool_size: settings.pool_size,
                max_batch_statements: settings.max_group_commit,
                durability: settings.durability,
            })
            .await?,
        ),
    })
}

impl Storage {
    /// The highest committed sequence number, updated after every commit (by this process, and
    /// on PostgreSQL by any process): followers wait on it, then read the log past their
    /// watermark.
    pub fn committed(&self) -> watch::Receiver<i64> {
        each_backend!(self, s => s.committed())
    }

    /// Stops the writer after it has committed everything queued.
    pub async fn shutdown(&self) {
        each_backend!(self, s => s.shutdown().await)
    }

    /// The schema migrations applied, oldest first. SQLite applies its schema (and adds the
    /// columns later versions introduced) idempotently at every open, so it has none to list.
    pub async fn migrations(&self) -> Result<Vec<Migration>, StoreError> {
        match self {
            Storage::Sqlite(_) => Ok(Vec::new()),
            Storage::Postgres(s) => s.migrations().await,
        }
    }

    /// `sqlite` or `postgres`, for metrics and logs.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Storage::Sqlite(_) => "sqlite",
            Storage::Postgres(_) => "postgres",
        }
    }
}

/// One applied schema migration.
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: i64,
    pub name: String,
    pub applied_us: i64,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A statement id is already taken by a different statement.
    #[error("statement {0} already exists with different content")]
    Conflict(uuid::Uuid),
    /// The store is shutting down, its writer is gone, or the database cannot be reached.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Internal(String),
}

/// Microseconds since the Unix epoch, from the system clock (the shell's clock, not the core's).
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
