//! Runner throughput: rollouts per second of the arithmetic environment with the scripted
//! policy at 1 and 2 worker threads, and the runner's overhead per environment step.
//!
//! `cargo bench --bench runner`. The overhead case uses an environment whose step does nothing
//! and a policy that answers instantly, so what it measures is the runner itself: dispatching
//! each step to a worker, collecting it, batching the next `generate`, and scoring.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rlvr::engine::*;
use std::hint::black_box;
use std::sync::Arc;

const TASKS: u64 = 64;
const GROUP: u32 = 8;

fn arith(c: &mut Criterion) {
    let registry = rlvr::builtin_registry();
    let env = registry.make_env("arith/arith-v0", &Config::new(), 0).unwrap();
    let rubric = Arc::new(registry.make_reward(&env.default_reward, &env.default_reward_config).unwrap());
    let ctx = PolicyContext { seed: 0, gold: env.gold.clone() };
    let mut policy = registry.make_policy("scripted/gold-v0", &Config::new(), &ctx).unwrap();
    let tasks: Vec<(u64, Task)> = (0..TASKS).map(|i| (i, env.tasks.task(Split::Train, i).unwrap())).collect();
    let cfg = RolloutConfig { group_size: GROUP, ..RolloutConfig::default() };

    let mut g = c.benchmark_group("runner/arith");
    g.throughput(Throughput::Elements(TASKS * u64::from(GROUP)));
    for workers in [1, 2] {
        let runner = Runner::new(workers);
        g.bench_function(format!("rollouts/{workers}-workers"), |b| {
            b.iter(|| {
                let r = runner
                    .rollout(policy.as_mut(), &env, &rubric, tasks.clone(), &cfg, Sampling { seed: 1, greedy: false })
                    .unwrap();
                black_box(r.stats.episodes)
            })
        });
    }
    g.finish();
}

/// Ends after `turns` steps; does nothing else.
struct Idle {
    left: u32,
}

impl Environment for Idle {
    fn reset(&mut self, _task: &Task, _seed: u64) -> Result<Vec<Message>, EnvError> {
        Ok(vec![Message::user("go")])
    }

    fn step(&mut self, _action: &Action) -> Result<Step, EnvError> {
        self.left -= 1;
        Ok(if self.left == 0 {
            Step::terminated(serde_json::Value::Null)
        } else {
            Step::running(Vec::new(), serde_json::Value::Null)
        })
    }
}

/// Answers "." to everything at no cost.
struct Instant;

impl Policy for Instant {
    fn encode(&self, _m: &[Message], _first: bool) -> Result<Vec<u32>, PolicyError> {
        Ok(vec![1])
    }

    fn generate(&mut self, batch: &[GenRequest<'_>]) -> Result<Vec<Action>, PolicyError> {
        Ok(batch
            .iter()
            .map(|_| Action { text: ".".into(), tokens: vec![2], logprobs: vec![0.0], failed: None })
            .collect())
    }
}

fn overhead(c: &mut Criterion) {
    const TURNS: u32 = 8;
    let tasks = VecTasks {
        train: (0..TASKS).map(|i| Task::new(i.to_string(), serde_json::Value::Null)).collect(),
        test: vec![],
    };
    let env = EnvSpec::new(Arc::new(tasks.clone()), || Ok(Idle { left: TURNS }), "none");
    let rubric = Arc::new(Rubric::new().term("one", 1.0, |_: &Task, _: &Trajectory| Ok(Reward::from(1.0))));
    let tasks: Vec<(u64, Task)> = tasks.train.into_iter().enumerate().map(|(i, t)| (i as u64, t)).collect();
    let cfg = RolloutConfig { group_size: GROUP, max_turns: TURNS, ..RolloutConfig::default() };
    let mut g = c.benchmark_group("runner/overhead");
    // One element per environment step: time per element is the runner's cost per step.
    g.throughput(Throughput::Elements(TASKS * u64::from(GROUP) * u64::from(TURNS)));
    for workers in [1, 2] {
        let runner = Runner::new(workers);
        g.bench_function(format!("steps/{workers}-workers"), |b| {
            b.iter(|| {
                let r = runner
                    .rollout(&mut Instant, &env, &rubric, tasks.clone(), &cfg, Sampling { seed: 1, greedy: false })
                    .unwrap();
                assert_eq!(r.stats.steps, (TASKS * u64::from(GROUP) * u64::from(TURNS)) as usize);
                black_box(r.stats.steps)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, arith, overhead);
criterion_main!(benches);
