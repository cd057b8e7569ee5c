//! Pseudonymisation of learner identities: a keyed HMAC-SHA-256 per tenant.
//!
//! The same identity always gives the same pseudonym under one key (so a learner's history stays
//! together), different tenants' keys give unrelated pseudonyms (so tenants cannot link
//! learners), and without the key a pseudonym cannot be tied to an identity (the identity space
//! cannot be enumerated against an HMAC without its key). Keys are versioned: rotating adds a new
//! current key while the old ones still name the pseudonyms already stored, so
//! [`Pseudonymiser::all`] finds a learner's history under every key.

use sha2::{Digest, Sha256};

const BLOCK: usize = 64;

/// HMAC-SHA-256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// One key, with the HMAC's keyed inner and outer hash states computed once: a pseudonym then
/// costs two SHA-256 compressions instead of four.
#[derive(Clone)]
struct Key {
    version: u32,
    inner: Sha256,
    outer: Sha256,
}

impl Key {
    fn new(version: u32, key: &[u8; 32]) -> Self {
        let mut block = [0u8; BLOCK];
        block[..32].copy_from_slice(key);
        let mut inner = Sha256::new();
        inner.update(block.map(|b| b ^ 0x36));
        let mut outer = Sha256::new();
        outer.update(block.map(|b| b ^ 0x5c));
        Key {
            version,
            inner,
            outer,
        }
    }

    /// `p<version>_<first 128 bits of HMAC-SHA-256(key, identity), hex>`.
    fn pseudonym(&self, identity: &str) -> String {
        let mut inner = self.inner.clone();
        inner.update(identity.as_bytes());
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        let mac = outer.finalize();
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(36);
        out.push('p');
        out.push_str(&self.version.to_string());
        out.push('_');
        for b in &mac[..16] {
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
        out
    }
}

/// A tenant's pseudonymisation keys, oldest first; the last is current.
#[derive(Clone)]
pub struct Pseudonymiser {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(
            f,
            "Pseudonymiser {{ versions: {:?} }}",
            self.keys.iter().map(|k| k.version).collect::<Vec<_>>()
        )
    }
}

impl Pseudonymiser {
    pub fn new(version: u32, key: [u8; 32]) -> Self {
        Pseudonymiser {
            keys: vec![Key::new(version, &key)],
        }
    }

    /// Adds a new current key (rotation). Older keys stay for finding history.
    pub fn rotate(&mut self, version: u32, key: [u8; 32]) {
        self.keys.push(Key::new(version, &key));
    }

    /// The pseudonym under the current key.
    pub fn pseudonym(&self, identity: &str) -> String {
        self.keys
            .last()
            .expect("a pseudonymiser has a key")
            .pseudonym(identity)
    }

    /// The identity's pseudonym under every key, oldest first: what to look up to gather a
    /// learner's history across rotations.
    pub fn all(&self, identity: &str) -> Vec<String> {
        self.keys.iter().map(|k| k.pseudonym(identity)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn precomputed_states_give_the_plain_hmac() {
        let p = Pseudonymiser::new(3, [5; 32]);
        let mac = hmac_sha256(&[5; 32], b"ada@school.org");
        let hex: String = mac[..16].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(p.pseudonym("ada@school.org"), format!("p3_{hex}"));
    }

    #[test]
    fn stable_distinct_across_tenants_and_rotatable() {
        let tenant_a = Pseudonymiser::new(1, [7; 32]);
        let tenant_b = Pseudonymiser::new(1, [8; 32]);
        assert_eq!(
            tenant_a.pseudonym("ada@school.org"),
            tenant_a.pseudonym("ada@school.org")
        );
        assert_ne!(
            tenant_a.pseudonym("ada@school.org"),
            tenant_b.pseudonym("ada@school.org")
        );
        assert_ne!(
            tenant_a.pseudonym("ada@school.org"),
            tenant_a.pseudonym("bo@school.org")
        );
        assert!(!tenant_a.pseudonym("ada@school.org").contains("ada"));

        let mut rotated = tenant_a.clone();
        rotated.rotate(2, [9; 32]);
        let before = tenant_a.pseudonym("ada@school.org");
        assert_ne!(rotated.pseudonym("ada@school.org"), before);
        assert!(
            rotated.all("ada@school.org").contains(&before),
            "history under the old key is still found"
        );
        assert!(
            !format!("{rotated:?}").contains('9'),
            "keys are never printed"
        );
    }

    #[test]
    fn many_identities_never_collide() {
        let p = Pseudonymiser::new(1, [3; 32]);
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000 {
            assert!(seen.insert(p.pseudonym(&format!("learner-{i}"))));
        }
    }
}
