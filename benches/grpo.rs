//! One GRPO iteration's model work on the quickstart's shape, split: sampling the group answers
//! and the update (one forward and backward over the batch, whose detached log-probs are the old
//! ones, then AdamW).
//!
//! Run: `cargo bench --bench grpo` (release). Prints, for the `micro` and `tiny` presets, 16
//! prompts x 8 samples of up to 24 new tokens after a 33-token prompt (the quickstart's arith
//! prompt length), then one `Trainer::update` on those 128 rows with the quickstart's settings
//! (lr 1e-4, clip 0.2 / 0.28, everything else `TrainConfig::default()`), the best of three each.
//! Rewards alternate within each group (1, 0, 1, 0, ...), so every group has signal and all 128
//! rows carry loss, as in an iteration where the tasks are neither solved nor hopeless.
//! Arguments `micro` and `tiny` pick presets (default: both); each line ends with the process's
//! peak resident memory so far. Environment and scoring time are measured by the runner bench.
//! `RLVR_BENCH_DEVICE=tch-cpu` (with `--features tch`, see `scripts/test-tch.sh`) runs the same
//! work on libtorch's CPU backend instead of flex.
//! The PyTorch side of the comparison is `benches/grpo_torch.py`.

use rlvr::engine::{Group, Outcome, Reward, Rubric, Sample, Status, Task, Trajectory};
use rlvr::policies::algo::{TrainConfig, Trainer};
use rlvr::policies::generate::{Request, generate};
use rlvr::policies::lm::LmPolicy;
use rlvr::policies::model::{Model, ModelConfig};
use rlvr::policies::sample::SamplingConfig;
use rlvr::policies::tokenizer::{ChatTemplate, Tokenizer};
use std::sync::Arc;
use std::time::Instant;

mod common;
use common::peak_rss_mib;

fn main() {
    // As the `rlvr` binary does, so the comparison times the product's setting.
    rlvr::keep_freed_memory();
    let parts: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let device = common::bench_device();
    for (name, config) in [("micro", ModelConfig::micro()), ("tiny", ModelConfig::tiny())] {
        if !parts.is_empty() && !parts.iter().any(|p| p == name) {
            continue;
        }
        let model = Model::random(&config, 0, &device).expect("model");
        let mut policy =
            LmPolicy::new(model, Tokenizer::Bytes, ChatTemplate::chatml(), SamplingConfig::default(), vec![])
                .expect("policy");
        let prompt: Vec<u32> = (0..33).map(|i| 40 + i % 20).collect();
        let requests: Vec<Request<'_>> =
            (0..128).map(|i| Request { context: &prompt, max_new_tokens: 24, seed: i, greedy: false }).collect();
        let mut best_gen = f64::MAX;
        let mut out = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            out = generate(&policy.model, &policy.tokenizer, &policy.options, &requests).expect("generate");
            best_gen = best_gen.min(t.elapsed().as_secs_f64());
        }
        let new_tokens: usize = out.iter().map(|g| g.tokens.len()).sum();
        let rubric = |win: bool| Rubric::new().term("r", 1.0, move |_: &Task, _: &Trajectory| Ok(Reward::from(win)));
        let task = Arc::new(Task::new("t", serde_json::json!({})));
        let groups: Vec<Group> = out
            .chunks(8)
            .enumerate()
            .map(|(g, chunk)| {
                let samples = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, o)| {
                        let mut tr = Trajectory { status: Status::Terminated, ..Trajectory::default() };
                        tr.push_context(&prompt);
                        tr.push_sampled(&o.tokens, &o.logprobs);
                        let outcome = Outcome::Scored(rubric(i % 2 == 0).score(&task, &tr));
                        Sample { sample_index: i as u32, seed: 0, trajectory: tr, outcome }
                    })
                    .collect();
                Group { task_index: g as u64, task: task.clone(), samples }
            })
            .collect();
        let mut trainer =
            Trainer::new(TrainConfig { lr: 1e-4, clip_high: 0.28, ..TrainConfig::default() }, &mut policy, 24, 24)
                .expect("trainer");
        let mut best_update = f64::MAX;
        let mut rows = 0.0;
        for it in 0..3 {
            let t = Instant::now();
            let m = trainer.update(&mut policy, &groups, it).expect("update");
            best_update = best_update.min(t.elapsed().as_secs_f64());
            rows = m["train/rows"];
        }
        let total_tokens = rows as usize * prompt.len() + new_tokens;
        println!(
            "grpo {name}: generate {new_tokens} tokens in {best_gen:.3} s ({:.0} tokens/s); update on {rows} rows \
             ({total_tokens} tokens) in {best_update:.3} s ({:.0} tokens/s); iteration {:.0} sampled tokens/s; \
             peak rss {:.1} MiB",
            new_tokens as f64 / best_gen,
            total_tokens as f64 / best_update,
            new_tokens as f64 / (best_gen + best_update),
            peak_rss_mib(),
        );
    }
}
