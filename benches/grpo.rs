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
//!
//! `--model PATH` (a GGUF file, an HF directory or `preset:smollm2`) times the same iteration on that checkpoint
//! instead, the shape TRL's `GRPOTrainer` is compared on (`benches/grpo_trl.py`, run by
//! `scripts/gpu-check.sh`): `--rows N` rows in groups of 8 (default 128), all of the prompt
//! `--prompt TEXT` tokenized by the checkpoint's tokenizer, up to `--new N` new tokens each
//! (default 128), sampling at temperature 1, stopping at the tokenizer's end tokens; one warm-up
//! and two timed rounds of generate and update (the first round on a GPU pays for kernel
//! selection and allocator growth). It prints one JSON line. `--export DIR` writes the loaded
//! checkpoint as an HF directory (f32) and exits, so the peer loads the same weights.

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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let device = common::bench_device();
    if let Some(path) = flag(&args, "--model") {
        checkpoint(&args, &path, &device);
        return;
    }
    let parts: Vec<String> = args.iter().filter(|a| !a.starts_with('-')).cloned().collect();
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
        let groups = groups(&prompt, &out);
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

/// The value after `name` in `args`.
fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// Groups of 8 samples of `prompt` whose rewards alternate (1, 0, 1, 0, ...), so every group has
/// signal and every row carries loss.
fn groups(prompt: &[u32], out: &[rlvr::policies::generate::Generated]) -> Vec<Group> {
    let rubric = |win: bool| Rubric::new().term("r", 1.0, move |_: &Task, _: &Trajectory| Ok(Reward::from(win)));
    let task = Arc::new(Task::new("t", serde_json::json!({})));
    out.chunks(8)
        .enumerate()
        .map(|(g, chunk)| {
            let samples = chunk
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    let mut tr = Trajectory { status: Status::Terminated, ..Trajectory::default() };
                    tr.push_context(prompt);
                    tr.push_sampled(&o.tokens, &o.logprobs);
                    let outcome = Outcome::Scored(rubric(i % 2 == 0).score(&task, &tr));
                    Sample { sample_index: i as u32, seed: 0, trajectory: tr, outcome }
                })
                .collect();
            Group { task_index: g as u64, task: task.clone(), samples }
        })
        .collect()
}

/// `--model PATH`: one GRPO iteration on a checkpoint, as the module documentation says.
fn checkpoint(args: &[String], path: &str, device: &rlvr::policies::burn::tensor::Device) {
    let number = |name: &str, default: usize| {
        flag(args, name).map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}: not a number: {v}")))
    };
    let (rows, max_new) = (number("--rows", 128), number("--new", 128));
    assert!(rows > 0 && rows % 8 == 0, "--rows must be a positive multiple of 8 (groups of 8)");
    let loaded = Instant::now();
    let file = match path {
        "preset:smollm2" => rlvr::policies::lm::smollm2_gguf().expect("SmolLM2's GGUF file"),
        other => std::path::PathBuf::from(other),
    };
    let (model, tokenizer, template) = rlvr::policies::lm::load_checkpoint(&file, device).expect("load the checkpoint");
    if let Some(dir) = flag(args, "--export") {
        rlvr::policies::lm::save_checkpoint(std::path::Path::new(&dir), &model, &tokenizer, &template).expect("export");
        return;
    }
    let load_s = loaded.elapsed().as_secs_f64();
    let text = flag(args, "--prompt").unwrap_or_else(|| "Once upon a time".into());
    let prompt = tokenizer.encode(&text).expect("tokenize the prompt");
    let mut policy = LmPolicy::new(model, tokenizer, template, SamplingConfig::default(), vec![]).expect("policy");
    let requests: Vec<Request<'_>> = (0..rows as u64)
        .map(|i| Request { context: &prompt, max_new_tokens: max_new, seed: i, greedy: false })
        .collect();
    let mut trainer = Trainer::new(
        TrainConfig { lr: 1e-4, clip_high: 0.28, ..TrainConfig::default() },
        &mut policy,
        max_new,
        max_new,
    )
    .expect("trainer");
    let (mut best_gen, mut best_update, mut best_iteration) = (f64::MAX, f64::MAX, f64::MAX);
    let (mut new_tokens, mut update_tokens, mut iteration_tokens) = (0, 0, 0);
    for round in 0..3 {
        let t = Instant::now();
        let out = generate(&policy.model, &policy.tokenizer, &policy.options, &requests).expect("generate");
        let gen_s = t.elapsed().as_secs_f64();
        let batch = groups(&prompt, &out);
        let t = Instant::now();
        let m = trainer.update(&mut policy, &batch, round).expect("update");
        let update_s = t.elapsed().as_secs_f64();
        if round == 0 {
            continue;
        }
        let sampled: usize = out.iter().map(|g| g.tokens.len()).sum();
        if sampled as f64 / gen_s > new_tokens as f64 / best_gen {
            (best_gen, new_tokens) = (gen_s, sampled);
        }
        let tokens = m["train/rows"] as usize * prompt.len() + sampled;
        if tokens as f64 / update_s > update_tokens as f64 / best_update {
            (best_update, update_tokens) = (update_s, tokens);
        }
        if sampled as f64 / (gen_s + update_s) > iteration_tokens as f64 / best_iteration {
            (best_iteration, iteration_tokens) = (gen_s + update_s, sampled);
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "model": path, "rows": rows, "prompt_tokens": prompt.len(), "max_new": max_new,
            "load_s": load_s, "new_tokens": new_tokens, "generate_s": best_gen,
            "update_tokens": update_tokens, "update_s": best_update,
            "iteration_tokens": iteration_tokens, "iteration_s": best_iteration,
            "peak_rss_mib": peak_rss_mib(),
        })
    );
}
