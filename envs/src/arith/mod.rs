//! `arith/arith-v0`: multi-digit addition, subtraction, multiplication and comparison
//! (`max`, `min`), answered in `<answer>` tags.
//!
//! The smallest complete environment: a seeded generator with disjoint train and test splits,
//! optional retries (the environment says "not correct" and the episode goes on, which
//! exercises multi-turn rollouts), and a gold player. Its reward is `answer/exact`.

use rlvr_rewards::extract::answer_tag;
use rlvr_engine::{
    Action, BoxError, Config, EnvError, EnvSpec, Environment, Message, Registry, Split, Step, Task, TaskSource,
    draw_split_task, parse_config, seed,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

/// The id this environment is registered under.
pub const ID: &str = "arith/arith-v0";

const OPS: [&str; 5] = ["+", "-", "*", "max", "min"];

const SYSTEM: &str = "Solve the arithmetic problem. Give only the final integer inside <answer></answer> tags.";

/// Settings of `[env.config]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArithConfig {
    /// Fewest digits of an operand. Default 1.
    pub min_digits: u32,
    /// Most digits of an operand, at most 18. Default 3.
    pub max_digits: u32,
    /// Operators to draw from: any of `+`, `-`, `*`, `max`, `min` (the last two are asked as
    /// `max(a, b)`). Default `["+", "*"]`.
    pub ops: Vec<String>,
    /// Operands per problem, 2 to 8. With more than two, each gap draws its own infix operator
    /// and `*` binds before `+` and `-` (`3 + 4 * 2` is 11); `max`/`min` take them all as
    /// arguments. Default 2. More operands make a much larger problem space from the same
    /// digits, so a small model has to learn the operation rather than a table of facts.
    pub operands: u32,
    /// Answers allowed per episode; after a wrong one the environment says so and the episode
    /// goes on. Default 1 (single turn).
    pub attempts: u32,
    /// Tasks in the held-out split. Default 256.
    pub test_size: u64,
    /// Share of all problems (in per mille) reserved for the test split, so the splits never
    /// share a problem. Default 100 (10%).
    pub test_per_mille: u64,
    /// Open with the system message that states the answer format. Default true; a model
    /// trained from scratch learns the format from demonstrations and gains nothing from it
    /// but a 3x longer context.
    pub system_prompt: bool,
}

impl Default for ArithConfig {
    fn default() -> Self {
        Self {
            min_digits: 1,
            max_digits: 3,
            ops: vec!["+".into(), "*".into()],
            operands: 2,
            attempts: 1,
            test_size: 256,
            test_per_mille: 100,
            system_prompt: true,
        }
    }
}

impl ArithConfig {
    fn validate(&self) -> Result<(), BoxError> {
        if self.min_digits == 0 || self.min_digits > self.max_digits || self.max_digits > 18 {
            return Err(format!(
                "digits must satisfy 1 <= min_digits <= max_digits <= 18, got {}..={}",
                self.min_digits, self.max_digits
            )
            .into());
        }
        if self.ops.is_empty() {
            return Err("ops must name at least one operator".into());
        }
        if let Some(op) = self.ops.iter().find(|o| !OPS.contains(&o.as_str())) {
            return Err(format!("unknown operator `{op}`; use one of {}", OPS.join(", ")).into());
        }
        if !(2..=8).contains(&self.operands) {
            return Err(format!("operands must lie in 2..=8, got {}", self.operands).into());
        }
        if self.ops.iter().any(|o| o == "*") && self.max_digits * self.operands > 36 {
            return Err(format!(
                "with `*`, max_digits x operands must be at most 36 (the product must fit in 128 bits), got {} x {}",
                self.max_digits, self.operands
            )
            .into());
        }
        if self.attempts == 0 {
            return Err("attempts must be at least 1".into());
        }
        if self.test_per_mille == 0 || self.test_per_mille >= 1000 {
            return Err("test_per_mille must lie in 1..=999".into());
        }
        Ok(())
    }
}

/// The seeded problem generator.
pub struct ArithTasks {
    config: ArithConfig,
    seed: u64,
}

impl ArithTasks {
    /// A generator for `config`, seeded by `seed`.
    pub fn new(config: ArithConfig, seed: u64) -> Result<Self, BoxError> {
        config.validate()?;
        Ok(Self { config, seed })
    }
}

fn operand(h: u64, min_digits: u32, max_digits: u32) -> i128 {
    let digits = min_digits + (seed::mix(h) % u64::from(max_digits - min_digits + 1)) as u32;
    let lo = if digits == 1 { 0 } else { 10u64.pow(digits - 1) };
    let hi = 10u64.pow(digits);
    (lo + seed::mix(h ^ 0xd1) % (hi - lo)) as i128
}

impl TaskSource for ArithTasks {
    fn len(&self, split: Split) -> Option<u64> {
        match split {
            Split::Train => None,
            Split::Test => Some(self.config.test_size),
        }
    }

    fn task(&self, split: Split, index: u64) -> Result<Task, BoxError> {
        let c = &self.config;
        draw_split_task(self.seed, split, index, c.test_per_mille, |h| {
            let n = c.operands as u64;
            // Two-operand problems keep the draws they always had (`h ^ 1..3`).
            let pick = |i: u64| c.ops[(seed::mix(h ^ (i << 8) ^ 1) % c.ops.len() as u64) as usize].as_str();
            let values: Vec<i128> = (0..n)
                .map(|i| operand(if i == 1 { h ^ 3 } else { h ^ (i << 8) ^ 2 }, c.min_digits, c.max_digits))
                .collect();
            let (answer, question) = match pick(0) {
                f @ ("max" | "min") => {
                    let answer = if f == "max" { values.iter().max() } else { values.iter().min() };
                    let args: Vec<String> = values.iter().map(i128::to_string).collect();
                    (answer.copied().unwrap_or_default(), format!("{f}({})", args.join(", ")))
                }
                _ => {
                    // A `max`/`min` drawn for a later gap of an infix chain reads as `+`.
                    let infix: Vec<&str> =
                        (0..n - 1).map(pick).map(|o| if matches!(o, "max" | "min") { "+" } else { o }).collect();
                    (evaluate(&values, &infix), render(&values, &infix))
                }
            };
            Ok((question.clone(), json!({ "question": question, "answer": answer.to_string() })))
        })
    }
}

/// `values[0] infix[0] values[1] ...` with `*` before `+` and `-`.
fn evaluate(values: &[i128], infix: &[&str]) -> i128 {
    let (mut total, mut product) = (0, values[0]);
    let mut sign = 1;
    for (&op, &v) in infix.iter().zip(&values[1..]) {
        if op == "*" {
            product *= v;
        } else {
            total += sign * product;
            (sign, product) = (if op == "-" { -1 } else { 1 }, v);
        }
    }
    total + sign * product
}

fn render(values: &[i128], infix: &[&str]) -> String {
    let mut out = values[0].to_string();
    for (op, v) in infix.iter().zip(&values[1..]) {
        out.push_str(&format!(" {op} {v}"));
    }
    out
}

/// One episode.
pub struct Arith {
    attempts: u32,
    system_prompt: bool,
    answer: String,
    used: u32,
}

impl Environment for Arith {
    fn reset(&mut self, task: &Task, _seed: u64) -> Result<Vec<Message>, EnvError> {
        self.answer = task.str_field("answer")?.to_string();
        let question = task.str_field("question")?;
        self.used = 0;
        let user = Message::user(format!("What is {question}?"));
        Ok(if self.system_prompt { vec![Message::system(SYSTEM), user] } else { vec![user] })
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        self.used += 1;
        let given = answer_tag(&action.text);
        let correct = given == Some(self.answer.as_str());
        let info = json!({ "attempt": self.used, "answered": given.is_some() });
        if correct || self.used >= self.attempts {
            return Ok(Step::terminated(info));
        }
        let feedback = match given {
            None => "I could not find an answer in <answer></answer> tags. Try again.",
            Some(_) => "That is not correct. Try again.",
        };
        Ok(Step::running(vec![Message::user(feedback)], info))
    }
}

/// Builds the spec from `[env.config]`.
pub fn spec(config: &Config, seed: u64) -> Result<EnvSpec, BoxError> {
    let cfg: ArithConfig = parse_config(config)?;
    let (attempts, system_prompt) = (cfg.attempts, cfg.system_prompt);
    let tasks = Arc::new(ArithTasks::new(cfg, seed)?);
    Ok(EnvSpec::new(
        tasks,
        move || Ok(Arith { attempts, system_prompt, answer: String::new(), used: 0 }),
        "answer/exact",
    )
    .with_gold(|task, _| Ok(format!("<answer>{}</answer>", task.str_field("answer")?))))
}

/// Registers `arith/arith-v0`.
pub fn register(registry: &mut Registry) {
    registry.env(ID, "multi-digit + - * problems, answer in <answer> tags; optional retries", spec);
    registry.defaults(rlvr_engine::Kind::Env, ID, ArithConfig::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_never_share_a_problem() {
        let cfg = ArithConfig { max_digits: 1, test_size: 50, ..ArithConfig::default() };
        let t = ArithTasks::new(cfg, 3).unwrap();
        let test: std::collections::HashSet<_> =
            (0..50).map(|i| t.task(Split::Test, i).unwrap().data["question"].clone()).collect();
        for i in 0..500 {
            assert!(!test.contains(&t.task(Split::Train, i).unwrap().data["question"]));
        }
    }

    #[test]
    fn retries_give_feedback_then_end() {
        let cfg: Config = toml::from_str("attempts = 2").unwrap();
        let spec = spec(&cfg, 1).unwrap();
        let task = spec.tasks.task(Split::Train, 0).unwrap();
        let mut env = (spec.make)().unwrap();
        env.reset(&task, 0).unwrap();
        let s1 = env.step(&Action::text("<answer>nope</answer>")).unwrap();
        assert_eq!(s1.status, rlvr_engine::Status::Running);
        assert_eq!(s1.observation[0].content, "That is not correct. Try again.");
        let s2 = env.step(&Action::text("<answer>nope</answer>")).unwrap();
        assert_eq!(s2.status, rlvr_engine::Status::Terminated);
        assert!(matches!(env.step(&Action::text("x")), Err(EnvError::Finished)));
    }

    #[test]
    fn chains_bind_multiplication_first() {
        assert_eq!(evaluate(&[3, 4, 2], &["+", "*"]), 11);
        assert_eq!(evaluate(&[3, 4, 2], &["*", "-"]), 10);
        assert_eq!(evaluate(&[9, 2, 3, 4], &["-", "*", "+"]), 7);
        assert_eq!(evaluate(&[5, 7], &["-"]), -2);
        assert_eq!(render(&[9, 2, 3], &["-", "*"]), "9 - 2 * 3");
    }

    #[test]
    fn problems_state_their_answer() {
        for (ops, operands) in [("[\"+\", \"-\", \"*\"]", 3), ("[\"max\"]", 3), ("[\"min\"]", 2)] {
            let cfg: Config = toml::from_str(&format!("ops = {ops}\noperands = {operands}")).unwrap();
            let spec = spec(&cfg, 7).unwrap();
            for i in 0..200 {
                let task = spec.tasks.task(Split::Train, i).unwrap();
                let (q, a) = (task.str_field("question").unwrap(), task.str_field("answer").unwrap());
                let a: i128 = a.parse().unwrap();
                if let Some(args) = q.strip_prefix("max(").or_else(|| q.strip_prefix("min(")) {
                    let v: Vec<i128> = args.trim_end_matches(')').split(", ").map(|x| x.parse().unwrap()).collect();
                    assert_eq!(v.len(), operands);
                    let want = if q.starts_with("max") { v.iter().max() } else { v.iter().min() };
                    assert_eq!(Some(&a), want, "{q}");
                } else {
                    let t: Vec<&str> = q.split(' ').collect();
                    assert_eq!(t.len(), 2 * operands - 1, "{q}");
                    let v: Vec<i128> = t.iter().step_by(2).map(|x| x.parse().unwrap()).collect();
                    let o: Vec<&str> = t.iter().skip(1).step_by(2).copied().collect();
                    // Worked by hand: fold products first, then add and subtract.
                    let mut terms = vec![(1, v[0])];
                    for (op, x) in o.iter().zip(&v[1..]) {
                        match *op {
                            "*" => terms.last_mut().unwrap().1 *= x,
                            "-" => terms.push((-1, *x)),
                            _ => terms.push((1, *x)),
                        }
                    }
                    assert_eq!(a, terms.iter().map(|(s, x)| s * x).sum::<i128>(), "{q}");
                }
            }
        }
    }

    #[test]
    fn two_operand_problems_are_unchanged_by_chains() {
        // Pinned from before chains existed (a run of the older build drew the same problems):
        // a config's problems are part of its published results.
        let t = ArithTasks::new(ArithConfig::default(), 0).unwrap();
        let q: Vec<String> =
            (0..3).map(|i| t.task(Split::Train, i).unwrap().str_field("question").unwrap().to_string()).collect();
        assert_eq!(q, ["75 * 226", "44 + 420", "65 * 62"]);
    }

    #[test]
    fn bad_config_is_an_error_naming_the_problem() {
        let cfg: Config = toml::from_str("max_digits = 40").unwrap();
        assert!(spec(&cfg, 0).err().unwrap().to_string().contains("max_digits <= 18"));
        let cfg: Config = toml::from_str("ops = [\"/\"]").unwrap();
        assert!(spec(&cfg, 0).err().unwrap().to_string().contains("unknown operator `/`"));
        let cfg: Config = toml::from_str("operands = 9").unwrap();
        assert!(spec(&cfg, 0).err().unwrap().to_string().contains("operands must lie in 2..=8"));
        let cfg: Config = toml::from_str("max_digits = 18\noperands = 3").unwrap();
        assert!(spec(&cfg, 0).err().unwrap().to_string().contains("at most 36"));
    }
}
