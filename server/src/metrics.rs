//! `GET /metrics` in Prometheus' text format: requests by route and status, their latencies,
//! sandbox limits hit, sessions and environments live, jobs queued and running.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Latency buckets in seconds, from a sandbox `print(1)` to a long program.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The server's counters. Cheap to update from any thread.
#[derive(Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    limits: Mutex<BTreeMap<String, u64>>,
    /// Environment instances alive (each may hold a sandbox).
    pub(crate) envs_live: AtomicI64,
    /// `/run_code` programs running.
    pub(crate) programs_live: AtomicI64,
    /// Blocking jobs waiting for a worker.
    pub(crate) queued: AtomicI64,
    /// Sessions opened since start.
    pub(crate) sessions_opened: AtomicU64,
    /// Connections refused at capacity.
    pub(crate) sessions_refused: AtomicU64,
    /// Sessions closed for idling.
    pub(crate) sessions_idled: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    /// Counts one answered request.
    pub(crate) fn request(&self, route: &str, status: u16, elapsed: Duration) {
        *lock(&self.requests).entry((route.to_string(), status)).or_default() += 1;
        let mut latency = lock(&self.latency);
        let h = latency.entry(route.to_string()).or_default();
        let s = elapsed.as_secs_f64();
        for (b, c) in BUCKETS.iter().zip(h.counts.iter_mut()) {
            if s <= *b {
                *c += 1;
            }
        }
        h.count += 1;
        h.sum += s;
    }

    /// Counts a sandbox limit that stopped or cut a program (`deadline`, `memory`, ...).
    pub(crate) fn limit(&self, name: &str) {
        *lock(&self.limits).entry(name.to_string()).or_default() += 1;
    }

    /// The text a Prometheus scrape reads.
    pub(crate) fn render(&self, sessions_live: usize, max_sessions: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP rlvr_requests_total Requests answered, by route and HTTP status.");
        let _ = writeln!(out, "# TYPE rlvr_requests_total counter");
        for ((route, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(out, "rlvr_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP rlvr_request_seconds Request latency, by route.");
        let _ = writeln!(out, "# TYPE rlvr_request_seconds histogram");
        for (route, h) in lock(&self.latency).iter() {
            for (b, c) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "rlvr_request_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {c}");
            }
            let _ = writeln!(out, "rlvr_request_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "rlvr_request_seconds_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(out, "rlvr_request_seconds_count{{route=\"{route}\"}} {}", h.count);
        }
        let _ = writeln!(out, "# HELP rlvr_sandbox_limits_total Sandbox limits that stopped or cut a program.");
        let _ = writeln!(out, "# TYPE rlvr_sandbox_limits_total counter");
        for (limit, n) in lock(&self.limits).iter() {
            let _ = writeln!(out, "rlvr_sandbox_limits_total{{limit=\"{limit}\"}} {n}");
        }
        let gauges = [
            ("rlvr_sessions_live", "WebSocket sessions open.", sessions_live as i64),
            ("rlvr_sessions_max", "WebSocket sessions allowed at once.", max_sessions as i64),
            ("rlvr_envs_live", "Environment instances alive.", self.envs_live.load(Ordering::Relaxed)),
            ("rlvr_programs_live", "run_code programs running.", self.programs_live.load(Ordering::Relaxed)),
            (
                "rlvr_interpreters_live",
                "Sandboxed interpreters alive in the process (sessions and runs).",
                rlvr_envs::code::live_sessions() as i64,
            ),
            ("rlvr_jobs_queued", "Blocking jobs waiting for a worker.", self.queued.load(Ordering::Relaxed)),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        let counters = [
            ("rlvr_sessions_opened_total", "WebSocket sessions opened.", &self.sessions_opened),
            ("rlvr_sessions_refused_total", "Connections refused at capacity.", &self.sessions_refused),
            ("rlvr_sessions_idled_total", "Sessions closed after idling.", &self.sessions_idled),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Ordering::Relaxed));
        }
        out
    }
}
