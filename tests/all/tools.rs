//! Tool calling through the registry: `tools/ast-match` agrees with BFCL's checker on the
//! fixture, and both tool environments pass conformance (gold answers score 1.0).

use rlvr::engine::testing::{Checks, assert_conformance};
use rlvr::engine::{Config, Sampling, Task, Trajectory};
use serde_json::Value;

/// BFCL's verdict on each line of `cases.jsonl`, in order: "valid" or its `error_type`. These
/// are the verdicts of bfcl-eval 2026.3.23's `ast_checker` (checked side by side by
/// `benches/tools_ast_vs_bfcl.py`; `<tool_call>` lines are decoded as JSON before its checker).
const EXPECTED: [&str; 39] = [
    "valid",                                    // all parameters
    "valid",                                    // optional omitted, no brackets
    "type_error:simple",                        // float given for an int
    "valid",                                    // case and spaces ignored
    "value_error:others",                       // int not among the acceptable values
    "simple_function_checker:missing_required", // required parameter missing
    "simple_function_checker:unexpected_param", // parameter the function lacks
    "simple_function_checker:wrong_func_name",  // unknown function
    "simple_function_checker:wrong_count",      // two calls where one is wanted
    "ast_decoder:decoder_failed",               // unbalanced parenthesis
    "valid",                                    // <tool_call> JSON
    "type_error:simple",                        // bool is not an int
    "valid",                                    // int accepted for float
    "valid",                                    // optional given, case-insensitive
    "value_error:others",                       // 5 is not 0.05
    "type_error:simple",                        // string for a float
    "value_error:string",                       // string not acceptable
    "type_error:simple",                        // <tool_call> JSON: 10.0 for an int
    "valid",                                    // list items standardised
    "value_error:list/tuple",                   // lists are order-sensitive
    "type_error:nested",                        // list item of the wrong type
    "value_error:others",                       // False where True is wanted
    "valid",                                    // dict with an optional key omitted
    "value_error:dict_key",                     // dict key not expected
    "value_error:dict_value",                   // dict value not acceptable
    "valid",                                    // multiple: the right function
    "simple_function_checker:wrong_func_name",  // multiple: another offered function
    "multiple_function_checker:wrong_count",    // multiple: two calls
    "valid",                                    // parallel: any order
    "parallel_function_checker_no_order:wrong_count",
    "parallel_function_checker_no_order:cannot_find_match",
    "valid", // parallel <tool_call> blocks, any order
    "valid", // parallel_multiple: any order
    "parallel_function_checker_no_order:cannot_find_match",
    "valid",                               // live: second acceptable string
    "value_error:string",                  // live: punctuation '!' is not ignored
    "valid",                               // live: <tool_call> JSON
    "ast_decoder:decoder_failed",          // prose
    "simple_function_checker:wrong_count", // no call at all
];

#[test]
fn ast_match_gives_bfcl_verdicts_on_the_fixture() {
    let registry = rlvr::builtin_registry();
    let rubric = registry.make_reward("tools/ast-match", &Config::new()).unwrap();
    let text = std::fs::read_to_string(crate::repo("envs/src/tools/fixture/bfcl/cases.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), EXPECTED.len());
    for (i, (line, want)) in lines.iter().zip(EXPECTED).enumerate() {
        let case: Value = serde_json::from_str(line).unwrap();
        // Exactly what `rlvr score` builds from a line.
        let task = Task::new((i + 1).to_string(), case["task"].clone());
        let completion = case["completion"].as_str().unwrap();
        let scored = rubric.score(&task, &Trajectory::from_completion(vec![], completion));
        let term = &scored.terms[0];
        assert_eq!(term.name, "ast_match");
        let got = if term.value == Ok(1.0) {
            "valid".to_string()
        } else {
            assert_eq!(term.value, Ok(0.0), "line {}: {:?}", i + 1, term);
            assert!(term.info["category"].is_string(), "line {}: a failure names its category", i + 1);
            term.info["bfcl_error_type"].as_str().unwrap().to_string()
        };
        assert_eq!(got, want, "line {}: {completion}\n{}", i + 1, term.info);
        assert_eq!(scored.total(), Some(if want == "valid" { 1.0 } else { 0.0 }));
    }
}

#[test]
fn exec_env_passes_conformance_at_every_level() {
    let registry = rlvr::builtin_registry();
    for cfg in ["", "levels = [1]", "levels = [2]", "levels = [3]\nmax_calls = 4"] {
        let config: Config = toml::from_str(cfg).unwrap();
        let spec = registry.make_env("tools/exec-v0", &config, 5).unwrap();
        let rubric = registry.make_reward(&spec.default_reward, &spec.default_reward_config).unwrap();
        assert_conformance(&spec, &rubric, &Checks { tasks: 30, ..Checks::default() });
    }
}

#[test]
fn bfcl_env_passes_conformance_on_the_fixture() {
    let registry = rlvr::builtin_registry();
    let config: Config = toml::from_str(&format!(
        "data_dir = \"{}\"\ncategories = [\"simple\", \"multiple\", \"parallel\", \"parallel_multiple\", \"live_simple\"]",
        crate::repo("envs/src/tools/fixture/bfcl")
    ))
    .unwrap();
    let spec = registry.make_env("tools/bfcl-v0", &config, 0).unwrap();
    let n = spec.tasks.len(rlvr::engine::Split::Train).unwrap() + spec.tasks.len(rlvr::engine::Split::Test).unwrap();
    assert_eq!(n, 8, "every fixture question is loaded");
    let rubric = registry.make_reward(&spec.default_reward, &spec.default_reward_config).unwrap();
    assert_conformance(&spec, &rubric, &Checks::default());
}

#[test]
fn missing_bfcl_data_is_a_clear_error() {
    let registry = rlvr::builtin_registry();
    let config: Config = toml::from_str("data_dir = \"/nonexistent/bfcl\"").unwrap();
    let err = registry.make_env("tools/bfcl-v0", &config, 0).err().unwrap().to_string();
    assert!(err.contains("/nonexistent/bfcl"), "{err}");
}

#[test]
fn exec_rollouts_mask_tool_output_and_gold_scores_one() {
    use rlvr::engine::{PolicyContext, Role, RolloutConfig, Runner, Split};
    use std::sync::Arc;
    let registry = rlvr::builtin_registry();
    let spec = registry.make_env("tools/exec-v0", &toml::from_str("levels = [3]").unwrap(), 9).unwrap();
    let rubric = Arc::new(registry.make_reward(&spec.default_reward, &spec.default_reward_config).unwrap());
    let ctx = PolicyContext { seed: 9, gold: spec.gold.clone() };
    let mut policy =
        registry.make_policy("scripted/gold-v0", &toml::from_str("accuracy = 1.0").unwrap(), &ctx).unwrap();
    let tasks: Vec<_> = (0..4).map(|i| (i, spec.tasks.task(Split::Train, i).unwrap())).collect();
    let config = RolloutConfig { group_size: 2, max_turns: 6, max_tokens: 16384, max_new_tokens: 1024 };
    let out = Runner::new(2)
        .rollout(policy.as_mut(), &spec, &rubric, tasks, &config, Sampling { seed: 1, greedy: false })
        .unwrap();
    for g in &out.groups {
        for s in &g.samples {
            let tr = &s.trajectory;
            assert_eq!(s.reward(), Some(1.0), "{:?}", s.outcome);
            assert!(tr.messages.iter().any(|m| m.role == Role::Tool), "tool results come back as tool messages");
            assert!(tr.turns() >= 3, "level 3 takes two turns of calls and an answer");
            // The scripted policy's tokens are the bytes it wrote: exactly those carry loss.
            let written: usize = tr.assistant_messages().map(|m| m.content.len()).sum();
            assert_eq!(tr.policy_tokens(), written);
            assert!(tr.tokens.len() > written, "environment tokens are present, masked");
        }
    }
}
