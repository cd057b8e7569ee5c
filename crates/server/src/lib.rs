//! # learnpulse-server
//!
//! The imperative shell around [`learnpulse_core`]: HTTP, storage, live delivery, metrics.
//! Read `ARCHITECTURE.md` at the repository root for the path of one event; this is the map of
//! where each step lives:
//!
//! - [`app`]: state, router assembly, start-up (bootstrap, replay), graceful shutdown.
//! - [`connections`]: the accept loop: connection limit, header-read timeout, descriptor limit.
//! - [`audit`]: the auditor: every access and action becomes an entry of the hash chain.
//! - [`compliance`]: gathers facts about a tenant, runs the compliance rules, reports.
//! - [`cache`]: the multi-layer cache of hot reads (L1 in process, L2 Redis, L3 the database).
//! - [`auth`]: API keys (Bearer / Basic), roles and the one permission table.
//! - [`session`]: browser sessions (sealed cookies, one-time sign-in links, CSRF tokens) that
//!   act with a key's role and groups.
//! - [`dashboard`]: the web pages at `/ui/` (class view, learner, interventions, DPO, operator),
//!   compiled into the binary; they read the same API as every other client.
//! - [`xapi`]: the xAPI edge: validation, completion, mapping to learning events, the
//!   statements resource with attachments and formats, the document resources
//!   ([`xapi::documents`]), and 1.0.3's alternate request syntax.
//! - [`native`]: `POST /v1/events`, mapped to xAPI statements at the edge.
//! - [`state`]: [`state::AppState`], what every handler can reach (a leaf: handlers import it,
//!   not the server's assembly).
//! - [`storage`]: everything kept, one trait per concern, the enum of backends and
//!   [`storage::open`]; [`storage::sqlite`] (embedded, the default) and [`storage::postgres`].
//! - [`elected`]: duties one process of an installation performs (compliance monitoring,
//!   snapshots), led through [`storage::leadership`].
//! - [`follow`]: the log follower: the start-up replay and live application of new entries.
//! - [`live`]: per-tenant learner engines fed by the follower, and the fan-out of their
//!   updates to the streams that follow them ([`live::fanout`]).
//! - [`snapshot`]: engine snapshots, so that a restart replays only the log's tail.
//! - [`views`]: how decisions are shown, shared by HTTP, SSE, MCP and webhooks.
//! - [`invalidate`]: applies changes announced by other processes (keys, privacy state,
//!   policies, erasures) to this process's caches.
//! - [`interventions`]: intervention policies per tenant and the latest decisions.
//! - [`learners`]: learner state; [`stream`]: the SSE stream; [`timeline`]: a learner's history,
//!   replayed from the log.
//! - [`privacy`]: each tenant's keys (sealed under the master key), privacy policy, roster and
//!   consents, fed to the pure pipeline in `learnpulse_privacy` at ingest; the privacy API.
//! - [`analytics`]: differentially private aggregates for researchers (OpenDP noise, budgets,
//!   ledger, k-anonymity suppression).
//! - [`admin`]: tenants and keys over HTTP.
//! - [`ops`], [`metrics`]: health, readiness, Prometheus, OpenAPI.
//! - [`problem`]: RFC 9457 error bodies.
//! - [`subject_requests`]: GDPR access and erasure requests across every store.
//! - [`transfer`]: `storage copy`, moving an installation between backends and verifying it.
//! - [`delivery`]: webhooks: the durable outbox, the dispatcher (signing, retries, circuit
//!   breakers, weighted routing, dead letters) and `/v1/webhooks`.
//! - [`mcp`]: the MCP server for AI tutors (`/mcp` over streamable HTTP, and stdio).
//! - [`config`]: the configuration file's shape and defaults.
//! - [`model_file`]: fitted knowledge-tracing parameters on disk.
//!
//! The load clients (the classroom simulator, the load generator, the probes) and the bench
//! framework are ordinary HTTP clients of the server and live outside it, in `learnpulse-bench`.

pub mod admin;
pub mod analytics;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cache;
pub mod compliance;
pub mod config;
pub mod connections;
pub mod dashboard;
pub mod delivery;
pub mod elected;
pub mod follow;
pub mod interventions;
pub mod invalidate;
pub mod learners;
pub mod live;
pub mod mcp;
pub mod metrics;
pub mod model_file;
pub mod native;
pub mod openapi;
pub mod ops;
pub mod privacy;
pub mod problem;
pub mod session;
pub mod snapshot;
pub mod state;
pub mod storage;
pub mod stream;
pub mod subject_requests;
pub mod timeline;
pub mod transfer;
pub mod views;
pub mod xapi;

pub use app::{Server, shutdown_signal};
pub use config::Config;
