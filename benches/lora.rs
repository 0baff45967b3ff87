//! LoRA and gradient checkpointing against full fine-tuning: one GRPO update of
//! SmolLM2-135M-Instruct on 16 sequences of 128 tokens (32 of prompt, 96 sampled), its time, the
//! optimiser state it keeps and the peak memory of the process.
//!
//! Run one variant per process, since peak memory only grows:
//! `cargo bench --bench lora -- full`, `cargo bench --bench lora -- lora [RANK]` (default rank
//! 16, all seven projections, alpha = 2 x rank) and `cargo bench --bench lora -- checkpointing`
//! (full fine-tuning with `gradient_checkpointing = true`). The update is `Trainer::update` with GRPO's
//! defaults (a no-grad scoring pass for the old log-probs, then one forward and backward over the
//! batch, then AdamW); the first update is a warm-up and the best of the next two is reported.
//! Rewards alternate within each group of 8, so every row carries loss. SmolLM2's GGUF is
//! fetched at first use, as `preset:smollm2` is. `RLVR_BENCH_DEVICE` picks another device
//! (`tch-cpu` with `--features tch`).

use rlvr::engine::{Group, Outcome, Reward, Rubric, Sample, Status, Task, Trajectory};
use rlvr::policies::algo::lora::{LoraConfig, adapter_weights};
use rlvr::policies::algo::{TrainConfig, Trainer};
use rlvr::policies::burn::module::Module;
use rlvr::policies::lm::{LmPolicy, load_checkpoint, smollm2_gguf};
use rlvr::policies::sample::SamplingConfig;
use std::sync::Arc;
use std::time::Instant;

mod common;
use common::peak_rss_mib;

fn main() {
    rlvr::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let variant = args.first().map_or("lora", String::as_str).to_string();
    let rank: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(16);
    let device = common::bench_device();
    let (model, tokenizer, template) = load_checkpoint(&smollm2_gguf().expect("SmolLM2"), &device).expect("load");
    let vocab = model.config().vocab_size as u32;
    let mut policy = LmPolicy::new(model, tokenizer, template, SamplingConfig::default(), vec![]).expect("policy");
    match variant.as_str() {
        "full" => {}
        "checkpointing" => policy.gradient_checkpointing = true,
        "lora" => {
            let config = LoraConfig { rank, alpha: 2.0 * rank as f64, ..LoraConfig::default() };
            policy = policy.with_lora(config, 0).expect("lora");
        }
        other => panic!("unknown variant {other:?}: full, checkpointing or lora"),
    }
    let trainable: usize = match &policy.lora {
        Some(l) => adapter_weights(&l.model).expect("adapter").0.values().map(|t| t.data.len()).sum(),
        None => policy.model.num_params(),
    };
    let rubric = |win: bool| Rubric::new().term("r", 1.0, move |_: &Task, _: &Trajectory| Ok(Reward::from(win)));
    let task = Arc::new(Task::new("t", serde_json::json!({})));
    let prompt: Vec<u32> = (0..32).map(|i| 1000 + i * 37 % vocab).collect();
    let groups: Vec<Group> = (0..2)
        .map(|g| {
            let samples = (0..8)
                .map(|i| {
                    let answer: Vec<u32> = (0..96).map(|j| (2000 + 131 * (g * 8 + i) + 7 * j) % vocab).collect();
                    let mut tr = Trajectory { status: Status::Terminated, ..Trajectory::default() };
                    tr.push_context(&prompt);
                    tr.push_sampled(&answer, &vec![-1.0; answer.len()]);
                    let outcome = Outcome::Scored(rubric(i % 2 == 0).score(&task, &tr));
                    Sample { sample_index: i, seed: 0, trajectory: tr, outcome }
                })
                .collect();
            Group { task_index: g as u64, task: task.clone(), samples }
        })
        .collect();
    let config = TrainConfig { lr: 1e-5, ..TrainConfig::default() };
    let mut trainer = Trainer::new(config, &mut policy, 96, 96).expect("trainer");
    let mut times = Vec::new();
    for it in 0..3 {
        let t = Instant::now();
        let m = trainer.update(&mut policy, &groups, it).expect("update");
        times.push(t.elapsed().as_secs_f64());
        assert_eq!(m["train/rows"], 16.0);
    }
    // The merge generation uses, redone after every update under LoRA.
    let merge = policy.lora.as_ref().map(|l| {
        let t = Instant::now();
        drop(l.model.clone().materialize());
        t.elapsed().as_secs_f64()
    });
    let dir = tempfile::tempdir().expect("tmp");
    trainer.save(dir.path()).expect("save");
    let state = std::fs::metadata(dir.path().join("optimizer.bpk")).map(|m| m.len()).unwrap_or(0);
    let best = times[1..].iter().copied().fold(f64::MAX, f64::min);
    println!(
        "lora bench {variant}{}: update of 16 x 128 tokens {best:.2} s (first {:.2} s); trainable parameters {trainable}; \
         optimiser state {:.1} MiB; merge {}; peak rss {:.0} MiB",
        if variant == "lora" { format!(" rank {rank}") } else { String::new() },
        times[0],
        state as f64 / (1 << 20) as f64,
        merge.map_or("none".into(), |s| format!("{:.0} ms", s * 1e3)),
        peak_rss_mib(),
    );
}
