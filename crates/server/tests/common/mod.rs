//! Black-box test harness: the real server on a random port, spoken to over HTTP.
#![allow(dead_code)]

use std::path::Path;

use learnpulse_server::storage::Durability;
use learnpulse_server::{Config, Server};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub struct TestApp {
    pub base: String,
    /// Admin token of the operator tenant.
    pub admin: String,
    pub client: Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// The storage backends every test suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

tokio::task_local! {
    /// The backend of the test running in this task (set by [`on_every_backend!`]).
    pub static BACKEND: Backend;
}

/// The backend of the current test: SQLite unless [`on_every_backend!`] says otherwise.
pub fn backend() -> Backend {
    BACKEND.try_with(|b| *b).unwrap_or(Backend::Sqlite)
}

/// Runs each listed `async fn name()` once per backend, as `sqlite::name` and
/// `postgres::name` (the PostgreSQL server on 127.0.0.1:5432; each test gets a database of its
/// own, named after its data directory).
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::BACKEND.scope($crate::common::Backend::Sqlite, super::$name()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::BACKEND.scope($crate::common::Backend::Postgres, super::$name()).await
                }
            )*
        }
    };
}

/// The PostgreSQL server the tests use.
pub const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

/// A database of this test's own on the test server, derived from its data directory (so that
/// a restart on the same directory finds the same database). `open` creates it.
pub fn postgres_url(dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    format!("{POSTGRES}/lp_test_{:016x}", h.finish())
}

/// The configuration of a test server on `dir`, on the current test's backend.
pub fn config(dir: &Path) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        ..Default::default()
    };
    if backend() == Backend::Postgres {
        config.storage.url = Some(postgres_url(dir));
    }
    config.storage.durability = Durability::Process;
    config.limits.max_body_bytes = 256 * 1024;
    config.limits.max_batch = 200;
    config.limits.max_query_limit = 100;
    config
}

/// Storage alone on `dir`, on the current test's backend.
pub async fn storage(dir: &Path) -> learnpulse_server::storage::Storage {
    learnpulse_server::storage::open(&config(dir))
        .await
        .expect("storage opens")
}

/// A connection of the test's own to its PostgreSQL database, to look under the API.
pub async fn postgres_client(dir: &Path) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&postgres_url(dir), tokio_postgres::NoTls)
        .await
        .expect("the test database");
    tokio::spawn(connection);
    client
}

/// The tables of the test's PostgreSQL database.
async fn postgres_tables(client: &tokio_postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' ORDER BY table_name",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Everything the store holds for `dir`, to search for what must not be there: on SQLite the
/// raw bytes of its files (the log, its WAL, the index, the outbox: deleted rows included, which
/// `secure_delete` overwrites); on PostgreSQL every row of every table as text (rows deleted
/// there are out of reach of every query at once; the server reclaims their space by VACUUM).
pub async fn raw_store(dir: &Path) -> Vec<u8> {
    match backend() {
        Backend::Sqlite => {
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                // (A WAL may vanish as the stopped server's last connection closes.)
                if name.starts_with("learnpulse")
                    && let Ok(file) = std::fs::read(&path)
                {
                    bytes.extend(file);
                }
            }
            bytes
        }
        Backend::Postgres => {
            let client = postgres_client(dir).await;
            let mut bytes = Vec::new();
            for table in postgres_tables(&client).await {
                for row in client
                    .query(&format!("SELECT t::text FROM \"{table}\" t"), &[])
                    .await
                    .unwrap()
                {
                    bytes.extend(row.get::<_, String>(0).into_bytes());
                    bytes.push(b'\n');
                }
            }
            bytes
        }
    }
}

/// The tables with a row whose text holds `needle`, on either backend.
pub async fn tables_holding(dir: &Path, needle: &str) -> Vec<String> {
    let pattern = format!("%{needle}%");
    let mut found = Vec::new();
    match backend() {
        Backend::Sqlite => {
            let conn = rusqlite::Connection::open(dir.join("learnpulse.db")).unwrap();
            let tables: Vec<String> = conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            for table in tables {
                let columns: Vec<String> = conn
                    .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                    .unwrap()
                    .query_map([], |r| r.get(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                let any = columns
                    .iter()
                    .map(|c| format!("CAST(\"{c}\" AS TEXT) LIKE ?1"))
                    .collect::<Vec<_>>()
                    .join(" OR ");
                let n: i64 = conn
                    .query_row(
                        &format!("SELECT count(*) FROM \"{table}\" WHERE {any}"),
                        [&pattern],
                        |r| r.get(0),
                    )
                    .unwrap();
                if n > 0 {
                    found.push(table);
                }
            }
        }
        Backend::Postgres => {
            let client = postgres_client(dir).await;
            for table in postgres_tables(&client).await {
                let n: i64 = client
                    .query_one(
                        &format!("SELECT count(*) FROM \"{table}\" t WHERE t::text LIKE $1"),
                        &[&pattern],
                    )
                    .await
                    .unwrap()
                    .get(0);
                if n > 0 {
                    found.push(table);
                }
            }
        }
    }
    found
}

/// Changes the store under the API (to simulate a crash's losses): `sqlite` runs on the file
/// `file` of the data directory, `postgres` on the test's database.
pub async fn tamper(dir: &Path, file: &str, sqlite: &str, postgres: &str) {
    match backend() {
        Backend::Sqlite => rusqlite::Connection::open(dir.join(file))
            .unwrap()
            .execute_batch(sqlite)
            .unwrap(),
        Backend::Postgres => postgres_client(dir)
            .await
            .batch_execute(postgres)
            .await
            .unwrap(),
    }
}

impl TestApp {
    /// Starts a server on `dir`; `admin` is the bootstrap key on a fresh directory, or the one
    /// given (for restarts).
    pub async fn start_with(config: Config, admin: Option<String>) -> TestApp {
        let server = Server::start(config).await.expect("server starts");
        let base = format!("http://{}", server.local_addr());
        let admin = admin
            .or_else(|| server.bootstrap_key().map(|k| k.token.clone()))
            .expect("an admin token");
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        TestApp {
            base,
            admin,
            client: Client::new(),
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub async fn start(dir: &Path) -> TestApp {
        TestApp::start_with(config(dir), None).await
    }

    /// Graceful stop; returns when the server has drained and exited.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.handle.take().unwrap().await.unwrap().unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path` with a Bearer token.
    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// `GET path` with a Bearer token, as JSON.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str, token: &str) -> T {
        self.get(path, token).await.json().await.unwrap()
    }

    /// An xAPI `GET path`, as JSON.
    pub async fn xapi_json(&self, path: &str, token: &str) -> Value {
        self.xapi(reqwest::Method::GET, path, token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn xapi(&self, method: reqwest::Method, path: &str, token: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .header("X-Experience-API-Version", "1.0.3")
    }

    /// `PUT path` with a JSON body and a Bearer token.
    pub async fn put_json(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .put(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `POST path` with a JSON body and a Bearer token.
    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_statements(&self, token: &str, body: &Value) -> Response {
        self.xapi(reqwest::Method::POST, "/xAPI/statements", token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_statement(&self, token: &str, id: &str) -> Response {
        self.xapi(
            reqwest::Method::GET,
            &format!("/xAPI/statements?statementId={id}"),
            token,
        )
        .send()
        .await
        .unwrap()
    }

    /// `PUT /v1/interventions/policies` with a TOML policy set.
    pub async fn put_policies(&self, token: &str, toml: &str) -> Response {
        self.client
            .put(self.url("/v1/interventions/policies"))
            .bearer_auth(token)
            .header("content-type", "application/toml")
            .body(toml.to_owned())
            .send()
            .await
            .unwrap()
    }

    /// The Prometheus exposition of `/metrics`.
    pub async fn metrics_text(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Creates a key with `role` in the caller's tenant.
    /// The tenant's current pseudonym of a learner id.
    pub async fn pseudonym(&self, token: &str, id: &str) -> String {
        let r = self
            .client
            .post(self.url("/v1/privacy/pseudonyms"))
            .bearer_auth(token)
            .json(&serde_json::json!({"ids": [id]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let map: Value = r.json().await.unwrap();
        map[id].as_str().unwrap().to_owned()
    }

    pub async fn key(&self, admin: &str, role: &str) -> String {
        let r = self
            .client
            .post(self.url("/v1/admin/keys"))
            .bearer_auth(admin)
            .json(&json!({"role": role, "label": format!("test {role}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Revokes the key of `token` with the admin key.
    pub async fn revoke(&self, token: &str) {
        let key_id = token.split('.').next().unwrap();
        let r = self
            .client
            .delete(self.url(&format!("/v1/admin/keys/{key_id}")))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }

    /// Creates a tenant; returns its admin token.
    pub async fn tenant(&self, name: &str) -> String {
        let r = self
            .client
            .post(self.url("/v1/admin/tenants"))
            .bearer_auth(&self.admin)
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.unwrap()["admin_key"]["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// The next event of an SSE stream, as its text (`event: …\ndata: …`); panics after 10 s.
pub async fn next_sse_event(stream: &mut Response) -> String {
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.chunk())
            .await
            .expect("an event within 10 s");
        text.push_str(std::str::from_utf8(&chunk.unwrap().unwrap()).unwrap());
    }
    text
}

/// A valid `answered` statement of learner `who` on `item` (skill `fractions`, class-7b).
pub fn answered(who: &str, item: &str, correct: bool) -> Value {
    json!({
        "actor": {"objectType": "Agent", "account": {"homePage": "https://lms.example.edu", "name": who}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered", "display": {"en-US": "answered"}},
        "object": {"objectType": "Activity", "id": format!("https://lms.example.edu/items/{item}")},
        "result": {"success": correct, "duration": "PT9.5S"},
        "context": {"extensions": {"https://learnpulse.dev/xapi/ext/skills": ["fractions"],
                                   "https://learnpulse.dev/xapi/ext/group": "class-7b"}},
        "timestamp": "2026-11-26T09:30:00Z"
    })
}

pub async fn problem(r: Response) -> Value {
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "errors are problem documents"
    );
    r.json().await.unwrap()
}

/// Percent-encodes a query parameter's value (every byte but the unreserved ones).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
