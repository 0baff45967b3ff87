//! `math/problems-v0` (formerly `rewards/math-v0`, kept as an alias): short math problems whose
//! answers are LaTeX (fractions, root sets, expansions, intervals, percentages), scored by
//! `math/equivalence`.
//!
//! The environment that exercises the math verifier end to end: a seeded generator with
//! disjoint train and test splits, one turn per episode, and a gold player that writes each
//! answer in a *different but equivalent* form from the task's reference (an unreduced
//! fraction, roots in another order, the factored form of an expansion, `\left(` brackets, a
//! thousands separator), so the conformance check "the gold answer scores 1.0" tests the
//! verifier's equivalence rules and not string equality.

use rlvr_engine::{
    Action, BoxError, Config, EnvError, EnvSpec, Environment, Kind, Message, Registry, Split, Step, Task, TaskSource,
    draw_split_task, parse_config, seed,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

/// The id this environment is registered under.
pub const ID: &str = "math/problems-v0";

/// The id it had before the math family got its own folder; it still works.
pub const OLD_ID: &str = "rewards/math-v0";

const SYSTEM: &str = "Solve the problem. Put the final answer in \\boxed{}, in LaTeX.";

/// The problem kinds.
pub const KINDS: [&str; 5] = ["fraction_sum", "roots", "expand", "inequality", "percent"];

/// Settings of `[env.config]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProblemsConfig {
    /// Problem kinds to draw from: any of `fraction_sum`, `roots`, `expand`, `inequality`,
    /// `percent`. Default all.
    pub kinds: Vec<String>,
    /// Largest magnitude of the numbers in a problem, 2..=1000. Default 12.
    pub max_value: i64,
    /// Tasks in the held-out split. Default 128.
    pub test_size: u64,
}

impl Default for ProblemsConfig {
    fn default() -> Self {
        Self { kinds: KINDS.iter().map(|k| k.to_string()).collect(), max_value: 12, test_size: 128 }
    }
}

/// The seeded problem generator.
pub struct MathTasks {
    config: ProblemsConfig,
    seed: u64,
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

fn frac(n: i64, d: i64) -> String {
    let g = gcd(n, d).max(1);
    let (n, d) = (n / g * d.signum(), (d / g).abs());
    match (n < 0, d) {
        (_, 1) => n.to_string(),
        (true, _) => format!("-\\frac{{{}}}{{{d}}}", -n),
        (false, _) => format!("\\frac{{{n}}}{{{d}}}"),
    }
}

fn signed(v: i64) -> String {
    if v >= 0 { format!("+ {v}") } else { format!("- {}", -v) }
}

impl MathTasks {
    /// A generator for `config`, seeded by `seed`.
    pub fn new(config: ProblemsConfig, seed: u64) -> Result<Self, BoxError> {
        if config.kinds.is_empty() {
            return Err("kinds must name at least one kind".into());
        }
        if let Some(k) = config.kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
            return Err(format!("unknown kind `{k}`; use {}", KINDS.join(", ")).into());
        }
        if !(2..=1000).contains(&config.max_value) {
            return Err("max_value must lie in 2..=1000".into());
        }
        Ok(Self { config, seed })
    }

    /// One problem from hash `h`: (kind, question, reference answer).
    fn problem(&self, h: u64) -> (String, String, String) {
        let m = self.config.max_value;
        let pick = |salt: u64, lo: i64| lo + (seed::mix(h ^ salt) % (m - lo + 1) as u64) as i64;
        let sign = |salt: u64| {
            if seed::mix(h ^ salt).is_multiple_of(2) { 1 } else { -1 }
        };
        let kinds = &self.config.kinds;
        let kind = kinds[(seed::mix(h ^ 1) % kinds.len() as u64) as usize].clone();
        let (q, a) = match kind.as_str() {
            "fraction_sum" => {
                let (a, b, c, d) = (pick(2, 1), pick(3, 2), pick(4, 1), pick(5, 2));
                (
                    format!("Compute \\frac{{{a}}}{{{b}}} + \\frac{{{c}}}{{{d}}} as a reduced fraction."),
                    frac(a * d + c * b, b * d),
                )
            }
            "roots" => {
                let (r, s) = (sign(6) * pick(7, 1), sign(8) * pick(9, 0));
                let s = if s == r { r + 1 } else { s };
                (
                    format!("Find all solutions of x^2 {}x {} = 0.", signed(-(r + s)), signed(r * s)),
                    format!("\\{{{r}, {s}\\}}"),
                )
            }
            "expand" => {
                let (r, s) = (sign(10) * pick(11, 1), sign(12) * pick(13, 1));
                (
                    format!("Expand (x {})(x {}).", signed(r), signed(s)),
                    format!("x^2 {}x {}", signed(r + s), signed(r * s)),
                )
            }
            "inequality" => {
                let (a, b, c) = (pick(14, 1), sign(15) * pick(16, 0), sign(17) * pick(18, 0));
                (
                    format!("Solve {a}x {} < {c}; give the solution set as an interval.", signed(b)),
                    format!("(-\\infty, {})", frac(c - b, a)),
                )
            }
            _ => {
                let (p, n) = (pick(19, 1) * 5 % 100 + 5, pick(20, 2) * 40);
                (format!("What is {p}\\% of {n}?"), frac(p * n, 100))
            }
        };
        (kind, q, a)
    }
}

impl TaskSource for MathTasks {
    fn len(&self, split: Split) -> Option<u64> {
        match split {
            Split::Train => None,
            Split::Test => Some(self.config.test_size),
        }
    }

    fn task(&self, split: Split, index: u64) -> Result<Task, BoxError> {
        draw_split_task(self.seed, split, index, 100, |h| {
            let (kind, question, answer) = self.problem(h);
            Ok((question.clone(), json!({ "question": question, "answer": answer, "kind": kind })))
        })
    }
}

/// One episode: a single answer.
#[derive(Default)]
pub struct MathEnv;

impl Environment for MathEnv {
    fn reset(&mut self, task: &Task, _seed: u64) -> Result<Vec<Message>, EnvError> {
        let question = task.str_field("question")?;
        task.str_field("answer")?;
        Ok(vec![Message::system(SYSTEM), Message::user(question)])
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        Ok(Step::terminated(json!({ "boxed": action.text.contains("\\boxed{") })))
    }
}

/// The gold answer, rewritten in an equivalent form different from the reference.
pub fn gold_answer(task: &Task) -> Result<String, BoxError> {
    let answer = task.str_field("answer")?;
    let kind = task.str_field("kind")?;
    let q = task.str_field("question")?;
    let nums: Vec<i64> = q.split(|c: char| !(c.is_ascii_digit() || c == '-')).filter_map(|s| s.parse().ok()).collect();
    let form = match kind {
        // Unreduced: the cross-multiplied sum over the product of denominators.
        "fraction_sum" => match nums.as_slice() {
            [a, b, c, d] => format!("\\frac{{{}}}{{{}}}", a * d + c * b, b * d),
            _ => answer.to_string(),
        },
        // The roots as a bare list, in reverse order.
        "roots" => {
            let inner = answer.trim_start_matches("\\{").trim_end_matches("\\}");
            let mut parts: Vec<&str> = inner.split(", ").collect();
            parts.reverse();
            parts.join(", ")
        }
        // The factored form it came from.
        "expand" => q.trim_start_matches("Expand ").trim_end_matches('.').to_string(),
        "inequality" => answer.replace('(', "\\left(").replace(')', "\\right)"),
        _ => format!("{answer}.0"),
    };
    Ok(format!("The answer is \\boxed{{{form}}}."))
}

/// Builds the spec from `[env.config]`.
pub fn spec(config: &Config, seed: u64) -> Result<EnvSpec, BoxError> {
    let cfg: ProblemsConfig = parse_config(config)?;
    let tasks = Arc::new(MathTasks::new(cfg, seed)?);
    Ok(EnvSpec::new(tasks, || Ok(MathEnv), "math/equivalence").with_gold(|task, _| gold_answer(task)))
}

/// Registers `math/problems-v0` and its old id. Its reward, `math/equivalence`, is general (it
/// needs no environment), so it lives in `rlvr-rewards`.
pub fn register(registry: &mut Registry) {
    registry.env(
        ID,
        "LaTeX-answer math problems (fractions, roots, expansions, intervals, percents), scored by math/equivalence",
        spec,
    );
    registry.defaults(rlvr_engine::Kind::Env, ID, ProblemsConfig::default());
    registry.alias(Kind::Env, OLD_ID, ID);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_checked_problems() {
        assert_eq!(frac(6, 8), "\\frac{3}{4}");
        assert_eq!(frac(-6, 8), "-\\frac{3}{4}");
        assert_eq!(frac(8, 4), "2");
        let t = Task::new(
            "t",
            json!({"question": "Compute \\frac{1}{2} + \\frac{1}{3} as a reduced fraction.",
                   "answer": "\\frac{5}{6}", "kind": "fraction_sum"}),
        );
        assert_eq!(gold_answer(&t).unwrap(), "The answer is \\boxed{\\frac{5}{6}}.");
        let t = Task::new(
            "t",
            json!({"question": "Compute \\frac{2}{4} + \\frac{1}{4} as a reduced fraction.",
                   "answer": "\\frac{3}{4}", "kind": "fraction_sum"}),
        );
        assert_eq!(gold_answer(&t).unwrap(), "The answer is \\boxed{\\frac{12}{16}}.");
    }

    #[test]
    fn splits_are_disjoint_and_every_kind_appears() {
        let t = MathTasks::new(ProblemsConfig::default(), 5).unwrap();
        let test: std::collections::HashSet<_> =
            (0..128).map(|i| t.task(Split::Test, i).unwrap().data["question"].clone()).collect();
        let mut kinds = std::collections::HashSet::new();
        for i in 0..300 {
            let task = t.task(Split::Train, i).unwrap();
            assert!(!test.contains(&task.data["question"]));
            kinds.insert(task.data["kind"].as_str().unwrap().to_string());
        }
        assert_eq!(kinds.len(), KINDS.len());
    }

    #[test]
    fn bad_config_names_the_problem() {
        let cfg: Config = toml::from_str("kinds = [\"calculus\"]").unwrap();
        let e = spec(&cfg, 0).err().unwrap().to_string();
        assert!(e.contains("unknown kind `calculus`"), "{e}");
        let cfg: Config = toml::from_str("max_value = 1").unwrap();
        assert!(spec(&cfg, 0).is_err());
    }
}
