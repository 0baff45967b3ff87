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
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

/// Where the math answer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Find {
    /// math-verify's tiers with bare numbers ([`find::candidates`]).
    Auto,
    /// math-verify's tiers without bare numbers (its `LatexExtractionConfig` alone).
    Latex,
    /// One of the shared rules.
    Rule(Extractor),
}

impl From<Find> for String {
    fn from(find: Find) -> String {
        match find {
            Find::Auto => "auto".into(),
            Find::Latex => "latex".into(),
            Find::Rule(rule) => {
                serde_json::to_value(rule).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
            }
        }
    }
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
#[derive(Clone, Debug, Serialize, Deserialize)]
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

/// Calls `f` on the candidates for the answer in `text`, in the order to try them, until it
/// returns something. Tiers are computed only when the earlier ones gave nothing.
fn first_candidate<T>(text: &str, how: Find, mut f: impl FnMut(&Candidate) -> Option<T>) -> Option<T> {
    let numbers = match how {
        Find::Auto | Find::Rule(Extractor::Auto) => true,
        Find::Latex => false,
        // Numbers as math-verify reads them (decimal commas, thousands spaces, percent words).
        Find::Rule(Extractor::LastNumber) => {
            let last = find::Finder::new(text, true).tier(find::TIERS - 1).into_iter().find(|c| c.rule == "number");
            return last.as_ref().and_then(f);
        }
        Find::Rule(rule) => {
            let c = rule.find(text).map(|(r, f)| Candidate {
                rule: r.name(),
                text: f.text.to_string(),
                start: f.start,
                end: f.end,
            });
            return c.as_ref().and_then(f);
        }
    };
    let finder = find::Finder::new(text, numbers);
    (0..find::TIERS).find_map(|k| finder.tier(k).iter().find_map(&mut f))
}

/// A gold answer as read: the texts an identical answer may have, and its value.
struct Gold {
    texts: Vec<String>,
    value: Result<Value, String>,
}

impl Gold {
    /// Reads `text` like an answer when it marks its answer (`$..$`, `\boxed{}`), and whole
    /// otherwise; the first reading that parses is the gold.
    fn read(text: &str, how: Find) -> Gold {
        let how = match how {
            Find::Rule(Extractor::LastNumber) | Find::Latex => how,
            _ => Find::Auto,
        };
        let mut texts = Vec::new();
        let mut err = None;
        let mut parse = |t: &str| match latex::parse(t) {
            Ok(v) => Some(v),
            Err(e) => {
                err.get_or_insert(e.0);
                None
            }
        };
        let mut value = None;
        if find::is_marked(text) || how == Find::Rule(Extractor::LastNumber) {
            value = first_candidate(text, how, |c| {
                if texts.is_empty() {
                    texts.push(c.text.clone());
                }
                parse(&c.text)
            });
        }
        texts.push(text.to_string());
        let value = value.or_else(|| parse(text)).ok_or_else(|| err.unwrap_or_default());
        Gold { texts, value }
    }

    /// The gold of `text`, from this thread's cache: tasks repeat (a group of G completions
    /// shares one, and files repeat tasks), and reading a gold costs as much as an answer.
    fn cached(text: &str, how: Find) -> Rc<Gold> {
        thread_local! {
            static CACHE: RefCell<HashMap<(String, Find), Rc<Gold>>> = RefCell::new(HashMap::new());
        }
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if let Some(g) = c.get(&(text.to_string(), how)) {
                return g.clone();
            }
            if c.len() >= GOLD_CACHE {
                c.clear();
            }
            let g = Rc::new(Gold::read(text, how));
            c.insert((text.to_string(), how), g.clone());
            g
        })
    }
}

/// Golds kept per thread; the cache is emptied when full.
const GOLD_CACHE: usize = 4096;

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
    let gold = Gold::cached(gold_text, how);
    let info = |c: &Candidate| json!({ "answer": c.text, "extract": c.rule, "start": c.start, "end": c.end });
    let mut first: Option<Candidate> = None;
    let mut first_err = None;
    let verdict = first_candidate(completion, how, |c| {
        if first.is_none() {
            first = Some(c.clone());
            // The same text as the gold is right, parsed or not.
            if gold.texts.iter().any(|g| same_text(g, &c.text)) {
                return Some(Ok((1.0, c.clone())));
            }
        }
        let gold = match &gold.value {
            Ok(v) => v,
            Err(e) => return Some(Err(e.clone())),
        };
        match latex::parse(&c.text) {
            Ok(given) => Some(Ok((f64::from(u8::from(latex::equivalent_with(gold, &given, &rules))), c.clone()))),
            Err(e) => {
                first_err.get_or_insert(e);
                None
            }
        }
    });
    match (verdict, first) {
        (Some(Ok((value, c))), _) => Ok(Checked { value, found: true, info: info(&c) }),
        (Some(Err(e)), _) => {
            Err(RewardError::new(format!("task {}: gold answer `{gold_text}` cannot be parsed: {e}", task.id)))
        }
        (None, None) => Ok(Checked { value: 0.0, found: false, info: json!({ "answer": null, "extract": name(how) }) }),
        (None, Some(first)) => {
            // Nothing in the completion parses; a broken gold is still the task's fault.
            if let Err(e) = &gold.value {
                return Err(RewardError::new(format!(
                    "task {}: gold answer `{gold_text}` cannot be parsed: {e}",
                    task.id
                )));
            }
            let mut i = info(&first);
            i["error"] = json!("parse");
            i["detail"] = json!(first_err.map(|e| e.0));
            Ok(Checked { value: 0.0, found: true, info: i })
        }
    }
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
        "answer (found as math-verify finds it: boxes, final-answer sentences, LaTeX, numbers) is mathematically equivalent to the task's LaTeX `answer`",
        rubric,
    );
    registry.defaults(rlvr_engine::Kind::Reward, "math/equivalence", MathConfig::default());
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
