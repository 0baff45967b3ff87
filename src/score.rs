//! `rlvr score`: score `{task, completion}` rows with any registered reward.

use anyhow::Result;
use rlvr_engine::{Rubric, ScoreRow, Task, Trajectory};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::io::{BufRead, Write};

/// One input line, borrowed from it: the task stays raw text until the cache has missed.
/// Other keys (a dataset's own metadata) are allowed and ignored.
#[derive(Deserialize)]
struct Case<'a> {
    #[serde(borrow)]
    task: &'a RawValue,
    #[serde(borrow)]
    completion: Cow<'a, str>,
    /// Echoed as the output row's first key, so results join back to their source.
    id: Option<Value>,
}

/// The tasks a worker read last, by their text: rows of one task come together (the G
/// completions of a rollout group, the variants of a test case), and building a task's JSON
/// tree costs more than scoring it. Only the last [`TASK_CACHE`] distinct tasks are kept, so
/// memory stays flat whatever the file.
#[derive(Default)]
struct TaskCache {
    entries: Vec<(Box<str>, Task)>,
    next: usize,
}

/// Distinct tasks each worker keeps.
const TASK_CACHE: usize = 16;

impl TaskCache {
    /// The task of `raw`, named `id`: from the cache when the same text was read recently.
    fn task(&mut self, raw: &str, id: String) -> serde_json::Result<&Task> {
        let i = match self.entries.iter().position(|(text, _)| text.len() == raw.len() && **text == *raw) {
            Some(i) => i,
            None => {
                let entry = (raw.into(), Task::new(String::new(), serde_json::from_str(raw)?));
                if self.entries.len() < TASK_CACHE {
                    self.entries.push(entry);
                    self.entries.len() - 1
                } else {
                    let i = self.next;
                    self.entries[i] = entry;
                    self.next = (i + 1) % TASK_CACHE;
                    i
                }
            }
        };
        let task = &mut self.entries[i].1;
        task.id = id;
        Ok(task)
    }
}

/// Counts of a scoring pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScoreCounts {
    /// Lines read.
    pub lines: usize,
    /// Lines that could not be scored (bad input or a failed weighted term).
    pub errors: usize,
}

/// Lines scored per parallel block: large enough to keep workers busy, small enough that
/// memory stays flat on a file of millions of lines.
const BLOCK: usize = 4096;

/// Scores every line of `input` with `rubric` on `workers` threads and writes one JSON result
/// per line to `output`, in input order. A bad line gets an error result; scoring goes on.
pub fn score_jsonl(
    rubric: &Rubric,
    input: impl BufRead,
    mut output: impl Write,
    workers: usize,
) -> Result<ScoreCounts> {
    let workers = workers.max(1);
    let mut counts = ScoreCounts::default();
    let mut lines = input.lines().enumerate().peekable();
    while lines.peek().is_some() {
        let block: Vec<(usize, std::io::Result<String>)> = lines.by_ref().take(BLOCK).collect();
        // Each worker writes its lines' results as bytes, in order; this thread only copies.
        let mut results: Vec<(Vec<u8>, bool)> = vec![(Vec::new(), false); block.len()];
        std::thread::scope(|s| {
            let chunk = block.len().div_ceil(workers);
            for (lines, out) in block.chunks(chunk).zip(results.chunks_mut(chunk)) {
                s.spawn(move || {
                    let mut cache = TaskCache::default();
                    for ((n, line), slot) in lines.iter().zip(out.iter_mut()) {
                        *slot = score_line(rubric, &mut cache, *n + 1, line);
                    }
                });
            }
        });
        for (bytes, failed) in results {
            counts.lines += 1;
            counts.errors += usize::from(failed);
            output.write_all(&bytes)?;
            output.write_all(b"\n")?;
        }
    }
    output.flush()?;
    Ok(counts)
}

/// Lines sent to a worker process together: few enough that a slow row delays only a few
/// others, enough that the hand-off (a write and a wake-up) costs nothing next to the rows.
const CHUNK: usize = 4;

/// Lines a worker may hold at once (a chunk being scored, one waiting): each chunk goes to the
/// worker holding the fewest, so a slow row holds back only its own worker while the others
/// keep taking chunks.
const IN_FLIGHT: usize = 2 * CHUNK;

/// What the feeder knows of the workers: lines each holds, and which have ended.
struct Slots {
    held: Vec<usize>,
    ended: Vec<bool>,
}

fn lock(m: &std::sync::Mutex<Slots>) -> std::sync::MutexGuard<'_, Slots> {
    // A reader that panicked mid-update leaves counts that are still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Scores like [`score_jsonl`], but on `processes` worker processes (this executable's hidden
/// `score-worker` command, each one thread) instead of threads. For rewards that run the code
/// sandbox: each fresh interpreter takes a few hundred page faults, and in one address space
/// every fault interrupts the other cores to flush their TLBs, so threads stop scaling at two
/// (docs/environments/code.md); processes have an address space each. `worker_args` are the
/// arguments that rebuild the reward in a worker (`--reward ID --set ...`).
pub fn score_jsonl_processes(
    worker_args: &[String],
    input: impl BufRead + Send,
    mut output: impl Write,
    processes: usize,
) -> Result<ScoreCounts> {
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    let mut stdins = Vec::new();
    let mut results = Vec::new();
    let n = processes.max(1);
    let slots = std::sync::Arc::new((
        std::sync::Mutex::new(Slots { held: vec![0; n], ended: vec![false; n] }),
        std::sync::Condvar::new(),
    ));
    for k in 0..n {
        let mut child = Command::new(&exe)
            .arg("score-worker")
            .args(worker_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("worker without stdout"))?;
        stdins
            .push(std::io::BufWriter::new(child.stdin.take().ok_or_else(|| anyhow::anyhow!("worker without stdin"))?));
        // Each worker's results are drained as they come, so a worker never waits on its
        // output and always takes more input: no cycle of full pipes.
        let (tx, rx) = std::sync::mpsc::channel::<std::io::Result<String>>();
        let slots = slots.clone();
        std::thread::spawn(move || {
            let (state, changed) = &*slots;
            for line in std::io::BufReader::new(stdout).lines() {
                let sent = tx.send(line).is_ok();
                let mut s = lock(state);
                s.held[k] = s.held[k].saturating_sub(1);
                drop(s);
                changed.notify_all();
                if !sent {
                    break;
                }
            }
            lock(state).ended[k] = true;
            changed.notify_all();
        });
        results.push(rx);
        children.push(child);
    }
    let (order_tx, order_rx) = std::sync::mpsc::channel::<usize>();
    let feed = std::thread::scope(|s| -> Result<ScoreCounts> {
        let feeder = s.spawn(move || -> std::io::Result<()> {
            let (state, changed) = &*slots;
            let mut k = 0;
            for (i, line) in input.lines().enumerate() {
                if i % CHUNK == 0 {
                    stdins[k].flush()?;
                    // The next chunk goes to the live worker holding the fewest lines, once
                    // one has room for it.
                    let mut st = lock(state);
                    k = loop {
                        if st.ended.iter().all(|&e| e) {
                            return Err(std::io::Error::other("every score worker ended"));
                        }
                        let room = (0..n)
                            .filter(|&k| !st.ended[k] && st.held[k] + CHUNK <= IN_FLIGHT)
                            .min_by_key(|&k| st.held[k]);
                        if let Some(k) = room {
                            st.held[k] += CHUNK;
                            break k;
                        }
                        st = changed.wait(st).unwrap_or_else(|p| p.into_inner());
                    };
                }
                let w = &mut stdins[k];
                match line {
                    // The worker scores each line under its number in the whole file.
                    Ok(l) => writeln!(w, "{}\t{l}", i + 1)?,
                    Err(e) => writeln!(w, "{}\t\u{0}{e}", i + 1)?,
                }
                if order_tx.send(k).is_err() {
                    break;
                }
            }
            for w in &mut stdins {
                w.flush()?;
            }
            // Dropping the writers closes the workers' input: they finish and exit.
            drop(stdins);
            Ok(())
        });
        let mut counts = ScoreCounts::default();
        for k in order_rx {
            let line = results[k]
                .recv()
                .map_err(|_| anyhow::anyhow!("score worker {k} ended early (its error is above)"))??;
            counts.lines += 1;
            let failed = serde_json::from_str::<Value>(&line).map_or(true, |v| !v["error"].is_null());
            counts.errors += usize::from(failed);
            output.write_all(line.as_bytes())?;
            output.write_all(b"\n")?;
        }
        feeder.join().map_err(|_| anyhow::anyhow!("the input feeder panicked"))??;
        Ok(counts)
    });
    for mut child in children {
        let status = child.wait()?;
        if !status.success() && feed.is_ok() {
            anyhow::bail!("a score worker exited with {status}");
        }
    }
    output.flush()?;
    feed
}

/// The worker side of [`score_jsonl_processes`]: reads `N\tLINE` lines, writes each result as
/// soon as it is scored.
pub fn score_worker(rubric: &Rubric, input: impl BufRead, mut output: impl Write) -> Result<()> {
    let mut cache = TaskCache::default();
    for line in input.lines() {
        let line = line?;
        let (n, rest) =
            line.split_once('\t').ok_or_else(|| anyhow::anyhow!("score-worker: a line without its number"))?;
        let n: usize = n.parse().map_err(|_| anyhow::anyhow!("score-worker: bad line number {n:?}"))?;
        let given = match rest.strip_prefix('\u{0}') {
            Some(e) => Err(std::io::Error::other(e.to_string())),
            None => Ok(rest.to_string()),
        };
        let (bytes, _) = score_line(rubric, &mut cache, n, &given);
        output.write_all(&bytes)?;
        output.write_all(b"\n")?;
        output.flush()?;
    }
    Ok(())
}

/// One line's result as JSON bytes, and whether it is an error.
fn score_line(rubric: &Rubric, cache: &mut TaskCache, n: usize, line: &std::io::Result<String>) -> (Vec<u8>, bool) {
    let failed = |error: String| (to_bytes(&ScoreRow { id: None, scored: None, error: Some(error) }), true);
    let line = match line {
        Ok(l) => l,
        Err(e) => return failed(format!("line {n}: cannot read: {e}")),
    };
    if line.trim().is_empty() {
        return failed(format!("line {n}: empty line"));
    }
    let case: Case = match serde_json::from_str(line) {
        Ok(c) => c,
        Err(e) => return failed(format!("line {n}: {e}")),
    };
    let id = case.id.as_ref();
    let error = |e: String| (to_bytes(&ScoreRow { id, scored: None, error: Some(e) }), true);
    if !case.task.get().starts_with('{') {
        return error(format!("line {n}: field `task` must be an object"));
    }
    match cache.task(case.task.get(), format!("line-{n}")) {
        Ok(task) => {
            let scored = rubric.score(task, &Trajectory::from_completion(Vec::new(), &case.completion));
            let failed = scored.error().is_some();
            (to_bytes(&ScoreRow { id, scored: Some(&scored), error: None }), failed)
        }
        Err(e) => error(format!("line {n}: {e}")),
    }
}

fn to_bytes(row: &ScoreRow<'_>) -> Vec<u8> {
    // Serialising borrowed scores into a Vec cannot fail: every key is a string.
    serde_json::to_vec(row)
        .unwrap_or_else(|e| format!("{{\"reward\":null,\"terms\":{{}},\"error\":\"{e}\"}}").into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    #[test]
    fn bad_lines_get_errors_in_place_and_scoring_goes_on() {
        let rubric = crate::builtin_registry().make_reward("answer/exact", &Default::default()).unwrap();
        let input = concat!(
            r#"{"task": {"answer": "4"}, "completion": "<answer>4</answer>"}"#,
            "\n",
            "not json\n",
            "\n",
            r#"{"task": {"answer": "4"}, "completion": "<answer>5</answer>"}"#,
            "\n",
            r#"{"task": 3, "completion": "x"}"#,
            "\n",
            r#"{"task": {"gold": "4"}, "completion": "<answer>4</answer>"}"#,
            "\n",
        );
        let mut out = Vec::new();
        let counts = score_jsonl(&rubric, input.as_bytes(), &mut out, 3).unwrap();
        let rows: Vec<Value> =
            String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(counts, ScoreCounts { lines: 6, errors: 4 });
        assert_eq!(rows[0]["reward"], json!(1.0));
        assert_eq!(rows[0]["terms"]["exact_match"], json!(1.0));
        assert!(rows[1]["error"].as_str().unwrap().starts_with("line 2: expected"));
        assert_eq!(rows[2]["error"], json!("line 3: empty line"));
        assert_eq!((rows[3]["reward"].clone(), rows[3]["error"].clone()), (json!(0.0), Value::Null));
        assert_eq!(rows[4]["error"], json!("line 5: field `task` must be an object"));
        assert_eq!(rows[5]["reward"], Value::Null, "a task without its reference is a verifier error");
        assert_eq!(rows[5]["terms"]["exact_match"], Value::Null);
    }

    #[test]
    fn an_id_is_echoed_first_and_other_keys_are_ignored() {
        let rubric = crate::builtin_registry().make_reward("answer/exact", &Default::default()).unwrap();
        let input = r#"{"id": "q-7", "source": "gsm8k", "task": {"answer": "4"}, "completion": "<answer>4</answer>"}"#;
        let mut out = Vec::new();
        score_jsonl(&rubric, input.as_bytes(), &mut out, 1).unwrap();
        let row: Map<String, Value> = serde_json::from_slice(&out).unwrap();
        assert_eq!(row.keys().collect::<Vec<_>>(), ["id", "reward", "terms", "error", "details"]);
        assert_eq!((&row["id"], &row["reward"]), (&json!("q-7"), &json!(1.0)));
        let mut out = Vec::new();
        score_jsonl(&rubric, r#"{"id": 3, "task": 1, "completion": ""}"#.as_bytes(), &mut out, 1).unwrap();
        let row: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!((&row["id"], &row["error"]), (&json!(3), &json!("line 1: field `task` must be an object")));
    }

    #[test]
    fn a_repeated_task_is_read_once_but_scored_and_named_per_line() {
        let rubric = crate::builtin_registry().make_reward("answer/exact", &Default::default()).unwrap();
        let mut input = String::new();
        for k in 0..40 {
            // Twenty distinct tasks, each on two consecutive lines, then the first ones again
            // (evicted by then), and a broken task repeated: its error names each line.
            let answer = k / 2 % 20;
            input.push_str(&format!(
                "{{\"task\": {{\"answer\": \"{answer}\"}}, \"completion\": \"<answer>{k}</answer>\"}}\n"
            ));
        }
        input.push_str(
            "{\"task\": {\"gold\": 1}, \"completion\": \"x\"}\n{\"task\": {\"gold\": 1}, \"completion\": \"x\"}\n",
        );
        let mut out = Vec::new();
        score_jsonl(&rubric, input.as_bytes(), &mut out, 1).unwrap();
        let rows: Vec<Value> =
            String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        for (k, row) in rows.iter().take(40).enumerate() {
            let right = (k / 2 % 20).to_string() == k.to_string();
            assert_eq!(row["reward"], json!(if right { 1.0 } else { 0.0 }), "line {}", k + 1);
        }
        assert!(rows[40]["error"].as_str().unwrap().contains("line-41"), "{}", rows[40]["error"]);
        assert!(rows[41]["error"].as_str().unwrap().contains("line-42"), "{}", rows[41]["error"]);
    }
}
