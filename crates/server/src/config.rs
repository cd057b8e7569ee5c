//! Server configuration: `learnpulse.toml`, overridden by `LEARNPULSE_*` environment variables,
//! overridden by command-line flags (the CLI applies the last two; see `learnpulse serve --help`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory of the embedded database (created on first start).
    pub data_dir: PathBuf,
    /// Log lines as JSON instead of human-readable text.
    pub log_json: bool,
    /// Fitted knowledge-tracing parameters (`learnpulse kt fit`); textbook BKT when absent.
    pub model: Option<PathBuf>,
    pub storage: StorageConfig,
    pub cache: CacheConfig,
    pub limits: Limits,
    pub compliance: ComplianceConfig,
    pub webhooks: WebhookConfig,
    pub mcp: McpConfig,
    pub snapshots: SnapshotConfig,
    pub metrics: MetricsConfig,
    pub audit: AuditConfig,
    pub xapi: XapiConfig,
}

/// The xAPI edge.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XapiConfig {
    /// The version a response names when the request named none it could use (a 400 for a
    /// missing or unsupported `X-Experience-API-Version`): `2.0.0` or `1.0.3`, for clients that
    /// speak only the older one. Environment `LEARNPULSE_XAPI_VERSION`.
    pub default_version: XapiVersionSetting,
}

impl Default for XapiConfig {
    fn default() -> Self {
        XapiConfig {
            default_version: XapiVersionSetting::V2_0_0,
        }
    }
}

/// An xAPI version learnpulse speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum XapiVersionSetting {
    #[serde(rename = "2.0.0")]
    V2_0_0,
    #[serde(rename = "1.0.3")]
    V1_0_3,
}

impl XapiVersionSetting {
    pub fn as_str(self) -> &'static str {
        match self {
            XapiVersionSetting::V2_0_0 => "2.0.0",
            XapiVersionSetting::V1_0_3 => "1.0.3",
        }
    }
}

/// The audit chain's checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// An append-only file outside the data directory (another disk, a log host's mount) where
    /// every signed checkpoint is also written, one JSON line each; `learnpulse audit verify
    /// --witness FILE` checks the chain against it, which catches a rewrite, truncation or wipe
    /// of the chain together with its checkpoints. Environment `LEARNPULSE_AUDIT_WITNESS`.
    pub witness: Option<PathBuf>,
    /// Entries waiting for a signature are signed at least this often (as well as every 256
    /// entries and at shutdown).
    pub checkpoint_interval_secs: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            witness: None,
            checkpoint_interval_secs: 60,
        }
    }
}

/// Whether metrics are kept, and who may read `/metrics`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Keep metrics (default). Off, no recorder is installed and requests are not timed:
    /// `/metrics` answers 404 (for measuring what metrics cost). Environment
    /// `LEARNPULSE_METRICS`.
    pub enabled: bool,
    /// When set, `/metrics` answers only `Authorization: Bearer <token>` (a scraper's secret)
    /// or an admin key or session; unset, anyone who reaches the port may read it (keep it
    /// behind the network's own controls then). Environment `LEARNPULSE_METRICS_TOKEN`.
    pub token: Option<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            token: None,
        }
    }
}

/// The cache of hot reads (`crate::cache`). In the file either a URL (`cache = "redis://…"`)
/// or a table (`[cache]` with `url`, `l1_entries`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "CacheSpec")]
pub struct CacheConfig {
    /// The shared layer (L2): `redis://host:port` for Redis; unset for none (each process
    /// caches on its own).
    pub url: Option<String>,
    /// Entries each in-process cache (L1) holds at most.
    pub l1_entries: u64,
    /// Learner states a node keeps in memory (its L1 of learners) beyond those whose state
    /// changed since the last engine snapshot, which stay until a snapshot keeps them. Others
    /// are loaded from L2 or the database when an event or a read needs them.
    pub learners_in_memory: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            url: None,
            l1_entries: 100_000,
            learners_in_memory: 200_000,
        }
    }
}

/// The two spellings of `cache` in the configuration file.
#[derive(Deserialize)]
#[serde(untagged)]
enum CacheSpec {
    Url(String),
    Table(CacheTable),
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CacheTable {
    url: Option<String>,
    l1_entries: u64,
    learners_in_memory: usize,
}

impl Default for CacheTable {
    fn default() -> Self {
        let d = CacheConfig::default();
        CacheTable {
            url: d.url,
            l1_entries: d.l1_entries,
            learners_in_memory: d.learners_in_memory,
        }
    }
}

impl From<CacheSpec> for CacheConfig {
    fn from(spec: CacheSpec) -> Self {
        match spec {
            CacheSpec::Url(url) => CacheConfig {
                url: Some(url),
                ..CacheConfig::default()
            },
            CacheSpec::Table(t) => CacheConfig {
                url: t.url,
                l1_entries: t.l1_entries,
                learners_in_memory: t.learners_in_memory,
            },
        }
    }
}

/// Engine snapshots: the learner engines' state saved now and then and at shutdown, so that a
/// restart replays only the log's tail.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotConfig {
    pub enabled: bool,
    /// Seconds between snapshots while events arrive.
    pub interval_secs: u64,
    /// Log entries applied since the last snapshot before another is worth taking.
    pub min_new_entries: u64,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            enabled: true,
            interval_secs: 300,
            min_new_entries: 10_000,
        }
    }
}

/// The MCP endpoint (`/mcp`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpConfig {
    /// `Host` headers `/mcp` answers (DNS-rebinding protection); add the server's public
    /// hostname when tutors reach it by name. Empty: any host.
    pub allowed_hosts: Vec<String>,
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        }
    }
}

/// Outbound webhooks (`/v1/webhooks`): how deliveries are retried and endpoints protected.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Waits before the 2nd, 3rd, ... attempt (seconds, ±20 % jitter); after the last, the
    /// message goes to the dead-letter list.
    pub retry_schedule_secs: Vec<f64>,
    /// Consecutive failures that open an endpoint's circuit.
    pub breaker_failures: u32,
    /// How long an open circuit waits before letting one trial delivery through.
    pub breaker_open_secs: f64,
    /// One attempt's time limit (connect + answer).
    pub timeout_secs: f64,
    /// Attempts in flight at once, over all endpoints.
    pub max_in_flight: usize,
    /// Delivered messages are kept this long (for `GET /v1/webhooks/{id}/messages`).
    pub keep_delivered_hours: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            retry_schedule_secs: crate::delivery::retry::SCHEDULE_SECS.to_vec(),
            breaker_failures: 5,
            breaker_open_secs: 30.0,
            timeout_secs: 10.0,
            max_in_flight: 64,
            keep_delivered_hours: 72,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComplianceConfig {
    /// Seconds between evaluations of every tenant's rules (and retention purges).
    pub interval_secs: u64,
    /// New events trigger an evaluation too, at most once per this many seconds.
    pub event_debounce_secs: u64,
}

impl Default for ComplianceConfig {
    fn default() -> Self {
        ComplianceConfig {
            interval_secs: 300,
            event_debounce_secs: 10,
        }
    }
}

/// Where and how events are stored. In the file either a URL (`storage = "postgres://…"`)
/// or a table (`[storage]` with `url`, `durability`, …).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "StorageSpec")]
pub struct StorageConfig {
    /// The backend: unset (or `sqlite://DIR`) for the embedded SQLite backend in the data
    /// directory, `postgres://user@host:port/database` for PostgreSQL.
    pub url: Option<String>,
    /// `full` (fsync every group commit: survives power loss) or `process` (survives a crash of
    /// the process, may lose the last commits on power loss).
    pub durability: Durability,
    /// Most statements one group commit takes from the queue.
    pub max_group_commit: usize,
    /// Connections in the PostgreSQL pool (readers; the writer has its own).
    pub pool_size: usize,
}

/// The two spellings of `storage` in the configuration file.
#[derive(Deserialize)]
#[serde(untagged)]
enum StorageSpec {
    Url(String),
    Table(StorageTable),
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct StorageTable {
    url: Option<String>,
    durability: Durability,
    max_group_commit: usize,
    pool_size: usize,
}

impl Default for StorageTable {
    fn default() -> Self {
        let d = StorageConfig::default();
        StorageTable {
            url: d.url,
            durability: d.durability,
            max_group_commit: d.max_group_commit,
            pool_size: d.pool_size,
        }
    }
}

impl From<StorageSpec> for StorageConfig {
    fn from(spec: StorageSpec) -> Self {
        match spec {
            StorageSpec::Url(url) => StorageConfig {
                url: Some(url),
                ..StorageConfig::default()
            },
            StorageSpec::Table(t) => StorageConfig {
                url: t.url,
                durability: t.durability,
                max_group_commit: t.max_group_commit,
                pool_size: t.pool_size,
            },
        }
    }
}

/// How hard a commit tries to survive failures. Documented in the README ("Durability").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Each group commit is fsynced before acknowledgement: survives process crashes and power
    /// loss (SQLite `synchronous=FULL`; PostgreSQL `synchronous_commit=on`).
    #[default]
    Full,
    /// Commits reach the OS before acknowledgement, fsync happens at checkpoints: survives a
    /// process crash (`kill -9`), may lose the last commits on power loss (SQLite
    /// `synchronous=NORMAL`; PostgreSQL `synchronous_commit=off` on the writer's connection).
    Process,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Most statements or events in one request (413 beyond).
    pub max_batch: usize,
    /// Requests taking longer are answered 408.
    pub request_timeout_secs: u64,
    /// Upper bound (and default) of `limit` on statement queries.
    pub max_query_limit: usize,
    /// Open connections at most (idle ones and streams included); one more is answered 503 and
    /// closed. The process raises its descriptor limit to fit at start.
    pub max_connections: usize,
    /// A client must send a request's headers within this time, on a new connection and between
    /// requests on a kept-alive one (slowloris and idle sockets are closed after it).
    pub header_read_timeout_secs: u64,
    /// Requests per second each API key may make on this node (a burst of twice as many is let
    /// through); beyond, 429 with `Retry-After`. 0: no limit.
    pub requests_per_second_per_key: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8750)),
            data_dir: PathBuf::from("data"),
            log_json: false,
            model: None,
            storage: StorageConfig::default(),
            cache: CacheConfig::default(),
            limits: Limits::default(),
            compliance: ComplianceConfig::default(),
            webhooks: WebhookConfig::default(),
            mcp: McpConfig::default(),
            snapshots: SnapshotConfig::default(),
            metrics: MetricsConfig::default(),
            audit: AuditConfig::default(),
            xapi: XapiConfig::default(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            url: None,
            durability: Durability::Full,
            max_group_commit: 20_000,
            pool_size: 8,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 8 * 1024 * 1024,
            max_batch: 5_000,
            request_timeout_secs: 30,
            max_query_limit: 500,
            max_connections: 16_384,
            header_read_timeout_secs: 10,
            requests_per_second_per_key: 5_000,
        }
    }
}

impl Config {
    /// Reads a TOML file; unknown keys are an error (a typo should not be silently ignored).
    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Config::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parses the text of a configuration file (the pure part of [`Config::from_file`]).
    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// The configuration file to read when none is named: `./learnpulse.toml` if it exists.
    pub fn default_file() -> Option<PathBuf> {
        let p = PathBuf::from("learnpulse.toml");
        p.exists().then_some(p)
    }
}
