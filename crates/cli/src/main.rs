//! `learnpulse`: the command line. `serve` runs the server; `admin` manages tenants and keys in
//! a data directory; `simulate` plays a classroom against a server; `bench` measures ingest.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use learnpulse_bench::{loadgen, simulator};
use learnpulse_server::auth::{IssuedKey, issue_key};
use learnpulse_server::storage::{AccountStore, Durability, Role, Storage};
use learnpulse_server::{Config, Server, shutdown_signal};

mod answer_log;
mod audit;
mod bench;
mod cache_bench;
mod kt;
mod load_fit;
mod pii;
mod progress;
mod replay;
mod storage;

// The request path allocates many small JSON values; mimalloc is markedly faster at that than
// glibc's allocator (see the README's "Measured" section).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "learnpulse",
    version,
    about = "Real-time, privacy-first learning analytics: an xAPI LRS and native event API that models every learner live.",
    long_about = "learnpulse ingests learning events (xAPI statements or its native event API), stores them durably in an \
embedded SQLite database (or PostgreSQL, with --storage), updates each learner's model (mastery per skill, cognitive load) on every event, and streams \
the changes live.\n\nStart with `learnpulse serve --demo` and open the dashboard link it prints."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Run the server and speak MCP on stdin/stdout, for an AI tutor that launches learnpulse
    /// itself (e.g. as an MCP "command" server). The tutor acts as the key given; the HTTP API
    /// listens as with `serve`. To reach a server that is already running, point the tutor's
    /// MCP client at its `/mcp` endpoint (streamable HTTP) instead.
    Mcp(McpArgs),
    /// Manage tenants and API keys directly in a data directory.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Post realistic xAPI statements from simulated learners to a server.
    Simulate(SimulateArgs),
    /// Measure a running server.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Knowledge tracing: fit and evaluate learner models on answer logs.
    #[command(subcommand)]
    Kt(kt::KtCommand),
    /// Stream an answer log through the learner engine; write its state before every row.
    Replay(replay::ReplayArgs),
    /// Personal data in free text: scan, and evaluate against labelled sets.
    #[command(subcommand)]
    Pii(pii::PiiCommand),
    /// The tamper-evident audit log: verify the chain, export it for an auditor.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Where the data lives: copy an installation to another backend (SQLite to PostgreSQL).
    #[command(subcommand)]
    Storage(storage::StorageCommand),
    /// Apply the schema migrations the configured database has not seen, without serving
    /// (the server also applies them at start).
    Migrate(DataDirArg),
    /// FERPA / COPPA / GDPR compliance of a running server's tenant.
    #[command(subcommand)]
    Compliance(ComplianceCommand),
}

#[derive(Subcommand)]
enum ComplianceCommand {
    /// Fetch the compliance report (rule status, findings, score) of the key's tenant.
    Report {
        #[arg(long, env = "LEARNPULSE_URL", default_value = "http://127.0.0.1:8750")]
        url: String,
        /// A dpo or admin key.
        #[arg(long, env = "LEARNPULSE_KEY")]
        key: String,
        /// `json` or `html` (a readable page).
        #[arg(long, default_value = "json")]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DurabilityArg {
    /// fsync every group commit: survives power loss.
    Full,
    /// Survives a crash of the process; the last commits may be lost on power loss.
    Process,
}

/// Settings come from flags, then `LEARNPULSE_*` environment variables, then the configuration
/// file, then defaults, in that order of precedence.
#[derive(Args)]
struct ServeArgs {
    /// Configuration file (TOML). Default: ./learnpulse.toml if it exists.
    #[arg(long, env = "LEARNPULSE_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8750].
    #[arg(long, env = "LEARNPULSE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data directory: the master key, and the embedded database unless --storage names
    /// another, created on first start [default: ./data].
    #[arg(long, env = "LEARNPULSE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The storage backend: `postgres://user@host:port/database` for PostgreSQL (its schema is
    /// created or migrated at start); unset for the embedded SQLite in the data directory.
    #[arg(long, env = "LEARNPULSE_STORAGE", hide_env_values = true)]
    storage: Option<String>,
    /// The cache the nodes of one installation share (L2): `redis://host:port`; unset for
    /// none (each process caches hot reads on its own).
    #[arg(long, env = "LEARNPULSE_CACHE", hide_env_values = true)]
    cache: Option<String>,
    /// A secret a Prometheus scraper must send (`Authorization: Bearer …`) to read `/metrics`;
    /// admin keys may always read it. Unset: `/metrics` is open.
    #[arg(long, env = "LEARNPULSE_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Keep Prometheus metrics (default true). `--metrics false` installs no recorder and
    /// times no request (`/metrics` answers 404): for measuring what metrics cost.
    #[arg(long, env = "LEARNPULSE_METRICS")]
    metrics: Option<bool>,
    /// An append-only file outside the data directory that receives every signed audit
    /// checkpoint (`audit verify --witness` checks the chain against it).
    #[arg(long, env = "LEARNPULSE_AUDIT_WITNESS")]
    audit_witness: Option<PathBuf>,
    /// The xAPI version named by the 400 answered to a request without a usable
    /// `X-Experience-API-Version` [default: 2.0.0].
    #[arg(long, env = "LEARNPULSE_XAPI_VERSION", value_parser = ["2.0.0", "1.0.3"])]
    xapi_version: Option<String>,
    /// How hard commits try to survive failures [default: full].
    #[arg(long, env = "LEARNPULSE_DURABILITY", value_enum)]
    durability: Option<DurabilityArg>,
    /// Log as JSON lines (for log collectors) instead of text.
    #[arg(long, env = "LEARNPULSE_LOG_JSON")]
    log_json: Option<bool>,
    /// Fitted knowledge-tracing model file (`learnpulse kt fit`) [default: textbook BKT].
    #[arg(long, env = "LEARNPULSE_MODEL")]
    model: Option<PathBuf>,
    /// Also run the classroom simulator against this server, so there is live data at once.
    #[arg(long)]
    demo: bool,
    /// Simulated learners in demo mode.
    #[arg(long, default_value_t = 30)]
    demo_learners: usize,
    /// Statements per second in demo mode.
    #[arg(long, default_value_t = 20.0)]
    demo_rate: f64,
}

#[derive(Args)]
struct McpArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// The API key the tutor acts as (`key_id.secret`); a tutor key scoped to its groups sees
    /// only those groups' learners.
    #[arg(long, env = "LEARNPULSE_KEY", hide_env_values = true)]
    key: String,
}

#[derive(Args)]
pub(crate) struct DataDirArg {
    /// The server's data directory (its master key, and its SQLite files unless --storage
    /// says otherwise).
    #[arg(long, env = "LEARNPULSE_DATA_DIR", default_value = "data")]
    pub(crate) data_dir: PathBuf,
    /// Where the server keeps its data, when not in the data directory:
    /// `postgres://user@host:port/database`.
    #[arg(long, env = "LEARNPULSE_STORAGE", hide_env_values = true)]
    pub(crate) storage: Option<String>,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a tenant and its first admin key.
    CreateTenant {
        name: String,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// List tenants.
    Tenants {
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Create an API key.
    CreateKey {
        /// Tenant id (see `admin tenants`).
        #[arg(long, default_value_t = 1)]
        tenant: i64,
        /// admin, ingest, teacher, researcher, dpo or tutor.
        #[arg(long)]
        role: String,
        #[arg(long)]
        label: Option<String>,
        /// Teacher and tutor keys: the groups (classes) the key may see, comma-separated;
        /// required for tutors.
        #[arg(long, value_delimiter = ',')]
        groups: Option<Vec<String>>,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// List the keys of a tenant (never their secrets).
    Keys {
        #[arg(long, default_value_t = 1)]
        tenant: i64,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Revoke a key. A running server stops accepting it within 10 seconds.
    RevokeKey {
        key_id: String,
        #[arg(long, default_value_t = 1)]
        tenant: i64,
        #[command(flatten)]
        dir: DataDirArg,
    },
}

#[derive(Args)]
struct SimulateArgs {
    /// Server base URL, or the nodes of one installation (`--url A,B,C`): batches go to each
    /// in turn.
    #[arg(
        long,
        env = "LEARNPULSE_URL",
        default_value = "http://127.0.0.1:8750",
        value_delimiter = ','
    )]
    url: Vec<String>,
    /// API token (`key_id.secret`) with the ingest or admin role.
    #[arg(long, env = "LEARNPULSE_KEY")]
    key: String,
    #[arg(long, default_value_t = 30)]
    learners: usize,
    /// Statements per second, all learners together.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    duration: Option<u64>,
    /// Number of classes the learners are spread over.
    #[arg(long, default_value_t = 3)]
    groups: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Run the bench suites (ingest, sustained, queries, live, webhooks, privacy, model,
    /// cluster), each on a server of its own on a temporary data directory unless --url is
    /// given (the cluster suite: two nodes on --postgres and --redis); store the results
    /// (bench/results.jsonl), print a summary, and fail when a target (bench/targets.toml) is
    /// missed or, with --baseline, a metric regressed beyond the noise band.
    Run(bench::RunArgs),
    /// Compare the latest stored run with a baseline's latest run; fails on a regression beyond
    /// the noise band (the larger of both runs' spreads, at least 10 %).
    Compare(bench::CompareArgs),
    /// Write one self-contained HTML page with a chart of every metric over the stored runs,
    /// its target, and the latest run against the targets.
    Report(bench::ReportArgs),
    /// Concurrent clients post statement batches for a while; prints throughput and latency as JSON.
    Ingest {
        /// The server, or the nodes of one installation (`--url A,B,C` or `--url A --url B`):
        /// client `c` posts to node `c mod n`.
        #[arg(
            long,
            env = "LEARNPULSE_URL",
            default_value = "http://127.0.0.1:8750",
            value_delimiter = ','
        )]
        url: Vec<String>,
        #[arg(long, env = "LEARNPULSE_KEY")]
        key: String,
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Statements per request (1 sends single statements).
        #[arg(long, default_value_t = 100)]
        batch: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Post the same answers as native events (`/v1/events`) instead of xAPI statements.
        #[arg(long)]
        native: bool,
    },
    /// Times events to their interventions on the SSE stream (send → arrival, ack → arrival);
    /// prints p50/p99 as JSON. Needs a key that may read learners and write events (admin).
    Interventions {
        #[arg(long, env = "LEARNPULSE_URL", default_value = "http://127.0.0.1:8750")]
        url: String,
        /// Read the stream at this node instead (another node of the installation: times an
        /// event from the node that took it to a dashboard on another).
        #[arg(long)]
        stream_url: Option<String>,
        #[arg(long, env = "LEARNPULSE_KEY")]
        key: String,
        /// Fresh learners, three wrong answers each.
        #[arg(long, default_value_t = 200)]
        rounds: usize,
    },
    /// Zipf-distributed reads of learner states over many learners through the node's cache
    /// layers (memory, Redis, the database); prints each layer's share and latency as JSON.
    Cache(cache_bench::CacheBench),
    /// Webhook delivery throughput: runs a receiver here, registers it, makes the server decide
    /// one intervention per fresh learner and counts what arrives; prints JSON. Admin key.
    Webhooks {
        #[arg(long, env = "LEARNPULSE_URL", default_value = "http://127.0.0.1:8750")]
        url: String,
        #[arg(long, env = "LEARNPULSE_KEY")]
        key: String,
        /// Fresh learners (one decision, so one message, each).
        #[arg(long, default_value_t = 10_000)]
        learners: usize,
        /// Messages per request the receiver takes (1: no batching).
        #[arg(long, default_value_t = 1)]
        max_batch: usize,
        /// Hold the receiver's answers until ingest is done, then time draining the backlog.
        #[arg(long)]
        backlog: bool,
    },
    /// Holds a crowd of live streams of the whole tenant open and reading; prints
    /// `{"connected": n}` once all are open and what they received once standard input closes
    /// (the live suite runs it as a child process).
    #[command(hide = true)]
    Subscribers {
        #[arg(long, env = "LEARNPULSE_URL", default_value = "http://127.0.0.1:8750")]
        url: String,
        #[arg(long, env = "LEARNPULSE_KEY", hide_env_values = true)]
        key: String,
        #[arg(long, default_value_t = 10_000)]
        count: usize,
    },
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEARNPULSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init()
    } else {
        builder.init()
    }
    // A panic anywhere (a thread of the storage writer, a task) is logged where every other
    // error goes, with its place, before the default hook prints it.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(panic = %info, "fatal: a thread panicked");
        default_hook(info);
    }));
}

fn config_for(args: &ServeArgs) -> anyhow::Result<Config> {
    let file = args.config.clone().or_else(Config::default_file);
    let mut config = match &file {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(url) = &args.storage {
        config.storage.url = Some(url.clone());
    }
    if let Some(token) = &args.metrics_token {
        config.metrics.token = Some(token.clone());
    }
    if let Some(enabled) = args.metrics {
        config.metrics.enabled = enabled;
    }
    if let Some(witness) = &args.audit_witness {
        config.audit.witness = Some(witness.clone());
    }
    if let Some(url) = &args.cache {
        config.cache.url = Some(url.clone());
    }
    if let Some(v) = &args.xapi_version {
        config.xapi.default_version = if v == "1.0.3" {
            learnpulse_server::config::XapiVersionSetting::V1_0_3
        } else {
            learnpulse_server::config::XapiVersionSetting::V2_0_0
        };
    }
    if let Some(d) = args.durability {
        config.storage.durability = match d {
            DurabilityArg::Full => Durability::Full,
            DurabilityArg::Process => Durability::Process,
        };
    }
    if let Some(json) = args.log_json {
        config.log_json = json;
    }
    if let Some(model) = &args.model {
        config.model = Some(model.clone());
    }
    Ok(config)
}

fn print_key(what: &str, key: &IssuedKey) {
    println!("{what} (shown only this once; store it now):");
    println!("  key id:  {}", key.key_id);
    println!("  secret:  {}", key.secret);
    println!("  token:   {}", key.token);
    println!(
        "  use:     curl -H 'Authorization: Bearer {}' ...   (or HTTP Basic key id / secret)",
        key.token
    );
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = config_for(&args)?;
    init_logging(config.log_json);
    let signal = shutdown_signal();
    let server = Server::start(config).await?;
    let addr = server.local_addr();
    if args.demo {
        println!("Dashboard: http://{addr}/ui/");
    }
    if let Some(key) = server.bootstrap_key() {
        print_key("Created tenant 1 \"default\" and its admin API key", key);
    }
    tracing::info!(%addr, "learnpulse listening");
    println!("learnpulse listening on http://{addr}  (OpenAPI: http://{addr}/openapi.json)");

    let mut demo_keys = Vec::new();
    if args.demo {
        let storage = &server.state().storage;
        let ingest = issue_key(storage, 1, Role::Ingest, Some("demo simulator".into())).await?;
        // The teacher of record of class-1: sees its learners by name.
        let viewer = learnpulse_server::auth::issue_key_with(
            storage,
            1,
            learnpulse_server::auth::KeySpec {
                role: Role::Teacher,
                label: Some("demo teacher of class-1".into()),
                expires_us: None,
                groups: Some(vec!["class-1".into()]),
            },
        )
        .await?;
        let roster = learnpulse_server::privacy::routes::RosterBody {
            names: Vec::new(),
            learners: (0..args.demo_learners)
                .map(|i| (simulator::learner_id(i), simulator::display_name(i)))
                .collect(),
        };
        server
            .state()
            .privacy
            .set_roster(storage, 1, &roster)
            .await?;
        let (link, _) = server.state().sessions.link(&viewer.key_id);
        println!(
            "Demo: {} simulated learners in 3 classes, {} statements/s.",
            args.demo_learners, args.demo_rate
        );
        println!("  Sign in as the teacher of class-1 (link valid 15 minutes, once):");
        println!("    http://{addr}/ui/sign-in?link={link}");
        println!("  or with the key {}", viewer.token);
        println!(
            "  The API: curl -N -H 'Authorization: Bearer {}' http://{addr}/v1/stream",
            viewer.token
        );
        println!("(the demo's keys are revoked when the server stops)");
        let config = simulator::SimulatorConfig {
            urls: vec![format!("http://{addr}")],
            token: ingest.token.clone(),
            learners: args.demo_learners,
            rate: args.demo_rate,
            duration: None,
            groups: 3,
            seed: 42,
        };
        tokio::spawn(async move {
            if let Err(e) = simulator::run(config, std::future::pending()).await {
                tracing::error!(error = %e, "demo simulator stopped");
            }
        });
        demo_keys = vec![ingest.key_id, viewer.key_id];
    }
    let state = server.state().clone();
    server.run(signal).await?;
    for key in demo_keys {
        let _ = state.storage.revoke_key(1, &key).await;
    }
    Ok(())
}

/// Opens the server's storage for a command run beside (or instead of) the server.
pub(crate) async fn open_accounts(dir: &DataDirArg) -> anyhow::Result<Storage> {
    let mut config = Config {
        data_dir: dir.data_dir.clone(),
        ..Config::default()
    };
    config.storage.url = dir.storage.clone();
    config.storage.max_group_commit = 1_000;
    let location = learnpulse_server::storage::Location::of(&config);
    learnpulse_server::storage::open(&config)
        .await
        .with_context(|| format!("opening {}", location.describe()))
}

fn parse_role(s: &str) -> anyhow::Result<Role> {
    Role::parse(s).ok_or_else(|| {
        anyhow::anyhow!("unknown role {s:?}; one of admin, ingest, teacher, researcher, dpo, tutor")
    })
}

/// Appends an admin action done from the command line to the audit chain (actor `cli`).
async fn audit_cli(
    storage: &Storage,
    tenant: i64,
    action: &str,
    subject: &str,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    learnpulse_server::audit::append_one(
        storage,
        learnpulse_compliance::audit::Event {
            at_us: learnpulse_server::storage::now_us(),
            tenant,
            actor: "cli".into(),
            action: action.into(),
            subject: Some(subject.into()),
            detail,
        },
    )
    .await?;
    Ok(())
}

async fn admin(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateTenant { name, dir } => {
            let storage = open_accounts(&dir).await?;
            learnpulse_server::auth::bootstrap(&storage).await?;
            let tenant = storage.create_tenant(&name).await?;
            let key =
                issue_key(&storage, tenant.id, Role::Admin, Some("first admin".into())).await?;
            audit_cli(
                &storage,
                tenant.id,
                "tenant.create",
                &tenant.id.to_string(),
                serde_json::json!({"admin_key": key.key_id}),
            )
            .await?;
            print_key(
                &format!(
                    "Created tenant {} {:?} and its admin key",
                    tenant.id, tenant.name
                ),
                &key,
            );
        }
        AdminCommand::Tenants { dir } => {
            for t in open_accounts(&dir).await?.tenants().await? {
                println!("{}\t{}", t.id, t.name);
            }
        }
        AdminCommand::CreateKey {
            tenant,
            role,
            label,
            groups,
            dir,
        } => {
            let storage = open_accounts(&dir).await?;
            anyhow::ensure!(
                storage.tenants().await?.iter().any(|t| t.id == tenant),
                "no tenant {tenant}"
            );
            let parsed = parse_role(&role)?;
            if let Some(problem) = learnpulse_server::auth::scope_problem(parsed, groups.as_deref())
            {
                anyhow::bail!("--groups: {problem}");
            }
            let spec = learnpulse_server::auth::KeySpec {
                role: parsed,
                label,
                expires_us: None,
                groups,
            };
            let key = learnpulse_server::auth::issue_key_with(&storage, tenant, spec).await?;
            audit_cli(
                &storage,
                tenant,
                "key.create",
                &key.key_id,
                serde_json::json!({"role": role}),
            )
            .await?;
            print_key(&format!("Created a {role} key in tenant {tenant}"), &key);
        }
        AdminCommand::Keys { tenant, dir } => {
            for k in open_accounts(&dir).await?.keys(tenant).await? {
                let status = if k.revoked_us.is_some() {
                    "revoked"
                } else {
                    "live"
                };
                println!(
                    "{}\t{}\t{}\t{}",
                    k.key_id,
                    k.role.as_str(),
                    status,
                    k.label.unwrap_or_default()
                );
            }
        }
        AdminCommand::RevokeKey {
            key_id,
            tenant,
            dir,
        } => {
            let storage = open_accounts(&dir).await?;
            anyhow::ensure!(
                storage.revoke_key(tenant, &key_id).await?,
                "no live key {key_id} in tenant {tenant}"
            );
            audit_cli(
                &storage,
                tenant,
                "key.revoke",
                &key_id,
                serde_json::json!({}),
            )
            .await?;
            println!("revoked {key_id}");
        }
    }
    Ok(())
}

/// `learnpulse mcp`: standard output belongs to the MCP protocol, so everything else (logs,
/// the bootstrap key) goes to standard error.
async fn mcp(args: McpArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.serve.demo,
        "--demo writes to standard output; use it with `serve`"
    );
    let config = config_for(&args.serve)?;
    init_logging(config.log_json);
    let server = Server::start(config).await?;
    if let Some(key) = server.bootstrap_key() {
        eprintln!(
            "Created tenant 1 and its admin key (shown once): {}",
            key.token
        );
    }
    let state = server.state().clone();
    let caller =
        learnpulse_server::auth::authenticate(&state, Some(&format!("Bearer {}", args.key)))
            .await
            .map_err(|e| anyhow::anyhow!("--key / LEARNPULSE_KEY: {}", e.detail))?;
    tracing::info!(addr = %server.local_addr(), key = %caller.key_id, "learnpulse MCP on stdio");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let signal = shutdown_signal();
    let running = tokio::spawn(server.run(async move {
        tokio::select! {
            _ = stopped => {}
            _ = signal => {}
        }
    }));
    let served = learnpulse_server::mcp::serve_stdio(state, caller).await;
    let _ = stop.send(());
    running.await??;
    served
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Mcp(args) => mcp(args).await,
        Command::Admin(command) => admin(command).await,
        Command::Simulate(a) => {
            init_logging(false);
            let config = simulator::SimulatorConfig {
                urls: a.url,
                token: a.key,
                learners: a.learners,
                rate: a.rate,
                duration: a.duration.map(Duration::from_secs),
                groups: a.groups,
                seed: a.seed,
            };
            let report = simulator::run(config, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Kt(command) => kt::run(command),
        Command::Replay(args) => replay::run(args),
        Command::Pii(command) => pii::run(command),
        Command::Audit(command) => audit::run(command).await,
        Command::Storage(command) => storage::run(command).await,
        Command::Migrate(dir) => storage::migrate(dir).await,
        Command::Compliance(ComplianceCommand::Report {
            url,
            key,
            format,
            output,
        }) => {
            let response = reqwest::Client::new()
                .get(format!(
                    "{}/v1/compliance/report?format={format}",
                    url.trim_end_matches('/')
                ))
                .bearer_auth(&key)
                .send()
                .await
                .with_context(|| format!("reaching {url}"))?;
            let status = response.status();
            let body = response.text().await?;
            anyhow::ensure!(status.is_success(), "{status}: {body}");
            match output {
                Some(path) => std::fs::write(&path, body)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => println!("{body}"),
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Run(args)) => bench::run(args).await,
        Command::Bench(BenchCommand::Compare(args)) => bench::compare(args),
        Command::Bench(BenchCommand::Report(args)) => bench::report(args),
        Command::Bench(BenchCommand::Cache(args)) => cache_bench::run(args).await,
        Command::Bench(BenchCommand::Webhooks {
            url,
            key,
            learners,
            max_batch,
            backlog,
        }) => {
            let report = learnpulse_bench::webhook_probe::run(
                learnpulse_bench::webhook_probe::WebhookProbeConfig {
                    url,
                    token: key,
                    learners,
                    max_batch,
                    backlog,
                },
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Bench(BenchCommand::Subscribers { url, key, count }) => {
            learnpulse_bench::subscribers::run_child(&url, &key, count).await
        }
        Command::Bench(BenchCommand::Interventions {
            url,
            stream_url,
            key,
            rounds,
        }) => {
            let report = learnpulse_bench::probe::run(learnpulse_bench::probe::ProbeConfig {
                url,
                stream_url,
                token: key,
                rounds,
            })
            .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Bench(BenchCommand::Ingest {
            url,
            key,
            clients,
            batch,
            seconds,
            native,
        }) => {
            let report = loadgen::run(loadgen::LoadConfig {
                urls: url,
                token: key,
                clients,
                batch,
                duration: Duration::from_secs(seconds),
                native,
            })
            .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
    }
}
