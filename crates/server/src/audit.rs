//! The auditor: every access to learner data, every admin and privacy action, every consent
//! change and re-identification becomes an entry of the hash chain
//! (`learnpulse_compliance::audit`).
//!
//! Each tenant has a chain of its own, interleaved with the others in one installation-wide
//! sequence: an entry links to its tenant's previous entry, and the sequence number (unique in
//! storage) is what stops two nodes from forking a chain: both read the same heads, one wins the
//! number, the other retries on the new heads. A tenant's chain can so be handed to its auditor
//! and checked alone (`learnpulse audit verify --tenant`), while the sequence shows entries
//! removed from anywhere.
//!
//! Handlers call [`Auditor::record`], which only queues the event; one task chains queued events
//! in arrival order and appends them in batches (one transaction each), and signs a checkpoint of
//! the head of each tenant it wrote to every [`CHECKPOINT_EVERY`] entries and at shutdown. Entries hold pseudonyms, group
//! ids and key ids, never raw identities. An entry queued in the last moments before a `kill -9`
//! can be lost; the chain stays valid (it simply ends earlier).
//!
//! Auditing fails closed. When a batch cannot be written, the task keeps it and retries (backing
//! off to 5 s) until storage takes it, so no entry is dropped and the chain has no hole; meanwhile
//! [`Auditor::failing`] says why, `/readyz` answers 503 with that reason, the gauge
//! `learnpulse_audit_failing` is 1, and every authenticated request is refused with 503
//! (`auth::verify`): nothing audited happens unaudited.
//!
//! The chain's head is also remembered outside the database: at every checkpoint the newest
//! entry's sequence number and hash are sealed under the master key into
//! `<data_dir>/audit-head.sealed`. At start a chain that no longer holds that entry, or holds a
//! different one, is a rollback: [`Auditor::rollback`] says so, and the compliance rule on the
//! chain fails with it (an incident), since the database alone would look consistent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

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
    /// Why the last write failed, while the writer is retrying it.
    failure: Arc<RwLock<Option<String>>>,
    /// What was found at start when the chain did not match the head remembered outside it.
    pub rollback: Option<(u64, String)>,
}

/// The file the newest checkpointed head is remembered in, sealed.
const HEAD_FILE: &str = "audit-head.sealed";
const HEAD_OWNER: &[u8] = b"learnpulse/server/audit-head";

/// The newest entry the server has seen checkpointed: the installation's head.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct Head {
    seq: u64,
    #[serde(with = "hex_hash")]
    hash: [u8; 32],
}

mod hex_hash {
    pub fn serialize<S: serde::Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        hex::decode(text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| serde::de::Error::custom("not a 32-byte hex hash"))
    }
}

/// Where the head is remembered, and the key it is sealed with.
#[derive(Clone)]
struct HeadFile {
    path: std::path::PathBuf,
    sealer: Sealer,
}

impl HeadFile {
    fn read(&self) -> Option<Head> {
        let sealed = std::fs::read(&self.path).ok()?;
        let plain = self.sealer.open(HEAD_OWNER, &sealed).ok()?;
        serde_json::from_slice(&plain).ok()
    }

    fn write(&self, head: Head) {
        let plain = serde_json::to_vec(&head).expect("heads serialise");
        let staging = self.path.with_extension("sealed.tmp");
        let written = std::fs::write(&staging, self.sealer.seal(HEAD_OWNER, &plain))
            .and_then(|()| std::fs::rename(&staging, &self.path));
        if let Err(e) = written {
            tracing::error!(error = %e, path = %self.path.display(), "cannot remember the audit head");
        }
    }
}

/// What the chain looks like at start, from one read of its end: whether it still holds the
/// head remembered outside it (`rollback`: `Some((seq, why))` when it is shorter than it was,
/// or different), and the newest entry of each tenant written after the newest checkpoint
/// (`tail`: what an unclean stop, or a `learnpulse` command beside no server, left unsigned).
async fn inspect_at_start(
    storage: &Storage,
    file: &HeadFile,
) -> Result<(Option<(u64, String)>, Unsigned), StoreError> {
    let signed = storage
        .audit_checkpoints()
        .await?
        .iter()
        .map(|c| c.seq)
        .max()
        .unwrap_or(0);
    let remembered = file.read();
    let from = remembered.map_or(signed, |h| h.seq.saturating_sub(1).min(signed));
    let entries = crate::storage::audit::entries_after(storage, from, None).await?;
    let rollback = remembered.and_then(|head| {
        match entries.iter().find(|e| e.seq == head.seq) {
            Some(e) if e.hash == head.hash => None,
            Some(_) => Some((
                head.seq,
                "the chain differs from the head this server remembered outside the database (rewritten)"
                    .to_owned(),
            )),
            None => Some((
                head.seq,
                format!(
                    "the chain no longer holds entry {}, which this server checkpointed (cut back or wiped)",
                    head.seq
                ),
            )),
        }
    });
    let mut tail = Unsigned::new();
    for e in entries.iter().filter(|e| e.seq > signed) {
        tail.insert(e.event.tenant, (e.seq, e.hash));
    }
    Ok((rollback, tail))
}

impl Auditor {
    /// Loads (or creates) the signing key and starts the task that writes the chain.
    pub async fn start(
        storage: Arc<Storage>,
        master: &Sealer,
        config: &crate::config::AuditConfig,
        data_dir: &std::path::Path,
    ) -> Result<Auditor, StoreError> {
        let key = signing_key(&storage, master).await?;
        let head_file = HeadFile {
            path: data_dir.join(HEAD_FILE),
            sealer: master.clone(),
        };
        let (rollback, tail) = inspect_at_start(&storage, &head_file).await?;
        if !tail.is_empty() {
            tracing::info!(
                tenants = tail.len(),
                "signing the audit entries an unclean stop (or a command) left unsigned"
            );
        }
        if let Some((seq, why)) = &rollback {
            tracing::error!(seq, "audit chain rollback: {why}");
        }
        let verifying_key = key.verifying_key();
        let (queue, receiver) = mpsc::unbounded_channel();
        let failure = Arc::new(RwLock::new(None));
        let writer = ChainWriter {
            storage,
            key,
            failure: failure.clone(),
            witness: config.witness.clone(),
            interval: std::time::Duration::from_secs(config.checkpoint_interval_secs.max(1)),
            head_file,
        };
        tokio::spawn(writer.run(receiver, tail));
        Ok(Auditor {
            queue,
            verifying_key,
            failure,
            rollback,
        })
    }

    /// Why the audit log cannot be written now, if it cannot (the writer is retrying).
    pub fn failing(&self) -> Option<String> {
        self.failure.read().unwrap().clone()
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

    /// Returns once everything queued so far is written and a checkpoint signs it, or after
    /// 10 s while the audit log cannot be written (a shutdown must not hang on it).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).is_ok()
            && tokio::time::timeout(std::time::Duration::from_secs(10), wait)
                .await
                .is_err()
        {
            tracing::error!("audit entries still unwritten at the flush deadline");
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

/// Tries at appending a batch before auditing gives up: each failed try means another writer
/// appended (or storage is down), and the jittered waits between them add up to under a second.
const ATTEMPTS: u32 = 12;

/// Each tenant's newest entry this process wrote that no checkpoint signs yet: `(seq, hash)`.
type Unsigned = BTreeMap<i64, (u64, [u8; 32])>;

/// Chains `events` after the stored heads (the installation's last sequence number and each of
/// their tenants' last hash) and appends them in one transaction, with, when `sign` is given, a
/// signed checkpoint of every tenant head in `sign`'s unsigned set or in this batch. The heads
/// are read from storage each time, so entries another node (or a `learnpulse` command) appended
/// are chained in, never forked from: if that writer wins the race for a sequence number, the
/// insert fails on the unique sequence and is retried on the new heads. Returns the newest entry
/// of each tenant in the batch.
async fn append_chained(
    storage: &Storage,
    events: &[Event],
    sign: Option<(&SigningKey, &Unsigned)>,
) -> Result<(Unsigned, Vec<audit::Checkpoint>), StoreError> {
    let tenants: BTreeSet<i64> = events.iter().map(|e| e.tenant).collect();
    let mut last_error = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            // Another writer took the sequence numbers; let the writers drift apart.
            let jitter = rand::random::<u64>() % (2 << attempt.min(6));
            tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
        }
        let (head_seq, mut heads) = storage
            .audit_heads(tenants.iter().copied().collect())
            .await?;
        let batch = audit::chain_all(head_seq, &mut heads, events.iter().cloned());
        let written: Unsigned = batch
            .iter()
            .map(|e| (e.event.tenant, (e.seq, e.hash)))
            .collect();
        let checkpoints = match sign {
            Some((key, unsigned)) => {
                let mut to_sign = unsigned.clone();
                to_sign.extend(written.iter().map(|(t, head)| (*t, *head)));
                let at = now_us();
                to_sign
                    .into_iter()
                    .map(|(tenant, (seq, hash))| audit::sign_checkpoint(key, tenant, seq, hash, at))
                    .collect()
            }
            None => Vec::new(),
        };
        match storage.append_audit(batch, checkpoints.clone()).await {
            Ok(()) => return Ok((written, checkpoints)),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.expect("every attempt failed"))
}

/// Appends one event from outside the server (a `learnpulse` command on the data directory).
/// It goes unsigned until the tenant's next checkpoint, which a server signs after its own
/// entries (the chain links it in).
pub async fn append_one(storage: &Storage, event: Event) -> Result<(), StoreError> {
    append_chained(storage, &[event], None).await.map(|_| ())
}

/// The task that writes the chain: batches, retries, signs, and publishes to the witness.
struct ChainWriter {
    storage: Arc<Storage>,
    key: SigningKey,
    failure: Arc<RwLock<Option<String>>>,
    witness: Option<std::path::PathBuf>,
    /// Unsigned entries are signed at least this often.
    interval: std::time::Duration,
    head_file: HeadFile,
}

impl ChainWriter {
    /// Runs the writer; `tail` holds heads left unsigned before this process started, which
    /// the first checkpoint (at the latest on the timer) signs.
    async fn run(self, mut receiver: mpsc::UnboundedReceiver<Message>, tail: Unsigned) {
        let mut unsigned_entries = tail.len() as u64;
        let mut unsigned = tail;
        let mut timer = tokio::time::interval(self.interval);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer.tick().await;
        loop {
            let first = tokio::select! {
                message = receiver.recv() => match message {
                    Some(message) => Some(message),
                    None => break,
                },
                _ = timer.tick() => None,
            };
            let timed = first.is_none();
            let mut events: Vec<Event> = Vec::new();
            let mut flushes = Vec::new();
            let mut next = first;
            while let Some(message) = next.take() {
                match message {
                    Message::Event(event) => events.push(event),
                    Message::Flush(done) => flushes.push(done),
                }
                if events.len() < 4_096 {
                    next = receiver.try_recv().ok();
                }
            }
            if timed && unsigned_entries == 0 {
                continue;
            }
            unsigned_entries += events.len() as u64;
            let sign_now = unsigned_entries >= CHECKPOINT_EVERY || !flushes.is_empty() || timed;
            let (written, checkpoints) = self.append_retrying(&events, sign_now, &unsigned).await;
            if sign_now {
                unsigned.clear();
                unsigned_entries = 0;
                self.publish(&checkpoints);
                if let Some(newest) = checkpoints.iter().max_by_key(|c| c.seq) {
                    self.head_file.write(Head {
                        seq: newest.seq,
                        hash: newest.hash,
                    });
                }
            } else {
                unsigned.extend(written);
            }
            for done in flushes {
                let _ = done.send(());
            }
        }
    }

    /// Appends `events` (signing the heads when `sign`), retrying until storage takes them.
    async fn append_retrying(
        &self,
        events: &[Event],
        sign: bool,
        unsigned: &Unsigned,
    ) -> (Unsigned, Vec<audit::Checkpoint>) {
        let mut backoff = std::time::Duration::from_millis(50);
        let done = loop {
            let signing = sign.then_some((&self.key, unsigned));
            match append_chained(&self.storage, events, signing).await {
                Ok(done) => break done,
                Err(e) => {
                    // Keep the batch and try again: a hole in the chain would be worse than a
                    // wait, and while this lasts the server refuses audited work.
                    if self.failure.read().unwrap().is_none() {
                        tracing::error!(error = %e, entries = events.len(), "audit log write failed; refusing audited requests until it succeeds");
                    }
                    *self.failure.write().unwrap() = Some(e.to_string());
                    metrics::gauge!("learnpulse_audit_failing").set(1.0);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
                }
            }
        };
        if self.failure.write().unwrap().take().is_some() {
            tracing::info!(entries = events.len(), "audit log writable again");
            metrics::gauge!("learnpulse_audit_failing").set(0.0);
        }
        done
    }

    /// Appends signed checkpoints to the witness file, one JSON line each, synced.
    fn publish(&self, checkpoints: &[audit::Checkpoint]) {
        let Some(path) = &self.witness else { return };
        if checkpoints.is_empty() {
            return;
        }
        let written = (|| -> std::io::Result<()> {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            let mut lines = Vec::new();
            for c in checkpoints {
                serde_json::to_writer(&mut lines, c).map_err(std::io::Error::other)?;
                lines.push(b'\n');
            }
            file.write_all(&lines)?;
            file.sync_data()
        })();
        match written {
            Ok(()) => metrics::gauge!("learnpulse_audit_witness_failing").set(0.0),
            Err(e) => {
                tracing::error!(error = %e, path = %path.display(), "cannot write the audit witness");
                metrics::gauge!("learnpulse_audit_witness_failing").set(1.0);
            }
        }
    }
}
