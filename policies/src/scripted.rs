//! `scripted/gold-v0`: plays the environment's gold answer with probability `accuracy`, and a
//! fixed wrong answer otherwise. A test double and a demo policy: it needs no model, so every
//! environment can be run end to end (`rlvr run`) before a model exists.

use rlvr_engine::{
    Action, BoxError, Config, GenRequest, GoldPlayer, Message, Policy, PolicyContext, PolicyError, Registry,
    parse_config, seed,
};
use serde::{Deserialize, Serialize};

/// Settings of `[policy.config]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScriptedConfig {
    /// Chance of playing the gold answer on a sampled turn. Default 0.5.
    pub accuracy: f64,
    /// What to answer otherwise. Default `"<answer>I don't know</answer>"`.
    pub wrong: String,
}

impl Default for ScriptedConfig {
    fn default() -> Self {
        Self { accuracy: 0.5, wrong: "<answer>I don't know</answer>".into() }
    }
}

/// The scripted policy. Its "tokens" are the bytes of the text it writes and reads, so token
/// limits and token counts behave as they would with a byte-level model.
pub struct Scripted {
    config: ScriptedConfig,
    gold: GoldPlayer,
}

impl Scripted {
    /// A policy playing `gold`.
    pub fn new(config: ScriptedConfig, gold: GoldPlayer) -> Result<Self, BoxError> {
        if !(0.0..=1.0).contains(&config.accuracy) {
            return Err(format!("accuracy must lie in [0, 1], got {}", config.accuracy).into());
        }
        Ok(Self { config, gold })
    }
}

impl Policy for Scripted {
    fn encode(&self, messages: &[Message], _first: bool) -> Result<Vec<u32>, PolicyError> {
        let mut out = Vec::new();
        for m in messages {
            let role = serde_json::to_string(&m.role).unwrap_or_default();
            out.extend(format!("<|{}|>\n{}\n", role.trim_matches('"'), m.content).bytes().map(u32::from));
        }
        out.extend(b"<|assistant|>\n".iter().map(|&b| u32::from(b)));
        Ok(out)
    }

    fn generate(&mut self, batch: &[GenRequest<'_>]) -> Result<Vec<Action>, PolicyError> {
        batch
            .iter()
            .map(|r| {
                // Greedy decoding of a policy that is right with probability p is right iff p > 0.5.
                let right = if r.greedy {
                    self.config.accuracy > 0.5
                } else {
                    ((seed::mix(r.seed) >> 11) as f64 / (1u64 << 53) as f64) < self.config.accuracy
                };
                let mut text = if right {
                    (self.gold)(r.task, r.messages).map_err(PolicyError)?
                } else {
                    self.config.wrong.clone()
                };
                truncate_to(&mut text, r.max_new_tokens);
                let tokens: Vec<u32> = text.bytes().map(u32::from).collect();
                let logprobs = vec![0.0; tokens.len()];
                Ok(Action { text, tokens, logprobs, failed: None })
            })
            .collect()
    }
}

fn truncate_to(text: &mut String, max_bytes: usize) {
    if text.len() > max_bytes {
        let mut cut = max_bytes;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
}

/// Registers `scripted/gold-v0`.
pub fn register(registry: &mut Registry) {
    registry.policy(
        "scripted/gold-v0",
        "no model: plays the environment's gold answer with probability `accuracy` (tests, demos)",
        |config: &Config, ctx: &PolicyContext| {
            let gold = ctx.gold.clone().ok_or("this environment has no gold player to script")?;
            Ok(Box::new(Scripted::new(parse_config(config)?, gold)?) as Box<dyn Policy>)
        },
    );
    registry.defaults(rlvr_engine::Kind::Policy, "scripted/gold-v0", ScriptedConfig::default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlvr_engine::Task;
    use std::sync::Arc;

    fn policy(accuracy: f64) -> Scripted {
        let gold: GoldPlayer = Arc::new(|_: &Task, _: &[Message]| Ok("gold ✓".to_string()));
        Scripted::new(ScriptedConfig { accuracy, wrong: "wrong".into() }, gold).unwrap()
    }

    fn answers(p: &mut Scripted, greedy: bool, max_new_tokens: usize) -> Vec<String> {
        let task = Task::new("t", serde_json::Value::Null);
        let reqs: Vec<GenRequest<'_>> = (0..1000)
            .map(|seed| GenRequest { task: &task, messages: &[], context: &[], max_new_tokens, seed, greedy })
            .collect();
        p.generate(&reqs).unwrap().into_iter().map(|a| a.text).collect()
    }

    #[test]
    fn accuracy_is_the_share_of_gold_answers() {
        let gold = |v: &[String]| v.iter().filter(|t| t.starts_with("gold")).count();
        assert_eq!(gold(&answers(&mut policy(0.0), false, 64)), 0);
        assert_eq!(gold(&answers(&mut policy(1.0), false, 64)), 1000);
        let n = gold(&answers(&mut policy(0.3), false, 64));
        assert!((240..=360).contains(&n), "{n} of 1000 at accuracy 0.3");
        assert_eq!(gold(&answers(&mut policy(0.6), true, 64)), 1000, "greedy takes the likelier answer");
        assert_eq!(gold(&answers(&mut policy(0.4), true, 64)), 0);
    }

    #[test]
    fn max_new_tokens_cuts_on_a_char_boundary() {
        let a = answers(&mut policy(1.0), false, 6);
        assert_eq!(a[0], "gold ", "the 3-byte check mark does not fit in 6 bytes");
        assert!(
            Scripted::new(
                ScriptedConfig { accuracy: 1.5, ..Default::default() },
                Arc::new(|_: &Task, _: &[Message]| Ok(String::new()))
            )
            .is_err()
        );
    }
}
