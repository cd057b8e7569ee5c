//! # learnpulse-compliance
//!
//! The compliance core, as pure code: what the server records and checks, without the recording.
//!
//! - [`audit`]: the tamper-evident audit log: each entry commits to the one before it (a SHA-256
//!   chain), and signed checkpoints (Ed25519) pin the chain's head, so that changing, removing,
//!   reordering or appending an entry without the signing key is found by [`audit::verify`].
//! - [`rules`]: the compliance rules over [`rules::Facts`] the server gathers; each cites its
//!   provision and carries a severity and a remediation; rules are data, overridable per tenant.

pub mod audit;
pub mod rules;
