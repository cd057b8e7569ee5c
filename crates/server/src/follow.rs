//! Following the log: how the learner engines (and, through them, the SSE streams and the
//! webhook outbox) see every committed event, in log order, exactly once.
//!
//! The follower keeps a watermark, the hub's [`LearnerHub::applied`]. It waits until the
//! storage says the log has grown past it ([`Storage::committed`]: a channel from the SQLite
//! writer, `LISTEN/NOTIFY` on PostgreSQL), reads the entries past it
//! ([`EventLog::read_log`]) and applies them. The same loop, run to the end before the server
//! listens, is the start-up replay. Because it reads the log rather than being handed events
//! by the writer, it works the same whichever process wrote them.
//!
//! Decisions the policies make go to the webhook enqueuer, except those at or below the
//! outbox's watermark: those were enqueued before the last stop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, watch};

use crate::delivery::Decided;
use crate::live::{LearnerHub, LiveInput};
use crate::storage::{EventLog, Storage, StoreError};

/// Log entries read per page.
const PAGE: usize = 10_000;

pub struct Follower {
    pub storage: Arc<Storage>,
    pub hub: Arc<LearnerHub>,
    /// Decisions at or below this sequence number are in the outbox already.
    pub enqueued_through: i64,
    pub decisions: mpsc::UnboundedSender<Vec<Decided>>,
    /// Pulled after new events: the compliance monitor evaluates soon after them.
    pub compliance: Arc<Notify>,
}

impl Follower {
    /// Applies everything committed past the hub's watermark; returns how many entries it read.
    /// `publish`: stream subscribers see the changes (not during the start-up replay).
    pub async fn catch_up(&self, publish: bool) -> Result<u64, StoreError> {
        let started = Instant::now();
        let mut last_report = Instant::now();
        let mut read = 0u64;
        loop {
            let entries = self.storage.read_log(self.hub.applied(), PAGE).await?;
            let Some(through) = entries.last().map(|e| e.seq) else {
                return Ok(read);
            };
            let inputs: Vec<_> = entries
                .iter()
                .filter_map(|e| LiveInput::of(e).map(|input| (e.tenant, e.seq, input)))
                .collect();
            self.hub.prepare(&inputs, &self.storage).await?;
            let applying = Instant::now();
            let decided = self.hub.apply(&inputs, through, publish);
            if publish && !inputs.is_empty() {
                // The engine's time per event (the dashboard's operator view and alerts).
                metrics::histogram!("learnpulse_engine_update_seconds")
                    .record(applying.elapsed().as_secs_f64() / inputs.len() as f64);
            }
            let fresh: Vec<Decided> = decided
                .into_iter()
                .filter(|d| d.seq > self.enqueued_through)
                .collect();
            if !fresh.is_empty() {
                let _ = self.decisions.send(fresh);
            }
            read += entries.len() as u64;
            // How far this node's learner state is behind the log (alerts: follower lag).
            let head = *self.storage.committed().borrow();
            metrics::gauge!("learnpulse_follower_lag_statements")
                .set((head - self.hub.applied()).max(0) as f64);
            if !publish && last_report.elapsed() >= Duration::from_secs(5) {
                last_report = Instant::now();
                tracing::info!(
                    statements = read,
                    per_second = (read as f64 / started.elapsed().as_secs_f64()) as u64,
                    "replaying the event log"
                );
            }
            if entries.len() < PAGE {
                return Ok(read);
            }
        }
    }

    /// Follows the log until shutdown.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut committed = self.storage.committed();
        loop {
            let head = *committed.borrow_and_update();
            metrics::gauge!("learnpulse_follower_lag_statements")
                .set((head - self.hub.applied()).max(0) as f64);
            if head > self.hub.applied() {
                match self.catch_up(true).await {
                    Ok(n) if n > 0 => {
                        self.compliance.notify_one();
                        continue;
                    }
                    // Nothing readable past the watermark (an erasure took it): wait for more.
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the event log; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                }
            }
            tokio::select! {
                changed = committed.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
        }
    }
}
