//! `answer/exact`: the answer in `<answer>` tags equals the task's reference string.

use crate::extract;
use rlvr_engine::{BoxError, Config, Registry, Reward, RewardError, Rubric, Task, Trajectory, parse_config};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Settings of the reward's config (and, per task, of fields of the same name in the task).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExactConfig {
    /// Compare after trimming, collapsing whitespace runs and lower-casing. Default true.
    pub normalize: bool,
    /// Where the answer is: `"answer_tag"` (the last `<answer>...</answer>`; none found scores 0)
    /// or `"whole"` (the whole final message). Default `"answer_tag"`.
    pub extract: String,
}

impl Default for ExactConfig {
    fn default() -> Self {
        Self { normalize: true, extract: "answer_tag".into() }
    }
}

fn normalized(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// The answer the completion gives, by `mode`, or `None` if it gives none.
fn answer<'a>(completion: &'a str, mode: &str) -> Result<Option<&'a str>, RewardError> {
    match mode {
        "answer_tag" => Ok(extract::last_tag(completion, "answer").map(|f| f.text)),
        "whole" => Ok(Some(completion.trim())),
        other => Err(RewardError::new(format!("unknown extract mode `{other}`; use answer_tag or whole"))),
    }
}

/// Builds the rubric: `exact_match` (weight 1) and the metric `format` (an answer was found).
pub fn rubric(config: &Config) -> Result<Rubric, BoxError> {
    let base: ExactConfig = parse_config(config)?;
    answer("", &base.extract).map_err(|e| e.0)?;
    let mode = base.extract.clone();
    Ok(Rubric::new()
        .term("exact_match", 1.0, move |task: &Task, tr: &Trajectory| {
            let reference = task.str_field("answer")?;
            let mode = task.data.get("extract").and_then(|v| v.as_str()).unwrap_or(&base.extract);
            let normalize = task.data.get("normalize").and_then(|v| v.as_bool()).unwrap_or(base.normalize);
            let Some(given) = answer(tr.final_answer(), mode)? else {
                return Ok(Reward::with_info(0.0, json!({ "answer": null })));
            };
            let ok = if normalize { normalized(given) == normalized(reference) } else { given == reference };
            Ok(Reward::with_info(if ok { 1.0 } else { 0.0 }, json!({ "answer": given })))
        })
        .metric("format", move |task: &Task, tr: &Trajectory| {
            let mode = task.data.get("extract").and_then(|v| v.as_str()).unwrap_or(&mode);
            Ok(Reward::from(answer(tr.final_answer(), mode)?.is_some()))
        }))
}

/// Registers `answer/exact`.
pub fn register(registry: &mut Registry) {
    registry.reward(
        "answer/exact",
        "answer (in <answer> tags by default) equals the task's `answer` string, optionally normalized",
        rubric,
    );
    registry.defaults(rlvr_engine::Kind::Reward, "answer/exact", ExactConfig::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(task: serde_json::Value, completion: &str) -> rlvr_engine::Scored {
        rubric(&Config::new()).unwrap().score(&Task::new("t", task), &Trajectory::from_completion(vec![], completion))
    }

    #[test]
    fn tag_normalisation_and_missing_answer() {
        assert_eq!(score(json!({"answer": "Paris"}), "<answer>  paris </answer>").total(), Some(1.0));
        assert_eq!(score(json!({"answer": "Paris", "normalize": false}), "<answer>paris</answer>").total(), Some(0.0));
        let none = score(json!({"answer": "Paris"}), "Paris");
        assert_eq!((none.total(), none.get("format")), (Some(0.0), Some(0.0)));
        assert_eq!(score(json!({"answer": "Paris", "extract": "whole"}), " Paris\n").total(), Some(1.0));
    }

    #[test]
    fn missing_reference_is_a_verifier_error_not_a_zero() {
        let s = score(json!({"gold": "x"}), "<answer>x</answer>");
        assert_eq!(s.total(), None);
        assert!(s.error().unwrap().contains("missing field `answer`"));
    }

    #[test]
    fn bad_mode_in_config_is_rejected_at_build() {
        let cfg: Config = toml::from_str("extract = \"boxed\"").unwrap();
        assert!(rubric(&cfg).is_err());
    }
}
