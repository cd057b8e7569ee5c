//! The three-node installation exactly as the README runs it (`scripts/cluster.sh`: three nodes
//! on one PostgreSQL database behind HAProxy with `deploy/haproxy.cfg`), under load through the
//! load balancer, with one node killed: clients retry what failed, nothing acknowledged is lost,
//! a stream opened through the load balancer carries events that went to other nodes, and the
//! audit chains the nodes wrote at once verify.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/cluster.sh")
}

/// Runs `scripts/cluster.sh COMMAND DIR` with this build's binary.
fn cluster(command: &str, dir: &Path, storage: &str, port: u16) -> String {
    let out = Command::new("bash")
        .arg(script())
        .args([command, dir.to_str().unwrap()])
        .env("LEARNPULSE_BIN", env!("CARGO_BIN_EXE_learnpulse"))
        .env("LEARNPULSE_STORAGE", storage)
        .env("LP_PORT", port.to_string())
        .env_remove("LEARNPULSE_MASTER_KEY")
        .output()
        .expect("bash runs the script");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "cluster.sh {command}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Four consecutive free ports (HAProxy's and the three nodes').
fn free_ports() -> u16 {
    for _ in 0..100 {
        let base = 20_000 + (std::process::id() as u16 % 1_000) * 40 + clock_noise() % 40;
        if (0..4).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no four free ports");
}

/// A few bits that differ between runs, to spread the port search.
fn clock_noise() -> u16 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u16
}

fn statement(client: usize, n: usize) -> Value {
    json!({
        "id": format!("{client:08x}-0000-4000-8000-{n:012x}"),
        "actor": {"account": {"homePage": "https://lms.example.edu", "name": format!("c{client}-l{}", n % 5)}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
        "object": {"id": format!("https://lms.example.edu/items/{n}")},
        "result": {"success": n.is_multiple_of(2)},
        "context": {"extensions": {"https://learnpulse.dev/xapi/ext/group": "class-lb"}}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_behind_haproxy_lose_nothing_when_one_dies() {
    assert!(
        Command::new("haproxy").arg("-v").output().is_ok(),
        "haproxy is missing: .ci/run installs it (apt-get install haproxy)"
    );
    let dir = tempfile::tempdir().unwrap();
    let storage = common::postgres_url(dir.path());
    let port = free_ports();
    let started = cluster("start", dir.path(), &storage, port);
    let token = started
        .lines()
        .find_map(|l| l.trim().strip_prefix("token:"))
        .expect("the first start prints the admin token")
        .trim()
        .to_owned();
    let front = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    // A second tenant writes too, so that the nodes interleave two tenants' audit chains.
    let (second_id, second) = common::create_tenant(&front, &token, "district-lb").await;

    // A stream through the load balancer (it lands on one node).
    let mut stream = http
        .get(format!("{front}/v1/stream?group=class-lb"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);

    let kill_at = Instant::now() + Duration::from_millis(1_500);
    let stop_at = kill_at + Duration::from_millis(2_000);
    let mut clients = Vec::new();
    for c in 0..5usize {
        // Clients 0-3 write for the first tenant, client 4 for the second.
        let token = if c < 4 { token.clone() } else { second.clone() };
        let front = front.clone();
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut acknowledged, mut retries, mut n) = (Vec::<String>::new(), 0, 0);
            while Instant::now() < stop_at {
                let batch: Vec<Value> = (0..20)
                    .map(|_| {
                        n += 1;
                        statement(c, n)
                    })
                    .collect();
                let (ids, tries) = common::post_until_taken(
                    &http,
                    std::slice::from_ref(&front),
                    &mut 0,
                    &token,
                    &batch,
                )
                .await;
                acknowledged.extend(ids);
                retries += tries;
            }
            (acknowledged, retries)
        }));
    }
    tokio::time::sleep_until(kill_at.into()).await;
    let victim = std::fs::read_to_string(dir.path().join("node2.pid")).unwrap();
    assert!(
        Command::new("kill")
            .args(["-KILL", victim.trim()])
            .status()
            .unwrap()
            .success()
    );
    let mut acknowledged = Vec::new();
    let mut acknowledged_second = Vec::new();
    for (c, client) in clients.into_iter().enumerate() {
        let ids = client.await.unwrap().0;
        if c < 4 {
            acknowledged.extend(ids)
        } else {
            acknowledged_second.extend(ids)
        }
    }
    assert!(
        acknowledged.len() >= 200,
        "the load ran ({} acknowledged)",
        acknowledged.len()
    );

    // Every acknowledged statement is there, read through the load balancer.
    let stored = common::stored_ids(&front, &token).await;
    let lost = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .count();
    assert_eq!(
        lost,
        0,
        "{lost} of {} acknowledged lost",
        acknowledged.len()
    );
    let stored_second = common::stored_ids(&front, &second).await;
    assert!(!acknowledged_second.is_empty());
    assert!(
        acknowledged_second
            .iter()
            .all(|id| stored_second.contains(id))
    );

    // The stream (on whichever node it landed, unless that was the one killed) carried updates
    // of statements posted through every node.
    let mut text = String::new();
    while let Ok(Ok(Some(chunk))) =
        tokio::time::timeout(Duration::from_millis(500), stream.chunk()).await
    {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if text.matches("event: learner").count() >= 20 {
            break;
        }
    }
    assert!(
        text.matches("event: learner").count() >= 20,
        "the stream carried the cluster's updates: {}",
        &text[..text.len().min(500)]
    );
    drop(stream);
    cluster("stop", dir.path(), &storage, port);

    // Three nodes appended to the audit chains at once and one died mid-way: each tenant's
    // chain is whole (no fork, no gap) and checks alone.
    let verify = |tenant: Option<i64>| {
        let mut args = vec![
            "audit",
            "verify",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ];
        args.extend(["--storage", &storage]);
        let tenant = tenant.map(|t| t.to_string());
        if let Some(t) = &tenant {
            args.extend(["--tenant", t]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_learnpulse"))
            .args(&args)
            .env_remove("LEARNPULSE_MASTER_KEY")
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        assert!(
            out.status.success(),
            "audit verify {tenant:?}: {report} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        report["entries"].as_u64().unwrap()
    };
    let whole = verify(None);
    let (first, other) = (verify(Some(1)), verify(Some(second_id)));
    assert!(
        first > 0 && other > 0 && first + other <= whole,
        "{first} + {other} of {whole}"
    );
}
