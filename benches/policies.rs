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
//!
//! `--model PATH` (an HF directory, a GGUF file or `preset:smollm2`) runs the same parts on that
//! checkpoint's weights instead of `tiny`'s (prompt and sequences are the same token ids; no
//! stop token, so every row runs to the end), and `--new N` sets the new tokens (default 128).

use rlvr::policies::generate::{GenOptions, Request, generate, sequence_logprobs};
use rlvr::policies::model::{Model, ModelConfig};
use rlvr::policies::tokenizer::Tokenizer;
use std::time::Instant;

mod common;
use common::peak_rss_mib;

fn main() {
    // As the `rlvr` binary does, so the comparison times the product's setting.
    rlvr::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let values: Vec<&String> =
        ["--model", "--new"].iter().filter_map(|f| args.iter().position(|a| a == f)).map(|i| &args[i + 1]).collect();
    let parts: Vec<&String> = args.iter().filter(|a| !a.starts_with('-') && !values.contains(a)).collect();
    let wanted = |p: &str| parts.is_empty() || parts.iter().any(|a| *a == p);
    let device = common::bench_device();
    let checkpoint = flag("--model");
    let new: usize = flag("--new").map_or(128, |v| v.parse().expect("--new: a number"));
    let name = checkpoint.as_deref().map_or("tiny", |p| p.trim_end_matches('/').rsplit('/').next().unwrap_or(p));
    let load = |device: &rlvr::policies::burn::tensor::Device| match &checkpoint {
        None => Model::random(&ModelConfig::tiny(), 0, device).expect("tiny model"),
        Some(path) => {
            let file = match path.as_str() {
                "preset:smollm2" => rlvr::policies::lm::smollm2_gguf().expect("SmolLM2's GGUF file"),
                other => std::path::PathBuf::from(other),
            };
            rlvr::policies::lm::load_checkpoint(&file, device).expect("load the checkpoint").0
        }
    };
    let prompt: Vec<u32> = b"Question: what is 17 + 25? Answer:".iter().map(|&b| u32::from(b)).collect();
    for batch in [1usize, 16] {
        if !wanted(&format!("generate{batch}")) {
            continue;
        }
        let model = load(&device);
        let requests: Vec<Request<'_>> = (0..batch)
            .map(|i| Request { context: &prompt, max_new_tokens: new, seed: i as u64, greedy: false })
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
            "generate {name} batch={batch:>2} new={new}: {:>8.1} tokens/s ({tokens} tokens in {best:.3} s); peak rss {:.1} MiB",
            tokens as f64 / best,
            peak_rss_mib()
        );
    }
    if wanted("train") {
        let ad = device.autodiff();
        let model = load(&ad);
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
            "forward+backward {name} {n} tokens: {:>8.1} tokens/s ({best:.3} s); peak rss {:.1} MiB",
            n as f64 / best,
            peak_rss_mib()
        );
    }
}
