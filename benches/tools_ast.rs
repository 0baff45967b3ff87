//! Parse + verify throughput of `tools/ast-match` on one core.
//!
//! Reads `rlvr score`-style lines (`{"task": {...}, "completion": "..."}`), default the BFCL
//! fixture, and times [`ast_verdict`] (parse the completion, run BFCL's checker) over every line,
//! repeated for `--seconds` (default two). Prints one JSON object with each line's verdict
//! and the rates, for `benches/tools_ast_vs_bfcl.py` to compare with BFCL's Python checker.
//!
//! `cargo bench --bench tools_ast --no-default-features --features tools -- [CASES.jsonl] [--seconds S]`

use rlvr::envs::tools::reward::ast_verdict;
use rlvr_engine::Task;
use serde_json::{Value, json};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; a number after `--seconds` is the timed duration.
    let seconds: f64 = match args.iter().position(|a| a == "--seconds") {
        Some(i) => args.get(i + 1).and_then(|s| s.parse().ok()).expect("--seconds takes a number"),
        None => 2.0,
    };
    let path = args
        .iter()
        .enumerate()
        .find(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--seconds"))
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/envs/src/tools/fixture/bfcl/cases.jsonl").into());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let cases: Vec<(Task, String)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let v: Value = serde_json::from_str(l).expect("a JSON line");
            (Task::new(i.to_string(), v["task"].clone()), v["completion"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    let mut verdicts = Vec::with_capacity(cases.len());
    let mut calls = 0usize;
    for (task, completion) in &cases {
        let (c, m) = ast_verdict(task, completion).expect("fixture tasks are well formed");
        calls += c.len();
        verdicts.push(m.map_or("valid".to_string(), |m| m.bfcl_error_type.to_string()));
    }
    let start = Instant::now();
    let mut passes = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        for (task, completion) in &cases {
            black_box(ast_verdict(black_box(task), black_box(completion)).ok());
        }
        passes += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let n = (cases.len() as u64 * passes) as f64;
    println!(
        "{}",
        json!({
            "impl": "rlvr",
            "cases": cases.len(),
            "calls_per_pass": calls,
            "passes": passes,
            "seconds": secs,
            "cases_per_s": n / secs,
            "calls_per_s": (calls as u64 * passes) as f64 / secs,
            "verdicts": verdicts,
        })
    );
}
