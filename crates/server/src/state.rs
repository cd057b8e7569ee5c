//! [`AppState`]: what every handler can reach. A leaf module (it holds the parts, it does not
//! assemble them; `app` does), so that handlers depend on it and not on the server's assembly.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

use crate::auth::KeyCache;
use crate::config::Config;
use crate::live::LearnerHub;
use crate::storage::Storage;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<AppInner>);

/// How long a failed append keeps the node unready (see [`AppInner::write_failure`]).
pub const WRITE_FAILURE_FRESH: std::time::Duration = std::time::Duration::from_secs(5);

pub struct AppInner {
    pub config: Config,
    pub storage: Arc<Storage>,
    /// The audit chain's writer.
    pub audit: crate::audit::Auditor,
    /// How far the compliance monitor has verified the audit chain. Held for a whole
    /// evaluation, so that the monitor and a report request never open the same incident twice.
    pub chain_check: tokio::sync::Mutex<crate::compliance::ChainCheck>,
    /// Pulled by the commit hook: the compliance monitor evaluates soon after new events.
    pub compliance_trigger: Arc<tokio::sync::Notify>,
    pub keys: KeyCache,
    /// Requests per second per key.
    pub rate: crate::auth::RateLimiter,
    pub hub: Arc<LearnerHub>,
    /// Each tenant's keys, privacy policy, roster and consents.
    pub privacy: crate::privacy::PrivacyRegistry,
    /// Webhook receivers, the durable outbox and its dispatcher.
    pub webhooks: Arc<crate::delivery::Webhooks>,
    /// The metrics recorder's handle; `None` when metrics are off (`metrics.enabled`).
    pub metrics: Option<PrometheusHandle>,
    /// Flips to `true` when shutdown begins; long-lived responses (SSE) end on it.
    pub shutdown: watch::Receiver<bool>,
    /// The installation-wide duties this process leads now.
    pub leading: Arc<crate::elected::Leading>,
    pub openapi_json: OnceLock<String>,
    /// The dashboard's browser sessions and sign-in links.
    pub sessions: crate::session::Sessions,
    /// Why the last append failed and when, until one succeeds again: `/readyz` reports it for
    /// [`WRITE_FAILURE_FRESH`] after the latest failure, so that a node a load balancer took out
    /// of rotation comes back to be tried again once writes have stopped failing for a while.
    pub write_failure: std::sync::RwLock<Option<(String, std::time::Instant)>>,
}

impl AppInner {
    /// A key was revoked or its expiry changed: this process and every other sharing the
    /// storage forget their cached copy.
    pub async fn key_changed(&self, key_id: &str) {
        self.keys.invalidate(key_id).await;
        if let Err(e) = self
            .storage
            .announce(crate::storage::Change::Key(key_id.to_owned()))
            .await
        {
            tracing::warn!(key = key_id, error = %e, "cannot announce a key change to other processes");
        }
    }
}

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}
