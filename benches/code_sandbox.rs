//! Sandbox latency and throughput: fresh isolated executions at 1 and 2 threads, and warm
//! session turns. Prints one JSON object per line (for `benches/code_peers.py`, which runs the
//! Python peers on the same snippets and prints the side-by-side table).
//!
//! Run: `cargo bench --bench code_sandbox --no-default-features --features code -- [N]`
//! (N executions per thread and case, default 200; the first run compiles the guest, minutes).

use rlvr::envs::code::{Limits, Sandbox, Session};
use std::time::Instant;

const CASES: [(&str, &str); 2] =
    [("print", "print(1+1)"), ("numpy", "import numpy as np\nprint(int(np.arange(100).reshape(10, 10).sum()))")];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(200);
    let t = Instant::now();
    let sandbox = Sandbox::shared().expect("sandbox");
    eprintln!("sandbox ready in {:.1} s (module from {})", t.elapsed().as_secs_f64(), sandbox.module_source);
    let limits = Limits::default();
    for (name, code) in CASES {
        let e = sandbox.run(code, &limits).expect("run");
        assert!(e.ok(), "{name}: {e:?}");
        let iters = if name == "numpy" { n.div_ceil(10).max(10) } else { n };
        for threads in [1usize, 2] {
            let wall = Instant::now();
            let lat: Vec<f64> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..threads)
                    .map(|_| {
                        s.spawn(|| {
                            (0..iters)
                                .map(|_| {
                                    let t = Instant::now();
                                    let e = sandbox.run(code, &limits).expect("run");
                                    assert!(e.ok());
                                    t.elapsed().as_secs_f64() * 1e3
                                })
                                .collect::<Vec<f64>>()
                        })
                    })
                    .collect();
                hs.into_iter().flat_map(|h| h.join().expect("thread")).collect()
            });
            let secs = wall.elapsed().as_secs_f64();
            println!(
                "{{\"impl\": \"rlvr\", \"case\": \"{name}\", \"threads\": {threads}, \"n\": {}, \"median_ms\": {:.4}, \"per_s\": {:.1}, \"fuel\": {}}}",
                lat.len(),
                median(lat.clone()),
                lat.len() as f64 / secs,
                e.fuel_used
            );
        }
    }
    let mut session = Session::new(&sandbox, &limits, &[], 0).expect("session");
    session.turn("import numpy as np\nx = 0", &limits).expect("turn");
    let lat: Vec<f64> = (0..n * 10)
        .map(|_| {
            let t = Instant::now();
            let e = session.turn("x += 1", &limits).expect("turn");
            assert!(e.ok());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    println!(
        "{{\"impl\": \"rlvr\", \"case\": \"session_turn\", \"threads\": 1, \"n\": {}, \"median_ms\": {:.4}, \"per_s\": {:.1}}}",
        lat.len(),
        median(lat.clone()),
        1e3 / median(lat)
    );
}
