//! Shared by the CLI's black-box tests: a real server in this process.
#![allow(dead_code)]

use std::path::Path;

use learnpulse_server::{Config, Server};

/// A server on `dir`: its address, the bootstrap admin token (empty when `dir` held a server
/// before), the stop switch and its task.
pub async fn start_server(
    dir: &Path,
) -> (
    String,
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    start_server_with(config(dir)).await
}

/// The configuration [`start_server`] uses on `dir`, to change before [`start_server_with`].
pub fn config(dir: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        ..Default::default()
    }
}

/// A server with `config`: as [`start_server`].
pub async fn start_server_with(
    config: Config,
) -> (
    String,
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let server = Server::start(config).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let token = server
        .bootstrap_key()
        .map(|k| k.token.clone())
        .unwrap_or_default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    (base, token, stop, running)
}

/// Posts native events to a server started by [`start_server`] and expects them accepted.
pub async fn post_events(base: &str, token: &str, events: &[serde_json::Value]) {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/events"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Creates a tenant with the operator's admin token: its id and its first admin token.
pub async fn create_tenant(base: &str, admin: &str, name: &str) -> (i64, String) {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/admin/tenants"))
        .bearer_auth(admin)
        .json(&serde_json::json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.unwrap();
    let token = created["admin_key"]["token"].as_str().unwrap().to_owned();
    (created["tenant"]["id"].as_i64().unwrap(), token)
}

/// A database of the test's own on the local PostgreSQL, named after its data directory
/// (`lp_test_*`: CI drops old ones). The server creates it on first start.
pub fn postgres_url(dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    format!(
        "postgres://postgres@127.0.0.1:5432/lp_test_{:016x}",
        h.finish()
    )
}

/// Every stored statement id, read through `base`.
pub async fn stored_ids(base: &str, token: &str) -> std::collections::HashSet<String> {
    let http = reqwest::Client::new();
    let mut stored = std::collections::HashSet::new();
    let mut next = "/xAPI/statements?limit=500".to_owned();
    while !next.is_empty() {
        let page: serde_json::Value = http
            .get(format!("{base}{next}"))
            .bearer_auth(token)
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
    stored
}

/// Posts `batch` to `bases[*node]` until one takes it (200), moving to the next base after each
/// failure (a refused connection, a 5xx, a timeout); returns the acknowledged ids and how many
/// attempts failed.
pub async fn post_until_taken(
    http: &reqwest::Client,
    bases: &[String],
    node: &mut usize,
    token: &str,
    batch: &[serde_json::Value],
) -> (Vec<String>, u32) {
    let mut failed = 0;
    loop {
        let r = http
            .post(format!("{}/xAPI/statements", bases[*node]))
            .bearer_auth(token)
            .header("X-Experience-API-Version", "1.0.3")
            .timeout(std::time::Duration::from_secs(5))
            .json(batch)
            .send()
            .await;
        if let Ok(r) = r
            && r.status() == 200
            && let Ok(ids) = r.json::<Vec<String>>().await
        {
            return (ids, failed);
        }
        failed += 1;
        assert!(failed < 500, "no server takes the batch");
        *node = (*node + 1) % bases.len();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Runs the Python script `script` with `args` (off the async runtime) in the test tools'
/// virtual environment (`target/venv-test`, made by `scripts/test-tools.sh` with
/// `.ci/requirements-test.txt`); returns the JSON report it prints. Fails the test with the
/// script's output when it fails.
pub async fn run_python(script: &str, args: Vec<String>) -> serde_json::Value {
    let script = script.to_owned();
    let python = target_dir().join("venv-test/bin/python");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .arg(&script)
            .args(&args)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "{} does not run ({e}): run scripts/test-tools.sh first",
                    python.display()
                )
            })
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the Python client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the client prints its report as JSON")
}

/// Issues a key with `body` (`{"role": …, "groups": […]}`) through the admin API; its token.
pub async fn issue_key(base: &str, admin: &str, body: serde_json::Value) -> String {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/admin/keys"))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The workspace's target directory (where `.ci/run` installs the test tools).
pub fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target"))
        })
}
