//! Trajectories (one episode, token by token) and groups (the samples of one task).

use crate::env::Status;
use crate::message::{Message, Role};
use crate::reward::Scored;
use crate::task::Task;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// One episode: the conversation, and the tokens that train the policy.
///
/// `tokens`, `loss_mask` and `logprobs` have one entry per token of the whole episode, opening
/// prompt included. `loss_mask` is true exactly for the tokens the policy sampled; tokens the
/// environment wrote (prompts, tool output) are context and carry no loss. Their log-probs are 0.
///
/// `forced` marks the tokens of a forced prefix (Prefix-RFT's hybrid rollouts): the start of a
/// gold answer written into the policy's turn, which the policy then continued. They were not
/// sampled, so `loss_mask` is false on them and an algorithm that does not read `forced`
/// treats them as context; the ones that do decide their gradient themselves.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    /// The conversation, opening messages first.
    pub messages: Vec<Message>,
    /// Every token of the episode.
    pub tokens: Vec<u32>,
    /// True for tokens the policy sampled.
    pub loss_mask: Vec<bool>,
    /// Sampling log-probability of each policy token; 0 for environment tokens.
    pub logprobs: Vec<f32>,
    /// True for forced-prefix tokens; empty when the episode has none (else one per token).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forced: Vec<bool>,
    /// `Step::info` of each step, in order.
    pub steps: Vec<Value>,
    /// How the episode ended; `Running` only for an episode that failed mid-way.
    pub status: Status,
    /// What cut the episode, when `status` is `Truncated` by the runner (`max_turns`, `max_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_by: Option<String>,
}

impl Trajectory {
    /// A finished single-turn trajectory whose answer is `completion`, for scoring text that
    /// did not come from a rollout (`rlvr score`, reward benchmarks).
    pub fn from_completion(prompt: Vec<Message>, completion: &str) -> Self {
        let mut messages = prompt;
        messages.push(Message::assistant(completion));
        Self { messages, status: Status::Terminated, steps: vec![Value::Null], ..Self::default() }
    }

    /// The text of the policy's last message, or "" if it never spoke.
    pub fn final_answer(&self) -> &str {
        self.assistant_messages().last().map(|m| m.content.as_str()).unwrap_or("")
    }

    /// The policy's messages, in order.
    pub fn assistant_messages(&self) -> impl DoubleEndedIterator<Item = &Message> {
        self.messages.iter().filter(|m| m.role == Role::Assistant)
    }

    /// How many times the policy spoke.
    pub fn turns(&self) -> usize {
        self.assistant_messages().count()
    }

    /// How many tokens the policy sampled.
    pub fn policy_tokens(&self) -> usize {
        self.loss_mask.iter().filter(|&&m| m).count()
    }

    /// Appends environment tokens (no loss).
    pub fn push_context(&mut self, tokens: &[u32]) {
        self.tokens.extend_from_slice(tokens);
        self.loss_mask.extend(std::iter::repeat_n(false, tokens.len()));
        self.logprobs.extend(std::iter::repeat_n(0.0, tokens.len()));
        self.mark_forced(false, tokens.len());
    }

    /// Appends sampled tokens (with loss); pads log-probs with 0 if the policy gave none.
    pub fn push_sampled(&mut self, tokens: &[u32], logprobs: &[f32]) {
        self.tokens.extend_from_slice(tokens);
        self.loss_mask.extend(std::iter::repeat_n(true, tokens.len()));
        self.logprobs.extend((0..tokens.len()).map(|i| logprobs.get(i).copied().unwrap_or(0.0)));
        self.mark_forced(false, tokens.len());
    }

    /// Appends forced-prefix tokens: part of the policy's turn, not sampled (no loss mask, log-prob 0).
    pub fn push_forced(&mut self, tokens: &[u32]) {
        self.tokens.extend_from_slice(tokens);
        self.loss_mask.extend(std::iter::repeat_n(false, tokens.len()));
        self.logprobs.extend(std::iter::repeat_n(0.0, tokens.len()));
        self.mark_forced(true, tokens.len());
    }

    /// Whether token `i` is a forced-prefix token.
    pub fn is_forced(&self, i: usize) -> bool {
        self.forced.get(i).copied().unwrap_or(false)
    }

    /// How many tokens were forced.
    pub fn forced_tokens(&self) -> usize {
        self.forced.iter().filter(|&&f| f).count()
    }

    /// Keeps `forced` empty until a token is forced, and one entry per token after.
    fn mark_forced(&mut self, forced: bool, n: usize) {
        if forced && self.forced.is_empty() {
            self.forced.resize(self.tokens.len() - n, false);
        }
        if !self.forced.is_empty() {
            self.forced.extend(std::iter::repeat_n(forced, n));
        }
    }
}

/// Where a rollout failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Making or resetting the environment.
    Reset,
    /// An environment step.
    Step,
    /// Encoding the environment's messages with the policy's tokenizer.
    Encode,
    /// The policy could not answer this episode's request (a remote server's error).
    Generate,
    /// The forced prefix of a hybrid rollout (Prefix-RFT) could not be made: the gold player
    /// failed, or the policy cannot encode text, or the prefix leaves no room to continue.
    Prefix,
}

/// What became of one rollout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Outcome {
    /// The episode ran to its end and the rubric scored it (some terms may hold errors).
    Scored(Scored),
    /// Infrastructure failure: the episode could not be completed. Counted, never trained on.
    Failed {
        /// Where it failed.
        stage: Stage,
        /// Why.
        error: String,
    },
}

/// One sampled episode of a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Which of the group's samples this is.
    pub sample_index: u32,
    /// The seed the environment was reset with.
    pub seed: u64,
    /// The episode (partial if it failed).
    pub trajectory: Trajectory,
    /// Its score or its failure.
    pub outcome: Outcome,
}

impl Sample {
    /// The total reward, if the episode was scored and no weighted term failed.
    pub fn reward(&self) -> Option<f64> {
        match &self.outcome {
            Outcome::Scored(s) => s.total(),
            Outcome::Failed { .. } => None,
        }
    }
}

/// The samples of one task, GRPO's unit: advantages are computed within a group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// The task's index in its split.
    pub task_index: u64,
    /// The task.
    pub task: Arc<Task>,
    /// Its samples, in sample-index order.
    pub samples: Vec<Sample>,
}
