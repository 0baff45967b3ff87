//! Gold episodes: an environment's gold player answering each turn.
//!
//! One player serves two callers: the conformance checks ([`crate::testing`]) play whole
//! episodes and score them, and the SFT warm start takes the first answer to an episode's
//! opening as a demonstration (it stops there, so no sandbox runs the answer).

use crate::env::{Environment, Status};
use crate::message::Message;
use crate::policy::Action;
use crate::registry::{EnvSpec, GoldPlayer};
use crate::task::Task;
use crate::trajectory::Trajectory;

/// An episode opened on a task with the gold player's first answer, not yet sent.
pub struct GoldOpening {
    /// The environment, reset on the task.
    pub env: Box<dyn Environment>,
    /// The opening messages (the prompt).
    pub prompt: Vec<Message>,
    /// The gold player's answer to them.
    pub answer: String,
}

/// Makes an environment, resets it on `task` with `seed`, and asks `gold` for the first answer.
/// Errors say which of the three failed.
pub fn open(spec: &EnvSpec, gold: &GoldPlayer, task: &Task, seed: u64) -> Result<GoldOpening, String> {
    let mut env = (spec.make)().map_err(|e| format!("making the environment: {e}"))?;
    let prompt = env.reset(task, seed).map_err(|e| e.to_string())?;
    let answer = gold(task, &prompt).map_err(|e| format!("gold player: {e}"))?;
    Ok(GoldOpening { env, prompt, answer })
}

/// Plays `gold` for one episode of at most `max_turns` answers; returns the trajectory (text
/// only, no tokens), truncated by `max_turns` when the episode did not end.
pub fn play_gold(
    spec: &EnvSpec,
    gold: &GoldPlayer,
    task: &Task,
    seed: u64,
    max_turns: u32,
) -> Result<Trajectory, String> {
    let GoldOpening { mut env, prompt, answer } = open(spec, gold, task, seed)?;
    let mut traj = Trajectory { messages: prompt, ..Trajectory::default() };
    let mut first = Some(answer);
    for _ in 0..max_turns {
        let answer = match first.take() {
            Some(a) => a,
            None => gold(task, &traj.messages).map_err(|e| format!("gold player: {e}"))?,
        };
        traj.messages.push(Message::assistant(answer.clone()));
        let step = env.step(&Action::text(answer)).map_err(|e| e.to_string())?;
        traj.steps.push(step.info);
        traj.messages.extend(step.observation);
        if step.status.is_done() {
            traj.status = step.status;
            return Ok(traj);
        }
    }
    traj.status = Status::Truncated;
    traj.truncated_by = Some("max_turns".into());
    Ok(traj)
}
