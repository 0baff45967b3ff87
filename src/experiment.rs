//! The experiment: an experiment file, resolved, and the loop that runs it.
//!
//! Each iteration draws `tasks_per_iteration` training tasks, rolls out `group_size` episodes of
//! each, scores them, logs metrics and samples to the run store in one transaction, and writes a
//! checkpoint. A killed run loses at most the iteration in flight: `resume` restarts after the
//! last checkpoint, and because every random choice derives from (seed, iteration, task, sample)
//! the resumed iterations are the ones an uninterrupted run would have produced.

use crate::error::{Error, Result};
use crate::store::{IterationRecord, RunStore, SampleRow, split_name};
use anyhow::Context;
use rlvr_engine::gold;
use rlvr_engine::seed::{self, stream};
use rlvr_engine::{
    Config, EnvSpec, GoldPlayer, Guide, Message, Outcome, Policy, PolicyContext, Registry, Rollout, RolloutConfig,
    Rubric, Runner, Sampling, Split, Task, TaskStream,
};
use rlvr_policies::RunPolicy;
use rlvr_policies::algo::preference::{self, OfflineConfig};
use rlvr_policies::algo::prefix;
use rlvr_policies::algo::select::{has_signal, select_groups};
use rlvr_policies::algo::sft::{self, SftConfig};
use rlvr_policies::algo::{TrainConfig, Trainer};
use rlvr_policies::lm::LmPolicy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// An experiment file (`rlvr run EXP.toml`), with every default filled in once resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// How long and how wide the run is.
    pub run: RunConfig,
    /// The environment: a registered id and its config.
    pub env: PluginRef,
    /// Episode shape and limits.
    #[serde(default)]
    pub rollout: RolloutConfig,
    /// The reward; the environment's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<PluginRef>,
    /// The policy: a registered id and its config.
    pub policy: PluginRef,
    /// Supervised warm start before the first iteration (a trainable policy only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sft: Option<SftConfig>,
    /// Offline preference optimisation (DPO, IPO, ORPO) on a JSONL of pairs, after `[sft]` and
    /// before the first iteration (a trainable policy only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preference: Option<OfflineConfig>,
    /// The RL update after each rollout (a trainable policy only); without it the run only
    /// rolls out, scores and evaluates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<TrainConfig>,
}

/// `[run]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Names the run; the default output directory is `runs/<name>`.
    pub name: String,
    /// Every random choice of the run derives from it. Default 0.
    #[serde(default)]
    pub seed: u64,
    /// Iterations to run, at least 1 (each records its metrics and may write a checkpoint).
    pub iterations: u64,
    /// Training tasks per iteration (each gets `rollout.group_size` episodes). Default 8.
    #[serde(default = "default_tasks")]
    pub tasks_per_iteration: u64,
    /// Worker threads for environments and rewards; 0 means one per core. Default 0.
    #[serde(default)]
    pub workers: usize,
    /// Write a checkpoint every N iterations (and after the last). Default 1.
    #[serde(default = "one")]
    pub checkpoint_every: u64,
    /// Evaluate on held-out tasks every N iterations (and after the last); 0 never. Default 0.
    #[serde(default)]
    pub eval_every: u64,
    /// Held-out tasks per evaluation (greedy, one episode each). Default 64.
    #[serde(default = "default_eval_tasks")]
    pub eval_tasks: u64,
    /// Besides the greedy evaluation, sample this many episodes per held-out task and report
    /// `eval/pass@k` and `eval/sampled_accuracy`; 0 or 1 skips them. Default 0.
    #[serde(default)]
    pub eval_pass_k: u32,
    /// A field of the task (a dot-separated path into its JSON, e.g. `query.level` for
    /// `causal/query-v0`) whose values split every evaluation: `eval/accuracy/<value>`,
    /// `eval/tasks/<value>` and, with `eval_pass_k`, `eval/sampled_accuracy/<value>`, beside the
    /// totals. A held-out task without the field, or with an object or list there, is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_by: Option<String>,
    /// Groups per iteration whose trajectories are stored in `run.db`; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_groups: Option<usize>,
}

fn default_tasks() -> u64 {
    8
}
fn one() -> u64 {
    1
}
fn default_eval_tasks() -> u64 {
    64
}

/// A plugin by id, with its config table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    /// Registered id, e.g. `arith/arith-v0`.
    pub id: String,
    /// The plugin's own settings.
    #[serde(default)]
    pub config: Config,
}

impl Experiment {
    /// Reads `path` and applies `overrides` (`key.path=value`, the value parsed as TOML and
    /// taken as a string when it does not parse).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::BadInput(format!("cannot read experiment file {}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string(), overrides)
    }

    /// Parses experiment text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str, overrides: &[String]) -> Result<Self> {
        if overrides.is_empty() {
            return toml::from_str(text).map_err(|e| Error::BadInput(format!("{origin}: {e}")));
        }
        let original: toml::Table = toml::from_str(text).map_err(|e| Error::BadInput(format!("{origin}: {e}")))?;
        let with = |sets: &[String]| -> Result<std::result::Result<Self, toml::de::Error>> {
            let mut table = original.clone();
            for o in sets {
                apply_override(&mut table, o).map_err(|e| Error::BadInput(format!("--set {o}: {e}")))?;
            }
            let merged = toml::to_string(&table).context("re-serialising the experiment")?;
            Ok(toml::from_str(&merged))
        };
        match with(overrides)? {
            Ok(exp) => Ok(exp),
            // Name the --set that broke the experiment, not a line of the re-serialised file.
            Err(e) => {
                for o in overrides {
                    if let Err(one) = with(std::slice::from_ref(o))? {
                        return Err(Error::BadInput(format!("--set {o}: {}", one.message())));
                    }
                }
                Err(Error::BadInput(format!("{origin} (after --set): {}", e.message())))
            }
        }
    }

    /// The resolved experiment as TOML, defaults included: what `config.toml` holds.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("an experiment always serialises")
    }
}

/// Sets `a.b.c=value` in `table`, creating tables on the way: what `--set` does to an
/// experiment (`rlvr run`) and to a reward's config (`rlvr score`). The value is read as TOML,
/// and taken as a string when it does not parse.
pub fn apply_override(table: &mut toml::Table, spec: &str) -> Result<(), String> {
    let (key, raw) = spec.split_once('=').ok_or("expected key.path=value")?;
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("bad key `{key}`"));
    }
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let (last, path) = parts.split_last().expect("split gives at least one part");
    let mut cur = table;
    for p in path {
        let entry = cur.entry(p.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry.as_table_mut().ok_or_else(|| format!("`{p}` is not a table"))?;
    }
    cur.insert(last.to_string(), value);
    Ok(())
}

/// What a finished `run` did.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The run directory.
    pub dir: PathBuf,
    /// Iterations run by this call (after a resume, only the new ones).
    pub iterations_run: u64,
    /// The last iteration's metrics.
    pub last_metrics: BTreeMap<String, f64>,
}

/// Observes a run's progress (the CLI draws a progress bar with it).
pub trait Progress {
    /// Called once with the iteration range about to run.
    fn start(&mut self, _first: u64, _total: u64) {}
    /// Called after each committed iteration.
    fn iteration(&mut self, _iteration: u64, _metrics: &BTreeMap<String, f64>) {}
    /// Called after each step of the SFT warm start.
    fn sft_step(&mut self, _step: u64, _total: u64, _loss: f64) {}
}

impl Progress for () {}

/// The built pieces of an experiment.
struct Parts {
    env: EnvSpec,
    rubric: Arc<Rubric>,
    policy: RunPolicy,
}

fn build(registry: &Registry, exp: &Experiment) -> Result<Parts> {
    // Name the section at fault: `env.id`, `policy.config`, ...
    fn bad(section: &'static str) -> impl Fn(rlvr_engine::RegistryError) -> Error {
        move |e| {
            let field = match e {
                rlvr_engine::RegistryError::Unknown { .. } => "id",
                rlvr_engine::RegistryError::Build { .. } => "config",
            };
            Error::BadInput(format!("[{section}] {field}: {e}"))
        }
    }
    let env = registry.make_env(&exp.env.id, &exp.env.config, exp.run.seed).map_err(bad("env"))?;
    let rubric = match &exp.reward {
        Some(r) => registry.make_reward(&r.id, &r.config).map_err(bad("reward"))?,
        None => {
            registry.make_reward(&env.default_reward, &env.default_reward_config).map_err(bad("env default reward"))?
        }
    };
    let ctx = PolicyContext { seed: exp.run.seed, gold: env.gold.clone() };
    let policy = RunPolicy::build(registry, &exp.policy.id, &exp.policy.config, &ctx).map_err(bad("policy"))?;
    Ok(Parts { env, rubric: Arc::new(rubric), policy })
}

/// Runs (or, with `resume`, continues) the experiment in `dir`.
pub fn run(
    registry: &Registry,
    exp: &Experiment,
    dir: &Path,
    resume: bool,
    progress: &mut dyn Progress,
) -> Result<Summary> {
    for (field, value) in [
        ("run.tasks_per_iteration", exp.run.tasks_per_iteration),
        ("rollout.group_size", exp.rollout.group_size as u64),
        ("rollout.max_new_tokens", exp.rollout.max_new_tokens as u64),
    ] {
        if value == 0 {
            return Err(Error::BadInput(format!("{field} must be at least 1, found 0")));
        }
    }
    if exp.run.iterations == 0 {
        // The loop records every metric (the warm start's too) and writes every checkpoint, so
        // zero iterations would train a warm start and keep nothing of it.
        return Err(Error::BadInput(
            "run.iterations = 0 keeps nothing: a run records its metrics, the warm start's too, and its \
             checkpoints with each iteration; set it to at least 1 (without [train] an iteration only \
             samples and scores), or use `rlvr eval` to evaluate a model"
                .into(),
        ));
    }
    check_eval_by(exp)?;
    if exp.run.eval_every > 0 && exp.run.eval_tasks == 0 {
        return Err(Error::BadInput(
            "run.eval_tasks = 0 evaluates nothing: set it to at least 1, or run.eval_every = 0 to skip evaluation"
                .into(),
        ));
    }
    let Parts { env, rubric, mut policy } = build(registry, exp)?;
    validate(exp, &env, &mut policy)?;
    let config_text = exp.to_toml();
    let created = !resume;
    let store = if resume {
        let store = RunStore::open(dir)?;
        let saved = store.config()?;
        let saved: Experiment = toml::from_str(&saved).context("reading the run's config.toml")?;
        let same = Experiment { run: RunConfig { iterations: exp.run.iterations, ..saved.run.clone() }, ..saved };
        if &same != exp {
            let mut diffs = Vec::new();
            let as_toml = |e: &Experiment| toml::Value::try_from(e).unwrap_or(toml::Value::Boolean(false));
            differing_keys(&as_toml(&same), &as_toml(exp), "", &mut diffs);
            return Err(Error::BadInput(format!(
                "{} was started with a different experiment ({}); only run.iterations may change on \
                 --resume (see its config.toml)",
                dir.display(),
                diffs.join("; ")
            )));
        }
        store.write_config(&config_text)?;
        store
    } else {
        RunStore::create(dir, &config_text)?
    };
    let result = run_stored(store, exp, dir, resume, Parts { env, rubric, policy }, progress);
    // A run that fails before its first checkpoint leaves nothing worth resuming: its directory
    // goes, so that the corrected command can start again in the same place.
    if created
        && result.is_err()
        && RunStore::open(dir).and_then(|s| s.latest_checkpoint()).is_ok_and(|c| c.is_none())
        && let Err(e) = std::fs::remove_dir_all(dir)
    {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove the failed run's directory");
    }
    result
}

/// The dotted keys where two experiments' TOML differ, each with both values (`run.seed: 5 in
/// the run, 6 now`), so a refused resume says what to change back.
fn differing_keys(saved: &toml::Value, now: &toml::Value, prefix: &str, out: &mut Vec<String>) {
    let key = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
    match (saved, now) {
        (toml::Value::Table(a), toml::Value::Table(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => differing_keys(x, y, &key(k), out),
                    (Some(x), None) => out.push(format!("{}: {x} in the run, unset now", key(k))),
                    (None, Some(y)) => out.push(format!("{}: unset in the run, {y} now", key(k))),
                    (None, None) => {}
                }
            }
        }
        (a, b) if a != b => {
            out.push(format!("{}: {a} in the run, {b} now", if prefix.is_empty() { "the file" } else { prefix }))
        }
        _ => {}
    }
}

/// Every setting a run needs checked before its directory exists: a mistake found later would
/// leave a directory behind that the corrected command refuses.
fn validate(exp: &Experiment, env: &EnvSpec, policy: &mut RunPolicy) -> Result<()> {
    if let Some(cap) = env.max_live_episodes {
        let rollout = exp.run.tasks_per_iteration.saturating_mul(exp.rollout.group_size as u64);
        let eval = if exp.run.eval_every > 0 {
            exp.run.eval_tasks.saturating_mul(u64::from(exp.run.eval_pass_k.max(1)))
        } else {
            0
        };
        let live = rollout.max(eval);
        if live > cap as u64 {
            return Err(Error::BadInput(format!(
                "{live} episodes would be live at once (run.tasks_per_iteration x rollout.group_size = {rollout}, \
                 run.eval_tasks x run.eval_pass_k = {eval}), more than the {cap} this environment can hold"
            )));
        }
    }
    if let Some(t) = &exp.train {
        t.validate().map_err(|e| Error::BadInput(format!("[train]: {e}")))?;
        trainable(policy, "[train]")?;
        if t.prefix.on() {
            if env.gold.is_none() {
                return Err(Error::BadInput(
                    "[train.prefix] (Prefix-RFT) continues gold answers, and this environment has no gold player"
                        .into(),
                ));
            }
            if t.prefix.samples >= exp.rollout.group_size {
                return Err(Error::BadInput(format!(
                    "[train.prefix] samples = {} guides the whole group of {}: leave at least one sample unguided",
                    t.prefix.samples, exp.rollout.group_size
                )));
            }
        }
    }
    if let Some(s) = &exp.sft {
        trainable(policy, "[sft]")?;
        if s.batch_size == 0 || s.steps == 0 {
            return Err(Error::BadInput("[sft] steps and batch_size must be at least 1".into()));
        }
        if !(s.lr.is_finite() && s.lr > 0.0) {
            return Err(Error::BadInput(format!("[sft] lr must be a finite number above 0, found {}", s.lr)));
        }
        if !(s.grad_clip.is_finite() && s.grad_clip >= 0.0 && s.weight_decay.is_finite() && s.weight_decay >= 0.0) {
            return Err(Error::BadInput("[sft] grad_clip and weight_decay must be finite and at least 0".into()));
        }
        if !(s.asft_alpha.is_finite() && s.asft_alpha >= 0.0) {
            return Err(Error::BadInput(format!(
                "[sft] asft_alpha must be finite and at least 0, found {}",
                s.asft_alpha
            )));
        }
        if s.data == "gold" && env.gold.is_none() {
            return Err(Error::BadInput(
                "[sft] data = \"gold\" but this environment has no gold player; give a JSONL file".into(),
            ));
        }
        if s.data != "gold" && !Path::new(&s.data).is_file() {
            return Err(Error::BadInput(format!("[sft] data: no file {}", s.data)));
        }
    }
    if let Some(p) = &exp.preference {
        trainable(policy, "[preference]")?;
        if p.batch_size == 0 || p.steps == 0 {
            return Err(Error::BadInput("[preference] steps and batch_size must be at least 1".into()));
        }
        if !(p.lr.is_finite() && p.lr > 0.0 && p.beta.is_finite() && p.beta > 0.0 && p.orpo_lambda >= 0.0) {
            return Err(Error::BadInput("[preference] lr and beta must be above 0, orpo_lambda at least 0".into()));
        }
        if !Path::new(&p.data).is_file() {
            return Err(Error::BadInput(format!("[preference] data: no file {:?}", p.data)));
        }
        preference::read_pairs(Path::new(&p.data)).map_err(|e| Error::BadInput(e.to_string()))?;
    }
    Ok(())
}

/// The run itself, on its open store.
fn run_stored(
    mut store: RunStore,
    exp: &Experiment,
    dir: &Path,
    resume: bool,
    parts: Parts,
    progress: &mut dyn Progress,
) -> Result<Summary> {
    let Parts { env, rubric, mut policy } = parts;
    let checkpoint = if resume { store.latest_checkpoint()? } else { None };
    let start = match &checkpoint {
        Some((it, path)) => {
            policy
                .as_mut()
                .load(&path.join("policy"))
                .with_context(|| format!("loading checkpoint {}", path.display()))?;
            it + 1
        }
        None => 0,
    };
    store.discard_from(start)?;
    // Say what an interruption costs, and what a resume does.
    let every = exp.run.checkpoint_every.max(1);
    match (&checkpoint, resume) {
        (Some((it, path)), _) => tracing::info!(
            "resuming from {} (after iteration {}): iterations {}..{} run now{}",
            path.display(),
            it + 1,
            start + 1,
            exp.run.iterations,
            if exp.sft.is_some() { "; the [sft] warm start is not redone" } else { "" }
        ),
        (None, true) => tracing::info!(
            "{} has no checkpoint yet: the run starts over from iteration 1{}",
            dir.display(),
            if exp.sft.is_some() { ", warm start included" } else { "" }
        ),
        (None, false) => tracing::info!(
            "a checkpoint is written every {every} iteration(s): interrupted (Ctrl-C), the run loses the \
             iterations since the last one, and `rlvr run ... --resume` continues from it"
        ),
    }

    let runner = Runner::new(exp.run.workers);
    let mut first_metrics = BTreeMap::new();
    if start == 0
        && let Some(sft_config) = &exp.sft
    {
        first_metrics = warm_start(&runner, &mut policy, &env, &rubric, exp, sft_config, progress)?;
    }
    if start == 0
        && let Some(config) = &exp.preference
    {
        let pairs = preference::read_pairs(Path::new(&config.data)).map_err(|e| Error::BadInput(e.to_string()))?;
        let lm = trainable(&mut policy, "[preference]")?;
        let r = preference::train_offline(lm, &pairs, config, seed::derive(exp.run.seed, &[0x9a1f]))?;
        first_metrics.insert("preference/loss_first".into(), r.first_loss);
        first_metrics.insert("preference/loss_last".into(), r.last_loss);
        first_metrics.insert("preference/accuracy_last".into(), r.last_accuracy);
        first_metrics.insert("time/preference_s".into(), r.seconds);
        if exp.run.eval_every > 0 {
            let (eval, _) = evaluate(&runner, policy.as_mut(), &env, &rubric, exp)?;
            first_metrics.insert("preference/eval_accuracy".into(), eval["eval/accuracy"]);
        }
    }
    // A run that trains from the checkpoint as it is (no warm start) measures it first, so the
    // run itself says what training added: `start/eval_accuracy`, `start/eval_sampled_accuracy`.
    if start == 0 && exp.sft.is_none() && exp.preference.is_none() && exp.train.is_some() && exp.run.eval_every > 0 {
        let (eval, _) = evaluate(&runner, policy.as_mut(), &env, &rubric, exp)?;
        for (k, v) in eval {
            if let Some(name) = k.strip_prefix("eval/") {
                first_metrics.insert(format!("start/eval_{name}"), v);
            }
        }
    }
    let mut trainer = match &exp.train {
        Some(config) => {
            let lm = trainable(&mut policy, "[train]")?;
            let per_episode = exp.rollout.max_new_tokens * exp.rollout.max_turns.max(1) as usize;
            let mut t = Trainer::new(config.clone(), lm, per_episode, exp.rollout.max_new_tokens)
                .map_err(|e| Error::BadInput(e.to_string()))?;
            if let Some((_, path)) = &checkpoint {
                t.load(&path.join("trainer")).with_context(|| format!("loading {}", path.display()))?;
            }
            Some(t)
        }
        None => None,
    };

    let mut tasks = TaskStream::new(env.tasks.clone(), Split::Train, exp.run.seed);
    let total = exp.run.iterations;
    progress.start(start, total);
    let mut last_metrics = BTreeMap::new();
    for it in start..total {
        let b = exp.run.tasks_per_iteration;
        let mut draw = |range: std::ops::Range<u64>| {
            range
                .map(|k| tasks.task_at(k))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("drawing tasks for iteration {it}: {e}"))
        };
        let it_seed = seed::derive(exp.run.seed, &[it]);
        let sampling = Sampling { seed: it_seed, greedy: false };
        // Prefix-RFT: the first samples of each group continue a prefix of the gold answer.
        let prefix = trainer.as_ref().map(|t| t.config().prefix.clone()).filter(|p| p.on());
        let share = prefix.as_ref().map_or(0.0, |p| p.share(it, total));
        let guide = match (&prefix, &env.gold) {
            (Some(p), Some(gold)) => Some(prefix_guide(gold.clone(), p.samples, share)),
            _ => None,
        };
        let mut rollout = runner
            .rollout_guided(
                policy.as_mut(),
                &env,
                &rubric,
                draw(it * b..(it + 1) * b)?,
                &exp.rollout,
                sampling,
                guide.as_deref(),
            )
            .with_context(|| format!("iteration {it}"))?;
        let mut metrics = rollout_metrics(&rollout, &rubric);
        if prefix.is_some() {
            metrics.insert("train/prefix_share".into(), share);
        }
        let mut samples = sample_rows(&rollout, Split::Train, exp.run.store_groups);
        if let Some(t) = &mut trainer {
            let config = t.config().clone();
            // DAPO's dynamic sampling, when on, refills from tasks no iteration draws (a stream
            // of its own per iteration and round).
            let (groups, selection) =
                select_groups(&config, std::mem::take(&mut rollout.groups), b as usize, |round| {
                    let base = (1u64 << 48) + (it * u64::from(config.max_resample) + u64::from(round)) * b;
                    let extra = runner.rollout_guided(
                        policy.as_mut(),
                        &env,
                        &rubric,
                        draw(base..base + b)?,
                        &exp.rollout,
                        Sampling { seed: seed::derive(it_seed, &[u64::from(round)]), greedy: false },
                        guide.as_deref(),
                    )?;
                    metrics.insert("time/generate_s".into(), metrics["time/generate_s"] + extra.stats.generate_s);
                    anyhow::Ok(extra.groups)
                })?;
            metrics.extend(selection);
            let lm = trainable(&mut policy, "[train]")?;
            let started = Instant::now();
            let update = t.update(lm, &groups, it).with_context(|| format!("update of iteration {it}"))?;
            metrics.insert("time/update_s".into(), started.elapsed().as_secs_f64());
            metrics.extend(update);
        }
        if it == start {
            metrics.extend(std::mem::take(&mut first_metrics));
        }

        let last = it + 1 == total;
        if exp.run.eval_every > 0 && ((it + 1) % exp.run.eval_every == 0 || last) {
            let (eval, rows) = evaluate(&runner, policy.as_mut(), &env, &rubric, exp)?;
            metrics.extend(eval);
            samples.extend(rows);
        }
        store.commit(&IterationRecord { iteration: it, metrics: &metrics, samples: &samples })?;
        if (it + 1) % exp.run.checkpoint_every.max(1) == 0 || last {
            store.write_checkpoint(it, |d| {
                let p = d.join("policy");
                std::fs::create_dir_all(&p)?;
                policy.as_ref().save(&p).map_err(|e| anyhow::anyhow!(e))?;
                if let Some(t) = &trainer {
                    let p = d.join("trainer");
                    std::fs::create_dir_all(&p)?;
                    t.save(&p)?;
                }
                Ok(())
            })?;
        }
        progress.iteration(it, &metrics);
        last_metrics = metrics;
    }
    Ok(Summary { dir: dir.to_path_buf(), iterations_run: total.saturating_sub(start), last_metrics })
}

/// Prefix-RFT's guide: samples below `samples` in each group start with the first `share` of
/// the gold player's answer to the episode's opening ([`prefix::cut`]).
fn prefix_guide(gold: GoldPlayer, samples: u32, share: f64) -> Box<Guide<'static>> {
    Box::new(move |task: &Task, prompt: &[Message], sample: u32| {
        if sample >= samples {
            return Ok(None);
        }
        let answer = gold(task, prompt).map_err(|e| format!("gold player: {e}"))?;
        Ok(Some(prefix::cut(&answer, share).to_string()))
    })
}

/// The policy as a trainable language model, or a clear error naming the section that needs it.
fn trainable<'a>(policy: &'a mut RunPolicy, section: &str) -> Result<&'a mut LmPolicy> {
    policy.trainable().ok_or_else(|| {
        Error::BadInput(format!("{section} needs a trainable policy (lm/llama-v0); this one cannot be updated"))
    })
}

/// The SFT warm start: demonstrations from the environment's gold player (on training tasks no
/// RL iteration draws) or a JSONL file, then training; evaluations before and after when the
/// run evaluates. Returns the `sft/*` metrics for the first iteration's record.
fn warm_start(
    runner: &Runner,
    policy: &mut RunPolicy,
    env: &EnvSpec,
    rubric: &Arc<Rubric>,
    exp: &Experiment,
    config: &SftConfig,
    progress: &mut dyn Progress,
) -> Result<BTreeMap<String, f64>> {
    let mut m = BTreeMap::new();
    if exp.run.eval_every > 0 {
        let (eval, _) = evaluate(runner, policy.as_mut(), env, rubric, exp)?;
        m.insert("sft/eval_accuracy_before".into(), eval["eval/accuracy"]);
    }
    let pairs = if config.data == "gold" {
        let gold = env.gold.as_ref().ok_or_else(|| {
            Error::BadInput("[sft] data = \"gold\" but this environment has no gold player; give a JSONL file".into())
        })?;
        let n = if config.tasks > 0 { config.tasks } else { config.steps * config.batch_size as u64 };
        let mut tasks = TaskStream::new(env.tasks.clone(), Split::Train, seed::derive(exp.run.seed, &[0x5f7f]));
        let mut pairs = Vec::with_capacity(n as usize);
        for k in 0..n {
            // Far from the indices RL iterations draw, so SFT and RL see different tasks.
            let (_, task) =
                tasks.task_at((1u64 << 56) + k).map_err(|e| anyhow::anyhow!("drawing SFT task {k}: {e}"))?;
            let opening = gold::open(env, gold, &task, k).map_err(|e| anyhow::anyhow!("SFT task {k}: {e}"))?;
            pairs.push((opening.prompt, opening.answer));
        }
        pairs
    } else {
        sft::read_jsonl(Path::new(&config.data)).map_err(|e| Error::BadInput(e.to_string()))?
    };
    let lm = trainable(policy, "[sft]")?;
    let demos = pairs
        .iter()
        .map(|(p, a)| sft::demo(lm, p, a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::BadInput(e.to_string()))?;
    let report = sft::train(lm, &demos, config, seed::derive(exp.run.seed, &[0x5f7f, 1]), |step, loss| {
        progress.sft_step(step, config.steps, loss)
    })?;
    m.insert("sft/loss_first".into(), report.first_loss);
    m.insert("sft/loss_last".into(), report.last_loss);
    m.insert("sft/steps".into(), report.steps as f64);
    m.insert("sft/tokens_per_s".into(), report.tokens as f64 / report.seconds.max(1e-9));
    m.insert("time/sft_s".into(), report.seconds);
    if exp.run.eval_every > 0 {
        let (eval, _) = evaluate(runner, policy.as_mut(), env, rubric, exp)?;
        // Every evaluation metric, as it stands after the warm start (`sft/eval_accuracy`,
        // `sft/eval_sampled_accuracy`, `sft/eval_pass@k`).
        for (k, v) in eval {
            if let Some(name) = k.strip_prefix("eval/") {
                m.insert(format!("sft/eval_{name}"), v);
            }
        }
    }
    Ok(m)
}

/// Greedy episodes on the first `eval_tasks` held-out tasks; the same tasks and seeds every
/// time, so evaluations compare like with like.
fn evaluate(
    runner: &Runner,
    policy: &mut dyn Policy,
    env: &EnvSpec,
    rubric: &Arc<Rubric>,
    exp: &Experiment,
) -> Result<(BTreeMap<String, f64>, Vec<SampleRow>)> {
    let n = env.tasks.len(Split::Test).unwrap_or(exp.run.eval_tasks).min(exp.run.eval_tasks);
    let (m, rows, _) = evaluate_split(runner, policy, env, rubric, exp, Split::Test, n, exp.run.eval_pass_k)?;
    Ok((m, rows))
}

/// One greedy episode on each of the first `n` tasks of `split`, and with `k > 1` also `k`
/// sampled episodes of each (pass@k, sampled accuracy); returns the metrics, the greedy rows
/// and the greedy rollout.
#[allow(clippy::too_many_arguments)]
fn evaluate_split(
    runner: &Runner,
    policy: &mut dyn Policy,
    env: &EnvSpec,
    rubric: &Arc<Rubric>,
    exp: &Experiment,
    split: Split,
    n: u64,
    k: u32,
) -> Result<(BTreeMap<String, f64>, Vec<SampleRow>, Rollout)> {
    let tasks = (0..n)
        .map(|i| env.tasks.task(split, i).map(|t| (i, t)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("drawing evaluation tasks: {e}"))?;
    let config = RolloutConfig { group_size: 1, ..exp.rollout.clone() };
    let rollout = runner.rollout(
        policy,
        env,
        rubric,
        tasks,
        &config,
        Sampling { seed: seed::derive(exp.run.seed, &[stream::EVAL]), greedy: true },
    )?;
    let max = rubric.max_total();
    let rewards: Vec<Option<f64>> = rollout.groups.iter().flat_map(|g| g.samples.iter().map(|s| s.reward())).collect();
    let scored: Vec<f64> = rewards.iter().flatten().copied().collect();
    let mut m = BTreeMap::new();
    m.insert("eval/reward_mean".into(), mean(&scored));
    // Failed and unscorable episodes count as not solved.
    let solved = scored.iter().filter(|&&r| r >= max - 1e-9).count();
    m.insert("eval/accuracy".into(), solved as f64 / rewards.len().max(1) as f64);
    m.insert("eval/failed".into(), rollout.stats.failed as f64);
    let full = |s: &rlvr_engine::Sample| s.reward().is_some_and(|r| r >= max - 1e-9);
    // Each held-out task's group under `eval_by`, by task index.
    let groups: BTreeMap<u64, String> = match &exp.run.eval_by {
        Some(path) => {
            rollout.groups.iter().map(|g| Ok((g.task_index, eval_group(&g.task, path)?))).collect::<Result<_>>()?
        }
        None => BTreeMap::new(),
    };
    if !groups.is_empty() {
        let solved =
            rollout.groups.iter().flat_map(|g| g.samples.iter().map(|s| (groups[&g.task_index].as_str(), full(s))));
        for (group, (accuracy, n)) in accuracy_by_group(solved) {
            m.insert(format!("eval/accuracy/{group}"), accuracy);
            m.insert(format!("eval/tasks/{group}"), n as f64);
        }
    }
    let rows = sample_rows(&rollout, split, None);
    if k > 1 {
        // pass@k: k sampled episodes per task at the policy's temperature; a task counts when
        // any of them earns the full reward.
        let tasks = rollout.groups.iter().map(|g| (g.task_index, (*g.task).clone())).collect();
        let config = RolloutConfig { group_size: k, ..exp.rollout.clone() };
        let sampling = Sampling { seed: seed::derive(exp.run.seed, &[stream::EVAL, 1]), greedy: false };
        let sampled = runner.rollout(policy, env, rubric, tasks, &config, sampling)?;
        let solved = sampled.groups.iter().filter(|g| g.samples.iter().any(full)).count();
        m.insert(format!("eval/pass@{k}"), solved as f64 / sampled.groups.len().max(1) as f64);
        // The same samples one at a time: the accuracy of the policy as it samples (pass@1 at
        // its temperature, averaged over k draws), which is what RL at that temperature
        // optimises; greedy accuracy moves only where the most likely answer changes.
        let samples: Vec<_> = sampled.groups.iter().flat_map(|g| &g.samples).collect();
        let right = samples.iter().filter(|s| full(s)).count();
        m.insert("eval/sampled_accuracy".into(), right as f64 / samples.len().max(1) as f64);
        m.insert("eval/sampled_failed".into(), sampled.stats.failed as f64);
        if !groups.is_empty() {
            let solved =
                sampled.groups.iter().flat_map(|g| g.samples.iter().map(|s| (groups[&g.task_index].as_str(), full(s))));
            for (group, (accuracy, _)) in accuracy_by_group(solved) {
                m.insert(format!("eval/sampled_accuracy/{group}"), accuracy);
            }
        }
    }
    Ok((m, rows, rollout))
}

/// Refuses an `eval_by` path with an empty key (`""`, `"query."`), before anything is written.
fn check_eval_by(exp: &Experiment) -> Result<()> {
    match &exp.run.eval_by {
        Some(path) if path.split('.').any(str::is_empty) => Err(Error::BadInput(format!(
            "run.eval_by = {path:?}: give a field of the task, or a dot-separated path to one, such as \"query.level\""
        ))),
        _ => Ok(()),
    }
}

/// The value at `path` (dot-separated keys) in `task`'s data, as the name of its evaluation group.
fn eval_group(task: &Task, path: &str) -> Result<String> {
    let mut v = &task.data;
    for key in path.split('.') {
        v = v
            .get(key)
            .ok_or_else(|| anyhow::anyhow!("run.eval_by = {path:?}: held-out task {} has no field {key:?}", task.id))?;
    }
    match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(_) | serde_json::Value::Bool(_) => Ok(v.to_string()),
        other => Err(anyhow::anyhow!(
            "run.eval_by = {path:?}: held-out task {} has {other} there, not a string, number or boolean",
            task.id
        )
        .into()),
    }
}

/// Accuracy per evaluation group: for each group, the share of `samples` (pairs of group and
/// solved) that were solved, and how many there were.
fn accuracy_by_group<'a>(samples: impl IntoIterator<Item = (&'a str, bool)>) -> BTreeMap<&'a str, (f64, usize)> {
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (group, solved) in samples {
        let c = counts.entry(group).or_default();
        c.0 += usize::from(solved);
        c.1 += 1;
    }
    counts.into_iter().map(|(g, (right, n))| (g, (right as f64 / n as f64, n))).collect()
}

/// What `rlvr eval` is asked for.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// The split to evaluate on.
    pub split: Split,
    /// Tasks to evaluate (the first of the split); `None`: every task of a split whose size is
    /// known, else `run.eval_tasks`.
    pub n: Option<u64>,
    /// Sampled episodes per task besides the greedy one (pass@k); 0 or 1: greedy only.
    pub pass_k: u32,
}

/// What `rlvr eval` found.
#[derive(Clone, Debug)]
pub struct EvalSummary {
    /// Where `run.db` was written.
    pub dir: PathBuf,
    /// Tasks evaluated.
    pub tasks: u64,
    /// The metrics, as stored at iteration 0.
    pub metrics: BTreeMap<String, f64>,
}

/// Evaluates the experiment's policy without training: every task of `options.split` (or the
/// first `n`), one greedy episode each, and `pass_k` sampled ones when asked. Writes `run.db` in
/// `dir` like a run with one iteration (so `rlvr report` draws it); `[train]` and `[sft]` are
/// ignored. Works with every policy: a burn checkpoint, the scripted player, a served model.
pub fn eval(registry: &Registry, exp: &Experiment, dir: &Path, options: &EvalOptions) -> Result<EvalSummary> {
    if exp.rollout.max_new_tokens == 0 {
        return Err(Error::BadInput("rollout.max_new_tokens must be at least 1, found 0".into()));
    }
    check_eval_by(exp)?;
    let Parts { env, rubric, mut policy } = build(registry, exp)?;
    let n = match options.n {
        Some(n) => n,
        None => env.tasks.len(options.split).unwrap_or(exp.run.eval_tasks),
    };
    if n == 0 {
        return Err(Error::BadInput(format!("the {} split has no tasks to evaluate", split_name(options.split))));
    }
    if let Some(len) = env.tasks.len(options.split)
        && n > len
    {
        return Err(Error::BadInput(format!("--n {n}: the {} split has only {len} tasks", split_name(options.split))));
    }
    let k = options.pass_k;
    if let Some(cap) = env.max_live_episodes
        && n.saturating_mul(u64::from(k.max(1))) > cap as u64
    {
        return Err(Error::BadInput(format!(
            "{n} tasks x {} samples would be live at once, more than the {cap} this environment can hold; \
             evaluate fewer tasks (--n)",
            k.max(1)
        )));
    }
    if dir.join("run.db").exists() {
        return Err(Error::BadInput(format!(
            "{} already holds a run.db; give another --out or remove it",
            dir.display()
        )));
    }
    let mut store = RunStore::create(dir, &exp.to_toml())?;
    let runner = Runner::new(exp.run.workers);
    let started = Instant::now();
    let result = evaluate_split(&runner, policy.as_mut(), &env, &rubric, exp, options.split, n, k);
    let (mut metrics, rows, greedy) = match result {
        Ok(r) => r,
        Err(e) => {
            // Nothing worth keeping: the directory goes, so the same command can run again.
            drop(store);
            let _ = std::fs::remove_dir_all(dir);
            return Err(e);
        }
    };
    for (name, v) in rollout_metrics(&greedy, &rubric) {
        if name.starts_with("reward/") || name.starts_with("rollout/") {
            metrics.insert(format!("eval/{name}"), v);
        }
    }
    metrics.insert("eval/tasks".into(), n as f64);
    metrics.insert("time/eval_s".into(), started.elapsed().as_secs_f64());
    store.commit(&IterationRecord { iteration: 0, metrics: &metrics, samples: &rows })?;
    Ok(EvalSummary { dir: dir.to_path_buf(), tasks: n, metrics })
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() { f64::NAN } else { xs.iter().sum::<f64>() / xs.len() as f64 }
}

/// The metrics of one batch of rollouts, with stable names.
pub fn rollout_metrics(rollout: &Rollout, rubric: &Rubric) -> BTreeMap<String, f64> {
    let s = &rollout.stats;
    let mut m = BTreeMap::new();
    let samples: Vec<_> = rollout.groups.iter().flat_map(|g| &g.samples).collect();
    let rewards: Vec<f64> = samples.iter().filter_map(|s| s.reward()).collect();
    let mu = mean(&rewards);
    m.insert("reward/mean".into(), mu);
    let var = if rewards.is_empty() {
        f64::NAN
    } else {
        rewards.iter().map(|r| (r - mu).powi(2)).sum::<f64>() / rewards.len() as f64
    };
    m.insert("reward/std".into(), var.sqrt());
    for term in rubric.terms() {
        let vals: Vec<f64> = samples
            .iter()
            .filter_map(|s| match &s.outcome {
                Outcome::Scored(sc) => sc.get(&term.name),
                Outcome::Failed { .. } => None,
            })
            .collect();
        m.insert(format!("reward/{}", term.name), mean(&vals));
    }
    // Groups whose rewards are all equal give GRPO no signal: worth watching.
    let flat = rollout
        .groups
        .iter()
        .filter(|g| g.samples.iter().filter(|s| s.reward().is_some()).count() > 1 && !has_signal(g))
        .count();
    m.insert("rollout/flat_groups_frac".into(), flat as f64 / rollout.groups.len().max(1) as f64);
    m.insert("rollout/episodes".into(), s.episodes as f64);
    m.insert("rollout/failed".into(), s.failed as f64);
    m.insert("rollout/verifier_errors".into(), s.verifier_errors as f64);
    m.insert("rollout/truncated".into(), s.truncated as f64);
    m.insert("rollout/policy_tokens".into(), s.policy_tokens as f64);
    if s.guided > 0 {
        // Prefix-RFT: how many samples were guided, and how the policy did on its own.
        m.insert("rollout/guided".into(), s.guided as f64);
        m.insert("rollout/forced_tokens".into(), s.forced_tokens as f64);
        let alone: Vec<f64> =
            samples.iter().filter(|s| s.trajectory.forced_tokens() == 0).filter_map(|s| s.reward()).collect();
        m.insert("reward/mean_unguided".into(), mean(&alone));
    }
    m.insert(
        "rollout/turns_mean".into(),
        mean(&samples.iter().map(|s| s.trajectory.turns() as f64).collect::<Vec<_>>()),
    );
    m.insert("rollout/tokens_per_s".into(), s.policy_tokens as f64 / s.generate_s.max(1e-9));
    m.insert("time/rollout_s".into(), s.wall_s);
    m.insert("time/generate_s".into(), s.generate_s);
    m.insert("time/env_s".into(), s.env_s);
    m.insert("time/score_s".into(), s.score_s);
    m
}

/// Rows for the `samples` table.
fn sample_rows(rollout: &Rollout, split: Split, groups: Option<usize>) -> Vec<SampleRow> {
    rollout
        .groups
        .iter()
        .take(groups.unwrap_or(usize::MAX))
        .flat_map(|g| {
            g.samples.iter().map(move |s| SampleRow {
                split,
                task_index: g.task_index,
                task: g.task.clone(),
                sample: s.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXP: &str = r#"
[run]
name = "t"
iterations = 3
[env]
id = "arith/arith-v0"
[policy]
id = "scripted/gold-v0"
"#;

    #[test]
    fn defaults_and_overrides() {
        let e = Experiment::parse(EXP, "exp.toml", &[]).unwrap();
        assert_eq!((e.run.tasks_per_iteration, e.rollout.group_size, e.run.seed), (8, 4, 0));
        let e = Experiment::parse(
            EXP,
            "exp.toml",
            &["run.seed=9".into(), "env.config.ops=[\"-\"]".into(), "policy.config.wrong=no answer".into()],
        )
        .unwrap();
        assert_eq!(e.run.seed, 9);
        assert_eq!(e.env.config["ops"].as_array().unwrap()[0].as_str(), Some("-"));
        assert_eq!(e.policy.config["wrong"].as_str(), Some("no answer"));
        let back = Experiment::parse(&e.to_toml(), "config.toml", &[]).unwrap();
        assert_eq!(back, e, "the resolved config reads back as itself");
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let err = Experiment::parse(&EXP.replace("iterations = 3", "iteratons = 3"), "exp.toml", &[]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("exp.toml: "), "{msg}");
        assert!(msg.contains("line") && msg.contains("iteratons"), "{msg}");
        assert!(matches!(err, Error::BadInput(_)));
        let err = Experiment::parse(EXP, "exp.toml", &["run.seed".into()]).unwrap_err();
        assert_eq!(err.to_string(), "--set run.seed: expected key.path=value");
        // A --set that breaks the experiment is named, not a line of the re-serialised file.
        let sets = ["run.iterations=2".to_string(), "run.seed=\"abc\"".to_string()];
        let err = Experiment::parse(EXP, "exp.toml", &sets).unwrap_err().to_string();
        assert!(err.starts_with("--set run.seed=\"abc\": invalid type: string \"abc\""), "{err}");
        assert!(!err.contains("line"), "{err}");
    }
}
