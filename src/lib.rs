//! rlvr: reinforcement learning with verifiable rewards, in one process.
//!
//! This crate is the facade and the wiring: it re-exports the engine, registers the built-in
//! environments, rewards and policies, and holds the experiment loop, the run store and the CLI.

#![deny(missing_docs)]

pub use rlvr_engine as engine;
pub use rlvr_envs as envs;
pub use rlvr_policies as policies;
pub use rlvr_rewards as rewards;

/// A registry with every built-in plugin. A user's crate adds its own to it.
pub fn builtin_registry() -> engine::Registry {
    let mut registry = engine::Registry::new();
    envs::register(&mut registry);
    rewards::register(&mut registry);
    policies::register(&mut registry);
    registry
}

pub mod cli;
pub mod experiment;
pub mod report;
pub mod score;
pub mod store;
