//! Pieces the policy benches share.

/// The peak resident set size of this process in MiB (Linux `VmHWM`; 0 elsewhere): the figure
/// the PyTorch side of each comparison reads the same way.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// The device a policy bench runs on: `RLVR_BENCH_DEVICE` (`flex`, `tch-cpu`, `tch`, `cuda`: any
/// name `lm/llama-v0`'s `device` setting takes, compiled in by its feature), else flex.
pub fn bench_device() -> rlvr::policies::burn::tensor::Device {
    let name = std::env::var("RLVR_BENCH_DEVICE").unwrap_or_else(|_| "flex".into());
    rlvr::policies::lm::device(&name).unwrap_or_else(|e| panic!("RLVR_BENCH_DEVICE: {e}"))
}
