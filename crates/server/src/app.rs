//! Assembling the server: state, router, start-up (bootstrap, replay) and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use learnpulse_core::EngineParams;

use crate::auth::{IssuedKey, KeyCache};
use crate::config::Config;
use crate::live::LearnerHub;
use crate::state::{AppInner, AppState};
use crate::storage::Duty;

/// The routes and their OpenAPI description, from one list: a route cannot be served without
/// being documented.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .merge(crate::xapi::router())
        .merge(crate::native::router())
        .merge(crate::learners::router())
        .merge(crate::stream::router())
        .merge(crate::timeline::router())
        .merge(crate::admin::router())
        .merge(crate::privacy::routes::router())
        .merge(crate::analytics::router())
        .merge(crate::compliance::router())
        .merge(crate::subject_requests::router())
        .merge(crate::interventions::router())
        .merge(crate::delivery::routes::router())
        .merge(crate::ops::router())
        .merge(crate::dashboard::router())
        .split_for_parts()
}

/// A started server: storage open, log replayed, writer running, socket bound.
pub struct Server {
    state: AppState,
    listener: TcpListener,
    router: Router,
    shutdown: watch::Sender<bool>,
    /// The follower stops only after the last in-flight request has been answered: those
    /// requests wait for it to apply what they appended.
    follower: (watch::Sender<bool>, tokio::task::JoinHandle<()>),
    bootstrap_key: Option<IssuedKey>,
}

impl Server {
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        // Off, nothing records: the `metrics` macros find no recorder and do nothing.
        let metrics = config.metrics.enabled.then(crate::metrics::handle);
        let location = crate::storage::Location::of(&config);
        let storage = Arc::new(
            crate::storage::open(&config)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", location.describe()))?,
        );
        tracing::info!(storage = %location.describe(), "storage open");
        let bootstrap_key = crate::auth::bootstrap(&storage).await?;
        let master = crate::privacy::seal::Sealer::master(&config.data_dir)?;
        let audit =
            crate::audit::Auditor::start(storage.clone(), &master, &config.audit, &config.data_dir)
                .await?;
        let outbox = crate::delivery::outbox::Outbox::open(storage.clone(), master.clone()).await?;
        let webhooks = Arc::new(crate::delivery::Webhooks::new(
            outbox,
            config.webhooks.clone(),
        ));
        let sessions = crate::session::Sessions::new(master.clone());
        let privacy = crate::privacy::PrivacyRegistry::new(master);

        // An explicit model file, else the data directory's current model, else textbook BKT.
        let model_path = config
            .model
            .clone()
            .or_else(|| Some(crate::model_file::current(&config.data_dir)).filter(|p| p.exists()));
        let model = match &model_path {
            Some(path) => {
                let model = crate::model_file::load(path)?;
                tracing::info!(path = %path.display(), skills = model.skills.len(), "knowledge-tracing model loaded");
                model
            }
            None => learnpulse_core::SkillModel::default(),
        };
        // The cache's shared layer (L2) serves API keys and learner states.
        let cache = Arc::new(crate::cache::Shared::open(config.cache.url.as_deref())?);
        let hub = Arc::new(LearnerHub::new(
            EngineParams::default(),
            Arc::new(model),
            crate::cache::learners::LearnerLayers::new(storage.clone(), cache.clone()),
            config.cache.learners_in_memory,
        ));
        crate::interventions::load_all(&storage, &hub).await?;

        // Start-up replay: from the newest valid snapshot (or the beginning), follow the log to
        // its head. Decisions past the outbox's watermark were made but never became messages
        // (the process stopped in between): the follower enqueues them.
        let started = Instant::now();
        let from = if config.snapshots.enabled {
            crate::snapshot::restore(&storage, &hub).await?
        } else {
            None
        };
        let (decisions_tx, decisions_rx) = tokio::sync::mpsc::unbounded_channel();
        let compliance_trigger = Arc::new(tokio::sync::Notify::new());
        let follower = crate::follow::Follower {
            storage: storage.clone(),
            hub: hub.clone(),
            enqueued_through: webhooks.outbox.watermark().await?,
            decisions: decisions_tx,
            compliance: compliance_trigger.clone(),
        };
        let replayed = follower.catch_up(false).await?;
        tracing::info!(
            from_snapshot = from,
            statements = replayed,
            learners = hub.learner_count(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "event log replayed"
        );

        let keys = KeyCache::new(config.cache.l1_entries, cache);
        match crate::connections::raise_descriptor_limit() {
            Some(n) if (n as usize) < config.limits.max_connections + 256 => tracing::warn!(
                descriptors = n,
                max_connections = config.limits.max_connections,
                "the descriptor limit is below limits.max_connections: raise it (ulimit -n) or lower the limit"
            ),
            Some(n) => tracing::info!(descriptors = n, "open-descriptor limit"),
            None => {}
        }
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let timeout = Duration::from_secs(config.limits.request_timeout_secs);
        let body_limit = config.limits.max_body_bytes;
        let rate = crate::auth::RateLimiter::new(config.limits.requests_per_second_per_key);
        let state = AppState(Arc::new(AppInner {
            config,
            storage,
            audit,
            chain_check: Default::default(),
            compliance_trigger: compliance_trigger.clone(),
            keys,
            rate,
            hub,
            privacy,
            webhooks,
            metrics,
            shutdown: shutdown_rx,
            leading: Arc::default(),
            openapi_json: OnceLock::new(),
            sessions,
            write_failure: Default::default(),
        }));
        state.webhooks.spawn(decisions_rx, state.shutdown.clone());
        tokio::spawn(crate::invalidate::run(state.clone()));
        let (follower_stop, follower_stopped) = watch::channel(false);
        let follower = (follower_stop, tokio::spawn(follower.run(follower_stopped)));
        // Duties one process of the installation performs (the only one, on SQLite).
        if state.config.snapshots.enabled {
            let (storage, hub) = (state.storage.clone(), state.hub.clone());
            let interval = Duration::from_secs(state.config.snapshots.interval_secs.max(1));
            let min_entries = state.config.snapshots.min_new_entries as i64;
            crate::elected::spawn(
                state.storage.clone(),
                state.leading.clone(),
                Duty::Snapshots,
                state.shutdown.clone(),
                move |stop| {
                    crate::snapshot::periodically(
                        storage.clone(),
                        hub.clone(),
                        interval,
                        min_entries,
                        stop,
                    )
                },
            );
        }
        let monitor_state = state.clone();
        crate::elected::spawn(
            state.storage.clone(),
            state.leading.clone(),
            Duty::Compliance,
            state.shutdown.clone(),
            move |stop| {
                crate::compliance::incidents::monitor(
                    monitor_state.clone(),
                    Duration::from_secs(monitor_state.config.compliance.interval_secs.max(1)),
                    Duration::from_secs(monitor_state.config.compliance.event_debounce_secs),
                    stop,
                )
            },
        );
        let (router, openapi) = routes();
        let _ = state.openapi_json.set(crate::openapi::document(&openapi));
        // MCP speaks JSON-RPC, not REST: it is served beside the documented routes.
        let router = router
            .merge(crate::mcp::service(state.clone()))
            .merge(crate::dashboard::pages());
        let router = if state.metrics.is_some() {
            router.layer(axum::middleware::from_fn(crate::metrics::track))
        } else {
            router
        };
        let router = router
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                timeout,
            ))
            .layer(DefaultBodyLimit::max(body_limit))
            .layer(axum::Extension(crate::xapi::DefaultVersion(
                state.config.xapi.default_version.as_str(),
            )))
            .layer(TraceLayer::new_for_http())
            .with_state(state.clone());
        // xAPI 1.0.3's alternate request syntax is rewritten before routing (it changes the
        // method and the query the router matches on).
        let router =
            Router::new()
                .fallback_service(router)
                .layer(axum::middleware::from_fn_with_state(
                    body_limit,
                    crate::xapi::alternate::alternate_syntax,
                ));
        Ok(Server {
            state,
            listener,
            router,
            shutdown,
            follower,
            bootstrap_key,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The admin key created on the very first start (None on later starts).
    pub fn bootstrap_key(&self) -> Option<&IssuedKey> {
        self.bootstrap_key.as_ref()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `signal` resolves, then stops accepting, finishes in-flight requests, ends
    /// live streams, drains the writer and returns.
    pub async fn run(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Server {
            state,
            listener,
            router,
            shutdown,
            follower: (follower_stop, follower_task),
            ..
        } = self;
        let stop = shutdown.clone();
        let limits = crate::connections::ConnectionLimits {
            max_connections: state.config.limits.max_connections.max(1),
            header_read_timeout: Duration::from_secs(
                state.config.limits.header_read_timeout_secs.max(1),
            ),
        };
        crate::connections::serve(listener, router, limits, async move {
            signal.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stop.send(true);
        })
        .await;
        let _ = shutdown.send(true);
        let _ = follower_stop.send(true);
        let _ = follower_task.await;
        // Every acknowledged request has been applied (handlers wait for it): the hub is at the
        // head of what this process wrote, which is what the snapshot covers.
        // The snapshot duty's leader saves one; another process's would be no newer than what
        // the leader keeps saving.
        if state.config.snapshots.enabled && state.leading.leads(Duty::Snapshots) {
            match crate::snapshot::save(&state.storage, &state.hub).await {
                Ok(Some(covers)) => tracing::info!(covers, "engine snapshot saved"),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "cannot save the engine snapshot"),
            }
        }
        state.audit.flush().await;
        state.storage.shutdown().await;
        tracing::info!("event log flushed; bye");
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this function is called, not
/// when the future is first polled: call it before announcing the server, so that a signal sent
/// right after the announcement is never met by the default action (immediate death).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(terminate) => {},
                _ = wait(interrupt) => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
