//! `tools/exec-v0`: multi-turn episodes on the executable tools of [`super::backend`].
//!
//! Each task is seeded and leveled: level 1 needs one call, level 2 several independent calls
//! (which may go in one turn), level 3 calls whose arguments depend on earlier results. The model
//! calls tools with `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` blocks (or Python-call
//! syntax); each result comes back as a `tool` message, and the policy's next turn sees it. A turn
//! without calls ends the episode; its `<answer>...</answer>` is the final answer. Malformed
//! calls, invalid arguments and tool failures are `tool` messages naming the error category, so
//! the model can recover. The environment's messages are context: the runner masks their tokens.
//!
//! A task carries the gold plan (the calls, turn by turn, with the concrete values that executing
//! them yields), the gold answer and the gold final state, so the gold player and
//! `tools/exec-match` need nothing but the task.

use super::backend::{self, Backend, ToolError, fmt_num};
use super::parse::{Call, ParseError, has_tool_call_tag, parse_hermes, parse_python};
use super::value::Val;
use rlvr_engine::{
    Action, BoxError, Config, EnvError, EnvSpec, Environment, Message, Split, Status, Step, Task, TaskSource,
    draw_split_task, parse_config, seed,
};
use rlvr_rewards::extract::answer_tag;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use std::sync::Arc;

/// The id this environment is registered under.
pub const ID: &str = "tools/exec-v0";

/// Settings of `[env.config]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecConfig {
    /// Levels to draw from: 1 (one call), 2 (several calls), 3 (calls that depend on earlier
    /// results). Default `[1, 2, 3]`.
    pub levels: Vec<u8>,
    /// Tasks in the held-out split. Default 256.
    pub test_size: u64,
    /// Share of all tasks (per mille) reserved for the test split. Default 100.
    pub test_per_mille: u64,
    /// Tool calls per episode; the episode is truncated after the turn that reaches it. Default 12.
    pub max_calls: usize,
}

impl Default for ExecConfig {
    fn default() -> Self {
        Self { levels: vec![1, 2, 3], test_size: 256, test_per_mille: 100, max_calls: 12 }
    }
}

const SYSTEM: &str = "You can call tools. To call one, write <tool_call>{\"name\": \"TOOL\", \"arguments\": {...}}</tool_call>; \
you may write several such blocks in one message. Results come back in tool messages. When you know the answer, \
reply without tool calls and give the final answer inside <answer></answer> tags.\n\nTools:\n";

/// What one assistant turn does.
#[derive(Debug)]
pub enum Turn {
    /// Calls to run.
    Calls(Vec<Call>),
    /// The model tried to call tools but the calls could not be read.
    Malformed(ParseError),
    /// No calls: the episode's final message.
    Final,
}

/// Reads a turn: `<tool_call>` blocks if there is a tag; otherwise a message that is entirely
/// Python-call syntax with at least one call; otherwise the final message.
pub fn read_turn(text: &str) -> Turn {
    if has_tool_call_tag(text) {
        return match parse_hermes(text) {
            Ok(calls) => Turn::Calls(calls),
            Err(e) => Turn::Malformed(e),
        };
    }
    match parse_python(text) {
        Ok(calls) if !calls.is_empty() => Turn::Calls(calls),
        _ => Turn::Final,
    }
}

/// The JSON of a failed call, as the model sees it.
fn error_json(category: &str, message: &str) -> Json {
    json!({ "error": { "category": category, "message": message } })
}

/// The seeded, leveled task generator.
pub struct ExecTasks {
    config: ExecConfig,
    seed: u64,
}

impl ExecTasks {
    /// A generator for `config`, seeded by `seed`.
    pub fn new(config: ExecConfig, seed: u64) -> Result<Self, BoxError> {
        if config.levels.is_empty() || config.levels.iter().any(|l| !(1..=3).contains(l)) {
            return Err(format!("levels must be a non-empty subset of [1, 2, 3], got {:?}", config.levels).into());
        }
        if config.test_per_mille == 0 || config.test_per_mille >= 1000 {
            return Err("test_per_mille must lie in 1..=999".into());
        }
        if config.max_calls == 0 {
            return Err("max_calls must be at least 1".into());
        }
        Ok(Self { config, seed })
    }
}

impl TaskSource for ExecTasks {
    fn len(&self, split: Split) -> Option<u64> {
        match split {
            Split::Train => None,
            Split::Test => Some(self.config.test_size),
        }
    }

    fn task(&self, split: Split, index: u64) -> Result<Task, BoxError> {
        let levels = &self.config.levels;
        draw_split_task(self.seed, split, index, self.config.test_per_mille, |h| {
            let level = levels[(seed::mix(h) % levels.len() as u64) as usize];
            let data = generate(level, h)?;
            Ok((data["question"].as_str().unwrap_or_default().to_string(), data))
        })
    }
}

const ITEMS: [&str; 8] = ["bolts", "nuts", "screws", "washers", "hinges", "brackets", "gears", "springs"];

/// Draws from a hash: `pick(h, k, n)` is the `k`-th independent draw in `0..n`.
fn pick(h: u64, k: u64, n: usize) -> usize {
    (seed::derive(h, &[k]) % n as u64) as usize
}

fn call(name: &str, args: Json) -> Json {
    json!({ "name": name, "arguments": args })
}

/// Builds one task of `level` from hash `h`: question, tools, state, plan, answer, gold state.
fn generate(level: u8, h: u64) -> Result<Json, BoxError> {
    let mut inventory = serde_json::Map::new();
    for (k, item) in ITEMS.iter().enumerate() {
        if pick(h, 100 + k as u64, 3) > 0 {
            inventory.insert((*item).into(), json!(pick(h, 200 + k as u64, 200) + 1));
        }
    }
    if inventory.len() < 2 {
        inventory.insert("bolts".into(), json!(40));
        inventory.insert("nuts".into(), json!(25));
    }
    let state = json!({ "inventory": inventory });
    let stocked: Vec<String> = inventory.keys().cloned().collect();
    let mut backend = Backend::from_state(&state)?;
    let mut run = |c: &Json| -> Result<Json, BoxError> {
        let parsed = Call {
            name: c["name"].as_str().unwrap_or_default().into(),
            args: c["arguments"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str().into(), Val::from_json(v)))
                .collect(),
        };
        backend.call(backend::tool_specs(), &parsed).map_err(|e| format!("gold call failed: {}", e.message).into())
    };
    let country = |k: u64| backend::COUNTRIES[pick(h, k, backend::COUNTRIES.len())].0;
    let date = |k: u64| backend::format_date(pick(h, k, 365 * 30) as i64 + 10957); // 2000-01-01 onwards
    let kind = pick(h, 1, 3);
    let (question, tools, plan, answer): (String, Vec<&str>, Vec<Vec<Json>>, String) = match (level, kind) {
        (1, 0) => {
            let (a, b, c) = (pick(h, 2, 900) + 100, pick(h, 3, 90) + 10, pick(h, 4, 1000));
            let expr = format!("{a} * {b} + {c}");
            let c1 = call("calculate", json!({ "expression": expr }));
            let r = run(&c1)?;
            (
                format!("Use the calculator to compute {expr}."),
                vec!["calculate"],
                vec![vec![c1]],
                r["result"].to_string(),
            )
        }
        (1, 1) => {
            let pairs = [("km", "mi"), ("lb", "kg"), ("F", "C"), ("h", "min"), ("ft", "m"), ("oz", "g")];
            let (from, to) = pairs[pick(h, 2, pairs.len())];
            let v = (pick(h, 3, 10_000) as f64) / 10.0;
            let c1 = call("convert_units", json!({ "value": v, "from_unit": from, "to_unit": to }));
            let r = run(&c1)?;
            (
                format!("Convert {} {from} to {to}.", fmt_num(v)),
                vec!["convert_units", "calculate"],
                vec![vec![c1]],
                r["result"].to_string(),
            )
        }
        (1, _) => {
            let (c, field) = (country(2), backend::FIELDS[pick(h, 3, backend::FIELDS.len())]);
            let c1 = call("lookup_country", json!({ "country": c, "field": field }));
            let r = run(&c1)?;
            let value = r["value"].as_str().map(str::to_string).unwrap_or_else(|| r["value"].to_string());
            (
                format!("According to the country table, what is the {field} of {c}?"),
                vec!["lookup_country"],
                vec![vec![c1]],
                value,
            )
        }
        (2, 0) => {
            let a = &stocked[pick(h, 2, stocked.len())];
            let b = &stocked[(stocked.iter().position(|x| x == a).unwrap_or(0) + 1) % stocked.len()];
            let (na, nb) = (pick(h, 3, 50) + 1, 1);
            let c1 = call("inventory_add", json!({ "item": a, "quantity": na }));
            let c2 = call("inventory_remove", json!({ "item": b, "quantity": nb }));
            let r = run(&c1)?;
            run(&c2)?;
            (
                format!(
                    "Add {na} {a} to the inventory and remove {nb} of the {b}. Then tell me how many {a} are in stock."
                ),
                vec!["inventory_get", "inventory_add", "inventory_remove"],
                vec![vec![c1, c2]],
                r["quantity"].to_string(),
            )
        }
        (2, 1) => {
            let (x, y) = (country(2), country(3));
            let y = if x == y { backend::COUNTRIES[(pick(h, 3, 19) + 1) % 19].0 } else { y };
            let y = if x == y { "Peru" } else { y };
            let c1 = call("lookup_country", json!({ "country": x, "field": "capital" }));
            let c2 = call("lookup_country", json!({ "country": y, "field": "capital" }));
            let (r1, r2) = (run(&c1)?, run(&c2)?);
            (
                format!(
                    "What are the capitals of {x} and {y}? Answer with the two names separated by a comma, {x}'s first."
                ),
                vec!["lookup_country"],
                vec![vec![c1, c2]],
                format!("{}, {}", r1["value"].as_str().unwrap_or_default(), r2["value"].as_str().unwrap_or_default()),
            )
        }
        (2, _) => {
            let (a, b) = (pick(h, 2, 500) as f64 / 10.0, pick(h, 3, 500) as f64 / 10.0);
            let c1 = call("convert_units", json!({ "value": a, "from_unit": "mi", "to_unit": "km" }));
            let c2 = call("convert_units", json!({ "value": b, "from_unit": "km", "to_unit": "mi" }));
            let (r1, r2) = (run(&c1)?, run(&c2)?);
            let expr = format!("{} + {}", r1["result"], r2["result"]);
            let c3 = call("calculate", json!({ "expression": expr }));
            let r3 = run(&c3)?;
            (
                format!(
                    "Convert {} mi to km and {} km to mi, then add the two converted numbers.",
                    fmt_num(a),
                    fmt_num(b)
                ),
                vec!["convert_units", "calculate"],
                vec![vec![c1, c2], vec![c3]],
                r3["result"].to_string(),
            )
        }
        (_, 0) => {
            let (d, n) = (date(2), pick(h, 3, 400) as i64 + 1);
            let c1 = call("calendar_add_days", json!({ "date": d, "days": n }));
            let r1 = run(&c1)?;
            let c2 = call("calendar_weekday", json!({ "date": r1["date"] }));
            let r2 = run(&c2)?;
            (
                format!("What day of the week is it {n} days after {d}?"),
                vec!["calendar_add_days", "calendar_weekday"],
                vec![vec![c1], vec![c2]],
                r2["weekday"].as_str().unwrap_or_default().to_string(),
            )
        }
        (_, 1) => {
            let (c, k) = (country(2), pick(h, 3, 9) + 2);
            let c1 = call("lookup_country", json!({ "country": c, "field": "population_millions" }));
            let r1 = run(&c1)?;
            let c2 = call("calculate", json!({ "expression": format!("{} * {k}", r1["value"]) }));
            let r2 = run(&c2)?;
            (
                format!("Look up the population of {c} in millions and multiply it by {k} with the calculator."),
                vec!["lookup_country", "calculate"],
                vec![vec![c1], vec![c2]],
                r2["result"].to_string(),
            )
        }
        (_, _) => {
            let a = &stocked[pick(h, 2, stocked.len())];
            let b = &stocked[(stocked.iter().position(|x| x == a).unwrap_or(0) + 1) % stocked.len()];
            let c1 = call("inventory_get", json!({ "item": a }));
            let q = run(&c1)?["quantity"].clone();
            let c2 = call("inventory_remove", json!({ "item": a, "quantity": q }));
            let c3 = call("inventory_add", json!({ "item": b, "quantity": q }));
            run(&c2)?;
            let r3 = run(&c3)?;
            (
                format!(
                    "Move all the {a} in stock into the {b} entry of the inventory (remove them from {a}, add them to {b}), then tell me the new {b} count."
                ),
                vec!["inventory_get", "inventory_add", "inventory_remove"],
                vec![vec![c1], vec![c2, c3]],
                r3["quantity"].to_string(),
            )
        }
    };
    Ok(json!({
        "question": question,
        "level": level,
        "tools": tools,
        "state": state,
        "plan": plan,
        "answer": answer,
        "gold_state": backend.state(),
    }))
}

/// One episode.
pub struct ExecEnv {
    max_calls: usize,
    tools: Vec<Json>,
    backend: Backend,
    calls: usize,
}

impl ExecEnv {
    /// An environment that truncates episodes after `max_calls` calls.
    pub fn new(max_calls: usize) -> Self {
        Self { max_calls, tools: Vec::new(), backend: Backend::default(), calls: 0 }
    }
}

fn task_tools(task: &Task) -> Result<Vec<Json>, String> {
    let names: Vec<String> = match task.data.get("tools") {
        Some(Json::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        None => backend::tool_specs()
            .iter()
            .map(|t| t["function"]["name"].as_str().unwrap_or_default().to_string())
            .collect(),
        Some(_) => {
            return Err(format!("task {}: `tools` must be an array of tool names", task.id));
        }
    };
    let specs = backend::specs_for(&names);
    if specs.len() != names.len() {
        return Err(format!("task {}: unknown tool among {names:?}", task.id));
    }
    Ok(specs)
}

impl Environment for ExecEnv {
    fn reset(&mut self, task: &Task, _seed: u64) -> Result<Vec<Message>, EnvError> {
        let question = task.str_field("question")?;
        self.tools = task_tools(task).map_err(EnvError::InvalidTask)?;
        let state = task.data.get("state").cloned().unwrap_or(Json::Null);
        self.backend =
            Backend::from_state(&state).map_err(|e| EnvError::InvalidTask(format!("task {}: {e}", task.id)))?;
        self.calls = 0;
        let listing: Vec<String> = self.tools.iter().map(Json::to_string).collect();
        Ok(vec![Message::system(format!("{SYSTEM}{}", listing.join("\n"))), Message::user(question)])
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        match read_turn(&action.text) {
            Turn::Final => Ok(Step::terminated(json!({ "calls": 0, "final": true }))),
            Turn::Malformed(e) => {
                self.calls += 1;
                let msg =
                    Message::tool("invalid_tool_call", error_json("malformed_syntax", &e.to_string()).to_string());
                Ok(self.after_turn(vec![msg], json!({ "calls": 0, "errors": ["malformed_syntax"] })))
            }
            Turn::Calls(calls) => {
                let mut obs = Vec::with_capacity(calls.len());
                let mut errors = Vec::new();
                for c in &calls {
                    self.calls += 1;
                    let content = match self.backend.call(&self.tools, c) {
                        Ok(r) => r,
                        Err(ToolError { category, message }) => {
                            errors.push(category);
                            error_json(category, &message)
                        }
                    };
                    obs.push(Message::tool(c.name.clone(), content.to_string()));
                }
                let info = json!({ "calls": calls.len(), "errors": errors });
                Ok(self.after_turn(obs, info))
            }
        }
    }
}

impl ExecEnv {
    fn after_turn(&self, observation: Vec<Message>, info: Json) -> Step {
        let status = if self.calls >= self.max_calls { Status::Truncated } else { Status::Running };
        Step { observation, status, info }
    }
}

/// What replaying an episode's assistant turns gives, for `tools/exec-match`.
#[derive(Clone, Debug, Serialize)]
pub struct Replay {
    /// The final answer (the last `<answer>` of the final turn), if any.
    pub answer: Option<String>,
    /// It equals the gold answer (numbers within 1e-6 relative, text ignoring case and spacing).
    pub answer_match: bool,
    /// The final tool state equals the gold state.
    pub state_match: bool,
    /// Calls made.
    pub calls: usize,
    /// Category of each failed call, in order.
    pub errors: Vec<&'static str>,
}

/// Replays `turns` (the assistant messages, in order) on the task's tools, exactly as the
/// environment ran them, and compares the result with the task's gold answer and state.
pub fn replay(task: &Task, turns: &[&str]) -> Result<Replay, String> {
    let tools = task_tools(task)?;
    let gold_answer = task.str_field("answer")?;
    let gold_state =
        task.data.get("gold_state").ok_or_else(|| format!("task {}: missing field `gold_state`", task.id))?;
    let mut backend = Backend::from_state(task.data.get("state").unwrap_or(&Json::Null))?;
    let mut r = Replay { answer: None, answer_match: false, state_match: false, calls: 0, errors: Vec::new() };
    for text in turns {
        match read_turn(text) {
            Turn::Final => {
                r.answer = answer_tag(text).map(str::to_string);
                break;
            }
            Turn::Malformed(_) => r.errors.push("malformed_syntax"),
            Turn::Calls(calls) => {
                for c in &calls {
                    r.calls += 1;
                    if let Err(e) = backend.call(&tools, c) {
                        r.errors.push(e.category);
                    }
                }
            }
        }
    }
    r.answer_match = r.answer.as_deref().is_some_and(|a| answers_match(a, gold_answer));
    r.state_match = backend.state() == *gold_state;
    Ok(r)
}

/// Numbers compare within 1e-6 (relative); text ignoring case, surrounding space and a final `.`.
pub fn answers_match(given: &str, gold: &str) -> bool {
    let norm = |s: &str| s.trim().trim_end_matches('.').split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    let (g, w) = (norm(given), norm(gold));
    match (g.replace(',', "").parse::<f64>(), w.parse::<f64>()) {
        (Ok(a), Ok(b)) if a.is_finite() && b.is_finite() => (a - b).abs() <= 1e-6 * b.abs().max(1.0),
        _ => g == w,
    }
}

/// The gold player: the plan's calls turn by turn, then the answer.
pub fn gold(task: &Task, messages: &[Message]) -> Result<String, BoxError> {
    let turn = messages.iter().filter(|m| m.role == rlvr_engine::Role::Assistant).count();
    let plan =
        task.data.get("plan").and_then(Json::as_array).ok_or_else(|| format!("task {}: missing `plan`", task.id))?;
    match plan.get(turn) {
        Some(Json::Array(calls)) => {
            Ok(calls.iter().map(|c| format!("<tool_call>{c}</tool_call>")).collect::<Vec<_>>().join("\n"))
        }
        Some(_) => Err(format!("task {}: plan turn {turn} is not a list of calls", task.id).into()),
        None => Ok(format!("<answer>{}</answer>", task.str_field("answer")?)),
    }
}

/// Builds the spec from `[env.config]`.
pub fn spec(config: &Config, seed: u64) -> Result<EnvSpec, BoxError> {
    let cfg: ExecConfig = parse_config(config)?;
    let max_calls = cfg.max_calls;
    let tasks = Arc::new(ExecTasks::new(cfg, seed)?);
    Ok(EnvSpec::new(tasks, move || Ok(ExecEnv::new(max_calls)), "tools/exec-match").with_gold(gold))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_and_kind_generates_and_replays_to_gold() {
        for level in 1..=3u8 {
            for h in 0..60u64 {
                let data = generate(level, seed::mix(h)).unwrap();
                let task = Task::new("t", data);
                let mut msgs = Vec::new();
                let mut turns = Vec::new();
                loop {
                    let m = gold(&task, &msgs).unwrap();
                    msgs.push(Message::assistant(m.clone()));
                    turns.push(m.clone());
                    if m.starts_with("<answer>") {
                        break;
                    }
                }
                assert_eq!(turns.len() - 1, task.data["plan"].as_array().unwrap().len());
                let refs: Vec<&str> = turns.iter().map(String::as_str).collect();
                let r = replay(&task, &refs).unwrap();
                assert!(r.answer_match && r.state_match && r.errors.is_empty(), "{:?} {}", r, task.data);
            }
        }
    }

    #[test]
    fn tool_errors_are_observations_and_the_episode_goes_on() {
        let spec = spec(&Config::new(), 3).unwrap();
        let task = Task::new(
            "x",
            json!({"question": "q", "tools": ["inventory_get", "inventory_remove"], "state": {"inventory": {"bolts": 2}},
                   "plan": [], "answer": "0", "gold_state": {"inventory": {"bolts": 0}}}),
        );
        let mut env = (spec.make)().unwrap();
        env.reset(&task, 0).unwrap();
        let s = env.step(&Action::text("<tool_call>{\"name\": \"inventory_remove\", \"arguments\": {\"item\": \"bolts\", \"quantity\": 5}}</tool_call>")).unwrap();
        assert_eq!(s.status, Status::Running);
        assert!(s.observation[0].content.contains("tool_error"), "{}", s.observation[0].content);
        let s = env
            .step(&Action::text("<tool_call>{\"name\": \"inventory_remove\", \"arguments\": {\"item\": \"bolts\""))
            .unwrap();
        assert!(s.observation[0].content.contains("malformed_syntax"));
        let s = env.step(&Action::text("[inventory_remove(item='bolts', quantity=2), launch(x=1)]")).unwrap();
        assert_eq!(s.info["errors"], json!(["unknown_tool"]));
        let s = env.step(&Action::text("<answer>0</answer>")).unwrap();
        assert_eq!(s.status, Status::Terminated);
        let r = replay(&task, &["[inventory_remove(item='bolts', quantity=2)]", "<answer>0</answer>"]).unwrap();
        assert!(r.answer_match && r.state_match);
        let r = replay(&task, &["<answer>0</answer>"]).unwrap();
        assert!(r.answer_match && !r.state_match, "the answer alone does not change the state");
    }

    #[test]
    fn too_many_calls_truncate() {
        let spec = spec(&toml::from_str("max_calls = 2").unwrap(), 3).unwrap();
        let task = spec.tasks.task(Split::Train, 0).unwrap();
        let mut env = (spec.make)().unwrap();
        env.reset(&task, 0).unwrap();
        let s = env.step(&Action::text("[calculate(expression='1+1'), calculate(expression='2')]")).unwrap();
        assert_eq!(s.status, Status::Truncated);
    }

    #[test]
    fn answers_compare_numerically_or_as_text() {
        assert!(answers_match("15,253", "15253"));
        assert!(answers_match(" paris, rome. ", "Paris, Rome"));
        assert!(!answers_match("1.01", "1"));
    }
}
