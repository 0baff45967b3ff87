//! `lm/llama-v0` through the registry and the runner, as an experiment would use it: a tiny
//! random model plays multi-turn arithmetic; every sampled token is recorded with its log-prob,
//! the environment's tokens are context, and the same seed gives the same rollout.

use rlvr::engine::*;

fn rollout(seed: u64) -> Rollout {
    let registry = rlvr::builtin_registry();
    let env_config: Config = toml::from_str("attempts = 2").unwrap();
    let spec = registry.make_env("arith/arith-v0", &env_config, 5).unwrap();
    let rubric = std::sync::Arc::new(registry.make_reward(&spec.default_reward, &spec.default_reward_config).unwrap());
    let policy_config: Config = toml::from_str("preset = \"tiny\"\ntemperature = 1.0\ntop_p = 0.95").unwrap();
    let ctx = PolicyContext { seed: 1, gold: None };
    let mut policy = registry.make_policy("lm/llama-v0", &policy_config, &ctx).unwrap();
    let tasks: Vec<(u64, Task)> = (0..2).map(|i| (i, spec.tasks.task(Split::Train, i).unwrap())).collect();
    let cfg = RolloutConfig { group_size: 2, max_turns: 2, max_tokens: 2048, max_new_tokens: 12 };
    Runner::new(2).rollout(policy.as_mut(), &spec, &rubric, tasks, &cfg, Sampling { seed, greedy: false }).unwrap()
}

#[test]
fn a_tiny_lm_rolls_out_through_the_runner() {
    let a = rollout(3);
    let mut sampled = 0;
    for g in &a.groups {
        for s in &g.samples {
            let t = &s.trajectory;
            assert!(matches!(s.outcome, Outcome::Scored(_)), "{:?}", s.outcome);
            assert_eq!(t.tokens.len(), t.loss_mask.len());
            assert_eq!(t.tokens.len(), t.logprobs.len());
            assert!(t.tokens.iter().all(|&id| (id as usize) < 260));
            // The episode opens with the environment's prompt (no loss), then the policy's tokens.
            assert!(!t.loss_mask[0]);
            for (m, lp) in t.loss_mask.iter().zip(&t.logprobs) {
                assert!(if *m { *lp <= 0.0 && lp.is_finite() } else { *lp == 0.0 });
            }
            sampled += t.policy_tokens();
        }
    }
    assert!(sampled > 0);
    assert_eq!(a.stats.policy_tokens, sampled);
    let b = rollout(3);
    let tokens = |r: &Rollout| -> Vec<Vec<u32>> {
        r.groups.iter().flat_map(|g| g.samples.iter().map(|s| s.trajectory.tokens.clone())).collect()
    };
    assert_eq!(tokens(&a), tokens(&b), "same seed, same rollout");
    assert_ne!(tokens(&a), tokens(&rollout(4)));
}

/// `rlvr generate --json` prints the documented object and greedy decoding is reproducible; a
/// missing checkpoint is bad input (exit 2).
#[test]
fn generate_cli_prints_the_documented_json() {
    let rlvr = |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_rlvr")).args(args).output().unwrap();
    let args = ["generate", "--model", "preset:tiny", "--prompt", "2+2=", "--max-new-tokens", "8", "--json"];
    let out = rlvr(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tokens = v["tokens"].as_array().unwrap();
    assert!(!tokens.is_empty() && tokens.len() <= 8, "{v}");
    assert!(v["text"].is_string() && v["tokens_per_s"].as_f64().unwrap() > 0.0, "{v}");
    let again: serde_json::Value = serde_json::from_slice(&rlvr(&args).stdout).unwrap();
    assert_eq!(again["tokens"], v["tokens"], "greedy decoding is deterministic");
    let chat = rlvr(&["generate", "--model", "preset:tiny", "--prompt", "hi", "--chat", "--max-new-tokens", "4"]);
    assert!(chat.status.success(), "{}", String::from_utf8_lossy(&chat.stderr));
    assert_eq!(rlvr(&["generate", "--model", "/nonexistent/ckpt", "--prompt", "x"]).status.code(), Some(2));
    // A prompt past the model's context window is refused with the window named.
    let long = "x".repeat(5000);
    let out = rlvr(&["generate", "--model", "preset:tiny", "--prompt", &long, "--max-new-tokens", "4"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("context window of 4096"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
