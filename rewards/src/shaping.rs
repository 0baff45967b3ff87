//! Shaping terms: format (think/answer structure), DAPO's soft overlong penalty, the cosine
//! length-scaled reward, an n-gram repetition penalty; and gating, which makes accuracy count
//! only when the format term passes.
//!
//! Each accuracy reward (`math/equivalence`, `answer/numeric`, `answer/choice`, ...) takes a
//! `[reward.config.shaping]` table and builds its rubric through [`rubric`], so every verifier
//! gets the same shaping with the same names. The shaping terms that need no correctness are
//! also registered alone (`shape/format`, `shape/overlong`, `shape/repetition`).
//!
//! Lengths are counted in the policy's sampled tokens when the trajectory has them, else in
//! characters of the policy's messages (`rlvr score` input has no tokens); `info.unit` says
//! which, so a threshold is never silently applied to the wrong unit.

use rlvr_engine::parse_config;
use rlvr_engine::{BoxError, Config, Registry, Reward, RewardError, Rubric, Task, Trajectory};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;

/// What the format term checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatRule {
    /// The extractor found an answer. The default.
    #[default]
    Found,
    /// The completion is `<think>...</think>` then `<answer>...</answer>`, nothing else but
    /// whitespace around them (the structure DeepSeek-R1 trained with).
    ThinkAnswer,
}

/// DAPO's soft overlong punishment (Yu et al. 2025, eq. 13): 0 up to `max_len - cache`, then
/// falling linearly to -1 at `max_len`, and -1 beyond.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overlong {
    /// L_max: the length at which the penalty reaches -1.
    pub max_len: usize,
    /// L_cache: the width of the linear ramp before `max_len`.
    pub cache: usize,
    /// Weight of the term. Default 1.
    #[serde(default = "one")]
    pub weight: f64,
}

/// The cosine length-scaled reward of Yeo et al. 2025 ("Demystifying long chain-of-thought"),
/// as in open-r1: correct answers get from `max_correct` (length 0) down to `min_correct`
/// (at `max_len`); wrong ones rise from `min_wrong` (length 0) to `max_wrong` (at `max_len`), so
/// that a long wrong answer is punished less than a short one, which encourages thinking
/// longer when unsure. It replaces the plain accuracy term's value.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cosine {
    /// Length at which the cosine reaches its end. Default 1000.
    pub max_len: usize,
    /// Reward of a correct answer of length `max_len`. Default 0.5.
    pub min_correct: f64,
    /// Reward of a correct answer of length 0. Default 1.0.
    pub max_correct: f64,
    /// Reward of a wrong answer of length 0. Default -1.0.
    pub min_wrong: f64,
    /// Reward of a wrong answer of length `max_len`. Default -0.5.
    pub max_wrong: f64,
}

impl Default for Cosine {
    fn default() -> Self {
        Self { max_len: 1000, min_correct: 0.5, max_correct: 1.0, min_wrong: -1.0, max_wrong: -0.5 }
    }
}

/// Penalty for repeated word n-grams (open-r1's): `max_penalty * (1 - unique / total)`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Repetition {
    /// n of the n-grams, in whitespace-separated words. Default 3.
    pub ngram: usize,
    /// The penalty when every n-gram repeats; at most 0. Default -1.
    pub max_penalty: f64,
    /// Weight of the term. Default 1.
    pub weight: f64,
}

impl Default for Repetition {
    fn default() -> Self {
        Self { ngram: 3, max_penalty: -1.0, weight: 1.0 }
    }
}

fn one() -> f64 {
    1.0
}

/// The `[reward.config.shaping]` table of an accuracy reward. Defaults add nothing but the
/// `format` metric, so a reward's meaning changes only when asked.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Shaping {
    /// What `format` checks. Default `"found"`.
    pub format: FormatRule,
    /// Weight of `format`; 0 (the default) logs it as a metric.
    pub format_weight: f64,
    /// Accuracy counts only when `format` passes. Default false.
    pub gate: bool,
    /// Adds the term `overlong`.
    pub overlong: Option<Overlong>,
    /// Makes accuracy length-scaled.
    pub cosine: Option<Cosine>,
    /// Adds the term `repetition`.
    pub repetition: Option<Repetition>,
}

impl Shaping {
    /// Checks the settings, so a bad table fails when the reward is built, not at scoring.
    pub fn validate(&self) -> Result<(), BoxError> {
        if let Some(o) = &self.overlong
            && (o.cache == 0 || o.cache > o.max_len)
        {
            return Err("shaping.overlong needs 0 < cache <= max_len".into());
        }
        if let Some(c) = &self.cosine
            && c.max_len == 0
        {
            return Err("shaping.cosine.max_len must be positive".into());
        }
        if let Some(r) = &self.repetition
            && (r.ngram == 0 || r.max_penalty > 0.0)
        {
            return Err("shaping.repetition needs ngram >= 1 and max_penalty <= 0".into());
        }
        Ok(())
    }
}

/// An accuracy check on (task, completion): the value (1 correct, 0 wrong), whether an answer
/// was found, and the diagnostics.
pub type Check = Arc<dyn Fn(&Task, &str) -> Result<Checked, RewardError> + Send + Sync>;

/// What an accuracy check saw.
#[derive(Clone, Debug)]
pub struct Checked {
    /// 1.0 correct, 0.0 wrong (or a partial score).
    pub value: f64,
    /// The extractor found an answer.
    pub found: bool,
    /// Diagnostics: the extracted answer, the rule that found it, why it failed.
    pub info: serde_json::Value,
}

/// The length of what the policy wrote, and its unit.
pub fn length(tr: &Trajectory) -> (usize, &'static str) {
    match tr.policy_tokens() {
        0 => (tr.assistant_messages().map(|m| m.content.chars().count()).sum(), "chars"),
        n => (n, "tokens"),
    }
}

/// Whether `text` is `<think>..</think>` then `<answer>..</answer>` and nothing else; on
/// failure, the rule it broke.
pub fn think_answer(text: &str) -> Result<(), &'static str> {
    let t = text.trim();
    let rest = t.strip_prefix("<think>").ok_or("does not start with <think>")?;
    let (think, rest) = rest.split_once("</think>").ok_or("no </think>")?;
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("<answer>").ok_or("<answer> does not follow </think>")?;
    let answer = rest.strip_suffix("</answer>").ok_or("does not end with </answer>")?;
    for tag in ["<think>", "</think>", "<answer>", "</answer>"] {
        if think.contains(tag) || answer.contains(tag) {
            return Err("a tag appears more than once");
        }
    }
    Ok(())
}

/// DAPO's overlong penalty of a length.
pub fn overlong_penalty(len: usize, o: &Overlong) -> f64 {
    let free = o.max_len - o.cache;
    if len <= free {
        0.0
    } else if len <= o.max_len {
        (free as f64 - len as f64) / o.cache as f64
    } else {
        -1.0
    }
}

/// The cosine length-scaled value of a correct or wrong answer of length `len`.
pub fn cosine_value(correct: bool, len: usize, c: &Cosine) -> f64 {
    let progress = (len.min(c.max_len) as f64) / c.max_len as f64;
    let cos = (progress * std::f64::consts::PI).cos();
    let (lo, hi) = if correct { (c.min_correct, c.max_correct) } else { (c.max_wrong, c.min_wrong) };
    lo + 0.5 * (hi - lo) * (1.0 + cos)
}

/// The repetition penalty of a text, and the n-gram counts behind it.
pub fn repetition_penalty(text: &str, r: &Repetition) -> (f64, usize, usize) {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() < r.ngram {
        return (0.0, 0, 0);
    }
    let total = words.len() - r.ngram + 1;
    let unique: HashSet<&[&str]> = words.windows(r.ngram).collect();
    let penalty = r.max_penalty * (1.0 - unique.len() as f64 / total as f64);
    (penalty, unique.len(), total)
}

/// Builds an accuracy rubric: the accuracy term `name` (weight 1), `format`, and the shaping
/// terms `shaping` asks for.
pub fn rubric(name: &str, check: Check, shaping: Shaping) -> Result<Rubric, BoxError> {
    shaping.validate()?;
    let shaping = Arc::new(shaping);
    let format_ok = {
        let (check, shaping) = (check.clone(), shaping.clone());
        move |task: &Task, tr: &Trajectory| -> Result<(bool, serde_json::Value), RewardError> {
            let text = tr.final_answer();
            Ok(match shaping.format {
                FormatRule::Found => (check(task, text)?.found, json!({ "rule": "found" })),
                FormatRule::ThinkAnswer => match think_answer(text) {
                    Ok(()) => (true, json!({ "rule": "think_answer" })),
                    Err(why) => (false, json!({ "rule": "think_answer", "failed": why })),
                },
            })
        }
    };
    let accuracy = {
        let (check, shaping, format_ok) = (check.clone(), shaping.clone(), format_ok.clone());
        move |task: &Task, tr: &Trajectory| -> Result<Reward, RewardError> {
            let checked = check(task, tr.final_answer())?;
            let mut info = checked.info;
            let mut value = checked.value;
            if shaping.gate && !format_ok(task, tr)?.0 {
                value = 0.0;
                info["gated"] = json!(true);
            }
            if let Some(c) = &shaping.cosine {
                let (len, unit) = length(tr);
                value = cosine_value(value >= 0.5, len, c);
                info["length"] = json!(len);
                info["unit"] = json!(unit);
            }
            Ok(Reward::with_info(value, info))
        }
    };
    let mut r = Rubric::new().term(name, 1.0, accuracy).term(
        "format",
        shaping.format_weight,
        move |task: &Task, tr: &Trajectory| {
            let (ok, info) = format_ok(task, tr)?;
            Ok(Reward::with_info(if ok { 1.0 } else { 0.0 }, info))
        },
    );
    if let Some(o) = shaping.overlong.clone() {
        let w = o.weight;
        r = r.term("overlong", w, overlong_term(o));
    }
    if let Some(rep) = shaping.repetition.clone() {
        let w = rep.weight;
        r = r.term("repetition", w, repetition_term(rep));
    }
    Ok(r)
}

fn overlong_term(o: Overlong) -> impl Fn(&Task, &Trajectory) -> Result<Reward, RewardError> {
    move |_: &Task, tr: &Trajectory| {
        let (len, unit) = length(tr);
        Ok(Reward::with_info(overlong_penalty(len, &o), json!({ "length": len, "unit": unit, "max_len": o.max_len })))
    }
}

fn repetition_term(r: Repetition) -> impl Fn(&Task, &Trajectory) -> Result<Reward, RewardError> {
    move |_: &Task, tr: &Trajectory| {
        let (p, unique, total) = repetition_penalty(tr.final_answer(), &r);
        Ok(Reward::with_info(p, json!({ "unique_ngrams": unique, "ngrams": total })))
    }
}

/// Registers `shape/format`, `shape/overlong` and `shape/repetition`.
pub fn register(registry: &mut Registry) {
    registry.reward(
        "shape/format",
        "1 when the completion is <think>..</think><answer>..</answer> and nothing else",
        |config: &Config| {
            if !config.is_empty() {
                return Err("shape/format takes no settings".into());
            }
            Ok(Rubric::new().term("format", 1.0, |_: &Task, tr: &Trajectory| {
                Ok(match think_answer(tr.final_answer()) {
                    Ok(()) => Reward::from(1.0),
                    Err(why) => Reward::with_info(0.0, json!({ "failed": why })),
                })
            }))
        },
    );
    registry.reward(
        "shape/overlong",
        "DAPO's soft overlong penalty: 0, then a linear ramp to -1 over `cache` before `max_len`",
        |config: &Config| {
            let o: Overlong = parse_config(config)?;
            Shaping { overlong: Some(o.clone()), ..Shaping::default() }.validate()?;
            Ok(Rubric::new().term("overlong", o.weight, overlong_term(o)))
        },
    );
    registry.reward(
        "shape/repetition",
        "penalty for repeated word n-grams: max_penalty * (1 - unique/total)",
        |config: &Config| {
            let r: Repetition = parse_config(config)?;
            Shaping { repetition: Some(r.clone()), ..Shaping::default() }.validate()?;
            Ok(Rubric::new().term("repetition", r.weight, repetition_term(r)))
        },
    );
    registry.defaults(rlvr_engine::Kind::Reward, "shape/format", Config::new());
    registry.defaults(rlvr_engine::Kind::Reward, "shape/repetition", Repetition::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn think_answer_structure() {
        assert_eq!(think_answer(" <think>a</think>\n<answer>1</answer> "), Ok(()));
        assert_eq!(think_answer("<answer>1</answer>"), Err("does not start with <think>"));
        assert_eq!(think_answer("<think>a</think> b <answer>1</answer>"), Err("<answer> does not follow </think>"));
        assert_eq!(think_answer("<think>a</think><answer>1</answer> more"), Err("does not end with </answer>"));
        assert_eq!(think_answer("<think>a<think></think><answer>1</answer>"), Err("a tag appears more than once"));
    }

    #[test]
    fn overlong_ramp_by_hand() {
        let o = Overlong { max_len: 100, cache: 20, weight: 1.0 };
        assert_eq!(overlong_penalty(80, &o), 0.0);
        assert_eq!(overlong_penalty(90, &o), -0.5);
        assert_eq!(overlong_penalty(100, &o), -1.0);
        assert_eq!(overlong_penalty(101, &o), -1.0);
    }

    #[test]
    fn cosine_ends_and_middle() {
        let c = Cosine::default();
        assert_eq!(cosine_value(true, 0, &c), 1.0);
        assert!((cosine_value(true, 1000, &c) - 0.5).abs() < 1e-12);
        assert!((cosine_value(true, 500, &c) - 0.75).abs() < 1e-12);
        assert_eq!(cosine_value(false, 0, &c), -1.0);
        assert!((cosine_value(false, 5000, &c) + 0.5).abs() < 1e-12);
    }

    #[test]
    fn repetition_counts_ngrams() {
        let r = Repetition { ngram: 2, ..Repetition::default() };
        // "a b a b a": bigrams ab ba ab ba -> 2 unique of 4 -> -0.5.
        assert_eq!(repetition_penalty("a b a b a", &r), (-0.5, 2, 4));
        assert_eq!(repetition_penalty("a", &r), (0.0, 0, 0));
        assert_eq!(repetition_penalty("a b c", &r).0, 0.0);
    }

    fn check() -> Check {
        Arc::new(|_: &Task, text: &str| {
            let found = crate::extract::last_tag(text, "answer");
            Ok(Checked {
                value: if found.map(|f| f.text) == Some("1") { 1.0 } else { 0.0 },
                found: found.is_some(),
                info: json!({}),
            })
        })
    }

    fn score(r: &Rubric, text: &str) -> rlvr_engine::Scored {
        r.score(&Task::new("t", json!({})), &Trajectory::from_completion(vec![], text))
    }

    #[test]
    fn gating_zeroes_accuracy_without_format() {
        let shaping = Shaping { format: FormatRule::ThinkAnswer, gate: true, ..Shaping::default() };
        let r = rubric("acc", check(), shaping).unwrap();
        assert_eq!(score(&r, "<answer>1</answer>").get("acc"), Some(0.0));
        assert_eq!(score(&r, "<think>x</think><answer>1</answer>").get("acc"), Some(1.0));
        let ungated = rubric("acc", check(), Shaping::default()).unwrap();
        let s = score(&ungated, "<answer>1</answer>");
        assert_eq!((s.get("acc"), s.get("format"), s.total()), (Some(1.0), Some(1.0), Some(1.0)));
    }

    #[test]
    fn shaping_terms_in_a_rubric() {
        let cfg: Config = toml::from_str(
            "format_weight = 0.5\n[overlong]\nmax_len = 20\ncache = 10\n[repetition]\nngram = 1\n[cosine]\nmax_len = 40",
        )
        .unwrap();
        let shaping: Shaping = parse_config(&cfg).unwrap();
        let r = rubric("acc", check(), shaping).unwrap();
        // 18 chars: overlong (10 - 18) / 10 = -0.8; unigrams "<answer>1</answer>" all unique;
        // cosine at 18/40: 0.5 + 0.25 (1 + cos(0.45 pi)).
        let s = score(&r, "<answer>1</answer>");
        assert!((s.get("overlong").unwrap() + 0.8).abs() < 1e-12);
        assert_eq!(s.get("repetition"), Some(0.0));
        let want = 0.5 + 0.25 * (1.0 + (0.45 * std::f64::consts::PI).cos());
        assert!((s.get("acc").unwrap() - want).abs() < 1e-12);
        let bad: Config = toml::from_str("[overlong]\nmax_len = 5\ncache = 10").unwrap();
        assert!(rubric("acc", check(), parse_config(&bad).unwrap()).is_err());
    }
}
