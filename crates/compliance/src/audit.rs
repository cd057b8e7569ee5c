//! The audit chains: one per tenant, interleaved in one sequence.
//!
//! Every entry has a sequence number of the installation (1, 2, 3, … with no gap: it is the
//! order of writing and the point two writers race for) and belongs to a tenant. An entry
//! stores `hash = SHA-256(prev ‖ encode(entry))`, where `prev` is the hash of the **same
//! tenant's** previous entry (the all-zero genesis for its first), so each tenant's entries form
//! a chain of their own that can be checked without any other tenant's ([`verify_tenant`]).
//! The encoding is length-prefixed, so no two different entries encode the same. Editing an
//! entry changes its hash and breaks the link to the tenant's next; deleting one leaves a gap in
//! the sequence and breaks a link; rewriting a tenant's chain from some point on is caught by its
//! signed checkpoints, which only the holder of the signing key can make.
//!
//! Entries written before the chains were per tenant (format 1) link to the previous entry of
//! the installation instead; [`verify`] accepts them up to the first per-tenant entry, after
//! which every entry must be per tenant. A tenant's first per-tenant entry links to its last
//! format-1 entry.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The chain's starting point.
pub const GENESIS: [u8; 32] = [0; 32];

/// What happened, by whom, to whom. Holds pseudonyms and key ids, never raw personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at_us: i64,
    pub tenant: i64,
    /// Who: an API key id, `cli`, or `system`.
    pub actor: String,
    /// What, as `area.verb` (`learner.read`, `consent.change`, `vault.reidentify`, ...).
    pub action: String,
    /// To whom or what: a learner pseudonym, a group, a key id.
    pub subject: Option<String>,
    pub detail: serde_json::Value,
}

/// An event in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    #[serde(flatten)]
    pub event: Event,
    #[serde(with = "hex_32")]
    pub prev_hash: [u8; 32],
    #[serde(with = "hex_32")]
    pub hash: [u8; 32],
}

/// A signature over a chain's head at `seq`: the tenant's chain (format 2), or the
/// installation's format-1 chain when `tenant` is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<i64>,
    pub seq: u64,
    #[serde(with = "hex_32")]
    pub hash: [u8; 32],
    pub at_us: i64,
    /// Ed25519 over [`checkpoint_message`], hex.
    pub signature: String,
}

fn put(out: &mut Sha256, bytes: &[u8]) {
    out.update((bytes.len() as u64).to_be_bytes());
    out.update(bytes);
}

/// A format-1 entry's hash (linked to the installation's previous entry).
pub fn entry_hash(prev: &[u8; 32], seq: u64, event: &Event) -> [u8; 32] {
    hash_with(b"learnpulse-audit-v1", prev, seq, event)
}

/// An entry's hash, linked to its tenant's previous entry.
pub fn tenant_entry_hash(prev: &[u8; 32], seq: u64, event: &Event) -> [u8; 32] {
    hash_with(b"learnpulse-audit-v2-tenant", prev, seq, event)
}

fn hash_with(domain: &[u8], prev: &[u8; 32], seq: u64, event: &Event) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(domain);
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(event.at_us.to_be_bytes());
    h.update(event.tenant.to_be_bytes());
    put(&mut h, event.actor.as_bytes());
    put(&mut h, event.action.as_bytes());
    match &event.subject {
        Some(s) => {
            h.update([1]);
            put(&mut h, s.as_bytes());
        }
        None => h.update([0]),
    }
    put(&mut h, event.detail.to_string().as_bytes());
    h.finalize().into()
}

/// The entry of `event` at sequence number `seq` of the installation, after `tenant_head` (the
/// hash of the tenant's last entry, or none for its first).
pub fn chain(seq: u64, tenant_head: Option<[u8; 32]>, event: Event) -> Entry {
    let prev_hash = tenant_head.unwrap_or(GENESIS);
    let hash = tenant_entry_hash(&prev_hash, seq, &event);
    Entry {
        seq,
        event,
        prev_hash,
        hash,
    }
}

/// Chains events one after another from the installation's head sequence number and each
/// tenant's head (which it moves on).
pub fn chain_all(
    head_seq: u64,
    tenant_heads: &mut BTreeMap<i64, [u8; 32]>,
    events: impl IntoIterator<Item = Event>,
) -> Vec<Entry> {
    let mut seq = head_seq;
    events
        .into_iter()
        .map(|event| {
            seq += 1;
            let entry = chain(seq, tenant_heads.get(&event.tenant).copied(), event);
            tenant_heads.insert(entry.event.tenant, entry.hash);
            entry
        })
        .collect()
}

/// What a checkpoint signs.
pub fn checkpoint_message(tenant: Option<i64>, seq: u64, hash: &[u8; 32]) -> Vec<u8> {
    let mut m = match tenant {
        None => b"learnpulse-audit-checkpoint-v1".to_vec(),
        Some(t) => {
            let mut m = b"learnpulse-audit-checkpoint-v2-tenant".to_vec();
            m.extend_from_slice(&t.to_be_bytes());
            m
        }
    };
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m
}

/// Signs `tenant`'s head: its entry at `seq` with `hash`.
pub fn sign_checkpoint(
    key: &SigningKey,
    tenant: i64,
    seq: u64,
    hash: [u8; 32],
    at_us: i64,
) -> Checkpoint {
    let signature = key.sign(&checkpoint_message(Some(tenant), seq, &hash));
    Checkpoint {
        tenant: Some(tenant),
        seq,
        hash,
        at_us,
        signature: hex::encode(signature.to_bytes()),
    }
}

/// The first thing wrong with a chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Broken {
    /// The first entry (or checkpoint position) that does not hold.
    pub seq: u64,
    pub reason: String,
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verified {
    pub entries: u64,
    pub checkpoints: usize,
    /// The last entry a valid signature vouches for; entries after it are chained but unsigned.
    pub signed_through: u64,
    #[serde(with = "hex_32")]
    pub head: [u8; 32],
    /// Where a later check can go on from.
    #[serde(skip)]
    pub state: ChainState,
}

/// How far a verification of the installation's entries got.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainState {
    /// The last sequence number checked and that entry's hash.
    pub seq: u64,
    pub hash: [u8; 32],
    /// Each tenant's last entry's hash.
    pub tenants: BTreeMap<i64, [u8; 32]>,
    /// Per-tenant entries have begun: no format-1 entry may follow.
    pub per_tenant: bool,
}

impl Default for ChainState {
    fn default() -> Self {
        ChainState {
            seq: 0,
            hash: GENESIS,
            tenants: BTreeMap::new(),
            per_tenant: false,
        }
    }
}

/// Checks every tenant's chain in sequence order, the sequence for gaps, and every checkpoint.
pub fn verify<'a>(
    entries: impl IntoIterator<Item = &'a Entry>,
    checkpoints: &[Checkpoint],
    key: &VerifyingKey,
) -> Result<Verified, Broken> {
    verify_from(None, entries, checkpoints, key)
}

/// Checks the entries after `start` (what an earlier verification got to; `None`: from the
/// beginning), and the checkpoints after it. Used to check only what was appended since the
/// last check; a full check is still needed now and then, because this one trusts everything
/// up to `start`.
pub fn verify_from<'a>(
    start: Option<&ChainState>,
    entries: impl IntoIterator<Item = &'a Entry>,
    checkpoints: &[Checkpoint],
    key: &VerifyingKey,
) -> Result<Verified, Broken> {
    let mut state = start.cloned().unwrap_or_default();
    let first = state.seq + 1;
    let mut expected = first;
    let mut checked: Vec<(i64, [u8; 32])> = Vec::new();
    for e in entries {
        if e.seq != expected {
            return Err(Broken {
                seq: expected,
                reason: if e.seq > expected {
                    format!("entries {expected} to {} are missing", e.seq - 1)
                } else {
                    format!(
                        "entry {} appears out of order after {}",
                        e.seq,
                        expected - 1
                    )
                },
            });
        }
        let tenant = e.event.tenant;
        let tenant_prev = state.tenants.get(&tenant).copied().unwrap_or(GENESIS);
        let format_1 = !state.per_tenant
            && e.prev_hash == state.hash
            && entry_hash(&state.hash, e.seq, &e.event) == e.hash;
        if !format_1 {
            if e.prev_hash != tenant_prev && (state.per_tenant || e.prev_hash != state.hash) {
                return Err(Broken {
                    seq: e.seq,
                    reason: "does not link to the entry before it".into(),
                });
            }
            if e.prev_hash != tenant_prev
                || tenant_entry_hash(&tenant_prev, e.seq, &e.event) != e.hash
            {
                return Err(Broken {
                    seq: e.seq,
                    reason: "its content does not match its hash (changed after it was written)"
                        .into(),
                });
            }
            state.per_tenant = true;
        }
        state.seq = e.seq;
        state.hash = e.hash;
        state.tenants.insert(tenant, e.hash);
        checked.push((tenant, e.hash));
        expected += 1;
    }
    let mut signed_through = 0;
    for c in checkpoints.iter().filter(|c| c.seq >= first) {
        let Some((tenant, hash)) = checked.get((c.seq - first) as usize) else {
            return Err(Broken {
                seq: c.seq,
                reason: "a checkpoint names an entry the chain does not have (entries were removed from the end)".into(),
            });
        };
        check_checkpoint(c, *tenant, hash, key)?;
        signed_through = signed_through.max(c.seq);
    }
    Ok(Verified {
        entries: expected - 1,
        checkpoints: checkpoints.len(),
        signed_through,
        head: state.hash,
        state,
    })
}

/// A checkpoint against the entry it names (its tenant and hash).
fn check_checkpoint(
    c: &Checkpoint,
    tenant: i64,
    hash: &[u8; 32],
    key: &VerifyingKey,
) -> Result<(), Broken> {
    if c.tenant.is_some_and(|t| t != tenant) {
        return Err(Broken {
            seq: c.seq,
            reason: "a checkpoint signs another tenant's entry as its own".into(),
        });
    }
    if *hash != c.hash {
        return Err(Broken {
            seq: c.seq,
            reason: "the chain differs from what the checkpoint signed (rewritten)".into(),
        });
    }
    let signature = hex::decode(&c.signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| Signature::from_bytes(&b));
    if signature.is_none_or(|s| {
        key.verify(&checkpoint_message(c.tenant, c.seq, &c.hash), &s)
            .is_err()
    }) {
        return Err(Broken {
            seq: c.seq,
            reason: "the checkpoint's signature is not valid for the audit key".into(),
        });
    }
    Ok(())
}

/// Checks one tenant's chain alone: its entries (in sequence order, no other tenant's) and its
/// checkpoints. Format-1 entries, which link to other tenants' entries, are checked for their
/// own hash only (the installation's [`verify`] checks their links).
pub fn verify_tenant<'a>(
    tenant: i64,
    entries: impl IntoIterator<Item = &'a Entry>,
    checkpoints: &[Checkpoint],
    key: &VerifyingKey,
) -> Result<Verified, Broken> {
    let mut prev = GENESIS;
    let mut per_tenant = false;
    let mut last_seq = 0;
    let mut count = 0;
    let mut hashes: BTreeMap<u64, [u8; 32]> = BTreeMap::new();
    for e in entries {
        if e.event.tenant != tenant || e.seq <= last_seq {
            return Err(Broken {
                seq: e.seq,
                reason: "not this tenant's, or out of order".into(),
            });
        }
        let linked = e.prev_hash == prev && tenant_entry_hash(&prev, e.seq, &e.event) == e.hash;
        let format_1 = !per_tenant && entry_hash(&e.prev_hash, e.seq, &e.event) == e.hash;
        if !linked && !format_1 {
            return Err(Broken {
                seq: e.seq,
                reason: if e.prev_hash != prev && per_tenant {
                    "does not link to the tenant's entry before it (one is missing or was changed)"
                        .into()
                } else {
                    "its content does not match its hash (changed after it was written)".into()
                },
            });
        }
        per_tenant |= linked;
        prev = e.hash;
        last_seq = e.seq;
        count += 1;
        hashes.insert(e.seq, e.hash);
    }
    let mut signed_through = 0;
    let own: Vec<&Checkpoint> = checkpoints
        .iter()
        .filter(|c| c.tenant == Some(tenant))
        .collect();
    for c in &own {
        let Some(hash) = hashes.get(&c.seq) else {
            return Err(Broken {
                seq: c.seq,
                reason: "a checkpoint names an entry the tenant's chain does not have (entries were removed)".into(),
            });
        };
        check_checkpoint(c, tenant, hash, key)?;
        signed_through = signed_through.max(c.seq);
    }
    Ok(Verified {
        entries: count,
        checkpoints: own.len(),
        signed_through,
        head: prev,
        state: ChainState::default(),
    })
}

mod hex_32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(&text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

/// Checks the chain against checkpoints published outside the database (a *witness*): every
/// witnessed checkpoint must carry a valid signature, and the chain must still hold the entry it
/// names, with the same hash. An attacker with the database can rewrite the chain and its own
/// checkpoints consistently, or cut both back, or wipe both; what was already witnessed
/// elsewhere they cannot take back, so a rewrite, a truncation or a wipe breaks this check.
pub fn check_witnessed<'a>(
    entries: impl IntoIterator<Item = &'a Entry>,
    witnessed: &[Checkpoint],
    key: &VerifyingKey,
) -> Result<usize, Broken> {
    let hashes: BTreeMap<u64, (i64, [u8; 32])> = entries
        .into_iter()
        .map(|e| (e.seq, (e.event.tenant, e.hash)))
        .collect();
    let last = hashes.keys().next_back().copied().unwrap_or(0);
    for c in witnessed {
        let Some((tenant, hash)) = hashes.get(&c.seq) else {
            return Err(Broken {
                seq: c.seq,
                reason: if c.seq > last {
                    format!(
                        "the witness saw entry {} but the chain ends at {last} (cut back or wiped)",
                        c.seq
                    )
                } else {
                    "the witness saw an entry the chain no longer holds".into()
                },
            });
        };
        check_checkpoint(c, *tenant, hash, key).map_err(|b| Broken {
            reason: format!("against the witness: {}", b.reason),
            ..b
        })?;
    }
    Ok(witnessed.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(i: u64) -> Event {
        Event {
            at_us: 1_000 + i as i64,
            tenant: 1,
            actor: "lpk_teacher".into(),
            action: "learner.read".into(),
            subject: Some(format!("p1_{i:032x}")),
            detail: serde_json::json!({"n": i}),
        }
    }

    fn build(n: u64) -> Vec<Entry> {
        chain_all(0, &mut BTreeMap::new(), (0..n).map(event))
    }

    /// A format-1 entry (linked to the installation's previous entry), as older servers wrote.
    fn legacy(prev: Option<&Entry>, event: Event) -> Entry {
        let (seq, prev_hash) = prev.map_or((1, GENESIS), |p| (p.seq + 1, p.hash));
        let hash = entry_hash(&prev_hash, seq, &event);
        Entry {
            seq,
            event,
            prev_hash,
            hash,
        }
    }

    fn of(tenant: i64, i: u64) -> Event {
        Event { tenant, ..event(i) }
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let entries = build(10);
        let cps = vec![sign_checkpoint(&key(), 1, 5, entries[4].hash, 0)];
        let v = verify(&entries, &cps, &key().verifying_key()).unwrap();
        assert_eq!((v.entries, v.signed_through), (10, 5));
    }

    #[test]
    fn checking_from_a_verified_entry_covers_what_came_after() {
        let entries = build(8);
        let cps = vec![
            sign_checkpoint(&key(), 1, 3, entries[2].hash, 0),
            sign_checkpoint(&key(), 1, 8, entries[7].hash, 0),
        ];
        let head = verify(&entries[..5], &[], &key().verifying_key())
            .unwrap()
            .state;
        let v = verify_from(Some(&head), &entries[5..], &cps, &key().verifying_key()).unwrap();
        assert_eq!((v.entries, v.signed_through), (8, 8));
        let mut tampered = entries.clone();
        tampered[6].event.action = "learner.write".into();
        let broken = verify_from(Some(&head), &tampered[5..], &cps, &key().verifying_key());
        assert_eq!(broken.unwrap_err().seq, 7);
    }

    #[test]
    fn forged_or_foreign_checkpoints_are_caught() {
        let entries = build(4);
        let other = SigningKey::from_bytes(&[8; 32]);
        let cps = vec![sign_checkpoint(&other, 1, 4, entries[3].hash, 0)];
        assert_eq!(
            verify(&entries, &cps, &key().verifying_key())
                .unwrap_err()
                .seq,
            4
        );
        // Entries removed from the end: the checkpoint names one that is gone.
        let cps = vec![sign_checkpoint(&key(), 1, 4, entries[3].hash, 0)];
        assert!(verify(&entries[..3], &cps, &key().verifying_key()).is_err());
    }

    #[test]
    fn rewriting_the_tail_consistently_is_caught_by_a_checkpoint() {
        let mut entries = build(6);
        let cps = vec![sign_checkpoint(&key(), 1, 6, entries[5].hash, 0)];
        // Rewrite entry 3 and re-chain everything after it, as an attacker without the key could.
        entries[2].event.subject = Some("someone else".into());
        for i in 2..6 {
            entries[i] = chain(
                entries[i].seq,
                Some(entries[i - 1].hash),
                entries[i].event.clone(),
            );
        }
        assert!(
            verify(&entries, &[], &key().verifying_key()).is_ok(),
            "a bare chain cannot tell"
        );
        let broken = verify(&entries, &cps, &key().verifying_key()).unwrap_err();
        assert_eq!(broken.seq, 6);
    }

    #[test]
    fn each_tenant_has_a_chain_of_its_own_that_checks_alone() {
        let events = (0..12).map(|i| of(if i % 3 == 0 { 2 } else { 1 }, i));
        let entries = chain_all(0, &mut BTreeMap::new(), events);
        let key = key();
        let of_tenant = |t: i64| -> Vec<Entry> {
            entries
                .iter()
                .filter(|e| e.event.tenant == t)
                .cloned()
                .collect()
        };
        let last_of_2 = of_tenant(2).last().unwrap().clone();
        let cps = vec![sign_checkpoint(&key, 2, last_of_2.seq, last_of_2.hash, 0)];
        let all = verify(&entries, &cps, &key.verifying_key()).unwrap();
        assert_eq!((all.entries, all.signed_through), (12, last_of_2.seq));
        let two = verify_tenant(2, &of_tenant(2), &cps, &key.verifying_key()).unwrap();
        assert_eq!((two.entries, two.signed_through), (4, last_of_2.seq));
        assert_eq!(
            verify_tenant(1, &of_tenant(1), &cps, &key.verifying_key())
                .unwrap()
                .entries,
            8
        );
        // A tenant's entry removed from the middle: its own chain no longer links.
        let mut two = of_tenant(2);
        let gone = two.remove(1);
        let broken = verify_tenant(2, &two, &cps, &key.verifying_key()).unwrap_err();
        assert_eq!(broken.seq, two[1].seq, "{broken:?} after {}", gone.seq);
        // Its last entry removed: the checkpoint names an entry it does not have.
        assert!(verify_tenant(2, &of_tenant(2)[..3], &cps, &key.verifying_key()).is_err());
        // A checkpoint cannot vouch for another tenant's entry.
        let foreign = vec![sign_checkpoint(&key, 1, last_of_2.seq, last_of_2.hash, 0)];
        assert!(verify(&entries, &foreign, &key.verifying_key()).is_err());
    }

    #[test]
    fn format_1_entries_verify_until_the_per_tenant_chains_begin() {
        let mut entries: Vec<Entry> = Vec::new();
        for i in 0..4 {
            let e = legacy(entries.last(), of(1 + (i % 2) as i64, i));
            entries.push(e);
        }
        // Each tenant's first per-tenant entry links to its last format-1 entry.
        let mut heads: BTreeMap<i64, [u8; 32]> = BTreeMap::new();
        for e in &entries {
            heads.insert(e.event.tenant, e.hash);
        }
        entries.extend(chain_all(
            4,
            &mut heads,
            (4..8).map(|i| of(1 + (i % 2) as i64, i)),
        ));
        let key = key();
        assert_eq!(
            verify(&entries, &[], &key.verifying_key()).unwrap().entries,
            8
        );
        let ones: Vec<Entry> = entries
            .iter()
            .filter(|e| e.event.tenant == 1)
            .cloned()
            .collect();
        assert_eq!(
            verify_tenant(1, &ones, &[], &key.verifying_key())
                .unwrap()
                .entries,
            4
        );
        // No format-1 entry after the per-tenant ones have begun.
        let late = legacy(entries.last(), of(1, 8));
        entries.push(late);
        assert_eq!(
            verify(&entries, &[], &key.verifying_key()).unwrap_err().seq,
            9
        );
    }

    proptest! {
        /// Any single change, removal or swap is found, and named at the right entry.
        #[test]
        fn tampering_is_found_at_the_first_broken_entry(n in 3u64..40, at in 0usize..40, how in 0u8..4) {
            let mut entries = build(n);
            let at = at % entries.len();
            let first_broken = match how {
                0 => { entries[at].event.detail = serde_json::json!({"n": "changed"}); entries[at].seq }
                1 => { entries[at].event.actor = "lpk_someone".into(); entries[at].seq }
                2 => { let seq = entries[at].seq; entries.remove(at); seq }
                _ => {
                    let other = if at + 1 < entries.len() { at + 1 } else { at - 1 };
                    entries.swap(at, other);
                    (at.min(other) + 1) as u64
                }
            };
            let broken = verify(&entries, &[], &key().verifying_key());
            // Removing the last entry leaves a valid (shorter) chain: only a checkpoint can tell.
            if how == 2 && at == n as usize - 1 {
                prop_assert!(broken.is_ok());
            } else {
                prop_assert_eq!(broken.unwrap_err().seq, first_broken);
            }
        }
    }

    #[test]
    fn the_witness_catches_rewrites_truncations_and_wipes() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let mut heads = BTreeMap::new();
        let events: Vec<Event> = (0..6)
            .map(|i| Event {
                at_us: i,
                tenant: 1 + i % 2,
                actor: "k".into(),
                action: "learner.read".into(),
                subject: None,
                detail: serde_json::json!({}),
            })
            .collect();
        let chain = chain_all(0, &mut heads, events.clone());
        let witnessed: Vec<Checkpoint> = chain[3..]
            .iter()
            .map(|e| sign_checkpoint(&key, e.event.tenant, e.seq, e.hash, 9))
            .collect();
        let public = key.verifying_key();
        assert_eq!(check_witnessed(&chain, &witnessed, &public), Ok(3));
        // Cut back by one: the last witnessed entry is gone.
        let err = check_witnessed(&chain[..5], &witnessed, &public).unwrap_err();
        assert!(err.reason.contains("cut back"), "{err:?}");
        // Wiped.
        assert!(check_witnessed(&[], &witnessed, &public).is_err());
        // Rewritten with recomputed hashes: a consistent chain, but not the witnessed one.
        let mut other = events;
        other[4].action = "nothing.happened".into();
        let rewritten = chain_all(0, &mut BTreeMap::new(), other);
        assert!(verify(&rewritten, &[], &public).is_ok());
        let err = check_witnessed(&rewritten, &witnessed, &public).unwrap_err();
        assert!(err.reason.contains("rewritten"), "{err:?}");
        // A forged witness line does not verify.
        let mut forged = witnessed.clone();
        forged[0].signature = "00".repeat(64);
        assert!(check_witnessed(&chain, &forged, &public).is_err());
    }
}
