//! The multi-layer cache with a real Redis (a `redis-server` of this test's own, so that it can
//! be stopped): what one node loaded is an L2 hit at another; with Redis gone the nodes keep
//! serving (from L1 and the database); a revoked key is refused everywhere at once; and the L2
//! comes back by itself when Redis does.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, TestApp};

/// A `redis-server` on `port`, stopped when dropped.
struct Redis(Child);

impl Redis {
    fn start(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs (CI installs Redis)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis(child)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `learnpulse_cache_lookups_total` of the key cache at `layer` with `result` (the nodes of
/// this test share one process, hence one metrics registry: the figure is theirs together).
async fn lookups(app: &TestApp, layer: &str, result: &str) -> u64 {
    let (layer, result) = (format!("layer=\"{layer}\""), format!("result=\"{result}\""));
    app.metrics_text()
        .await
        .lines()
        .filter(|l| {
            l.starts_with("learnpulse_cache_lookups_total{") && l.contains("cache=\"keys\"")
        })
        .filter(|l| l.contains(&layer) && l.contains(&result))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// A request that needs the key to authenticate (404: the key works, the learner is unknown).
async fn uses_key(app: &TestApp, token: &str) -> u16 {
    app.get("/v1/learners/nobody", token)
        .await
        .status()
        .as_u16()
}

async fn nodes_share_l2_serve_without_redis_and_get_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let redis = Redis::start(port);
    let mut config = common::config(dir.path());
    config.cache.url = Some(format!("redis://127.0.0.1:{port}"));
    let a = TestApp::start_with(config.clone(), None).await;
    let b = TestApp::start_with(config.clone(), Some(a.admin.clone())).await;

    // Loaded from the database at A, then an L2 hit at B.
    let teacher = a.key(&a.admin, "teacher").await;
    assert_eq!(uses_key(&a, &teacher).await, 404);
    let hits = lookups(&a, "l2", "hit").await;
    assert_eq!(uses_key(&b, &teacher).await, 404);
    assert_eq!(
        lookups(&a, "l2", "hit").await,
        hits + 1,
        "B found A's load in Redis"
    );

    // Redis gone: keys still work (from the database), the failed L2 lookups are counted.
    drop(redis);
    let errors = lookups(&a, "l2", "error").await;
    let other = a.key(&a.admin, "teacher").await;
    assert_eq!(uses_key(&b, &other).await, 404);
    assert!(lookups(&a, "l2", "error").await > errors);
    // A revocation is still enforced everywhere (the announcement does not need Redis).
    a.revoke(&teacher).await;
    let started = Instant::now();
    while uses_key(&b, &teacher).await != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "B still accepts the revoked key"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Redis back: after the reconnection interval, loads reach L2 again.
    let _redis = Redis::start(port);
    let started = Instant::now();
    loop {
        let fresh = a.key(&a.admin, "teacher").await;
        assert_eq!(uses_key(&a, &fresh).await, 404);
        let hits = lookups(&a, "l2", "hit").await;
        assert_eq!(uses_key(&b, &fresh).await, 404);
        if lookups(&a, "l2", "hit").await > hits {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "L2 did not come back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.stop().await;
    b.stop().await;
}

mod postgres {
    use super::*;

    /// Two nodes need a shared database: PostgreSQL only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nodes_share_l2_serve_without_redis_and_get_it_back() {
        common::BACKEND
            .scope(
                Backend::Postgres,
                super::nodes_share_l2_serve_without_redis_and_get_it_back(),
            )
            .await
    }
}
