//! The audit chains under storage, on every backend: one chain per tenant, interleaved in one
//! sequence; writers on two handles of one store (two nodes, or a node and a `learnpulse`
//! command) appending at once never fork a tenant's chain, and each tenant's chain checks alone.

mod common;

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use learnpulse_compliance::audit::{self, Event};
use learnpulse_server::storage::{AuditStore, Storage};
use serde_json::json;

const TENANTS: [i64; 3] = [1, 2, 3];
const PER_WRITER: usize = 40;

fn event(tenant: i64, writer: usize, n: usize) -> Event {
    Event {
        at_us: 1_000_000 + n as i64,
        tenant,
        actor: format!("writer-{writer}"),
        action: "learner.read".into(),
        subject: Some(format!("p1_{n}")),
        detail: json!({"n": n}),
    }
}

/// Writer `w` appends `PER_WRITER` events, one at a time, cycling through the tenants.
async fn write(storage: Storage, w: usize) -> Storage {
    for n in 0..PER_WRITER {
        let tenant = TENANTS[(n + w) % TENANTS.len()];
        learnpulse_server::audit::append_one(&storage, event(tenant, w, n))
            .await
            .expect("appends (retrying when the other writer took the number)");
    }
    storage
}

async fn concurrent_writers_never_fork_a_tenants_chain() {
    let dir = tempfile::tempdir().unwrap();
    let first = common::storage(dir.path()).await;
    let second = common::storage(dir.path()).await;
    let (a, b) = tokio::join!(
        tokio::spawn(write(first, 0)),
        tokio::spawn(write(second, 1))
    );
    let (a, b) = (a.unwrap(), b.unwrap());

    let entries = learnpulse_server::storage::audit::entries_after(&a, 0, None)
        .await
        .unwrap();
    assert_eq!(entries.len(), 2 * PER_WRITER);
    let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
    let whole = audit::verify(&entries, &[], &key).expect("the installation's chains verify");
    assert_eq!(whole.entries, 2 * PER_WRITER as u64);

    // Each entry links to its own tenant's previous entry, never to another tenant's.
    let mut last: BTreeMap<i64, [u8; 32]> = BTreeMap::new();
    for e in &entries {
        let expected = last.get(&e.event.tenant).copied().unwrap_or(audit::GENESIS);
        assert_eq!(e.prev_hash, expected, "entry {} links to its tenant", e.seq);
        last.insert(e.event.tenant, e.hash);
    }

    // Each tenant's chain checks alone, from its own entries only.
    for tenant in TENANTS {
        let own = learnpulse_server::storage::audit::entries_after(&a, 0, Some(tenant))
            .await
            .unwrap();
        let verified = audit::verify_tenant(tenant, &own, &[], &key).unwrap();
        assert_eq!(verified.entries as usize, own.len());
        assert_eq!(verified.head, last[&tenant]);
    }

    // The heads storage reports are those last entries, read at one instant.
    let (seq, heads) = a.audit_heads(vec![1, 2, 3, 99]).await.unwrap();
    assert_eq!(seq, 2 * PER_WRITER as u64);
    assert_eq!(heads, last, "tenant 99 has no entry, so no head");

    // A tenant's entry removed from the middle breaks its chain alone and the sequence.
    let victim = entries
        .iter()
        .find(|e| e.event.tenant == 2 && e.seq > 10)
        .unwrap();
    let without: Vec<_> = entries
        .iter()
        .filter(|e| e.seq != victim.seq)
        .cloned()
        .collect();
    assert_eq!(
        audit::verify(&without, &[], &key).unwrap_err().seq,
        victim.seq
    );
    let own_without: Vec<_> = without
        .iter()
        .filter(|e| e.event.tenant == 2)
        .cloned()
        .collect();
    assert!(audit::verify_tenant(2, &own_without, &[], &key).is_err());
    let others: Vec<_> = without
        .iter()
        .filter(|e| e.event.tenant == 1)
        .cloned()
        .collect();
    assert!(audit::verify_tenant(1, &others, &[], &key).is_ok());

    a.shutdown().await;
    b.shutdown().await;
}

on_every_backend!(concurrent_writers_never_fork_a_tenants_chain);
