//! The rollout runner: many episodes at once, one batched `generate` per turn.

use crate::env::{Environment, Status, Step};
use crate::message::Message;
use crate::policy::{Action, GenRequest, Policy, PolicyError};
use crate::pool::Pool;
use crate::registry::EnvSpec;
use crate::reward::{Rubric, Scored, panic_message};
use crate::seed::{self, stream};
use crate::task::Task;
use crate::trajectory::{Group, Outcome, Sample, Stage, Trajectory};
use crossbeam_channel::{Receiver, Sender, unbounded};
use serde::{Deserialize, Serialize};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

/// Limits and shape of one batch of rollouts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutConfig {
    /// Samples per task (GRPO's G). Default 4.
    pub group_size: u32,
    /// Policy turns per episode before the runner truncates it. Default 1.
    pub max_turns: u32,
    /// Tokens per episode (prompt, policy and environment tokens together) before the runner
    /// truncates it. Default 2048.
    pub max_tokens: usize,
    /// New tokens per policy turn. Default 256.
    pub max_new_tokens: usize,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        Self { group_size: 4, max_turns: 1, max_tokens: 2048, max_new_tokens: 256 }
    }
}

/// How a batch samples: its seed (already derived from the run seed and the iteration) and
/// whether the policy decodes greedily (evaluation) or samples (training).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sampling {
    /// Seed of the batch; episode and turn seeds derive from it.
    pub seed: u64,
    /// Greedy decoding.
    pub greedy: bool,
}

/// Where the time of a batch went, and how it ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RolloutStats {
    /// Wall-clock seconds of the whole batch.
    pub wall_s: f64,
    /// Seconds inside `Policy::generate` and `Policy::encode`.
    pub generate_s: f64,
    /// Worker seconds inside environments (summed over workers).
    pub env_s: f64,
    /// Worker seconds inside rubrics (summed over workers).
    pub score_s: f64,
    /// Episodes run.
    pub episodes: usize,
    /// Episodes that failed (infrastructure).
    pub failed: usize,
    /// Episodes with a failed weighted reward term (verifier error).
    pub verifier_errors: usize,
    /// Episodes cut by the runner's turn or token limit.
    pub truncated: usize,
    /// Tokens sampled by the policy.
    pub policy_tokens: usize,
    /// Forced-prefix tokens written into the policy's turns ([`Guide`]), not sampled.
    #[serde(default)]
    pub forced_tokens: usize,
    /// Episodes whose first turn began with a forced prefix.
    #[serde(default)]
    pub guided: usize,
    /// Environment steps taken.
    pub steps: usize,
}

/// The result of a batch: one group per task, in task order.
#[derive(Clone, Debug)]
pub struct Rollout {
    /// Groups in the order the tasks were given.
    pub groups: Vec<Group>,
    /// Timings and counts.
    pub stats: RolloutStats,
}

/// What a hybrid rollout writes into the policy's first turn before the policy continues it:
/// Prefix-RFT's guide (the start of a gold answer). Called on the runner's thread with the task,
/// the opening messages and the sample's index in its group. `Ok(None)` or an empty prefix
/// leaves the sample unguided; `Err` fails that episode (`Stage::Prefix`).
pub type Guide<'a> = dyn Fn(&Task, &[Message], u32) -> Result<Option<String>, String> + 'a;

/// Runs rollouts on a worker pool.
///
/// ## Design
/// The policy stays on the calling thread and sees every live episode in one `generate` call per
/// turn; environment resets and steps, and scoring, run on the pool. An episode is scored as soon
/// as it finishes, while the policy generates the next turn of the others. Seeds come from
/// `(seed, task index, sample index, turn)`, so results do not depend on which worker ran what.
/// A panic or error in an environment or a reward fails that episode only.
pub struct Runner {
    pool: Pool,
}

/// Results come back in batches, one message per job, so that the runner thread wakes once
/// per chunk of episodes rather than once per episode.
enum Done {
    Env(Vec<EnvDone>),
    Score(Vec<ScoreDone>),
}

struct EnvDone {
    ep: usize,
    env: Option<Box<dyn Environment>>,
    result: Result<EnvOut, String>,
    secs: f64,
}

struct ScoreDone {
    ep: usize,
    trajectory: Trajectory,
    scored: Scored,
    secs: f64,
}

enum EnvOut {
    Reset(Vec<Message>),
    Step(Step),
}

/// One unit of environment work.
enum EnvJob {
    Reset { ep: usize, task: Arc<Task>, seed: u64 },
    Step { ep: usize, env: Box<dyn Environment>, action: Action },
}

struct Episode {
    group: usize,
    sample: u32,
    seed: u64,
    task: Arc<Task>,
    traj: Trajectory,
    env: Option<Box<dyn Environment>>,
    pending: Vec<Message>,
    turn: u32,
    outcome: Option<Outcome>,
}

impl Runner {
    /// A runner with `workers` threads (0: one per core).
    pub fn new(workers: usize) -> Self {
        Self { pool: Pool::new(workers) }
    }

    /// Worker threads in use.
    pub fn workers(&self) -> usize {
        self.pool.threads()
    }

    /// Runs `config.group_size` episodes of each task and scores them.
    ///
    /// `tasks` pairs each task with its index in its split. Only a policy failure is an `Err`:
    /// it leaves no usable batch.
    pub fn rollout(
        &self,
        policy: &mut dyn Policy,
        env: &EnvSpec,
        rubric: &Arc<Rubric>,
        tasks: Vec<(u64, Task)>,
        config: &RolloutConfig,
        sampling: Sampling,
    ) -> Result<Rollout, PolicyError> {
        self.rollout_guided(policy, env, rubric, tasks, config, sampling, None)
    }

    /// [`Runner::rollout`] where `guide` may start an episode's first answer with a forced
    /// prefix ([`Guide`]). The prefix counts against the turn's `max_new_tokens`, so the policy
    /// continues it with what is left (a prefix that leaves nothing fails the episode); the
    /// policy's message is the prefix's text followed by its own, and the trajectory marks the
    /// prefix's tokens as `forced`.
    #[allow(clippy::too_many_arguments)]
    pub fn rollout_guided(
        &self,
        policy: &mut dyn Policy,
        env: &EnvSpec,
        rubric: &Arc<Rubric>,
        tasks: Vec<(u64, Task)>,
        config: &RolloutConfig,
        sampling: Sampling,
        guide: Option<&Guide<'_>>,
    ) -> Result<Rollout, PolicyError> {
        let Sampling { seed, greedy } = sampling;
        let started = Instant::now();
        let (tx, rx) = unbounded::<Done>();
        let mut stats = RolloutStats::default();
        let mut groups: Vec<Group> = Vec::with_capacity(tasks.len());
        let mut eps: Vec<Episode> = Vec::new();
        for (g, (task_index, task)) in tasks.into_iter().enumerate() {
            let task = Arc::new(task);
            for sample in 0..config.group_size {
                let ep_seed = seed::derive(seed, &[stream::ENV, task_index, u64::from(sample)]);
                eps.push(Episode {
                    group: g,
                    sample,
                    seed: ep_seed,
                    task: task.clone(),
                    traj: Trajectory::default(),
                    env: None,
                    pending: Vec::new(),
                    turn: 0,
                    outcome: None,
                });
            }
            groups.push(Group { task_index, task, samples: Vec::new() });
        }
        stats.episodes = eps.len();

        let resets =
            eps.iter().enumerate().map(|(i, ep)| EnvJob::Reset { ep: i, task: ep.task.clone(), seed: ep.seed });
        self.dispatch_env(resets.collect(), env, &tx);

        let mut waiting_env = eps.len();
        let mut waiting_score = 0usize;
        let mut to_score: Vec<usize> = Vec::new();
        loop {
            while waiting_env > 0 {
                match recv(&rx) {
                    Done::Env(batch) => {
                        waiting_env -= batch.len();
                        for d in batch {
                            stats.env_s += d.secs;
                            if self.on_env(&mut eps[d.ep], d.env, d.result, config, &mut stats) {
                                to_score.push(d.ep);
                            }
                        }
                        // Score what finished while the other episodes go on.
                        waiting_score += self.dispatch_score(&mut to_score, &mut eps, rubric, &tx);
                    }
                    Done::Score(batch) => {
                        waiting_score -= batch.len();
                        store_scores(batch, &mut eps, &mut stats);
                    }
                }
            }

            // Encode what the environments said, and drop episodes that ran out of tokens.
            let t_gen = Instant::now();
            let mut live: Vec<usize> = Vec::new();
            for (i, ep) in eps.iter_mut().enumerate() {
                if ep.env.is_none() || ep.outcome.is_some() {
                    continue;
                }
                match policy.encode(&ep.pending, ep.turn == 0) {
                    Ok(tokens) => ep.traj.push_context(&tokens),
                    Err(e) => {
                        fail(ep, Stage::Encode, e.to_string(), &mut stats);
                        continue;
                    }
                }
                ep.pending.clear();
                if ep.traj.tokens.len() >= config.max_tokens {
                    truncate(ep, "max_tokens", &mut stats);
                    to_score.push(i);
                    continue;
                }
                live.push(i);
            }
            // Forced prefixes of the first turns the guide starts.
            let mut prefixes: Vec<Option<(String, Vec<u32>)>> = Vec::with_capacity(live.len());
            if let Some(guide) = guide {
                live.retain(|&i| {
                    let ep = &mut eps[i];
                    if ep.turn > 0 {
                        prefixes.push(None);
                        return true;
                    }
                    let budget = config.max_new_tokens.min(config.max_tokens.saturating_sub(ep.traj.tokens.len()));
                    match forced_prefix(guide, &*policy, ep, budget) {
                        Ok(p) => {
                            prefixes.push(p);
                            true
                        }
                        Err(e) => {
                            fail(ep, Stage::Prefix, e, &mut stats);
                            false
                        }
                    }
                });
            } else {
                prefixes.resize(live.len(), None);
            }
            waiting_score += self.dispatch_score(&mut to_score, &mut eps, rubric, &tx);
            if live.is_empty() {
                stats.generate_s += t_gen.elapsed().as_secs_f64();
                break;
            }

            let contexts: Vec<Option<Vec<u32>>> = live
                .iter()
                .zip(&prefixes)
                .map(|(&i, p)| p.as_ref().map(|(_, toks)| [eps[i].traj.tokens.as_slice(), toks].concat()))
                .collect();
            let requests: Vec<GenRequest<'_>> = live
                .iter()
                .zip(&contexts)
                .map(|(&i, forced)| {
                    let ep = &eps[i];
                    let context = forced.as_deref().unwrap_or(&ep.traj.tokens);
                    let room = config.max_tokens.saturating_sub(context.len());
                    let forced_len = context.len() - ep.traj.tokens.len();
                    GenRequest {
                        task: &ep.task,
                        messages: &ep.traj.messages,
                        context,
                        max_new_tokens: config.max_new_tokens.saturating_sub(forced_len).min(room),
                        seed: seed::derive(ep.seed, &[stream::SAMPLE, u64::from(ep.turn)]),
                        greedy,
                    }
                })
                .collect();
            let actions = policy.generate(&requests)?;
            drop(requests);
            if actions.len() != live.len() {
                return Err(PolicyError::msg(format!(
                    "generate returned {} actions for {} requests",
                    actions.len(),
                    live.len()
                )));
            }
            stats.generate_s += t_gen.elapsed().as_secs_f64();

            let mut steps = Vec::with_capacity(live.len());
            for ((i, mut action), prefix) in live.into_iter().zip(actions).zip(prefixes) {
                let ep = &mut eps[i];
                if let Some(error) = action.failed {
                    fail(ep, Stage::Generate, error, &mut stats);
                    continue;
                }
                ep.turn += 1;
                stats.policy_tokens += action.tokens.len();
                if let Some((text, tokens)) = prefix {
                    stats.guided += 1;
                    stats.forced_tokens += tokens.len();
                    ep.traj.push_forced(&tokens);
                    ep.traj.push_sampled(&action.tokens, &action.logprobs);
                    // The environment sees the whole answer, prefix included.
                    action.text = text + &action.text;
                    action.logprobs = [vec![0.0; tokens.len()], action.logprobs].concat();
                    action.tokens = [tokens, action.tokens].concat();
                } else {
                    ep.traj.push_sampled(&action.tokens, &action.logprobs);
                }
                ep.traj.messages.push(Message::assistant(action.text.clone()));
                let env = ep.env.take().expect("live episodes hold their environment");
                steps.push(EnvJob::Step { ep: i, env, action });
            }
            waiting_env = steps.len();
            self.dispatch_env(steps, env, &tx);
        }

        while waiting_score > 0 {
            if let Done::Score(batch) = recv(&rx) {
                waiting_score -= batch.len();
                store_scores(batch, &mut eps, &mut stats);
            }
        }

        for ep in eps {
            let outcome = ep.outcome.expect("every episode ends scored or failed");
            if let Outcome::Scored(s) = &outcome
                && s.total().is_none()
            {
                stats.verifier_errors += 1;
            }
            groups[ep.group].samples.push(Sample {
                sample_index: ep.sample,
                seed: ep.seed,
                trajectory: ep.traj,
                outcome,
            });
        }
        stats.wall_s = started.elapsed().as_secs_f64();
        Ok(Rollout { groups, stats })
    }

    /// Applies an environment result; returns true when the episode is finished and needs scoring.
    fn on_env(
        &self,
        ep: &mut Episode,
        env: Option<Box<dyn Environment>>,
        result: Result<EnvOut, String>,
        config: &RolloutConfig,
        stats: &mut RolloutStats,
    ) -> bool {
        match result {
            Err(e) => {
                let stage = if ep.turn == 0 { Stage::Reset } else { Stage::Step };
                fail(ep, stage, e, stats);
                false
            }
            Ok(EnvOut::Reset(obs)) => {
                ep.traj.messages.extend(obs.iter().cloned());
                ep.pending = obs;
                ep.env = env;
                false
            }
            Ok(EnvOut::Step(step)) => {
                stats.steps += 1;
                ep.traj.steps.push(step.info);
                ep.traj.messages.extend(step.observation.iter().cloned());
                if step.status.is_done() {
                    ep.traj.status = step.status;
                    return true;
                }
                if ep.turn >= config.max_turns {
                    truncate(ep, "max_turns", stats);
                    return true;
                }
                if ep.traj.tokens.len() >= config.max_tokens {
                    truncate(ep, "max_tokens", stats);
                    return true;
                }
                ep.pending = step.observation;
                ep.env = env;
                false
            }
        }
    }

    /// Episodes per job: about four jobs per worker, so work spreads evenly while the runner
    /// wakes once per job, not once per episode.
    fn chunk(&self, n: usize) -> usize {
        n.div_ceil(self.pool.threads() * 4).max(1)
    }

    fn dispatch_env(&self, mut jobs: Vec<EnvJob>, spec: &EnvSpec, tx: &Sender<Done>) {
        let size = self.chunk(jobs.len());
        while !jobs.is_empty() {
            let chunk: Vec<EnvJob> = jobs.drain(..size.min(jobs.len())).collect();
            let (make, tx) = (spec.make.clone(), tx.clone());
            self.pool.execute(move || {
                let done = chunk.into_iter().map(|job| run_env_job(job, &make)).collect();
                let _ = tx.send(Done::Env(done));
            });
        }
    }

    /// Sends the episodes in `finished` to be scored; returns how many.
    fn dispatch_score(
        &self,
        finished: &mut Vec<usize>,
        eps: &mut [Episode],
        rubric: &Arc<Rubric>,
        tx: &Sender<Done>,
    ) -> usize {
        let n = finished.len();
        let size = self.chunk(n);
        for chunk in finished.chunks(size) {
            let work: Vec<(usize, Arc<Task>, Trajectory)> = chunk
                .iter()
                .map(|&i| {
                    let ep = &mut eps[i];
                    ep.env = None;
                    (i, ep.task.clone(), std::mem::take(&mut ep.traj))
                })
                .collect();
            let (rubric, tx) = (rubric.clone(), tx.clone());
            self.pool.execute(move || {
                let done = work
                    .into_iter()
                    .map(|(ep, task, trajectory)| {
                        let t0 = Instant::now();
                        let scored = rubric.score(&task, &trajectory);
                        ScoreDone { ep, trajectory, scored, secs: t0.elapsed().as_secs_f64() }
                    })
                    .collect();
                let _ = tx.send(Done::Score(done));
            });
        }
        finished.clear();
        n
    }
}

/// The forced prefix `guide` gives `ep`'s first turn, as text and the policy's tokens; `None`
/// when it gives none. An error says why the episode cannot be guided.
fn forced_prefix(
    guide: &Guide<'_>,
    policy: &dyn Policy,
    ep: &Episode,
    budget: usize,
) -> Result<Option<(String, Vec<u32>)>, String> {
    let text = match catch_unwind(AssertUnwindSafe(|| guide(&ep.task, &ep.traj.messages, ep.sample))) {
        Ok(Ok(Some(text))) if !text.is_empty() => text,
        Ok(Ok(_)) => return Ok(None),
        Ok(Err(e)) => return Err(e),
        Err(p) => return Err(format!("the guide panicked: {}", panic_message(&*p))),
    };
    let tokens = policy.encode_text(&text).map_err(|e| e.to_string())?;
    if tokens.len() >= budget {
        return Err(format!(
            "the forced prefix is {} tokens and the turn may hold {budget}: nothing would be left to continue it",
            tokens.len()
        ));
    }
    Ok(Some((text, tokens)))
}

/// Runs one reset or step, catching a panic so it fails only its own episode.
fn run_env_job(job: EnvJob, make: &crate::registry::EnvFactory) -> EnvDone {
    let t0 = Instant::now();
    let (ep, env, result) = match job {
        EnvJob::Reset { ep, task, seed } => {
            let out = catch_unwind(AssertUnwindSafe(|| {
                let mut env = make().map_err(|e| format!("making the environment: {e}"))?;
                let obs = env.reset(&task, seed).map_err(|e| e.to_string())?;
                Ok::<_, String>((env, obs))
            }));
            match out {
                Ok(Ok((env, obs))) => (ep, Some(env), Ok(EnvOut::Reset(obs))),
                Ok(Err(e)) => (ep, None, Err(e)),
                Err(p) => (ep, None, Err(format!("panicked: {}", panic_message(&*p)))),
            }
        }
        EnvJob::Step { ep, mut env, action } => match catch_unwind(AssertUnwindSafe(|| env.step(&action))) {
            Ok(Ok(step)) => (ep, Some(env), Ok(EnvOut::Step(step))),
            Ok(Err(e)) => (ep, None, Err(e.to_string())),
            Err(p) => (ep, None, Err(format!("panicked: {}", panic_message(&*p)))),
        },
    };
    EnvDone { ep, env, result, secs: t0.elapsed().as_secs_f64() }
}

fn store_scores(batch: Vec<ScoreDone>, eps: &mut [Episode], stats: &mut RolloutStats) {
    for d in batch {
        stats.score_s += d.secs;
        eps[d.ep].traj = d.trajectory;
        eps[d.ep].outcome = Some(Outcome::Scored(d.scored));
    }
}

fn recv(rx: &Receiver<Done>) -> Done {
    // The runner holds a sender for the whole call, so the channel cannot disconnect.
    rx.recv().expect("runner keeps a sender alive")
}

fn fail(ep: &mut Episode, stage: Stage, error: String, stats: &mut RolloutStats) {
    tracing::debug!(task = %ep.task.id, sample = ep.sample, ?stage, %error, "rollout failed");
    ep.env = None;
    stats.failed += 1;
    ep.outcome = Some(Outcome::Failed { stage, error });
}

fn truncate(ep: &mut Episode, by: &str, stats: &mut RolloutStats) {
    stats.truncated += 1;
    ep.traj.status = Status::Truncated;
    ep.traj.truncated_by = Some(by.to_string());
}
