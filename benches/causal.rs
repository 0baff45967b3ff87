//! Causal-query throughput: tasks generated per second on every core (network, query, exact
//! answer, prompt and JSON line), and exact queries answered per second by level on one core, from
//! task JSON (parse, validate, build the mutilated or twin network, eliminate) and on
//! prebuilt models.
//!
//! Alone:        cargo bench --bench causal --no-default-features --features causal -- [--n 1000] [--generate 100000]
//! Side by side: python3 benches/causal_pgmpy.py (runs this with --out, then pgmpy on the same tasks)
//!
//! Prints a human summary, then one JSON line starting with `RESULT ` for scripts.

use rlvr::engine::Split;
use rlvr::envs::causal::query::{Level, Query};
use rlvr::envs::causal::{CausalConfig, Generator, answer, export, infer, network::Network};
use serde_json::{Value, json};
use std::hint::black_box;
use std::io::Write;
use std::time::Instant;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// Runs `f` over all items repeatedly for at least `min_s` seconds; returns items per second.
fn per_second<T>(items: &[T], min_s: f64, mut f: impl FnMut(&T)) -> f64 {
    let start = Instant::now();
    let mut done = 0usize;
    loop {
        for it in items {
            f(it);
        }
        done += items.len();
        let s = start.elapsed().as_secs_f64();
        if s >= min_s {
            return done as f64 / s;
        }
    }
}

fn main() -> Result<(), rlvr::engine::BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = arg(&args, "--n").map_or(Ok(1000), |s| s.parse())?;
    let generate: u64 = arg(&args, "--generate").map_or(Ok(100_000), |s| s.parse())?;
    let seed: u64 = arg(&args, "--seed").map_or(Ok(0), |s| s.parse())?;
    let out = arg(&args, "--out");

    let start = Instant::now();
    let summary = export::export(CausalConfig::default(), seed, Split::Train, None, generate, &mut std::io::sink())?;
    let gen_s = start.elapsed().as_secs_f64();
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(16);
    println!(
        "generated {generate} tasks (distinct graphs, JSON lines) on {threads} threads in {gen_s:.2} s: {:.0} tasks/s",
        generate as f64 / gen_s
    );
    println!("{}", summary.table());

    let generator = Generator::new(CausalConfig::default(), seed)?;
    let mut file = out.as_ref().map(std::fs::File::create).transpose()?.map(std::io::BufWriter::new);
    let mut levels = serde_json::Map::new();
    for level in Level::ALL {
        let tasks = export::distinct(&generator, Split::Test, Some(level), n)?;
        if let Some(f) = file.as_mut() {
            for t in &tasks {
                serde_json::to_writer(&mut *f, &t.data)?;
                f.write_all(b"\n")?;
            }
        }
        let pairs: Vec<(Value, Value)> =
            tasks.iter().map(|t| (t.data["network"].clone(), t.data["query"].clone())).collect();
        let from_json = per_second(&pairs, 1.0, |(net, q)| {
            black_box(answer::solve(net, q).expect("generated tasks are valid"));
        });
        let built: Vec<_> = tasks
            .iter()
            .map(|t| {
                let model = Network::from_json(&t.data["network"]).unwrap().compile().unwrap();
                let q: Query = serde_json::from_value(t.data["query"].clone()).unwrap();
                let r = q.resolve(&model).unwrap();
                (model, r)
            })
            .collect();
        let prebuilt = per_second(&built, 1.0, |(m, r)| {
            black_box(infer::answer(m, r).expect("generated tasks are valid"));
        });
        let mean_difficulty = tasks.iter().map(|t| t.difficulty as f64).sum::<f64>() / tasks.len() as f64;
        println!(
            "{:<15} {n} queries, mean difficulty {mean_difficulty:.2}: {from_json:>9.0} /s from JSON, {prebuilt:>9.0} /s on prebuilt models",
            level.name()
        );
        levels.insert(
            level.name().into(),
            json!({ "from_json_per_s": from_json, "prebuilt_per_s": prebuilt, "mean_difficulty": mean_difficulty }),
        );
    }
    if let Some(mut f) = file {
        f.flush()?;
    }
    let result = json!({ "generate_tasks_per_s": generate as f64 / gen_s, "generate_threads": threads, "levels": levels, "n": n });
    println!("RESULT {result}");
    Ok(())
}
