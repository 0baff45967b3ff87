//! `python/file`: a reward written in Python, run inside the code environment's sandbox.
//!
//! The file defines `reward(task: dict, completion: str) -> float | dict` (a dict holds
//! `"reward"` and any diagnostics), the signature TRL and verifiers reward functions already
//! have, so they can be reused without writing Rust and without trusting them with the host.
//! Each worker thread keeps one warm interpreter per plugin file (the file is run once, then
//! every call is one turn), each call with its own fuel, deadline and output limits.
//!
//! Everything that goes wrong in the plugin (an exception, a limit hit, a result that is not a
//! finite number) is a verifier error on the term, never a silent zero: a reward that cannot be
//! computed must not train the policy.

use super::{py_str, tail};
use rlvr_engine::{BoxError, Config, Registry, Reward, RewardError, Rubric, Task, Trajectory, parse_config};
use super::{Limits, Sandbox, Session};
use serde::Deserialize;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Settings of `python/file`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PythonRewardConfig {
    /// The Python file defining the function.
    pub path: PathBuf,
    /// The function's name. Default `reward`.
    #[serde(default = "default_function")]
    pub function: String,
    /// Limits of each call (the memory cap holds for the worker's interpreter).
    #[serde(default)]
    pub limits: Limits,
}

fn default_function() -> String {
    "reward".into()
}

/// A loaded plugin: its source, and a process-unique key for the per-thread interpreters.
struct Plugin {
    key: u64,
    /// The file as named in the config, for messages and tracebacks.
    file: String,
    source: String,
    function: String,
    limits: Limits,
    sandbox: Arc<Sandbox>,
}

static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's warm interpreters, one per plugin.
    static SESSIONS: RefCell<HashMap<u64, Session>> = RefCell::new(HashMap::new());
}

/// The marker of the result line; the plugin's own prints come before it and are ignored.
const RESULT: &str = "__rlvr_reward_result__ ";

impl Plugin {
    /// A fresh interpreter with the plugin's file run in it.
    fn open(&self) -> Result<Session, RewardError> {
        let mut s = Session::new(&self.sandbox, &self.limits, &[], 0)
            .map_err(|e| RewardError::new(format!("python reward: sandbox: {e}")))?;
        // Compiled under the file's own name, so a traceback points at its lines, not `<turn 1>`.
        let load = format!("exec(compile({}, {}, 'exec'), globals())\n", py_str(&self.source), py_str(&self.file));
        let e = s.turn(&load, &self.limits).map_err(|e| RewardError::new(format!("python reward: sandbox: {e}")))?;
        if !e.ok() {
            return Err(RewardError::new(format!("{}: running the file failed: {}", self.file, describe(&e))));
        }
        Ok(s)
    }

    fn call(&self, task: &Task, completion: &str) -> Result<Reward, RewardError> {
        let task_json = serde_json::to_string(&task.data).map_err(|e| RewardError::new(e.to_string()))?;
        let code = format!(
            "import json as __j\n__r = {f}(__j.loads({t}), {c})\nprint({m} + __j.dumps(__r))\n",
            f = self.function,
            t = py_str(&task_json),
            c = py_str(completion),
            m = py_str(RESULT),
        );
        SESSIONS.with(|cell| {
            let mut sessions = cell.borrow_mut();
            let session = match sessions.entry(self.key) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => v.insert(self.open()?),
            };
            let e = session.turn(&code, &self.limits).map_err(|e| RewardError::new(format!("python reward: {e}")));
            if session.ended().is_some() {
                // A limit or trap ended the interpreter: the next call starts a fresh one.
                sessions.remove(&self.key);
            }
            let e = e?;
            if !e.ok() {
                return Err(RewardError::new(format!("{}: `{}` failed: {}", self.file, self.function, describe(&e))));
            }
            let line = e.stdout.lines().rev().find_map(|l| l.strip_prefix(RESULT));
            let value: Value = line
                .and_then(|l| serde_json::from_str(l).ok())
                .ok_or_else(|| RewardError::new("python reward: no result (the function's value is not JSON)"))?;
            to_reward(value)
        })
    }
}

fn describe(e: &super::Execution) -> String {
    match (e.limit, &e.trap) {
        (Some(l), _) if e.exit_code.is_none() => format!("stopped by the {} limit", l.name()),
        (_, Some(t)) => format!("trap: {t}"),
        (_, None) => match e.exit_code {
            Some(c) => format!("exit code {c}: {}", without_our_frames(tail(&e.stderr, 600).trim())),
            None => format!("no exit code: {}", without_our_frames(tail(&e.stderr, 600).trim())),
        },
    }
}

/// A traceback without the frames of rlvr's own calling code (`File "<turn 5>"` and its source
/// line), so that what remains is the plugin's.
fn without_our_frames(tb: &str) -> String {
    let mut out = Vec::new();
    let mut skip_next = false;
    for line in tb.lines() {
        if skip_next {
            skip_next = false;
            continue;
        }
        if line.trim_start().starts_with("File \"<turn ") {
            skip_next = true;
            continue;
        }
        out.push(line);
    }
    out.join("\n")
}

/// A float, a bool, or a dict with a float `"reward"` (the rest is kept as diagnostics).
fn to_reward(value: Value) -> Result<Reward, RewardError> {
    match super::reward_value(&value) {
        Some((x, info)) => Ok(Reward::with_info(x, info)),
        None => Err(RewardError::new(format!(
            "python reward: expected a finite number or {{\"reward\": number}}, got {value}"
        ))),
    }
}

/// Builds `python/file`: one term, `python` (weight 1). The file is read, and run once in a
/// fresh interpreter, here: a plugin that does not load is a config error, not a stream of
/// verifier errors.
pub fn rubric(config: &Config) -> Result<Rubric, BoxError> {
    let cfg: PythonRewardConfig = parse_config(config)?;
    let source = std::fs::read_to_string(&cfg.path).map_err(|e| format!("reading {}: {e}", cfg.path.display()))?;
    if !cfg.function.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || cfg.function.is_empty() {
        return Err(format!("function `{}` is not a Python identifier", cfg.function).into());
    }
    let plugin = Arc::new(Plugin {
        key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
        file: cfg.path.display().to_string(),
        source,
        function: cfg.function,
        limits: cfg.limits,
        sandbox: Sandbox::shared()?,
    });
    let mut probe = plugin.open().map_err(|e| format!("{}: {e}", cfg.path.display()))?;
    let check = format!("print(callable(globals().get({})))", py_str(&plugin.function));
    let seen = probe.turn(&check, &plugin.limits)?;
    if seen.stdout.trim() != "True" {
        return Err(format!("{} defines no function `{}`", cfg.path.display(), plugin.function).into());
    }
    Ok(Rubric::new().term("python", 1.0, move |task: &Task, tr: &Trajectory| plugin.call(task, tr.final_answer())))
}

/// Registers `python/file`.
pub fn register(registry: &mut Registry) {
    registry.reward(
        "python/file",
        "a Python file's `reward(task, completion) -> float | dict`, run in the wasmtime sandbox",
        rubric,
    );
}
