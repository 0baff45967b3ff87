//! `rlvr tasks causal`: writes generated tasks as JSON lines, one distinct graph per task, and
//! summarises them (level x difficulty histogram), as data for the CLI to print.

use super::query::Level;
use super::{CausalConfig, Generated, Generator};
use rlvr_engine::{BoxError, Split};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::io::Write;

/// Consecutive repeated graphs after which the generator is taken to have run out of shapes.
const MAX_REPEATS_IN_A_ROW: u64 = 100_000;

/// What one export wrote.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// The split written.
    pub split: Split,
    /// The seed used.
    pub seed: u64,
    /// Tasks written (each on its own graph shape).
    pub tasks: u64,
    /// Draws skipped because their graph shape was already written.
    pub repeats_skipped: u64,
    /// Tasks per level, then per difficulty.
    pub histogram: BTreeMap<Level, BTreeMap<usize, u64>>,
}

impl Summary {
    /// The histogram as a text table: one row per level, one column per difficulty.
    pub fn table(&self) -> String {
        let difficulties: Vec<usize> = {
            let mut d: Vec<usize> = self.histogram.values().flat_map(|m| m.keys().copied()).collect();
            d.sort_unstable();
            d.dedup();
            d
        };
        let mut out = format!("{:<15}", "level \\ size");
        for d in &difficulties {
            out.push_str(&format!("{d:>6}"));
        }
        out.push_str(&format!("{:>8}\n", "total"));
        for (level, row) in &self.histogram {
            out.push_str(&format!("{:<15}", level.name()));
            for d in &difficulties {
                out.push_str(&format!("{:>6}", row.get(d).copied().unwrap_or(0)));
            }
            out.push_str(&format!("{:>8}\n", row.values().sum::<u64>()));
        }
        out
    }
}

/// The first `n` tasks of `split` on pairwise distinct graph shapes, in index order.
pub fn distinct(generator: &Generator, split: Split, level: Option<Level>, n: u64) -> Result<Vec<Generated>, BoxError> {
    let mut out = Vec::with_capacity(n as usize);
    each_distinct(generator, split, level, n, |g| {
        out.push(g);
        Ok(())
    })?;
    Ok(out)
}

/// Calls `f` on each of the first `n` tasks with distinct graphs; returns the repeats skipped.
fn each_distinct(
    generator: &Generator,
    split: Split,
    level: Option<Level>,
    n: u64,
    mut f: impl FnMut(Generated) -> Result<(), BoxError>,
) -> Result<u64, BoxError> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(16);
    let mut seen = HashSet::with_capacity(n as usize);
    let (mut index, mut kept, mut skipped, mut in_a_row) = (0u64, 0u64, 0u64, 0u64);
    while kept < n {
        // Draw a batch in parallel (task i depends only on i), then keep it in index order, so
        // the output is the same whatever the thread count.
        let batch = ((n - kept) + (n - kept) / 8 + 16).min(BATCH);
        for g in draw_batch(generator, split, level, index, batch, threads)? {
            index += 1;
            if !seen.insert(g.graph_hash) {
                skipped += 1;
                in_a_row += 1;
                if in_a_row >= MAX_REPEATS_IN_A_ROW {
                    return Err(format!(
                        "only {kept} distinct graph shapes found for the {split:?} split; use larger networks"
                    )
                    .into());
                }
                continue;
            }
            in_a_row = 0;
            kept += 1;
            f(g)?;
            if kept == n {
                break;
            }
        }
    }
    Ok(skipped)
}

/// Most tasks drawn at once.
const BATCH: u64 = 4096;

/// Tasks `start..start + len` of `split`, drawn on `threads` threads, in index order.
fn draw_batch(
    generator: &Generator,
    split: Split,
    level: Option<Level>,
    start: u64,
    len: u64,
    threads: usize,
) -> Result<Vec<Generated>, BoxError> {
    let chunk = len.div_ceil(threads as u64).max(1);
    let parts: Vec<Result<Vec<Generated>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..len)
            .step_by(chunk as usize)
            .map(|lo| {
                let hi = (lo + chunk).min(len);
                s.spawn(move || {
                    (start + lo..start + hi)
                        .map(|i| generator.draw(split, i, level).map_err(|e| e.to_string()))
                        .collect::<Result<Vec<_>, String>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a generator thread panicked".into()))).collect()
    });
    let mut out = Vec::with_capacity(len as usize);
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

/// Writes `n` tasks of `split` (of `level` if given) as JSON lines to `out`, and summarises them.
/// Every task sits on a different graph shape, and no shape of one split occurs in the other.
pub fn export(
    config: CausalConfig,
    seed: u64,
    split: Split,
    level: Option<Level>,
    n: u64,
    out: &mut dyn Write,
) -> Result<Summary, BoxError> {
    let generator = Generator::new(config, seed)?;
    let mut histogram: BTreeMap<Level, BTreeMap<usize, u64>> = BTreeMap::new();
    let mut line = Vec::with_capacity(8192);
    let mut written = 0;
    let repeats_skipped = each_distinct(&generator, split, level, n, |g| {
        *histogram.entry(g.level).or_default().entry(g.difficulty).or_default() += 1;
        line.clear();
        serde_json::to_writer(&mut line, &g.data)?;
        line.push(b'\n');
        out.write_all(&line)?;
        written += 1;
        Ok(())
    })?;
    out.flush()?;
    Ok(Summary { split, seed, tasks: written, repeats_skipped, histogram })
}
