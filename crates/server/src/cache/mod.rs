//! The multi-layer cache for hot reads: **L1** a bounded cache in this process (moka's
//! W-TinyLFU: frequently read entries stay, one-off reads do not push them out), **L2** Redis
//! shared by every node (optional: `cache = "redis://…"`), **L3** the database the value is
//! loaded from. A read tries L1, then L2 (and promotes what it finds to L1), then loads from L3
//! and fills both. Every layer's hits and misses are counted in `/metrics`
//! (`learnpulse_cache_lookups_total{cache, layer, result}`).
//!
//! L2 is an optimisation, never a dependency: when Redis is slow or down, a lookup gives up on
//! it after [`L2_TIMEOUT`] and goes on to L3 (counted as `result="error"`), and the connection
//! is tried again at most once a second. Entries live for the cache's TTL in both layers;
//! [`Tiered::invalidate`] removes one from this process's L1 and from Redis, and the storage's
//! change announcements make every other process drop its L1 copy (`crate::invalidate`).
//!
//! Only values that may sit in Redis go through L2: API key records (the secret as its SHA-256
//! only) and learner states (pseudonymous; [`learners`]). Keys that unseal data, and the
//! tenants' rosters, never leave the process.

pub mod learners;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::storage::StoreError;

/// How long a lookup waits for Redis before going on without it.
pub const L2_TIMEOUT: Duration = Duration::from_millis(50);
/// How often a process tries to reach Redis again after it could not.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// The shared layer's backends.
pub enum Shared {
    /// No L2: every node caches on its own (the embedded default).
    None,
    Redis(Box<RedisLayer>),
}

impl Shared {
    /// `redis://…` selects Redis; `None` no shared layer.
    pub fn open(url: Option<&str>) -> Result<Shared, StoreError> {
        match url {
            None => Ok(Shared::None),
            Some(url) => {
                let client = redis::Client::open(url).map_err(|e| {
                    StoreError::Internal(format!("invalid Redis URL for the cache: {e}"))
                })?;
                Ok(Shared::Redis(Box::new(RedisLayer {
                    client,
                    connection: tokio::sync::Mutex::new(None),
                    last_attempt: Mutex::new(None),
                })))
            }
        }
    }

    async fn get(&self, key: &str) -> Layered<Option<Vec<u8>>> {
        match self {
            Shared::None => Layered::Absent,
            Shared::Redis(r) => r.run(redis::cmd("GET").arg(key)).await,
        }
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        if let Shared::Redis(r) = self {
            let _: Layered<()> = r
                .run(
                    redis::cmd("SET")
                        .arg(key)
                        .arg(value)
                        .arg("PX")
                        .arg(ttl.as_millis() as u64),
                )
                .await;
        }
    }

    async fn delete(&self, key: &str) {
        self.delete_many(&[key.to_owned()]).await;
    }

    async fn delete_many(&self, keys: &[String]) {
        if let (Shared::Redis(r), false) = (self, keys.is_empty()) {
            let _: Layered<i64> = r.run(redis::cmd("DEL").arg(keys)).await;
        }
    }

    /// Several values in one round trip.
    async fn get_many(&self, keys: &[String]) -> Layered<Vec<Option<Vec<u8>>>> {
        match self {
            Shared::None => Layered::Absent,
            Shared::Redis(_) if keys.is_empty() => Layered::Answer(Vec::new()),
            Shared::Redis(r) => r.run(redis::cmd("MGET").arg(keys)).await,
        }
    }

    /// Runs a Lua script (atomic in Redis) over `keys` with `args`; whether it ran.
    async fn script(&self, source: &str, keys: &[String], args: Vec<Vec<u8>>) -> bool {
        match self {
            Shared::None => false,
            Shared::Redis(r) => {
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(source).arg(keys.len()).arg(keys);
                for a in args {
                    cmd.arg(a);
                }
                matches!(r.run::<redis::Value>(&mut cmd).await, Layered::Answer(_))
            }
        }
    }

    fn is_none(&self) -> bool {
        matches!(self, Shared::None)
    }
}

/// What asking L2 gave.
enum Layered<T> {
    /// There is no L2.
    Absent,
    Answer(T),
    /// Redis did not answer in time, or refused.
    Failed,
}

/// Redis as the shared layer: one multiplexed connection that reconnects by itself, made
/// lazily (a node starts, and serves, while Redis is down).
pub struct RedisLayer {
    client: redis::Client,
    connection: tokio::sync::Mutex<Option<redis::aio::ConnectionManager>>,
    last_attempt: Mutex<Option<Instant>>,
}

impl RedisLayer {
    async fn connection(&self) -> Option<redis::aio::ConnectionManager> {
        let mut connection = self.connection.lock().await;
        if let Some(c) = connection.as_ref() {
            return Some(c.clone());
        }
        {
            let mut last = self.last_attempt.lock().unwrap();
            if last.is_some_and(|t| t.elapsed() < RECONNECT_EVERY) {
                return None;
            }
            *last = Some(Instant::now());
        }
        match tokio::time::timeout(
            Duration::from_millis(500),
            redis::aio::ConnectionManager::new(self.client.clone()),
        )
        .await
        {
            Ok(Ok(c)) => {
                *connection = Some(c.clone());
                Some(c)
            }
            _ => {
                tracing::warn!("the cache's Redis cannot be reached; serving without it");
                None
            }
        }
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> Layered<T> {
        let Some(mut connection) = self.connection().await else {
            return Layered::Failed;
        };
        match tokio::time::timeout(L2_TIMEOUT, cmd.query_async::<T>(&mut connection)).await {
            Ok(Ok(value)) => Layered::Answer(value),
            _ => Layered::Failed,
        }
    }
}

/// Counts lookups of one cache in one layer (`learnpulse_cache_lookups_total`).
pub fn count(cache: &'static str, layer: &'static str, result: &'static str, n: u64) {
    if n > 0 {
        metrics::counter!("learnpulse_cache_lookups_total", "cache" => cache, "layer" => layer, "result" => result)
            .increment(n);
    }
}

/// Where a lookup found its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    L1,
    L2,
    /// Loaded from the database just now.
    L3,
}

/// One cache of values by key, over the three layers.
pub struct Tiered<V> {
    name: &'static str,
    l1: moka::sync::Cache<String, V>,
    shared: Arc<Shared>,
    ttl: Duration,
}

impl<V> Tiered<V>
where
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// `name` names the cache in metrics and in Redis keys (`lp:<name>:<key>`); L1 holds at
    /// most `entries` values.
    pub fn new(name: &'static str, entries: u64, ttl: Duration, shared: Arc<Shared>) -> Self {
        Tiered {
            name,
            l1: moka::sync::Cache::builder()
                .max_capacity(entries)
                .time_to_live(ttl)
                .build(),
            shared,
            ttl,
        }
    }

    fn shared_key(&self, key: &str) -> String {
        format!("lp:{}:{key}", self.name)
    }

    fn count(&self, layer: &'static str, result: &'static str) {
        count(self.name, layer, result, 1);
    }

    /// The value for `key`: from L1, else L2, else `load` (L3), which may find nothing (not
    /// cached: a later lookup asks again).
    pub async fn get_or_load<F, Fut>(
        &self,
        key: &str,
        load: F,
    ) -> Result<(Option<V>, Layer), StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, StoreError>>,
    {
        if let Some(v) = self.l1.get(key) {
            self.count("l1", "hit");
            return Ok((Some(v), Layer::L1));
        }
        self.count("l1", "miss");
        let shared_key = self.shared_key(key);
        match self.shared.get(&shared_key).await {
            Layered::Answer(Some(bytes)) => match serde_json::from_slice::<V>(&bytes) {
                Ok(v) => {
                    self.count("l2", "hit");
                    self.l1.insert(key.to_owned(), v.clone());
                    return Ok((Some(v), Layer::L2));
                }
                Err(_) => self.count("l2", "error"),
            },
            Layered::Answer(None) => self.count("l2", "miss"),
            Layered::Failed => self.count("l2", "error"),
            Layered::Absent => {}
        }
        let loaded = load().await?;
        self.count("l3", if loaded.is_some() { "hit" } else { "miss" });
        if let Some(v) = &loaded {
            self.l1.insert(key.to_owned(), v.clone());
            if let Ok(bytes) = serde_json::to_vec(v) {
                self.shared.set(&shared_key, bytes, self.ttl).await;
            }
        }
        Ok((loaded, Layer::L3))
    }

    /// Removes `key` from this process's L1 and from the shared layer (the value changed).
    pub async fn invalidate(&self, key: &str) {
        self.l1.invalidate(key);
        self.shared.delete(&self.shared_key(key)).await;
    }

    /// Removes `key` from this process's L1 only (another process changed it and has already
    /// removed it from the shared layer).
    pub fn forget_local(&self, key: &str) {
        self.l1.invalidate(key);
    }

    pub fn clear_local(&self) {
        self.l1.invalidate_all();
    }
}
