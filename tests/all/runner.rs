//! The runner: failures stay inside their rollout, limits cut episodes, results do not depend
//! on the number of worker threads.

use rlvr::engine::*;
use serde_json::{Value, json};
use std::sync::Arc;

/// Counts to `n` over several turns; panics or errors on tasks that ask for it.
struct Counter {
    task: Value,
    said: u32,
}

impl Environment for Counter {
    fn reset(&mut self, task: &Task, _seed: u64) -> Result<Vec<Message>, EnvError> {
        if task.data["fail_reset"] == json!(true) {
            return Err(EnvError::failed("database unavailable"));
        }
        self.task = task.data.clone();
        Ok(vec![Message::user("count")])
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        if self.task["panic_step"] == json!(true) {
            panic!("environment bug");
        }
        self.said += 1;
        let target = self.task["n"].as_u64().unwrap_or(1) as u32;
        let info = json!({ "said": action.text });
        if self.said >= target {
            Ok(Step::terminated(info))
        } else {
            Ok(Step::running(vec![Message::user(format!("{} more", target - self.said))], info))
        }
    }
}

fn tasks() -> VecTasks {
    let t = |id: &str, data: Value| Task::new(id, data);
    VecTasks {
        train: vec![
            t("ok1", json!({"n": 1})),
            t("ok3", json!({"n": 3})),
            t("reset", json!({"n": 1, "fail_reset": true})),
            t("step", json!({"n": 2, "panic_step": true})),
            t("badreward", json!({"n": 1, "reward_panics": true})),
            t("long", json!({"n": 10})),
        ],
        test: vec![],
    }
}

fn spec() -> EnvSpec {
    EnvSpec::new(Arc::new(tasks()), || Ok(Counter { task: Value::Null, said: 0 }), "test/none")
        .with_gold(|_, msgs| Ok(format!("turn {}", msgs.len())))
}

fn rubric() -> Arc<Rubric> {
    Arc::new(
        Rubric::new()
            .term("turns", 1.0, |task: &Task, tr: &Trajectory| {
                if task.data["reward_panics"] == json!(true) {
                    panic!("verifier bug");
                }
                Ok(Reward::from(tr.turns() as f64))
            })
            .metric("tokens", |_: &Task, tr: &Trajectory| Ok(Reward::from(tr.tokens.len() as f64))),
    )
}

fn policy() -> Box<dyn Policy> {
    let gold: GoldPlayer = Arc::new(|_: &Task, msgs: &[Message]| Ok(format!("turn {}", msgs.len())));
    Box::new(
        rlvr::policies::scripted::Scripted::new(
            rlvr::policies::scripted::ScriptedConfig { accuracy: 1.0, ..Default::default() },
            gold,
        )
        .unwrap(),
    )
}

fn run(workers: usize) -> Rollout {
    let runner = Runner::new(workers);
    let all: Vec<(u64, Task)> = tasks().train.into_iter().enumerate().map(|(i, t)| (i as u64, t)).collect();
    let cfg = RolloutConfig { group_size: 3, max_turns: 4, max_tokens: 4096, max_new_tokens: 64 };
    runner.rollout(policy().as_mut(), &spec(), &rubric(), all, &cfg, Sampling { seed: 99, greedy: false }).unwrap()
}

#[test]
fn failures_are_counted_and_kept_apart_while_the_rest_finish() {
    let r = run(2);
    let s = &r.stats;
    assert_eq!(s.episodes, 18);
    assert_eq!(s.failed, 6, "3 failed resets + 3 panicking steps");
    assert_eq!(s.verifier_errors, 3, "3 episodes whose weighted term panicked");
    assert_eq!(s.truncated, 3, "the 10-turn task is cut at max_turns = 4");

    let by_id = |id: &str| r.groups.iter().find(|g| g.task.id == id).unwrap();
    for smp in &by_id("reset").samples {
        assert!(
            matches!(&smp.outcome, Outcome::Failed { stage: Stage::Reset, error } if error == "database unavailable")
        );
    }
    for smp in &by_id("step").samples {
        assert!(
            matches!(&smp.outcome, Outcome::Failed { stage: Stage::Step, error } if error == "panicked: environment bug")
        );
    }
    for smp in &by_id("badreward").samples {
        let Outcome::Scored(sc) = &smp.outcome else { panic!("scored") };
        assert_eq!(sc.terms[0].value, Err("panicked: verifier bug".to_string()));
        assert!(sc.get("tokens").unwrap() > 0.0, "other terms are still computed");
        assert_eq!(smp.reward(), None);
    }
    for smp in &by_id("ok3").samples {
        assert_eq!(smp.reward(), Some(3.0));
        assert_eq!(smp.trajectory.status, Status::Terminated);
        // Prompt, then (assistant, env) x 2, then the final assistant message.
        assert_eq!(smp.trajectory.messages.len(), 6);
        assert_eq!(smp.trajectory.steps.len(), 3);
    }
    for smp in &by_id("long").samples {
        assert_eq!(smp.trajectory.status, Status::Truncated);
        assert_eq!(smp.trajectory.truncated_by.as_deref(), Some("max_turns"));
        assert_eq!(smp.reward(), Some(4.0), "a truncated episode is still scored");
    }
}

#[test]
fn loss_mask_covers_exactly_the_policy_tokens() {
    let r = run(1);
    for g in &r.groups {
        for smp in &g.samples {
            let t = &smp.trajectory;
            assert_eq!(t.tokens.len(), t.loss_mask.len());
            assert_eq!(t.tokens.len(), t.logprobs.len());
            let said: usize = t.assistant_messages().map(|m| m.content.len()).sum();
            assert_eq!(t.policy_tokens(), said, "scripted tokens are the bytes of what it said");
        }
    }
}

#[test]
fn token_limit_truncates() {
    let runner = Runner::new(1);
    let cfg = RolloutConfig { group_size: 1, max_turns: 50, max_tokens: 60, max_new_tokens: 64 };
    let task = (5u64, tasks().train[5].clone());
    let r = runner
        .rollout(policy().as_mut(), &spec(), &rubric(), vec![task], &cfg, Sampling { seed: 1, greedy: false })
        .unwrap();
    let t = &r.groups[0].samples[0].trajectory;
    assert_eq!(t.truncated_by.as_deref(), Some("max_tokens"));
    assert!(t.tokens.len() <= 60 + 64);
}

#[test]
fn results_do_not_depend_on_worker_count() {
    let (a, b) = (run(1), run(2));
    assert_eq!(a.groups, b.groups);
}

/// A policy that cannot answer one request (a remote server's error after its retries) fails
/// that rollout, at the `generate` stage, and the others of the batch go on.
#[test]
fn a_request_the_policy_could_not_answer_fails_only_its_rollout() {
    struct Flaky(Box<dyn Policy>);
    impl Policy for Flaky {
        fn encode(&self, messages: &[Message], first: bool) -> Result<Vec<u32>, PolicyError> {
            self.0.encode(messages, first)
        }
        fn generate(&mut self, batch: &[GenRequest<'_>]) -> Result<Vec<Action>, PolicyError> {
            let mut out = self.0.generate(batch)?;
            for (a, r) in out.iter_mut().zip(batch) {
                // The second turn of the three-turn task is lost.
                if r.task.id == "ok3" && r.messages.len() > 2 {
                    *a = Action::failed("HTTP 503 after 3 tries");
                }
            }
            Ok(out)
        }
    }
    let runner = Runner::new(2);
    let all: Vec<(u64, Task)> = tasks().train.into_iter().enumerate().map(|(i, t)| (i as u64, t)).collect();
    let cfg = RolloutConfig { group_size: 2, max_turns: 4, max_tokens: 4096, max_new_tokens: 64 };
    let mut policy = Flaky(policy());
    let r = runner.rollout(&mut policy, &spec(), &rubric(), all, &cfg, Sampling { seed: 1, greedy: false }).unwrap();
    let by_id = |id: &str| r.groups.iter().find(|g| g.task.id == id).unwrap();
    for smp in &by_id("ok3").samples {
        assert!(
            matches!(&smp.outcome, Outcome::Failed { stage: Stage::Generate, error } if error == "HTTP 503 after 3 tries"),
            "{:?}",
            smp.outcome
        );
    }
    for smp in &by_id("ok1").samples {
        assert_eq!(smp.reward(), Some(1.0));
    }
    assert_eq!(r.stats.failed, 2 * 3, "ok3's two, and the failed resets and steps as before");
}

/// Prefix-RFT's hybrid rollouts: the guide's prefix is written into the first turn, the policy
/// continues it with what is left of the budget, the environment sees the whole answer, and the
/// trajectory marks the prefix's tokens as forced (no loss mask). A guide error, or a prefix
/// that leaves nothing to continue, fails only that rollout.
#[test]
fn a_guided_first_turn_continues_a_forced_prefix() {
    /// Text as bytes; answers "!" and remembers what it was asked.
    #[derive(Default)]
    struct Bytes {
        asked: Vec<(Vec<u32>, usize)>,
    }
    impl Policy for Bytes {
        fn encode(&self, messages: &[Message], _first: bool) -> Result<Vec<u32>, PolicyError> {
            Ok(messages.iter().flat_map(|m| m.content.bytes().map(u32::from)).collect())
        }
        fn encode_text(&self, text: &str) -> Result<Vec<u32>, PolicyError> {
            Ok(text.bytes().map(u32::from).collect())
        }
        fn generate(&mut self, batch: &[GenRequest<'_>]) -> Result<Vec<Action>, PolicyError> {
            self.asked.extend(batch.iter().map(|r| (r.context.to_vec(), r.max_new_tokens)));
            Ok(batch
                .iter()
                .map(|_| Action { text: "!".into(), tokens: vec![33], logprobs: vec![-0.5], failed: None })
                .collect())
        }
    }
    let guide = |task: &Task, prompt: &[Message], sample: u32| -> Result<Option<String>, String> {
        assert_eq!(prompt[0].content, "count", "the guide sees the opening");
        match (task.id.as_str(), sample) {
            ("step", _) => Err("no gold answer".into()),
            ("long", 0) => Ok(Some("x".repeat(8))),
            (_, 0) => Ok(Some("ab".into())),
            _ => Ok(None),
        }
    };
    let all: Vec<(u64, Task)> = tasks().train.into_iter().enumerate().map(|(i, t)| (i as u64, t)).collect();
    let cfg = RolloutConfig { group_size: 2, max_turns: 4, max_tokens: 4096, max_new_tokens: 8 };
    let mut policy = Bytes::default();
    let r = Runner::new(2)
        .rollout_guided(
            &mut policy,
            &spec(),
            &rubric(),
            all,
            &cfg,
            Sampling { seed: 1, greedy: false },
            Some(&guide as &Guide<'_>),
        )
        .unwrap();
    let by_id = |id: &str| r.groups.iter().find(|g| g.task.id == id).unwrap();

    let guided = &by_id("ok3").samples[0].trajectory;
    let said: Vec<&str> = guided.assistant_messages().map(|m| m.content.as_str()).collect();
    assert_eq!(said, ["ab!", "!", "!"], "only the first turn is guided");
    assert_eq!(guided.steps[0]["said"], "ab!", "the environment sees the whole answer");
    let prompt = "count".len();
    assert_eq!(&guided.tokens[prompt..prompt + 3], &[97, 98, 33]);
    assert_eq!(guided.forced.len(), guided.tokens.len());
    let forced: Vec<usize> = (0..guided.tokens.len()).filter(|&i| guided.is_forced(i)).collect();
    assert_eq!(forced, [prompt, prompt + 1]);
    assert!(forced.iter().all(|&i| !guided.loss_mask[i] && guided.logprobs[i] == 0.0));
    assert!(guided.loss_mask[prompt + 2] && guided.logprobs[prompt + 2] == -0.5);
    assert_eq!(guided.policy_tokens(), 3, "forced tokens are not the policy's");
    // The policy was asked to continue the prefix, with the budget less the prefix.
    assert!(policy.asked.contains(&(b"countab".iter().map(|&b| u32::from(b)).collect(), 6)));

    let alone = &by_id("ok3").samples[1].trajectory;
    assert!(alone.forced.is_empty() && alone.forced_tokens() == 0);
    assert_eq!(alone.assistant_messages().next().unwrap().content, "!");

    let failed = |id: &str, sample: usize| match &by_id(id).samples[sample].outcome {
        Outcome::Failed { stage: Stage::Prefix, error } => error.clone(),
        other => panic!("{id} sample {sample}: {other:?}"),
    };
    assert_eq!(failed("step", 0), "no gold answer");
    assert_eq!(failed("step", 1), "no gold answer", "the guide is asked for every sample; it says which to guide");
    assert!(failed("long", 0).contains("the forced prefix is 8 tokens and the turn may hold 8"));
    assert!(by_id("long").samples[1].reward().is_some(), "the unguided sample of the same task runs");
    // Guided: sample 0 of ok1, ok3, badreward (the reset of "reset" failed before any turn).
    assert_eq!((r.stats.guided, r.stats.forced_tokens), (3, 6));
}
