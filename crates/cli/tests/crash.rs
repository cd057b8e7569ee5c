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
    let http = reqwest::Client::new();
    let mut stored = std::collections::HashSet::new();
    let mut next = "/xAPI/statements?limit=500".to_owned();
    while !next.is_empty() {
        let page: Value = http
            .get(format!("{}{next}", restarted.base))
            .bearer_auth(&token)
            .header("X-Experience-API-Version", "1.0.3")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for s in page["statements"].as_array().unwrap() {
            stored.insert(s["id"].as_str().unwrap().to_owned());
        }
        next = page["more"].as_str().unwrap().to_owned();
    }
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
