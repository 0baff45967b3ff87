//! Generation and training throughput of the burn policies on the flex CPU backend.
//!
//! Run: `cargo bench --bench policies` (release build). Prints, for the `tiny` preset:
//! generation tokens/s at batch 1 and 16 with 128 new tokens (KV cache, sampling at
//! temperature 1, no stop token), and forward+backward tokens/s of `sequence_logprobs` over
//! 4 x 256 tokens on an autodiff device; each the best of three after a warm-up run of the same
//! shape. Arguments `generate1`, `generate16` and `train` pick parts (default: all); each line
//! ends with the process's peak resident memory so far, which is the part's own peak when it
//! runs alone. The PyTorch side of the comparison is `benches/policies_torch.py`, which runs
//! this binary one part per process.

use rlvr::policies::generate::{GenOptions, Request, generate, sequence_logprobs};
use rlvr::policies::model::{Model, ModelConfig};
use rlvr::policies::tokenizer::Tokenizer;
use std::time::Instant;

mod common;
use common::peak_rss_mib;

fn main() {
    // As the `rlvr` binary does, so the comparison times the product's setting.
    rlvr::keep_freed_memory();
    let parts: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = |p: &str| parts.is_empty() || parts.iter().any(|a| a == p);
    let device = common::bench_device();
    let config = ModelConfig::tiny();
    let prompt: Vec<u32> = b"Question: what is 17 + 25? Answer:".iter().map(|&b| u32::from(b)).collect();
    for batch in [1usize, 16] {
        if !wanted(&format!("generate{batch}")) {
            continue;
        }
        let model = Model::random(&config, 0, &device).expect("tiny model");
        let requests: Vec<Request<'_>> = (0..batch)
            .map(|i| Request { context: &prompt, max_new_tokens: 128, seed: i as u64, greedy: false })
            .collect();
        let _ = generate(&model, &Tokenizer::Bytes, &GenOptions::default(), &requests).expect("generate");
        let mut best = f64::MAX;
        let mut tokens = 0;
        for _ in 0..3 {
            let t = Instant::now();
            let out = generate(&model, &Tokenizer::Bytes, &GenOptions::default(), &requests).expect("generate");
            best = best.min(t.elapsed().as_secs_f64());
            tokens = out.iter().map(|o| o.tokens.len()).sum::<usize>();
        }
        println!(
            "generate tiny batch={batch:>2} new=128: {:>8.1} tokens/s ({tokens} tokens in {best:.3} s); peak rss {:.1} MiB",
            tokens as f64 / best,
            peak_rss_mib()
        );
    }
    if wanted("train") {
        let ad = device.autodiff();
        let model = Model::random(&config, 0, &ad).expect("tiny model");
        let seqs: Vec<Vec<u32>> = (0..4).map(|r| (0..256).map(|i| ((i * 7 + r * 13) % 256) as u32).collect()).collect();
        let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
        let mut best = f64::MAX;
        for i in 0..4 {
            let t = Instant::now();
            let (lp, mask) = sequence_logprobs(&model, &refs).expect("logprobs");
            let loss = (lp * mask).sum().neg();
            let _grads = loss.backward();
            if i > 0 {
                best = best.min(t.elapsed().as_secs_f64());
            }
        }
        let n = seqs.len() * seqs[0].len();
        println!(
            "forward+backward tiny {n} tokens: {:>8.1} tokens/s ({best:.3} s); peak rss {:.1} MiB",
            n as f64 / best,
            peak_rss_mib()
        );
    }
}
