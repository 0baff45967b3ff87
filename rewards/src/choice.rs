//! `answer/choice`: multiple-choice letter match.
//!
//! Task: `{"answer": "B"}`, optionally `"choices"` (how many options, or the list of them) so
//! that a letter past the last option is told apart from a wrong one. The answer is read from
//! the usual places (`\boxed{}`, `<answer>`, a final `ANSWER` line), else from the last `(X)` in
//! the text; in what was found, the letter is the first one standing alone: `B`, `(B)`, `B)`,
//! `B.`, `B: text`, `\text{B}`. Case does not matter.

use crate::extract::{self, Extractor, Found};
use crate::shaping::{self, Check, Checked, Shaping};
use rlvr_engine::{BoxError, Config, Registry, RewardError, Rubric, Task, parse_config};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

/// Settings of the reward's config.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChoiceConfig {
    /// Shaping terms and gating.
    pub shaping: Shaping,
}

/// The letter a found answer names, upper-cased: the first letter with no letter or digit
/// right after it, when nothing but brackets and spaces come before it.
pub fn letter(answer: &str) -> Option<char> {
    let t = answer.trim().replace("\\text{", "").replace("\\mathrm{", "");
    let t = t.trim_start_matches(['(', '[', '{', ' ', '*']);
    let mut chars = t.chars();
    let c = chars.next()?;
    let next = chars.next();
    (c.is_ascii_alphabetic() && next.is_none_or(|n| !n.is_alphanumeric())).then(|| c.to_ascii_uppercase())
}

/// The last `(X)` in the text, a lone letter in brackets.
fn last_bracketed_letter(text: &str) -> Option<Found<'_>> {
    let b = text.as_bytes();
    (0..b.len().saturating_sub(2)).rev().find_map(|i| {
        (b[i] == b'(' && b[i + 1].is_ascii_alphabetic() && b[i + 2] == b')').then(|| Found {
            text: &text[i + 1..i + 2],
            start: i + 1,
            end: i + 2,
        })
    })
}

fn option_count(task: &Task) -> Result<Option<u32>, RewardError> {
    let bad = |v: &serde_json::Value| {
        RewardError::new(format!(
            "task {}: `choices` must be a count in 1..=26 or a list of 1 to 26 options, found {v}",
            task.id
        ))
    };
    match task.data.get("choices") {
        None => Ok(None),
        Some(v @ serde_json::Value::Array(a)) if a.is_empty() || a.len() > 26 => Err(bad(v)),
        Some(serde_json::Value::Array(a)) => Ok(Some(a.len() as u32)),
        Some(v) => match v.as_u64() {
            Some(n @ 1..=26) => Ok(Some(n as u32)),
            _ => Err(bad(v)),
        },
    }
}

/// Checks one completion.
pub fn check(task: &Task, completion: &str) -> Result<Checked, RewardError> {
    let gold_text = task.str_field("answer")?;
    let count = option_count(task)?;
    let in_range = |l: char| count.is_none_or(|n| (l as u32 - 'A' as u32) < n);
    let gold = letter(gold_text).filter(|&l| gold_text.trim().len() <= 3 && in_range(l)).ok_or_else(|| {
        RewardError::new(format!("task {}: gold answer `{gold_text}` is not a letter among the choices", task.id))
    })?;
    let how = extract::for_task(task, Extractor::Auto)?;
    let found = match how {
        Extractor::Auto => [Extractor::Boxed, Extractor::AnswerTag, Extractor::AnswerLine]
            .into_iter()
            .find_map(|e| e.find(completion).map(|(r, f)| (r.name(), f)))
            .or_else(|| last_bracketed_letter(completion).map(|f| ("bracketed_letter", f))),
        other => other.find(completion).map(|(r, f)| (r.name(), f)),
    };
    let Some((rule, found)) = found else {
        return Ok(Checked { value: 0.0, found: false, info: json!({ "answer": null }) });
    };
    let mut info = json!({ "answer": found.text, "extract": rule });
    let value = match letter(found.text) {
        Some(l) if !in_range(l) => {
            info["error"] = json!("out_of_range");
            0.0
        }
        Some(l) => f64::from(u8::from(l == gold)),
        None => {
            info["error"] = json!("no_letter");
            0.0
        }
    };
    Ok(Checked { value, found: true, info })
}

/// Builds the rubric: `accuracy`, `format`, and any shaping terms.
pub fn rubric(config: &Config) -> Result<Rubric, BoxError> {
    let cfg: ChoiceConfig = parse_config(config)?;
    let check: Check = Arc::new(check);
    shaping::rubric("accuracy", check, cfg.shaping)
}

/// Registers `answer/choice`.
pub fn register(registry: &mut Registry) {
    registry.reward("answer/choice", "multiple choice: the answer's letter equals the task's `answer` letter", rubric);
    registry.defaults(rlvr_engine::Kind::Reward, "answer/choice", ChoiceConfig::default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlvr_engine::Trajectory;

    #[test]
    fn letter_forms() {
        for s in ["B", "(B)", "b", "B)", "B.", "B: the second", r"\text{B}", "**B**"] {
            assert_eq!(letter(s), Some('B'), "{s}");
        }
        assert_eq!(letter("Because"), None);
        assert_eq!(letter("42"), None);
    }

    fn score(task: serde_json::Value, completion: &str) -> Option<f64> {
        rubric(&Config::new())
            .unwrap()
            .score(&Task::new("t", task), &Trajectory::from_completion(vec![], completion))
            .total()
    }

    #[test]
    fn where_the_letter_is_found() {
        let t = json!({"answer": "C", "choices": 4});
        assert_eq!(score(t.clone(), r"\boxed{C}"), Some(1.0));
        assert_eq!(score(t.clone(), "I think (A) is wrong, so (C)."), Some(1.0));
        assert_eq!(score(t.clone(), "Answer: c) 12"), Some(1.0));
        assert_eq!(score(t.clone(), "<answer>D</answer>"), Some(0.0));
        assert_eq!(score(t.clone(), "<answer>E</answer>"), Some(0.0));
        assert_eq!(score(t, "no idea"), Some(0.0));
    }

    #[test]
    fn bad_gold_or_choices_are_errors() {
        assert_eq!(score(json!({"answer": "E", "choices": 4}), "E"), None);
        assert_eq!(score(json!({"answer": "12"}), "12"), None);
        assert_eq!(score(json!({"answer": "A", "choices": 0}), "A"), None);
        assert_eq!(score(json!({"answer": "A", "choices": ["x", "y"]}), "(A)"), Some(1.0));
    }
}
