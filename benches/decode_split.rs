//! Three ways to run the projections of a batch-1 decoding step on burn-flex, and how fast each
//! streams the weights: how batch-1 decoding could use a second core (docs/policies.md, "Batch
//! 1"). The decoder runs them `whole`.
//!
//! Run: `cargo bench --bench decode_split` (`RAYON_NUM_THREADS=1` and `=2` to compare). The
//! shapes are SmolLM2-135M's seven projections per layer times its 30 layers (`[in, out]`
//! row-major f32 weights, as the model holds them), one input row; the embedding head is left
//! out. Each way is timed as the best of five passes over all 210 products (a "token") and
//! reported as ms per token and the weight bytes read per second:
//! - `whole`: one product per weight, as burn's `Linear` runs it (one thread below 192³
//!   multiply-adds);
//! - `columns`: the output columns in two halves side by side (`rayon::join`), each product
//!   reading half of every weight row;
//! - `inputs`: the input dimension in two halves side by side, summed: each half a contiguous
//!   block of the weight.
//!
//! The physical floor is the machine's read bandwidth (`benches/read_bandwidth.c`). The machine's
//! load decides these figures more than anything: run it on an idle machine, more than once.

use rlvr::policies::burn::tensor::{Device, Tensor, TensorData};
use std::time::Instant;

fn main() {
    let device = Device::flex();
    let shapes = [(576, 576), (576, 192), (576, 192), (576, 576), (576, 1536), (576, 1536), (1536, 576)];
    let layers = 30;
    let fill =
        |n: usize, seed: usize| -> Vec<f32> { (0..n).map(|j| ((j * 7 + seed) % 13) as f32 * 0.01 - 0.06).collect() };
    let weights: Vec<Tensor<2>> = (0..layers)
        .flat_map(|l| shapes.iter().map(move |&(i, o)| (l, i, o)))
        .map(|(l, i, o)| Tensor::from_data(TensorData::new(fill(i * o, l), [i, o]), &device))
        .collect();
    let inputs: Vec<Tensor<2>> =
        shapes.iter().map(|&(i, _)| Tensor::from_data(TensorData::new(fill(i, 3), [1, i]), &device)).collect();
    let bytes: usize = shapes.iter().map(|&(i, o)| i * o * 4).sum::<usize>() * layers;
    let product = |way: &str, x: &Tensor<2>, w: &Tensor<2>| -> Tensor<2> {
        let [inp, out] = w.dims();
        match way {
            "whole" => x.clone().matmul(w.clone()),
            "columns" => {
                let half = |start: usize, len: usize| x.clone().matmul(w.clone().narrow(1, start, len));
                let (a, b) = rayon::join(|| half(0, out / 2), || half(out / 2, out - out / 2));
                Tensor::cat(vec![a, b], 1)
            }
            _ => {
                let half =
                    |start: usize, len: usize| x.clone().narrow(1, start, len).matmul(w.clone().narrow(0, start, len));
                let (a, b) = rayon::join(|| half(0, inp / 2), || half(inp / 2, inp - inp / 2));
                a + b
            }
        }
    };
    println!("threads {}, {:.0} MB of weights per token", rayon::current_num_threads(), bytes as f64 / 1e6);
    let mut reference: Option<Vec<f32>> = None;
    for way in ["whole", "columns", "inputs"] {
        let mut best = f64::MAX;
        let mut sums = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            sums = weights
                .iter()
                .enumerate()
                .map(|(k, w)| product(way, &inputs[k % shapes.len()], w).sum().into_scalar::<f32>())
                .collect();
            best = best.min(started.elapsed().as_secs_f64());
        }
        // The three ways compute the same products (to rounding): a check that each did the work.
        let close = reference
            .get_or_insert_with(|| sums.clone())
            .iter()
            .zip(&sums)
            .all(|(a, b)| (a - b).abs() <= 1e-3 * (1.0 + a.abs()));
        assert!(close, "{way} disagrees with whole");
        println!("{way:8} {:6.2} ms/token {:5.1} GB/s", best * 1e3, bytes as f64 / best / 1e9);
    }
}
