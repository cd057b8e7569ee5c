//! Sealing secrets at rest: ChaCha20-Poly1305 with a random 96-bit nonce per message and the
//! owner of the secret as associated data (so a sealed value moved to another tenant or purpose
//! does not open).
//!
//! The master key seals every tenant's pseudonym and vault keys; it lives outside the database:
//! `LEARNPULSE_MASTER_KEY` (64 hex digits), else `<data_dir>/master.key`, created with mode 0600
//! on first start. A copy of the database without the master key cannot re-identify anyone.

use std::path::Path;

use anyhow::Context;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

const NONCE: usize = 12;

#[derive(Clone)]
pub struct Sealer(ChaCha20Poly1305);

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("a sealed value did not open: wrong key, wrong owner or damaged")]
pub struct OpenError;

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        Sealer(ChaCha20Poly1305::new(Key::from_slice(key)))
    }

    /// The master key from `LEARNPULSE_MASTER_KEY`, else `<data_dir>/master.key` (created when
    /// absent).
    pub fn master(data_dir: &Path) -> anyhow::Result<Sealer> {
        if let Ok(text) = std::env::var("LEARNPULSE_MASTER_KEY") {
            let bytes = hex::decode(text.trim()).context("LEARNPULSE_MASTER_KEY is not hex")?;
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("LEARNPULSE_MASTER_KEY must be 64 hex digits"))?;
            return Ok(Sealer::new(&key));
        }
        let path = data_dir.join("master.key");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let bytes = hex::decode(text.trim())
                .with_context(|| format!("{} is not hex", path.display()))?;
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("{} must hold 64 hex digits", path.display()))?;
            return Ok(Sealer::new(&key));
        }
        std::fs::create_dir_all(data_dir)?;
        let key: [u8; 32] = rand::random();
        write_private(&path, &hex::encode(key))
            .with_context(|| format!("writing {}", path.display()))?;
        tracing::info!(path = %path.display(), "created the master key; back it up apart from the data");
        Ok(Sealer::new(&key))
    }

    /// `nonce || ciphertext+tag`.
    pub fn seal(&self, owner: &[u8], plain: &[u8]) -> Vec<u8> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .0
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: owner,
                },
            )
            .expect("ChaCha20-Poly1305 encryption cannot fail for in-memory messages");
        let mut out = Vec::with_capacity(NONCE + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, owner: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < NONCE {
            return Err(OpenError);
        }
        let (nonce, body) = sealed.split_at(NONCE);
        self.0
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: owner,
                },
            )
            .map_err(|_| OpenError)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_owner_and_key() {
        let a = Sealer::new(&[1; 32]);
        let sealed = a.seal(b"tenant:1", b"secret");
        assert_eq!(a.open(b"tenant:1", &sealed).unwrap(), b"secret");
        assert!(a.open(b"tenant:2", &sealed).is_err());
        assert!(Sealer::new(&[2; 32]).open(b"tenant:1", &sealed).is_err());
        assert_ne!(
            a.seal(b"tenant:1", b"secret"),
            sealed,
            "fresh nonce each time"
        );
    }
}
