//! The `rlvr` Python package's native module, `rlvr._native`.
//!
//! It wraps the registry the CLI uses, so every built-in and Python-file environment and reward
//! is reachable by id with the same config as the experiment file's `config` table (a dict
//! here). Scoring many completions runs on Rust threads with the GIL released; every entry
//! point turns a Rust panic into `rlvr.Error` rather than letting it cross into the
//! interpreter. The pure-Python layer (`rlvr/__init__.py`) adds the trainer adapters (TRL, verl)
//! on top of these classes.

mod batch;
mod convert;

use convert::{config_from, config_to_py, messages_from, messages_to_py, scored_to_py, task_from, to_json, to_py};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};
use rlvr::engine::{
    Action, Config, EnvError, EnvFactory, Environment, Kind, Registry, Rubric, Scored, Split, Status, Task, TaskSource,
    Trajectory,
};
use rlvr::envs::code::{Limits, Sandbox as RustSandbox, Session as RustSession};
use serde_json::Value;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, OnceLock};

create_exception!(rlvr, Error, PyException, "Base class of every error rlvr raises.");
create_exception!(rlvr, ConfigError, Error, "An unknown plugin id, or a config its plugin refuses.");
create_exception!(rlvr, TaskError, Error, "A task or completion that lacks what its environment or reward needs.");
create_exception!(
    rlvr,
    SandboxError,
    Error,
    "The code sandbox could not start or run (never the guest program's own failure, which is data)."
);

/// The registry every call uses: the built-in plugins, built once per process.
fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(rlvr::builtin_registry)
}

/// Runs `f`, turning a Rust panic into `rlvr.Error`: a bug of ours must surface as an exception
/// the caller can catch, never abort the interpreter or pass for a result.
fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(Error::new_err(format!(
            "internal error in rlvr (please report it): {}",
            rlvr::engine::reward::panic_message(&*payload)
        ))),
    }
}

fn config_error(e: impl std::fmt::Display) -> PyErr {
    ConfigError::new_err(e.to_string())
}

fn env_error(e: EnvError) -> PyErr {
    match e {
        EnvError::InvalidTask(msg) => TaskError::new_err(format!("invalid task: {msg}")),
        other => Error::new_err(other.to_string()),
    }
}

fn split_from(split: &str) -> PyResult<Split> {
    match split {
        "train" => Ok(Split::Train),
        "test" => Ok(Split::Test),
        other => Err(ConfigError::new_err(format!("split must be \"train\" or \"test\", not {other:?}"))),
    }
}

/// The plugins of one kind: id, one-line description, config keys at their defaults.
fn listing(py: Python<'_>, kind: Kind) -> PyResult<Py<PyList>> {
    let reg = registry();
    let out = PyList::empty(py);
    for (k, id, description) in reg.list() {
        if k != kind {
            continue;
        }
        let row = PyDict::new(py);
        row.set_item("id", id)?;
        row.set_item("description", description)?;
        match reg.config_defaults(kind, id) {
            Some(defaults) => row.set_item("config", config_to_py(py, defaults)?)?,
            None => row.set_item("config", py.None())?,
        }
        out.append(row)?;
    }
    Ok(out.unbind())
}

/// Every environment: `[{"id", "description", "config"}]`, where `config` holds the keys the
/// environment takes at their defaults (`None` when it records none; see its docs page).
#[pyfunction]
fn envs(py: Python<'_>) -> PyResult<Py<PyList>> {
    guard(|| listing(py, Kind::Env))
}

/// Every reward, as `envs()` lists environments.
#[pyfunction]
fn rewards(py: Python<'_>) -> PyResult<Py<PyList>> {
    guard(|| listing(py, Kind::Reward))
}

/// The key that carries a task's exact data through a dataset (whose columns may reshape
/// nested values), as a JSON string.
const TASK_KEY: &str = "rlvr_task";

/// `n` tasks of an environment as dataset rows: `prompt` (the chat messages the environment
/// opens the episode with), the task's own fields, `task_id`, and `rlvr_task` (the task as JSON,
/// which the rewards read back exactly whatever a dataset library did to the columns).
#[pyfunction]
#[pyo3(signature = (env_id, split = "train", n = None, seed = 0, config = None))]
fn tasks(
    py: Python<'_>,
    env_id: &str,
    split: &str,
    n: Option<u64>,
    seed: u64,
    config: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyList>> {
    guard(|| {
        let split = split_from(split)?;
        let config = config_from(config)?;
        let rows: Vec<(Task, Vec<rlvr::engine::Message>)> = py.detach(|| -> PyResult<_> {
            let spec = registry().make_env(env_id, &config, seed).map_err(config_error)?;
            let n = match (n, spec.tasks.len(split)) {
                (Some(n), Some(len)) if n > len => {
                    return Err(ConfigError::new_err(format!(
                        "the {split:?} split of {env_id} has {len} tasks, asked for {n}"
                    )));
                }
                (Some(n), _) => n,
                (None, Some(len)) => len,
                (None, None) => {
                    return Err(ConfigError::new_err(format!("{env_id} generates tasks without end: pass n")));
                }
            };
            let mut env = (spec.make)().map_err(|e| Error::new_err(format!("{env_id}: {e}")))?;
            let mut rows = Vec::with_capacity(n as usize);
            for i in 0..n {
                let task = spec.tasks.task(split, i).map_err(|e| TaskError::new_err(format!("task {i}: {e}")))?;
                let prompt = env.reset(&task, seed).map_err(env_error)?;
                rows.push((task, prompt));
            }
            Ok(rows)
        })?;
        let out = PyList::empty(py);
        for (task, prompt) in rows {
            let row = match to_py(py, &task.data)?.cast_into::<PyDict>() {
                Ok(d) => d,
                Err(e) => {
                    let d = PyDict::new(py);
                    d.set_item("task", e.into_inner())?;
                    d
                }
            };
            row.set_item("prompt", messages_to_py(py, &prompt)?)?;
            row.set_item("task_id", &task.id)?;
            row.set_item(TASK_KEY, serde_json::to_string(&task.data).map_err(|e| Error::new_err(e.to_string()))?)?;
            out.append(row)?;
        }
        Ok(out.unbind())
    })
}

/// A completion as a trajectory: a string is one assistant message; a list of messages (a
/// conversational completion) is taken as it is.
fn trajectory_from(completion: &Bound<'_, PyAny>) -> PyResult<Trajectory> {
    if let Ok(text) = completion.extract::<&str>() {
        return Ok(Trajectory::from_completion(Vec::new(), text));
    }
    let messages = messages_from(completion)
        .map_err(|e| TaskError::new_err(format!("a completion is a string or a list of messages: {e}")))?;
    let turns = messages.iter().filter(|m| m.role == rlvr::engine::Role::Assistant).count().max(1);
    Ok(Trajectory { messages, status: Status::Terminated, steps: vec![Value::Null; turns], ..Trajectory::default() })
}

/// A reward: one of the registry's rubrics, scoring `(task, completion)` pairs.
///
/// `score` and `score_batch` return what `rlvr score` writes per line: `reward` (`None` when a
/// weighted term failed: a verifier error, never a silent 0), `terms`, `error` and `details`.
#[pyclass(module = "rlvr._native", subclass, frozen)]
struct Reward {
    id: String,
    config: Config,
    rubric: Arc<Rubric>,
}

#[pymethods]
impl Reward {
    #[new]
    #[pyo3(signature = (reward_id, config = None))]
    fn new(py: Python<'_>, reward_id: &str, config: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        guard(|| {
            let config = config_from(config)?;
            let rubric = py.detach(|| registry().make_reward(reward_id, &config)).map_err(config_error)?;
            Ok(Self { id: reward_id.to_string(), config, rubric: Arc::new(rubric) })
        })
    }

    /// The reward's registry id.
    #[getter]
    fn id(&self) -> &str {
        &self.id
    }

    /// The config it was built with (a copy).
    #[getter]
    fn config(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        config_to_py(py, &self.config)
    }

    /// The names of its terms, in order.
    #[getter]
    fn terms(&self) -> Vec<String> {
        self.rubric.terms().iter().map(|t| t.name.clone()).collect()
    }

    /// Scores one completion of `task`.
    fn score(&self, py: Python<'_>, task: &Bound<'_, PyAny>, completion: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        guard(|| {
            let task = task_from(task)?;
            let trajectory = trajectory_from(completion)?;
            let rubric = &self.rubric;
            let scored = py.detach(|| rubric.score(&task, &trajectory));
            Ok(scored_to_py(py, &scored)?.into_any().unbind())
        })
    }

    /// Scores `completions[i]` of `tasks[i]` for every i, on `workers` scoring threads (default:
    /// every core; 1: the calling thread alone) that run without the GIL while the calling
    /// thread reads rows and writes results; results in input order.
    #[pyo3(signature = (tasks, completions, workers = None))]
    fn score_batch(
        &self,
        py: Python<'_>,
        tasks: &Bound<'_, PyAny>,
        completions: &Bound<'_, PyAny>,
        workers: Option<usize>,
    ) -> PyResult<Py<PyList>> {
        guard(|| {
            let tasks: Vec<Bound<'_, PyAny>> = tasks.try_iter()?.collect::<PyResult<_>>()?;
            let completions: Vec<Bound<'_, PyAny>> = completions.try_iter()?.collect::<PyResult<_>>()?;
            if tasks.len() != completions.len() {
                return Err(TaskError::new_err(format!(
                    "{} tasks but {} completions: score_batch pairs them one to one",
                    tasks.len(),
                    completions.len()
                )));
            }
            let workers = workers.unwrap_or_else(rlvr::engine::pool::available_cores).max(1);
            Ok(batch::score_batch(py, &self.rubric, &tasks, &completions, workers)?.unbind())
        })
    }

    /// Pickles as its id and config (Ray and TRL's async trainer pickle reward functions).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> Reduced<'py, (String, Py<PyAny>)> {
        let me = slf.get();
        Ok((slf.get_type(), (me.id.clone(), config_to_py(slf.py(), &me.config)?)))
    }

    fn __repr__(&self) -> String {
        format!("Reward({:?})", self.id)
    }
}

/// What `__reduce__` returns: the class, and the arguments that rebuild the object.
type Reduced<'py, A> = PyResult<(Bound<'py, PyType>, A)>;

/// One episode's state.
#[derive(Default)]
struct Episode {
    env: Option<Box<dyn Environment>>,
    task: Option<Task>,
    trajectory: Trajectory,
    drawn: u64,
}

/// A text environment, shaped as Gymnasium's: `reset` opens an episode, `step` applies the
/// policy's message, `score` judges the trajectory so far with the environment's own rubric.
#[pyclass(module = "rlvr._native", subclass, frozen)]
struct Env {
    id: String,
    config: Config,
    seed: u64,
    tasks: Arc<dyn TaskSource>,
    make: EnvFactory,
    rubric: Arc<Rubric>,
    reward_id: String,
    episode: Mutex<Episode>,
}

impl Env {
    fn episode(&self) -> std::sync::MutexGuard<'_, Episode> {
        // A panic inside a step is turned into an error by `guard`; the episode's state is then
        // whatever the step left, which the next `reset` replaces.
        self.episode.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[pymethods]
impl Env {
    #[new]
    #[pyo3(signature = (env_id, config = None, seed = 0))]
    fn new(py: Python<'_>, env_id: &str, config: Option<&Bound<'_, PyAny>>, seed: u64) -> PyResult<Self> {
        guard(|| {
            let config = config_from(config)?;
            let spec = py.detach(|| registry().make_env(env_id, &config, seed)).map_err(config_error)?;
            let rubric = registry()
                .make_reward(&spec.default_reward, &spec.default_reward_config)
                .map_err(|e| ConfigError::new_err(format!("{env_id}'s reward {}: {e}", spec.default_reward)))?;
            Ok(Self {
                id: env_id.to_string(),
                config,
                seed,
                tasks: spec.tasks,
                make: spec.make,
                rubric: Arc::new(rubric),
                reward_id: spec.default_reward,
                episode: Mutex::new(Episode::default()),
            })
        })
    }

    /// The environment's registry id.
    #[getter]
    fn id(&self) -> &str {
        &self.id
    }

    /// The config it was built with (a copy).
    #[getter]
    fn config(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        config_to_py(py, &self.config)
    }

    /// The seed tasks and episodes derive from.
    #[getter]
    fn seed(&self) -> u64 {
        self.seed
    }

    /// The id of the reward `score` uses.
    #[getter]
    fn reward_id(&self) -> &str {
        &self.reward_id
    }

    /// The conversation so far, opening messages first.
    #[getter]
    fn messages(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(messages_to_py(py, &self.episode().trajectory.messages)?.unbind())
    }

    /// Opens an episode on `task` (a dict of task fields, or a row of `rlvr.tasks`), or on the
    /// next training task when `task` is None. Returns `(messages, info)`; `info` holds the
    /// `task_id` and the `task`.
    #[pyo3(signature = (task = None, seed = None))]
    fn reset<'py>(
        &self,
        py: Python<'py>,
        task: Option<&Bound<'py, PyAny>>,
        seed: Option<u64>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyDict>)> {
        guard(|| {
            let given = task.map(task_from).transpose()?;
            let seed = seed.unwrap_or(self.seed);
            let (messages, task) = py.detach(|| -> PyResult<_> {
                let mut ep = self.episode();
                let task = match given {
                    Some(t) => t,
                    None => {
                        let i = ep.drawn;
                        ep.drawn += 1;
                        self.tasks.task(Split::Train, i).map_err(|e| TaskError::new_err(format!("task {i}: {e}")))?
                    }
                };
                // One environment instance per episode, as in a run.
                let mut env = (self.make)().map_err(|e| Error::new_err(format!("{}: {e}", self.id)))?;
                let messages = env.reset(&task, seed).map_err(env_error)?;
                ep.env = Some(env);
                ep.trajectory = Trajectory { messages: messages.clone(), ..Trajectory::default() };
                ep.task = Some(task.clone());
                Ok((messages, task))
            })?;
            let info = PyDict::new(py);
            info.set_item("task_id", &task.id)?;
            info.set_item("task", to_py(py, &task.data)?)?;
            Ok((messages_to_py(py, &messages)?, info))
        })
    }

    /// Applies the policy's message. Returns `(observation, terminated, truncated, info)`:
    /// the environment's reply messages (possibly none), whether the episode ended by its own
    /// rules, whether it was cut, and the step's facts.
    fn step<'py>(&self, py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyTuple>> {
        guard(|| {
            let step = py.detach(|| -> PyResult<_> {
                let mut ep = self.episode();
                let Episode { env, trajectory, .. } = &mut *ep;
                let env = env.as_mut().ok_or_else(|| Error::new_err("step called before reset"))?;
                if trajectory.status.is_done() {
                    return Err(Error::new_err("step called after the episode ended; call reset"));
                }
                trajectory.messages.push(rlvr::engine::Message::assistant(text));
                let step = env.step(&Action::text(text)).map_err(env_error)?;
                trajectory.steps.push(step.info.clone());
                trajectory.messages.extend(step.observation.iter().cloned());
                trajectory.status = step.status;
                Ok(step)
            })?;
            let observation = messages_to_py(py, &step.observation)?;
            let info = to_py(py, &step.info)?;
            PyTuple::new(
                py,
                [
                    observation,
                    pyo3::types::PyBool::new(py, step.status == Status::Terminated).to_owned().into_any(),
                    pyo3::types::PyBool::new(py, step.status == Status::Truncated).to_owned().into_any(),
                    info,
                ],
            )
        })
    }

    /// Scores the trajectory so far with the environment's default reward (as a run would at
    /// the episode's end); same keys as `Reward.score`.
    fn score(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        guard(|| {
            let row = py.detach(|| -> PyResult<Scored> {
                let ep = self.episode();
                let task = ep.task.as_ref().ok_or_else(|| Error::new_err("score called before reset"))?;
                Ok(self.rubric.score(task, &ep.trajectory))
            })?;
            Ok(scored_to_py(py, &row)?.into_any().unbind())
        })
    }

    /// Pickles as its id, config and seed; an episode in progress is not carried.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> Reduced<'py, (String, Py<PyAny>, u64)> {
        let me = slf.get();
        Ok((slf.get_type(), (me.id.clone(), config_to_py(slf.py(), &me.config)?, me.seed)))
    }

    fn __repr__(&self) -> String {
        format!("Env({:?})", self.id)
    }
}

/// The code sandbox: CPython in wasmtime with fuel, a wall-clock deadline, a memory cap and
/// output caps. `run` returns what `rlvr sandbox run --json` prints: `stdout`, `stderr`,
/// `exit_code`, `limit` (the limit that stopped it, as data), `fuel_used`, `elapsed_ms`,
/// `truncated`.
#[pyclass(module = "rlvr._native", frozen)]
struct Sandbox {
    limits: Limits,
}

fn sandbox() -> PyResult<Arc<RustSandbox>> {
    RustSandbox::shared().map_err(|e| SandboxError::new_err(e.to_string()))
}

fn execution_to_py(py: Python<'_>, e: &rlvr::envs::code::Execution) -> PyResult<Py<PyAny>> {
    let value = serde_json::to_value(e).map_err(|e| Error::new_err(e.to_string()))?;
    Ok(to_py(py, &value)?.unbind())
}

#[pymethods]
impl Sandbox {
    #[new]
    #[pyo3(signature = (deadline_ms = None, fuel = None, memory_mb = None, output_bytes = None))]
    fn new(deadline_ms: Option<u64>, fuel: Option<u64>, memory_mb: Option<u64>, output_bytes: Option<usize>) -> Self {
        let d = Limits::default();
        Self {
            limits: Limits {
                deadline_ms: deadline_ms.unwrap_or(d.deadline_ms),
                fuel: fuel.unwrap_or(d.fuel),
                memory_mb: memory_mb.unwrap_or(d.memory_mb),
                output_bytes: output_bytes.unwrap_or(d.output_bytes),
                open_files: d.open_files,
            },
        }
    }

    /// The limits, as a dict.
    #[getter]
    fn limits<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("deadline_ms", self.limits.deadline_ms)?;
        d.set_item("fuel", self.limits.fuel)?;
        d.set_item("memory_mb", self.limits.memory_mb)?;
        d.set_item("output_bytes", self.limits.output_bytes)?;
        Ok(d)
    }

    /// Runs `code` in a fresh interpreter (the GIL is released meanwhile). The first call in a
    /// process loads the guest (fetched and compiled once per machine, then cached).
    fn run(&self, py: Python<'_>, code: &str) -> PyResult<Py<PyAny>> {
        guard(|| {
            let limits = &self.limits;
            let e = py.detach(|| -> PyResult<_> {
                sandbox()?.run(code, limits).map_err(|e| SandboxError::new_err(e.to_string()))
            })?;
            execution_to_py(py, &e)
        })
    }

    /// A live interpreter whose state carries across turns, as a notebook's; each turn has
    /// this sandbox's fuel, deadline and output caps.
    #[pyo3(signature = (seed = 0))]
    fn session(&self, py: Python<'_>, seed: u64) -> PyResult<SandboxSession> {
        guard(|| {
            let limits = self.limits.clone();
            let session = py.detach(|| -> PyResult<_> {
                RustSession::new(&*sandbox()?, &limits, &[], seed).map_err(|e| SandboxError::new_err(e.to_string()))
            })?;
            Ok(SandboxSession { limits, session: Mutex::new(session) })
        })
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> (Bound<'py, PyType>, (u64, u64, u64, usize)) {
        let l = &slf.get().limits;
        (slf.get_type(), (l.deadline_ms, l.fuel, l.memory_mb, l.output_bytes))
    }

    fn __repr__(&self) -> String {
        let l = &self.limits;
        format!(
            "Sandbox(deadline_ms={}, fuel={}, memory_mb={}, output_bytes={})",
            l.deadline_ms, l.fuel, l.memory_mb, l.output_bytes
        )
    }
}

/// A warm interpreter from `Sandbox.session()`. A turn stopped by a limit ends the session
/// (later turns report `trap = "session ended"`).
#[pyclass(module = "rlvr._native", frozen)]
struct SandboxSession {
    limits: Limits,
    session: Mutex<RustSession>,
}

#[pymethods]
impl SandboxSession {
    /// Runs `code` in the session's `__main__`; same keys as `Sandbox.run`.
    fn run(&self, py: Python<'_>, code: &str) -> PyResult<Py<PyAny>> {
        guard(|| {
            let e = py.detach(|| -> PyResult<_> {
                let mut s = self.session.lock().unwrap_or_else(|p| p.into_inner());
                s.turn(code, &self.limits).map_err(|e| SandboxError::new_err(e.to_string()))
            })?;
            execution_to_py(py, &e)
        })
    }

    /// Why the session ended, or None while it is live.
    #[getter]
    fn ended(&self) -> Option<String> {
        self.session.lock().unwrap_or_else(|p| p.into_inner()).ended().map(str::to_string)
    }
}

/// Parses `value` as JSON-shaped Python data and gives it back: a check that a value survives
/// the crossing (used by the tests).
#[pyfunction]
fn _roundtrip(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    guard(|| Ok(to_py(py, &to_json(value)?)?.unbind()))
}

/// Whether two values are the same JSON data, as `score_batch` decides when it reuses the
/// previous row's task (for the tests).
#[pyfunction]
fn _same_data(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<bool> {
    guard(|| convert::same_data(a, b))
}

/// Raises the error a Rust panic becomes (for the tests: a bug must surface as `rlvr.Error`).
#[pyfunction]
fn _panic() -> PyResult<()> {
    guard(|| panic!("a deliberate panic"))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("TaskError", py.get_type::<TaskError>())?;
    m.add("SandboxError", py.get_type::<SandboxError>())?;
    m.add_class::<Reward>()?;
    m.add_class::<Env>()?;
    m.add_class::<Sandbox>()?;
    m.add_class::<SandboxSession>()?;
    m.add_function(wrap_pyfunction!(envs, m)?)?;
    m.add_function(wrap_pyfunction!(rewards, m)?)?;
    m.add_function(wrap_pyfunction!(tasks, m)?)?;
    m.add_function(wrap_pyfunction!(_roundtrip, m)?)?;
    m.add_function(wrap_pyfunction!(_panic, m)?)?;
    m.add_function(wrap_pyfunction!(_same_data, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
