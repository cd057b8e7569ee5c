//! Prometheus metrics: the `metrics` facade everywhere, rendered by the exporter's handle at
//! `GET /metrics` (no separate listener, no push gateway).
//!
//! Names: `learnpulse_http_requests_total{method,route,status}`,
//! `learnpulse_http_request_duration_seconds{method,route}`, `learnpulse_statements_ingested_total`,
//! `learnpulse_commit_seconds`, `learnpulse_commit_batch_statements`,
//! `learnpulse_commit_batch_requests`, `learnpulse_learners_in_memory`,
//! `learnpulse_engine_events_total`, `learnpulse_auth_failures_total`,
//! `learnpulse_stream_subscribers`, `learnpulse_index_lag_statements`,
//! `learnpulse_index_batch_statements`, `learnpulse_wal_bytes`, `learnpulse_wal_restart_seconds`,
//! `learnpulse_follower_lag_statements` (log head minus what this node's learner state has
//! applied), `learnpulse_data_dir_free_bytes` and `learnpulse_data_dir_size_bytes` (measured at
//! each scrape).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Latency buckets from 50 µs to 10 s: ingest latencies live in the low milliseconds.
const BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];
/// Buckets from 0.5 µs to 1 ms, for per-statement and per-event work inside the process.
const MICRO_BUCKETS: &[f64] = &[
    0.0000005, 0.000001, 0.000002, 0.000005, 0.00001, 0.00002, 0.00005, 0.0001, 0.00025, 0.001,
];
/// Buckets of batch sizes.
const SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0,
];

/// Installs the process-wide recorder once and returns its handle (tests start several servers
/// in one process; they share it).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Suffix("_batch_statements".into()),
                        SIZE_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Suffix("_batch_requests".into()),
                        SIZE_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(
                            "learnpulse_privacy_pipeline_seconds".into(),
                        ),
                        MICRO_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(
                            "learnpulse_engine_update_seconds".into(),
                        ),
                        MICRO_BUCKETS,
                    )
                })
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (an embedding application's): then ours
            // renders only what is recorded through it, which is nothing; say so in the log.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

/// Middleware: RED metrics per route (rate, errors by status, duration).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("learnpulse_http_request_duration_seconds", "method" => method.clone(), "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("learnpulse_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}
