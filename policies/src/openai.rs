//! `openai/chat-v0`: any server that speaks OpenAI's chat completions API (vLLM, SGLang,
//! llama.cpp's server, a hosted API, `rlvr serve --model`) as a policy, for evaluation and
//! roll-outs.
//!
//! Each turn of each live episode is one `POST {base_url}/chat/completions` with the whole
//! conversation; up to `concurrency` are in flight at once. Episodes of one batch that share a
//! conversation (a group's first turn) are asked for together, `n` choices per request, when
//! `n > 1`. A request that fails after its retries (connection refused, a timeout, 429 or 5xx
//! past `retries`, any other 4xx at once) fails that episode's rollout, which the run counts
//! and goes past; it never stops the run.
//!
//! The policy has no tokenizer: its trajectories are text, with the sampled token ids and
//! log-probabilities kept when the server returns both (vLLM with `return_token_ids`).
//! Evaluation takes such trajectories; training refuses this policy (it is not a model rlvr can
//! update).
//!
//! Tools: with `tools = "text"` (the default) the conversation goes as rlvr's environments write
//! it (tool declarations in the system message, calls as `<tool_call>` blocks in the text, tool
//! results as `<tool_response>` user messages). With `tools = "openai"` the declarations (the
//! JSON lines of the system message that declare a function) go as OpenAI `tools`, earlier calls
//! as `tool_calls` with their `tool` results, and the `tool_calls` the server returns come back
//! as `<tool_call>` blocks, the action format the tool environments read.

use rlvr_engine::{
    Action, BoxError, Config, GenRequest, Message, Policy, PolicyContext, PolicyError, Registry, Role, parse_config,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The id this policy is registered under.
pub const ID: &str = "openai/chat-v0";

/// Settings of `[policy.config]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenAiConfig {
    /// The API's base URL, up to and including `/v1`. Default `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// The model to ask for. Required.
    pub model: String,
    /// The environment variable holding the API key (sent as a bearer token); empty: none.
    pub api_key_env: String,
    /// Sampling temperature (evaluation's greedy episodes send 0). Default 1.0.
    pub temperature: f32,
    /// Nucleus sampling. Default 1.0.
    pub top_p: f32,
    /// Most new tokens per turn; 0: the rollout's `max_new_tokens`. Default 0.
    pub max_tokens: usize,
    /// Choices asked for in one request when several episodes of a batch share their
    /// conversation (a group's first turn); 1 sends each on its own. Default 1.
    pub n: usize,
    /// Send each episode's derived seed (`seed`), so servers that honour it reproduce a run.
    /// Default true.
    pub seed: bool,
    /// Extra stop strings (at most 4, OpenAI's limit).
    pub stop: Vec<String>,
    /// Requests in flight at once. Default 8.
    pub concurrency: usize,
    /// Seconds one request may take, the answer included. Default 120.
    pub timeout_s: f64,
    /// Seconds to connect. Default 10.
    pub connect_timeout_s: f64,
    /// Retries of a request that failed by connection, timeout, 429 or 5xx. Default 3.
    pub retries: u32,
    /// First wait between tries, doubled each time (a `Retry-After` header wins, up to 60 s).
    /// Default 0.5.
    pub backoff_s: f64,
    /// `text` or `openai`: how tool declarations, calls and results travel (see the module
    /// docs). Default `text`.
    pub tools: String,
    /// Ask for each sampled token's log-probability (`logprobs: true`). Default false.
    pub logprobs: bool,
    /// Ask for the sampled token ids (vLLM's `return_token_ids`; servers that do not know it
    /// may refuse the request). Default false.
    pub return_token_ids: bool,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8000/v1".into(),
            model: String::new(),
            api_key_env: String::new(),
            temperature: 1.0,
            top_p: 1.0,
            max_tokens: 0,
            n: 1,
            seed: true,
            stop: Vec::new(),
            concurrency: 8,
            timeout_s: 120.0,
            connect_timeout_s: 10.0,
            retries: 3,
            backoff_s: 0.5,
            tools: "text".into(),
            logprobs: false,
            return_token_ids: false,
        }
    }
}

impl OpenAiConfig {
    /// Checks every field, so a typo is an error before the first request.
    pub fn validate(&self) -> Result<(), String> {
        if self.model.is_empty() {
            return Err("model is required (the name the server knows the model by)".into());
        }
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return Err(format!("base_url must start with http:// or https://, got {:?}", self.base_url));
        }
        if !(self.temperature.is_finite() && (0.0..=2.0).contains(&self.temperature)) {
            return Err(format!("temperature must lie in [0, 2], got {}", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!("top_p must lie in (0, 1], got {}", self.top_p));
        }
        if self.n == 0 || self.concurrency == 0 {
            return Err("n and concurrency must be at least 1".into());
        }
        if self.stop.len() > 4 {
            return Err(format!("stop takes at most 4 strings, got {}", self.stop.len()));
        }
        for (name, v) in [
            ("timeout_s", self.timeout_s),
            ("connect_timeout_s", self.connect_timeout_s),
            ("backoff_s", self.backoff_s),
        ] {
            if !(v.is_finite() && v >= 0.0) || (name != "backoff_s" && v == 0.0) {
                return Err(format!("{name} must be a positive number of seconds, got {v}"));
            }
        }
        if self.tools != "text" && self.tools != "openai" {
            return Err(format!("tools must be \"text\" or \"openai\", got {:?}", self.tools));
        }
        Ok(())
    }
}

/// The policy.
pub struct OpenAiPolicy {
    config: OpenAiConfig,
    url: String,
    key: Option<String>,
    agent: ureq::Agent,
}

impl OpenAiPolicy {
    /// A policy from its settings; reads the API key from `api_key_env` now, so a missing key
    /// is a config error rather than a run of failed requests.
    pub fn new(config: OpenAiConfig) -> Result<Self, BoxError> {
        config.validate()?;
        let key = if config.api_key_env.is_empty() {
            None
        } else {
            Some(
                std::env::var(&config.api_key_env)
                    .map_err(|_| format!("api_key_env: the environment variable {} is not set", config.api_key_env))?,
            )
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs_f64(config.timeout_s)))
            .timeout_connect(Some(Duration::from_secs_f64(config.connect_timeout_s)))
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
        Ok(Self { config, url, key, agent })
    }

    /// One request's body: the conversation and the sampling settings.
    fn body(&self, messages: &[Message], n: usize, max_tokens: usize, seed: u64, greedy: bool) -> Value {
        let c = &self.config;
        let (messages, tools) = if c.tools == "openai" { openai_messages(messages) } else { text_messages(messages) };
        let mut body = json!({
            "model": c.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": if greedy { 0.0 } else { c.temperature },
            "top_p": if greedy { 1.0 } else { c.top_p },
        });
        let o = body.as_object_mut().expect("an object");
        if n > 1 {
            o.insert("n".into(), json!(n));
        }
        if c.seed {
            // OpenAI's seed is a signed 64-bit integer.
            o.insert("seed".into(), json!((seed >> 1) as i64));
        }
        if !c.stop.is_empty() {
            o.insert("stop".into(), json!(c.stop));
        }
        if !tools.is_empty() {
            o.insert("tools".into(), Value::Array(tools));
        }
        if c.logprobs {
            o.insert("logprobs".into(), json!(true));
        }
        if c.return_token_ids {
            o.insert("return_token_ids".into(), json!(true));
        }
        body
    }

    /// Sends `body`, with retries; the parsed response, or why not.
    fn send(&self, body: &Value) -> Result<Value, String> {
        let text = body.to_string();
        let mut wait = self.config.backoff_s;
        let mut tries = 0;
        loop {
            tries += 1;
            let mut req = self.agent.post(&self.url).header("content-type", "application/json");
            if let Some(k) = &self.key {
                req = req.header("authorization", format!("Bearer {k}"));
            }
            let (retry, error, after) = match req.send(text.as_str()) {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<f64>().ok());
                    let body = resp.body_mut().read_to_string().unwrap_or_default();
                    if status == 200 {
                        return serde_json::from_str(&body)
                            .map_err(|e| format!("{}: the answer is not JSON ({e}): {}", self.url, clip(&body)));
                    }
                    let message = serde_json::from_str::<Value>(&body)
                        .ok()
                        .and_then(|v| v["error"]["message"].as_str().map(String::from))
                        .unwrap_or_else(|| clip(&body));
                    (status == 429 || status >= 500, format!("HTTP {status}: {message}"), after)
                }
                Err(e) => (true, e.to_string(), None),
            };
            if !retry || tries > self.config.retries {
                return Err(format!("{}: {error} ({tries} {})", self.url, if tries == 1 { "try" } else { "tries" }));
            }
            tracing::debug!(url = %self.url, %error, tries, "retrying");
            std::thread::sleep(Duration::from_secs_f64(after.unwrap_or(wait).clamp(0.0, 60.0)));
            wait *= 2.0;
        }
    }
}

fn clip(s: &str) -> String {
    let mut t: String = s.chars().take(300).collect();
    if t.len() < s.len() {
        t.push_str("...");
    }
    t
}

/// A request covering `members` (indices into the batch), each taking one choice in order.
struct Call {
    members: Vec<usize>,
    body: Value,
}

impl Policy for OpenAiPolicy {
    fn encode(&self, _messages: &[Message], _first: bool) -> Result<Vec<u32>, PolicyError> {
        // The server owns the tokenizer: the trajectory is text.
        Ok(Vec::new())
    }

    fn generate(&mut self, batch: &[GenRequest<'_>]) -> Result<Vec<Action>, PolicyError> {
        // Episodes sharing their conversation go in one request, up to `n` of them.
        let mut calls: Vec<Call> = Vec::new();
        let mut open: Vec<(usize, usize)> = Vec::new(); // (leader, call index) of calls with room
        for (i, r) in batch.iter().enumerate() {
            let joined = open.iter().position(|&(lead, c)| {
                let l = &batch[lead];
                calls[c].members.len() < self.config.n
                    && l.messages == r.messages
                    && l.greedy == r.greedy
                    && l.max_new_tokens == r.max_new_tokens
            });
            match joined {
                Some(k) => calls[open[k].1].members.push(i),
                None => {
                    open.push((i, calls.len()));
                    calls.push(Call { members: vec![i], body: Value::Null });
                }
            }
        }
        for call in &mut calls {
            let r = &batch[call.members[0]];
            let max_tokens = if self.config.max_tokens > 0 { self.config.max_tokens } else { r.max_new_tokens };
            call.body = self.body(r.messages, call.members.len(), max_tokens.max(1), r.seed, r.greedy);
        }
        let mut actions: Vec<Action> = vec![Action::default(); batch.len()];
        let next = AtomicUsize::new(0);
        let results: Vec<(usize, Result<Value, String>)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..self.config.concurrency.min(calls.len()))
                .map(|_| {
                    s.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let c = next.fetch_add(1, Ordering::Relaxed);
                            let Some(call) = calls.get(c) else { break };
                            done.push((c, self.send(&call.body)));
                        }
                        done
                    })
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect()
        });
        let mut answered = vec![false; calls.len()];
        for (c, result) in results {
            answered[c] = true;
            let members = &calls[c].members;
            match result.and_then(|v| read_choices(&v, members.len(), self.config.tools == "openai")) {
                Ok(choices) => {
                    for (&i, a) in members.iter().zip(choices) {
                        actions[i] = a;
                    }
                }
                Err(e) => {
                    for &i in members {
                        actions[i] = Action::failed(e.clone());
                    }
                }
            }
        }
        for (c, call) in calls.iter().enumerate() {
            if !answered[c] {
                for &i in &call.members {
                    actions[i] = Action::failed("the request's worker thread panicked");
                }
            }
        }
        Ok(actions)
    }
}

/// The actions of a response's `want` choices, in index order.
fn read_choices(v: &Value, want: usize, openai_tools: bool) -> Result<Vec<Action>, String> {
    let choices =
        v["choices"].as_array().ok_or_else(|| format!("the answer has no choices: {}", clip(&v.to_string())))?;
    if choices.len() < want {
        return Err(format!("asked for {want} choices, got {}", choices.len()));
    }
    let mut by_index: Vec<&Value> = choices.iter().collect();
    by_index.sort_by_key(|c| c["index"].as_u64().unwrap_or(0));
    Ok(by_index.into_iter().take(want).map(|c| read_choice(c, openai_tools)).collect())
}

fn read_choice(c: &Value, openai_tools: bool) -> Action {
    let message = &c["message"];
    let mut text = message["content"].as_str().unwrap_or_default().to_string();
    if openai_tools || message["tool_calls"].is_array() {
        for call in message["tool_calls"].as_array().into_iter().flatten() {
            let f = &call["function"];
            let args = match &f["arguments"] {
                Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
                Value::Null => json!({}),
                other => other.clone(),
            };
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("<tool_call>{}</tool_call>", json!({"name": f["name"], "arguments": args})));
        }
    }
    let logprobs: Vec<f32> = c["logprobs"]["content"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["logprob"].as_f64()).map(|x| x as f32).collect())
        .unwrap_or_default();
    let tokens: Vec<u32> = c["token_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_u64().and_then(|x| u32::try_from(x).ok())).collect())
        .unwrap_or_default();
    // Both or neither: tokens without log-probabilities (or of another length) cannot be used.
    let (tokens, logprobs) = if !tokens.is_empty() && tokens.len() == logprobs.len() {
        (tokens, logprobs)
    } else {
        (Vec::new(), Vec::new())
    };
    Action { text, tokens, logprobs, failed: None }
}

/// The conversation as rlvr's environments write it; tool results as user messages.
fn text_messages(messages: &[Message]) -> (Vec<Value>, Vec<Value>) {
    let out = messages
        .iter()
        .map(|m| match m.role {
            Role::Tool => json!({
                "role": "user",
                "content": format!("<tool_response name=\"{}\">\n{}\n</tool_response>", m.name.as_deref().unwrap_or("tool"), m.content),
            }),
            _ => json!({"role": m.role.as_str(), "content": m.content}),
        })
        .collect();
    (out, Vec::new())
}

/// Whether a system-message line declares a function (OpenAI's or BFCL's shape).
fn declaration(line: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(line.trim()).ok()?;
    let f = if v["type"] == "function" { v["function"].clone() } else { v };
    (f["name"].is_string() && (f["parameters"].is_object() || f["description"].is_string()))
        .then(|| json!({"type": "function", "function": f}))
}

/// `<tool_call>{...}</tool_call>` blocks of `text`, and the text around them.
fn tool_calls(text: &str) -> (String, Vec<Value>) {
    let (mut rest, mut calls, mut prose) = (text, Vec::new(), String::new());
    while let Some(start) = rest.find("<tool_call>") {
        let Some(end) = rest[start..].find("</tool_call>") else { break };
        let inner = &rest[start + "<tool_call>".len()..start + end];
        match serde_json::from_str::<Value>(inner.trim()) {
            Ok(v) if v["name"].is_string() => {
                prose.push_str(&rest[..start]);
                calls.push(v);
            }
            _ => prose.push_str(&rest[..start + end + "</tool_call>".len()]),
        }
        rest = &rest[start + end + "</tool_call>".len()..];
    }
    prose.push_str(rest);
    (prose.trim().to_string(), calls)
}

/// The conversation in OpenAI's tool format: declarations out of the system message into
/// `tools`, calls as `tool_calls`, results as `tool` messages answering them in order.
fn openai_messages(messages: &[Message]) -> (Vec<Value>, Vec<Value>) {
    let mut tools = Vec::new();
    let mut out = Vec::new();
    let mut pending: std::collections::VecDeque<String> = Default::default();
    for (turn, m) in messages.iter().enumerate() {
        match m.role {
            Role::System => {
                let mut kept = Vec::new();
                for line in m.content.lines() {
                    match declaration(line) {
                        Some(t) => tools.push(t),
                        None => kept.push(line),
                    }
                }
                out.push(json!({"role": "system", "content": kept.join("\n").trim_end()}));
            }
            Role::Assistant => {
                let (prose, calls) = tool_calls(&m.content);
                if calls.is_empty() {
                    out.push(json!({"role": "assistant", "content": m.content}));
                    continue;
                }
                let calls: Vec<Value> = calls
                    .into_iter()
                    .enumerate()
                    .map(|(k, c)| {
                        let id = format!("call_{turn}_{k}");
                        pending.push_back(id.clone());
                        let args = c.get("arguments").cloned().unwrap_or_else(|| json!({}));
                        json!({"id": id, "type": "function", "function": {"name": c["name"], "arguments": args.to_string()}})
                    })
                    .collect();
                let content = if prose.is_empty() { Value::Null } else { Value::String(prose) };
                out.push(json!({"role": "assistant", "content": content, "tool_calls": calls}));
            }
            Role::Tool => match pending.pop_front() {
                Some(id) => out.push(json!({"role": "tool", "tool_call_id": id, "content": m.content})),
                // A result with no call to answer (a malformed call's error): the model reads it
                // as a user message.
                None => out.push(json!({
                    "role": "user",
                    "content": format!("<tool_response name=\"{}\">\n{}\n</tool_response>", m.name.as_deref().unwrap_or("tool"), m.content),
                })),
            },
            Role::User => {
                pending.clear();
                out.push(json!({"role": "user", "content": m.content}));
            }
        }
    }
    (out, tools)
}

/// Builds `openai/chat-v0` from its `[policy.config]` table.
pub fn build(config: &Config, _ctx: &PolicyContext) -> Result<OpenAiPolicy, BoxError> {
    OpenAiPolicy::new(parse_config(config)?)
}

/// Registers `openai/chat-v0`.
pub fn register(registry: &mut Registry) {
    registry.policy(
        ID,
        "a model served behind OpenAI's chat completions API (vLLM, SGLang, llama.cpp, a hosted API, rlvr serve --model)",
        |config: &Config, ctx: &PolicyContext| Ok(Box::new(build(config, ctx)?) as Box<dyn Policy>),
    );
    registry.defaults(rlvr_engine::Kind::Policy, ID, OpenAiConfig::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_move_to_tools_and_calls_round_trip() {
        let sys = "You can call tools.\n{\"name\": \"add\", \"description\": \"adds\", \"parameters\": {\"type\": \"object\"}}";
        let msgs = vec![
            Message::system(sys),
            Message::user("2+3?"),
            Message::assistant(
                "let me\n<tool_call>{\"name\": \"add\", \"arguments\": {\"a\": 2, \"b\": 3}}</tool_call>",
            ),
            Message::tool("add", "5"),
            Message::tool("add", "stray"),
        ];
        let (out, tools) = openai_messages(&msgs);
        assert_eq!(tools.len(), 1);
        assert_eq!(tools[0]["function"]["name"], "add");
        assert_eq!(out[0]["content"], "You can call tools.");
        assert_eq!(out[2]["content"], "let me");
        assert_eq!(out[2]["tool_calls"][0]["function"]["arguments"], "{\"a\":2,\"b\":3}");
        assert_eq!(out[3], json!({"role": "tool", "tool_call_id": "call_2_0", "content": "5"}));
        assert_eq!(out[4]["role"], "user", "a result with no call left to answer");
        // The server's tool_calls come back in the action format the environments read.
        let choice = json!({"index": 0, "message": {"content": null, "tool_calls": [
            {"id": "x", "type": "function", "function": {"name": "add", "arguments": "{\"a\": 1}"}}]}});
        let a = read_choice(&choice, true);
        assert_eq!(a.text, "<tool_call>{\"name\":\"add\",\"arguments\":{\"a\":1}}</tool_call>");
        let (prose, calls) = tool_calls(&a.text);
        assert_eq!((prose.as_str(), calls[0]["arguments"]["a"].as_i64()), ("", Some(1)));
    }

    #[test]
    fn tokens_are_kept_only_with_their_logprobs() {
        let with = json!({"message": {"content": "hi"}, "token_ids": [5, 6],
            "logprobs": {"content": [{"token": "h", "logprob": -0.5}, {"token": "i", "logprob": -0.25}]}});
        let a = read_choice(&with, false);
        assert_eq!((a.tokens, a.logprobs), (vec![5, 6], vec![-0.5, -0.25]));
        let without = json!({"message": {"content": "hi"}, "token_ids": [5, 6]});
        let a = read_choice(&without, false);
        assert!(a.tokens.is_empty() && a.logprobs.is_empty() && a.text == "hi");
    }

    #[test]
    fn bad_settings_are_refused() {
        let ok = OpenAiConfig { model: "m".into(), ..OpenAiConfig::default() };
        assert!(ok.validate().is_ok());
        for (bad, what) in [
            (OpenAiConfig { model: String::new(), ..ok.clone() }, "model"),
            (OpenAiConfig { base_url: "localhost:8000".into(), ..ok.clone() }, "base_url"),
            (OpenAiConfig { temperature: -1.0, ..ok.clone() }, "temperature"),
            (OpenAiConfig { tools: "json".into(), ..ok.clone() }, "tools"),
            (OpenAiConfig { timeout_s: 0.0, ..ok.clone() }, "timeout_s"),
        ] {
            assert!(bad.validate().unwrap_err().contains(what), "{what}");
        }
        let missing = OpenAiConfig { api_key_env: "RLVR_TEST_SURELY_UNSET_KEY".into(), ..ok };
        assert!(OpenAiPolicy::new(missing).err().unwrap().to_string().contains("RLVR_TEST_SURELY_UNSET_KEY"));
    }
}
