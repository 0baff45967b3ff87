//! `causal/tvd` and `causal/tvd-dense`: a distribution answered as `ANSWER [p0, p1, ...]`,
//! judged by its total variation distance (TVD) to the task's reference.
//!
//! Terms: `format` (an answer list was found), `length` (it has one value per value of the
//! target) and `accuracy`: for `causal/tvd`, 1 when TVD <= `threshold` (default 0.02), else 0;
//! for `causal/tvd-dense`, max(1 - TVD, 0). An answer that is no distribution (NaN, negative,
//! not summing to 1 within `sum_tolerance`) scores 0 on accuracy; the reason is in the term's
//! info (`error`: `no_answer`, `no_list`, `not_a_number`, `wrong_length`, `not_finite`,
//! `negative`, `sum_not_one`). The reference is the task's `answer`, or, when it has none, the
//! exact answer to its `query` on its `network`; a broken task is a `RewardError`, never a zero.

use rlvr_engine::{BoxError, Config, Registry, Reward, RewardError, Rubric, Task, Trajectory, parse_config};
use super::answer;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::cell::RefCell;

/// Settings of the reward's config.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TvdConfig {
    /// Largest TVD that counts as correct for `causal/tvd`. Default 0.02.
    pub threshold: f64,
    /// How far from 1 an answer's sum may be. Default 0.01 (answers rounded to two decimals
    /// may miss 1 by a few hundredths of a percent; an answer off by more is no distribution).
    pub sum_tolerance: f64,
    /// Weight of the `format` term. Default 0 (a metric).
    pub format_weight: f64,
    /// Weight of the `length` term. Default 0 (a metric).
    pub length_weight: f64,
}

impl Default for TvdConfig {
    fn default() -> Self {
        Self { threshold: 0.02, sum_tolerance: 0.01, format_weight: 0.0, length_weight: 0.0 }
    }
}

/// The task's reference distribution, remembered for the last task this thread saw: the
/// `length` and `accuracy` terms of one completion both need it, and the completions of a
/// group arrive one after another with their task, while solving a query from its network
/// costs far more than recognising the task. The task is recognised by its content (the
/// fields the answer depends on, compared in full), never by a hash alone.
fn reference(task: &Task) -> Result<Vec<f64>, RewardError> {
    thread_local! {
        static LAST: RefCell<Option<Cached>> = const { RefCell::new(None) };
    }
    let field = |k: &str| task.data.get(k).unwrap_or(&Value::Null);
    let same = |stored: &[Value; 3]| KEY_FIELDS.iter().zip(stored).all(|(k, v)| v == field(k));
    let hit = LAST.with(|c| c.borrow().as_ref().filter(|(k, _)| same(k)).map(|(_, r)| r.clone()));
    let result = hit.unwrap_or_else(|| {
        let r = answer::reference(&task.data);
        let key = KEY_FIELDS.map(|k| field(k).clone());
        LAST.with(|c| *c.borrow_mut() = Some((key, r.clone())));
        r
    });
    result.map_err(|e| RewardError::new(format!("task {}: {e}", task.id)))
}

/// The task fields a reference depends on.
const KEY_FIELDS: [&str; 3] = ["answer", "network", "query"];

/// A task's key fields and its reference, or why it has none.
type Cached = ([Value; 3], Result<Vec<f64>, String>);

fn miss(category: &str, detail: Value) -> Reward {
    Reward::with_info(0.0, json!({ "error": category, "detail": detail }))
}

/// Builds the rubric; `dense` picks max(1 - TVD, 0) over the thresholded accuracy.
pub fn rubric(config: &Config, dense: bool) -> Result<Rubric, BoxError> {
    let c: TvdConfig = parse_config(config)?;
    if !(0.0..=1.0).contains(&c.threshold) {
        return Err(format!("threshold must lie in [0, 1], got {}", c.threshold).into());
    }
    if !(c.sum_tolerance >= 0.0 && c.sum_tolerance.is_finite()) {
        return Err(format!("sum_tolerance must be finite and >= 0, got {}", c.sum_tolerance).into());
    }
    for (name, w) in [("format_weight", c.format_weight), ("length_weight", c.length_weight)] {
        if !(w >= 0.0 && w.is_finite()) {
            return Err(format!("{name} must be finite and >= 0, got {w}").into());
        }
    }
    let (threshold, tolerance) = (c.threshold, c.sum_tolerance);
    Ok(Rubric::new()
        .term("format", c.format_weight, |_: &Task, tr: &Trajectory| {
            Ok(match answer::parse(tr.final_answer()) {
                Ok(p) => Reward::with_info(1.0, json!({ "values": p.len() })),
                Err(e) => miss(e.category(), json!(e.to_string())),
            })
        })
        .term("length", c.length_weight, |task: &Task, tr: &Trajectory| {
            let want = reference(task)?.len();
            Ok(match answer::parse(tr.final_answer()) {
                Ok(p) if p.len() == want => Reward::from(1.0),
                Ok(p) => miss("wrong_length", json!({ "given": p.len(), "expected": want })),
                Err(e) => miss(e.category(), json!(e.to_string())),
            })
        })
        .term("accuracy", 1.0, move |task: &Task, tr: &Trajectory| {
            let want = reference(task)?;
            let given = match answer::parse(tr.final_answer()) {
                Ok(p) => p,
                Err(e) => return Ok(miss(e.category(), json!(e.to_string()))),
            };
            if given.len() != want.len() {
                return Ok(miss("wrong_length", json!({ "given": given.len(), "expected": want.len() })));
            }
            if let Err(e) = answer::check_distribution(&given, tolerance) {
                return Ok(miss(e.category(), json!(e.to_string())));
            }
            let tvd = answer::tvd(&given, &want);
            let value = if dense { (1.0 - tvd).max(0.0) } else { f64::from(u8::from(tvd <= threshold)) };
            Ok(Reward::with_info(value, json!({ "tvd": tvd, "answer": given, "reference": want })))
        }))
}

/// Registers `causal/tvd` and `causal/tvd-dense`.
pub fn register(registry: &mut Registry) {
    registry.reward(
        "causal/tvd",
        "ANSWER [p0, ...] within total variation distance `threshold` (0.02) of the exact distribution",
        |c| rubric(c, false),
    );
    registry.reward(
        "causal/tvd-dense",
        "ANSWER [p0, ...] scored max(1 - TVD, 0) against the exact distribution",
        |c| rubric(c, true),
    );
    registry.defaults(rlvr_engine::Kind::Reward, "causal/tvd", TvdConfig::default());
    registry.defaults(rlvr_engine::Kind::Reward, "causal/tvd-dense", TvdConfig::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(dense: bool, task: Value, completion: &str) -> rlvr_engine::Scored {
        rubric(&Config::new(), dense)
            .unwrap()
            .score(&Task::new("t", task), &Trajectory::from_completion(vec![], completion))
    }

    fn error_of(s: &rlvr_engine::Scored, term: &str) -> Value {
        s.terms.iter().find(|t| t.name == term).unwrap().info["error"].clone()
    }

    #[test]
    fn threshold_and_dense_values() {
        let task = json!({ "answer": [0.25, 0.75] });
        assert_eq!(score(false, task.clone(), "so ANSWER [0.26, 0.74]").total(), Some(1.0));
        assert_eq!(score(false, task.clone(), "ANSWER [0.3, 0.7]").total(), Some(0.0));
        let d = score(true, task.clone(), "ANSWER [0.35, 0.65]").total().unwrap();
        assert!((d - 0.9).abs() < 1e-12, "{d}");
        assert_eq!(score(true, task, "ANSWER [1, 0]").total(), Some(0.25));
    }

    #[test]
    fn bad_answers_score_zero_with_the_reason() {
        let task = json!({ "answer": [0.2, 0.3, 0.5] });
        for (completion, format, why) in [
            ("0.2, 0.3, 0.5", 0.0, "no_answer"),
            ("ANSWER 0.2 0.3 0.5", 0.0, "no_list"),
            ("ANSWER [a, b, c]", 0.0, "not_a_number"),
            ("ANSWER [0.5, 0.5]", 1.0, "wrong_length"),
            ("ANSWER [NaN, 0.5, 0.5]", 1.0, "not_finite"),
            ("ANSWER [-0.2, 0.7, 0.5]", 1.0, "negative"),
            ("ANSWER [0.2, 0.3, 0.3]", 1.0, "sum_not_one"),
        ] {
            for dense in [false, true] {
                let s = score(dense, task.clone(), completion);
                assert_eq!(s.get("accuracy"), Some(0.0), "{completion}");
                assert_eq!(s.get("format"), Some(format), "{completion}");
                assert_eq!(error_of(&s, "accuracy"), json!(why), "{completion}");
            }
        }
        assert_eq!(score(false, task.clone(), "ANSWER [0.5, 0.5]").get("length"), Some(0.0));
        assert_eq!(score(false, task, "ANSWER [0.2, 0.3, 0.5]").get("length"), Some(1.0));
    }

    #[test]
    fn reference_is_computed_when_the_task_has_none() {
        // P(Y=1 | do(X=1)) = 0.6*0.4 + 0.4*0.9 = 0.6 in the confounded network.
        let task = json!({
            "network": {"variables": [
                {"name": "Z", "values": ["0", "1"], "parents": [], "cpt": [[0.6, 0.4]]},
                {"name": "X", "values": ["0", "1"], "parents": ["Z"], "cpt": [[0.8, 0.2], [0.2, 0.8]]},
                {"name": "Y", "values": ["0", "1"], "parents": ["X", "Z"],
                 "cpt": [[0.9, 0.1], [0.5, 0.5], [0.6, 0.4], [0.1, 0.9]]}
            ]},
            "query": {"level": "interventional", "target": "Y", "intervention": {"X": "1"}}
        });
        assert_eq!(score(false, task.clone(), "ANSWER [0.4, 0.6]").total(), Some(1.0));
        assert_eq!(score(false, task, "ANSWER [0.236, 0.764]").total(), Some(0.0), "the associational answer is wrong");
    }

    #[test]
    fn broken_tasks_are_verifier_errors_not_zeros() {
        let s = score(false, json!({ "answer": [0.5, 0.6] }), "ANSWER [0.5, 0.5]");
        assert_eq!(s.total(), None);
        assert!(s.error().unwrap().contains("not a distribution"), "{:?}", s.error());
        let s = score(false, json!({ "prompt": "x" }), "ANSWER [0.5, 0.5]");
        assert!(s.error().unwrap().contains("neither `answer` nor `network`"));
        let bad_row = json!({
            "network": {"variables": [{"name": "A", "values": ["0", "1"], "parents": [], "cpt": [[0.5, 0.6]]}]},
            "query": {"level": "associational", "target": "A"}
        });
        let s = score(false, bad_row, "ANSWER [0.5, 0.5]");
        assert!(s.error().unwrap().contains("variable `A`, CPT row 0"), "{:?}", s.error());
    }

    #[test]
    fn config_is_checked() {
        let cfg: Config = toml::from_str("threshold = 2.0").unwrap();
        assert!(rubric(&cfg, false).is_err());
        let cfg: Config = toml::from_str("treshold = 0.1").unwrap();
        assert!(rubric(&cfg, false).err().unwrap().to_string().contains("treshold"));
        let cfg: Config = toml::from_str("format_weight = 0.1\nlength_weight = 0.1").unwrap();
        assert!((rubric(&cfg, false).unwrap().max_total() - 1.2).abs() < 1e-12);
    }

    #[test]
    fn cached_references_never_cross_tasks() {
        // The same network with one probability changed: a cache keyed loosely would answer
        // the second task with the first's distribution.
        let task = |p: f64| {
            json!({
                "network": {"variables": [
                    {"name": "X", "values": ["0", "1"], "parents": [], "cpt": [[1.0 - p, p]]}
                ]},
                "query": {"level": "associational", "target": "X", "evidence": {}}
            })
        };
        for _ in 0..3 {
            assert_eq!(score(false, task(0.3), "ANSWER [0.7, 0.3]").total(), Some(1.0));
            assert_eq!(score(false, task(0.6), "ANSWER [0.7, 0.3]").total(), Some(0.0));
            assert_eq!(score(false, task(0.6), "ANSWER [0.4, 0.6]").total(), Some(1.0));
        }
        // A broken task stays an error every time it is scored.
        let broken = json!({"network": {"variables": []}, "query": {"level": "associational", "target": "Y"}});
        for _ in 0..2 {
            assert_eq!(score(false, broken.clone(), "ANSWER [1.0]").total(), None);
        }
    }
}
