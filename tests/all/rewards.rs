//! The reward verifiers through the registry, as `rlvr score`, `rlvr bench-rewards` and an
//! experiment reach them.

use rlvr::engine::testing::{Checks, assert_conformance};
use rlvr::engine::{Config, Task, Trajectory};
use rlvr::experiment::{self, Experiment};
use rlvr::rewards::bench::{self, BenchOptions};
use serde_json::{Value, json};
use std::time::Duration;

/// Scores one line the way `rlvr score` does: empty config, `{"answer": ...}` task.
fn score(id: &str, task: Value, completion: &str) -> (Option<f64>, Option<String>) {
    let rubric = rlvr::builtin_registry().make_reward(id, &Config::new()).unwrap();
    let s = rubric.score(&Task::new("1", task), &Trajectory::from_completion(vec![], completion));
    (s.total(), s.error())
}

#[test]
fn every_verifier_is_reachable_with_an_answer_task() {
    let cases = [
        ("math/equivalence", json!({"answer": "\\frac{1}{2}"}), "\\boxed{0.5}", Some(1.0)),
        ("math/equivalence", json!({"answer": "(1,2]"}), "\\boxed{(1,2)}", Some(0.0)),
        ("answer/numeric", json!({"answer": "1234.5"}), "it is 1,234.5", Some(1.0)),
        ("answer/numeric", json!({"answer": "100", "atol": 1}), "<answer>102</answer>", Some(0.0)),
        ("answer/exact", json!({"answer": "Paris"}), "<answer>paris</answer>", Some(1.0)),
        ("answer/choice", json!({"answer": "B"}), "so (B)", Some(1.0)),
        ("answer/regex", json!({"answer": "[0-9]+"}), "123", Some(1.0)),
        ("answer/json_schema", json!({"schema": {"type": "array"}}), "```json\n[1]\n```", Some(1.0)),
        ("shape/format", json!({}), "<think>a</think><answer>1</answer>", Some(1.0)),
    ];
    for (id, task, completion, want) in cases {
        assert_eq!(score(id, task.clone(), completion).0, want, "{id} {task} {completion:?}");
    }
    // A broken gold is a verifier error with the reason, never a zero.
    for (id, task) in [
        ("math/equivalence", json!({"answer": "\\frac{1}{"})),
        ("answer/numeric", json!({"answer": "NaN"})),
        ("answer/numeric", json!({"answer": "1e999"})),
        ("answer/regex", json!({"answer": "(a"})),
        ("answer/json_schema", json!({"schema": {"$ref": "https://example.com/person.json"}})),
    ] {
        let (total, err) = score(id, task.clone(), "1");
        assert_eq!(total, None, "{id} {task}");
        assert!(err.is_some(), "{id} {task}");
    }
}

#[test]
fn json_schema_rows_score_full_agreement_through_the_registry() {
    let text = std::fs::read_to_string(crate::repo("benches/data/json_schema.jsonl")).unwrap();
    let rows = bench::load_rows(&text).unwrap();
    let opts = BenchOptions { threads: 2, min_time: Duration::from_millis(20), examples: 5 };
    let report = bench::run(&rlvr::builtin_registry(), &["answer/json_schema".into()], &rows, &opts).unwrap();
    let r = &report.rewards[0];
    assert_eq!((r.agreement.rows, r.agreement.accuracy), (rows.len(), 1.0), "{}", bench::render_table(&report));
}

#[test]
fn math_env_passes_conformance_with_its_default_reward() {
    let registry = rlvr::builtin_registry();
    for cfg in ["", "kinds = [\"roots\", \"expand\"]\nmax_value = 50"] {
        let config: Config = toml::from_str(cfg).unwrap();
        let spec = registry.make_env("rewards/math-v0", &config, 3).unwrap();
        assert_eq!(spec.default_reward, "math/equivalence");
        let rubric = registry.make_reward(&spec.default_reward, &spec.default_reward_config).unwrap();
        assert_conformance(&spec, &rubric, &Checks { tasks: 60, ..Checks::default() });
    }
}

#[test]
fn bundled_set_scores_full_agreement_through_the_registry() {
    let rows = bench::load_rows(bench::BUNDLED).unwrap();
    let ids: Vec<String> =
        ["math/equivalence", "answer/numeric", "answer/exact", "answer/choice"].map(String::from).to_vec();
    let opts = BenchOptions { threads: 2, min_time: Duration::from_millis(20), examples: 5 };
    let report = bench::run(&rlvr::builtin_registry(), &ids, &rows, &opts).unwrap();
    let table = bench::render_table(&report);
    for r in &report.rewards {
        assert_eq!(r.agreement.accuracy, 1.0, "{table}");
        assert!(r.throughput.all_cores_per_s > 0.0);
    }
    assert_eq!(report.rewards.iter().map(|r| r.agreement.rows).sum::<usize>(), rows.len());
}

#[test]
fn example_experiment_runs_end_to_end() {
    let text = std::fs::read_to_string(crate::repo("examples/rewards.toml")).unwrap();
    let exp = Experiment::parse(&text, "rewards.toml", &[]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let summary = experiment::run(&rlvr::builtin_registry(), &exp, tmp.path(), false, &mut ()).unwrap();
    assert_eq!(summary.iterations_run, 5);
    let m = &summary.last_metrics;
    let acc = m["reward/accuracy"];
    // The scripted policy plays gold half the time: some but not all answers are right, and
    // the verifier never fails on them.
    assert!(acc > 0.0 && acc < 1.0, "{m:?}");
    assert_eq!(m["rollout/verifier_errors"], 0.0, "{m:?}");
}

#[test]
fn cli_bench_rewards_reports_json_and_a_chart() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rlvr"))
        .args(["bench-rewards", "--reward", "answer/numeric", "--min-time-ms", "10", "--json", "--chart", "c.png"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rewards"][0]["id"], "answer/numeric");
    assert_eq!(report["rewards"][0]["agreement"]["accuracy"], 1.0, "the bundled set is the regression test");
    assert!(report["rewards"][0]["throughput"]["per_core_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(&std::fs::read(tmp.path().join("c.png")).unwrap()[..4], b"\x89PNG");
}

#[test]
fn cli_bench_rewards_runs_math_verifys_own_suite() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rlvr"))
        .args(["bench-rewards", "--set", "math-verify", "--min-time-ms", "1", "--threads", "1", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &report["rewards"][0];
    assert_eq!(r["id"], "math/equivalence");
    assert_eq!(r["agreement"]["rows"], 276);
    assert_eq!(r["agreement"]["false_positives"], 0);
    assert!(r["agreement"]["accuracy"].as_f64().unwrap() >= 0.99, "{r}");
}

#[test]
fn cli_score_to_an_unwritable_output_is_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    std::fs::write(&input, "{\"task\": {\"answer\": \"1\"}, \"completion\": \"1\"}\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rlvr"))
        .args(["score", "--reward", "answer/exact", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(tmp.path().join("no/such/dir/out.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write"), "{}", String::from_utf8_lossy(&out.stderr));
}
