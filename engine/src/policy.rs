//! Policies: whatever turns a conversation into the next assistant message.

use crate::error::BoxError;
use crate::message::Message;
use crate::task::Task;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The policy's output for one turn: the text, and the exact tokens sampled with their
/// log-probabilities under the sampling distribution.
///
/// Training uses `tokens` as they were sampled, never a re-tokenisation of `text`: the two can
/// differ, and the difference is a silent off-policy error. Policies without tokens (a scripted
/// policy, a remote API that returns only text) leave both vectors empty.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// The decoded text.
    pub text: String,
    /// Sampled token ids, in order.
    pub tokens: Vec<u32>,
    /// Log-probability of each sampled token; same length as `tokens`.
    pub logprobs: Vec<f32>,
    /// Set when this one request could not be answered (a remote server's error after its
    /// retries): the runner fails that rollout, counts it, and goes on with the others. A
    /// policy error that leaves no usable batch is `generate`'s `Err` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

impl Action {
    /// An action with text only.
    pub fn text(text: impl Into<String>) -> Self {
        Self { text: text.into(), ..Self::default() }
    }

    /// A request that failed, with why.
    pub fn failed(error: impl Into<String>) -> Self {
        Self { failed: Some(error.into()), ..Self::default() }
    }
}

/// One sequence to continue in a batched `generate` call.
#[derive(Clone, Copy, Debug)]
pub struct GenRequest<'a> {
    /// The episode's task. Only scripted and oracle policies (test doubles, demos) may read it;
    /// a model must see nothing but `messages` and `context`.
    pub task: &'a Task,
    /// The conversation so far, for policies that work on text.
    pub messages: &'a [Message],
    /// The token context so far (every turn's tokens, as sampled or encoded), for policies that
    /// work on tokens. Ends with the prompt for the assistant's turn.
    pub context: &'a [u32],
    /// At most this many new tokens.
    pub max_new_tokens: usize,
    /// The seed for this sequence's sampling, derived from the run seed and the episode.
    pub seed: u64,
    /// Take the most likely token at each position instead of sampling (evaluation).
    pub greedy: bool,
}

/// A policy: a language model, a remote server, or a script.
///
/// ## Design
/// `generate` takes the whole batch of live episodes at once because that is how a model on a
/// GPU is fast; the runner calls it once per turn. The policy owns the tokenizer and chat
/// template: `encode` renders only the new messages, so earlier turns are never re-tokenised.
/// A policy lives on the runner's thread, so it need not be `Send` or `Sync`.
pub trait Policy {
    /// Renders `messages`, which follow the current context, into tokens, ending with the prompt
    /// for the next assistant turn. `first` is true for the opening messages of an episode.
    fn encode(&self, messages: &[Message], first: bool) -> Result<Vec<u32>, PolicyError>;

    /// The tokens of `text` as the content of an assistant turn: no template tokens, no end of
    /// turn. The runner uses it to write a forced prefix (the start of a gold answer, for
    /// Prefix-RFT's hybrid rollouts) into the policy's turn before the policy continues it.
    /// Policies that do not work on tokens keep the default, an error, and cannot be guided.
    fn encode_text(&self, _text: &str) -> Result<Vec<u32>, PolicyError> {
        Err(PolicyError::msg("this policy does not work on tokens, so it cannot continue a forced prefix"))
    }

    /// Continues every request in `batch`; returns one action per request, in order.
    fn generate(&mut self, batch: &[GenRequest<'_>]) -> Result<Vec<Action>, PolicyError>;

    /// Writes the policy's weights and state into `dir` (an empty directory).
    fn save(&self, _dir: &Path) -> Result<(), PolicyError> {
        Ok(())
    }

    /// Restores what `save` wrote.
    fn load(&mut self, _dir: &Path) -> Result<(), PolicyError> {
        Ok(())
    }
}

/// A policy failed; this fails the whole iteration, which the run can resume.
#[derive(Debug, thiserror::Error)]
#[error("policy: {0}")]
pub struct PolicyError(pub BoxError);

impl PolicyError {
    /// An error with the given message.
    pub fn msg(msg: impl Into<String>) -> Self {
        Self(msg.into().into())
    }
}
