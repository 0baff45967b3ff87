//! Conformance checks that every environment plugin's tests call.
//!
//! The same checks for every plugin, built-in or not, as Gymnasium's `check_env` and the
//! `validate` of verifiers do: same seed gives the same episode; `step` before `reset` is an
//! error; the gold answer reaches termination and scores the rubric's maximum.

use crate::env::{EnvError, Status};
use crate::policy::Action;
use crate::registry::EnvSpec;
use crate::reward::Rubric;
use crate::task::Split;

pub use crate::gold::play_gold;

/// What to check, and how far.
#[derive(Clone, Debug)]
pub struct Checks {
    /// Tasks checked per split.
    pub tasks: u64,
    /// Turn limit for gold episodes: termination must be reached within it.
    pub max_turns: u32,
    /// Seed of the episodes.
    pub seed: u64,
}

impl Default for Checks {
    fn default() -> Self {
        Self { tasks: 20, max_turns: 16, seed: 7 }
    }
}

/// Runs every check; returns each failure as one line naming the task and what went wrong.
pub fn check_env(spec: &EnvSpec, rubric: &Rubric, checks: &Checks) -> Vec<String> {
    let mut failures = Vec::new();
    match (spec.make)() {
        Ok(mut env) => match env.step(&Action::text("hello")) {
            Err(EnvError::NotReset) => {}
            Err(e) => failures.push(format!("step before reset: expected NotReset, got error `{e}`")),
            Ok(_) => failures.push("step before reset succeeded; it must be an error".into()),
        },
        Err(e) => failures.push(format!("making the environment failed: {e}")),
    }
    let Some(gold) = &spec.gold else {
        failures.push("the environment has no gold player, so its answers cannot be checked".into());
        return failures;
    };
    for split in [Split::Train, Split::Test] {
        let n = spec.tasks.len(split).unwrap_or(checks.tasks).min(checks.tasks);
        for i in 0..n {
            let task = match spec.tasks.task(split, i) {
                Ok(t) => t,
                Err(e) => {
                    failures.push(format!("{split:?} task {i}: {e}"));
                    continue;
                }
            };
            match spec.tasks.task(split, i) {
                Ok(again) if again == task => {}
                _ => failures.push(format!("{split:?} task {i}: the same index gave a different task")),
            }
            let play = |seed| play_gold(spec, gold, &task, seed, checks.max_turns);
            let first = match play(checks.seed) {
                Ok(t) => t,
                Err(e) => {
                    failures.push(format!("task {}: gold episode failed: {e}", task.id));
                    continue;
                }
            };
            match play(checks.seed) {
                Ok(second) if second == first => {}
                Ok(_) => failures.push(format!("task {}: the same seed gave a different episode", task.id)),
                Err(e) => failures.push(format!("task {}: replaying the gold episode failed: {e}", task.id)),
            }
            if first.status != Status::Terminated {
                failures
                    .push(format!("task {}: gold episode did not terminate in {} turns", task.id, checks.max_turns));
            }
            let scored = rubric.score(&task, &first);
            let want = rubric.max_total();
            match scored.total() {
                Some(total) if (total - want).abs() < 1e-9 => {}
                Some(total) => failures.push(format!(
                    "task {}: gold answer scored {total}, expected {want}; terms: {:?}",
                    task.id,
                    scored.terms.iter().map(|t| (&t.name, &t.value, &t.info)).collect::<Vec<_>>()
                )),
                None => failures.push(format!(
                    "task {}: scoring the gold answer failed: {}",
                    task.id,
                    scored.error().unwrap_or_default()
                )),
            }
        }
    }
    failures
}

/// Panics with every failure of [`check_env`], for use in tests.
#[track_caller]
pub fn assert_conformance(spec: &EnvSpec, rubric: &Rubric, checks: &Checks) {
    let failures = check_env(spec, rubric, checks);
    assert!(failures.is_empty(), "{} conformance failures:\n{}", failures.len(), failures.join("\n"));
}
