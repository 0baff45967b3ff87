//! The vocabulary and the rollout runner of rlvr.
//!
//! A user's plugin crate needs only this crate: it defines an [`Environment`] and its
//! [`TaskSource`], a [`Rubric`] of [`RewardFn`]s, and registers them in a [`Registry`].
//!
//! ```
//! use rlvr_engine::*;
//! use serde_json::json;
//! use std::sync::Arc;
//!
//! /// Says "ping" and ends when the policy answers.
//! struct Ping;
//! impl Environment for Ping {
//!     fn reset(&mut self, task: &Task, _seed: u64) -> Result<Vec<Message>, EnvError> {
//!         Ok(vec![Message::user(task.str_field("say")?)])
//!     }
//!     fn step(&mut self, _action: &Action) -> Result<Step, EnvError> {
//!         Ok(Step::terminated(serde_json::Value::Null))
//!     }
//! }
//!
//! let tasks = VecTasks { train: vec![Task::new("0", json!({"say": "ping"}))], test: vec![] };
//! let env = EnvSpec::new(Arc::new(tasks), || Ok(Ping), "demo/pong")
//!     .with_gold(|_task: &Task, _msgs: &[Message]| Ok("pong".to_string()));
//! let rubric = Rubric::new().term("pong", 1.0, |_t: &Task, tr: &Trajectory| {
//!     Ok(Reward::from(tr.final_answer() == "pong"))
//! });
//! testing::assert_conformance(&env, &rubric, &testing::Checks::default());
//! ```
//!
//! # Core concepts
//! - [`Task`]: one row of JSON; cheap to clone, stored with every sample.
//! - [`Environment`]: one instance per episode, made by [`EnvSpec::make`], dropped at its end;
//!   keep per-episode state in fields. Instances run on the worker pool, hence `Send`.
//! - [`Policy`]: one per run, on the runner's thread; generates a whole batch per call.
//! - [`Rubric`]: shared by every worker (`Arc`); each term is a pure function, so scoring
//!   needs no locks and a saved run can be rescored. Terms that come from one verdict are added
//!   together with [`Rubric::group`], which computes the verdict once per episode.
//! - [`Runner`]: owns the worker pool (threads started once); `rollout` runs one batch.
//! - [`Registry`]: builders by id; building an environment or reward reads its TOML config.
//!
//! Three failures are kept apart everywhere: a model's mistake is an observation or a zero
//! reward; an environment's failure fails one rollout ([`Outcome::Failed`]); a verifier's
//! failure is an error on that reward term ([`TermScore::value`]), never a silent zero.

#![deny(missing_docs)]

pub mod env;
mod error;
#[cfg(feature = "fetch")]
pub mod fetch;
pub mod gold;
pub mod message;
pub mod policy;
pub mod pool;
pub mod registry;
pub mod reward;
pub mod runner;
pub mod seed;
pub mod task;
pub mod testing;
pub mod trajectory;

pub use env::{EnvError, Environment, OrderEnforcing, Status, Step};
pub use error::BoxError;
pub use message::{Message, Role};
pub use policy::{Action, GenRequest, Policy, PolicyError};
pub use registry::{
    Config, EnvFactory, EnvSpec, GoldPlayer, Kind, PolicyContext, Registry, RegistryError, parse_config,
};
pub use reward::{Reward, RewardError, RewardFn, RewardsFn, Rubric, ScoreRow, Scored, Term, TermScore};
pub use runner::{Guide, Rollout, RolloutConfig, RolloutStats, Runner, Sampling};
pub use task::{FieldError, Split, Task, TaskSource, TaskStream, VecTasks, draw_split_task};
pub use trajectory::{Group, Outcome, Sample, Stage, Trajectory};
