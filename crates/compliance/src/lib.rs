//! # learnpulse-compliance
//!
//! The compliance core, as pure code: what the server records and checks, without the recording.
//!
//! - [`audit`]: the tamper-evident audit log: each entry commits to the one before it (a SHA-256
//!   chain), and signed checkpoints (Ed25519) pin the chain's head, so that changing, removing,
//!   reordering or appending an entry without the signing key is found by [`audit::verify`].

pub mod audit;
