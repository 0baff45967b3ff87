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

/// Tells glibc's allocator to keep freed memory for reuse instead of handing it back to the
/// kernel at once. A process-wide setting, so the library never calls it itself: the `rlvr`
/// binary does at start, and so should a program that trains through the library (early: it
/// shapes allocations made after it).
///
/// Training allocates and frees the same tensor buffers (tens of MB each) every step. By default
/// glibc serves such buffers with `mmap` and unmaps them on free, so each step faults in and
/// zeroes fresh pages: on two cores that made a GRPO update of 500 sequences about 30% slower
/// (about 8 of 30 s were kernel time; 2-4 s with this setting). The cost is that a process keeps
/// up to 1 GiB of freed heap around. A `GLIBC_TUNABLES` setting, when present, wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_freed_memory() {
    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        return;
    }
    // SAFETY: mallopt takes the allocator's own lock and only changes tuning parameters, which
    // apply to allocations made after it; it is sound at any time, most useful at start.
    #[allow(unsafe_code)]
    unsafe {
        // Older glibc refuses thresholds above 32 MiB; the largest it takes still helps.
        if libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30) == 0 {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        }
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

/// Does nothing: the setting is glibc's.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_freed_memory() {}

pub mod cli;
pub mod error;
pub mod experiment;
pub mod report;
pub mod score;
pub mod store;

#[cfg(test)]
mod tests {
    use crate::engine::{Kind, Rubric};

    #[test]
    fn every_recorded_default_config_builds_its_plugin_as_the_empty_config_does() {
        let registry = super::builtin_registry();
        let mut rewards = 0;
        for (kind, id, _) in registry.list() {
            let Some(defaults) = registry.config_defaults(kind, id) else { continue };
            match kind {
                Kind::Reward => {
                    rewards += 1;
                    let given = registry.make_reward(id, defaults).unwrap_or_else(|e| panic!("{id}: {e}"));
                    let empty = registry.make_reward(id, &Default::default()).unwrap();
                    let names = |r: &Rubric| r.terms().iter().map(|t| (t.name.clone(), t.weight)).collect::<Vec<_>>();
                    assert_eq!(names(&given), names(&empty), "{id}");
                }
                Kind::Env => {
                    registry.make_env(id, defaults, 0).unwrap_or_else(|e| panic!("{id}: {e}"));
                }
                Kind::Policy => {}
            }
        }
        // Every reward records its defaults but those with a required key (a file, a length).
        let without: Vec<&str> = registry
            .list()
            .into_iter()
            .filter(|(k, id, _)| *k == Kind::Reward && registry.config_defaults(*k, id).is_none())
            .map(|(_, id, _)| id)
            .collect();
        assert_eq!(without, ["python/env-reward", "python/file", "shape/overlong"]);
        assert!(rewards >= 15);
    }
}
