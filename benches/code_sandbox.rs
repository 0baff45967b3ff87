//! Sandbox latency and throughput: fresh isolated executions at 1 and 2 threads (`print` and the
//! numpy snippet on `Sandbox::shared()`, the warm snapshot with numpy imported that every user path
//! runs on; the numpy snippet also on the plain guest, cold), and warm session turns. Prints one JSON object per line (for `benches/code_peers.py`, which runs the
//! Python peers on the same snippets and prints the side-by-side table).
//!
//! Run: `cargo bench --bench code_sandbox --no-default-features --features code -- [N]`
//! (N executions per thread and case, default 200; the first run compiles the guest, minutes).
//! A case name after N (`print`, `numpy`, `numpy_cold`) runs only that case.

use rlvr::envs::code::{Limits, Sandbox, SandboxConfig, Session};
use std::time::Instant;

const NUMPY: &str = "import numpy as np\nprint(int(np.arange(100).reshape(10, 10).sum()))";

/// (case, code, whether it runs on the shared warm snapshot rather than the plain guest).
const CASES: [(&str, &str, bool); 3] =
    [("print", "print(1+1)", true), ("numpy", NUMPY, true), ("numpy_cold", NUMPY, false)];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(200);
    let t = Instant::now();
    let plain = Sandbox::open(&SandboxConfig::default()).expect("sandbox");
    eprintln!("plain guest ready in {:.1} s (module from {})", t.elapsed().as_secs_f64(), plain.module_source);
    let t = Instant::now();
    let warm = Sandbox::shared().expect("warm sandbox");
    eprintln!("shared warm snapshot ready in {:.1} s (module from {})", t.elapsed().as_secs_f64(), warm.module_source);
    let limits = Limits::default();
    // An optional case name after N runs only that case (for profiling).
    let only: Option<String> = std::env::args().skip(1).find(|a| a.parse::<usize>().is_err() && !a.starts_with('-'));
    for (name, code, is_warm) in CASES {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let sandbox = if is_warm { &*warm } else { &plain };
        let e = sandbox.run(code, &limits).expect("run");
        assert!(e.ok(), "{name}: {e:?}");
        let iters = if name == "numpy_cold" { n.div_ceil(20).max(10) } else { n };
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
    // Where a fresh execution's time goes: instantiation alone (a Session opened and dropped).
    for (name, sb) in [("instantiate", &plain), ("instantiate_warm", &*warm)] {
        let lat: Vec<f64> = (0..n)
            .map(|_| {
                let t = Instant::now();
                drop(Session::new(sb, &limits, &[], 0).expect("session"));
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        println!(
            "{{\"impl\": \"rlvr\", \"case\": \"{name}\", \"threads\": 1, \"n\": {}, \"median_ms\": {:.4}}}",
            lat.len(),
            median(lat)
        );
    }
    let mut session = Session::new(&warm, &limits, &[], 0).expect("session");
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
