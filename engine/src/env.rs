//! Environments: multi-turn, Gymnasium-shaped, one instance per episode.

use crate::error::BoxError;
use crate::message::Message;
use crate::policy::Action;
use crate::task::Task;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Whether an episode goes on after a step.
///
/// `Terminated` and `Truncated` are different facts: the first means the episode reached its
/// natural end (an answer was committed), the second that it was cut (a turn or token limit), so
/// its last state says nothing about what the policy would have done next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The episode continues; the observation is the environment's reply.
    #[default]
    Running,
    /// The episode ended by its own rules.
    Terminated,
    /// The episode was cut short.
    Truncated,
}

impl Status {
    /// True when the episode is over, whichever way.
    pub fn is_done(self) -> bool {
        !matches!(self, Status::Running)
    }
}

/// What the environment returns for one action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Messages the environment adds to the conversation (tool output, feedback); may be empty.
    pub observation: Vec<Message>,
    /// Whether the episode goes on.
    pub status: Status,
    /// Facts for the rubric and the logs (limits hit, queries run); never the reward itself.
    pub info: Value,
}

impl Step {
    /// A step that ends the episode with nothing more to say.
    pub fn terminated(info: Value) -> Self {
        Self { observation: Vec::new(), status: Status::Terminated, info }
    }

    /// A step that answers with `observation` and goes on.
    pub fn running(observation: Vec<Message>, info: Value) -> Self {
        Self { observation, status: Status::Running, info }
    }
}

/// An environment: the world a policy acts in for one episode.
///
/// ## Design
/// One instance serves one episode and is then dropped, so an environment keeps per-episode
/// state (a database copy, an interpreter) in plain fields and needs no locks; instances of the
/// same environment run in parallel on the worker pool, which is why `Send` is required.
///
/// An environment never computes the training reward: it reports what happened (`Step::info`)
/// and the rubric judges. A model's mistake (bad syntax, a wrong tool) is an observation the
/// model sees, not an error; `Err` is reserved for faults of the environment or the task, and
/// fails that one rollout.
pub trait Environment: Send {
    /// Starts an episode on `task`; returns the opening messages (system and user prompt).
    /// The same `(task, seed)` must give the same episode.
    fn reset(&mut self, task: &Task, seed: u64) -> Result<Vec<Message>, EnvError>;

    /// Applies the policy's `action` and says what happened.
    fn step(&mut self, action: &Action) -> Result<Step, EnvError>;
}

/// Why an environment could not go on. Each one fails the rollout it happened in, and only it.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// `step` was called before `reset`.
    #[error("step called before reset")]
    NotReset,
    /// `step` was called after the episode ended.
    #[error("step called after the episode ended")]
    Finished,
    /// The task lacks something the environment needs.
    #[error("invalid task: {0}")]
    InvalidTask(String),
    /// The environment itself failed (infrastructure: a file, a sandbox, a panic).
    #[error("{0}")]
    Failed(BoxError),
}

impl From<crate::task::FieldError> for EnvError {
    fn from(e: crate::task::FieldError) -> Self {
        EnvError::InvalidTask(e.to_string())
    }
}

impl EnvError {
    /// An infrastructure failure with the given message.
    pub fn failed(msg: impl Into<String>) -> Self {
        EnvError::Failed(msg.into().into())
    }
}

/// Enforces the call order `reset, step*, (reset ...)` around any environment.
///
/// Gymnasium keeps cross-cutting rules in wrappers rather than in every environment; so do we.
/// The registry wraps every environment it makes in this, so plugins need not check order.
pub struct OrderEnforcing<E> {
    inner: E,
    state: Phase,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Fresh,
    Running,
    Done,
}

impl<E: Environment> OrderEnforcing<E> {
    /// Wraps `inner`.
    pub fn new(inner: E) -> Self {
        Self { inner, state: Phase::Fresh }
    }
}

impl<E: Environment> Environment for OrderEnforcing<E> {
    fn reset(&mut self, task: &Task, seed: u64) -> Result<Vec<Message>, EnvError> {
        let obs = self.inner.reset(task, seed)?;
        self.state = Phase::Running;
        Ok(obs)
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        match self.state {
            Phase::Fresh => Err(EnvError::NotReset),
            Phase::Done => Err(EnvError::Finished),
            Phase::Running => {
                let step = self.inner.step(action)?;
                if step.status.is_done() {
                    self.state = Phase::Done;
                }
                Ok(step)
            }
        }
    }
}

impl Environment for Box<dyn Environment> {
    fn reset(&mut self, task: &Task, seed: u64) -> Result<Vec<Message>, EnvError> {
        (**self).reset(task, seed)
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        (**self).step(action)
    }
}
