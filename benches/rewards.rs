//! Reward verifier speed and agreement on the bundled labelled set (or a JSONL file): the
//! numbers `rlvr bench-rewards` prints, without the CLI.
//!
//! Run: `cargo bench --bench rewards --no-default-features --features math -- [--json]
//! [--input FILE] [--threads N] [--min-time-ms MS] [ID ...]`
//! (ids default to the math and answer verifiers the bundled set targets). With `--json` it
//! prints the report as one JSON object, which `benches/rewards_vs_math_verify.py` reads.

use rlvr::rewards::bench::{self, BenchOptions};
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut json = false;
    let mut input = None;
    let mut opts = BenchOptions::default();
    let mut ids = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--input" => input = args.next(),
            "--threads" => opts.threads = args.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            "--min-time-ms" => {
                let ms = args.next().and_then(|n| n.parse().ok()).unwrap_or(500);
                opts.min_time = Duration::from_millis(ms);
            }
            id => ids.push(id.to_string()),
        }
    }
    if ids.is_empty() {
        ids = ["math/equivalence", "answer/numeric", "answer/exact", "answer/choice"].map(String::from).to_vec();
    }
    let text = match input {
        Some(path) => std::fs::read_to_string(&path).unwrap_or_else(|e| {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(2)
        }),
        None => bench::BUNDLED.to_string(),
    };
    let run = || -> Result<bench::BenchReport, bench::BenchError> {
        let rows = bench::load_rows(&text)?;
        bench::run(&rlvr::builtin_registry(), &ids, &rows, &opts)
    };
    match run() {
        Ok(report) if json => println!("{}", bench::to_json(&report)),
        Ok(report) => print!("{}", bench::render_table(&report)),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    }
}
