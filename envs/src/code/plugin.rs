//! `python/env-v0`: an environment written as a Python file, run inside the code sandbox.
//!
//! The file defines
//! - `tasks(split: str, seed: int, n: int) -> list[dict]`: at most `n` tasks of `"train"` or
//!   `"test"`, called once per split when the experiment is built; a task's `"id"` (a string) is
//!   kept, others are numbered `train-0`, `test-0`, ...;
//! - `reset(task: dict, seed: int) -> str | list[dict]`: the opening prompt (a user message), or
//!   the opening messages as `{"role", "content"}` dicts;
//! - `step(action: str) -> dict`: `{"observation": str | list[dict] | None, "done": bool}`, with
//!   optional `"truncated": bool` (the episode was cut, not finished) and `"info"` (any JSON, kept
//!   with the trajectory for the logs and the rubric);
//! - optionally `reward(task: dict, transcript: list[dict]) -> float | dict`: the environment's
//!   default reward, `python/env-reward` (a dict holds `"reward"` and any diagnostics);
//! - optionally `gold(task: dict[, transcript: list[dict]]) -> str`: the next assistant message of
//!   a player who knows the answer, for the conformance checks and `scripted/gold-v0`.
//!
//! A function may take fewer arguments than it is given (`reset(task)`); the rest are dropped.
//!
//! ## Design
//! - Every episode gets its own interpreter (a [`Session`] on the process's shared [`Sandbox`]),
//!   with the file run once as a module: the plugin keeps its state in module globals, `reset`
//!   and `step` are turns of that interpreter, and nothing leaks between episodes. Each call has
//!   the sandbox's limits (fuel, deadline, memory, output); the interpreter is dropped with the
//!   episode.
//! - Values cross as JSON inside Python string literals, so an action is data, never code. The
//!   result comes back as the last stdout line that starts with a nonce the plugin never sees,
//!   so the plugin's own prints (and a model that writes a fake result line) cannot confuse it.
//! - Everything that goes wrong in the plugin (a missing function, an exception, a limit, a value
//!   of the wrong type) is a [`PluginError`] naming the file and the function, with the
//!   traceback's end: in `reset` or `step` it fails that one rollout ([`EnvError`], counted in
//!   `rollout/failed`); in `reward` it is a verifier error; in `tasks`, or a file that does not
//!   load, it is a config error, before the run starts.
//! - `reward` and `gold` are pure functions of their arguments, so they run in a warm interpreter
//!   per worker thread (the file loaded once) rather than one per call.
//! - Each live episode holds one pooled instance of the sandbox, so Python environments get a
//!   sandbox of their own with [`POOL_SIZE`] instances (the shared one has 64, sized for code
//!   blocks and rewards): `run.tasks_per_iteration` x `rollout.group_size` and `run.eval_tasks`
//!   must stay below it, with a few to spare for the warm `reward` and `gold` interpreters.

use super::{Limits, Sandbox, SandboxConfig, Session, py_str, tail};
use rlvr_engine::{
    Action, BoxError, Config, EnvError, EnvSpec, Environment, Message, Registry, Reward, RewardError, Rubric, Split,
    Status, Step, Task, Trajectory, VecTasks, parse_config,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

/// The id of the environment.
pub const ID: &str = "python/env-v0";

/// The id of the reward that calls the file's own `reward(task, transcript)`.
pub const REWARD_ID: &str = "python/env-reward";

/// Live episodes a Python environment holds at once: each holds one interpreter, about 6 MB
/// resident while idle (measured on `letters.py`), so 1,024 fit in 8 GB. A GRPO iteration of 64
/// tasks x 16 samples is 1,024 episodes.
pub const POOL_SIZE: u32 = 1024;

/// Interpreters beyond the episodes': one per thread that calls `reward` or `gold` (kept warm
/// per thread), and the short-lived ones that load tasks. Pool slots are address space reserved
/// up front, not memory used.
const WARM_SLOTS: u32 = 64;

/// Modules imported once into the Python environments' warm snapshot: the loader's own and the
/// standard library's most imported, so a file's `import random` finds it in `sys.modules`.
const PRELOAD: &str = "import types, linecache, json, random, re, math, string, collections, itertools, functools";

static SANDBOX: OnceLock<Result<Arc<Sandbox>, String>> = OnceLock::new();

/// The process's sandbox for Python environments, opened at first use (the compiled guest comes
/// from the same disk cache as [`Sandbox::shared`]'s).
fn sandbox() -> Result<Arc<Sandbox>, BoxError> {
    let config = SandboxConfig {
        pool_size: POOL_SIZE + WARM_SLOTS,
        preload: Some(PRELOAD.into()),
        ..SandboxConfig::default()
    };
    Ok(SANDBOX.get_or_init(|| Sandbox::open(&config).map(Arc::new).map_err(|e| e.to_string())).clone()?)
}

/// Settings of `[env.config]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PyEnvConfig {
    /// The plugin file, absolute or relative to the working directory.
    pub path: PathBuf,
    /// Tasks asked of `tasks("train", seed, n)`. Default 1000.
    #[serde(default = "default_train_size")]
    pub train_size: u64,
    /// Tasks asked of `tasks("test", seed, n)`. Default 100.
    #[serde(default = "default_test_size")]
    pub test_size: u64,
    /// Limits of each call into the plugin (the memory cap holds for the episode's
    /// interpreter). `tasks` gets the same limits but a 256 MiB output cap, as its result
    /// (every task, as JSON) comes back through stdout.
    #[serde(default)]
    pub limits: Limits,
    /// Show what the plugin prints: each line of its stdout and stderr goes to rlvr's stderr,
    /// prefixed with the file and the function that printed it. Default false (a plugin's
    /// prints would otherwise interleave with every episode's).
    #[serde(default)]
    pub debug: bool,
}

fn default_train_size() -> u64 {
    1000
}

fn default_test_size() -> u64 {
    100
}

/// Settings of `python/env-reward` (the environment fills them in as its default reward).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PyRewardConfig {
    /// The plugin file.
    pub path: PathBuf,
    /// Limits of each call.
    #[serde(default)]
    pub limits: Limits,
}

/// What went wrong in a call into the plugin.
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    /// The file defines no such function.
    Missing,
    /// The function raised; the traceback's end.
    Raised(String),
    /// A sandbox limit stopped the call (or its output was cut).
    Limit(super::LimitKind),
    /// The function returned something of the wrong shape, or not JSON.
    WrongType(String),
    /// The interpreter itself ended (`os._exit`, a trap) or the sandbox failed.
    Sandbox(String),
}

/// A plugin's failure, naming its file and function.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{file}: `{function}` {}", describe(.problem, .limits))]
pub struct PluginError {
    /// The plugin file, as configured.
    pub file: String,
    /// The function that was called (`<module>` while loading the file).
    pub function: String,
    /// What went wrong.
    pub problem: Problem,
    limits: Limits,
}

fn describe(p: &Problem, limits: &Limits) -> String {
    match p {
        Problem::Missing => "is not defined in the file".into(),
        Problem::Raised(tb) => format!("raised an exception:\n{}", tb.trim_end()),
        Problem::Limit(l) => {
            let (what, value) = match l {
                super::LimitKind::Fuel => ("fuel", limits.fuel.to_string()),
                super::LimitKind::Deadline => ("deadline_ms", limits.deadline_ms.to_string()),
                super::LimitKind::Memory => ("memory_mb", limits.memory_mb.to_string()),
                super::LimitKind::Output => ("output_bytes", limits.output_bytes.to_string()),
                super::LimitKind::Files => ("open_files", limits.open_files.to_string()),
            };
            if *l == super::LimitKind::Output {
                format!("printed or returned more than {value} bytes, the output limit (limits.{what} = {value})")
            } else {
                format!("was stopped by the {} limit (limits.{what} = {value})", l.name())
            }
        }
        Problem::WrongType(msg) => format!("returned {msg}"),
        Problem::Sandbox(msg) => format!("failed in the sandbox: {msg}"),
    }
}

/// The Python side of the protocol: loads the file as a module and defines the call wrapper.
/// `{src}`, `{name}`, `{module}` and `{nonce}` are Python literals.
const LOADER: &str = r#"
import sys as __rlvr_sys, types as __rlvr_types, linecache as __rlvr_lc, json as __rlvr_json
if "random" in __rlvr_sys.modules:
    __rlvr_sys.modules["random"].seed()  # imported in the snapshot: reseed from this episode's seed
def __rlvr_tb(e, tb):
    import traceback  # only when needed: importing it costs more than loading most plugins
    return "".join(traceback.format_exception(type(e), e, tb))
def __rlvr_out(out):
    try:
        line = __rlvr_json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as e:
        line = __rlvr_json.dumps({"error": "json", "type": type(out.get("ok")).__name__, "detail": str(e)})
    __rlvr_sys.stdout.write("\n" + {nonce} + " " + line + "\n")
    __rlvr_sys.stdout.flush()
def __rlvr_load(src, name, module):
    __rlvr_lc.cache[name] = (len(src), None, src.splitlines(True), name)
    if module in __rlvr_sys.modules or module in __rlvr_sys.stdlib_module_names:
        module = "rlvr_plugin_" + module  # a file named random.py must not shadow random
    m = __rlvr_types.ModuleType(module)
    m.__file__ = name
    __rlvr_sys.modules[module] = m
    try:
        code = globals().pop("__rlvr_code", None)  # the file, compiled once per process
        exec(code if code is not None else compile(src, name, "exec"), m.__dict__)
    except BaseException as e:
        tb = e.__traceback__.tb_next if e.__traceback__ else None
        return None, {"error": "raised", "traceback": __rlvr_tb(e, tb)}
    fns = [f for f in ("tasks", "reset", "step", "reward", "gold") if callable(getattr(m, f, None))]
    return m, {"ok": fns}
def __rlvr_call(name, args):
    f = getattr(__rlvr_mod, name, None)
    if not callable(f):
        return __rlvr_out({"error": "missing"})
    args = __rlvr_json.loads(args)
    code = getattr(f, "__code__", None)
    if code is not None and not code.co_flags & 4 and code.co_argcount < len(args):
        args = args[:code.co_argcount]
    try:
        out = {"ok": f(*args)}
    except BaseException as e:
        out = {"error": "raised", "traceback": __rlvr_tb(e, e.__traceback__.tb_next)}
    __rlvr_out(out)
__rlvr_mod, __rlvr_loaded = __rlvr_load({src}, {name}, {module})
__rlvr_out(__rlvr_loaded)
"#;

static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

/// A loaded plugin file: its source and how to call into it.
pub struct PyPlugin {
    file: String,
    module: String,
    source: String,
    limits: Limits,
    sandbox: Arc<Sandbox>,
    nonce: String,
    key: u64,
    /// The functions the file defines, of `tasks`, `reset`, `step`, `reward`, `gold`.
    defines: Vec<String>,
    /// Dropped with the plugin, so the per-thread warm interpreters can tell it is gone.
    alive: Arc<()>,
    /// Echo what the plugin prints (`[env.config] debug`).
    debug: bool,
    /// The turn that loads the file into a fresh interpreter from code objects the guest
    /// compiled once (`marshal`), or `None` when the file does not compile (then the source
    /// path runs, and reports the error as it always has).
    fast_loader: Option<String>,
}

thread_local! {
    /// This thread's warm interpreters for `reward` and `gold`, one per live plugin.
    static WARM: RefCell<HashMap<u64, (Weak<()>, Session)>> = RefCell::new(HashMap::new());
}

impl PyPlugin {
    /// Reads `path` and runs it once in a fresh interpreter: a file that cannot be read or does
    /// not load is an error here, not a failure of every episode.
    pub fn load(path: &std::path::Path, limits: Limits) -> Result<PyPlugin, BoxError> {
        let source = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let module = if !stem.is_empty()
            && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !stem.starts_with(|c: char| c.is_ascii_digit())
        {
            stem.to_string()
        } else {
            "rlvr_plugin".to_string()
        };
        let noise = RandomState::new().hash_one(NEXT_KEY.load(Ordering::Relaxed));
        let mut plugin = PyPlugin {
            file: path.display().to_string(),
            module,
            source,
            limits,
            sandbox: sandbox()?,
            nonce: format!("__rlvr_{noise:016x}__"),
            key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
            defines: Vec::new(),
            alive: Arc::new(()),
            debug: false,
            fast_loader: None,
        };
        let (_, defines) = plugin.open(0)?;
        plugin.defines = defines;
        plugin.fast_loader = plugin.precompile();
        Ok(plugin)
    }

    /// The loader turn with this plugin's values filled in, as source.
    fn loader_source(&self) -> String {
        LOADER
            .replace("{nonce}", &py_str(&self.nonce))
            .replace("{name}", &py_str(&self.file))
            .replace("{module}", &py_str(&self.module))
            .replace("{src}", &py_str(&self.source))
    }

    /// Compiles the file and the loader once, in the guest, to `marshal` bytes: a reset then
    /// unmarshals two code objects instead of compiling both (letters.py's reset went from 8.4
    /// to 6.3 ms; most of the rest is its own `import random`, 9.5M fuel).
    fn precompile(&self) -> Option<String> {
        let limits = Limits { output_bytes: 256 << 20, ..self.limits.clone() };
        let mut s = Session::new(&self.sandbox, &limits, &[], 0).ok()?;
        let code = format!(
            "import marshal, sys\np = compile({src}, {name}, 'exec')\nl = compile({loader}, '<rlvr loader>', 'exec')\n\
             print(marshal.dumps(p).hex(), marshal.dumps(l).hex())",
            src = py_str(&self.source),
            name = py_str(&self.file),
            loader = py_str(&self.loader_source()),
        );
        let e = s.turn(&code, &limits).ok()?;
        let (plugin, loader) = e.stdout.trim().split_once(' ')?;
        let hex = |h: &str| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit());
        if !e.ok() || !hex(plugin) || !hex(loader) {
            return None;
        }
        Some(format!(
            "import marshal\n__rlvr_code = marshal.loads(bytes.fromhex('{plugin}'))\n\
             exec(marshal.loads(bytes.fromhex('{loader}')))\ndel marshal"
        ))
    }

    /// The plugin file, as configured.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Whether the file defines `function` (one of `tasks`, `reset`, `step`, `reward`, `gold`).
    pub fn defines(&self, function: &str) -> bool {
        self.defines.iter().any(|f| f == function)
    }

    fn error(&self, function: &str, problem: Problem) -> PluginError {
        PluginError { file: self.file.clone(), function: function.into(), problem, limits: self.limits.clone() }
    }

    /// A fresh interpreter with the file loaded, and the functions it defines.
    pub fn open(&self, seed: u64) -> Result<(Session, Vec<String>), PluginError> {
        let sandbox_err = |e: super::SandboxError| {
            let mut msg = e.to_string();
            if msg.contains("concurrent limit") {
                msg = format!(
                    "{msg}: more than {POOL_SIZE} interpreters at once ({} alive); run fewer episodes at once \
                     (run.tasks_per_iteration x rollout.group_size, run.eval_tasks)",
                    super::sandbox::live_sessions()
                );
            }
            self.error("<module>", Problem::Sandbox(msg))
        };
        let mut session = Session::new(&self.sandbox, &self.limits, &[], seed).map_err(sandbox_err)?;
        let code = match &self.fast_loader {
            Some(fast) => fast.clone(),
            None => self.loader_source(),
        };
        let value = self.turn(&mut session, "<module>", &code, &self.limits)?;
        let defines =
            serde_json::from_value(value).map_err(|e| self.error("<module>", Problem::Sandbox(e.to_string())))?;
        Ok((session, defines))
    }

    /// The plugin with what it prints echoed to stderr (`[env.config] debug`).
    pub fn with_debug(mut self, on: bool) -> Self {
        self.debug = on;
        self
    }

    /// Calls `function(*args)` in `session` under the plugin's limits.
    pub fn call(&self, session: &mut Session, function: &str, args: &Value) -> Result<Value, PluginError> {
        self.call_with(session, function, args, &self.limits)
    }

    fn call_with(
        &self,
        session: &mut Session,
        function: &str,
        args: &Value,
        limits: &Limits,
    ) -> Result<Value, PluginError> {
        let code = format!("__rlvr_call({}, {})\n", py_str(function), py_str(&args.to_string()));
        self.turn(session, function, &code, limits)
    }

    /// Runs one turn and reads its result line.
    fn turn(&self, session: &mut Session, function: &str, code: &str, limits: &Limits) -> Result<Value, PluginError> {
        let e = session.turn(code, limits).map_err(|e| self.error(function, Problem::Sandbox(e.to_string())))?;
        let prefix = format!("{} ", self.nonce);
        let line = e.stdout.lines().rev().find_map(|l| l.strip_prefix(&prefix));
        if self.debug {
            let printed = e.stdout.lines().filter(|l| !l.starts_with(&self.nonce)).chain(e.stderr.lines());
            for l in printed {
                eprintln!("[{} {function}] {l}", self.file);
            }
        }
        if let Some(l) = e.limit {
            return Err(self.error(function, Problem::Limit(l)));
        }
        let Some(line) = line else {
            let why = match (&e.trap, e.exit_code) {
                (Some(t), _) => format!("the interpreter stopped: {t}"),
                (None, Some(c)) if session.ended().is_some() => format!("it ended the interpreter (exit code {c})"),
                (None, Some(c)) => format!("no result (exit code {c}): {}", tail(&e.stderr, 2000).trim()),
                (None, None) => "no result".into(),
            };
            return Err(self.error(function, Problem::Sandbox(why)));
        };
        let out: Value = serde_json::from_str(line)
            .map_err(|e| self.error(function, Problem::Sandbox(format!("bad result line: {e}"))))?;
        if let Some(v) = out.get("ok") {
            return Ok(v.clone());
        }
        let problem = match out["error"].as_str() {
            Some("missing") => Problem::Missing,
            Some("raised") => Problem::Raised(tail(out["traceback"].as_str().unwrap_or(""), 3000)),
            Some("json") => Problem::WrongType(format!(
                "a value that is not JSON (a Python `{}`): {}",
                out["type"].as_str().unwrap_or("?"),
                out["detail"].as_str().unwrap_or("")
            )),
            _ => Problem::Sandbox(format!("unexpected result {out}")),
        };
        Err(self.error(function, problem))
    }

    /// Calls `function(*args)` in this thread's warm interpreter for the plugin (opened at first
    /// use, replaced after a limit or a trap ended it). For pure functions: `reward`, `gold`.
    pub fn call_warm(&self, function: &str, args: &Value) -> Result<Value, PluginError> {
        WARM.with(|cell| {
            let mut warm = cell.borrow_mut();
            // Interpreters of plugins that are gone hold pool slots: free them.
            warm.retain(|_, (alive, _)| alive.strong_count() > 0);
            let (_, session) = match warm.entry(self.key) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => v.insert((Arc::downgrade(&self.alive), self.open(0)?.0)),
            };
            let result = self.call(session, function, args);
            if session.ended().is_some() {
                warm.remove(&self.key);
            }
            result
        })
    }

    /// The tasks of `split`: `tasks(split, seed, n)`, at most `n` of them.
    pub fn tasks(&self, split: Split, seed: u64, n: u64) -> Result<Vec<Task>, PluginError> {
        let (mut session, _) = self.open(seed)?;
        let name = match split {
            Split::Train => "train",
            Split::Test => "test",
        };
        let limits = Limits { output_bytes: self.limits.output_bytes.max(256 << 20), ..self.limits.clone() };
        let value = self.call_with(&mut session, "tasks", &json!([name, seed, n]), &limits)?;
        let Value::Array(rows) = value else {
            return Err(self.error("tasks", Problem::WrongType(format!("{}; expected a list of dicts", short(&value)))));
        };
        rows.into_iter()
            .take(n as usize)
            .enumerate()
            .map(|(i, row)| match row {
                Value::Object(_) => {
                    let id =
                        row.get("id").and_then(Value::as_str).map_or_else(|| format!("{name}-{i}"), str::to_string);
                    Ok(Task::new(id, row))
                }
                other => Err(self.error(
                    "tasks",
                    Problem::WrongType(format!("a list whose item {i} is {}; expected a dict", short(&other))),
                )),
            })
            .collect()
    }
}

/// A value, cut for an error message.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 200 { format!("{}...", s.chars().take(200).collect::<String>()) } else { s }
}

/// Opening messages or an observation: a string is one user message; a list of
/// `{"role", "content"}` dicts is taken as it is; `None` or `""` is nothing.
fn messages(v: &Value) -> Option<Vec<Message>> {
    match v {
        Value::Null => Some(vec![]),
        Value::String(s) if s.is_empty() => Some(vec![]),
        Value::String(s) => Some(vec![Message::user(s.clone())]),
        Value::Array(_) => serde_json::from_value(v.clone()).ok(),
        _ => None,
    }
}

/// One episode: its own interpreter, opened by `reset`.
pub struct PyEnv {
    plugin: Arc<PyPlugin>,
    session: Option<Session>,
}

impl PyEnv {
    fn fail(&self, function: &str, problem: Problem) -> EnvError {
        EnvError::failed(self.plugin.error(function, problem).to_string())
    }
}

impl Environment for PyEnv {
    fn reset(&mut self, task: &Task, seed: u64) -> Result<Vec<Message>, EnvError> {
        self.session = None;
        let failed = |e: PluginError| EnvError::failed(e.to_string());
        let (mut session, _) = self.plugin.open(seed).map_err(failed)?;
        let value = self.plugin.call(&mut session, "reset", &json!([task.data, seed])).map_err(failed)?;
        self.session = Some(session);
        match messages(&value) {
            Some(m) if !m.is_empty() => Ok(m),
            _ => Err(self.fail(
                "reset",
                Problem::WrongType(format!(
                    "{}; expected a non-empty str (the prompt) or a list of {{\"role\", \"content\"}} dicts",
                    short(&value)
                )),
            )),
        }
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        let session = self.session.as_mut().ok_or(EnvError::NotReset)?;
        let value =
            self.plugin.call(session, "step", &json!([action.text])).map_err(|e| EnvError::failed(e.to_string()))?;
        let expected = "expected a dict {\"observation\": str | list[dict] | None, \"done\": bool}";
        let wrong = |what: String| self.fail("step", Problem::WrongType(format!("{what}; {expected}")));
        let Value::Object(map) = &value else {
            return Err(wrong(short(&value)));
        };
        let Some(done) = map.get("done").and_then(Value::as_bool) else {
            return Err(wrong(format!("{} (`done` must be a bool)", short(&value))));
        };
        let truncated = match map.get("truncated") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(wrong(format!("{} (`truncated` must be a bool)", short(&value)))),
        };
        let observation = messages(map.get("observation").unwrap_or(&Value::Null))
            .ok_or_else(|| wrong(format!("{} (bad `observation`)", short(&value))))?;
        let status = match (done, truncated) {
            (_, true) => Status::Truncated,
            (true, false) => Status::Terminated,
            (false, false) => Status::Running,
        };
        Ok(Step { observation, status, info: map.get("info").cloned().unwrap_or(Value::Null) })
    }
}

/// The transcript as the plugin sees it: `[{"role", "content"[, "name"]}, ...]`.
fn transcript(messages: &[Message]) -> Value {
    serde_json::to_value(messages).unwrap_or(Value::Null)
}

/// Builds the spec: loads the file, checks it defines `tasks`, `reset` and `step`, and asks it
/// for both splits' tasks.
pub fn spec(config: &Config, seed: u64) -> Result<EnvSpec, BoxError> {
    let cfg: PyEnvConfig = parse_config(config)?;
    let plugin = Arc::new(PyPlugin::load(&cfg.path, cfg.limits.clone())?.with_debug(cfg.debug));
    let missing: Vec<_> = ["tasks", "reset", "step"].into_iter().filter(|f| !plugin.defines(f)).collect();
    if !missing.is_empty() {
        let list = missing.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
        return Err(format!(
            "{} defines no {list}; an environment file needs tasks(split, seed, n), reset(task, seed) and step(action)",
            plugin.file()
        )
        .into());
    }
    let train = plugin.tasks(Split::Train, seed, cfg.train_size)?;
    let test = plugin.tasks(Split::Test, seed, cfg.test_size)?;
    let mut reward_config = Config::new();
    reward_config.insert("path".into(), toml::Value::String(cfg.path.display().to_string()));
    reward_config.insert("limits".into(), toml::Value::try_from(&cfg.limits)?);
    let make = {
        let plugin = plugin.clone();
        move || Ok(PyEnv { plugin: plugin.clone(), session: None })
    };
    // Each live episode holds one interpreter of the pool.
    let mut spec = EnvSpec::new(Arc::new(VecTasks { train, test }), make, REWARD_ID)
        .with_reward_config(reward_config)
        .with_max_live_episodes(POOL_SIZE as usize);
    if plugin.defines("gold") {
        spec = spec.with_gold(move |task: &Task, messages: &[Message]| {
            match plugin.call_warm("gold", &json!([task.data, transcript(messages)]))? {
                Value::String(s) => Ok(s),
                other => {
                    Err(plugin.error("gold", Problem::WrongType(format!("{}; expected a str", short(&other)))).into())
                }
            }
        });
    }
    Ok(spec)
}

/// A float, a bool, or a dict with a float `"reward"` (the rest is kept as diagnostics).
fn to_reward(plugin: &PyPlugin, value: Value) -> Result<Reward, RewardError> {
    match super::reward_value(&value) {
        Some((x, info)) => Ok(Reward::with_info(x, info)),
        None => Err(RewardError::new(
            plugin
                .error(
                    "reward",
                    Problem::WrongType(format!(
                        "{}; expected a finite number or {{\"reward\": number}}",
                        short(&value)
                    )),
                )
                .to_string(),
        )),
    }
}

/// Builds `python/env-reward`: one term, `reward` (weight 1), the file's `reward(task,
/// transcript)`. A file without that function is a config error that says what to do.
pub fn rubric(config: &Config) -> Result<Rubric, BoxError> {
    let cfg: PyRewardConfig = parse_config(config)?;
    let plugin = PyPlugin::load(&cfg.path, cfg.limits)?;
    if !plugin.defines("reward") {
        return Err(format!(
            "{} defines no `reward(task, transcript)`: define it, or name a reward in the experiment's [reward] section",
            plugin.file()
        )
        .into());
    }
    Ok(Rubric::new().term("reward", 1.0, move |task: &Task, tr: &Trajectory| {
        let value = plugin
            .call_warm("reward", &json!([task.data, transcript(&tr.messages)]))
            .map_err(|e| RewardError::new(e.to_string()))?;
        to_reward(&plugin, value)
    }))
}

/// Registers `python/env-v0` and its reward `python/env-reward`.
pub fn register(registry: &mut Registry) {
    registry.env(ID, "an environment written in Python (tasks, reset, step), run in the wasmtime sandbox", spec);
    registry.reward(REWARD_ID, "a Python environment file's own `reward(task, transcript)`", rubric);
}
