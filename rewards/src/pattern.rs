//! `answer/regex`: the answer matches a regular expression.
//!
//! Task: `{"answer": "<pattern>"}`, or the config's `pattern` for every task. The `regex`
//! crate matches in time linear in the text (no backtracking, so no catastrophic patterns);
//! patterns are compiled with size and nesting limits, so a pathological pattern is refused
//! (a verifier error, or a build error from config) instead of eating memory. By default the
//! whole trimmed completion must match (`full_match`); compiled patterns are cached.

use crate::extract::{self, Extractor};
use crate::shaping::{self, Check, Checked, Shaping};
use regex::{Regex, RegexBuilder};
use rlvr_engine::{BoxError, Config, Registry, RewardError, Rubric, Task, parse_config};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Largest compiled program, and lazy DFA cache, allowed per pattern (bytes).
pub const SIZE_LIMIT: usize = 1 << 20;
/// Deepest nesting of groups and repetitions allowed in a pattern.
pub const NEST_LIMIT: u32 = 64;
const CACHE_CAP: usize = 1024;

/// Settings of the reward's config.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegexConfig {
    /// A pattern for every task, instead of the task's `answer`.
    pub pattern: Option<String>,
    /// The whole answer must match, not just a part. Default true.
    pub full_match: bool,
    /// Case-insensitive. Default false.
    pub ignore_case: bool,
    /// Where the answer is. Default `whole`.
    pub extract: Extractor,
    /// Shaping terms and gating.
    pub shaping: Shaping,
}

impl Default for RegexConfig {
    fn default() -> Self {
        Self {
            pattern: None,
            full_match: true,
            ignore_case: false,
            extract: Extractor::Whole,
            shaping: Shaping::default(),
        }
    }
}

/// Compiles a pattern under the limits.
pub fn compile(pattern: &str, full_match: bool, ignore_case: bool) -> Result<Regex, PatternError> {
    let source = if full_match { format!("^(?:{pattern})$") } else { pattern.to_string() };
    RegexBuilder::new(&source)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(SIZE_LIMIT)
        .nest_limit(NEST_LIMIT)
        .case_insensitive(ignore_case)
        .build()
        .map_err(|source| PatternError { pattern: pattern.into(), source })
}

/// A pattern that does not compile, or exceeds the limits.
#[derive(Clone, Debug, thiserror::Error)]
#[error("pattern `{pattern}` refused: {source}")]
pub struct PatternError {
    /// The pattern as given.
    pub pattern: String,
    /// Why the regex crate refused it.
    pub source: regex::Error,
}

struct Matcher {
    cfg: RegexConfig,
    fixed: Option<Regex>,
    cache: Mutex<HashMap<String, Regex>>,
}

impl Matcher {
    fn regex(&self, task: &Task) -> Result<Regex, RewardError> {
        if let Some(r) = &self.fixed {
            return Ok(r.clone());
        }
        let pattern = task.str_field("answer")?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = cache.get(pattern) {
            return Ok(r.clone());
        }
        let r = compile(pattern, self.cfg.full_match, self.cfg.ignore_case)
            .map_err(|e| RewardError::new(format!("task {}: {e}", task.id)))?;
        if cache.len() >= CACHE_CAP {
            cache.clear();
        }
        cache.insert(pattern.to_string(), r.clone());
        Ok(r)
    }

    fn check(&self, task: &Task, completion: &str) -> Result<Checked, RewardError> {
        let regex = self.regex(task)?;
        let how = extract::for_task(task, self.cfg.extract)?;
        let Some((rule, found)) = how.find(completion) else {
            return Ok(Checked { value: 0.0, found: false, info: json!({ "answer": null }) });
        };
        let value = f64::from(u8::from(regex.is_match(found.text)));
        let shown: String = found.text.chars().take(200).collect();
        Ok(Checked { value, found: true, info: json!({ "answer": shown, "extract": rule.name() }) })
    }
}

/// Builds the rubric: `accuracy`, `format`, and any shaping terms.
pub fn rubric(config: &Config) -> Result<Rubric, BoxError> {
    let cfg: RegexConfig = parse_config(config)?;
    let fixed = match &cfg.pattern {
        Some(p) => Some(compile(p, cfg.full_match, cfg.ignore_case)?),
        None => None,
    };
    let shaping = cfg.shaping.clone();
    let m = Arc::new(Matcher { cfg, fixed, cache: Mutex::new(HashMap::new()) });
    let check: Check = Arc::new(move |task: &Task, text: &str| m.check(task, text));
    shaping::rubric("accuracy", check, shaping)
}

/// Registers `answer/regex`.
pub fn register(registry: &mut Registry) {
    registry.reward(
        "answer/regex",
        "the answer (whole completion by default) matches the task's `answer` regex, linear time",
        rubric,
    );
    registry.defaults(rlvr_engine::Kind::Reward, "answer/regex", RegexConfig::default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlvr_engine::Trajectory;

    fn score(config: &str, task: serde_json::Value, completion: &str) -> rlvr_engine::Scored {
        rubric(&toml::from_str(config).unwrap())
            .unwrap()
            .score(&Task::new("t", task), &Trajectory::from_completion(vec![], completion))
    }

    #[test]
    fn full_and_partial_match() {
        let t = json!({"answer": r"\d{3}-\d{4}"});
        assert_eq!(score("", t.clone(), " 555-1234\n").total(), Some(1.0));
        assert_eq!(score("", t.clone(), "call 555-1234").total(), Some(0.0));
        assert_eq!(score("full_match = false", t, "call 555-1234").total(), Some(1.0));
        let ci = score("ignore_case = true", json!({"answer": "yes"}), "YES");
        assert_eq!(ci.total(), Some(1.0));
        let tag = score("extract = \"answer_tag\"", json!({"answer": "a+"}), "<answer>aaa</answer>");
        assert_eq!(tag.total(), Some(1.0));
    }

    #[test]
    fn pathological_patterns_are_bounded_or_refused() {
        // Catastrophic for a backtracking engine; linear here.
        let s = score("", json!({"answer": "(a+)+$"}), &format!("{}b", "a".repeat(100_000)));
        assert_eq!(s.total(), Some(0.0));
        let huge = score("", json!({"answer": "(((a{100}){100}){100})"}), "a");
        assert!(huge.error().unwrap().contains("refused"), "{:?}", huge.error());
        let deep = format!("{}a{}", "(".repeat(200), ")".repeat(200));
        assert!(score("", json!({"answer": deep}), "a").error().is_some());
        assert!(score("", json!({"answer": "("}), "a").error().is_some());
        let cfg: Config = toml::from_str("pattern = \"(\"").unwrap();
        assert!(rubric(&cfg).is_err());
    }
}
