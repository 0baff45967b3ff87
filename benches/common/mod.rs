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
