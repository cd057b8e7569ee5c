//! The outbox as the delivery side sees it: receivers with their signing secrets opened, cached
//! in memory, over the [`OutboxStore`] (which keeps them sealed, with every message owed to
//! them).
//!
//! Nothing is lost between the log and the outbox: messages are written after the events that
//! caused them have committed, with the outbox *watermark* (the log sequence number through
//! which decisions have been turned into messages) in the same transaction. At start-up the
//! engine's follower re-decides every event past the watermark and enqueues what it decides,
//! so a crash between an event's commit and its messages' insert loses none. Message ids are
//! derived from the event's sequence number and the receiver (`msg_<seq>_<receiver>`), so
//! enqueuing twice is a no-op.
//!
//! Claims are leases: a claimed message is due again when its lease runs out, so a message
//! whose attempt a crash cut short is retried by whichever process claims it next. On the
//! embedded backend one process owns the outbox, so at start no attempt is in flight and every
//! lease is released at once; when processes share the storage, another process's attempt may
//! be in flight, so leases only run out. Delivery is at least once, never at most once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::privacy::seal::Sealer;
use crate::storage::outbox::{Endpoint, ReceiverRow};
use crate::storage::{OutboxStore, Storage, StoreError, TenantId};

/// A signing secret; an old one stays valid until `until_ms` after a rotation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Secret {
    pub secret: String,
    pub until_ms: Option<i64>,
}

/// One receiver: a system that takes intervention messages, at one or more endpoints.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub id: i64,
    pub tenant: TenantId,
    pub name: String,
    /// Messages per request; above 1 the body is a batch (see the README).
    pub max_batch: usize,
    /// Event types it takes: `intervention.decided`, `compliance.incident`.
    pub events: Vec<String>,
    pub kinds: Vec<String>,
    pub cognitive_data: bool,
    pub secrets: Vec<Secret>,
    pub endpoints: Vec<Endpoint>,
    pub created_ms: i64,
}

impl Receiver {
    /// Does it take decisions of this intervention kind?
    pub fn wants_decision(&self, kind: &str) -> bool {
        self.takes(crate::delivery::EVENT_DECISION)
            && (self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind))
    }

    pub fn takes(&self, event_type: &str) -> bool {
        self.events.iter().any(|e| e == event_type)
    }

    /// The secrets a message is signed with now (the current one, and old ones in their grace).
    pub fn live_secrets(&self, now_ms: i64) -> Vec<String> {
        self.secrets
            .iter()
            .filter(|s| s.until_ms.is_none_or(|u| u > now_ms))
            .map(|s| s.secret.clone())
            .collect()
    }
}

/// What a new receiver is (validated by the API).
pub struct ReceiverSpec {
    pub name: String,
    pub max_batch: usize,
    pub events: Vec<String>,
    pub kinds: Vec<String>,
    pub cognitive_data: bool,
    pub endpoints: Vec<Endpoint>,
}

/// The id of a decision's message: `msg_<log seq>_<receiver>`.
pub fn message_id(seq: i64, receiver: i64) -> String {
    format!("msg_{seq}_{receiver}")
}

/// The id of an incident's message: `msg_incident<id>_<receiver>`.
pub fn incident_message_id(incident: i64, receiver: i64) -> String {
    format!("msg_incident{incident}_{receiver}")
}

pub struct Outbox {
    store: Arc<Storage>,
    sealer: Sealer,
    receivers: RwLock<HashMap<i64, Arc<Receiver>>>,
}

impl Outbox {
    /// Opens the receivers and, when this process is the storage's only one, releases the
    /// leases left by a stop or a crash.
    pub async fn open(store: Arc<Storage>, sealer: Sealer) -> anyhow::Result<Outbox> {
        if !store.is_shared() {
            store.release_leases(crate::delivery::now_ms()).await?;
        }
        let outbox = Outbox {
            store,
            sealer,
            receivers: RwLock::default(),
        };
        outbox.reload().await?;
        Ok(outbox)
    }

    /// The stored messages and watermark (what the dispatcher and the API read and write).
    pub fn store(&self) -> &Storage {
        &self.store
    }

    fn owner(id: i64) -> Vec<u8> {
        format!("webhook-receiver:{id}").into_bytes()
    }

    /// Seals a receiver's secrets, bound to its id.
    fn seal(sealer: &Sealer, id: i64, secrets: &[Secret]) -> Vec<u8> {
        let plain = serde_json::to_vec(secrets).expect("secrets serialise");
        sealer.seal(&Self::owner(id), &plain)
    }

    /// Reads every receiver into memory (after a change, and at start).
    async fn reload(&self) -> anyhow::Result<()> {
        let mut receivers = HashMap::new();
        for row in self.store.receiver_rows().await? {
            let secrets = self
                .sealer
                .open(&Self::owner(row.id), &row.sealed_secrets)
                .map_err(|e| anyhow::anyhow!("webhook receiver {}: {e}", row.id))?;
            let receiver = Receiver {
                id: row.id,
                tenant: row.tenant,
                name: row.name,
                max_batch: row.max_batch.max(1),
                events: row.events,
                kinds: row.kinds,
                cognitive_data: row.cognitive_data,
                secrets: serde_json::from_slice(&secrets)?,
                endpoints: row.endpoints,
                created_ms: row.created_ms,
            };
            receivers.insert(receiver.id, Arc::new(receiver));
        }
        *self.receivers.write().unwrap() = receivers;
        Ok(())
    }

    pub fn receiver(&self, tenant: TenantId, id: i64) -> Option<Arc<Receiver>> {
        self.receivers
            .read()
            .unwrap()
            .get(&id)
            .filter(|r| r.tenant == tenant)
            .cloned()
    }

    /// Any tenant's receiver (the dispatcher's view).
    pub fn receiver_by_id(&self, id: i64) -> Option<Arc<Receiver>> {
        self.receivers.read().unwrap().get(&id).cloned()
    }

    pub fn receivers(&self, tenant: TenantId) -> Vec<Arc<Receiver>> {
        let mut list: Vec<_> = self
            .receivers
            .read()
            .unwrap()
            .values()
            .filter(|r| r.tenant == tenant)
            .cloned()
            .collect();
        list.sort_by_key(|r| r.id);
        list
    }

    /// Creates a receiver with one fresh secret; `Ok(None)` when the name is taken.
    pub async fn create_receiver(
        &self,
        tenant: TenantId,
        spec: ReceiverSpec,
        now_ms: i64,
    ) -> anyhow::Result<Option<Arc<Receiver>>> {
        let secrets = vec![Secret {
            secret: super::signing::new_secret(),
            until_ms: None,
        }];
        let sealer = self.sealer.clone();
        let row = ReceiverRow {
            id: 0,
            tenant,
            name: spec.name,
            max_batch: spec.max_batch,
            events: spec.events,
            kinds: spec.kinds,
            cognitive_data: spec.cognitive_data,
            sealed_secrets: Vec::new(),
            endpoints: spec.endpoints,
            created_ms: now_ms,
        };
        let seal = Box::new(move |id: i64| Outbox::seal(&sealer, id, &secrets));
        let Some(id) = self.store.insert_receiver(row, seal).await? else {
            return Ok(None);
        };
        self.reload().await?;
        Ok(self.receiver_by_id(id))
    }

    /// Deletes a receiver with its endpoints and messages.
    pub async fn delete_receiver(&self, tenant: TenantId, id: i64) -> anyhow::Result<bool> {
        let deleted = self.store.delete_receiver(tenant, id).await?;
        self.reload().await?;
        Ok(deleted)
    }

    /// A new current secret; the previous ones stay valid until `grace_until_ms` (every message
    /// carries a signature under each live secret until then). Returns the new secret.
    pub async fn rotate_secret(
        &self,
        tenant: TenantId,
        id: i64,
        now_ms: i64,
        grace_until_ms: i64,
    ) -> anyhow::Result<Option<String>> {
        let Some(receiver) = self.receiver(tenant, id) else {
            return Ok(None);
        };
        let fresh = super::signing::new_secret();
        let mut secrets: Vec<Secret> = receiver
            .secrets
            .iter()
            .filter(|s| s.until_ms.is_none_or(|u| u > now_ms))
            .map(|s| Secret {
                secret: s.secret.clone(),
                until_ms: Some(s.until_ms.unwrap_or(grace_until_ms).min(grace_until_ms)),
            })
            .collect();
        secrets.insert(
            0,
            Secret {
                secret: fresh.clone(),
                until_ms: None,
            },
        );
        self.store
            .set_receiver_secrets(id, Outbox::seal(&self.sealer, id, &secrets))
            .await?;
        self.reload().await?;
        Ok(Some(fresh))
    }

    /// The sequence number through which decisions have been enqueued.
    pub async fn watermark(&self) -> Result<i64, StoreError> {
        self.store.outbox_watermark().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::outbox::NewMessage;

    async fn open(dir: &std::path::Path) -> (Arc<Storage>, Outbox) {
        let config = crate::Config {
            data_dir: dir.to_path_buf(),
            ..Default::default()
        };
        let store = Arc::new(crate::storage::open(&config).await.unwrap());
        let outbox = Outbox::open(store.clone(), Sealer::new(&[7; 32]))
            .await
            .unwrap();
        (store, outbox)
    }

    #[tokio::test]
    async fn enqueuing_is_idempotent_and_leases_are_released_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let (store, outbox) = open(dir.path()).await;
        let spec = || ReceiverSpec {
            name: "lms".into(),
            max_batch: 1,
            events: vec![crate::delivery::EVENT_DECISION.into()],
            kinds: vec![],
            cognitive_data: false,
            endpoints: vec![Endpoint {
                id: 0,
                url: "http://127.0.0.1:9/".into(),
                weight: 1,
            }],
        };
        let r = outbox.create_receiver(1, spec(), 0).await.unwrap().unwrap();
        assert!(
            outbox
                .create_receiver(1, spec(), 0)
                .await
                .unwrap()
                .is_none(),
            "names are unique"
        );
        let message = |seq| NewMessage {
            id: message_id(seq, r.id),
            receiver: r.id,
            tenant: 1,
            learner: "p1_00".into(),
            seq,
            payload: "{}".into(),
        };
        assert_eq!(
            store
                .enqueue(vec![message(5), message(6)], Some(6), 0)
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            store.enqueue(vec![message(6)], Some(4), 0).await.unwrap(),
            0,
            "same id: no-op"
        );
        assert_eq!(
            outbox.watermark().await.unwrap(),
            6,
            "the watermark never moves back"
        );

        let now = crate::delivery::now_ms();
        assert_eq!(
            store.claim_due(now, now + 60_000, 10).await.unwrap().len(),
            2
        );
        assert!(
            store
                .claim_due(now, now + 60_000, 10)
                .await
                .unwrap()
                .is_empty(),
            "leased"
        );
        drop(outbox);
        store.shutdown().await;
        drop(store);
        let (store, outbox) = open(dir.path()).await;
        let due = store
            .claim_due(crate::delivery::now_ms(), now + 60_000, 10)
            .await
            .unwrap();
        assert_eq!(due.len(), 2, "a restart releases the leases");
        assert_eq!(
            outbox.receivers(1)[0].secrets.len(),
            1,
            "secrets reopen sealed"
        );
    }
}
