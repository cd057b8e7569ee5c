//! Engine snapshots: the hub's state per tenant, saved now and then and at shutdown, so that a
//! restart reads the newest snapshot and replays only the log's tail. Each snapshot also keeps,
//! in the same transaction, every learner whose state changed since the previous one: a
//! learner the hub lets go of is loaded from there (`crate::live::resident`).
//!
//! A snapshot is derived data, trusted only when everything about it checks out: its checksum,
//! its format, the knowledge-tracing model and engine parameters it was made with, and the
//! outbox having every decision it has seen (else a restart from it would never enqueue
//! those). Anything else falls back to a full replay, which gives the same state, only slower
//! (tested: `tests/snapshots.rs`).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use learnpulse_core::{EngineParams, SkillModel};

use crate::live::{LearnerHub, TenantSnapshot};
use crate::storage::{
    Change, OutboxStore, Snapshot, SnapshotStore, Storage, StoreError, TenantId, now_us,
};

/// Bumped whenever [`TenantSnapshot`]'s meaning changes: older snapshots are then ignored.
/// (2: learners are kept one by one, beside the snapshot.)
const FORMAT: u32 = 2;

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: u32,
    /// [`model_fingerprint`] of the model and parameters the state was computed with.
    model: String,
    /// The latest decision the state has seen (the outbox must hold it).
    last_decision_seq: i64,
    state: TenantSnapshot,
}

/// Identifies a model and engine parameters (independently of hash-map order).
pub fn model_fingerprint(model: &SkillModel, params: &EngineParams) -> String {
    let mut skills: Vec<_> = model.skills.iter().collect();
    skills.sort_by(|a, b| a.0.cmp(b.0));
    let canonical = serde_json::json!({
        "skills": skills,
        "fallback": model.fallback,
        "wheel_spin": model.wheel_spin,
        "params": [params.mastery_threshold, params.item_norm_min_count as f64, params.baseline_min_count as f64],
    });
    hex::encode(&Sha256::digest(canonical.to_string().as_bytes())[..16])
}

/// `[sha256 of the JSON][JSON]`: a flipped bit anywhere is noticed.
fn encode(envelope: &Envelope) -> Vec<u8> {
    let json = serde_json::to_vec(envelope).expect("snapshots serialise");
    let mut body = Sha256::digest(&json).to_vec();
    body.extend_from_slice(&json);
    body
}

fn decode(body: &[u8]) -> Result<Envelope, String> {
    if body.len() < 32 {
        return Err("too short".into());
    }
    let (sum, json) = body.split_at(32);
    if Sha256::digest(json).as_slice() != sum {
        return Err("checksum mismatch".into());
    }
    serde_json::from_slice(json).map_err(|e| e.to_string())
}

/// Saves the hub's state, when the outbox has caught up with its decisions (it is given a
/// moment to), and tells the other processes. Returns the sequence number the snapshot covers,
/// or `None` when there was nothing to save or the outbox lagged.
pub async fn save(storage: &Storage, hub: &LearnerHub) -> Result<Option<i64>, StoreError> {
    let saving = hub.saving.lock().await;
    let (covers, last_decision, tenants, learners) = hub.snapshot();
    if covers == 0 || tenants.is_empty() {
        return Ok(None);
    }
    let mut waited = 0;
    while storage.outbox_watermark().await? < last_decision {
        if waited == 20 {
            tracing::warn!(
                covers,
                "snapshot skipped: the webhook outbox lags behind the engine"
            );
            return Ok(None);
        }
        waited += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let model = model_fingerprint(&hub.model(), &hub.params());
    let created_us = now_us();
    let kept = learners.len();
    let snapshots = tenants
        .into_iter()
        .map(|(tenant, state)| Snapshot {
            tenant,
            covers_seq: covers,
            created_us,
            body: encode(&Envelope {
                format: FORMAT,
                model: model.clone(),
                last_decision_seq: last_decision,
                state,
            }),
        })
        .collect();
    storage.save_snapshots(snapshots, learners).await?;
    drop(saving);
    hub.snapshot_saved(covers);
    if let Err(e) = storage.announce(Change::Snapshot(covers)).await {
        tracing::warn!(error = %e, "cannot announce the snapshot; other nodes learn of it later");
    }
    metrics::gauge!("learnpulse_snapshot_covers_seq").set(covers as f64);
    tracing::debug!(covers, learners_kept = kept, "engine snapshot saved");
    Ok(Some(covers))
}

/// After an erasure (here, or announced by another process): drops the learners from memory
/// and L2, and scrubs them from the newest snapshot and the kept states, so that no copy of
/// their state outlives the erasure. Every process does it (idempotent): one whose snapshot
/// was being saved as the erasure happened scrubs what it saved.
pub async fn erase(
    storage: &Storage,
    hub: &LearnerHub,
    tenant: TenantId,
    learners: &[String],
) -> Result<usize, StoreError> {
    let _saving = hub.saving.lock().await;
    let held = hub.forget(tenant, learners);
    let stored = storage.latest_snapshots().await?;
    let scrubbed = match stored.into_iter().find(|s| s.tenant == tenant) {
        None => None,
        Some(s) => match decode(&s.body) {
            Ok(mut envelope) => {
                envelope.state.forget(learners);
                Some(Snapshot {
                    body: encode(&envelope),
                    ..s
                })
            }
            // Not usable anyway: it goes.
            Err(_) => {
                storage.delete_snapshots().await?;
                None
            }
        },
    };
    storage
        .scrub_snapshot(scrubbed, tenant, learners.to_vec())
        .await?;
    Ok(held)
}

/// Starts the hub from the newest snapshot when it is valid; returns the sequence number it
/// covers (the replay goes on from there), or `None` (the replay starts from the beginning).
pub async fn restore(storage: &Storage, hub: &LearnerHub) -> Result<Option<i64>, StoreError> {
    let stored = storage.latest_snapshots().await?;
    let Some(covers) = stored.first().map(|s| s.covers_seq) else {
        return Ok(None);
    };
    let model = model_fingerprint(&hub.model(), &hub.params());
    let watermark = storage.outbox_watermark().await?;
    let mut tenants = Vec::with_capacity(stored.len());
    let mut last_decision = 0;
    for s in stored {
        let why = match decode(&s.body) {
            Err(e) => Some(e),
            Ok(_) if s.covers_seq != covers => Some("snapshots of different points".into()),
            Ok(e) if e.format != FORMAT => {
                Some(format!("format {} (this build: {FORMAT})", e.format))
            }
            Ok(e) if e.model != model => Some("made with another model".into()),
            Ok(e) if e.last_decision_seq > watermark => {
                Some("the outbox lacks some of its decisions".into())
            }
            Ok(e) => {
                last_decision = last_decision.max(e.last_decision_seq);
                tenants.push((s.tenant, e.state));
                None
            }
        };
        if let Some(why) = why {
            tracing::warn!(tenant = s.tenant, covers, why = %why, "engine snapshot not used: replaying the whole log");
            return Ok(None);
        }
    }
    hub.restore(covers, last_decision, tenants);
    Ok(Some(covers))
}

/// Catches up with snapshots other processes saved (after missed announcements).
pub async fn learn_latest(storage: &Storage, hub: &LearnerHub) -> Result<(), StoreError> {
    let covers = storage.latest_snapshot_covers().await?;
    if covers > 0 {
        hub.snapshot_saved(covers);
    }
    Ok(())
}

/// Saves a snapshot every `interval` when at least `min_entries` entries were applied since
/// the last one; ends on shutdown (the final snapshot is `Server::run`'s).
pub async fn periodically(
    storage: Arc<Storage>,
    hub: Arc<LearnerHub>,
    interval: Duration,
    min_entries: i64,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last = hub.applied();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        if hub.applied() - last < min_entries {
            continue;
        }
        match save(&storage, &hub).await {
            Ok(Some(covers)) => last = covers,
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot save an engine snapshot"),
        }
    }
}
