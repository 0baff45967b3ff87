//! The causal-query environment through the registry: conformance with both rewards, rollouts
//! with the scripted policy, and scoring exported lines the way `rlvr score` does.

use rlvr::engine::testing::{Checks, assert_conformance};
use rlvr::engine::{Config, PolicyContext, RolloutConfig, Runner, Sampling, Split, Task, Trajectory};
use rlvr::envs::causal::{CausalConfig, export, query::Level};
use std::sync::Arc;

#[test]
fn causal_passes_conformance_with_both_rewards() {
    let registry = rlvr::builtin_registry();
    for cfg in ["", "levels = [\"counterfactual\"]\nvariables = 6\nmax_values = 2\ntest_size = 16"] {
        let config: Config = toml::from_str(cfg).unwrap();
        let spec = registry.make_env("causal/query-v0", &config, 11).unwrap();
        assert_eq!(spec.default_reward, "causal/tvd");
        for reward in ["causal/tvd", "causal/tvd-dense"] {
            let rubric = registry.make_reward(reward, &spec.default_reward_config).unwrap();
            assert_conformance(&spec, &rubric, &Checks::default());
        }
    }
}

#[test]
fn scripted_rollouts_score_by_accuracy() {
    let registry = rlvr::builtin_registry();
    let spec = registry.make_env("causal/query-v0", &Config::new(), 3).unwrap();
    let rubric = Arc::new(registry.make_reward("causal/tvd", &Config::new()).unwrap());
    let runner = Runner::new(2);
    let rollout_cfg = RolloutConfig { group_size: 2, max_tokens: 16_384, ..RolloutConfig::default() };
    let tasks: Vec<(u64, Task)> = (0..4).map(|i| (i, spec.tasks.task(Split::Train, i).unwrap())).collect();
    for (accuracy, want) in [(1.0, 1.0), (0.0, 0.0)] {
        let ctx = PolicyContext { seed: 1, gold: spec.gold.clone() };
        let policy_cfg: Config = toml::from_str(&format!("accuracy = {accuracy:.1}")).unwrap();
        let mut policy = registry.make_policy("scripted/gold-v0", &policy_cfg, &ctx).unwrap();
        let out = runner
            .rollout(policy.as_mut(), &spec, &rubric, tasks.clone(), &rollout_cfg, Sampling { seed: 9, greedy: false })
            .unwrap();
        assert_eq!(out.stats.failed + out.stats.truncated + out.stats.verifier_errors, 0, "{:?}", out.stats);
        for g in &out.groups {
            for s in &g.samples {
                assert_eq!(s.reward(), Some(want), "task {}", g.task.id);
            }
        }
    }
}

#[test]
fn exported_lines_score_like_rlvr_score() {
    let mut buf = Vec::new();
    let summary =
        export::export(CausalConfig::default(), 2, Split::Test, Some(Level::Interventional), 5, &mut buf).unwrap();
    assert_eq!(summary.tasks, 5);
    let registry = rlvr::builtin_registry();
    let rubric = registry.make_reward("causal/tvd", &Config::new()).unwrap();
    for (line_number, line) in std::str::from_utf8(&buf).unwrap().lines().enumerate() {
        let mut data: serde_json::Value = serde_json::from_str(line).unwrap();
        let reference: Vec<f64> = serde_json::from_value(data["answer"].clone()).unwrap();
        let shown: Vec<String> = reference.iter().map(|p| format!("{p:.3}")).collect();
        let completion = format!("Working...\nANSWER [{}]", shown.join(", "));
        let task = Task::new(line_number.to_string(), data.clone());
        let scored = rubric.score(&task, &Trajectory::from_completion(vec![], &completion));
        assert_eq!(scored.total(), Some(1.0), "{:?}", scored.terms);
        // Without its `answer`, the task's reference is recomputed from its network and query.
        data.as_object_mut().unwrap().remove("answer");
        let task = Task::new(line_number.to_string(), data);
        assert_eq!(rubric.score(&task, &Trajectory::from_completion(vec![], &completion)).total(), Some(1.0));
        let far: Vec<String> = reference.iter().rev().map(|p| format!("{p}")).collect();
        let wrong = format!("ANSWER [{}]", far.join(", "));
        let s = rubric.score(&task, &Trajectory::from_completion(vec![], &wrong));
        let tvd = s.terms.iter().find(|t| t.name == "accuracy").unwrap().info["tvd"].as_f64().unwrap();
        assert_eq!(s.total(), Some(if tvd <= 0.02 { 1.0 } else { 0.0 }));
    }
}

#[test]
fn cli_tasks_causal_writes_jsonl_and_a_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rlvr"))
        .args(["tasks", "causal", "--level", "counterfactual", "--n", "20", "--split", "test", "--seed", "3"])
        .arg("--out")
        .arg(tmp.path().join("t.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["tasks"], 20);
    let text = std::fs::read_to_string(tmp.path().join("t.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 20);
    for r in &rows {
        assert_eq!(r["query"]["level"], "counterfactual");
        for key in ["network", "difficulty", "prompt", "answer"] {
            assert!(!r[key].is_null(), "missing {key}");
        }
    }
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_rlvr"))
        .args(["tasks", "causal", "--level", "imaginary", "--out", "x.jsonl"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
