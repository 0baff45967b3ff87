//! `python/env-v0`: environments written in Python, run in the sandbox, treated like Rust ones
//! by the registry, the runner, the conformance checks and `rlvr run`.

use crate::rlvr;
use rlvr::engine::testing::{Checks, assert_conformance};
use rlvr::engine::*;
use rlvr::policies::scripted::{Scripted, ScriptedConfig};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

/// The example Python environment.
fn example() -> String {
    crate::repo("examples/python-env/letters.py")
}

/// The experiment that runs the example environment.
fn example_toml() -> String {
    crate::repo("examples/python-env/letters.toml")
}

fn config(path: &str, extra: &str) -> Config {
    toml::from_str(&format!("path = {path:?}\n{extra}")).unwrap()
}

#[test]
fn python_env_example_passes_conformance() {
    let registry = rlvr::builtin_registry();
    let spec = registry.make_env("python/env-v0", &config(&example(), ""), 0).unwrap();
    assert_eq!(spec.default_reward, "python/env-reward");
    assert_eq!((spec.tasks.len(Split::Train), spec.tasks.len(Split::Test)), (Some(28), Some(7)));
    let rubric = registry.make_reward(&spec.default_reward, &spec.default_reward_config).unwrap();
    assert_conformance(&spec, &rubric, &Checks { tasks: 7, max_turns: 3, seed: 7 });
}

/// Every episode has its own interpreter: two interleaved episodes keep their own state, and a
/// wrong answer gets the second try the file's state allows.
#[test]
fn python_env_keeps_state_per_episode() {
    let registry = rlvr::builtin_registry();
    let spec = registry.make_env("python/env-v0", &config(&example(), ""), 0).unwrap();
    let (a, b) = (spec.tasks.task(Split::Train, 0).unwrap(), spec.tasks.task(Split::Train, 1).unwrap());
    assert_ne!(a.data["count"], b.data["count"], "the test needs two tasks with different answers");
    assert_eq!(a.id, "train-0");
    let (mut ea, mut eb) = ((spec.make)().unwrap(), (spec.make)().unwrap());
    let prompt = ea.reset(&a, 1).unwrap();
    assert!(prompt[0].content.contains(a.data["word"].as_str().unwrap()), "{prompt:?}");
    eb.reset(&b, 2).unwrap();
    let s = ea.step(&Action::text("many")).unwrap();
    assert_eq!((s.status, s.observation[0].content.as_str()), (Status::Running, "No, try again."));
    assert_eq!(s.info, json!({"tries": 1}));
    let s = eb.step(&Action::text(b.data["count"].to_string())).unwrap();
    assert_eq!((s.status, s.observation.len(), s.info["tries"].as_u64()), (Status::Terminated, 0, Some(1)));
    let s = ea.step(&Action::text(a.data["count"].to_string())).unwrap();
    assert_eq!((s.status, s.info["tries"].as_u64()), (Status::Terminated, Some(2)));
    // An action is data, never code.
    ea.reset(&a, 1).unwrap();
    let s = ea.step(&Action::text("\"); import os; os._exit(0); print(\"")).unwrap();
    assert_eq!(s.status, Status::Running);
}

#[test]
fn python_env_example_runs_end_to_end_with_rlvr_run() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::copy(example_toml(), d.join("letters.toml")).unwrap();
    let path = format!("env.config.path={:?}", example());
    let (code, out, err) = rlvr(&["run", "letters.toml", "--set", &path], d);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("3 iterations run") && out.contains("eval/accuracy=1.0000"), "{out}");
    let db = rusqlite::Connection::open(d.join("runs/python-letters/run.db")).unwrap();
    let failed: f64 =
        db.query_row("SELECT SUM(value) FROM metrics WHERE name = 'rollout/failed'", [], |r| r.get(0)).unwrap();
    assert_eq!(failed, 0.0);
    let retried: i64 = db
        .query_row("SELECT COUNT(*) FROM samples WHERE trajectory LIKE '%No, try again.%'", [], |r| r.get(0))
        .unwrap();
    assert!(retried > 0, "wrong answers got a second turn");
}

#[test]
fn python_env_tutorial_shows_the_example_verbatim() {
    let doc = include_str!("../../docs/plugins.md");
    assert!(doc.contains(include_str!("../../examples/python-env/letters.py")), "docs/plugins.md must show letters.py");
    assert!(
        doc.contains(include_str!("../../examples/python-env/letters.toml")),
        "docs/plugins.md must show letters.toml"
    );
}

/// A plugin whose `step` misbehaves in every way the task asks for.
const BAD: &str = r#"import os

def tasks(split, seed, n):
    modes = ["ok", "raise", "loop", "print", "wrongtype", "badreset", "missing", "exit"]
    return [{"id": m, "mode": m} for m in modes][:n]

def reset(task, seed):
    global mode
    mode = task["mode"]
    if mode == "badreset":
        return 42
    if mode == "missing":
        del globals()["step"]
    return "go"

def step(action):
    print("a little noise is fine")
    if mode == "raise":
        raise ValueError("the plugin broke")
    if mode == "loop":
        while True:
            pass
    if mode == "print":
        print("x" * 5_000_000)
    if mode == "wrongtype":
        return "done"
    if mode == "exit":
        os._exit(3)
    return {"observation": None, "done": True}

def reward(task, transcript):
    return 1.0

def gold(task):
    return "answer"
"#;

const LIMITS: &str = "[limits]\nfuel = 300_000_000";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// Each failure in the plugin fails its own rollout, with an error naming the file and the
/// function; the other rollouts of the batch finish and are scored.
#[test]
fn python_env_plugin_failures_fail_their_rollout_and_name_file_and_function() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), "bad_env.py", BAD);
    let registry = rlvr::builtin_registry();
    let spec = registry.make_env("python/env-v0", &config(&file, LIMITS), 0).unwrap();
    let rubric = Arc::new(registry.make_reward(&spec.default_reward, &spec.default_reward_config).unwrap());
    let mut policy =
        Scripted::new(ScriptedConfig { accuracy: 1.0, ..Default::default() }, spec.gold.clone().unwrap()).unwrap();
    let tasks: Vec<(u64, Task)> = (0..8).map(|i| (i, spec.tasks.task(Split::Train, i).unwrap())).collect();
    let cfg = RolloutConfig { group_size: 1, max_turns: 2, max_tokens: 4096, max_new_tokens: 64 };
    let r =
        Runner::new(2).rollout(&mut policy, &spec, &rubric, tasks, &cfg, Sampling { seed: 1, greedy: true }).unwrap();
    assert_eq!((r.stats.episodes, r.stats.failed), (8, 7), "{:#?}", r.groups);
    let outcome = |id: &str| &r.groups.iter().find(|g| g.task.id == id).unwrap().samples[0].outcome;
    let Outcome::Scored(ok) = outcome("ok") else { panic!("{:?}", outcome("ok")) };
    assert_eq!(ok.total(), Some(1.0));
    let expect = [
        ("raise", Stage::Step, "`step` raised an exception:\nTraceback"),
        ("raise", Stage::Step, "ValueError: the plugin broke"),
        ("raise", Stage::Step, "line 19, in step"),
        ("loop", Stage::Step, "`step` was stopped by the fuel limit (limits.fuel = 300000000)"),
        ("print", Stage::Step, "`step` printed or returned more than 65536 bytes"),
        ("wrongtype", Stage::Step, "`step` returned \"done\"; expected a dict"),
        ("badreset", Stage::Reset, "`reset` returned 42; expected a non-empty str"),
        ("missing", Stage::Step, "`step` is not defined in the file"),
        ("exit", Stage::Step, "`step` failed in the sandbox: it ended the interpreter (exit code 3)"),
    ];
    for (id, want_stage, text) in expect {
        match outcome(id) {
            Outcome::Failed { stage, error } => {
                assert_eq!(*stage, want_stage, "{id}: {error}");
                assert!(error.starts_with(&format!("{file}: ")), "{id}: the error names the file: {error}");
                assert!(error.contains(text), "{id}: expected `{text}` in:\n{error}");
            }
            other => panic!("{id}: expected a failed rollout, got {other:?}"),
        }
    }
}

/// A file that cannot serve as an environment is a config error before the run starts, naming
/// the file and the function; a reward that fails is a verifier error, never a zero.
#[test]
fn python_env_bad_files_are_config_errors_naming_file_and_function() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = rlvr::builtin_registry();
    let build = |name: &str, src: &str| {
        let file = write(tmp.path(), name, src);
        (registry.make_env("python/env-v0", &config(&file, LIMITS), 0).map(|_| ()).map_err(|e| e.to_string()), file)
    };
    let (e, file) = build("no_step.py", "def tasks(s, seed, n): return []\ndef reset(t, s): return 'x'\n");
    let e = e.unwrap_err();
    assert!(e.contains(&format!("{file} defines no `step`")), "{e}");
    let (e, file) = build("bad_tasks.py", &BAD.replace("modes = [", "modes = 1 / 0; ["));
    let e = e.unwrap_err();
    assert!(e.contains(&format!("{file}: `tasks` raised")) && e.contains("ZeroDivisionError"), "{e}");
    let (e, file) = build("tasks_type.py", &BAD.replace("return [{\"id\": m", "return {\"id\": 1} or [{\"id\": m"));
    let e = e.unwrap_err();
    assert!(e.contains(&format!("{file}: `tasks` returned {{\"id\":1}}; expected a list of dicts")), "{e}");
    let (e, file) = build("tasks_loop.py", &BAD.replace("    modes = [", "    while True: pass\n    modes = ["));
    let e = e.unwrap_err();
    assert!(e.contains(&format!("{file}: `tasks` was stopped by the fuel limit")), "{e}");
    let (e, file) = build("syntax.py", "def tasks(:\n");
    let e = e.unwrap_err();
    assert!(e.contains(&file) && e.contains("SyntaxError") && e.contains("line 1"), "{e}");
    let (e, _) = build("missing.py", "");
    assert!(e.is_err());
    assert!(registry.make_env("python/env-v0", &config("/nonexistent/env.py", ""), 0).is_err());

    // No `reward`: the default reward says what to do.
    let no_reward = write(tmp.path(), "no_reward.py", &BAD.replace("def reward(", "def _reward("));
    let spec = registry.make_env("python/env-v0", &config(&no_reward, ""), 0).unwrap();
    let e = registry.make_reward(&spec.default_reward, &spec.default_reward_config).err().unwrap().to_string();
    assert!(e.contains(&format!("{no_reward} defines no `reward(task, transcript)`")) && e.contains("[reward]"), "{e}");

    // A reward that raises or returns a non-number is a verifier error naming file and function.
    let raising = write(
        tmp.path(),
        "raising.py",
        &BAD.replace("return 1.0", "return {'bad': 1} if task['mode'] == 'ok' else 1 / 0"),
    );
    let rubric = registry.make_reward("python/env-reward", &config(&raising, "")).unwrap();
    let score = |mode: &str| {
        rubric.score(&Task::new("t", json!({ "mode": mode })), &Trajectory::from_completion(vec![], "answer"))
    };
    let e = score("raise");
    assert_eq!(e.total(), None);
    let msg = e.error().unwrap_or_default();
    assert!(msg.contains(&format!("{raising}: `reward` raised")) && msg.contains("ZeroDivisionError"), "{msg}");
    let msg = score("ok").error().unwrap_or_default();
    assert!(msg.contains("`reward` returned {\"bad\":1}; expected a finite number"), "{msg}");
}

/// Through the CLI: a plugin that fails some rollouts does not stop the run; each failure is
/// stored with its error and counted in `rollout/failed`. A plugin without `step` is exit 2.
#[test]
fn python_env_bad_plugin_run_goes_on_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let file = write(d, "bad_env.py", BAD);
    let exp = format!(
        "[run]\nname = \"bad\"\niterations = 2\ntasks_per_iteration = 8\neval_every = 0\n\
         [env]\nid = \"python/env-v0\"\n[env.config]\npath = {file:?}\n[env.config.limits]\nfuel = 300_000_000\n\
         [rollout]\ngroup_size = 1\nmax_turns = 2\n[policy]\nid = \"scripted/gold-v0\"\n[policy.config]\naccuracy = 1.0\n"
    );
    std::fs::write(d.join("bad.toml"), &exp).unwrap();
    let (code, out, err) = rlvr(&["run", "bad.toml"], d);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 iterations run"), "{out}");
    let db = rusqlite::Connection::open(d.join("runs/bad/run.db")).unwrap();
    let failed: f64 =
        db.query_row("SELECT SUM(value) FROM metrics WHERE name = 'rollout/failed'", [], |r| r.get(0)).unwrap();
    assert_eq!(failed, 14.0, "7 of 8 rollouts fail in each iteration");
    let failures: Vec<String> = db
        .prepare("SELECT failure FROM samples WHERE task_id = 'raise'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!failures.is_empty());
    for f in failures {
        assert!(f.contains(&format!("{file}: `step` raised")) && f.contains("ValueError"), "{f}");
    }
    // More live episodes than the interpreter pool holds: refused before anything is written.
    let (code, _, err) = rlvr(
        &[
            "run",
            "bad.toml",
            "--out",
            "runs/big",
            "--set",
            "run.tasks_per_iteration=257",
            "--set",
            "rollout.group_size=4",
        ],
        d,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("1028 episodes would be live at once") && err.contains("1024"), "{err}");
    assert!(!d.join("runs/big").exists());
    // With `debug`, what the plugin prints reaches stderr, named by file and function.
    let (code, out, err) = rlvr(&["run", "bad.toml", "--out", "runs/debug", "--set", "env.config.debug=true"], d);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains(&format!("[{file} step] a little noise is fine")), "{}", &err[..err.len().min(2000)]);
    assert!(!out.contains("a little noise"), "plugin prints never reach stdout");

    std::fs::write(d.join("no_step.py"), "def tasks(s, seed, n): return []\n").unwrap();
    let exp = exp.replace(&format!("{file:?}"), "\"no_step.py\"").replace("\"bad\"", "\"nostep\"");
    std::fs::write(d.join("nostep.toml"), exp).unwrap();
    let (code, _, err) = rlvr(&["run", "nostep.toml"], d);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no_step.py defines no `reset`, `step`"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn python_env_values_round_trip() {
    // Messages lists, truncation and info pass through as the protocol says.
    let tmp = tempfile::tempdir().unwrap();
    let src = "def tasks(split, seed, n):\n    return [{'q': '\\u00e9\"\\n'}] * n\n\
               def reset(task):\n    return [{'role': 'system', 'content': 's'}, {'role': 'user', 'content': task['q']}]\n\
               def step(action):\n    return {'observation': [{'role': 'tool', 'content': action, 'name': 'echo'}], 'done': False, 'truncated': True, 'info': [1, None]}\n";
    // Named like a standard module that the file itself imports: it must not shadow it.
    let src = format!("import random\nassert random.Random(1).random() < 1\n{src}");
    let file = write(tmp.path(), "random.py", &src);
    let spec =
        rlvr::builtin_registry().make_env("python/env-v0", &config(&file, "train_size = 3\ntest_size = 0"), 0).unwrap();
    assert_eq!((spec.tasks.len(Split::Train), spec.tasks.len(Split::Test)), (Some(3), Some(0)));
    assert!(spec.gold.is_none());
    let task = spec.tasks.task(Split::Train, 2).unwrap();
    assert_eq!((task.id.as_str(), &task.data), ("train-2", &json!({"q": "é\"\n"})));
    let mut env = (spec.make)().unwrap();
    let m = env.reset(&task, 0).unwrap();
    assert_eq!(m, vec![Message::system("s"), Message::user("é\"\n")]);
    let s = env.step(&Action::text("'''\\")).unwrap();
    assert_eq!(s.observation, vec![Message::tool("echo", "'''\\")]);
    assert_eq!((s.status, s.info), (Status::Truncated, Value::from(vec![json!(1), Value::Null])));
}

/// `random` comes imported in the interpreter's snapshot, and is still seeded per episode: the
/// same seed draws the same numbers, another seed others (a snapshot taken with the module's
/// state would give every episode the same draws).
#[test]
fn python_env_random_follows_the_episode_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let src = "import random\nimport random as r2\ndef tasks(split, seed, n):\n    return [{}] * n\n\
               def reset(task):\n    return str([random.random(), r2.getrandbits(64)])\n\
               def step(action):\n    return {'observation': None, 'done': True}\n";
    let file = write(tmp.path(), "draws.py", src);
    let spec =
        rlvr::builtin_registry().make_env("python/env-v0", &config(&file, "train_size = 1\ntest_size = 0"), 0).unwrap();
    let task = spec.tasks.task(Split::Train, 0).unwrap();
    let draw = |seed| (spec.make)().unwrap().reset(&task, seed).unwrap()[0].content.clone();
    let (a, a2, b) = (draw(1), draw(1), draw(2));
    assert_eq!(a, a2);
    assert_ne!(a, b);
}

/// The documented maximum, 1,024 live episodes (64 tasks x 16 samples, a GRPO iteration's
/// shape), runs: every episode holds its own interpreter at once (about 6 GB in all).
#[test]
fn python_env_holds_the_documented_maximum_of_live_episodes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::copy(example_toml(), d.join("letters.toml")).unwrap();
    let path = format!("env.config.path={:?}", example());
    let max = rlvr::envs::code::plugin::POOL_SIZE;
    assert_eq!(max, 64 * 16);
    let args = [
        "run",
        "letters.toml",
        "--set",
        &path,
        "--set",
        "run.iterations=1",
        "--set",
        "run.tasks_per_iteration=64",
        "--set",
        "rollout.group_size=16",
        "--set",
        "run.eval_every=0",
    ];
    let (code, out, err) = rlvr(&args, d);
    assert_eq!(code, 0, "{out}{err}");
    let db = rusqlite::Connection::open(d.join("runs/python-letters/run.db")).unwrap();
    let (samples, failed): (i64, f64) = db
        .query_row(
            "SELECT (SELECT COUNT(*) FROM samples), (SELECT SUM(value) FROM metrics WHERE name = 'rollout/failed')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((samples, failed), (1024, 0.0));
}
