//! `causal/query-v0`: probabilistic queries on random causal Bayesian networks, on the three
//! rungs of the causal ladder (associational, interventional, counterfactual), with exact
//! answers.
//!
//! After "Generalization of RLVR Using Causal Reasoning as a Testbed" (Lu et al., 2025): each
//! task shows a network (variables, parents, CPT rows rounded to two decimals) and asks for the
//! distribution of one variable, to be answered as `ANSWER [p0, p1, ...]`. Tasks vary along
//! two axes: the level, and the difficulty (the size of the query's relevant ancestral
//! subgraph, see [`query::Resolved::difficulty`]). References are exact: variable elimination
//! on the CPTs exactly as shown ([`infer`]). Graphs are assigned to a split by an
//! isomorphism-invariant hash, so train and test never share a graph shape; the test split and
//! exports are also deduplicated within themselves. Rewards: `causal/tvd`, `causal/tvd-dense`.

pub mod answer;
pub mod export;
pub mod generate;
pub mod infer;
pub mod network;
pub mod query;
pub mod reward;

use generate::{QueryShape, Rng, Shape};
use network::Network;
use query::{Level, Query};
use rlvr_engine::{
    Action, BoxError, Config, EnvError, EnvSpec, Environment, Message, Registry, Split, Step, Task, TaskSource,
    parse_config, seed,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

/// The id this environment is registered under.
pub const ID: &str = "causal/query-v0";

const SYSTEM: &str = "You are an expert in probability and causal inference. Reason step by step, then end \
with the answer line exactly in the requested format.";

const INTRO: &str = "Below is a causal Bayesian network over discrete variables. For each variable you are given \
its values, its parents (direct causes), and its conditional probability table: one row per assignment of its \
parents, giving the probability of each of its values in the order listed. Use these numbers exactly as shown.\n\n";

/// Settings of `[env.config]`; the defaults follow the paper's setup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CausalConfig {
    /// Variables per network. Default 10.
    pub variables: usize,
    /// Fewest root variables (drawn uniformly in `min_roots..=max_roots`). Default 1.
    pub min_roots: usize,
    /// Most root variables. Default 3.
    pub max_roots: usize,
    /// Fewest parents of a non-root variable, chosen among earlier ones. Default 1.
    pub min_parents: usize,
    /// Most parents of a non-root variable. Default 2.
    pub max_parents: usize,
    /// Fewest values per variable. Default 2.
    pub min_values: usize,
    /// Most values per variable, at most 10. Default 3.
    pub max_values: usize,
    /// Levels to draw from, uniformly. Default all three.
    pub levels: Vec<Level>,
    /// Levels of the training split only, when they differ from `levels` (which the test split
    /// keeps): train on one rung, evaluate on all three, as in the paper's generalisation
    /// experiment (with `run.eval_by = "query.level"`). Default: `levels`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_levels: Option<Vec<Level>>,
    /// Most extra observed variables per query (besides those a counterfactual always
    /// observes). Default 2.
    pub max_evidence: usize,
    /// Chance that a counterfactual also observes the target's factual value (which is what
    /// makes counterfactuals differ most from interventions). Default 0.5.
    pub observe_target: f64,
    /// Smallest difficulty (relevant ancestral subgraph size) to keep. Default 1.
    pub min_difficulty: usize,
    /// Largest difficulty to keep. Default: the number of variables.
    pub max_difficulty: Option<usize>,
    /// Tasks in the held-out split. Default 256.
    pub test_size: u64,
    /// Share of graph shapes (per mille of isomorphism classes, by hash) reserved for the test
    /// split. Default 100 (10%).
    pub test_per_mille: u64,
    /// Decimals of the gold answers that SFT imitates, rounded so they still sum to 1.
    /// Default: every digit, which makes the gold answer exact but asks a model to copy
    /// seventeen digits of which the verifier (TVD within 0.02) needs two or three.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gold_decimals: Option<u32>,
}

impl Default for CausalConfig {
    fn default() -> Self {
        Self {
            variables: 10,
            min_roots: 1,
            max_roots: 3,
            min_parents: 1,
            max_parents: 2,
            min_values: 2,
            max_values: 3,
            levels: Level::ALL.to_vec(),
            train_levels: None,
            max_evidence: 2,
            observe_target: 0.5,
            min_difficulty: 1,
            max_difficulty: None,
            test_size: 256,
            test_per_mille: 100,
            gold_decimals: None,
        }
    }
}

impl CausalConfig {
    /// Checks the settings; errors name the field.
    pub fn validate(&self) -> Result<(), BoxError> {
        let range = |name: &str, lo: usize, hi: usize, min: usize, max: usize| -> Result<(), BoxError> {
            if lo < min || lo > hi || hi > max {
                return Err(format!("{name}: need {min} <= min_{name} <= max_{name} <= {max}, got {lo}..={hi}").into());
            }
            Ok(())
        };
        if !(1..=64).contains(&self.variables) {
            return Err(format!("variables must lie in 1..=64, got {}", self.variables).into());
        }
        range("roots", self.min_roots, self.max_roots, 1, self.variables)?;
        range("parents", self.min_parents, self.max_parents, 0, 8)?;
        range("values", self.min_values, self.max_values, 2, 10)?;
        if self.levels.is_empty() {
            return Err("levels must name at least one level".into());
        }
        if self.train_levels.as_ref().is_some_and(Vec::is_empty) {
            return Err("train_levels must name at least one level (leave it out to train on `levels`)".into());
        }
        if !(0.0..=1.0).contains(&self.observe_target) {
            return Err(format!("observe_target must lie in [0, 1], got {}", self.observe_target).into());
        }
        if self.min_difficulty > self.max_difficulty() {
            return Err(format!(
                "min_difficulty {} exceeds max_difficulty {}",
                self.min_difficulty,
                self.max_difficulty()
            )
            .into());
        }
        if self.test_per_mille == 0 || self.test_per_mille >= 1000 {
            return Err("test_per_mille must lie in 1..=999".into());
        }
        if self.gold_decimals.is_some_and(|d| !(1..=9).contains(&d)) {
            return Err(format!("gold_decimals must lie in 1..=9, got {}", self.gold_decimals.unwrap_or(0)).into());
        }
        Ok(())
    }

    fn max_difficulty(&self) -> usize {
        self.max_difficulty.unwrap_or(self.variables)
    }

    fn shape(&self) -> Shape {
        Shape {
            variables: self.variables,
            roots: (self.min_roots, self.max_roots),
            parents: (self.min_parents, self.max_parents),
            values: (self.min_values, self.max_values),
        }
    }
}

/// One generated task with the facts summaries need.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    /// The task row.
    pub data: Value,
    /// The isomorphism-invariant hash of its graph.
    pub graph_hash: u64,
    /// Its level.
    pub level: Level,
    /// Its difficulty.
    pub difficulty: usize,
}

/// The seeded task generator. Task `i` of a split is a pure function of `(seed, split, i)`.
#[derive(Clone, Debug)]
pub struct Generator {
    config: CausalConfig,
    seed: u64,
}

/// Draws per task before giving up (a configuration whose shapes all fall in the other split,
/// or whose difficulty range no query reaches).
const ATTEMPTS: u64 = 10_000;
/// Queries drawn per network when looking for one in the difficulty range.
const QUERY_TRIES: usize = 32;

impl Generator {
    /// A generator for `config`, seeded by `seed`.
    pub fn new(config: CausalConfig, seed: u64) -> Result<Self, BoxError> {
        config.validate()?;
        Ok(Self { config, seed })
    }

    /// The settings.
    pub fn config(&self) -> &CausalConfig {
        &self.config
    }

    /// True when graphs of this hash belong to the test split. Independent of the seed, so that
    /// splits stay disjoint across runs and exports made with different seeds.
    pub fn is_test(&self, graph_hash: u64) -> bool {
        seed::derive(graph_hash, &[0x7e57]) % 1000 < self.config.test_per_mille
    }

    /// Task `index` of `split`, of `level` if given (else drawn from the configured levels).
    pub fn draw(&self, split: Split, index: u64, level: Option<Level>) -> Result<Generated, BoxError> {
        let c = &self.config;
        let shape = c.shape();
        let qshape = QueryShape { max_evidence: c.max_evidence, observe_target: c.observe_target };
        for attempt in 0..ATTEMPTS {
            let mut rng = Rng::new(seed::derive(self.seed, &[split.index(), index, attempt]));
            let parents = generate::structure(&mut rng, &shape);
            let graph_hash = generate::wl_hash(&parents);
            if self.is_test(graph_hash) != (split == Split::Test) {
                continue;
            }
            let net = generate::network(&mut rng, &parents, &shape);
            let model = net.compile()?;
            let levels = match (&c.train_levels, split) {
                (Some(train), Split::Train) => train,
                _ => &c.levels,
            };
            let level = level.unwrap_or_else(|| levels[rng.below(levels.len())]);
            for _ in 0..QUERY_TRIES {
                let q = generate::query(&mut rng, &model, level, &qshape);
                let difficulty = q.difficulty(&model);
                if q.level != level || difficulty < c.min_difficulty || difficulty > c.max_difficulty() {
                    continue;
                }
                let answer = infer::answer(&model, &q)?;
                let query = generate::named(&model, &q);
                let data = json!({
                    "network": net,
                    "query": query,
                    "difficulty": difficulty,
                    "prompt": prompt(&net, &query),
                    "answer": answer,
                    "graph_hash": format!("{graph_hash:016x}"),
                    "split": if split == Split::Train { "train" } else { "test" },
                });
                return Ok(Generated { data, graph_hash, level, difficulty });
            }
        }
        Err(format!(
            "could not draw a {split:?} task in {ATTEMPTS} tries: too few graph shapes fall in this split, or no query \
             reaches difficulty {}..={}",
            c.min_difficulty,
            c.max_difficulty()
        )
        .into())
    }
}

/// The user prompt of a task: the network, then the question and the answer format.
pub fn prompt(net: &Network, query: &Query) -> String {
    let values = net.variables.iter().find(|v| v.name == query.target).map(|v| v.values.clone()).unwrap_or_default();
    let mut out = String::with_capacity(4096);
    out.push_str(INTRO);
    out.push_str(&network::render(net));
    out.push('\n');
    out.push_str(&query::render_question(query, &values));
    out
}

/// The task source: train tasks on the fly; the test split drawn once, deduplicated by graph.
pub struct CausalTasks {
    generator: Generator,
    test: Vec<Task>,
}

impl CausalTasks {
    /// Builds the source (and its test split).
    pub fn new(config: CausalConfig, seed: u64) -> Result<Self, BoxError> {
        let generator = Generator::new(config, seed)?;
        let n = generator.config.test_size;
        let test = export::distinct(&generator, Split::Test, None, n)?
            .into_iter()
            .enumerate()
            .map(|(i, g)| Task::new(format!("test-{i}"), g.data))
            .collect();
        Ok(Self { generator, test })
    }
}

impl TaskSource for CausalTasks {
    fn len(&self, split: Split) -> Option<u64> {
        match split {
            Split::Train => None,
            Split::Test => Some(self.test.len() as u64),
        }
    }

    fn task(&self, split: Split, index: u64) -> Result<Task, BoxError> {
        match split {
            Split::Train => Ok(Task::new(format!("train-{index}"), self.generator.draw(split, index, None)?.data)),
            Split::Test => self
                .test
                .get(index as usize)
                .cloned()
                .ok_or_else(|| format!("the test split has {} tasks, asked for {index}", self.test.len()).into()),
        }
    }
}

/// The task's prompt: its `prompt` field, else rendered from its `network` and `query`
/// (tasks a user wrote need not carry one).
fn task_prompt(task: &Task) -> Result<String, String> {
    if let Some(p) = task.data.get("prompt") {
        return p.as_str().map(String::from).ok_or_else(|| format!("task {}: `prompt` must be a string", task.id));
    }
    let net = task.data.get("network").ok_or_else(|| format!("task {}: missing field `network`", task.id))?;
    let net = Network::from_json(net).map_err(|e| format!("task {}: {e}", task.id))?;
    let model = net.compile().map_err(|e| format!("task {}: {e}", task.id))?;
    let query: Query = serde_json::from_value(task.data.get("query").cloned().unwrap_or(Value::Null))
        .map_err(|e| format!("task {}: query: {e}", task.id))?;
    query.resolve(&model).map_err(|e| format!("task {}: {e}", task.id))?;
    Ok(prompt(&net, &query))
}

/// One episode: the prompt, then one answer.
#[derive(Default)]
pub struct Causal;

impl Environment for Causal {
    fn reset(&mut self, task: &Task, _seed: u64) -> Result<Vec<Message>, EnvError> {
        Ok(vec![Message::system(SYSTEM), Message::user(task_prompt(task).map_err(EnvError::InvalidTask)?)])
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        let parsed = answer::parse(&action.text);
        Ok(Step::terminated(json!({
            "answered": parsed.is_ok(),
            "values": parsed.as_ref().map(Vec::len).ok(),
        })))
    }
}

/// The gold answer of a task: its reference distribution on an answer line, with every digit,
/// or rounded to `decimals` (still summing to 1).
pub fn gold(task: &Task, decimals: Option<u32>) -> Result<String, BoxError> {
    let p = answer::reference(&task.data)?;
    Ok(match decimals {
        Some(d) => answer::format_rounded(&p, d),
        None => answer::format(&p),
    })
}

/// Builds the spec from `[env.config]`.
pub fn spec(config: &Config, seed: u64) -> Result<EnvSpec, BoxError> {
    let cfg: CausalConfig = parse_config(config)?;
    let decimals = cfg.gold_decimals;
    let tasks = Arc::new(CausalTasks::new(cfg, seed)?);
    Ok(EnvSpec::new(tasks, || Ok(Causal), "causal/tvd").with_gold(move |task, _| gold(task, decimals)))
}

/// Registers `causal/query-v0`.
pub fn register(registry: &mut Registry) {
    reward::register(registry);
    registry.env(
        ID,
        "distribution queries on random causal Bayesian networks: associational, interventional, counterfactual",
        spec,
    );
    registry.defaults(rlvr_engine::Kind::Env, ID, CausalConfig::default());
}

#[cfg(test)]
mod tests;
