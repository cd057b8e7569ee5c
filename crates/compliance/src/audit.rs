//! The audit chain.
//!
//! Entry `n` stores `hash_n = SHA-256(hash_{n-1} ‖ encode(entry_n))`, with `hash_0` the
//! all-zero genesis. The encoding is length-prefixed, so no two different entries encode the same.
//! Editing any entry changes its hash and breaks the link to the next; deleting one leaves a gap in
//! the sequence; reordering breaks links; rewriting the whole chain from some point on is caught by
//! the signed checkpoints, which only the holder of the signing key can make.

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

/// A signature over the chain's head at `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
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

/// `hash_n` from `hash_{n-1}`, `n` and the event.
pub fn entry_hash(prev: &[u8; 32], seq: u64, event: &Event) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"learnpulse-audit-v1");
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

/// Appends `event` after `prev` (the chain's last entry, or none).
pub fn chain(prev: Option<(u64, [u8; 32])>, event: Event) -> Entry {
    let (seq, prev_hash) = match prev {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS),
    };
    let hash = entry_hash(&prev_hash, seq, &event);
    Entry {
        seq,
        event,
        prev_hash,
        hash,
    }
}

/// What a checkpoint signs.
pub fn checkpoint_message(seq: u64, hash: &[u8; 32]) -> Vec<u8> {
    let mut m = b"learnpulse-audit-checkpoint-v1".to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m
}

pub fn sign_checkpoint(key: &SigningKey, seq: u64, hash: [u8; 32], at_us: i64) -> Checkpoint {
    let signature = key.sign(&checkpoint_message(seq, &hash));
    Checkpoint {
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
}

/// Checks the whole chain in sequence order and every checkpoint against it.
pub fn verify<'a>(
    entries: impl IntoIterator<Item = &'a Entry>,
    checkpoints: &[Checkpoint],
    key: &VerifyingKey,
) -> Result<Verified, Broken> {
    verify_from(None, entries, checkpoints, key)
}

/// Checks the chain from just after `start` (an entry already verified: its sequence number and
/// hash), and the checkpoints after it. `None` starts at the genesis. Used to check only what
/// was appended since the last check; a full check is still needed now and then, because this
/// one trusts everything up to `start`.
pub fn verify_from<'a>(
    start: Option<(u64, [u8; 32])>,
    entries: impl IntoIterator<Item = &'a Entry>,
    checkpoints: &[Checkpoint],
    key: &VerifyingKey,
) -> Result<Verified, Broken> {
    let (first, mut prev) = start.map_or((1, GENESIS), |(seq, hash)| (seq + 1, hash));
    let mut expected = first;
    let mut hashes: Vec<[u8; 32]> = Vec::new();
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
        if e.prev_hash != prev {
            return Err(Broken {
                seq: e.seq,
                reason: "does not link to the entry before it".into(),
            });
        }
        if entry_hash(&prev, e.seq, &e.event) != e.hash {
            return Err(Broken {
                seq: e.seq,
                reason: "its content does not match its hash (changed after it was written)".into(),
            });
        }
        prev = e.hash;
        hashes.push(e.hash);
        expected += 1;
    }
    let mut signed_through = 0;
    for c in checkpoints.iter().filter(|c| c.seq >= first) {
        let Some(hash) = hashes.get((c.seq - first) as usize) else {
            return Err(Broken {
                seq: c.seq,
                reason: "a checkpoint names an entry the chain does not have (entries were removed from the end)".into(),
            });
        };
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
        if signature.is_none_or(|s| key.verify(&checkpoint_message(c.seq, &c.hash), &s).is_err()) {
            return Err(Broken {
                seq: c.seq,
                reason: "the checkpoint's signature is not valid for the audit key".into(),
            });
        }
        signed_through = signed_through.max(c.seq);
    }
    Ok(Verified {
        entries: expected - 1,
        checkpoints: checkpoints.len(),
        signed_through,
        head: prev,
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
        let mut out: Vec<Entry> = Vec::new();
        for i in 0..n {
            let prev = out.last().map(|e| (e.seq, e.hash));
            out.push(chain(prev, event(i)));
        }
        out
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let entries = build(10);
        let cps = vec![sign_checkpoint(&key(), 5, entries[4].hash, 0)];
        let v = verify(&entries, &cps, &key().verifying_key()).unwrap();
        assert_eq!((v.entries, v.signed_through), (10, 5));
    }

    #[test]
    fn checking_from_a_verified_entry_covers_what_came_after() {
        let entries = build(8);
        let cps = vec![
            sign_checkpoint(&key(), 3, entries[2].hash, 0),
            sign_checkpoint(&key(), 8, entries[7].hash, 0),
        ];
        let head = (entries[4].seq, entries[4].hash);
        let v = verify_from(Some(head), &entries[5..], &cps, &key().verifying_key()).unwrap();
        assert_eq!((v.entries, v.signed_through), (8, 8));
        let mut tampered = entries.clone();
        tampered[6].event.action = "learner.write".into();
        let broken = verify_from(Some(head), &tampered[5..], &cps, &key().verifying_key());
        assert_eq!(broken.unwrap_err().seq, 7);
    }

    #[test]
    fn forged_or_foreign_checkpoints_are_caught() {
        let entries = build(4);
        let other = SigningKey::from_bytes(&[8; 32]);
        let cps = vec![sign_checkpoint(&other, 4, entries[3].hash, 0)];
        assert_eq!(
            verify(&entries, &cps, &key().verifying_key())
                .unwrap_err()
                .seq,
            4
        );
        // Entries removed from the end: the checkpoint names one that is gone.
        let cps = vec![sign_checkpoint(&key(), 4, entries[3].hash, 0)];
        assert!(verify(&entries[..3], &cps, &key().verifying_key()).is_err());
    }

    #[test]
    fn rewriting_the_tail_consistently_is_caught_by_a_checkpoint() {
        let mut entries = build(6);
        let cps = vec![sign_checkpoint(&key(), 6, entries[5].hash, 0)];
        // Rewrite entry 3 and re-chain everything after it, as an attacker without the key could.
        entries[2].event.subject = Some("someone else".into());
        for i in 2..6 {
            let prev = (i > 0).then(|| (entries[i - 1].seq, entries[i - 1].hash));
            entries[i] = chain(prev, entries[i].event.clone());
        }
        assert!(
            verify(&entries, &[], &key().verifying_key()).is_ok(),
            "a bare chain cannot tell"
        );
        let broken = verify(&entries, &cps, &key().verifying_key()).unwrap_err();
        assert_eq!(broken.seq, 6);
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
}
