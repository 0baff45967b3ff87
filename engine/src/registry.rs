//! The registry: plugins under versioned ids, built from TOML config.

use crate::env::{Environment, OrderEnforcing};
use crate::error::BoxError;
use crate::message::Message;
use crate::policy::Policy;
use crate::reward::Rubric;
use crate::task::{Task, TaskSource};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A plugin's configuration: the `config` table of its section in the experiment file.
pub type Config = toml::Table;

/// Makes a fresh environment for one episode.
pub type EnvFactory = Arc<dyn Fn() -> Result<Box<dyn Environment>, BoxError> + Send + Sync>;

/// Plays the gold answer: given the task and the conversation so far, the next assistant message.
/// Used by conformance checks (the gold answer must score 1.0) and to build SFT demonstrations.
pub type GoldPlayer = Arc<dyn Fn(&Task, &[Message]) -> Result<String, BoxError> + Send + Sync>;

/// Everything an experiment needs from an environment plugin.
#[derive(Clone)]
pub struct EnvSpec {
    /// Where its tasks come from.
    pub tasks: Arc<dyn TaskSource>,
    /// Makes one environment per episode.
    pub make: EnvFactory,
    /// The id of the reward that scores it unless the experiment names another.
    pub default_reward: String,
    /// That reward's config.
    pub default_reward_config: Config,
    /// The gold player, if the environment knows its tasks' answers.
    pub gold: Option<GoldPlayer>,
    /// Most episodes that may be live at once, when a resource bounds them (an interpreter
    /// pool): a run that would hold more is refused before it starts rather than failing
    /// mid-iteration. `None`: unbounded.
    pub max_live_episodes: Option<usize>,
}

impl EnvSpec {
    /// A spec whose environments are made by `make`, each wrapped in [`OrderEnforcing`].
    pub fn new<E, F>(tasks: Arc<dyn TaskSource>, make: F, default_reward: impl Into<String>) -> Self
    where
        E: Environment + 'static,
        F: Fn() -> Result<E, BoxError> + Send + Sync + 'static,
    {
        let make: EnvFactory = Arc::new(move || Ok(Box::new(OrderEnforcing::new(make()?)) as Box<dyn Environment>));
        Self {
            tasks,
            make,
            default_reward: default_reward.into(),
            default_reward_config: Config::new(),
            gold: None,
            max_live_episodes: None,
        }
    }

    /// Bounds the episodes that may be live at once (see [`EnvSpec::max_live_episodes`]).
    pub fn with_max_live_episodes(mut self, n: usize) -> Self {
        self.max_live_episodes = Some(n);
        self
    }

    /// Sets the gold player.
    pub fn with_gold(
        mut self,
        gold: impl Fn(&Task, &[Message]) -> Result<String, BoxError> + Send + Sync + 'static,
    ) -> Self {
        self.gold = Some(Arc::new(gold));
        self
    }

    /// Sets the config of the default reward.
    pub fn with_reward_config(mut self, config: Config) -> Self {
        self.default_reward_config = config;
        self
    }
}

type EnvBuilder = Box<dyn Fn(&Config, u64) -> Result<EnvSpec, BoxError> + Send + Sync>;
type RewardBuilder = Box<dyn Fn(&Config) -> Result<Rubric, BoxError> + Send + Sync>;
type PolicyBuilder = Box<dyn Fn(&Config, &PolicyContext) -> Result<Box<dyn Policy>, BoxError> + Send + Sync>;

/// What a policy builder may know of the run besides its own config.
#[derive(Clone)]
pub struct PolicyContext {
    /// The run seed.
    pub seed: u64,
    /// The environment's gold player, for scripted policies that play it.
    pub gold: Option<GoldPlayer>,
}

struct Entry<B> {
    description: String,
    build: B,
}

/// The kinds of plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// An environment (with its task source and default reward).
    Env,
    /// A reward: a rubric of one or more terms.
    Reward,
    /// A policy.
    Policy,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Env => "environment",
            Kind::Reward => "reward",
            Kind::Policy => "policy",
        })
    }
}

/// Plugins by id. Ids are `family/name` with an optional `-vN` version (`sql/text2sql-v0`);
/// bump the version when the meaning of an environment or reward changes, as Gymnasium does.
///
/// ## Design
/// Each entry is a builder from TOML config, not an instance, so one registry serves every
/// experiment and `rlvr envs` can list plugins without building any. The built-in plugins are
/// registered through exactly this API, the same one a user's crate calls.
#[derive(Default)]
pub struct Registry {
    envs: BTreeMap<String, Entry<EnvBuilder>>,
    rewards: BTreeMap<String, Entry<RewardBuilder>>,
    policies: BTreeMap<String, Entry<PolicyBuilder>>,
    /// Old ids kept working after a rename: (kind, alias) -> (current id, description).
    aliases: BTreeMap<(Kind, String), (String, String)>,
    /// Default configs, for plugins that record theirs: (kind, id) -> config.
    defaults: BTreeMap<(Kind, String), Config>,
}

/// A plugin could not be found or built.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No plugin has that id.
    #[error("unknown {kind} `{id}`; known: {}", known.join(", "))]
    Unknown {
        /// What was looked for.
        kind: Kind,
        /// The id asked for.
        id: String,
        /// The ids of that kind that exist.
        known: Vec<String>,
    },
    /// The plugin rejected its config or failed to build.
    #[error("{kind} `{id}`: {source}")]
    Build {
        /// What was built.
        kind: Kind,
        /// Its id.
        id: String,
        /// Why it failed.
        source: BoxError,
    },
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an environment. `build` gets the plugin's config and the run seed.
    ///
    /// # Panics
    /// If `id` is not of the form `family/name[-vN]` (a bug in the calling code, not input).
    pub fn env(
        &mut self,
        id: &str,
        description: &str,
        build: impl Fn(&Config, u64) -> Result<EnvSpec, BoxError> + Send + Sync + 'static,
    ) -> &mut Self {
        check_id(id);
        self.envs.insert(id.into(), Entry { description: description.into(), build: Box::new(build) });
        self
    }

    /// Registers a reward: a builder of a rubric from its config.
    ///
    /// # Panics
    /// If `id` is malformed, as for [`Registry::env`].
    pub fn reward(
        &mut self,
        id: &str,
        description: &str,
        build: impl Fn(&Config) -> Result<Rubric, BoxError> + Send + Sync + 'static,
    ) -> &mut Self {
        check_id(id);
        self.rewards.insert(id.into(), Entry { description: description.into(), build: Box::new(build) });
        self
    }

    /// Registers a policy. `build` gets the plugin's config and the run's context.
    ///
    /// # Panics
    /// If `id` is malformed, as for [`Registry::env`].
    pub fn policy(
        &mut self,
        id: &str,
        description: &str,
        build: impl Fn(&Config, &PolicyContext) -> Result<Box<dyn Policy>, BoxError> + Send + Sync + 'static,
    ) -> &mut Self {
        check_id(id);
        self.policies.insert(id.into(), Entry { description: description.into(), build: Box::new(build) });
        self
    }

    /// Makes `alias` another name of the plugin of `kind` registered as `id`, so a renamed
    /// plugin keeps its old id working (ids may gain aliases; none may disappear). `rlvr envs`
    /// lists the alias with the id it stands for.
    pub fn alias(&mut self, kind: Kind, alias: &str, id: &str) -> &mut Self {
        check_id(alias);
        self.aliases.insert((kind, alias.into()), (id.into(), format!("alias of {id}")));
        self
    }

    /// Records the default config of plugin `id` (its `[env.config]`, `[reward.config]` or
    /// `[policy.config]` with every key at its default), so `rlvr envs ID` can show the keys a
    /// plugin takes without a docs page. A config the serializer refuses is not recorded.
    pub fn defaults(&mut self, kind: Kind, id: &str, config: impl serde::Serialize) -> &mut Self {
        if let Ok(toml::Value::Table(t)) = toml::Value::try_from(config) {
            self.defaults.insert((kind, id.into()), t);
        }
        self
    }

    /// The default config recorded for `id` (or the id an alias stands for), if any.
    pub fn config_defaults(&self, kind: Kind, id: &str) -> Option<&Config> {
        self.defaults.get(&(kind, self.resolve(kind, id).to_string()))
    }

    /// The id that `id` stands for: itself, or the current id when it is an alias.
    fn resolve<'a>(&'a self, kind: Kind, id: &'a str) -> &'a str {
        self.aliases.get(&(kind, id.to_string())).map_or(id, |(current, _)| current.as_str())
    }

    /// Builds the environment `id` (or an alias of it).
    pub fn make_env(&self, id: &str, config: &Config, seed: u64) -> Result<EnvSpec, RegistryError> {
        let e = lookup(&self.envs, Kind::Env, self.resolve(Kind::Env, id))?;
        (e.build)(config, seed).map_err(|source| RegistryError::Build { kind: Kind::Env, id: id.into(), source })
    }

    /// Builds the reward `id`.
    pub fn make_reward(&self, id: &str, config: &Config) -> Result<Rubric, RegistryError> {
        let e = lookup(&self.rewards, Kind::Reward, self.resolve(Kind::Reward, id))?;
        (e.build)(config).map_err(|source| RegistryError::Build { kind: Kind::Reward, id: id.into(), source })
    }

    /// Builds the policy `id`.
    pub fn make_policy(
        &self,
        id: &str,
        config: &Config,
        ctx: &PolicyContext,
    ) -> Result<Box<dyn Policy>, RegistryError> {
        let e = lookup(&self.policies, Kind::Policy, self.resolve(Kind::Policy, id))?;
        (e.build)(config, ctx).map_err(|source| RegistryError::Build { kind: Kind::Policy, id: id.into(), source })
    }

    /// Every plugin: kind, id and one-line description, sorted by kind then id.
    pub fn list(&self) -> Vec<(Kind, &str, &str)> {
        let mut out = Vec::new();
        out.extend(self.envs.iter().map(|(k, e)| (Kind::Env, k.as_str(), e.description.as_str())));
        out.extend(self.rewards.iter().map(|(k, e)| (Kind::Reward, k.as_str(), e.description.as_str())));
        out.extend(self.policies.iter().map(|(k, e)| (Kind::Policy, k.as_str(), e.description.as_str())));
        out.extend(
            self.aliases.iter().map(|((kind, alias), (_, description))| (*kind, alias.as_str(), description.as_str())),
        );
        out.sort_by_key(|&(kind, id, _)| (kind, id));
        out
    }
}

fn lookup<'a, B>(map: &'a BTreeMap<String, Entry<B>>, kind: Kind, id: &str) -> Result<&'a Entry<B>, RegistryError> {
    map.get(id).ok_or_else(|| RegistryError::Unknown { kind, id: id.into(), known: map.keys().cloned().collect() })
}

/// True for `family/name` or `family/name-vN`, lower-case ASCII, digits, `-` and `_`.
pub fn is_valid_id(id: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    };
    matches!(id.split_once('/'), Some((family, name)) if ok(family) && ok(name))
}

fn check_id(id: &str) {
    assert!(is_valid_id(id), "plugin id `{id}` must look like `family/name-v0`");
}

/// Deserialises a plugin's config into its own settings type; use `#[serde(deny_unknown_fields)]`
/// on `T` so that a misspelt key is an error naming it rather than a silently ignored setting.
pub fn parse_config<T: DeserializeOwned>(config: &Config) -> Result<T, BoxError> {
    Ok(toml::Value::Table(config.clone()).try_into::<T>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(is_valid_id("sql/text2sql-v0"));
        assert!(is_valid_id("answer/exact"));
        assert!(!is_valid_id("sql"));
        assert!(!is_valid_id("Sql/x"));
        assert!(!is_valid_id("sql/"));
        assert!(!is_valid_id("a/b/c"));
    }

    #[test]
    fn unknown_id_lists_known_ones() {
        let mut r = Registry::new();
        r.reward("answer/exact", "exact match", |_| Ok(Rubric::new()));
        let e = r.make_reward("answer/exakt", &Config::new()).unwrap_err();
        assert_eq!(e.to_string(), "unknown reward `answer/exakt`; known: answer/exact");
    }

    #[test]
    fn an_alias_builds_the_plugin_it_names_and_is_listed() {
        let mut r = Registry::new();
        r.reward("math/equivalence", "latex", |_| Ok(Rubric::new()));
        r.alias(Kind::Reward, "old/equivalence", "math/equivalence");
        assert!(r.make_reward("old/equivalence", &Config::new()).is_ok());
        assert!(r.make_env("old/equivalence", &Config::new(), 0).is_err());
        let listed: Vec<_> = r.list().into_iter().map(|(_, id, d)| (id, d)).collect();
        assert_eq!(listed, [("math/equivalence", "latex"), ("old/equivalence", "alias of math/equivalence")]);
    }

    #[test]
    fn config_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct C {
            digits: u32,
        }
        let bad: Config = toml::from_str("digts = 3").unwrap();
        let msg = parse_config::<C>(&bad).unwrap_err().to_string();
        assert!(msg.contains("digts"), "{msg}");
        let wrong: Config = toml::from_str("digits = \"three\"").unwrap();
        assert!(parse_config::<C>(&wrong).is_err());
    }
}
