//! The accept loop: HTTP/1.1 connections with a limit, a header-read timeout and graceful
//! shutdown.
//!
//! `axum::serve` keeps every connection forever: idle keep-alive sockets and slowloris clients
//! (headers sent a byte at a time) were still open after minutes, and with the default
//! 1,024-descriptor limit 1,100 of them made the server unreachable. Here:
//! - at most `limits.max_connections` are open at once; one more is answered `503` with a
//!   problem document and `Retry-After`, then closed, so a flood never takes the descriptors the
//!   open connections and the database need;
//! - hyper's header-read timer closes a connection that has not sent a request's headers within
//!   `limits.header_read_timeout_secs`, on a new connection and between kept-alive requests (a
//!   response in progress, such as an SSE stream, is not affected);
//! - at start the descriptor soft limit is raised to the hard limit ([`raise_descriptor_limit`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// How the loop treats connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

/// The problem sent to a connection past the limit.
const REFUSAL_BODY: &str = r#"{"type":"https://learnpulse.dev/problems/too-many-connections","title":"Service Unavailable","status":503,"detail":"the server holds its maximum of open connections (limits.max_connections)"}"#;

/// The whole answer to a connection past the limit.
fn refusal() -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{REFUSAL_BODY}",
        REFUSAL_BODY.len()
    )
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    metrics::gauge!("learnpulse_connection_limit").set(limits.max_connections as f64);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors (EMFILE) or a connection reset before it was accepted: wait
                // a moment rather than spin.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        // Small writes (an SSE event, a short JSON answer) go out at once instead of waiting
        // out Nagle's algorithm against the peer's delayed ACK (~40 ms).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("learnpulse_connections_refused_total").increment(1);
            tokio::spawn(refuse(stream));
            continue;
        };
        metrics::gauge!("learnpulse_connections_open").increment(1.0);
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            metrics::gauge!("learnpulse_connections_open").decrement(1.0);
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(refusal().as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Raises this process's open-descriptor soft limit to its hard limit (every connection is a
/// descriptor; the default soft limit is often 1,024) and returns the limit now in force.
pub fn raise_descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return None;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
        }
        Some(limit.rlim_cur)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_well_formed_response() {
        let text = refusal();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), length);
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["status"], 503);
    }

    #[test]
    fn the_descriptor_limit_is_at_least_what_it_was() {
        assert!(raise_descriptor_limit().is_some_and(|n| n >= 256));
    }
}
