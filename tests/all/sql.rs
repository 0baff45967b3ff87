//! The SQL environment and its reward through the registry, as a user's experiment builds them.

use rlvr::engine::testing::{Checks, assert_conformance, play_gold};
use rlvr::engine::{Config, Split, Task, Trajectory};
use serde_json::json;

fn synth_config(dir: &std::path::Path, extra: &str) -> Config {
    toml::from_str(&format!("{extra}\n[synthetic]\ndb_dir = {:?}\n", dir.to_str().unwrap())).unwrap()
}

#[test]
fn synthetic_env_passes_conformance_single_and_multi_turn() {
    let dir = tempfile::tempdir().unwrap();
    let registry = rlvr::builtin_registry();
    for extra in ["", "turns = 3\nsample_rows = 2", "turns = 2\nread_only = true\ncompare = \"bird\""] {
        let spec = registry.make_env("sql/text2sql-v0", &synth_config(dir.path(), extra), 3).unwrap();
        let rubric = registry.make_reward(&spec.default_reward, &spec.default_reward_config).unwrap();
        assert_conformance(&spec, &rubric, &Checks { tasks: 30, ..Checks::default() });
    }
}

#[test]
fn every_template_and_level_gold_scores_one_against_itself() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = rlvr::envs::sql::synth::SynthConfig { db_dir: Some(dir.path().into()), ..Default::default() };
    let registry = rlvr::builtin_registry();
    let rubric = registry.make_reward("sql/execution-match", &Config::new()).unwrap();
    for compare in ["spider", "bird"] {
        for keep_distinct in [false, true] {
            let tasks = rlvr::envs::sql::synth::SynthTasks::new(cfg.clone(), 9, compare, keep_distinct).unwrap();
            let all = rlvr::envs::sql::synth::all_templates(&tasks);
            let levels: std::collections::HashSet<_> = all.iter().map(|t| t.data["level"].clone()).collect();
            assert_eq!(levels.len(), rlvr::envs::sql::synth::LEVELS.len());
            for task in all {
                let gold = format!("```sql\n{}\n```", task.str_field("gold").unwrap());
                let s = rubric.score(&task, &Trajectory::from_completion(vec![], &gold));
                assert_eq!(s.total(), Some(1.0), "{} ({compare}): {:?}", task.id, s);
            }
        }
    }
}

#[test]
fn spider_and_bird_layout_on_disk_passes_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("spider");
    rlvr::envs::sql::dataset::write_fixture(&root).unwrap();
    let registry = rlvr::builtin_registry();
    for compare in ["spider", "bird"] {
        let cfg: Config = toml::from_str(&format!(
            "compare = {compare:?}\n[dataset]\nroot = {:?}\ntrain = \"train.json\"\ntest = \"dev.json\"\n",
            root.to_str().unwrap()
        ))
        .unwrap();
        let spec = registry.make_env("sql/text2sql-v0", &cfg, 0).unwrap();
        assert_eq!(spec.tasks.len(Split::Test), Some(4));
        let rubric = registry.make_reward(&spec.default_reward, &spec.default_reward_config).unwrap();
        assert_conformance(&spec, &rubric, &Checks::default());
        // The BIRD row's evidence reaches the prompt.
        let task = spec.tasks.task(Split::Train, 0).unwrap();
        let gold = spec.gold.as_ref().unwrap();
        let tr = play_gold(&spec, gold, &task, 0, 1).unwrap();
        assert!(tr.messages[1].content.contains("Hint: most expensive refers to MAX(price)"));
    }
}

#[test]
fn rlvr_score_shape_from_a_task_line() {
    let dir = tempfile::tempdir().unwrap();
    rlvr::envs::sql::dataset::write_fixture(dir.path()).unwrap();
    let db = dir.path().join("database/library/library.sqlite");
    let registry = rlvr::builtin_registry();
    let rubric = registry.make_reward("sql/execution-match", &Config::new()).unwrap();
    let line = json!({"task": {"db": db, "gold": "SELECT DISTINCT author FROM book", "compare": "spider", "keep_distinct": false},
                      "completion": "```sql\nSELECT author FROM book\n```"});
    let task = Task::new("1", line["task"].clone());
    let s = rubric.score(&task, &Trajectory::from_completion(vec![], line["completion"].as_str().unwrap()));
    assert_eq!(s.total(), Some(1.0));
    assert_eq!(s.get("execution_match"), Some(1.0));
    let strict = json!({"db": db, "gold": "SELECT DISTINCT author FROM book", "keep_distinct": true});
    let s = rubric
        .score(&Task::new("2", strict), &Trajectory::from_completion(vec![], line["completion"].as_str().unwrap()));
    assert_eq!(s.total(), Some(0.0));
}
