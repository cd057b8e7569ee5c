//! Crash safety: the real binary is killed with SIGKILL while clients are ingesting; after a
//! restart every acknowledged statement must be there. On the embedded SQLite and on
//! PostgreSQL.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

struct Running {
    child: Child,
    base: String,
    token: Option<String>,
}

/// Starts `learnpulse serve` on a free port and reads its address (and, on a fresh directory,
/// the bootstrap token) from its standard output. `storage`: `--storage`, when not SQLite.
fn start(dir: &std::path::Path, storage: Option<&str>) -> Running {
    let mut command = Command::new(env!("CARGO_BIN_EXE_learnpulse"));
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--durability",
            "full",
            "--data-dir",
        ])
        .arg(dir);
    if let Some(url) = storage {
        command.args(["--storage", url]);
    }
    let mut child = command
        .env_remove("LEARNPULSE_STORAGE")
        .env("LEARNPULSE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut token, mut base) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while base.is_none() && Instant::now() < deadline {
        let line = lines
            .next()
            .expect("the server prints its address")
            .unwrap();
        if let Some(t) = line.trim().strip_prefix("token:") {
            token = Some(t.trim().to_owned());
        }
        if let Some(rest) = line.strip_prefix("learnpulse listening on ") {
            base = Some(rest.split_whitespace().next().unwrap().to_owned());
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Running {
        child,
        base: base.expect("an address"),
        token,
    }
}

fn statement(client: usize, n: usize) -> Value {
    json!({
        "actor": {"account": {"homePage": "https://lms.example.edu", "name": format!("c{client}-l{}", n % 7)}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
        "object": {"id": format!("https://lms.example.edu/items/{n}")},
        "result": {"success": n.is_multiple_of(2), "duration": "PT3S"}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_statement_survives_kill_9() {
    survives_kill_9(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_statement_survives_kill_9_on_postgres() {
    survives_kill_9(true).await;
}

async fn survives_kill_9(on_postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let storage = on_postgres.then(|| common::postgres_url(dir.path()));
    let mut server = start(dir.path(), storage.as_deref());
    let token = server
        .token
        .clone()
        .expect("a fresh data directory prints the admin token");
    let url = format!("{}/xAPI/statements", server.base);

    let stop_at = Instant::now() + Duration::from_millis(1_500);
    let mut clients = Vec::new();
    for c in 0..4 {
        let (url, token) = (url.clone(), token.clone());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut acknowledged: Vec<String> = Vec::new();
            let mut n = 0;
            // Keep posting until the server dies; only 200 responses count as acknowledged.
            loop {
                let batch: Vec<Value> = (0..20)
                    .map(|_| {
                        n += 1;
                        statement(c, n)
                    })
                    .collect();
                let r = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("X-Experience-API-Version", "1.0.3")
                    .json(&batch)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => match r.json::<Vec<String>>().await {
                        Ok(ids) => acknowledged.extend(ids),
                        Err(_) => break,
                    },
                    _ => break,
                }
                if Instant::now() > stop_at + Duration::from_secs(30) {
                    break;
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep_until(stop_at.into()).await;
    server.child.kill().expect("SIGKILL"); // std's kill() is SIGKILL on Unix
    server.child.wait().unwrap();
    let mut acknowledged = Vec::new();
    for c in clients {
        acknowledged.extend(c.await.unwrap());
    }
    assert!(
        acknowledged.len() >= 100,
        "the load ran (only {} acknowledged)",
        acknowledged.len()
    );

    let mut restarted = start(dir.path(), storage.as_deref());
    assert!(
        restarted.token.is_none(),
        "a restart does not bootstrap again"
    );
    let stored = common::stored_ids(&restarted.base, &token).await;
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged statements lost, e.g. {:?}",
        lost.len(),
        acknowledged.len(),
        lost.first()
    );
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();
}

/// Three nodes on one PostgreSQL database; clients post to their node and, when it fails,
/// retry the same batch (same statement ids) at the next. One node is killed with SIGKILL
/// mid-way: every acknowledged statement is stored, and the audit chain, which all three
/// appended to, verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_three_nodes_killed_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::postgres_url(dir.path());
    let mut nodes = vec![start(dir.path(), Some(&url))];
    let token = nodes[0].token.clone().expect("the first node bootstraps");
    nodes.push(start(dir.path(), Some(&url)));
    nodes.push(start(dir.path(), Some(&url)));
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();

    let kill_at = Instant::now() + Duration::from_millis(1_500);
    let stop_at = kill_at + Duration::from_millis(1_500);
    let mut clients = Vec::new();
    for c in 0..6usize {
        let (bases, token) = (bases.clone(), token.clone());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut acknowledged: Vec<String> = Vec::new();
            let (mut n, mut node, mut retries) = (0usize, c % 3, 0);
            while Instant::now() < stop_at {
                let batch: Vec<Value> = (0..20)
                    .map(|_| {
                        n += 1;
                        let mut s = statement(c, n);
                        s["id"] = json!(format!("{c:08x}-0000-4000-8000-{n:012x}"));
                        s
                    })
                    .collect();
                // Until some node takes it (a node that died mid-request may or may not have
                // committed it: the retry is then an identical re-post).
                let (ids, tries) =
                    common::post_until_taken(&http, &bases, &mut node, &token, &batch).await;
                acknowledged.extend(ids);
                retries += tries;
            }
            (acknowledged, retries)
        }));
    }
    tokio::time::sleep_until(kill_at.into()).await;
    nodes[0].child.kill().expect("SIGKILL");
    nodes[0].child.wait().unwrap();
    let (mut acknowledged, mut retries) = (Vec::new(), 0);
    for c in clients {
        let (a, r) = c.await.unwrap();
        acknowledged.extend(a);
        retries += r;
    }
    assert!(retries > 0, "the killed node's clients moved to another");
    assert!(
        acknowledged.len() >= 300,
        "the load ran ({} acknowledged)",
        acknowledged.len()
    );

    let stored = common::stored_ids(&bases[1], &token).await;
    let lost = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .count();
    assert_eq!(
        lost,
        0,
        "{lost} of {} acknowledged statements lost",
        acknowledged.len()
    );
    for node in &mut nodes[1..] {
        let pid = node.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        node.child.wait().unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_learnpulse"))
        .args(["audit", "verify", "--data-dir"])
        .arg(dir.path())
        .args(["--storage", &url])
        .env_remove("LEARNPULSE_MASTER_KEY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the chain three nodes appended to verifies: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), None);
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
