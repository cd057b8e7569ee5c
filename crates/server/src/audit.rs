//! The auditor: every access to learner data, every admin and privacy action, every consent
//! change and re-identification becomes an entry of the hash chain
//! (`learnpulse_compliance::audit`).
//!
//! Handlers call [`Auditor::record`], which only queues the event; one task chains queued events
//! in arrival order and appends them in batches (one transaction each), and signs a checkpoint of
//! the head every [`CHECKPOINT_EVERY`] entries and at shutdown. Entries hold pseudonyms, group
//! ids and key ids, never raw identities. An entry queued in the last moments before a `kill -9`
//! can be lost; the chain stays valid (it simply ends earlier).

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use learnpulse_compliance::audit::{self, Event};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::auth::Caller;
use crate::privacy::seal::Sealer;
use crate::storage::{AuditStore, Storage, StoreError, now_us};

/// Entries between signed checkpoints.
pub const CHECKPOINT_EVERY: u64 = 256;
const SIGNING_KEY: &str = "audit-signing-key";
const OWNER: &[u8] = b"learnpulse/server/audit-signing-key";

enum Message {
    Event(Event),
    /// Write everything queued, sign a checkpoint, then answer.
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Auditor {
    queue: mpsc::UnboundedSender<Message>,
    /// Checks the checkpoints this server signs.
    pub verifying_key: ed25519_dalek::VerifyingKey,
}

impl Auditor {
    /// Loads (or creates) the signing key and starts the task that writes the chain.
    pub async fn start(storage: Arc<Storage>, master: &Sealer) -> Result<Auditor, StoreError> {
        let key = signing_key(&storage, master).await?;
        let verifying_key = key.verifying_key();
        let head = storage.audit_head().await?;
        let (queue, receiver) = mpsc::unbounded_channel();
        tokio::spawn(write_chain(storage, key, head, receiver));
        Ok(Auditor {
            queue,
            verifying_key,
        })
    }

    /// Queues one event.
    pub fn record(
        &self,
        tenant: i64,
        actor: &str,
        action: &str,
        subject: Option<String>,
        detail: Value,
    ) {
        metrics::counter!("learnpulse_audit_events_total").increment(1);
        let _ = self.queue.send(Message::Event(Event {
            at_us: now_us(),
            tenant,
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject,
            detail,
        }));
    }

    /// Queues one event done by an API caller.
    pub fn access(&self, caller: &Caller, action: &str, subject: Option<String>, detail: Value) {
        self.record(caller.tenant, &caller.key_id, action, subject, detail);
    }

    /// Returns once everything queued so far is written and a checkpoint signs it.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// The server's audit signing key, sealed under the master key; created on first start.
pub async fn signing_key(storage: &Storage, master: &Sealer) -> Result<SigningKey, StoreError> {
    if let Some(key) = stored_signing_key(storage, master).await? {
        return Ok(key);
    }
    let seed: [u8; 32] = rand::random();
    match storage
        .insert_server_secret(SIGNING_KEY, master.seal(OWNER, &seed))
        .await
    {
        Ok(()) => Ok(SigningKey::from_bytes(&seed)),
        // Another process sharing the storage created it at the same moment: use its.
        Err(e) => stored_signing_key(storage, master).await?.ok_or(e),
    }
}

/// The audit signing key when the store has one (`None` before the first start).
pub async fn stored_signing_key(
    storage: &Storage,
    master: &Sealer,
) -> Result<Option<SigningKey>, StoreError> {
    let Some(sealed) = storage.server_secret(SIGNING_KEY).await? else {
        return Ok(None);
    };
    let seed = master
        .open(OWNER, &sealed)
        .ok()
        .and_then(|s| <[u8; 32]>::try_from(s).ok())
        .ok_or_else(|| {
            StoreError::Internal("the audit signing key does not open with this master key".into())
        })?;
    Ok(Some(SigningKey::from_bytes(&seed)))
}

/// Chains `events` after the stored head and appends them (with a signed checkpoint of the new
/// head when `sign` says so) in one transaction. The head is read from storage each time, so a
/// `learnpulse` command appending from another process is chained in, not forked from; if that
/// other process wins the race for a sequence number, the insert fails and is retried on the new
/// head.
async fn append_chained(
    storage: &Storage,
    events: &[Event],
    sign: Option<(&SigningKey, u64)>,
) -> Result<Option<u64>, StoreError> {
    let mut last_error = None;
    for _ in 0..5 {
        let mut head = storage.audit_head().await?;
        let mut batch = Vec::with_capacity(events.len());
        for event in events {
            let entry = audit::chain(head, event.clone());
            head = Some((entry.seq, entry.hash));
            batch.push(entry);
        }
        let checkpoint = match (sign, head) {
            (Some((key, signed)), Some((seq, hash))) if seq > signed => {
                Some(audit::sign_checkpoint(key, seq, hash, now_us()))
            }
            _ => None,
        };
        let signs = checkpoint.as_ref().map(|c| c.seq);
        match storage.append_audit(batch, checkpoint).await {
            Ok(()) => return Ok(signs),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.expect("five attempts failed"))
}

/// Appends one event from outside the server (a `learnpulse` command on the data directory).
pub async fn append_one(storage: &Storage, event: Event) -> Result<(), StoreError> {
    append_chained(storage, &[event], None).await.map(|_| ())
}

async fn write_chain(
    storage: Arc<Storage>,
    key: SigningKey,
    head: Option<(u64, [u8; 32])>,
    mut receiver: mpsc::UnboundedReceiver<Message>,
) {
    let mut signed = head.map_or(0, |(seq, _)| seq);
    let mut unsigned = 0u64;
    while let Some(first) = receiver.recv().await {
        let mut events: Vec<Event> = Vec::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Event(event) => events.push(event),
                Message::Flush(done) => flushes.push(done),
            }
            if events.len() < 4_096 {
                next = receiver.try_recv().ok();
            }
        }
        unsigned += events.len() as u64;
        let sign = (unsigned >= CHECKPOINT_EVERY || !flushes.is_empty()).then_some((&key, signed));
        match append_chained(&storage, &events, sign).await {
            Ok(signs) => {
                if let Some(seq) = signs {
                    signed = seq;
                    unsigned = 0;
                }
            }
            Err(e) => {
                // Stop rather than write a chain with a hole in it. The failure shows in the log
                // and, through the missing entries' effects, in the compliance report.
                tracing::error!(error = %e, entries = events.len(), "audit log write failed; auditing stops");
                return;
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}
