//! Outbound delivery (issue 6, in progress): the pieces of reliable webhooks that need no I/O.
//!
//! - [`signing`]: Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`,
//!   `webhook-signature: v1,<base64 HMAC-SHA-256>`), several secrets at once during a rotation.
//! - [`retry`]: the documented retry schedule with jitter, and when a message goes to the
//!   dead-letter list.
//! - [`breaker`]: a circuit breaker per endpoint (closed → open → half-open → closed).
//!
//! The durable outbox and the dispatcher that use them are not built yet.

pub mod breaker;
pub mod retry;
pub mod signing;
