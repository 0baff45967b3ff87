//! `rlvr serve`: every registered environment, every verifier and the code sandbox over the
//! protocols trainers already speak.
//!
//! - **OpenEnv** (`/reset`, `/step`, `/state`, `/schema`, `/metadata`, `/health`, `WS /ws`):
//!   one environment at the root paths (`--env`), or every environment under `/envs/<id>/`.
//!   HTTP calls are stateless, as OpenEnv's are; a WebSocket connection is one session with its
//!   own environment instance, which is what OpenEnv's client uses.
//! - **SandboxFusion's `POST /run_code`** on the wasmtime sandbox (Python), with SandboxFusion's
//!   request and response fields and status values, so its client and verl's code rewards work
//!   unchanged.
//! - **`POST /score`**: a batch of `{task, completion}` for any reward id, answered with the rows
//!   `rlvr score` writes.
//! - **OpenAI's API** (`/v1/models`, `/v1/chat/completions`, `/v1/completions`) for a model
//!   given with `--model`, concurrent requests batched into one `generate` (see [`ModelServer`]).
//!
//! The server keeps no state beyond open WebSocket sessions, so any number of them scale out
//! behind a load balancer. Every blocking job (an environment step, a sandbox run, a scoring
//! batch) runs on a bounded set of workers; a request that cannot get one before its deadline is
//! answered 504, never queued without bound. A panic answers its own request with a 500.

mod metrics;
mod openai;
mod openenv;
mod run_code;
mod score;

pub use openai::{GenOut, GenSpec, ModelFactory, ModelServer, ServedModel};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::FutureExt;
use metrics::Metrics;
use rlvr_engine::{Config, Kind, Registry};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};

/// How the server runs; every field has a flag of `rlvr serve`.
#[derive(Clone, Debug)]
pub struct Options {
    /// Serve only this environment, with this config, at the root paths (as an OpenEnv server
    /// does); `None` mounts every registered environment under `/envs/<id>/` at its defaults.
    pub env: Option<(String, Config)>,
    /// WebSocket sessions open at once, over all environments; past it a new connection gets
    /// OpenEnv's `CAPACITY_REACHED` error. Capped by an environment's own bound (an interpreter
    /// pool) when `env` is set.
    pub max_sessions: usize,
    /// A session with no message for this long is closed and its environment freed.
    pub idle_timeout: Duration,
    /// Each HTTP request's deadline, queueing included (504 past it).
    pub request_timeout: Duration,
    /// Largest request body, and largest WebSocket message, in bytes.
    pub max_body_bytes: usize,
    /// When set, every request but `/health` needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Blocking jobs (environment steps, sandbox runs, scoring batches) running at once.
    pub workers: usize,
    /// Memory cap of a `/run_code` program that asks for none (`memory_limit_MB <= 0`), in MiB.
    pub run_code_memory_mb: u64,
    /// The model behind `/v1/chat/completions` and `/v1/completions`, if any.
    pub model: Option<ModelServer>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            env: None,
            max_sessions: 32,
            idle_timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(120),
            max_body_bytes: 16 << 20,
            token: None,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            run_code_memory_mb: 1024,
            model: None,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A bad option (an unknown environment, a config it refuses, a zero limit).
    #[error("{0}")]
    Config(String),
    /// Binding or serving failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What every handler shares.
pub(crate) struct Shared {
    pub(crate) registry: Arc<Registry>,
    pub(crate) options: Options,
    /// Permits for blocking jobs.
    workers: Arc<Semaphore>,
    /// Open WebSocket sessions.
    pub(crate) sessions: AtomicUsize,
    pub(crate) metrics: Metrics,
    /// Flips to true when the server begins to shut down.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Rubrics built for `/score`, by reward id and config (a few; built once each).
    pub(crate) rubrics: score::RubricCache,
}

/// Why a blocking job gave no result.
#[derive(Debug)]
pub(crate) enum JobError {
    /// No worker was free before the deadline.
    Queued,
    /// It ran past the deadline (it finishes in the background; its sandbox has its own).
    Deadline,
    /// It panicked: a bug of ours or of a plugin.
    Panicked(String),
}

impl JobError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            JobError::Queued | JobError::Deadline => StatusCode::GATEWAY_TIMEOUT,
            JobError::Panicked(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            JobError::Queued => "no worker became free before the request's deadline; retry later".into(),
            JobError::Deadline => "the request ran past its deadline".into(),
            JobError::Panicked(m) => format!("internal error in rlvr (please report it): {m}"),
        }
    }
}

impl Shared {
    /// Runs `f` on the blocking pool once a worker is free, giving up at `deadline`.
    pub(crate) async fn job<T: Send + 'static>(
        &self,
        deadline: Instant,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, JobError> {
        self.metrics.queued.fetch_add(1, Ordering::Relaxed);
        let permit =
            tokio::time::timeout_at(deadline.into(), self.workers.clone().acquire_owned()).await.map(|p| p.ok());
        self.metrics.queued.fetch_sub(1, Ordering::Relaxed);
        let Ok(Some(permit)) = permit else { return Err(JobError::Queued) };
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            std::panic::catch_unwind(AssertUnwindSafe(f))
        });
        match tokio::time::timeout_at(deadline.into(), task).await {
            Err(_) => Err(JobError::Deadline),
            Ok(Err(join)) => Err(JobError::Panicked(join.to_string())),
            Ok(Ok(Err(payload))) => Err(JobError::Panicked(rlvr_engine::reward::panic_message(&*payload))),
            Ok(Ok(Ok(v))) => Ok(v),
        }
    }

    /// The deadline of a request that starts now.
    pub(crate) fn deadline(&self) -> Instant {
        Instant::now() + self.options.request_timeout
    }
}

/// A JSON error body in FastAPI's shape (`{"detail": ...}`), which the peers' clients print.
pub(crate) fn error(status: StatusCode, detail: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "detail": detail.into() }))).into_response()
}

/// The router of the whole server, and the sender that starts its shutdown (WebSocket
/// sessions close when it flips to true).
pub fn app(registry: Arc<Registry>, options: Options) -> Result<(Router, watch::Sender<bool>), ServeError> {
    if options.workers == 0 || options.max_sessions == 0 || options.max_body_bytes == 0 {
        return Err(ServeError::Config("--workers, --max-sessions and --max-body-bytes must be at least 1".into()));
    }
    if options.request_timeout.is_zero() || options.idle_timeout.is_zero() {
        return Err(ServeError::Config("--request-timeout and --idle-timeout must be positive".into()));
    }
    let (stop, shutdown) = watch::channel(false);
    let mut envs = Vec::new();
    match &options.env {
        Some((id, config)) => {
            // Built now, so a bad id or config stops the server before it listens; on a thread
            // of its own, outside any async runtime (the sandbox's WASI may start one).
            let host = std::thread::scope(|s| s.spawn(|| openenv::EnvHost::load(&registry, id, config)).join())
                .map_err(|p| ServeError::Config(format!("{id}: {}", rlvr_engine::reward::panic_message(&*p))))??;
            envs.push((String::new(), Arc::new(host)));
        }
        None => {
            for (kind, id, description) in registry.list() {
                if kind == Kind::Env {
                    let host = openenv::EnvHost::lazy(id, description);
                    envs.push((format!("/envs/{id}"), Arc::new(host)));
                }
            }
        }
    }
    let shared = Arc::new(Shared {
        workers: Arc::new(Semaphore::new(options.workers)),
        sessions: AtomicUsize::new(0),
        metrics: Metrics::default(),
        shutdown,
        rubrics: score::RubricCache::default(),
        registry,
        options,
    });
    let mut router = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/run_code", post(run_code::run_code))
        .route("/v1/ping", get(|| async { axum::Json("pong") }))
        .route("/score", post(score::score))
        .route("/v1/models", get(openai::models))
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1/completions", post(openai::completions))
        .with_state(shared.clone());
    let mut env_paths = Vec::new();
    for (prefix, host) in envs {
        env_paths.push(prefix.clone());
        let routes = openenv::routes(shared.clone(), host);
        router = if prefix.is_empty() { router.merge(routes) } else { router.nest(&prefix, routes) };
    }
    if shared.options.env.is_none() {
        // With one environment at the root, its own `/health` answers.
        router = router.route("/health", get(health)).route("/envs", get(move || async move { axum::Json(env_paths) }));
    }
    let router = router
        .layer(middleware::from_fn_with_state(shared.clone(), guard))
        .layer(DefaultBodyLimit::max(shared.options.max_body_bytes));
    Ok((router, stop))
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, tells the
/// WebSocket sessions to close (`stop`), and finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    stop: watch::Sender<bool>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing the requests in flight");
        let _ = stop.send(true);
    };
    axum::serve(listener, app).with_graceful_shutdown(signal).await
}

/// Runs the server on `addr` until Ctrl-C or SIGTERM: what `rlvr serve` does.
pub fn run(registry: Arc<Registry>, options: Options, addr: SocketAddr) -> Result<(), ServeError> {
    let workers = options.workers;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(workers.clamp(1, 4))
        .max_blocking_threads(workers + 16)
        .thread_name("rlvr-serve")
        .build()?;
    let mut what = match &options.env {
        Some((id, _)) => format!("environment {id} at /"),
        None => "every environment under /envs/<id>/".to_string(),
    };
    if let Some(m) = &options.model {
        what.push_str(&format!("; model {} at /v1/chat/completions and /v1/completions", m.id()));
    }
    let (app, stop) = app(registry, options)?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        tracing::info!("rlvr serve listening on http://{bound} ({what}; /run_code, /score, /health, /metrics)");
        serve(listener, app, stop, stop_signal()).await?;
        Ok(())
    })
}

/// Resolves on Ctrl-C or SIGTERM (what Kubernetes sends before it kills a pod).
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

async fn health() -> axum::Json<Value> {
    axum::Json(json!({ "status": "healthy" }))
}

async fn metrics_text(State(shared): State<Arc<Shared>>) -> Response {
    let live = shared.sessions.load(Ordering::Relaxed);
    let mut r = shared.metrics.render(live, shared.options.max_sessions).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    r
}

/// Every request passes here: the bearer token, the deadline, a panic turned into a 500, one
/// log line and the metrics.
async fn guard(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    if let Some(token) = &shared.options.token
        && route != "/health"
        && !bearer_matches(&request, token)
    {
        let mut r = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token (Authorization: Bearer ...)");
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        shared.metrics.request(&route, r.status().as_u16(), start.elapsed());
        return r;
    }
    let deadline = shared.options.request_timeout;
    let run = AssertUnwindSafe(tokio::time::timeout(deadline, next.run(request))).catch_unwind();
    let response = match run.await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => error(StatusCode::GATEWAY_TIMEOUT, format!("the request ran past its deadline ({deadline:?})")),
        Err(payload) => {
            let msg = rlvr_engine::reward::panic_message(&*payload);
            tracing::error!(%method, %path, "panic while answering: {msg}");
            error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error in rlvr (please report it): {msg}"))
        }
    };
    let status = response.status().as_u16();
    let elapsed = start.elapsed();
    shared.metrics.request(&route, status, elapsed);
    tracing::info!(%method, %path, status, ms = elapsed.as_secs_f64() * 1e3, "request");
    response
}

/// Compares the bearer token in constant time (a timing side channel must not leak it).
fn bearer_matches(request: &Request<Body>, token: &str) -> bool {
    let Some(given) = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(given) = given.strip_prefix("Bearer ") else { return false };
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
