//! learnpulse's performance validation, outside the server it measures.
//!
//! Two layers:
//! - **load clients** that talk to a running server over HTTP, as real clients do:
//!   [`simulator`] (a classroom of simulated learners, also behind `serve --demo`), [`loadgen`]
//!   (ingest at full speed), [`probe`] (event → intervention on the SSE stream) and
//!   [`webhook_probe`] (decisions → signed webhook deliveries) and [`subscribers`] (a crowd of
//!   live-stream subscribers);
//! - **the framework** behind `learnpulse bench run / compare / report`: [`suites`] measure
//!   (each starts a server on a temporary data directory unless given a URL), [`record`] keeps
//!   every measurement as a JSON line with its commit, date and machine, [`targets`] holds the
//!   checked-in floors and ceilings, and [`report`] draws every metric over commits as one HTML
//!   page with SVG charts.
//!
//! Noise: this kind of machine drifts by 2-3x from hour to hour, so every metric is measured
//! several times (median and spread are kept), comparisons are ratios, and a regression is only
//! called beyond the noise band (the larger of both spreads and a floor of 10 %).

pub mod loadgen;
pub mod probe;
pub mod record;
pub mod report;
pub mod simulator;
pub mod subscribers;
pub mod suites;
pub mod targets;
pub mod webhook_probe;
