//! `math/equivalence`: the completion's answer is mathematically equivalent to the task's
//! `answer`, on the LaTeX subset of [`crate::latex`], with `math-verify`'s rules for where the
//! answer is ([`find`]) and for numbers.
//!
//! Task: `{"answer": "<LaTeX>"}`, and optionally:
//! - `extract`: where the answer is. `auto` (default): math-verify's tiers, bare numbers
//!   included; `latex`: the same without bare numbers; or one of the shared rules (`boxed`,
//!   `answer_tag`, `answer_line`, `last_number`, `whole`);
//! - `precision`: decimal places numbers are rounded to when neither is an exact integer (6);
//! - `strict` (true): when false, the answer's variables may be renamed to the gold's;
//! - `set_matches_relation` (false): a gold set also matches a relation in the answer.
//!
//! The gold is read like the answer when it marks its answer (`$..$`, `\boxed{}`), and whole
//! otherwise. A gold the parser cannot read is a verifier error (the task is broken), unless
//! the answer is the same text; an answer it cannot read scores 0 with the parse error in
//! `info`.

pub mod find;

use crate::extract::Extractor;
use crate::latex::{self, Rules, Value};
use crate::shaping::{self, Check, Checked, Shaping};
use find::Candidate;
use rlvr_engine::{BoxError, Config, Registry, RewardError, Rubric, Task, parse_config};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use std::sync::Arc;

/// Where the math answer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Find {
    /// math-verify's tiers with bare numbers ([`find::candidates`]).
    Auto,
    /// math-verify's tiers without bare numbers (its `LatexExtractionConfig` alone).
    Latex,
    /// One of the shared rules.
    Rule(Extractor),
}

impl TryFrom<String> for Find {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "auto" => Ok(Find::Auto),
            "latex" => Ok(Find::Latex),
            other => serde_json::from_value(json!(other)).map(Find::Rule).map_err(|_| {
                format!("`extract` must be one of auto, latex, boxed, answer_tag, answer_line, last_number, whole; found `{other}`")
            }),
        }
    }
}

/// Settings of the reward's config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MathConfig {
    /// Where the answer is. Default `auto`.
    pub extract: Find,
    /// Shaping terms and gating.
    pub shaping: Shaping,
}

impl Default for MathConfig {
    fn default() -> Self {
        Self { extract: Find::Auto, shaping: Shaping::default() }
    }
}

/// The candidates for the answer in `text`, in the order to try them.
fn candidates(text: &str, how: Find) -> Vec<Candidate> {
    let rule = match how {
        Find::Auto => return find::candidates(text, true),
        Find::Latex => return find::candidates(text, false),
        Find::Rule(Extractor::Auto) => return find::candidates(text, true),
        // Numbers as math-verify reads them (decimal commas, thousands spaces, percent words).
        Find::Rule(Extractor::LastNumber) => {
            return find::candidates(text, true).into_iter().filter(|c| c.rule == "number").take(1).collect();
        }
        Find::Rule(rule) => rule,
    };
    rule.find(text)
        .map(|(r, f)| Candidate { rule: r.name(), text: f.text.to_string(), start: f.start, end: f.end })
        .into_iter()
        .collect()
}

/// The task's options, each checked.
fn task_options(task: &Task, default: Find) -> Result<(Find, Rules), RewardError> {
    let bad = |field: &str, want: &str, found: &Json| {
        RewardError::new(format!("task {}: `{field}` must be {want}, found {found}", task.id))
    };
    let how = match task.data.get("extract") {
        None => default,
        Some(Json::String(s)) => {
            Find::try_from(s.clone()).map_err(|e| RewardError::new(format!("task {}: {e}", task.id)))?
        }
        Some(other) => return Err(bad("extract", "a string", other)),
    };
    let mut rules = Rules::default();
    if let Some(p) = task.data.get("precision") {
        rules.precision =
            p.as_u64().filter(|p| *p <= 15).ok_or_else(|| bad("precision", "an integer from 0 to 15", p))? as u32;
    }
    for (field, slot) in [("strict", &mut rules.strict), ("set_matches_relation", &mut rules.set_matches_relation)] {
        if let Some(v) = task.data.get(field) {
            *slot = v.as_bool().ok_or_else(|| bad(field, "true or false", v))?;
        }
    }
    Ok((how, rules))
}

fn same_text(a: &str, b: &str) -> bool {
    a.chars().filter(|c| !c.is_whitespace()).eq(b.chars().filter(|c| !c.is_whitespace()))
}

/// Checks one completion against the task's answer.
pub fn check(task: &Task, completion: &str, default: Find) -> Result<Checked, RewardError> {
    let gold_text = task.str_field("answer")?;
    let (how, rules) = task_options(task, default)?;
    let gold_how = match how {
        Find::Rule(Extractor::LastNumber) => how,
        Find::Latex => Find::Latex,
        _ => Find::Auto,
    };
    // The gold's candidates: the whole gold first unless it marks its answer.
    let mut gold_cands = if find::is_marked(gold_text) || how == Find::Rule(Extractor::LastNumber) {
        candidates(gold_text, gold_how)
    } else {
        Vec::new()
    };
    gold_cands.push(Candidate { rule: "whole", text: gold_text.to_string(), start: 0, end: gold_text.len() });
    let found = candidates(completion, how);
    let Some(first) = found.first() else {
        return Ok(Checked { value: 0.0, found: false, info: json!({ "answer": null, "extract": name(how) }) });
    };
    let info = |c: &Candidate| json!({ "answer": c.text, "extract": c.rule, "start": c.start, "end": c.end });
    // The same text as the gold is right, parsed or not.
    if gold_cands.iter().take(1).chain(gold_cands.last()).any(|g| same_text(&g.text, &first.text)) {
        return Ok(Checked { value: 1.0, found: true, info: info(first) });
    }
    let mut gold_err = None;
    let gold: Value = match gold_cands.iter().find_map(|c| match latex::parse(&c.text) {
        Ok(v) => Some(v),
        Err(e) => {
            gold_err.get_or_insert(e);
            None
        }
    }) {
        Some(v) => v,
        None => {
            let e = gold_err.map(|e| e.0).unwrap_or_default();
            return Err(RewardError::new(format!("task {}: gold answer `{gold_text}` cannot be parsed: {e}", task.id)));
        }
    };
    // The first candidate that parses is the answer.
    let mut first_err = None;
    for c in &found {
        match latex::parse(&c.text) {
            Ok(given) => {
                let value = f64::from(u8::from(latex::equivalent_with(&gold, &given, &rules)));
                return Ok(Checked { value, found: true, info: info(c) });
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    let mut i = info(first);
    i["error"] = json!("parse");
    i["detail"] = json!(first_err.map(|e| e.0));
    Ok(Checked { value: 0.0, found: true, info: i })
}

fn name(how: Find) -> &'static str {
    match how {
        Find::Auto => "auto",
        Find::Latex => "latex",
        Find::Rule(r) => r.name(),
    }
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
