//! OpenEnv's protocol for one registered environment.
//!
//! Field names and error codes follow OpenEnv's server (`openenv/core/env_server/
//! http_server.py`, `types.py`): OpenEnv's `GenericEnvClient` talks to these routes unchanged.
//!
//! - HTTP `/reset`, `/step`, `/state` are stateless, as OpenEnv's are: each call makes a fresh
//!   environment. `/step` replays the reset named by the same keys (and the earlier messages in
//!   `history`) before applying its action, so a single-turn episode is one call.
//! - `WS /ws` is a session: one environment instance for the connection's life, messages
//!   `{"type": "reset" | "step" | "state" | "close", "data": ...}`, one reply per message
//!   (`observation`, `state` or `error`). Past `--max-sessions` a connection gets one
//!   `CAPACITY_REACHED` error and is closed; a session idle past `--idle-timeout` gets a
//!   `SESSION_ERROR` and is closed, and its environment (and sandbox) freed.
//!
//! An action is `{"message": "<the policy's turn>"}`. An observation is `{"messages": [...],
//! "metadata": {...}}` with `done` and `reward` beside it; the reward is the environment's own
//! rubric at the episode's end (`null` before, and `null` with `metadata.score.error` when a
//! verifier failed: never a silent zero).

use crate::{JobError, ServeError, Shared, error};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rlvr_engine::{
    Action, Config, EnvFactory, Environment, Message, Registry, Rubric, ScoreRow, Split, Status, Task, TaskSource,
    Trajectory,
};
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// One environment as the server hosts it: built at start (`--env`) or at first use.
pub(crate) struct EnvHost {
    id: String,
    description: String,
    config: Config,
    loaded: OnceLock<Result<Arc<Loaded>, String>>,
    /// The next task index for a reset that names none.
    next: AtomicU64,
    /// Sessions open on this environment.
    live: AtomicUsize,
}

/// What an environment needs to run episodes.
struct Loaded {
    tasks: Arc<dyn TaskSource>,
    make: EnvFactory,
    rubric: Rubric,
    reward_id: String,
    max_live: Option<usize>,
}

impl EnvHost {
    /// The environment `id` with `config`, built now: a bad id or config is an error before
    /// the server listens.
    pub(crate) fn load(registry: &Registry, id: &str, config: &Config) -> Result<Self, ServeError> {
        let description =
            registry.list().into_iter().find(|(_, i, _)| *i == id).map(|(_, _, d)| d.to_string()).unwrap_or_default();
        let host = Self {
            id: id.to_string(),
            description,
            config: config.clone(),
            loaded: OnceLock::new(),
            next: AtomicU64::new(0),
            live: AtomicUsize::new(0),
        };
        host.get(registry).map_err(ServeError::Config)?;
        Ok(host)
    }

    /// The environment `id` at its default config, built at first use.
    pub(crate) fn lazy(id: &str, description: &str) -> Self {
        Self {
            id: id.to_string(),
            description: description.to_string(),
            config: Config::new(),
            loaded: OnceLock::new(),
            next: AtomicU64::new(0),
            live: AtomicUsize::new(0),
        }
    }

    /// Builds the environment and its rubric once (may fetch data: call off the async threads).
    fn get(&self, registry: &Registry) -> Result<Arc<Loaded>, String> {
        self.loaded
            .get_or_init(|| {
                let spec = registry.make_env(&self.id, &self.config, 0).map_err(|e| format!("{}: {e}", self.id))?;
                let rubric = registry
                    .make_reward(&spec.default_reward, &spec.default_reward_config)
                    .map_err(|e| format!("{}'s reward {}: {e}", self.id, spec.default_reward))?;
                Ok(Arc::new(Loaded {
                    tasks: spec.tasks,
                    make: spec.make,
                    rubric,
                    reward_id: spec.default_reward,
                    max_live: spec.max_live_episodes,
                }))
            })
            .clone()
    }

    /// Sessions this environment may hold at once: the server's cap, or the environment's own
    /// bound when it is lower.
    fn max_sessions(&self, shared: &Shared) -> usize {
        let own = self.loaded.get().and_then(|l| l.as_ref().ok()).and_then(|l| l.max_live);
        own.map_or(shared.options.max_sessions, |m| m.min(shared.options.max_sessions))
    }
}

/// An environment instance, counted in `rlvr_envs_live` while it exists.
struct LiveEnv {
    env: Box<dyn Environment>,
    shared: Arc<Shared>,
}

impl Drop for LiveEnv {
    fn drop(&mut self) {
        self.shared.metrics.envs_live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One episode's state.
#[derive(Default)]
struct Episode {
    env: Option<LiveEnv>,
    task: Option<Task>,
    trajectory: Trajectory,
    episode_id: Option<String>,
    step_count: u64,
}

/// A request the episode refused: OpenEnv's error code, and the HTTP status for the same fault.
struct Refusal {
    code: &'static str,
    message: String,
}

impl Refusal {
    fn invalid(message: impl Into<String>) -> Self {
        Self { code: "VALIDATION_ERROR", message: message.into() }
    }

    fn failed(message: impl Into<String>) -> Self {
        Self { code: "EXECUTION_ERROR", message: message.into() }
    }

    fn http(self) -> Response {
        let status = match self.code {
            "VALIDATION_ERROR" => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        error(status, self.message)
    }

    fn frame(self) -> Value {
        json!({ "type": "error", "data": { "message": self.message, "code": self.code } })
    }
}

impl From<JobError> for Refusal {
    fn from(e: JobError) -> Self {
        Refusal::failed(e.message())
    }
}

/// The keys a reset takes.
struct ResetParams {
    seed: Option<u64>,
    episode_id: Option<String>,
    task: Option<Map<String, Value>>,
    index: Option<u64>,
    split: Split,
}

const RESET_KEYS: &str = "seed, episode_id, task, index, split";

impl ResetParams {
    /// Reads the reset keys of `data`, skipping `skip` (the other keys of a stateless step).
    fn from(data: &Map<String, Value>, skip: &[&str]) -> Result<Self, Refusal> {
        let mut p = ResetParams { seed: None, episode_id: None, task: None, index: None, split: Split::Train };
        for (k, v) in data {
            match k.as_str() {
                "seed" => p.seed = Some(v.as_u64().ok_or_else(|| Refusal::invalid("seed must be an integer >= 0"))?),
                "episode_id" => {
                    let id = v.as_str().filter(|s| s.len() <= 255);
                    p.episode_id =
                        Some(id.ok_or_else(|| Refusal::invalid("episode_id must be a string of <= 255 bytes"))?.into());
                }
                "task" => {
                    p.task = Some(v.as_object().cloned().ok_or_else(|| Refusal::invalid("task must be an object"))?)
                }
                "index" => p.index = Some(v.as_u64().ok_or_else(|| Refusal::invalid("index must be an integer >= 0"))?),
                "split" => {
                    p.split = match v.as_str() {
                        Some("train") => Split::Train,
                        Some("test") => Split::Test,
                        _ => return Err(Refusal::invalid("split must be \"train\" or \"test\"")),
                    }
                }
                other if skip.contains(&other) => {}
                other => return Err(Refusal::invalid(format!("unknown reset key {other:?} (known: {RESET_KEYS})"))),
            }
        }
        Ok(p)
    }
}

/// The policy's message of a step's action: `{"message": str, "metadata"?: object}`.
fn action_message(action: &Value) -> Result<String, Refusal> {
    let obj = action.as_object().ok_or_else(|| Refusal::invalid("the action must be an object {\"message\": ...}"))?;
    if let Some(k) = obj.keys().find(|k| *k != "message" && *k != "metadata") {
        return Err(Refusal::invalid(format!("unknown action key {k:?} (an action is {{\"message\": str}})")));
    }
    match obj.get("message") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Refusal::invalid("action.message must be a string")),
        None => Err(Refusal::invalid("the action lacks its \"message\"")),
    }
}

fn messages_json(messages: &[Message]) -> Value {
    serde_json::to_value(messages).unwrap_or(Value::Null)
}

/// OpenEnv's serialised observation: `metadata` inside the observation, and beside it when
/// not empty (over HTTP, `null` when empty, as OpenEnv's response model writes it).
fn observation(messages: &[Message], metadata: Value, reward: Option<f64>, done: bool, http: bool) -> Value {
    let top = if metadata.as_object().is_some_and(|m| !m.is_empty()) { metadata.clone() } else { Value::Null };
    let mut out = json!({
        "observation": { "messages": messages_json(messages), "metadata": metadata },
        "reward": reward,
        "done": done,
    });
    if http || !top.is_null() {
        out["metadata"] = top;
    }
    out
}

impl Episode {
    fn reset(
        &mut self,
        host: &EnvHost,
        loaded: &Loaded,
        shared: &Arc<Shared>,
        p: ResetParams,
    ) -> Result<Value, Refusal> {
        // The old environment goes first, so its sandbox is free before the new one starts.
        *self = Episode::default();
        let task = match p.task {
            Some(t) => Task::new(p.episode_id.clone().unwrap_or_else(|| "given".into()), Value::Object(t)),
            None => {
                let i = p.index.or(p.seed).unwrap_or_else(|| host.next.fetch_add(1, Ordering::Relaxed));
                let i = match loaded.tasks.len(p.split) {
                    Some(0) => return Err(Refusal::invalid(format!("{} has no {:?} tasks", host.id, p.split))),
                    Some(n) => i % n,
                    None => i,
                };
                loaded.tasks.task(p.split, i).map_err(|e| Refusal::failed(format!("task {i}: {e}")))?
            }
        };
        let env = (loaded.make)().map_err(|e| Refusal::failed(format!("{}: {e}", host.id)))?;
        shared.metrics.envs_live.fetch_add(1, Ordering::Relaxed);
        let mut env = LiveEnv { env, shared: shared.clone() };
        let opening = env.env.reset(&task, p.seed.unwrap_or(0)).map_err(|e| Refusal::failed(e.to_string()))?;
        let metadata = json!({ "env": host.id, "task_id": task.id, "task": task.data, "reward_id": loaded.reward_id });
        self.trajectory = Trajectory { messages: opening.clone(), ..Trajectory::default() };
        self.env = Some(env);
        self.task = Some(task);
        self.episode_id = p.episode_id;
        Ok(observation(&opening, metadata, None, false, false))
    }

    fn step(&mut self, loaded: &Loaded, text: String, http: bool) -> Result<Value, Refusal> {
        if self.trajectory.status.is_done() {
            return Err(Refusal::invalid("the episode is over: send a reset"));
        }
        let Some(env) = self.env.as_mut() else {
            return Err(Refusal::invalid("step before reset: send a reset first"));
        };
        let step = env.env.step(&Action::text(text.clone())).map_err(|e| Refusal::failed(e.to_string()))?;
        self.step_count += 1;
        self.trajectory.messages.push(Message::assistant(text));
        self.trajectory.steps.push(step.info.clone());
        self.trajectory.messages.extend(step.observation.iter().cloned());
        self.trajectory.status = step.status;
        let status = match step.status {
            Status::Running => "running",
            Status::Terminated => "terminated",
            Status::Truncated => "truncated",
        };
        let mut metadata = json!({ "status": status, "step": self.step_count, "info": step.info });
        let done = step.status.is_done();
        let mut reward = None;
        if done {
            let task = self.task.as_ref().expect("a reset episode has its task");
            let scored = loaded.rubric.score(task, &self.trajectory);
            reward = scored.total();
            metadata["score"] =
                serde_json::to_value(ScoreRow { id: None, scored: Some(&scored), error: None }).unwrap_or(Value::Null);
            // The episode's environment (and its sandbox) is not needed once it is over.
            self.env = None;
        }
        Ok(observation(&step.observation, metadata, reward, done, http))
    }

    fn state(&self, host: &EnvHost) -> Value {
        json!({
            "episode_id": self.episode_id,
            "step_count": self.step_count,
            "env": host.id,
            "task_id": self.task.as_ref().map(|t| t.id.as_str()),
            "done": self.trajectory.status.is_done(),
            "messages": messages_json(&self.trajectory.messages),
        })
    }
}

type HostState = (Arc<Shared>, Arc<EnvHost>);

/// The OpenEnv routes of `host`.
pub(crate) fn routes(shared: Arc<Shared>, host: Arc<EnvHost>) -> Router {
    Router::new()
        .route("/reset", post(http_reset))
        .route("/step", post(http_step))
        .route("/state", get(http_state))
        .route("/schema", get(schema))
        .route("/metadata", get(metadata))
        .route("/health", get(|| async { Json(json!({ "status": "healthy" })) }))
        .route("/mcp", post(mcp))
        .route("/openapi.json", get(openapi))
        .route("/ws", get(ws))
        .with_state((shared, host))
}

/// The body as a JSON object; an empty body is `{}` (OpenEnv's reset takes none).
fn body_object(body: &[u8]) -> Result<Map<String, Value>, Refusal> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Refusal::invalid("the body must be a JSON object")),
        Err(e) => Err(Refusal::invalid(format!("invalid JSON: {e}"))),
    }
}

/// Plays `play` on a fresh episode of `host` on a worker and answers with what it returns:
/// HTTP is stateless, so each call has its own environment instance.
async fn stateless(
    shared: Arc<Shared>,
    host: Arc<EnvHost>,
    play: impl FnOnce(&mut Episode, &EnvHost, &Loaded, &Arc<Shared>) -> Result<Value, Refusal> + Send + 'static,
) -> Response {
    let s = shared.clone();
    let r = shared
        .job(shared.deadline(), move || {
            let loaded = host.get(&s.registry).map_err(Refusal::failed)?;
            play(&mut Episode::default(), &host, &loaded, &s)
        })
        .await;
    match r {
        Ok(Ok(obs)) => Json(obs).into_response(),
        Ok(Err(refusal)) => refusal.http(),
        Err(e) => error(e.status(), e.message()),
    }
}

async fn http_reset(State((shared, host)): State<HostState>, body: Bytes) -> Response {
    let params = match body_object(&body).and_then(|m| ResetParams::from(&m, &[])) {
        Ok(p) => p,
        Err(r) => return r.http(),
    };
    stateless(shared, host, move |ep, host, loaded, s| {
        let mut obs = ep.reset(host, loaded, s, params)?;
        // Over HTTP the top-level metadata is always there (OpenEnv's response model).
        obs["metadata"] = obs["observation"]["metadata"].clone();
        Ok(obs)
    })
    .await
}

async fn http_step(State((shared, host)): State<HostState>, body: Bytes) -> Response {
    let parsed = body_object(&body).and_then(|m| {
        let message = action_message(m.get("action").unwrap_or(&Value::Null))?;
        let history: Vec<String> = match m.get("history") {
            None => Vec::new(),
            Some(h) => serde_json::from_value(h.clone())
                .map_err(|_| Refusal::invalid("history must be a list of the earlier messages (strings)"))?,
        };
        let params = ResetParams::from(&m, &["action", "history", "timeout_s", "request_id"])?;
        Ok((message, history, params))
    });
    let (message, history, params) = match parsed {
        Ok(p) => p,
        Err(r) => return r.http(),
    };
    stateless(shared, host, move |ep, host, loaded, s| {
        ep.reset(host, loaded, s, params)?;
        for (k, earlier) in history.into_iter().enumerate() {
            let obs = ep.step(loaded, earlier, true)?;
            if obs["done"] == json!(true) {
                return Err(Refusal::invalid(format!("the episode ended at history[{k}]; nothing to step")));
            }
        }
        ep.step(loaded, message, true)
    })
    .await
}

async fn http_state(State((_, host)): State<HostState>) -> Json<Value> {
    // Stateless, as OpenEnv's HTTP state is: a fresh environment's.
    Json(Episode::default().state(&host))
}

async fn metadata(State((_, host)): State<HostState>) -> Json<Value> {
    Json(json!({
        "name": host.id,
        "description": host.description,
        "readme_content": null,
        "version": env!("CARGO_PKG_VERSION"),
        "author": "rlvr",
        "documentation_url": null,
    }))
}

async fn schema() -> Json<Value> {
    let message = json!({
        "type": "object",
        "properties": {
            "role": { "type": "string", "enum": ["system", "user", "assistant", "tool"] },
            "content": { "type": "string" },
            "name": { "type": "string" },
        },
        "required": ["role", "content"],
    });
    let observation = json!({
        "title": "Observation",
        "type": "object",
        "properties": {
            "messages": { "type": "array", "items": message, "description": "what the environment says: the opening messages on reset, its reply on a step" },
            "metadata": { "type": "object", "description": "reset: env, task_id, task, reward_id; step: status, step, info, and at the end score {reward, terms, error, details}" },
        },
        "required": ["messages", "metadata"],
        "additionalProperties": false,
    });
    Json(json!({
        "action": {
            "title": "Action",
            "type": "object",
            "properties": {
                "message": { "type": "string", "description": "the policy's turn (the assistant message)" },
                "metadata": { "type": "object" },
            },
            "required": ["message"],
            "additionalProperties": false,
        },
        "observation": observation,
        "state": {
            "title": "State",
            "type": "object",
            "properties": {
                "episode_id": { "type": ["string", "null"] },
                "step_count": { "type": "integer", "minimum": 0 },
                "env": { "type": "string" },
                "task_id": { "type": ["string", "null"] },
                "done": { "type": "boolean" },
                "messages": { "type": "array", "items": message },
            },
            "additionalProperties": true,
        },
        "reset_observation": observation,
    }))
}

/// OpenEnv's MCP endpoint, which its validator probes: these environments speak no MCP, and
/// say so in JSON-RPC.
async fn mcp(body: Bytes) -> Json<Value> {
    let request: Option<Map<String, Value>> = serde_json::from_slice(&body).ok();
    let id = request.as_ref().and_then(|r| r.get("id").cloned()).unwrap_or(Value::Null);
    let valid = request.as_ref().is_some_and(|r| r.get("jsonrpc") == Some(&json!("2.0")) && r.contains_key("method"));
    let (code, message) = if valid {
        (-32603, "Environment does not support MCP")
    } else {
        (-32600, "Invalid request: not JSON-RPC 2.0")
    };
    Json(json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message, "data": null } }))
}

/// The few facts of an OpenAPI document that OpenEnv's validator reads: a version and the
/// routes.
async fn openapi(State((_, host)): State<HostState>) -> Json<Value> {
    let mut paths = Map::new();
    for p in ["/reset", "/step", "/state", "/schema", "/metadata", "/health", "/mcp", "/ws"] {
        paths.insert(p.to_string(), json!({}));
    }
    Json(json!({
        "openapi": "3.1.0",
        "info": { "title": format!("rlvr serve: {}", host.id), "version": "1.0.0" },
        "paths": paths,
    }))
}

async fn ws(State((shared, host)): State<HostState>, upgrade: WebSocketUpgrade) -> Response {
    let max = shared.options.max_body_bytes;
    upgrade.max_message_size(max).max_frame_size(max).on_upgrade(move |socket| session(shared, host, socket))
}

/// Frees a session's slot when the connection ends, however it ends.
struct Slot {
    shared: Arc<Shared>,
    host: Arc<EnvHost>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.sessions.fetch_sub(1, Ordering::AcqRel);
        self.host.live.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Takes a session slot, or says why not (the server's cap or the environment's own).
fn take_slot(shared: &Arc<Shared>, host: &Arc<EnvHost>) -> Result<Slot, (usize, usize)> {
    let max = host.max_sessions(shared);
    let global = shared.options.max_sessions;
    if shared.sessions.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < global).then_some(n + 1)).is_err() {
        return Err((shared.sessions.load(Ordering::Acquire), global));
    }
    if host.live.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).is_err() {
        shared.sessions.fetch_sub(1, Ordering::AcqRel);
        return Err((host.live.load(Ordering::Acquire), max));
    }
    Ok(Slot { shared: shared.clone(), host: host.clone() })
}

async fn send(socket: &mut WebSocket, v: &Value) -> bool {
    socket.send(WsMessage::Text(v.to_string().into())).await.is_ok()
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let _ = socket.send(WsMessage::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
}

/// One WebSocket session: one environment instance, one reply per message.
async fn session(shared: Arc<Shared>, host: Arc<EnvHost>, mut socket: WebSocket) {
    let _slot = match take_slot(&shared, &host) {
        Ok(slot) => slot,
        Err((active, max)) => {
            shared.metrics.sessions_refused.fetch_add(1, Ordering::Relaxed);
            let frame = json!({ "type": "error", "data": {
                "message": format!("Server at capacity: {active}/{max} sessions active. Cannot accept new connections."),
                "code": "CAPACITY_REACHED", "active_sessions": active, "max_sessions": max,
            }});
            send(&mut socket, &frame).await;
            close(&mut socket, 1000, "").await;
            return;
        }
    };
    shared.metrics.sessions_opened.fetch_add(1, Ordering::Relaxed);
    let mut shutdown = shared.shutdown.clone();
    let idle = shared.options.idle_timeout;
    let mut episode = Some(Episode::default());
    loop {
        if *shutdown.borrow_and_update() {
            close(&mut socket, 1001, "server shutting down").await;
            break;
        }
        let received = tokio::select! {
            r = tokio::time::timeout(idle, socket.recv()) => r,
            _ = shutdown.changed() => continue,
        };
        let text = match received {
            Err(_) => {
                shared.metrics.sessions_idled.fetch_add(1, Ordering::Relaxed);
                // Free the environment before saying so.
                episode = None;
                let msg = format!("session closed after {idle:?} without a message; its environment was freed");
                send(&mut socket, &json!({ "type": "error", "data": { "message": msg, "code": "SESSION_ERROR" } }))
                    .await;
                close(&mut socket, 1000, "idle").await;
                break;
            }
            Ok(None | Some(Err(_)) | Some(Ok(WsMessage::Close(_)))) => break,
            Ok(Some(Ok(WsMessage::Text(t)))) => t.to_string(),
            Ok(Some(Ok(WsMessage::Binary(b)))) => String::from_utf8_lossy(&b).into_owned(),
            Ok(Some(Ok(_))) => continue,
        };
        let reply = match handle(&shared, &host, &mut episode, &text).await {
            Handled::Reply(v) => v,
            Handled::Close => {
                close(&mut socket, 1000, "").await;
                break;
            }
        };
        if !send(&mut socket, &reply).await {
            break;
        }
    }
    drop(episode);
}

enum Handled {
    Reply(Value),
    Close,
}

async fn handle(shared: &Arc<Shared>, host: &Arc<EnvHost>, episode: &mut Option<Episode>, text: &str) -> Handled {
    let msg: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Handled::Reply(
                json!({ "type": "error", "data": { "message": format!("Invalid JSON: {e}"), "code": "INVALID_JSON" } }),
            );
        }
    };
    let kind = msg.get("type").and_then(Value::as_str).unwrap_or("");
    let data = msg.get("data");
    let extra = msg.as_object().and_then(|o| o.keys().find(|k| *k != "type" && *k != "data").cloned());
    if let Some(k) = extra {
        return Handled::Reply(Refusal::invalid(format!("unknown message key {k:?}")).frame());
    }
    enum Op {
        Reset(ResetParams),
        Step(String),
    }
    let op = match kind {
        "close" => return Handled::Close,
        "state" => {
            if data.is_some() {
                return Handled::Reply(Refusal::invalid("a state message has no data").frame());
            }
            let state = episode.as_ref().map_or_else(|| Episode::default().state(host), |e| e.state(host));
            return Handled::Reply(json!({ "type": "state", "data": state }));
        }
        "reset" => {
            let empty = Map::new();
            let params = match data {
                None | Some(Value::Null) => ResetParams::from(&empty, &[]),
                Some(Value::Object(m)) => ResetParams::from(m, &[]),
                Some(_) => Err(Refusal::invalid("reset data must be an object")),
            };
            match params {
                Ok(p) => Op::Reset(p),
                Err(r) => return Handled::Reply(r.frame()),
            }
        }
        "step" => match data.map(action_message) {
            Some(Ok(m)) => Op::Step(m),
            Some(Err(r)) => return Handled::Reply(r.frame()),
            None => return Handled::Reply(Refusal::invalid("a step message needs data: the action").frame()),
        },
        other => {
            let m = format!("Unknown message type: {other}");
            return Handled::Reply(json!({ "type": "error", "data": { "message": m, "code": "UNKNOWN_TYPE" } }));
        }
    };
    let mut ep = episode.take().unwrap_or_default();
    let (s, h) = (shared.clone(), host.clone());
    let result = shared
        .job(shared.deadline(), move || {
            let r = h.get(&s.registry).map_err(Refusal::failed).and_then(|loaded| match op {
                Op::Reset(p) => ep.reset(&h, &loaded, &s, p),
                Op::Step(m) => ep.step(&loaded, m, false),
            });
            (ep, r)
        })
        .await;
    Handled::Reply(match result {
        Ok((ep, r)) => {
            *episode = Some(ep);
            match r {
                Ok(obs) => json!({ "type": "observation", "data": obs }),
                Err(refusal) => refusal.frame(),
            }
        }
        // The episode stayed with the job: the next message starts afresh.
        Err(e) => Refusal::from(e).frame(),
    })
}
