//! Whole runs: the store's contents, resume after a crash, and the CLI's contract.

use crate::rlvr;
use rlvr::engine::*;
use rlvr::experiment::{self, Experiment};
use rlvr::policies::scripted::{Scripted, ScriptedConfig};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const EXP: &str = r#"
[run]
name = "resume"
seed = 5
iterations = 8
tasks_per_iteration = 4
checkpoint_every = 3
eval_every = 4
eval_tasks = 8
[env]
id = "arith/arith-v0"
[rollout]
group_size = 3
[policy]
id = "test/learner-v0"
"#;

/// A policy whose accuracy grows with every `generate` call, and whose call count is its
/// checkpointed state: a resume that restores the wrong state, or redoes the wrong iterations,
/// changes the rewards.
struct Learner {
    calls: u64,
    gold: GoldPlayer,
    crash_at: Option<Arc<(AtomicBool, AtomicU64)>>,
}

impl Policy for Learner {
    fn encode(&self, messages: &[Message], first: bool) -> Result<Vec<u32>, PolicyError> {
        Ok(vec![0; messages.len() + usize::from(first)])
    }

    fn generate(&mut self, batch: &[GenRequest<'_>]) -> Result<Vec<Action>, PolicyError> {
        if let Some(c) = &self.crash_at
            && c.0.load(Ordering::SeqCst)
            && self.calls == c.1.load(Ordering::SeqCst)
        {
            return Err(PolicyError::msg("simulated crash"));
        }
        self.calls += 1;
        let acc = (0.1 * self.calls as f64).min(1.0);
        let mut inner =
            Scripted::new(ScriptedConfig { accuracy: acc, ..Default::default() }, self.gold.clone()).unwrap();
        inner.generate(batch)
    }

    fn save(&self, dir: &Path) -> Result<(), PolicyError> {
        std::fs::write(dir.join("calls"), self.calls.to_string()).map_err(|e| PolicyError(e.into()))
    }

    fn load(&mut self, dir: &Path) -> Result<(), PolicyError> {
        let s = std::fs::read_to_string(dir.join("calls")).map_err(|e| PolicyError(e.into()))?;
        self.calls = s.trim().parse().map_err(|e: std::num::ParseIntError| PolicyError(e.into()))?;
        Ok(())
    }
}

fn registry(crash: Option<Arc<(AtomicBool, AtomicU64)>>) -> Registry {
    let mut r = rlvr::builtin_registry();
    r.policy("test/learner-v0", "test double", move |_, ctx| {
        Ok(Box::new(Learner { calls: 0, gold: ctx.gold.clone().unwrap(), crash_at: crash.clone() }) as Box<dyn Policy>)
    });
    r
}

/// Metrics that must agree between runs: everything but timings.
fn metrics(dir: &Path) -> Vec<(i64, String, Option<f64>)> {
    let db = rusqlite::Connection::open(dir.join("run.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT iteration, name, value FROM metrics WHERE name NOT LIKE 'time/%' AND name != 'rollout/tokens_per_s' ORDER BY iteration, name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
}

fn samples(dir: &Path) -> Vec<(i64, String, i64, i64, String, Option<f64>)> {
    let db = rusqlite::Connection::open(dir.join("run.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT iteration, split, task_index, sample_index, trajectory, reward FROM samples ORDER BY iteration, split, task_index, sample_index")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_crashed_run_resumes_to_the_same_iterations_as_an_uninterrupted_one() {
    let exp = Experiment::parse(EXP, "exp.toml", &[]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (whole, crashed) = (tmp.path().join("whole"), tmp.path().join("crashed"));

    experiment::run(&registry(None), &exp, &whole, false, &mut ()).unwrap();

    // Crash in the middle of iteration 5: iterations 0-4 are committed, the last checkpoint is
    // after iteration 2, so 3 and 4 are discarded and redone on resume.
    let crash = Arc::new((AtomicBool::new(true), AtomicU64::new(6)));
    let err = experiment::run(&registry(Some(crash.clone())), &exp, &crashed, false, &mut ()).unwrap_err();
    assert!(format!("{err:#}").contains("simulated crash"), "{err:#}");
    let db = rusqlite::Connection::open(crashed.join("run.db")).unwrap();
    let last: i64 = db.query_row("SELECT MAX(iteration) FROM iterations", [], |r| r.get(0)).unwrap();
    assert_eq!(last, 4, "the iteration in flight is lost, the others are committed");

    let again = experiment::run(&registry(Some(crash)), &exp, &crashed, false, &mut ()).unwrap_err();
    assert!(again.to_string().contains("already holds a run"), "no silent overwrite: {again}");

    let disarmed = Arc::new((AtomicBool::new(false), AtomicU64::new(0)));
    let summary = experiment::run(&registry(Some(disarmed)), &exp, &crashed, true, &mut ()).unwrap();
    assert_eq!(summary.iterations_run, 5, "resumed after the checkpoint of iteration 2");

    assert_eq!(metrics(&whole), metrics(&crashed));
    assert_eq!(samples(&whole), samples(&crashed));
    assert_eq!(metrics(&whole).iter().filter(|m| m.1 == "reward/mean").count(), 8);
}

#[test]
fn a_run_that_fails_before_its_first_checkpoint_leaves_no_directory() {
    let exp = Experiment::parse(EXP, "exp.toml", &[]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("early");
    // Crash on the first generation call: nothing was checkpointed.
    let crash = Arc::new((AtomicBool::new(true), AtomicU64::new(1)));
    let err = experiment::run(&registry(Some(crash)), &exp, &dir, false, &mut ()).unwrap_err();
    assert!(format!("{err:#}").contains("simulated crash"), "{err:#}");
    assert!(!dir.exists(), "the failed run's directory is removed");
    // The same command then starts afresh in the same place.
    experiment::run(&registry(None), &exp, &dir, false, &mut ()).unwrap();
    assert!(dir.join("run.db").exists());
    // A directory that held a run before is never removed by a refused start.
    let err = experiment::run(&registry(None), &exp, &dir, false, &mut ()).unwrap_err();
    assert!(err.to_string().contains("already holds a run"), "{err}");
    assert!(dir.join("run.db").exists());
}

#[test]
fn resume_refuses_a_different_experiment() {
    let exp = Experiment::parse(EXP, "exp.toml", &["run.iterations=2".into()]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    experiment::run(&registry(None), &exp, tmp.path(), false, &mut ()).unwrap();
    let other = Experiment::parse(EXP, "exp.toml", &["run.iterations=3".into(), "run.seed=6".into()]).unwrap();
    let err = experiment::run(&registry(None), &other, tmp.path(), true, &mut ()).unwrap_err();
    assert!(err.to_string().contains("different experiment"), "{err}");
    assert!(err.to_string().contains("run.seed: 5 in the run, 6 now"), "the field that differs is named: {err}");
    let longer = Experiment::parse(EXP, "exp.toml", &["run.iterations=3".into()]).unwrap();
    let s = experiment::run(&registry(None), &longer, tmp.path(), true, &mut ()).unwrap();
    assert_eq!(s.iterations_run, 1, "only run.iterations may change, to extend a run");
}

#[test]
fn cli_run_report_and_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let exp = EXP.replace("test/learner-v0", "scripted/gold-v0");
    std::fs::write(d.join("exp.toml"), &exp).unwrap();

    // At the default log level a run says what an interruption costs, and a resume from where.
    let info = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rlvr"))
            .args(args)
            .current_dir(d)
            .env("RUST_LOG", "info")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = info(&["run", "exp.toml", "--set", "run.iterations=3"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("interrupted (Ctrl-C), the run loses the iterations since the last one"), "{err}");
    let (code, err) = info(&["run", "exp.toml", "--set", "run.iterations=4", "--resume"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("resuming from") && err.contains("after iteration 3"), "{err}");
    std::fs::remove_dir_all(d.join("runs/resume")).unwrap();
    let (code, out, err) = rlvr(&["run", "exp.toml", "--set", "run.iterations=3"], d);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("held-out accuracy: at the end (iteration 3)"), "the run says its result: {out}");
    let db = rusqlite::Connection::open(d.join("runs/resume/run.db")).unwrap();
    let rows: i64 = db.query_row("SELECT COUNT(*) FROM iterations", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 3);
    let config = std::fs::read_to_string(d.join("runs/resume/config.toml")).unwrap();
    assert!(config.contains("iterations = 3"), "the resolved config records overrides:\n{config}");

    let (code, out, _) = rlvr(&["report", "runs/resume"], d);
    assert_eq!(code, 0);
    assert!(out.contains("reward/mean"));
    let png = std::fs::read(d.join("runs/resume/report/summary.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // Bad input: exit 2 with one line naming the file, the line and the field.
    std::fs::write(d.join("bad.toml"), exp.replace("tasks_per_iteration = 4", "tasks_per_iteration = \"four\""))
        .unwrap();
    let (code, _, err) = rlvr(&["run", "bad.toml"], d);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.toml") && err.contains("line 6") && err.contains("tasks_per_iteration"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    std::fs::write(d.join("unknown.toml"), exp.replace("arith/arith-v0", "arith/nope-v9")).unwrap();
    let (code, _, err) = rlvr(&["run", "unknown.toml"], d);
    assert_eq!(code, 2);
    assert!(err.contains("unknown environment `arith/nope-v9`; known: arith/arith-v0"), "{err}");

    let (code, _, err) = rlvr(&["run", "missing.toml"], d);
    assert_eq!((code, err.contains("missing.toml")), (2, true), "{err}");
    let (code, _, err) = rlvr(&["run", "exp.toml", "--set", "run.iterations=3"], d);
    assert_eq!(code, 2, "an existing run is not overwritten: {err}");
    let (code, _, _) = rlvr(&["report", "nowhere"], d);
    assert_eq!(code, 2);
}

#[test]
fn cli_score_and_envs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // `rlvr envs ID` shows one plugin with its config keys at their defaults, which parse back.
    let (code, out, err) = rlvr(&["envs", "arith/arith-v0"], d);
    assert_eq!(code, 0, "{err}");
    let keys = out.split("keys, at their defaults:\n").nth(1).expect("a defaults section");
    let table: toml::Table = toml::from_str(keys).unwrap();
    assert_eq!(table["max_digits"].as_integer(), Some(3), "{out}");
    assert!(table.contains_key("ops") && table.contains_key("test_per_mille"), "{out}");
    let (code, out, _) = rlvr(&["envs", "rewards/math-v0"], d);
    assert_eq!(code, 0);
    assert!(out.contains("alias of math/problems-v0") && out.contains("max_value = 12"), "{out}");
    let (code, _, err) = rlvr(&["envs", "nope/none-v0"], d);
    assert_eq!(code, 2);
    assert!(err.contains("no plugin `nope/none-v0`"), "{err}");
    std::fs::write(
        d.join("cases.jsonl"),
        "{\"task\": {\"answer\": \"12\"}, \"completion\": \"so <answer>12</answer>\"}\n{\"task\": {\"answer\": \"12\"}}\n",
    )
    .unwrap();
    let (code, out, err) = rlvr(&["score", "--reward", "answer/exact", "--input", "cases.jsonl"], d);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["reward"], 1.0);
    assert_eq!(rows[0]["terms"]["exact_match"], 1.0);
    assert_eq!(rows[0]["error"], Value::Null);
    assert_eq!(rows[1]["reward"], Value::Null);
    assert!(rows[1]["error"].as_str().unwrap().contains("line 2: missing field `completion`"));

    let (code, _, err) = rlvr(&["score", "--reward", "answer/nope", "--input", "cases.jsonl"], d);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = rlvr(&["score", "--reward", "answer/exact", "--input", "nope.jsonl"], d);
    assert_eq!((code, err.contains("nope.jsonl")), (2, true));

    // --set reads the reward's config as `rlvr run` reads an experiment's.
    std::fs::write(
        d.join("case.jsonl"),
        "{\"task\": {\"answer\": \"Paris\"}, \"completion\": \"<answer>paris</answer>\"}\n",
    )
    .unwrap();
    let score = |set: &[&str]| {
        let (code, out, err) =
            rlvr(&[&["score", "--reward", "answer/exact", "--input", "case.jsonl"], set].concat(), d);
        (code, out.lines().next().and_then(|l| serde_json::from_str::<Value>(l).ok()).map(|r| r["reward"].clone()), err)
    };
    assert_eq!(score(&[]).1, Some(1.0.into()));
    assert_eq!(score(&["--set", "normalize=false"]).1, Some(0.0.into()));
    let (code, _, err) = score(&["--set", "normalize"]);
    assert_eq!((code, err.contains("--set normalize: expected key.path=value")), (2, true), "{err}");

    let (code, out, _) = rlvr(&["envs"], d);
    assert_eq!(code, 0);
    for id in ["arith/arith-v0", "answer/exact", "scripted/gold-v0", "math/problems-v0", "rewards/math-v0"] {
        assert!(out.contains(id), "{out}");
    }
}
