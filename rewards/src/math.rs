//! `math/equivalence`: the completion's answer is mathematically equivalent to the task's
//! `answer`, on the LaTeX subset of [`crate::latex`], with `math-verify`'s rules for numbers.
//!
//! Task: `{"answer": "<LaTeX>"}`, optionally `"extract"` (default `auto`: last `\boxed{}`,
//! else `<answer>` tags, else a final `ANSWER` line, else the last number). A gold answer the
//! parser cannot read is a verifier error (the task is broken); a completion it cannot read
//! scores 0 with the parse error in `info`.

use crate::extract::{self, Extractor};
use crate::latex;
use crate::shaping::{self, Check, Checked, Shaping};
use rlvr_engine::{BoxError, Config, Registry, RewardError, Rubric, Task, parse_config};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Settings of the reward's config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MathConfig {
    /// Where the answer is. Default `auto`.
    pub extract: Extractor,
    /// Shaping terms and gating.
    pub shaping: Shaping,
}

impl Default for MathConfig {
    fn default() -> Self {
        Self { extract: Extractor::Auto, shaping: Shaping::default() }
    }
}

/// Checks one completion against the task's answer.
pub fn check(task: &Task, completion: &str, default: Extractor) -> Result<Checked, RewardError> {
    let gold_text = task.str_field("answer")?;
    let gold = latex::parse(gold_text)
        .map_err(|e| RewardError::new(format!("task {}: gold answer `{gold_text}` cannot be parsed: {e}", task.id)))?;
    let how = extract::for_task(task, default)?;
    let Some((rule, found)) = how.find(completion) else {
        return Ok(Checked { value: 0.0, found: false, info: json!({ "answer": null, "extract": how.name() }) });
    };
    let mut info = json!({
        "answer": found.text,
        "extract": rule.name(),
        "start": found.start,
        "end": found.end,
    });
    let value = match latex::parse(found.text) {
        Ok(given) => f64::from(u8::from(latex::equivalent(&gold, &given))),
        Err(e) => {
            info["error"] = json!("parse");
            info["detail"] = json!(e.0);
            0.0
        }
    };
    Ok(Checked { value, found: true, info })
}

/// Builds the rubric: `accuracy`, `format`, and any shaping terms.
pub fn rubric(config: &Config) -> Result<Rubric, BoxError> {
    let cfg: MathConfig = parse_config(config)?;
    let extract = cfg.extract;
    let check: Check = Arc::new(move |task: &Task, text: &str| check(task, text, extract));
    shaping::rubric("accuracy", check, cfg.shaping)
}

/// Registers `math/equivalence`.
pub fn register(registry: &mut Registry) {
    registry.reward(
        "math/equivalence",
        "answer (last \\boxed{} by default) is mathematically equivalent to the task's LaTeX `answer`",
        rubric,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlvr_engine::Trajectory;

    fn score(task: serde_json::Value, completion: &str) -> rlvr_engine::Scored {
        rubric(&Config::new()).unwrap().score(&Task::new("t", task), &Trajectory::from_completion(vec![], completion))
    }

    #[test]
    fn boxed_answer_is_checked_by_equivalence() {
        let s = score(json!({"answer": r"\frac{1}{2}"}), r"so \boxed{0.5}");
        assert_eq!(s.total(), Some(1.0));
        assert_eq!(s.terms[0].info["extract"], "boxed");
        assert_eq!(s.get("format"), Some(1.0));
        let wrong = score(json!({"answer": r"\frac{1}{2}"}), r"\boxed{0.4}");
        assert_eq!(wrong.total(), Some(0.0));
    }

    #[test]
    fn unparseable_answer_is_zero_but_broken_gold_is_an_error() {
        let s = score(json!({"answer": "3"}), r"\boxed{\weird{3}}");
        assert_eq!(s.total(), Some(0.0));
        assert_eq!(s.terms[0].info["error"], "parse");
        let e = score(json!({"answer": r"\frac{1}{"}), r"\boxed{1}");
        assert_eq!(e.total(), None);
        assert!(e.error().unwrap().contains("cannot be parsed"), "{:?}", e.error());
        let nan = score(json!({"answer": 3}), r"\boxed{3}");
        assert!(nan.error().unwrap().contains("must be a string"));
    }

    #[test]
    fn task_can_choose_the_extractor() {
        let t = json!({"answer": "7", "extract": "answer_tag"});
        assert_eq!(score(t.clone(), r"\boxed{7}").total(), Some(0.0));
        assert_eq!(score(t, "<answer>7</answer>").total(), Some(1.0));
        let bad = score(json!({"answer": "7", "extract": "nope"}), "7");
        assert!(bad.error().unwrap().contains("`extract` must be one of"));
    }

    #[test]
    fn megabyte_completion_is_bounded() {
        let big = format!("{}\\boxed{{{}}}", "think ".repeat(200_000), "1+".repeat(100_000));
        let s = score(json!({"answer": "2"}), &big);
        assert_eq!(s.total(), Some(0.0));
        assert_eq!(s.terms[0].info["error"], "parse");
    }
}
