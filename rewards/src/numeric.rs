//! `answer/numeric`: the completion's number is within tolerance of the task's `answer`.
//!
//! Numbers may be written with thousands separators (`1,234.5`), as percentages (`12.5%`), in
//! scientific notation (`6.02e23`, `1.5 \times 10^{3}`), or as fractions (`3/4`,
//! `\frac{3}{4}`, `-\frac{1}{2}`). Task: `{"answer": "<number>"}` (a JSON number also works),
//! optionally `"atol"`, `"rtol"` (override the config) and `"extract"`. The test is numpy's
//! `isclose`: `|given - gold| <= atol + rtol * |gold|`. When exactly one side is a percentage,
//! either reading of it matches (`50%` against `0.5` or `50`), as `math-verify` does.

use crate::extract::{self, Extractor};
use crate::latex::{self, Value};
use crate::shaping::{self, Check, Checked, Shaping};
use rlvr_engine::{BoxError, Config, Registry, RewardError, Rubric, Task, parse_config};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

/// Settings of the reward's config.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NumericConfig {
    /// Absolute tolerance. Default 0.
    pub atol: f64,
    /// Relative tolerance, of the gold value. Default 1e-9 (equal up to float rounding).
    pub rtol: f64,
    /// Where the answer is. Default `auto`.
    pub extract: Extractor,
    /// Shaping terms and gating.
    pub shaping: Shaping,
}

impl Default for NumericConfig {
    fn default() -> Self {
        Self { atol: 0.0, rtol: 1e-9, extract: Extractor::Auto, shaping: Shaping::default() }
    }
}

/// A number as written: its value and whether it was a percentage (`50%` is 50, percent).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Number {
    /// The value as written (`50` for `50%`).
    pub value: f64,
    /// Written with `%`.
    pub percent: bool,
}

/// Parses one number in any of the supported notations; `None` if `s` is not one finite
/// number.
pub fn parse_number(s: &str) -> Option<Number> {
    let mut t: String = s.trim().replace("\\$", "").replace("\\%", "%").replace("\\,", "").replace(['$', ' '], "");
    while t.ends_with('.') {
        t.pop();
    }
    let percent = t.ends_with('%');
    if percent {
        t.pop();
    }
    if t.contains(',') {
        let plain = t.replace(',', "");
        if !is_grouped(&t) {
            return None;
        }
        t = plain;
    }
    if t.is_empty() || t.len() > latex::MAX_LEN {
        return None;
    }
    // Rust's float syntax, minus its words (`inf`, `NaN`), which are not answers.
    let value = if t.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) {
        t.parse::<f64>().ok()?
    } else {
        match latex::parse(&t).ok()? {
            Value::Scalar { expr, percent: false } => {
                let has_var = std::cell::Cell::new(false);
                let n = expr.eval(&|_| {
                    has_var.set(true);
                    f64::NAN
                });
                if has_var.get() {
                    return None;
                }
                n.v
            }
            _ => return None,
        }
    };
    value.is_finite().then_some(Number { value, percent })
}

fn is_grouped(t: &str) -> bool {
    let t = t.trim_start_matches(['-', '+']);
    let int = t.split('.').next().unwrap_or("");
    let mut groups = int.split(',');
    let first = groups.next().unwrap_or("");
    (1..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_digit())
        && groups.all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))
}

fn readings(n: Number, other: Number) -> Vec<f64> {
    if n.percent && !other.percent { vec![n.value, n.value / 100.0] } else { vec![n.value] }
}

/// Whether `given` matches `gold` under the tolerances.
pub fn matches(gold: Number, given: Number, atol: f64, rtol: f64) -> bool {
    readings(gold, given)
        .into_iter()
        .any(|g| readings(given, gold).into_iter().any(|x| (x - g).abs() <= atol + rtol * g.abs()))
}

fn tolerance(task: &Task, key: &str, default: f64) -> Result<f64, RewardError> {
    match task.data.get(key) {
        None => Ok(default),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 => Ok(x),
            _ => Err(RewardError::new(format!("task {}: `{key}` must be a finite number >= 0, found {v}", task.id))),
        },
    }
}

/// The task's gold number; a missing, non-numeric or non-finite one is the task's fault.
pub fn gold(task: &Task) -> Result<Number, RewardError> {
    let text = match task.data.get("answer") {
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => task.str_field("answer")?.to_string(),
    };
    parse_number(&text)
        .ok_or_else(|| RewardError::new(format!("task {}: gold answer `{text}` is not a finite number", task.id)))
}

/// Checks one completion.
pub fn check(task: &Task, completion: &str, cfg: &NumericConfig) -> Result<Checked, RewardError> {
    let gold = gold(task)?;
    let atol = tolerance(task, "atol", cfg.atol)?;
    let rtol = tolerance(task, "rtol", cfg.rtol)?;
    let how = extract::for_task(task, cfg.extract)?;
    let Some((rule, found)) = how.find(completion) else {
        return Ok(Checked { value: 0.0, found: false, info: json!({ "answer": null, "extract": how.name() }) });
    };
    let mut info = json!({ "answer": found.text, "extract": rule.name() });
    // "<answer>42 apples</answer>": the number inside the answer, when the whole is not one.
    let given = parse_number(found.text).or_else(|| {
        let inner = extract::last_number(found.text)?;
        info["number"] = json!(inner.text);
        parse_number(inner.text)
    });
    let value = match given {
        Some(g) if matches(gold, g, atol, rtol) => 1.0,
        Some(_) => 0.0,
        None => {
            info["error"] = json!("not_a_number");
            0.0
        }
    };
    Ok(Checked { value, found: true, info })
}

/// Builds the rubric: `accuracy`, `format`, and any shaping terms.
pub fn rubric(config: &Config) -> Result<Rubric, BoxError> {
    let cfg: NumericConfig = parse_config(config)?;
    if !(cfg.atol.is_finite() && cfg.atol >= 0.0 && cfg.rtol.is_finite() && cfg.rtol >= 0.0) {
        return Err("atol and rtol must be finite and >= 0".into());
    }
    let shaping = cfg.shaping.clone();
    let check: Check = Arc::new(move |task: &Task, text: &str| check(task, text, &cfg));
    shaping::rubric("accuracy", check, shaping)
}

/// Registers `answer/numeric`.
pub fn register(registry: &mut Registry) {
    registry.reward(
        "answer/numeric",
        "the answer's number is within atol + rtol*|gold| of the task's `answer`",
        rubric,
    );
    registry.defaults(rlvr_engine::Kind::Reward, "answer/numeric", NumericConfig::default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlvr_engine::Trajectory;

    fn n(s: &str) -> Option<f64> {
        parse_number(s).map(|n| if n.percent { n.value / 100.0 } else { n.value })
    }

    #[test]
    fn notations() {
        assert_eq!(n("1,234,567.5"), Some(1_234_567.5));
        assert_eq!(n("$1,000"), Some(1000.0));
        assert_eq!(n("12.5%"), Some(0.125));
        assert_eq!(n(r"12.5\%"), Some(0.125));
        assert_eq!(n("6.02e23"), Some(6.02e23));
        assert_eq!(n("-2.5E-3"), Some(-0.0025));
        assert_eq!(n(r"1.5 \times 10^{3}"), Some(1500.0));
        assert_eq!(n("3/4"), Some(0.75));
        assert_eq!(n(r"-\frac{1}{2}"), Some(-0.5));
        assert_eq!(n("42."), Some(42.0));
        assert_eq!(n("1,23"), None, "not a thousands grouping");
        assert_eq!(n("inf"), None);
        assert_eq!(n("NaN"), None);
        assert_eq!(n("1e999"), None);
        assert_eq!(n("x+1"), None);
        assert_eq!(n("(1,2)"), None);
    }

    fn score(task: serde_json::Value, completion: &str) -> rlvr_engine::Scored {
        rubric(&Config::new()).unwrap().score(&Task::new("t", task), &Trajectory::from_completion(vec![], completion))
    }

    #[test]
    fn tolerances_by_hand() {
        let t = json!({"answer": "100", "atol": 0.5});
        assert_eq!(score(t.clone(), "<answer>100.5</answer>").total(), Some(1.0));
        assert_eq!(score(t, "<answer>100.6</answer>").total(), Some(0.0));
        let r = json!({"answer": "200", "rtol": 0.01});
        assert_eq!(score(r.clone(), "ANSWER: 202").total(), Some(1.0));
        assert_eq!(score(r, "ANSWER: 202.1").total(), Some(0.0));
        assert_eq!(score(json!({"answer": "0.3"}), "0.1 + 0.2 = 0.3").total(), Some(1.0));
        assert_eq!(score(json!({"answer": 7}), "so 7 apples").total(), Some(1.0));
    }

    #[test]
    fn percent_either_reading_and_inner_number() {
        assert_eq!(score(json!({"answer": "50%"}), r"\boxed{0.5}").total(), Some(1.0));
        assert_eq!(score(json!({"answer": "50%"}), r"\boxed{50}").total(), Some(1.0));
        assert_eq!(score(json!({"answer": "0.5"}), r"\boxed{50\%}").total(), Some(1.0));
        assert_eq!(score(json!({"answer": "50%"}), r"\boxed{5}").total(), Some(0.0));
        let s = score(json!({"answer": "42"}), "<answer>42 apples</answer>");
        assert_eq!((s.total(), s.terms[0].info["number"].as_str()), (Some(1.0), Some("42")));
    }

    #[test]
    fn bad_gold_and_tolerances_are_errors() {
        for task in [
            json!({"answer": "NaN"}),
            json!({"answer": "inf"}),
            json!({"answer": "ten"}),
            json!({"answer": "1", "atol": -1}),
            json!({"answer": "1", "rtol": "big"}),
        ] {
            assert_eq!(score(task.clone(), "1").total(), None, "{task}");
        }
        let cfg: Config = toml::from_str("atol = nan").unwrap();
        assert!(rubric(&cfg).is_err());
    }
}
