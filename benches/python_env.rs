//! A Python environment step through the sandbox vs the same environment written in Rust: the
//! letters environment of `examples/python-env/letters.py` (and its Rust twin below), episodes of
//! `reset`, a wrong answer, the right answer, at 1 and 2 threads. Prints one JSON object per line
//! (for `benches/python_env_native.py`, which runs the same file natively in CPython and prints
//! the ratios).
//!
//! Run: `cargo bench --bench python_env --no-default-features --features code -- [N]`
//! (N episodes per thread, default 300).
//!
//! - `steps_per_s`: `step` calls per second of time spent in `step`, summed over threads.
//! - `episodes_per_s`: whole episodes per wall-clock second (a Python episode pays for its fresh
//!   interpreter and the file's loading in `reset`).

use rlvr::engine::{Action, EnvError, EnvSpec, Environment, Message, Split, Status, Step, Task};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python-env/letters.py");

/// `letters.py`, in Rust.
struct Letters {
    count: String,
    tries: u32,
}

impl Environment for Letters {
    fn reset(&mut self, task: &Task, _seed: u64) -> Result<Vec<Message>, EnvError> {
        let (word, letter) = (task.str_field("word")?, task.str_field("letter")?);
        self.count = task.data["count"].to_string();
        self.tries = 0;
        Ok(vec![Message::user(format!(
            "How many times does '{letter}' occur in \"{word}\"? Answer with the number only."
        ))])
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        self.tries += 1;
        let done = action.text.trim() == self.count || self.tries == 2;
        let info = json!({ "tries": self.tries });
        Ok(if done { Step::terminated(info) } else { Step::running(vec![Message::user("No, try again.")], info) })
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs `n` episodes on each of `threads` threads; prints the line for `name`.
fn measure(name: &str, spec: &EnvSpec, tasks: &[Task], n: usize, threads: usize) {
    let wall = Instant::now();
    let per_thread: Vec<(Vec<f64>, Vec<f64>)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let (mut resets, mut steps) = (Vec::new(), Vec::new());
                    for i in 0..n {
                        let task = &tasks[(i + t) % tasks.len()];
                        let mut env = (spec.make)().expect("make");
                        let c = Instant::now();
                        env.reset(task, i as u64).expect("reset");
                        resets.push(c.elapsed().as_secs_f64());
                        for answer in ["many".to_string(), task.data["count"].to_string()] {
                            let c = Instant::now();
                            let s = env.step(&Action::text(answer)).expect("step");
                            steps.push(c.elapsed().as_secs_f64());
                            if s.status == Status::Terminated {
                                break;
                            }
                        }
                    }
                    (resets, steps)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let secs = wall.elapsed().as_secs_f64();
    let steps_per_s: f64 = per_thread.iter().map(|(_, s)| s.len() as f64 / s.iter().sum::<f64>()).sum();
    let steps: Vec<f64> = per_thread.iter().flat_map(|(_, s)| s.iter().map(|x| x * 1e3)).collect();
    let resets: Vec<f64> = per_thread.iter().flat_map(|(r, _)| r.iter().map(|x| x * 1e3)).collect();
    println!(
        "{{\"impl\": \"{name}\", \"threads\": {threads}, \"episodes\": {}, \"steps\": {}, \"steps_per_s\": {steps_per_s:.1}, \
         \"episodes_per_s\": {:.1}, \"step_median_ms\": {:.5}, \"reset_median_ms\": {:.5}}}",
        resets.len(),
        steps.len(),
        resets.len() as f64 / secs,
        median(steps),
        median(resets),
    );
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(300);
    let registry = rlvr::builtin_registry();
    let config = toml::from_str(&format!("path = {FILE:?}")).expect("config");
    let t = Instant::now();
    let python = registry.make_env("python/env-v0", &config, 0).expect("python/env-v0");
    eprintln!("python/env-v0 built in {:.2} s", t.elapsed().as_secs_f64());
    let tasks: Vec<Task> = (0..python.tasks.len(Split::Train).unwrap_or(0))
        .map(|i| python.tasks.task(Split::Train, i).expect("task"))
        .collect();
    let rust = EnvSpec::new(
        Arc::new(rlvr::engine::VecTasks { train: tasks.clone(), test: vec![] }),
        || Ok(Letters { count: String::new(), tries: 0 }),
        "none",
    );
    for threads in [1, 2] {
        measure("rust", &rust, &tasks, n * 100, threads);
        measure("sandbox", &python, &tasks, n, threads);
    }
}
