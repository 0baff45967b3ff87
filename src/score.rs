//! `rlvr score`: score `{task, completion}` rows with any registered reward.

use anyhow::Result;
use rlvr_engine::{Rubric, Scored, Task, Trajectory};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::io::{BufRead, Write};

/// One input line. Other keys (a dataset's own metadata) are allowed and ignored.
#[derive(Deserialize)]
struct Case {
    task: Value,
    completion: String,
    /// Echoed as the output row's first key, so results join back to their source.
    id: Option<Value>,
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
        let mut results: Vec<Option<Value>> = vec![None; block.len()];
        std::thread::scope(|s| {
            let chunk = block.len().div_ceil(workers);
            for (lines, out) in block.chunks(chunk).zip(results.chunks_mut(chunk)) {
                s.spawn(move || {
                    for ((n, line), slot) in lines.iter().zip(out.iter_mut()) {
                        *slot = Some(score_line(rubric, *n + 1, line));
                    }
                });
            }
        });
        for r in results.into_iter().flatten() {
            counts.lines += 1;
            if !r["error"].is_null() {
                counts.errors += 1;
            }
            serde_json::to_writer(&mut output, &r)?;
            output.write_all(b"\n")?;
        }
    }
    output.flush()?;
    Ok(counts)
}

fn score_line(rubric: &Rubric, n: usize, line: &std::io::Result<String>) -> Value {
    let line = match line {
        Ok(l) => l,
        Err(e) => return error_row(format!("line {n}: cannot read: {e}")),
    };
    if line.trim().is_empty() {
        return error_row(format!("line {n}: empty line"));
    }
    let case: Case = match serde_json::from_str(line) {
        Ok(c) => c,
        Err(e) => return error_row(format!("line {n}: {e}")),
    };
    let row = if case.task.is_object() {
        let task = Task::new(format!("line-{n}"), case.task);
        result_row(&rubric.score(&task, &Trajectory::from_completion(Vec::new(), &case.completion)))
    } else {
        error_row(format!("line {n}: field `task` must be an object"))
    };
    match (case.id, row) {
        (Some(id), Value::Object(rest)) => {
            let mut row = Map::from_iter([("id".to_string(), id)]);
            row.extend(rest);
            Value::Object(row)
        }
        (_, row) => row,
    }
}

fn error_row(error: String) -> Value {
    json!({ "reward": null, "terms": {}, "error": error })
}

/// The output row of a scored case: `reward`, `terms`, `error`, and each term's diagnostics
/// under `details`.
pub fn result_row(scored: &Scored) -> Value {
    let mut terms = Map::new();
    let mut details = Map::new();
    for t in &scored.terms {
        terms.insert(t.name.clone(), t.value.as_ref().ok().map_or(Value::Null, |v| json!(v)));
        if !t.info.is_null() {
            details.insert(t.name.clone(), t.info.clone());
        }
    }
    json!({ "reward": scored.total(), "terms": terms, "error": scored.error(), "details": details })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
