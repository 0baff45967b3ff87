//! Berkeley Function Calling Leaderboard data, and the `tools/bfcl-v0` environment over it.
//!
//! BFCL's question files (`BFCL_v4_<category>.json`: one JSON object per line with `id`,
//! `question`, `function`) and answer files (`possible_answer/BFCL_v4_<category>.json`: `id`,
//! `ground_truth`) ship inside the `bfcl-eval` wheel on PyPI. We fetch that wheel at first use
//! (`python3 -m pip download --no-deps`, no dependencies, only its data files are read), check its
//! SHA-256, unpack it under `$XDG_CACHE_HOME/rlvr` (else `~/.cache/rlvr`) and reuse it. Point
//! `RLVR_BFCL_DIR` (or the env's `data_dir`) at a directory holding those files to skip the fetch.
//!
//! Categories: `simple` (file `simple_python`), `multiple`, `parallel`, `parallel_multiple`, and
//! their `live_` variants. Each task is `{"id", "category", "question", "functions",
//! "ground_truth"}`: exactly what `tools/ast-match` reads.

use super::value::Val;
use crate::fetch::Wheel;
use rlvr_engine::{
    Action, BoxError, Config, EnvError, EnvSpec, Environment, Message, Role, Step, Task, VecTasks, parse_config, seed,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The id this environment is registered under.
pub const ID: &str = "tools/bfcl-v0";
/// The pinned wheel.
pub const WHEEL_VERSION: &str = "2026.3.23";
/// SHA-256 of `bfcl_eval-2026.3.23-py3-none-any.whl`.
pub const WHEEL_SHA256: &str = "3bb6dfa5f0c68ad403c9ec50b00db2bb3b4cc9b38ab1ff33f48fe30d853d3a0a";
/// The environment variable that points at a local data directory.
pub const DIR_VAR: &str = "RLVR_BFCL_DIR";
/// The categories we load.
pub const CATEGORIES: [&str; 8] = [
    "simple",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
];

/// The file stem of a category (`simple` is stored as `simple_python`).
fn file_stem(category: &str) -> String {
    let c = if category == "simple" { "simple_python" } else { category };
    format!("BFCL_v4_{c}.json")
}

/// The pinned wheel: only its data directory is unpacked (`bfcl_eval/data/` becomes the cache
/// directory itself); `$RLVR_BFCL_DIR` may name that data directory, or the wheel file.
pub const WHEEL: Wheel = Wheel {
    name: "bfcl-eval",
    version: WHEEL_VERSION,
    sha256: WHEEL_SHA256,
    members: &[("bfcl_eval/data/", "")],
    env_var: DIR_VAR,
    size: 1_925_664,
};

/// The data directory: `explicit`, else `$RLVR_BFCL_DIR`, else the cache (fetching the wheel
/// through pip if absent).
pub fn data_dir(explicit: Option<&Path>) -> Result<PathBuf, BoxError> {
    match explicit {
        Some(p) => Ok(p.to_path_buf()),
        None => Ok(WHEEL.ensure()?),
    }
}

fn read_lines(path: &Path) -> Result<Vec<Json>, BoxError> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1).into()))
        .collect()
}

/// Loads `category` from `dir`: one task per question that has a ground truth.
pub fn load_category(dir: &Path, category: &str) -> Result<Vec<Task>, BoxError> {
    if !CATEGORIES.contains(&category) {
        return Err(format!("unknown BFCL category `{category}`; use one of {CATEGORIES:?}").into());
    }
    let questions = read_lines(&dir.join(file_stem(category)))?;
    let answers = read_lines(&dir.join("possible_answer").join(file_stem(category)))?;
    let truth: std::collections::HashMap<&str, &Json> =
        answers.iter().filter_map(|a| Some((a.get("id")?.as_str()?, a.get("ground_truth")?))).collect();
    let mut tasks = Vec::with_capacity(questions.len());
    for q in &questions {
        let id = q.get("id").and_then(Json::as_str).ok_or_else(|| format!("{category}: question without an id"))?;
        let Some(gt) = truth.get(id) else { continue };
        tasks.push(Task::new(
            id,
            json!({
                "id": id,
                "category": category,
                "question": q.get("question").cloned().unwrap_or(Json::Null),
                "functions": q.get("function").cloned().unwrap_or(Json::Null),
                "ground_truth": gt,
            }),
        ));
    }
    Ok(tasks)
}

/// Settings of `[env.config]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BfclConfig {
    /// Categories to load. Default: all eight.
    pub categories: Vec<String>,
    /// A directory with BFCL's files; default `$RLVR_BFCL_DIR`, else the fetched cache.
    pub data_dir: Option<PathBuf>,
    /// Share of tasks (per mille, by a hash of the id) held out for the test split. Default 100.
    pub test_per_mille: u64,
}

impl Default for BfclConfig {
    fn default() -> Self {
        Self { categories: CATEGORIES.iter().map(|c| c.to_string()).collect(), data_dir: None, test_per_mille: 100 }
    }
}

const SYSTEM: &str = "You are an expert in composing functions. You are given a question and a set of possible functions. \
Based on the question, make one or more function calls to achieve the purpose. Reply only with the calls, in the format \
[func_name1(params_name1=params_value1, params_name2=params_value2...), func_name2(params)]. \
Here is a list of functions in JSON format that you can invoke.\n";

/// One single-turn BFCL episode: the prompt, then one answer that ends it.
#[derive(Default)]
pub struct BfclEnv;

impl Environment for BfclEnv {
    fn reset(&mut self, task: &Task, _seed: u64) -> Result<Vec<Message>, EnvError> {
        let functions = task
            .data
            .get("functions")
            .ok_or_else(|| EnvError::InvalidTask(format!("task {}: no functions", task.id)))?;
        let mut msgs = vec![Message::system(format!("{SYSTEM}{functions}"))];
        let turn = task.data.pointer("/question/0").and_then(Json::as_array);
        for m in turn.into_iter().flatten() {
            let content = m.get("content").and_then(Json::as_str).unwrap_or_default();
            match m.get("role").and_then(Json::as_str) {
                Some("system") => msgs[0].content.push_str(&format!("\n\n{content}")),
                Some("assistant") => msgs.push(Message::assistant(content)),
                _ => msgs.push(Message::user(content)),
            }
        }
        if !msgs.iter().any(|m| m.role == Role::User) {
            return Err(EnvError::InvalidTask(format!("task {}: no user message in `question`", task.id)));
        }
        Ok(msgs)
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        let parsed = super::parse::parse_calls(&action.text);
        Ok(Step::terminated(json!({ "parsed": parsed.is_ok(), "calls": parsed.map(|c| c.len()).unwrap_or(0) })))
    }
}

/// A reference answer in Python-call syntax: per expected call, each parameter's first
/// acceptable value (omitted when that is `""`), nested dicts likewise.
pub fn gold_answer(task: &Task) -> Result<String, BoxError> {
    let truth = task
        .data
        .get("ground_truth")
        .and_then(Json::as_array)
        .ok_or_else(|| format!("task {}: no ground_truth", task.id))?;
    let mut calls = Vec::new();
    for t in truth {
        let (name, params) =
            t.as_object().and_then(|o| o.iter().next()).ok_or_else(|| format!("task {}: bad ground truth", task.id))?;
        let mut args = Vec::new();
        for (p, acceptable) in params.as_object().into_iter().flatten() {
            if let Some(v) = first_value(acceptable) {
                args.push(format!("{p}={}", v.repr()));
            }
        }
        calls.push(format!("{name}({})", args.join(", ")));
    }
    Ok(format!("[{}]", calls.join(", ")))
}

/// The first acceptable value, `None` for `""` (omit); dicts of acceptable lists recurse.
fn first_value(acceptable: &Json) -> Option<Val> {
    let first = acceptable.as_array()?.first()?;
    if first.as_str() == Some("") {
        return None;
    }
    Some(concrete(first))
}

fn concrete(v: &Json) -> Val {
    match v {
        Json::Object(o) => Val::Dict(
            o.iter()
                .filter_map(|(k, a)| {
                    Some((Val::Str(k.as_str().into()), if a.is_array() { first_value(a)? } else { concrete(a) }))
                })
                .collect(),
        ),
        Json::Array(a) if a.iter().all(Json::is_object) && !a.is_empty() => Val::List(a.iter().map(concrete).collect()),
        other => Val::from_json(other),
    }
}

/// True when the task's own gold answer passes the checker. A few BFCL ground truths cannot
/// (a `required` parameter that the truth marks optional, a truth parameter the doc lacks: 9 of
/// the 2351 tasks in 2026.3.23); such a task can never be solved, so the environment leaves it out.
pub fn gold_passes(task: &Task) -> bool {
    let (Some(Json::Array(functions)), Some(Json::Array(truth)), Some(cat)) =
        (task.data.get("functions"), task.data.get("ground_truth"), task.data.get("category").and_then(Json::as_str))
    else {
        return false;
    };
    let Ok(gold) = gold_answer(task) else {
        return false;
    };
    let Ok(calls) = super::parse::parse_calls(&gold) else {
        return false;
    };
    matches!(super::ast_check::check(functions, truth, cat, &calls), Ok(Ok(())))
}

/// Builds the spec from `[env.config]`. Tasks whose gold answer fails the checker are left out.
pub fn spec(config: &Config, _seed: u64) -> Result<EnvSpec, BoxError> {
    let cfg: BfclConfig = parse_config(config)?;
    if cfg.test_per_mille >= 1000 {
        return Err("test_per_mille must lie in 0..=999".into());
    }
    let dir = data_dir(cfg.data_dir.as_deref())?;
    let mut tasks = VecTasks::default();
    let mut unsatisfiable = 0usize;
    for c in &cfg.categories {
        for t in load_category(&dir, c)? {
            if !gold_passes(&t) {
                unsatisfiable += 1;
                continue;
            }
            let h = t.id.bytes().fold(0x6bf1u64, |acc, b| seed::mix(acc ^ u64::from(b)));
            if h % 1000 < cfg.test_per_mille { tasks.test.push(t) } else { tasks.train.push(t) }
        }
    }
    if unsatisfiable > 0 {
        tracing::warn!(unsatisfiable, "BFCL tasks left out: their ground truth fails BFCL's own checker");
    }
    if tasks.train.is_empty() && tasks.test.is_empty() {
        return Err(format!("no BFCL tasks found in {}", dir.display()).into());
    }
    Ok(EnvSpec::new(Arc::new(tasks), || Ok(BfclEnv), "tools/ast-match").with_gold(|task, _| gold_answer(task)))
}
