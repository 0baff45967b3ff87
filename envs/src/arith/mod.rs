//! `arith/arith-v0`: multi-digit addition, subtraction and multiplication, answered in
//! `<answer>` tags.
//!
//! The smallest complete environment: a seeded generator with disjoint train and test splits,
//! optional retries (the environment says "not correct" and the episode goes on, which
//! exercises multi-turn rollouts), and a gold player. Its reward is `answer/exact`.

use rlvr_engine::{
    Action, BoxError, Config, EnvError, EnvSpec, Environment, Message, Registry, Split, Step, Task, TaskSource,
    draw_split_task, parse_config, seed,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

/// The id this environment is registered under.
pub const ID: &str = "arith/arith-v0";

const SYSTEM: &str = "Solve the arithmetic problem. Give only the final integer inside <answer></answer> tags.";

/// Settings of `[env.config]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArithConfig {
    /// Fewest digits of an operand. Default 1.
    pub min_digits: u32,
    /// Most digits of an operand, at most 18. Default 3.
    pub max_digits: u32,
    /// Operators to draw from: any of `+`, `-`, `*`. Default `["+", "*"]`.
    pub ops: Vec<String>,
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
        if let Some(op) = self.ops.iter().find(|o| !["+", "-", "*"].contains(&o.as_str())) {
            return Err(format!("unknown operator `{op}`; use +, - or *").into());
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
            let op = c.ops[(seed::mix(h ^ 1) % c.ops.len() as u64) as usize].as_str();
            let a = operand(h ^ 2, c.min_digits, c.max_digits);
            let b = operand(h ^ 3, c.min_digits, c.max_digits);
            let answer = match op {
                "+" => a + b,
                "-" => a - b,
                _ => a * b,
            };
            let question = format!("{a} {op} {b}");
            Ok((question.clone(), json!({ "question": question, "answer": answer.to_string() })))
        })
    }
}

/// One episode.
pub struct Arith {
    attempts: u32,
    system_prompt: bool,
    answer: String,
    used: u32,
}

/// The text inside the last `<answer>...</answer>` of `text`, trimmed.
pub fn answer_tag(text: &str) -> Option<&str> {
    let end = text.rfind("</answer>")?;
    let start = text[..end].rfind("<answer>")? + "<answer>".len();
    Some(text[start..end].trim())
}

impl Environment for Arith {
    fn reset(&mut self, task: &Task, _seed: u64) -> Result<Vec<Message>, EnvError> {
        self.answer = task.str_field("answer").map_err(EnvError::InvalidTask)?.to_string();
        let question = task.str_field("question").map_err(EnvError::InvalidTask)?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_tag_takes_the_last_complete_tag() {
        assert_eq!(answer_tag("<answer> 12 </answer>"), Some("12"));
        assert_eq!(answer_tag("<answer>1</answer> then <answer>2</answer>"), Some("2"));
        assert_eq!(answer_tag("<answer>1"), None);
        assert_eq!(answer_tag("</answer><answer>"), None);
    }

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
    fn bad_config_is_an_error_naming_the_problem() {
        let cfg: Config = toml::from_str("max_digits = 40").unwrap();
        assert!(spec(&cfg, 0).err().unwrap().to_string().contains("max_digits <= 18"));
        let cfg: Config = toml::from_str("ops = [\"/\"]").unwrap();
        assert!(spec(&cfg, 0).err().unwrap().to_string().contains("unknown operator `/`"));
    }
}
