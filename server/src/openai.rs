//! `rlvr serve --model`: a model behind OpenAI's API (`GET /v1/models`, `POST
//! /v1/chat/completions`, `POST /v1/completions`), so the tools that evaluate served models
//! (the `openai` client, lm-eval, our own `openai/chat-v0` policy) evaluate what rlvr trained.
//!
//! The model lives on one thread of its own ([`ModelServer`]); requests queue for it, and the
//! thread takes every request waiting when it frees up into one batch, so concurrent clients
//! share one `generate` call instead of taking turns. Responses carry the sampled token ids
//! (`token_ids`, vLLM's field) and, when asked, each token's log-probability; errors have
//! OpenAI's shape (`{"error": {"message", "type", "param", "code"}}`). Streaming and
//! `top_logprobs` above 0 are refused with a 400 that says so.

use crate::Shared;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rlvr_engine::{Message, Role};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{SystemTime, UNIX_EPOCH};

/// A model the server answers with. It is built on the model thread by the factory given to
/// [`ModelServer::start`] and used only there, so it need not be `Send`.
pub trait ServedModel {
    /// The conversation rendered by the model's chat template, ending with the prompt of the
    /// assistant's turn.
    fn encode_chat(&self, messages: &[Message]) -> Result<Vec<u32>, String>;
    /// Plain text as tokens (`/v1/completions`).
    fn encode_text(&self, text: &str) -> Result<Vec<u32>, String>;
    /// The text of one token, for `logprobs`.
    fn token_text(&self, id: u32) -> String;
    /// The longest context the model takes (prompt and completion).
    fn context_length(&self) -> usize;
    /// Continues every request, each with its own sampling; one result per request, in order.
    fn generate(&mut self, batch: &[GenSpec]) -> Vec<Result<GenOut, String>>;
}

/// One sequence to continue.
#[derive(Clone, Debug, PartialEq)]
pub struct GenSpec {
    /// The prompt's tokens.
    pub context: Vec<u32>,
    /// At most this many new tokens.
    pub max_new_tokens: usize,
    /// The sampling seed.
    pub seed: u64,
    /// Temperature; 0 is greedy.
    pub temperature: f32,
    /// Nucleus sampling's mass.
    pub top_p: f32,
    /// Strings that end the completion (cut before them).
    pub stop: Vec<String>,
}

/// One completion.
#[derive(Clone, Debug, PartialEq)]
pub struct GenOut {
    /// The text, without the stop token or string.
    pub text: String,
    /// The sampled tokens.
    pub tokens: Vec<u32>,
    /// Each sampled token's log-probability.
    pub logprobs: Vec<f32>,
    /// True when it stopped at the token limit rather than by itself.
    pub length: bool,
}

/// Builds the model, on the model thread.
pub type ModelFactory = Box<dyn FnOnce() -> Result<Box<dyn ServedModel>, String> + Send>;

enum Prompt {
    Chat(Vec<Message>),
    Text(String),
}

/// What the model thread sends back for one request: the prompt's length and the choices.
type Answer = Result<(usize, Vec<Choice>), (StatusCode, String)>;

struct Choice {
    out: GenOut,
    token_texts: Vec<String>,
}

struct Job {
    prompt: Prompt,
    n: usize,
    max_tokens: Option<usize>,
    seed: u64,
    temperature: f32,
    top_p: f32,
    stop: Vec<String>,
    want_texts: bool,
    reply: tokio::sync::oneshot::Sender<Answer>,
}

/// The model thread's handle: `rlvr serve --model` starts one and gives it to [`crate::Options`].
#[derive(Clone)]
pub struct ModelServer {
    id: String,
    jobs: SyncSender<Job>,
}

impl std::fmt::Debug for ModelServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelServer").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Requests waiting for the model past which a new one is answered 503.
const QUEUE: usize = 256;

impl ModelServer {
    /// Starts the model thread and builds the model there; an error building it is returned
    /// here, before the server listens. `max_batch` bounds the sequences of one `generate`.
    pub fn start(id: impl Into<String>, factory: ModelFactory, max_batch: usize) -> Result<Self, String> {
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(QUEUE);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        std::thread::Builder::new()
            .name("rlvr-model".into())
            .spawn(move || {
                let model = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(factory)) {
                    Ok(Ok(m)) => m,
                    Ok(Err(e)) => return drop(ready_tx.send(Err(e))),
                    Err(p) => return drop(ready_tx.send(Err(rlvr_engine::reward::panic_message(&*p)))),
                };
                let _ = ready_tx.send(Ok(()));
                model_loop(model, &rx, max_batch.max(1));
            })
            .map_err(|e| format!("starting the model thread: {e}"))?;
        ready_rx.recv().map_err(|_| "the model thread ended while loading".to_string())??;
        Ok(Self { id: id.into(), jobs })
    }

    /// The model's id in `/v1/models` and in responses.
    pub fn id(&self) -> &str {
        &self.id
    }
}

fn model_loop(mut model: Box<dyn ServedModel>, rx: &Receiver<Job>, max_batch: usize) {
    while let Ok(first) = rx.recv() {
        // Everything already waiting joins this batch, up to `max_batch` sequences.
        let mut jobs = vec![first];
        let mut seqs = jobs[0].n;
        while seqs < max_batch {
            match rx.try_recv() {
                Ok(j) => {
                    seqs += j.n;
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        let ctx_len = model.context_length();
        let mut specs = Vec::new();
        let mut owners = Vec::new();
        let mut answers: Vec<Option<Answer>> = Vec::with_capacity(jobs.len());
        for (j, job) in jobs.iter().enumerate() {
            let encoded = match &job.prompt {
                Prompt::Chat(m) => model.encode_chat(m),
                Prompt::Text(t) => model.encode_text(t),
            };
            let context = match encoded {
                Ok(c) if c.is_empty() => {
                    answers.push(Some(Err((StatusCode::BAD_REQUEST, "the prompt is empty".into()))));
                    continue;
                }
                Ok(c) if c.len() >= ctx_len => {
                    answers.push(Some(Err((
                        StatusCode::BAD_REQUEST,
                        format!("the prompt has {} tokens; this model's context length is {ctx_len}", c.len()),
                    ))));
                    continue;
                }
                Ok(c) => c,
                Err(e) => {
                    answers.push(Some(Err((StatusCode::BAD_REQUEST, e))));
                    continue;
                }
            };
            let room = ctx_len - context.len();
            let max_new_tokens = job.max_tokens.unwrap_or(room).min(room);
            for i in 0..job.n {
                specs.push(GenSpec {
                    context: context.clone(),
                    max_new_tokens,
                    seed: job.seed.wrapping_add(i as u64),
                    temperature: job.temperature,
                    top_p: job.top_p,
                    stop: job.stop.clone(),
                });
                owners.push((j, context.len()));
            }
            answers.push(None);
        }
        let outs = if specs.is_empty() { Vec::new() } else { model.generate(&specs) };
        let mut choices: Vec<Vec<Choice>> = jobs.iter().map(|_| Vec::new()).collect();
        let mut prompt_len = vec![0; jobs.len()];
        for ((j, plen), out) in owners.into_iter().zip(outs) {
            prompt_len[j] = plen;
            match out {
                Ok(out) => {
                    let token_texts = if jobs[j].want_texts {
                        out.tokens.iter().map(|&t| model.token_text(t)).collect()
                    } else {
                        Vec::new()
                    };
                    choices[j].push(Choice { out, token_texts });
                }
                Err(e) => answers[j] = Some(Err((StatusCode::INTERNAL_SERVER_ERROR, e))),
            }
        }
        for (j, job) in jobs.into_iter().enumerate() {
            let answer = answers[j].take().unwrap_or_else(|| Ok((prompt_len[j], std::mem::take(&mut choices[j]))));
            // The client may have gone; nothing to do then.
            let _ = job.reply.send(answer);
        }
    }
}

/// A refusal, answered in OpenAI's error shape.
struct Refusal(StatusCode, String, Option<&'static str>);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        oai_error(self.0, self.1, self.2)
    }
}

/// OpenAI's error body.
pub(crate) fn oai_error(status: StatusCode, message: impl Into<String>, param: Option<&str>) -> Response {
    let kind = match status {
        StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "invalid_request_error",
        StatusCode::SERVICE_UNAVAILABLE => "server_overloaded",
        _ => "server_error",
    };
    let code = if status == StatusCode::NOT_FOUND { json!("model_not_found") } else { Value::Null };
    (status, Json(json!({"error": {"message": message.into(), "type": kind, "param": param, "code": code}})))
        .into_response()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

pub(crate) async fn models(State(shared): State<Arc<Shared>>) -> Response {
    let Some(m) = &shared.options.model else { return oai_error(StatusCode::NOT_FOUND, NO_MODEL, None) };
    Json(json!({"object": "list", "data": [{"id": m.id(), "object": "model", "created": now(), "owned_by": "rlvr"}]}))
        .into_response()
}

const NO_MODEL: &str = "this server has no model: start it with `rlvr serve --model DIR|preset:NAME`";

/// A message's content: a string, or a list of parts whose text parts are joined.
#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Value>),
}

impl Content {
    fn text(self) -> Result<String, String> {
        match self {
            Content::Text(t) => Ok(t),
            Content::Parts(parts) => parts
                .into_iter()
                .map(|p| match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
                    (Some("text"), Some(t)) => Ok(t.to_string()),
                    (kind, _) => Err(format!("content parts of type {kind:?} are not supported (text only)")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|v| v.join("")),
        }
    }
}

#[derive(Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tool_calls: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

/// The fields both endpoints share; unknown fields are ignored, as OpenAI-compatible servers do.
#[derive(Deserialize)]
struct Common {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    top_p: Option<f32>,
    #[serde(default)]
    n: Option<usize>,
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    max_completion_tokens: Option<usize>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    stream: Option<bool>,
}

#[derive(Deserialize)]
struct ChatRequest {
    #[serde(flatten)]
    common: Common,
    messages: Vec<InMessage>,
    #[serde(default)]
    logprobs: Option<bool>,
    #[serde(default)]
    top_logprobs: Option<u32>,
    #[serde(default)]
    tools: Vec<Value>,
}

#[derive(Deserialize)]
struct CompletionRequest {
    #[serde(flatten)]
    common: Common,
    prompt: Value,
    /// Completions' logprobs: an integer (how many alternatives); only 0 is served.
    #[serde(default)]
    logprobs: Option<u32>,
    #[serde(default)]
    echo: Option<bool>,
}

/// Choices one request may ask for.
const MAX_N: usize = 64;

fn job_from(
    shared: &Shared,
    common: &Common,
    prompt: Prompt,
    want_texts: bool,
) -> Result<(Job, tokio::sync::oneshot::Receiver<Answer>), Refusal> {
    let bad = |msg: String, param: &'static str| Refusal(StatusCode::BAD_REQUEST, msg, Some(param));
    let Some(model) = &shared.options.model else { return Err(Refusal(StatusCode::NOT_FOUND, NO_MODEL.into(), None)) };
    if let Some(m) = &common.model
        && m != model.id()
    {
        return Err(Refusal(
            StatusCode::NOT_FOUND,
            format!("The model `{m}` does not exist; this server serves `{}`", model.id()),
            Some("model"),
        ));
    }
    if common.stream == Some(true) {
        return Err(bad("stream is not supported by rlvr serve; send stream: false".into(), "stream"));
    }
    let temperature = common.temperature.unwrap_or(1.0);
    if !(temperature.is_finite() && (0.0..=2.0).contains(&temperature)) {
        return Err(bad(format!("temperature must lie in [0, 2], got {temperature}"), "temperature"));
    }
    let top_p = common.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(bad(format!("top_p must lie in (0, 1], got {top_p}"), "top_p"));
    }
    let n = common.n.unwrap_or(1);
    if !(1..=MAX_N).contains(&n) {
        return Err(bad(format!("n must lie in [1, {MAX_N}], got {n}"), "n"));
    }
    let max_tokens = common.max_completion_tokens.or(common.max_tokens);
    if max_tokens == Some(0) {
        return Err(bad("max_tokens must be at least 1".into(), "max_tokens"));
    }
    let stop = match &common.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s.clone()],
        Some(Stop::Many(v)) => v.clone(),
    };
    if stop.len() > 4 || stop.iter().any(String::is_empty) {
        return Err(bad("stop takes up to 4 non-empty strings".into(), "stop"));
    }
    let seed = match common.seed {
        Some(s) => s as u64,
        None => NEXT_ID.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ now(),
    };
    let (reply, rx) = tokio::sync::oneshot::channel();
    Ok((Job { prompt, n, max_tokens, seed, temperature, top_p, stop, want_texts, reply }, rx))
}

/// Checks the request's common fields, queues it for the model and waits for the answer: the
/// prompt's length and the choices.
async fn run(
    shared: &Shared,
    common: &Common,
    prompt: Prompt,
    want_texts: bool,
) -> Result<(usize, Vec<Choice>), Refusal> {
    let (job, rx) = job_from(shared, common, prompt, want_texts)?;
    submit(shared, job, rx).await
}

/// The response around `choices`, as OpenAI's endpoints shape it.
fn envelope(shared: &Shared, object: &str, id_prefix: &str, choices: Vec<Value>, usage: Value) -> Response {
    let model = shared.options.model.as_ref().map_or("", |m| m.id());
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    Json(json!({
        "id": format!("{id_prefix}-rlvr{id}"),
        "object": object,
        "created": now(),
        "model": model,
        "choices": choices,
        "usage": usage,
    }))
    .into_response()
}

async fn submit(
    shared: &Shared,
    job: Job,
    rx: tokio::sync::oneshot::Receiver<Answer>,
) -> Result<(usize, Vec<Choice>), Refusal> {
    let model = shared.options.model.as_ref().expect("checked by job_from");
    match model.jobs.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            return Err(Refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{QUEUE} requests are already waiting for the model; retry later"),
                None,
            ));
        }
        Err(TrySendError::Disconnected(_)) => {
            return Err(Refusal(StatusCode::INTERNAL_SERVER_ERROR, "the model thread has stopped".into(), None));
        }
    }
    match rx.await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err((status, msg))) => Err(Refusal(status, msg, None)),
        Err(_) => Err(Refusal(StatusCode::INTERNAL_SERVER_ERROR, "the model thread dropped the request".into(), None)),
    }
}

fn usage(prompt: usize, choices: &[Choice]) -> Value {
    let completion: usize = choices.iter().map(|c| c.out.tokens.len()).sum();
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

fn finish(c: &Choice) -> &'static str {
    if c.out.length { "length" } else { "stop" }
}

/// Tool declarations given with a chat request, as the system message's text: one JSON object
/// per line after a header, the format rlvr's tool environments use, so a model trained on them
/// reads the same thing.
fn tools_text(tools: &[Value]) -> String {
    let lines: Vec<String> = tools.iter().map(|t| t.get("function").unwrap_or(t).to_string()).collect();
    format!(
        "You can call tools. To call one, write <tool_call>{{\"name\": \"TOOL\", \"arguments\": {{...}}}}</tool_call>. Tools:\n{}",
        lines.join("\n")
    )
}

fn chat_messages(req: &mut ChatRequest) -> Result<Vec<Message>, String> {
    let mut out = Vec::with_capacity(req.messages.len() + 1);
    if !req.tools.is_empty() {
        out.push(Message::system(tools_text(&req.tools)));
    }
    for (i, m) in std::mem::take(&mut req.messages).into_iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" | "function" => Role::Tool,
            other => return Err(format!("messages[{i}].role: unknown role {other:?}")),
        };
        let mut content = match m.content {
            Some(c) => c.text().map_err(|e| format!("messages[{i}].content: {e}"))?,
            None => String::new(),
        };
        // An assistant turn that called tools is shown to the model as it would have written it.
        for call in &m.tool_calls {
            let f = call.get("function").unwrap_or(call);
            let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
            let args = match f.get("arguments") {
                Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
                Some(v) => v.clone(),
                None => json!({}),
            };
            content.push_str(&format!("<tool_call>{}</tool_call>", json!({"name": name, "arguments": args})));
        }
        let mut msg = Message::new(role, content);
        if role == Role::Tool {
            msg.name = Some(m.name.unwrap_or_else(|| "tool".into()));
        }
        out.push(msg);
    }
    if out.is_empty() {
        return Err("messages must not be empty".into());
    }
    Ok(out)
}

/// The `<tool_call>` blocks of a completion, parsed by the tool environments' own parser, as
/// OpenAI `tool_calls` (arguments as a JSON string), with the text before the first block as the
/// content (`null` when empty). `None` when the text has no block or a block does not parse: the
/// completion is then returned as text, as the model wrote it.
fn tool_calls(text: &str, choice: usize) -> Option<(Value, Vec<Value>)> {
    use rlvr_envs::tools::parse;
    if !parse::has_tool_call_tag(text) {
        return None;
    }
    let calls = parse::parse_hermes(text).ok()?;
    let calls = calls
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let args: serde_json::Map<String, Value> =
                c.args.iter().map(|(name, v)| (name.to_string(), v.to_json())).collect();
            json!({
                "id": format!("call_{choice}_{k}"),
                "type": "function",
                "function": {"name": c.name.as_str(), "arguments": Value::Object(args).to_string()},
            })
        })
        .collect();
    let prose = text.split("<tool_call>").next().unwrap_or_default().trim();
    Some((if prose.is_empty() { Value::Null } else { Value::String(prose.to_string()) }, calls))
}

pub(crate) async fn chat(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let mut req: ChatRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return oai_error(StatusCode::BAD_REQUEST, format!("invalid chat completion request: {e}"), None),
    };
    if req.top_logprobs.unwrap_or(0) > 0 {
        return oai_error(
            StatusCode::BAD_REQUEST,
            "top_logprobs above 0 is not supported: each sampled token's own log-probability is (logprobs: true)",
            Some("top_logprobs"),
        );
    }
    let messages = match chat_messages(&mut req) {
        Ok(m) => m,
        Err(e) => return oai_error(StatusCode::BAD_REQUEST, e, Some("messages")),
    };
    let want = req.logprobs == Some(true);
    let with_tools = !req.tools.is_empty();
    let (prompt, choices) = match run(&shared, &req.common, Prompt::Chat(messages), want).await {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let out: Vec<Value> = choices
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let logprobs = want.then(|| {
                let content: Vec<Value> = c
                    .out
                    .logprobs
                    .iter()
                    .zip(&c.token_texts)
                    .map(|(lp, t)| json!({"token": t, "logprob": lp, "bytes": t.as_bytes(), "top_logprobs": []}))
                    .collect();
                json!({ "content": content })
            });
            let mut message = json!({"role": "assistant", "content": c.out.text});
            let mut finish_reason = finish(c);
            if with_tools && let Some((prose, calls)) = tool_calls(&c.out.text, i) {
                message = json!({"role": "assistant", "content": prose, "tool_calls": calls});
                finish_reason = "tool_calls";
            }
            json!({
                "index": i,
                "message": message,
                "logprobs": logprobs,
                "finish_reason": finish_reason,
                "token_ids": c.out.tokens,
            })
        })
        .collect();
    envelope(&shared, "chat.completion", "chatcmpl", out, usage(prompt, &choices))
}

pub(crate) async fn completions(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: CompletionRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return oai_error(StatusCode::BAD_REQUEST, format!("invalid completion request: {e}"), None),
    };
    let prompt = match &req.prompt {
        Value::String(s) => s.clone(),
        Value::Array(a) if a.len() == 1 && a[0].is_string() => a[0].as_str().unwrap_or_default().to_string(),
        _ => {
            return oai_error(
                StatusCode::BAD_REQUEST,
                "prompt must be one string (batches of prompts and token-id prompts are not supported)",
                Some("prompt"),
            );
        }
    };
    if req.logprobs.unwrap_or(0) > 0 {
        return oai_error(
            StatusCode::BAD_REQUEST,
            "logprobs above 0 (alternatives per token) is not supported; logprobs: 0 returns each token's own",
            Some("logprobs"),
        );
    }
    if req.echo == Some(true) {
        return oai_error(StatusCode::BAD_REQUEST, "echo is not supported", Some("echo"));
    }
    let want = req.logprobs == Some(0);
    let (prompt, choices) = match run(&shared, &req.common, Prompt::Text(prompt), want).await {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let out: Vec<Value> = choices
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let logprobs = want.then(|| {
                json!({
                    "tokens": c.token_texts,
                    "token_logprobs": c.out.logprobs,
                    "top_logprobs": Value::Null,
                    "text_offset": Value::Null,
                })
            });
            json!({
                "index": i,
                "text": c.out.text,
                "logprobs": logprobs,
                "finish_reason": finish(c),
                "token_ids": c.out.tokens,
            })
        })
        .collect();
    envelope(&shared, "text_completion", "cmpl", out, usage(prompt, &choices))
}
