//! The reward benchmark behind `rlvr bench-rewards`: speed and agreement of verifiers on a
//! labelled set.
//!
//! Input: JSONL rows `{"task": {...}, "completion": "...", "label": 0|1|score}`, optionally
//! `"reward": "<id>"` to say which verifier a row targets (a row without it is used for every
//! reward) and `"note"`. For each reward id: throughput on one core and on all cores, the
//! latency of one scoring (p50/p99, one core), and agreement with the labels: accuracy, false
//! positives (scored right, labelled wrong), false negatives, verifier errors, with the first
//! examples of each. A row is scored positive when its total, divided by the rubric's best
//! total, is at least 0.5; a label is positive when it is at least 0.5.
//!
//! ## Design
//! Rows are turned into tasks and trajectories before any clock starts, so the timings are
//! those of `Rubric::score` alone (every term, `format` included: what a rollout pays).
//! Timing loops repeat the rows until `min_time` has passed, so short sets still give stable
//! figures; all-cores throughput runs one scoring loop per thread on the shared rubric, as the
//! runner's worker pool does.

use rlvr_engine::{Config, Registry, Rubric, Task, Trajectory};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The bundled labelled set for the math and answer verifiers (JSONL), hand-checked.
pub const BUNDLED: &str = include_str!("../data/labelled.jsonl");

/// math-verify's own test suite as labelled rows of `math/equivalence` (276 cases, each with
/// the options its test passes; `rewards/data/make_math_verify.py` names the source and the
/// rows whose label corrects math-verify's expectation).
pub const MATH_VERIFY: &str = include_str!("../data/math_verify.jsonl");

/// One labelled row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// The task object, as `rlvr score` takes it.
    pub task: Value,
    /// The completion to score.
    pub completion: String,
    /// 0/1, or a gold score in [0, 1].
    pub label: f64,
    /// The reward id this row targets; `None` for every reward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<String>,
    /// Why the label is what it is (the rule the row pins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A row that could not be read, or a reward that could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A JSONL line is malformed.
    #[error("line {line}: {msg}")]
    Row {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// The registry could not build a reward.
    #[error(transparent)]
    Registry(#[from] rlvr_engine::RegistryError),
    /// Nothing to measure.
    #[error("{0}")]
    Empty(String),
}

/// Reads JSONL rows; blank lines are skipped, and any malformed row is an error naming its line.
pub fn load_rows(jsonl: &str) -> Result<Vec<(usize, Row)>, BenchError> {
    let mut rows = Vec::new();
    for (i, line) in jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(line).map_err(|e| BenchError::Row { line: i + 1, msg: e.to_string() })?;
        if !(row.label.is_finite() && (0.0..=1.0).contains(&row.label)) {
            return Err(BenchError::Row { line: i + 1, msg: format!("label must lie in [0, 1], found {}", row.label) });
        }
        rows.push((i + 1, row));
    }
    Ok(rows)
}

/// How to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Threads for the all-cores figure; 0 takes every core.
    pub threads: usize,
    /// Least time each timing loop runs.
    pub min_time: Duration,
    /// Examples kept of each kind of disagreement.
    pub examples: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self { threads: 0, min_time: Duration::from_millis(500), examples: 3 }
    }
}

/// One row where the verifier and the label disagree, or the verifier failed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Example {
    /// Line in the input.
    pub line: usize,
    /// The task.
    pub task: Value,
    /// The completion, cut to 300 characters.
    pub completion: String,
    /// The label.
    pub label: f64,
    /// The normalised score, when the verifier gave one.
    pub score: Option<f64>,
    /// The verifier's error, when it failed.
    pub error: Option<String>,
    /// The accuracy term's diagnostics.
    pub info: Value,
}

/// Agreement with the labels.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Agreement {
    /// Rows scored.
    pub rows: usize,
    /// Rows where verifier and label agree.
    pub agree: usize,
    /// `agree / rows`.
    pub accuracy: f64,
    /// Scored positive, labelled negative: the verifier accepts a wrong answer.
    pub false_positives: usize,
    /// Scored negative, labelled positive: the verifier rejects a right answer.
    pub false_negatives: usize,
    /// Rows the verifier could not judge (counted as disagreements).
    pub errors: usize,
    /// Mean |score - label| over judged rows, for graded labels.
    pub mean_abs_error: f64,
    /// The first false positives.
    pub first_false_positives: Vec<Example>,
    /// The first false negatives.
    pub first_false_negatives: Vec<Example>,
    /// The first errors.
    pub first_errors: Vec<Example>,
}

/// Speed of one reward.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Throughput {
    /// Scorings per second on one thread.
    pub per_core_per_s: f64,
    /// Scorings per second on `threads` threads.
    pub all_cores_per_s: f64,
    /// Threads of the all-cores run.
    pub threads: usize,
    /// Median latency of one scoring on one thread, microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
    /// Scorings timed on one thread.
    pub calls: usize,
}

/// The figures of one reward.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RewardReport {
    /// The reward id.
    pub id: String,
    /// Agreement with labels.
    pub agreement: Agreement,
    /// Speed.
    pub throughput: Throughput,
}

/// The whole benchmark: one entry per reward, in the order asked. Serialises to the JSON
/// output; its per-reward throughput and accuracy are the chart's data.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchReport {
    /// Rows in the input.
    pub rows: usize,
    /// Cores the machine reports.
    pub cores: usize,
    /// Per reward.
    pub rewards: Vec<RewardReport>,
}

struct Case {
    line: usize,
    row: Row,
    task: Task,
    traj: Trajectory,
}

/// Runs the benchmark of `ids` (built with an empty config) on `rows`.
pub fn run(
    registry: &Registry,
    ids: &[String],
    rows: &[(usize, Row)],
    opts: &BenchOptions,
) -> Result<BenchReport, BenchError> {
    if ids.is_empty() {
        return Err(BenchError::Empty("name at least one reward id".into()));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = if opts.threads == 0 { cores } else { opts.threads };
    let mut rewards = Vec::new();
    for id in ids {
        let rubric = registry.make_reward(id, &Config::new())?;
        let cases: Vec<Case> = rows
            .iter()
            .filter(|(_, r)| r.reward.as_deref().is_none_or(|x| x == id))
            .map(|(line, row)| Case {
                line: *line,
                task: Task::new(format!("line-{line}"), row.task.clone()),
                traj: Trajectory::from_completion(vec![], &row.completion),
                row: row.clone(),
            })
            .collect();
        if cases.is_empty() {
            return Err(BenchError::Empty(format!("no rows target `{id}`")));
        }
        rewards.push(RewardReport {
            id: id.clone(),
            agreement: agreement(&rubric, &cases, opts.examples),
            throughput: throughput(&rubric, &cases, threads, opts.min_time),
        });
    }
    Ok(BenchReport { rows: rows.len(), cores, rewards })
}

fn normalised(rubric: &Rubric, total: f64) -> f64 {
    let max = rubric.max_total();
    if max > 0.0 { total / max } else { total }
}

fn agreement(rubric: &Rubric, cases: &[Case], keep: usize) -> Agreement {
    let mut a = Agreement::default();
    let mut abs_err = 0.0;
    let mut judged = 0usize;
    for c in cases {
        let scored = rubric.score(&c.task, &c.traj);
        let score = scored.total().map(|t| normalised(rubric, t));
        let example = || Example {
            line: c.line,
            task: c.row.task.clone(),
            completion: c.row.completion.chars().take(300).collect(),
            label: c.row.label,
            score,
            error: scored.error(),
            info: scored.terms.first().map_or(Value::Null, |t| t.info.clone()),
        };
        a.rows += 1;
        let Some(s) = score else {
            a.errors += 1;
            if a.first_errors.len() < keep {
                a.first_errors.push(example());
            }
            continue;
        };
        judged += 1;
        abs_err += (s - c.row.label).abs();
        match (s >= 0.5, c.row.label >= 0.5) {
            (true, false) => {
                a.false_positives += 1;
                if a.first_false_positives.len() < keep {
                    a.first_false_positives.push(example());
                }
            }
            (false, true) => {
                a.false_negatives += 1;
                if a.first_false_negatives.len() < keep {
                    a.first_false_negatives.push(example());
                }
            }
            _ => a.agree += 1,
        }
    }
    a.accuracy = a.agree as f64 / a.rows as f64;
    a.mean_abs_error = if judged > 0 { abs_err / judged as f64 } else { 0.0 };
    a
}

fn throughput(rubric: &Rubric, cases: &[Case], threads: usize, min_time: Duration) -> Throughput {
    // One core: every call timed, rows repeated until min_time has passed.
    let mut lat_ns: Vec<u64> = Vec::new();
    let start = Instant::now();
    while start.elapsed() < min_time || lat_ns.len() < cases.len() {
        for c in cases {
            let t = Instant::now();
            std::hint::black_box(rubric.score(&c.task, &c.traj));
            lat_ns.push(t.elapsed().as_nanos() as u64);
        }
    }
    let one_core = start.elapsed().as_secs_f64();
    let calls = lat_ns.len();
    lat_ns.sort_unstable();
    let pct = |p: f64| lat_ns[((calls as f64 - 1.0) * p).round() as usize] as f64 / 1e3;
    // All cores: each thread loops over the rows from its own offset.
    let start = Instant::now();
    let total: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                s.spawn(move || {
                    let mut n = 0usize;
                    let offset = k * cases.len() / threads.max(1);
                    while start.elapsed() < min_time || n < cases.len() {
                        for c in cases.iter().cycle().skip(offset).take(cases.len()) {
                            std::hint::black_box(rubric.score(&c.task, &c.traj));
                        }
                        n += cases.len();
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    Throughput {
        per_core_per_s: calls as f64 / one_core,
        all_cores_per_s: total as f64 / start.elapsed().as_secs_f64(),
        threads,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        calls,
    }
}

/// The report as a text table, then the first disagreements of each reward.
pub fn render_table(report: &BenchReport) -> String {
    let mut out = format!(
        "{:<20} {:>5} {:>8} {:>4} {:>4} {:>4} {:>12} {:>14} {:>9} {:>9}\n",
        "reward", "rows", "accuracy", "FP", "FN", "err", "per core/s", "all cores/s", "p50 us", "p99 us"
    );
    for r in &report.rewards {
        let (a, t) = (&r.agreement, &r.throughput);
        out += &format!(
            "{:<20} {:>5} {:>7.1}% {:>4} {:>4} {:>4} {:>12.0} {:>10.0} ({:>2}) {:>9.1} {:>9.1}\n",
            r.id,
            a.rows,
            100.0 * a.accuracy,
            a.false_positives,
            a.false_negatives,
            a.errors,
            t.per_core_per_s,
            t.all_cores_per_s,
            t.threads,
            t.p50_us,
            t.p99_us
        );
    }
    for r in &report.rewards {
        let a = &r.agreement;
        for (kind, list) in [
            ("false positive", &a.first_false_positives),
            ("false negative", &a.first_false_negatives),
            ("error", &a.first_errors),
        ] {
            for e in list {
                out += &format!(
                    "{} {kind} line {}: task {} completion {:?} label {} score {:?}{}\n",
                    r.id,
                    e.line,
                    e.task,
                    e.completion,
                    e.label,
                    e.score,
                    e.error.as_deref().map(|m| format!(" error {m}")).unwrap_or_default()
                );
            }
        }
    }
    out
}

/// The report as JSON.
pub fn to_json(report: &BenchReport) -> Value {
    serde_json::to_value(report).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        let mut r = Registry::new();
        crate::register(&mut r);
        r
    }

    #[test]
    fn rows_are_validated_by_line() {
        let e = load_rows("\n{\"task\": {}, \"completion\": \"x\", \"label\": 2}").unwrap_err();
        assert_eq!(e.to_string(), "line 2: label must lie in [0, 1], found 2");
        assert!(load_rows("{\"task\": {}}").unwrap_err().to_string().starts_with("line 1:"));
    }

    #[test]
    fn agreement_counts_by_hand() {
        let jsonl = r#"{"task": {"answer": "2"}, "completion": "\\boxed{2}", "label": 1}
{"task": {"answer": "2"}, "completion": "\\boxed{3}", "label": 1}
{"task": {"answer": "2"}, "completion": "\\boxed{3}", "label": 0}
{"task": {"answer": "2"}, "completion": "\\boxed{2}", "label": 0}
{"task": {"answer": "2"}, "completion": "\\boxed{2}", "label": 0}
{"task": {"answer": "\\frac{"}, "completion": "\\boxed{2}", "label": 1}
{"task": {"answer": "B"}, "completion": "(B)", "label": 1, "reward": "answer/choice"}"#;
        let rows = load_rows(jsonl).unwrap();
        let opts = BenchOptions { threads: 2, min_time: Duration::from_millis(1), examples: 1 };
        let report = run(&registry(), &["math/equivalence".into()], &rows, &opts).unwrap();
        let a = &report.rewards[0].agreement;
        assert_eq!((a.rows, a.agree, a.false_positives, a.false_negatives, a.errors), (6, 2, 2, 1, 1));
        assert_eq!(a.first_false_positives.len(), 1);
        assert_eq!(a.first_false_positives[0].line, 4);
        assert_eq!(a.first_false_negatives[0].line, 2);
        assert_eq!(a.first_errors[0].line, 6);
        let t = &report.rewards[0].throughput;
        assert!(t.calls >= 6 && t.per_core_per_s > 0.0 && t.p99_us >= t.p50_us);
        let table = render_table(&report);
        assert!(table.contains("math/equivalence"), "{table}");
        assert!(table.contains("false positive line 4"), "{table}");
        assert_eq!(to_json(&report)["rewards"][0]["agreement"]["errors"], 1);
        assert!(run(&registry(), &["answer/nope".into()], &rows, &opts).is_err());
    }
}

#[cfg(test)]
mod bundled {
    use super::*;

    /// The regression test of the math and answer verifiers: every hand-checked row agrees.
    #[test]
    fn bundled_set_agrees_fully() {
        let rows = load_rows(BUNDLED).unwrap();
        assert!(rows.len() >= 400);
        let mut registry = Registry::new();
        crate::register(&mut registry);
        let opts = BenchOptions { threads: 1, min_time: Duration::ZERO, examples: 20 };
        let ids = ["math/equivalence", "answer/numeric", "answer/exact", "answer/choice"];
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        let report = run(&registry, &ids, &rows, &opts).unwrap();
        for r in &report.rewards {
            let a = &r.agreement;
            assert!(a.agree == a.rows, "{}: {}/{} agree\n{}", r.id, a.agree, a.rows, render_table(&report));
        }
    }

    #[test]
    fn math_verify_suite_agrees_at_least_99_percent() {
        let rows = load_rows(MATH_VERIFY).unwrap();
        assert_eq!(rows.len(), 276);
        let opts = BenchOptions { threads: 1, min_time: Duration::ZERO, examples: 20 };
        let mut registry = Registry::new();
        crate::register(&mut registry);
        let report = run(&registry, &["math/equivalence".into()], &rows, &opts).unwrap();
        let a = &report.rewards[0].agreement;
        assert!(a.agree * 100 >= a.rows * 99, "{}/{} agree\n{}", a.agree, a.rows, render_table(&report));
        assert_eq!(a.false_positives, 0, "{}", render_table(&report));
    }
}
