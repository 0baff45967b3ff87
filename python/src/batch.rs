//! `Reward.score_batch`: Python rows in, Python results out, scoring on Rust threads.
//!
//! Reading rows and writing results needs the GIL and so runs on the calling thread; scoring
//! needs nothing of Python. Rows therefore go in blocks: with one worker, the calling thread
//! reads a block, scores it with the GIL released, and writes its results, so every block's data
//! is still in cache when it is used; with more, worker threads score block k while the calling
//! thread reads block k+1 and writes block k-1's results.

use crate::convert::{same_data, scored_to_py, task_from};
use crate::{Error, TaskError, trajectory_from};
use crossbeam_channel::{Receiver, Sender};
use pyo3::prelude::*;
use pyo3::types::PyList;
use rlvr::engine::{Rubric, Scored, Task, Trajectory};
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// Rows per block: enough to amortise a hand-off between threads, few enough to stay in cache.
const BLOCK: usize = 256;

type Pairs = Vec<(Arc<Task>, Trajectory)>;

/// Scores `completions[i]` of `tasks[i]` on `workers` threads (the calling thread alone when 1).
pub fn score_batch<'py>(
    py: Python<'py>,
    rubric: &Rubric,
    tasks: &[Bound<'py, PyAny>],
    completions: &[Bound<'py, PyAny>],
    workers: usize,
) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    let n = tasks.len();
    let mut reader = Reader { tasks, completions, last: None };
    if workers <= 1 {
        for start in (0..n).step_by(BLOCK) {
            let pairs = reader.block(py, start..(start + BLOCK).min(n))?;
            let scores: Vec<Scored> = py.detach(|| pairs.iter().map(|(t, tr)| rubric.score(t, tr)).collect());
            for s in &scores {
                out.append(scored_to_py(py, s)?)?;
            }
        }
        return Ok(out);
    }
    std::thread::scope(|s| -> PyResult<()> {
        let (job_tx, job_rx) = crossbeam_channel::unbounded::<(usize, usize, Pairs)>();
        let (res_tx, res_rx) = crossbeam_channel::unbounded();
        for _ in 0..workers {
            let (job_rx, res_tx): (Receiver<(usize, usize, Pairs)>, Sender<_>) = (job_rx.clone(), res_tx.clone());
            s.spawn(move || {
                for (block, part, pairs) in job_rx {
                    // A panic would leave the calling thread waiting for this part: send it as
                    // an error instead (Rubric::score already contains panics per term).
                    let scored = catch_unwind(AssertUnwindSafe(|| {
                        pairs.iter().map(|(t, tr)| rubric.score(t, tr)).collect::<Vec<Scored>>()
                    }));
                    if res_tx.send((block, part, scored.map_err(|_| ()))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(res_tx);
        let blocks = n.div_ceil(BLOCK);
        let parts = workers.min(BLOCK);
        let mut done: HashMap<usize, Vec<Option<Vec<Scored>>>> = HashMap::new();
        let write = |block: usize, done: &mut HashMap<usize, Vec<Option<Vec<Scored>>>>| -> PyResult<()> {
            loop {
                if done.get(&block).is_some_and(|p| p.iter().all(Option::is_some)) {
                    for part in done.remove(&block).unwrap_or_default().into_iter().flatten() {
                        for scored in &part {
                            out.append(scored_to_py(py, scored)?)?;
                        }
                    }
                    return Ok(());
                }
                let (b, p, scored) = py
                    .detach(|| res_rx.recv())
                    .map_err(|_| Error::new_err("internal error in rlvr: a scoring thread stopped"))?;
                let scored =
                    scored.map_err(|()| Error::new_err("internal error in rlvr: a scoring thread panicked"))?;
                done.entry(b).or_insert_with(|| vec![None; parts])[p] = Some(scored);
            }
        };
        for block in 0..blocks {
            let start = block * BLOCK;
            let mut pairs = reader.block(py, start..(start + BLOCK).min(n))?;
            let size = pairs.len().div_ceil(parts);
            let mut split = Vec::with_capacity(parts);
            for _ in 0..parts {
                let rest = pairs.split_off(size.min(pairs.len()));
                split.push(std::mem::replace(&mut pairs, rest));
            }
            done.insert(block, vec![None; parts]);
            for (p, chunk) in split.into_iter().enumerate() {
                // Empty parts (a short last block) are answered at once.
                if chunk.is_empty() {
                    done.get_mut(&block).expect("inserted above")[p] = Some(Vec::new());
                } else {
                    job_tx
                        .send((block, p, chunk))
                        .map_err(|_| Error::new_err("internal error in rlvr: no scoring thread"))?;
                }
            }
            if block > 0 {
                write(block - 1, &mut done)?;
            }
        }
        if blocks > 0 {
            write(blocks - 1, &mut done)?;
        }
        Ok(())
    })?;
    Ok(out)
}

/// Reads rows into tasks and trajectories, reusing the previous row's task when the row holds
/// the same data (the completions of one rollout group come together).
struct Reader<'a, 'py> {
    tasks: &'a [Bound<'py, PyAny>],
    completions: &'a [Bound<'py, PyAny>],
    last: Option<Arc<Task>>,
}

impl Reader<'_, '_> {
    fn block(&mut self, py: Python<'_>, rows: std::ops::Range<usize>) -> PyResult<Pairs> {
        let mut pairs = Vec::with_capacity(rows.len());
        for i in rows {
            let task = match &self.last {
                Some(t) if i > 0 && same_data(&self.tasks[i - 1], &self.tasks[i])? => t.clone(),
                _ => Arc::new(task_from(&self.tasks[i]).map_err(|e| row_error(py, e, i))?),
            };
            self.last = Some(task.clone());
            pairs.push((task, trajectory_from(&self.completions[i]).map_err(|e| row_error(py, e, i))?));
        }
        Ok(pairs)
    }
}

/// Names the row an error came from.
fn row_error(py: Python<'_>, e: PyErr, i: usize) -> PyErr {
    let msg = format!("row {i}: {}", e.value(py));
    if e.is_instance_of::<TaskError>(py) { TaskError::new_err(msg) } else { Error::new_err(msg) }
}
